"""Edges of the canvas: `BindingEdge` (a model binding, selectable, labelled with its routing key or
header match) and `DerivedEdge` (drawn from a node's field: dead-letter exchange, alternate exchange,
producer target, consumer source, consumer-group subscription).

Owns: `EdgeItem`, `BindingEdge`, `DerivedEdge`, `binding_label`. Edges run from the source's output port
to the destination's input port as a smooth cubic curve with an arrow head and follow their nodes live
(`NodeItem.itemChange` calls `adjust`). Draws the model only. Imports PySide6 and mqstudio.core.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from mqstudio.core.model import Binding, Exchange, ExchangeType
from mqstudio.ui.canvas.constants import (
    LABEL_MAX_WIDTH,
    LOD_SIMPLE,
    PORT_RADIUS,
    Z_DERIVED_EDGE,
    Z_EDGE,
    Theme,
)
from mqstudio.ui.canvas.items.node import NodeItem

if TYPE_CHECKING:
    from mqstudio.ui.canvas.items.edgelayer import EdgeLayer

ARROW_LENGTH = 10.0
ARROW_WIDTH = 5.0
# One scene unit: at 100 % a one-pixel antialiased stroke takes Qt's fast path (QCosmeticStroker); a
# 1.6 px one goes through the general stroker and AA rasterizer, ~30x slower per edge (0.9 ms for a
# long near-vertical edge), which is what made a drag step cost a second on a 1,000-node design.
EDGE_WIDTH = 1.0
OVERLAY_WIDTH = 4.0  # extra stroke width of an edge at live-overlay level 1 (ui.monitoring.overlays)

# Enum members looked up once: each `Qt.X.Y` attribute access is a Python call, and building thousands of
# edges at open would pay several per edge.
_ROUND_CAP = Qt.PenCapStyle.RoundCap
_ROUND_JOIN = Qt.PenJoinStyle.RoundJoin
_SOLID = Qt.PenStyle.SolidLine
_DASH = Qt.PenStyle.DashLine
_DOT = Qt.PenStyle.DotLine
_EDGE_FLAGS = QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption
_BINDING_FLAGS = _EDGE_FLAGS | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
# Shared initial values (never changed in place: an item replaces them, it does not edit them).
_NO_PEN = QPen()
_NO_BRUSH = QBrush()
_EMPTY_PATH = QPainterPath()
_EMPTY_ARROW = QPolygonF()
_NULL_RECT = QRectF()


def binding_label(binding: Binding, source: Any) -> str:
    """What a binding matches on: the routing key, ``x-match=all: a=1`` for headers, nothing for fanout."""
    kind: str | None = source.type if isinstance(source, Exchange) else None
    if isinstance(source, Exchange) and source.type == ExchangeType.DELAYED:
        kind = source.delayed_type
    if kind in (ExchangeType.HEADERS, "headers"):
        args = dict(binding.arguments)
        match = args.pop("x-match", "all")
        pairs = ", ".join(f"{k}={v}" for k, v in args.items())
        return f"x-match={match}: {pairs}" if pairs else f"x-match={match}"
    if kind in (ExchangeType.FANOUT, "fanout"):
        return ""
    return binding.routing_key if binding.routing_key else '""'


_LABEL_CACHE: dict[tuple[int, str], tuple[str, float]] = {}


def _elide_label(text: str) -> tuple[str, float]:
    """(elided text, its width) with the theme's label font; cached, labels repeat across edges."""
    theme = Theme.current()
    key = (id(theme), text)
    hit = _LABEL_CACHE.get(key)
    if hit is None:
        metrics = theme.label_metrics
        width = metrics.horizontalAdvance(text)
        if width > LABEL_MAX_WIDTH:
            text = metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, LABEL_MAX_WIDTH)
            width = metrics.horizontalAdvance(text)
        if len(_LABEL_CACHE) > 20_000:
            _LABEL_CACHE.clear()
        hit = _LABEL_CACHE[key] = (text, width)
    return hit


_PEN_CACHE: dict[tuple[int, float, int], tuple[QPen, QBrush]] = {}


def _pen_and_brush(color: QColor, width: float, style: Qt.PenStyle) -> tuple[QPen, QBrush]:
    """A round-capped pen and a solid brush of `color`; shared: edges in one state draw with the same
    objects (a design has a handful of edge styles, not one per edge)."""
    key = (color.rgba(), width, id(style))  # enum members are singletons; hashing one is a Python call
    hit = _PEN_CACHE.get(key)
    if hit is None:
        if len(_PEN_CACHE) > 2_000:
            _PEN_CACHE.clear()
        hit = _PEN_CACHE[key] = (QPen(color, width, style, _ROUND_CAP, _ROUND_JOIN), QBrush(color))
    return hit


_LABEL_HEIGHT: dict[int, float] = {}


def _label_height(theme: Theme) -> float:
    """Height of an edge label box with the theme's label font (per theme, not per edge)."""
    key = id(theme)
    height = _LABEL_HEIGHT.get(key)
    if height is None:
        if len(_LABEL_HEIGHT) > 16:
            _LABEL_HEIGHT.clear()
        height = _LABEL_HEIGHT[key] = theme.label_metrics.height() + 2
    return height


def _segments_path(segments: list[tuple[tuple[float, float], ...]]) -> QPainterPath:
    """The painter path of an edge's pieces (cubics and lines, each starting where the last ended)."""
    path = QPainterPath(QPointF(*segments[0][0]))
    for segment in segments:
        if len(segment) == 2:
            path.lineTo(QPointF(*segment[1]))
        else:
            path.cubicTo(QPointF(*segment[1]), QPointF(*segment[2]), QPointF(*segment[3]))
    return path


def _smoothstep_inverse(s: float) -> float:
    """t in [0, 1] with 3t² - 2t³ = s: where a forward edge (control points level with its ends) reaches
    the fraction `s` of its vertical run."""
    s = min(1.0, max(0.0, s))
    return 0.5 - math.sin(math.asin(1.0 - 2.0 * s) / 3.0)


def _sub_cubic(pts: tuple[tuple[float, float], ...], t0: float, t1: float) -> tuple[tuple[float, float], ...]:
    """Control points of the part of a cubic Bézier between parameters t0 < t1 (blossoming)."""

    def blossom(a: float, b: float, c: float) -> tuple[float, float]:
        p = list(pts)
        for u in (a, b, c):
            p = [
                (p[i][0] + (p[i + 1][0] - p[i][0]) * u, p[i][1] + (p[i + 1][1] - p[i][1]) * u)
                for i in range(len(p) - 1)
            ]
        return p[0]

    return (blossom(t0, t0, t0), blossom(t0, t0, t1), blossom(t0, t1, t1), blossom(t1, t1, t1))


class EdgeItem(QGraphicsItem):
    """A curve from `source`'s output port to `dest`'s input port.

    Geometry (ends, label rect, bounds) is computed once per end move from plain floats; the painter
    path, the arrow and the hit shape are built lazily, on first use after a move (zoomed out nothing
    asks for them, and a layout moves every edge). Zoomed out (the scene's edge layer is active) an
    edge has no contents of its own: the `EdgeLayer` draws every edge as a straight line in one call,
    while the edge keeps its shape, so selection, hover and tooltips still work. Zoomed in, an edge that
    is much longer than the exposed area strokes only the part of its curve that crosses it (AA strokes
    cost by length, clipped or not).
    """

    def __init__(self, source: NodeItem, dest: NodeItem) -> None:
        super().__init__()
        self.source, self.dest = source, dest
        source.edges.append(self)
        if dest is not source:
            dest.edges.append(self)
        self.label = ""
        self.highlighted = False
        self.severity: str | None = None
        self._hover = False
        self._path: QPainterPath | None = _EMPTY_PATH  # None: build from _segments when asked
        # The path as pieces whose y runs monotonically: cubics whose control points are level with
        # their ends (y follows 3t² - 2t³ of the run) and horizontal lines. Long edges clip with them.
        self._segments: list[tuple[tuple[float, float], ...]] = []
        self._ends = (0.0, 0.0, 0.0, 0.0)
        self._arrow: QPolygonF | None = _EMPTY_ARROW  # None: build from _ends when asked
        self._label_rect = _NULL_RECT
        self._elided_label = ""
        self._label_width = 0.0
        self._bounds = _NULL_RECT
        self._shape: QPainterPath | None = None
        self._pen = _NO_PEN
        self._selected_pen = _NO_PEN
        self._arrow_brush = _NO_BRUSH
        self._selected_brush = _NO_BRUSH
        self._tooltip: str | Callable[[], str] = ""  # a callable is called on first use (hover)
        self._tooltip_set = False
        self.layer: EdgeLayer | None = None
        self.setAcceptHoverEvents(True)
        self.setFlags(self._flags)
        self.setZValue(Z_EDGE)

    _flags = _EDGE_FLAGS

    # -- geometry ----------------------------------------------------------------------------
    def set_label(self, text: str, adjust: bool = True) -> None:
        self.label = text
        shown = f"{text} · {self.overlay_text}" if text and self.overlay_text else text or self.overlay_text
        self._elided_label, self._label_width = _elide_label(shown) if shown else ("", 0.0)
        if adjust:
            self.adjust()

    def adjust(self) -> None:
        """Recompute the curve from the nodes' current positions (called while nodes move)."""
        layer = self.layer
        if layer is not None and layer.active:
            layer.update(self._bounds)
        self.prepareGeometryChange()
        source, dest = self.source, self.dest
        sp, dp = source.pos(), dest.pos()
        x1, y1 = sp.x() + source.width / 2, sp.y()
        x2, y2 = dp.x() - dest.width / 2 - PORT_RADIUS - 1, dp.y()
        self._ends = (x1, y1, x2, y2)
        dx = x2 - x1
        if dx >= 40:
            bend = max(dx * 0.5, 40.0)
            c1x, c2x = x1 + bend, x2 - bend
            self._segments = [((x1, y1), (c1x, y1), (c2x, y2), (x2, y2))]
            self._path = None  # built on first use
            left, right = min(x1, c2x), max(x2, c1x)
            top, bottom = min(y1, y2) - ARROW_WIDTH, max(y1, y2) + ARROW_WIDTH
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        else:
            # A backward edge loops out below both nodes instead of cutting across them.
            low = max(y1, y2) + max(source.height, dest.height) / 2 + 36
            bulge = 36.0 * 1.6
            self._segments = [
                ((x1, y1), (x1 + bulge, y1), (x1 + bulge, low), (x1, low)),
                ((x1, low), (x2, low)),
                ((x2, low), (x2 - bulge, low), (x2 - bulge, y2), (x2, y2)),
            ]
            path = self._path = _segments_path(self._segments)
            xs, ys = (x1, x1 + bulge, x2, x2 - bulge), (y1, y2, low)
            left, right = min(xs) - ARROW_LENGTH, max(xs)
            top, bottom = min(ys) - ARROW_WIDTH, max(ys) + ARROW_WIDTH
            mid = path.pointAtPercent(0.5)
            mx, my = mid.x(), mid.y()
        self._arrow = None  # built on first use
        if self._elided_label:
            width = self._label_width + 10
            height = _label_height(Theme.current())
            lx, ly = mx - width / 2, my - height / 2
            self._label_rect = QRectF(lx, ly, width, height)
            left, right = min(left, lx), max(right, lx + width)
            top, bottom = min(top, ly), max(bottom, ly + height)
        else:
            self._label_rect = _NULL_RECT
        self._bounds = QRectF(left - 6, top - 6, right - left + 12, bottom - top + 12)
        self._shape = None
        if layer is not None:
            layer.edge_moved(self)

    def detach(self) -> None:
        for node in (self.source, self.dest):
            if self in node.edges:
                node.edges.remove(self)
        if self.layer is not None:
            self.layer.remove_edge(self)

    def path(self) -> QPainterPath:
        path = self._path
        if path is None:
            path = self._path = _segments_path(self._segments)
        return path

    def arrow(self) -> QPolygonF:
        """The arrow head at the destination's end (a triangle pointing at the input port)."""
        arrow = self._arrow
        if arrow is None:
            _, _, x2, y2 = self._ends
            arrow = self._arrow = QPolygonF(
                [
                    QPointF(x2, y2),
                    QPointF(x2 - ARROW_LENGTH, y2 - ARROW_WIDTH),
                    QPointF(x2 - ARROW_LENGTH, y2 + ARROW_WIDTH),
                ]
            )
        return arrow

    def ends(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2): the output port end and the arrow tip, in scene coordinates."""
        return self._ends

    def midpoint(self) -> QPointF:
        return self.path().pointAtPercent(0.5)

    # -- live overlay (set by ui.monitoring.overlays; additive: the model's label stays) ---------
    overlay_text = ""
    overlay_level = 0.0

    def set_overlay(self, text: str, level: float = 0.0) -> None:
        """Show a live read-out (``12/s``) after the label and `level` (0..1) of extra thickness;
        ``("", 0)`` clears both."""
        if text == self.overlay_text and level == self.overlay_level:
            return
        self.overlay_text, self.overlay_level = text, level
        self.set_label(self.label)
        self.update_style()

    # -- states ------------------------------------------------------------------------------
    def set_highlighted(self, on: bool) -> None:
        if on != self.highlighted:
            self.highlighted = on
            self.update_style()

    def set_severity(self, severity: str | None) -> None:
        if severity != self.severity:
            self.severity = severity
            self.update_style()

    def base_color(self, theme: Theme) -> QColor:
        return theme.edge

    def update_style(self) -> None:
        """Pens for the current state (normal and selected), built once per state change, not per paint."""
        theme = Theme.current()
        color = self.base_color(theme)
        width = self.base_width() + OVERLAY_WIDTH * self.overlay_level
        if self.severity is not None:
            color = theme.severity[self.severity]
        selected_width = width + 1.0
        if self.highlighted:
            color, width = theme.highlight, width + 2.0
            selected_width = width
        elif self._hover:
            width += 1.0
            selected_width += 1.0
        style = self.pen_style()
        self._pen, self._arrow_brush = _pen_and_brush(color, width, style)
        selected_color = color if self.highlighted else theme.selection
        self._selected_pen, self._selected_brush = _pen_and_brush(selected_color, selected_width, style)
        self.repaint()

    def line_color(self) -> QColor:
        """The colour of the simplified (zoomed-out) line."""
        return self._selected_pen.color() if self.isSelected() else self._pen.color()

    def repaint(self) -> None:
        """Schedule a repaint of this edge, whoever draws it (itself, or the layer when zoomed out)."""
        layer = self.layer
        if layer is not None and layer.active:
            layer.edge_restyled(self)
        else:
            self.update()

    def base_width(self) -> float:
        return EDGE_WIDTH

    def pen_style(self) -> Qt.PenStyle:
        return _SOLID

    # -- tooltip (built on first hover: thousands of rich-text tooltips cost at open) ---------------
    def set_tooltip_text(self, text: str | Callable[[], str]) -> None:
        """The tooltip, or a function that builds it (called on first hover, not at open)."""
        self._tooltip = text
        if self._tooltip_set:
            self.setToolTip(self.tooltip_text())

    def tooltip_text(self) -> str:
        tooltip = self._tooltip
        if not isinstance(tooltip, str):
            tooltip = self._tooltip = tooltip()
        return tooltip

    # -- QGraphicsItem -----------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10)
            shape = stroker.createStroke(self.path())
            if not self._label_rect.isNull():
                shape.addRect(self._label_rect)
            self._shape = shape
        return self._shape

    def hoverEnterEvent(self, event: Any) -> None:
        if not self._tooltip_set:
            self._tooltip_set = True
            self.setToolTip(self.tooltip_text())
        self._hover = True
        self.update_style()

    def hoverLeaveEvent(self, event: Any) -> None:
        self._hover = False
        self.update_style()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        selected = self.isSelected()
        pen = self._selected_pen if selected else self._pen
        if option.levelOfDetailFromTransform(painter.worldTransform()) < LOD_SIMPLE:
            x1, y1, x2, y2 = self._ends
            layer = self.layer
            if layer is not None and layer.active:
                # Dragged while zoomed out (the layer leaves it out): look like the layer's lines.
                pen = QPen(pen.color(), 1.0)
                pen.setCosmetic(True)
                painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            painter.setPen(pen)
            painter.drawLine(QLineF(x1, y1, x2, y2))
            return
        theme = Theme.current()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        exposed = option.exposedRect
        if pen.style() != _SOLID and self._bounds.height() > 2 * exposed.height() + 400:
            # Dashes cost by their number along the whole path, clipped or not. (A solid one-pixel
            # stroke is cheaper drawn whole: the cosmetic stroker skips what lies outside the clip.)
            self._paint_exposed_stretch(painter, pen, exposed)
        else:
            painter.drawPath(self.path())
        arrow = self.arrow()
        if exposed.intersects(arrow.boundingRect()):
            painter.setPen(theme.no_pen)
            painter.setBrush(self._selected_brush if selected else self._arrow_brush)
            painter.drawPolygon(arrow)
        if self._elided_label and exposed.intersects(self._label_rect):
            painter.setBrush(theme.label_brush)
            painter.setPen(self._label_pen(theme))
            painter.drawRoundedRect(self._label_rect, 4, 4)
            painter.setFont(theme.label_font)
            painter.setPen(theme.text_pen)
            painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self._elided_label)

    def _paint_exposed_stretch(self, painter: QPainter, pen: QPen, exposed: QRectF) -> None:
        """Stroke only the stretch of a long edge that crosses `exposed`: an antialiased stroke costs by
        its whole length even when clipped, and a dashed one by its number of dashes. Each piece's y is
        monotonic with a closed-form inverse, so the stretch is exact; dashes keep their phase."""
        pad = 20.0
        top, bottom = exposed.top() - pad, exposed.bottom() + pad
        dashed = pen.style() != Qt.PenStyle.SolidLine
        travelled = 0.0  # length of the pieces before this one (for the dash phase)
        for segment in self._segments:
            ya, yb = segment[0][1], segment[-1][1]
            if len(segment) == 2:
                piece = QPainterPath(QPointF(*segment[0]))
                piece.lineTo(QPointF(*segment[1]))
                visible = top <= ya <= bottom
                skipped = 0.0
            else:
                if max(ya, yb) < top or min(ya, yb) > bottom:
                    if dashed:
                        travelled += _cubic_path(segment).length()
                    continue
                run = yb - ya
                if run == 0:
                    t0, t1 = 0.0, 1.0
                else:
                    s0, s1 = (top - ya) / run, (bottom - ya) / run
                    t0, t1 = sorted((_smoothstep_inverse(s0), _smoothstep_inverse(s1)))
                piece = _cubic_path(_sub_cubic(segment, t0, t1))
                visible = t1 > t0
                skipped = _cubic_path(_sub_cubic(segment, 0.0, t0)).length() if dashed and t0 > 0 else 0.0
            if visible:
                if dashed:
                    phased = QPen(pen)
                    phased.setDashOffset((travelled + skipped) / max(pen.widthF(), 1e-6))
                    painter.setPen(phased)
                painter.drawPath(piece)
            if dashed:
                travelled += piece.length() if len(segment) == 2 else _cubic_path(segment).length()
        painter.setPen(pen)

    def _label_pen(self, theme: Theme) -> QPen:
        return theme.no_pen


def _cubic_path(pts: tuple[tuple[float, float], ...]) -> QPainterPath:
    path = QPainterPath(QPointF(*pts[0]))
    path.cubicTo(QPointF(*pts[1]), QPointF(*pts[2]), QPointF(*pts[3]))
    return path


def _binding_tooltip(source: str, dest: str, routing_key: str, arguments: dict[str, Any]) -> str:
    lines = [f"<b>binding</b> {source} → {dest}", f"routing key: {routing_key!r}"]
    lines += [f"{k} = {v!r}" for k, v in arguments.items()]
    return "<br>".join(lines)


class BindingEdge(EdgeItem):
    """A model binding; selectable (Delete removes it with `Unbind`)."""

    def __init__(self, binding: Binding, source: NodeItem, dest: NodeItem) -> None:
        super().__init__(source, dest)
        self.binding_id = binding.id
        self.exchange_to_exchange = False

    _flags = _BINDING_FLAGS

    def update_from(self, binding: Binding, source: Any, dest: Any) -> None:
        self.exchange_to_exchange = isinstance(dest, Exchange)
        label = binding_label(binding, source)
        self.set_tooltip_text(
            partial(_binding_tooltip, source.name, dest.name, binding.routing_key, dict(binding.arguments))
        )
        if label != self.label or self._bounds.isNull():
            self.set_label(label)
        self.update_style()

    def base_color(self, theme: Theme) -> QColor:
        return theme.accent_for("exchange-binding") if self.exchange_to_exchange else theme.edge

    def base_width(self) -> float:
        return 2.2 if self.exchange_to_exchange else EDGE_WIDTH

    def pen_style(self) -> Qt.PenStyle:
        return _SOLID


class DerivedEdge(EdgeItem):
    """An edge implied by a node's field. `kind`: dead-letter, alternate, publishes, consumes, subscribes."""

    KINDS = ("dead-letter", "alternate", "publishes", "consumes", "subscribes")

    def __init__(self, kind: str, source: NodeItem, dest: NodeItem, label: str = "") -> None:
        super().__init__(source, dest)
        self.kind = kind
        self.owner_id = source.node_id if kind in ("dead-letter", "alternate", "publishes") else dest.node_id
        self.setZValue(Z_DERIVED_EDGE)
        tips = {
            "dead-letter": "dead-letters to",
            "alternate": "unroutable messages go to",
            "publishes": "publishes to",
            "consumes": "is consumed by",
            "subscribes": "is consumed by group",
        }
        self.set_tooltip_text(f"{tips[kind]} {dest.title}")
        self.set_label(label)
        self.update_style()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.source.node_id, self.dest.node_id)

    def base_color(self, theme: Theme) -> QColor:
        if self.kind == "dead-letter":
            return theme.dead_letter
        if self.kind == "alternate":
            return theme.alternate
        return theme.accent_for("client")

    def base_width(self) -> float:
        return EDGE_WIDTH

    def pen_style(self) -> Qt.PenStyle:
        if self.kind in ("dead-letter", "alternate"):
            return _DASH
        return _DOT

    def _label_pen(self, theme: Theme) -> QPen:
        return self._pen
