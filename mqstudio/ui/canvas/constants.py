"""Canvas constants and the palette-aware theme: sizes, z-values, colours per node type, shared pens.

Owns: geometry constants (device-independent scene units), `MIME_TYPE` of the palette's drag payload,
z-values, `GRID`, and `Theme`, which derives every text/background colour from the application's
`QPalette` (readable in light and dark themes) and pre-builds fonts, pens and brushes so that items never
allocate them while painting. Imports PySide6 only.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QGuiApplication, QPalette, QPen

MIME_TYPE = "application/x-mqstudio-node"
FRAGMENT_MIME_TYPE = "application/x-mqstudio-fragment"
GRID = 20

# Node geometry: items are centred on their model position.
NODE_WIDTH = 184.0
EXCHANGE_HEIGHT = 60.0
QUEUE_HEIGHT = 56.0
CLIENT_WIDTH = 148.0
CLIENT_HEIGHT = 48.0
KAFKA_HEIGHT = 56.0
PORT_RADIUS = 5.0
GLYPH_SIZE = 28.0
CORNER = 10.0
BADGE_HEIGHT = 16.0
BADGE_GAP = 4.0
LABEL_MAX_WIDTH = 150.0
PASTE_OFFSET = 40.0

# Stacking order: edges under nodes, transient feedback over everything.
Z_EDGE = 0.0
Z_DERIVED_EDGE = -1.0
Z_NODE = 10.0
Z_SELECTED_NODE = 11.0
Z_DRAG_LINE = 50.0
Z_EDITOR = 60.0
Z_FEEDBACK = 70.0

# Below this level of detail items draw a simplified shape (no text, no badges).
LOD_SIMPLE = 0.35

# Accent colours by node type; the fill and text colours come from the palette (see `Theme`).
ACCENTS: dict[str, str] = {
    "direct": "#2f7fe0",
    "fanout": "#8a5cf0",
    "topic": "#11a37f",
    "headers": "#d98a08",
    "x-delayed-message": "#d9468f",
    "classic": "#3d8fb8",
    "quorum": "#5b62d6",
    "stream": "#14a3a3",
    "producer": "#2e9e4f",
    "consumer": "#e0701a",
    "kafka-topic": "#c23a52",
    "consumer_group": "#9a7b12",
    "exchange-binding": "#7a5cc7",
    "client": "#7d8793",
}
DEAD_LETTER_COLOR = "#d64545"
ALTERNATE_COLOR = "#d08a1c"
HIGHLIGHT_COLOR = "#f2b705"
VALID_COLOR = "#27a35a"
INVALID_COLOR = "#d64545"
SEVERITY_COLORS = {"error": "#d64545", "warning": "#e0a100", "info": "#3d8fd8"}


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """Linear blend of two colours: ``t=0`` is `a`, ``t=1`` is `b`."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
        a.alphaF() + (b.alphaF() - a.alphaF()) * t,
    )


class Theme:
    """Colours, fonts, pens and brushes for one palette. Rebuilt on palette change, shared by all items."""

    _current: Theme | None = None

    def __init__(self, palette: QPalette) -> None:
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        self.dark = base.lightnessF() < 0.5
        self.base = base
        self.text = text
        self.muted_text = mix(text, base, 0.4)
        self.background = mix(base, text, 0.03)
        self.grid_dot = mix(base, text, 0.22)
        self.edge = mix(text, base, 0.35)  # edges are 1 px: a little darker
        self.selection = palette.color(QPalette.ColorRole.Highlight)
        self.accents = {key: self._accent(value) for key, value in ACCENTS.items()}
        self.fills = {
            key: mix(base, color, 0.16 if self.dark else 0.09) for key, color in self.accents.items()
        }
        self.dead_letter = self._accent(DEAD_LETTER_COLOR)
        self.alternate = self._accent(ALTERNATE_COLOR)
        self.highlight = QColor(HIGHLIGHT_COLOR)
        self.valid = self._accent(VALID_COLOR)
        self.invalid = self._accent(INVALID_COLOR)
        self.severity = {key: self._accent(value) for key, value in SEVERITY_COLORS.items()}
        self.label_fill = QColor(base)
        self.label_fill.setAlphaF(0.92)

        app_font = QGuiApplication.font() if QGuiApplication.instance() is not None else QFont()
        self.title_font = QFont(app_font)
        self.title_font.setPointSizeF(9.5)
        self.title_font.setWeight(QFont.Weight.DemiBold)
        self.subtitle_font = QFont(app_font)
        self.subtitle_font.setPointSizeF(7.5)
        self.badge_font = QFont(app_font)
        self.badge_font.setPointSizeF(6.8)
        self.badge_font.setWeight(QFont.Weight.DemiBold)
        self.label_font = QFont(app_font)
        self.label_font.setPointSizeF(7.5)
        self.glyph_font = QFont(app_font)
        self.glyph_font.setPointSizeF(11)
        self.glyph_font.setWeight(QFont.Weight.Bold)
        self.title_metrics = QFontMetricsF(self.title_font)
        self.subtitle_metrics = QFontMetricsF(self.subtitle_font)
        self.badge_metrics = QFontMetricsF(self.badge_font)
        self.label_metrics = QFontMetricsF(self.label_font)

        self.text_pen = QPen(text)
        self.muted_pen = QPen(self.muted_text)
        self.white_pen = QPen(QColor("white"))
        self.no_pen = QPen(Qt.PenStyle.NoPen)
        self.selection_pen = QPen(self.selection, 2.5)
        self.hover_pen_width = 2.0
        self.black_pen = QPen(QColor("#1a1a1a"))
        self.glyph_pen = QPen(
            QColor("white"), 2.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
        )
        glow = QColor(self.selection)
        glow.setAlphaF(0.3)
        self.selection_glow_pen = QPen(
            glow, 7.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
        )
        hl = QColor(self.highlight)
        hl.setAlphaF(0.55)
        self.highlight_glow_pen = QPen(
            hl, 9.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
        )
        self.label_brush = QBrush(self.label_fill)
        self.port_brush = QBrush(base)

    def _accent(self, value: str) -> QColor:
        color = QColor(value)
        return color.lighter(125) if getattr(self, "dark", False) else color

    @classmethod
    def current(cls) -> Theme:
        if cls._current is None:
            cls._current = cls(QGuiApplication.palette())
        return cls._current

    @classmethod
    def refresh(cls) -> Theme:
        """Rebuild from the application palette (after a theme switch)."""
        cls._current = cls(QGuiApplication.palette())
        return cls._current

    def accent_for(self, key: str) -> QColor:
        return self.accents.get(key, self.edge)

    def badge_color(self, key: str) -> QColor:
        if key == "dead-letter":
            return self.dead_letter
        return self.severity.get(key) or self.accents.get(key) or self.muted_text

    def fill_for(self, key: str) -> QColor:
        return self.fills.get(key, self.base)
