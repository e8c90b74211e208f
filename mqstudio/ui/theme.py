"""Light and dark themes: the Fusion style, a palette per theme, and one small style sheet for both.

Owns: `Theme` (System/Light/Dark), `ThemeManager` (applies a theme to the QApplication, follows the
system colour scheme through ``QStyleHints.colorScheme()`` while the theme is System, and emits
``changed`` so icons can be redrawn), the two palettes. Persisting the user's choice is the window's
job (QSettings); this module keeps no state on disk. Imports PySide6 only.
"""

from __future__ import annotations

import sys
from enum import StrEnum

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from mqstudio.ui.resources import style_sheet


class Theme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"

    @property
    def label(self) -> str:
        return {"system": "&System", "light": "&Light", "dark": "&Dark"}[self.value]


_Role = QPalette.ColorRole
_Group = QPalette.ColorGroup

_LIGHT = {
    _Role.Window: "#f3f4f6",
    _Role.WindowText: "#1f2328",
    _Role.Base: "#ffffff",
    _Role.AlternateBase: "#f6f8fa",
    _Role.ToolTipBase: "#ffffff",
    _Role.ToolTipText: "#1f2328",
    _Role.PlaceholderText: "#8a9099",
    _Role.Text: "#1f2328",
    _Role.Button: "#f8f9fa",
    _Role.ButtonText: "#1f2328",
    _Role.BrightText: "#d1242f",
    _Role.Light: "#ffffff",
    _Role.Midlight: "#e6e8eb",
    _Role.Mid: "#c6cad0",
    _Role.Dark: "#9aa0a8",
    _Role.Shadow: "#6e7781",
    _Role.Highlight: "#2f6fd6",
    _Role.HighlightedText: "#ffffff",
    _Role.Link: "#0969da",
    _Role.LinkVisited: "#8250df",
}

_DARK = {
    _Role.Window: "#2b2d31",
    _Role.WindowText: "#dfe1e5",
    _Role.Base: "#1f2023",
    _Role.AlternateBase: "#26282c",
    _Role.ToolTipBase: "#3a3d42",
    _Role.ToolTipText: "#dfe1e5",
    _Role.PlaceholderText: "#80858d",
    _Role.Text: "#dfe1e5",
    _Role.Button: "#35383d",
    _Role.ButtonText: "#dfe1e5",
    _Role.BrightText: "#ff7b72",
    _Role.Light: "#4a4d53",
    _Role.Midlight: "#3c3f44",
    _Role.Mid: "#30333a",
    _Role.Dark: "#1b1c1f",
    _Role.Shadow: "#111214",
    _Role.Highlight: "#3d7be0",
    _Role.HighlightedText: "#ffffff",
    _Role.Link: "#6cb6ff",
    _Role.LinkVisited: "#c297ff",
}


def _build(colours: dict[QPalette.ColorRole, str], dark: bool) -> QPalette:
    palette = QPalette()
    for role, value in colours.items():
        palette.setColor(role, QColor(value))
    muted = QColor(colours[_Role.PlaceholderText])
    for role in (_Role.WindowText, _Role.Text, _Role.ButtonText):
        palette.setColor(_Group.Disabled, role, muted)
    palette.setColor(_Group.Disabled, _Role.Highlight, QColor("#4a4d53" if dark else "#c6cad0"))
    inactive = QColor(colours[_Role.Highlight])
    inactive.setAlpha(150)
    palette.setColor(_Group.Inactive, _Role.Highlight, inactive)
    return palette


def light_palette() -> QPalette:
    return _build(_LIGHT, dark=False)


def dark_palette() -> QPalette:
    return _build(_DARK, dark=True)


def is_dark(palette: QPalette) -> bool:
    return palette.color(_Role.Window).lightness() < 128


def system_prefers_dark(app: QApplication) -> bool:
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def _mix(a: QColor, b: QColor, amount: float) -> str:
    """`a` moved `amount` of the way towards `b`, as ``#rrggbb``."""
    return QColor(
        round(a.red() + (b.red() - a.red()) * amount),
        round(a.green() + (b.green() - a.green()) * amount),
        round(a.blue() + (b.blue() - a.blue()) * amount),
    ).name()


def render_style_sheet(template: str, palette: QPalette) -> str:
    """Fill the ``@name@`` placeholders of a style sheet from `palette`."""
    window = palette.color(_Role.Window)
    text = palette.color(_Role.WindowText)
    highlight = palette.color(_Role.Highlight)
    dark = is_dark(palette)
    values = {
        "window": window.name(),
        "base": palette.color(_Role.Base).name(),
        "button": palette.color(_Role.Button).name(),
        "text": text.name(),
        "highlight": highlight.name(),
        "muted": _mix(text, window, 0.45),
        "border": _mix(window, text, 0.16 if dark else 0.14),
        "title": _mix(window, text, 0.05 if dark else 0.035),
        "hover": _mix(window, text, 0.10 if dark else 0.07),
        "pressed": _mix(window, text, 0.18 if dark else 0.13),
        "selection": _mix(palette.color(_Role.Base), highlight, 0.30 if dark else 0.18),
    }
    for name, value in values.items():
        template = template.replace(f"@{name}@", value)
    return template


class ThemeManager(QObject):
    """Applies a `Theme` to the application. Signal ``changed()`` after every palette change."""

    changed = Signal()

    def __init__(self, app: QApplication, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._app = app
        self._theme = Theme.SYSTEM
        style = app.style()
        # macOS's own style follows its dark mode; elsewhere Fusion draws our palettes faithfully.
        if sys.platform != "darwin" and (style is None or style.name().lower() != "fusion"):
            app.setStyle("Fusion")
        app.styleHints().colorSchemeChanged.connect(self._on_system_scheme_changed)

    @property
    def theme(self) -> Theme:
        return self._theme

    @property
    def dark(self) -> bool:
        return is_dark(self._app.palette())

    def set_theme(self, theme: Theme | str) -> None:
        self._theme = Theme(theme)
        self.apply()

    def apply(self) -> None:
        dark = self._theme is Theme.DARK or (
            self._theme is Theme.SYSTEM and system_prefers_dark(self._app)
        )
        palette = dark_palette() if dark else light_palette()
        sheet = render_style_sheet(style_sheet("app"), palette)
        if self._app.palette() == palette and self._app.styleSheet() == sheet:
            return  # restyling every widget is slow; another window already applied this theme
        self._app.setPalette(palette)
        self._app.setStyleSheet(sheet)
        self.changed.emit()

    def _on_system_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self._theme is Theme.SYSTEM:
            self.apply()
