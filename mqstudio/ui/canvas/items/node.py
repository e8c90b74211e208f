"""Base graphics item of a topology node: body, glyph, elided title, badges, ports and visual states.

Owns: `NodeItem`, `Port`, `Badge`, `format_duration`. Items only DRAW the model: they never write
it (gestures live in `interactions.py` and push core commands). A node item is centred on its model
position; subclasses give the body shape, glyph, subtitle and badges. Imports PySide6 and mqstudio.core.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from mqstudio.ui.canvas.constants import (
    BADGE_GAP,
    BADGE_HEIGHT,
    GLYPH_SIZE,
    LOD_SIMPLE,
    NODE_WIDTH,
    PORT_RADIUS,
    Z_NODE,
    Z_SELECTED_NODE,
    Theme,
)

if TYPE_CHECKING:
    from mqstudio.ui.canvas.items.edge import EdgeItem
    from mqstudio.ui.canvas.items.nodelayer import NodeLayer


@dataclass(frozen=True, slots=True)
class Badge:
    """A small pill under a node (``TTL 30s``); `color` is a theme accent key or a severity."""

    text: str
    color: str = ""


def format_duration(ms: Any) -> str:
    """``30000`` → ``30s``, ``90000`` → ``1.5m``, ``250`` → ``250ms`` (RabbitMQ TTLs are milliseconds)."""
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return str(ms)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            value = ms / size
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{ms:g}ms"


Tooltip = str | Callable[[], str]  # a callable builds the text on first use (hover), not at open


def arguments_tooltip(title: str, rows: list[tuple[str, Any]], arguments: dict[str, Any]) -> Tooltip:
    """Rich-text tooltip: a title, the node's properties, then every argument. Returned as a function
    that builds the text when the tooltip is first shown: escaping a thousand tables at open costs."""
    return partial(_arguments_html, title, rows, arguments)


def _arguments_html(title: str, rows: list[tuple[str, Any]], arguments: dict[str, Any]) -> str:
    lines = [f"<b>{html.escape(title)}</b>", "<table cellspacing='0' cellpadding='1'>"]
    for key, value in rows:
        lines.append(f"<tr><td>{html.escape(key)}&nbsp;</td><td>{html.escape(str(value))}</td></tr>")
    if arguments:
        lines.append("<tr><td colspan='2'><i>arguments</i></td></tr>")
        for key, value in sorted(arguments.items()):
            lines.append(f"<tr><td>{html.escape(key)}&nbsp;</td><td>{html.escape(repr(value))}</td></tr>")
    lines.append("</table>")
    return "".join(lines)


class Port:
    """A connection point on a node's side: ``out`` starts a binding drag, ``in`` shows where it lands.

    Not a graphics item (a thousand-node design would carry two thousand more items for Qt to traverse
    on every paint): its node draws it and hit-tests it (`NodeItem.port_at`), and its hit area is part
    of the node's shape."""

    __slots__ = ("hover", "node_item", "offset", "role")

    def __init__(self, node_item: NodeItem, role: str, offset: QPointF) -> None:
        self.node_item = node_item
        self.role = role
        self.offset = offset
        self.hover = False

    def pos(self) -> QPointF:
        """The port's centre in its node's coordinates."""
        return QPointF(self.offset)

    def scenePos(self) -> QPointF:  # the name QGraphicsItem uses: callers take either
        """The port's centre in scene coordinates."""
        return self.node_item.pos() + self.offset

    def contains(self, node_pos: QPointF) -> bool:
        """Whether `node_pos` (node coordinates) is within the port's (generous) hit area."""
        d = node_pos - self.offset
        return d.x() * d.x() + d.y() * d.y() <= _PORT_HIT * _PORT_HIT

    def tooltip(self) -> str:
        return "Drag to another node to connect" if self.role == "out" else ""

    def paint_on_node(self, painter: QPainter, theme: Theme) -> None:
        pen = self.node_item.port_pen
        painter.setPen(pen)
        active = self.hover or self.node_item.hovered
        painter.setBrush(pen.color() if active and self.role == "out" else theme.port_brush)
        r = PORT_RADIUS + (1.5 if active else 0.0)
        painter.drawEllipse(self.offset, r, r)


PortItem = Port  # the former name (ports were child items)


_PORT_HIT = PORT_RADIUS + 4  # a generous hit area: ports are small
_SHAPES: dict[type, QPainterPath] = {}
_BODIES: dict[type, QPainterPath] = {}
_ELIDE_CACHE: dict[tuple[int, int, str, float], str] = {}
_ADVANCE_CACHE: dict[tuple[int, str], float] = {}
_PEN_CACHE: dict[tuple[int, float], QPen] = {}
_BRUSH_CACHE: dict[int, QBrush] = {}
# Enum members looked up once (each `Qt.X.Y` access is a Python call; a thousand nodes pay it each).
_SELECTABLE = QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
_DEVICE_CACHE = QGraphicsItem.CacheMode.DeviceCoordinateCache
_ROUND_JOIN = Qt.PenJoinStyle.RoundJoin
_ELIDE_MIDDLE = Qt.TextElideMode.ElideMiddle
_ELIDE_RIGHT = Qt.TextElideMode.ElideRight


def _badge_advance(theme: Theme, text: str) -> float:
    """Width of a badge's text in the theme's badge font (cached: badge texts repeat across nodes)."""
    key = (id(theme), text)
    width = _ADVANCE_CACHE.get(key)
    if width is None:
        if len(_ADVANCE_CACHE) > 20_000:
            _ADVANCE_CACHE.clear()
        width = _ADVANCE_CACHE[key] = theme.badge_metrics.horizontalAdvance(text)
    return width


def _shared_pen(color: QColor, width: float) -> QPen:
    """A round-joined pen, shared by every node drawn in that colour and width."""
    key = (color.rgba(), width)
    pen = _PEN_CACHE.get(key)
    if pen is None:
        if len(_PEN_CACHE) > 2_000:
            _PEN_CACHE.clear()
        pen = _PEN_CACHE[key] = QPen(color, width)
        pen.setJoinStyle(_ROUND_JOIN)
    return pen


def _shared_brush(color: QColor) -> QBrush:
    key = color.rgba()
    brush = _BRUSH_CACHE.get(key)
    if brush is None:
        if len(_BRUSH_CACHE) > 2_000:
            _BRUSH_CACHE.clear()
        brush = _BRUSH_CACHE[key] = QBrush(color)
    return brush


def _elide(theme: Theme, metrics: Any, text: str, mode: Qt.TextElideMode, width: float) -> str:
    key = (id(theme), id(metrics), text, width)
    hit = _ELIDE_CACHE.get(key)
    if hit is None:
        hit = text if metrics.horizontalAdvance(text) <= width else metrics.elidedText(text, mode, width)
        if len(_ELIDE_CACHE) > 20_000:
            _ELIDE_CACHE.clear()
        _ELIDE_CACHE[key] = hit
    return hit


class NodeItem(QGraphicsItem):
    """One node. Subclasses implement `describe`, `_body_path` and `_paint_glyph`."""

    width = NODE_WIDTH
    height = 60.0
    has_input = True
    has_output = True

    def __init__(self, node: Any) -> None:
        super().__init__()
        self.node_id: str = node.id
        self.edges: list[EdgeItem] = []
        self.hovered = False
        self.drop_state: str | None = None  # "valid" / "invalid" while a binding drag hovers
        self.severity: str | None = None
        self.severity_text = ""
        self.highlight_order: int | None = None
        self.title = ""
        self._base_tooltip: Tooltip = ""
        self.subtitle = ""
        self.accent_key = ""
        self.badges: list[Badge] = []
        self._elided: tuple[str, str] | None = None  # (title, subtitle) elided; None: on next paint
        self._badge_rects: list[tuple[QRectF, str, QPen]] = []
        self._body = self._shared_body()
        self._bounds = QRectF()
        self.port_pen = QPen()
        self._outline_pen = QPen()
        self._fill = QBrush()
        self._accent = QColor()
        self._tooltip_set = False
        self.layer: NodeLayer | None = None  # draws this node while zoomed out (see NodeLayer)
        self.setFlags(_SELECTABLE)
        self.setAcceptHoverEvents(True)
        self.setCacheMode(_DEVICE_CACHE)
        self.setZValue(Z_NODE)
        w = self.width
        self.input_port = Port(self, "in", QPointF(-w / 2, 0)) if self.has_input else None
        self.output_port = Port(self, "out", QPointF(w / 2, 0)) if self.has_output else None
        self._shape = self._hit_shape()
        self._port_under_mouse: Port | None = None
        self.update_from(node)

    # -- model → item ------------------------------------------------------------------------
    def describe(self, node: Any) -> tuple[str, str, str, list[Badge], Tooltip]:
        """(title, subtitle, accent key, badges, tooltip) of `node`; the tooltip may be a function that
        builds it (see `arguments_tooltip`)."""
        raise NotImplementedError

    def update_from(self, node: Any) -> None:
        """Refresh everything drawn from the model object (after node_changed or a theme change)."""
        title, subtitle, accent, badges, tooltip = self.describe(node)
        self.prepareGeometryChange()
        self.title, self.subtitle, self.accent_key, self.badges = title, subtitle, accent, badges
        self._base_tooltip = tooltip
        self._apply_tooltip()
        self._layout_text()
        self._update_style()

    def elided_text(self) -> tuple[str, str]:
        """(title, subtitle) as drawn: elided to the text area with the theme's fonts."""
        elided = self._elided
        if elided is None:
            theme = Theme.current()
            width = self._text_right() - self._text_left()
            elided = self._elided = (
                _elide(theme, theme.title_metrics, self.title, _ELIDE_MIDDLE, width),
                _elide(theme, theme.subtitle_metrics, self.subtitle, _ELIDE_RIGHT, width),
            )
        return elided

    def _layout_text(self) -> None:
        theme = Theme.current()
        w, h = self.width, self.height
        self._elided = None  # measured on the first detailed paint: zoomed out nothing shows the text
        self._badge_rects = []
        widths = [_badge_advance(theme, b.text) + 10 for b in self.badges]
        total = sum(widths) + BADGE_GAP * max(0, len(widths) - 1)
        x = -total / 2
        y = h / 2 + BADGE_GAP + 1
        for width, badge in zip(widths, self.badges, strict=True):
            pen = _shared_pen(theme.badge_color(badge.color), 1.0)
            self._badge_rects.append((QRectF(x, y, width, BADGE_HEIGHT), badge.text, pen))
            x += width + BADGE_GAP
        bounds = QRectF(-w / 2 - 10, -h / 2 - 12, w + 20, h + 24)
        if self._badge_rects:
            bounds = bounds.united(QRectF(-total / 2 - 2, y - 2, total + 4, BADGE_HEIGHT + 4))
        self._bounds = bounds

    def _update_style(self) -> None:
        """Pens and brushes for the current state, built once per state change, not per paint."""
        theme = Theme.current()
        self._accent = theme.accent_for(self.accent_key)
        self._fill = _shared_brush(theme.fill_for(self.accent_key))
        if self.drop_state is not None:
            color = theme.valid if self.drop_state == "valid" else theme.invalid
            pen = _shared_pen(color, 3.0)
        elif self.severity is not None:
            pen = _shared_pen(theme.severity[self.severity], 2.0)
        else:
            pen = _shared_pen(self._accent, 2.0 if self.hovered else 1.3)
        self._outline_pen = pen
        self.port_pen = _shared_pen(self._accent, 1.5)
        self.update()
        if self.layer is not None:
            self.layer.node_restyled(self)

    def block_color(self) -> QColor:
        """The colour of the simplified (zoomed-out) block."""
        return self._accent

    # -- states ------------------------------------------------------------------------------
    def set_drop_state(self, state: str | None) -> None:
        if state != self.drop_state:
            self.drop_state = state
            self._update_style()

    def set_severity(self, severity: str | None, text: str = "") -> None:
        self.severity, self.severity_text = severity, text
        self._apply_tooltip()
        self._update_style()

    def tooltip_text(self) -> str:
        """The rich-text tooltip; handed to Qt on first hover (building thousands at open costs)."""
        extra = f"<hr>{self.severity_text}" if self.severity_text else ""
        base = self._base_tooltip
        if not isinstance(base, str):
            base = self._base_tooltip = base()
        return base + extra

    def _apply_tooltip(self) -> None:
        if self._tooltip_set:
            self.setToolTip(self.tooltip_text())

    def set_highlight_order(self, order: int | None) -> None:
        if order != self.highlight_order:
            self.highlight_order = order
            self.update()

    def center(self) -> QPointF:
        return self.pos()

    def input_pos(self) -> QPointF:
        return self.pos() + QPointF(-self.width / 2, 0)

    def output_pos(self) -> QPointF:
        return self.pos() + QPointF(self.width / 2, 0)

    # -- QGraphicsItem -----------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._shape

    def _shared_body(self) -> QPainterPath:
        """The body outline: it depends on the class only (its width and height), so built once per
        class, like the hit shape."""
        body = _BODIES.get(type(self))
        if body is None:
            body = _BODIES[type(self)] = self._body_path()
        return body

    def _hit_shape(self) -> QPainterPath:
        """The body plus the ports' hit areas (half of each port sticks out of the body); one per class."""
        cached = _SHAPES.get(type(self))
        if cached is not None:
            return cached
        shape = QPainterPath(self._body)
        for port in self.ports():
            circle = QPainterPath()
            circle.addEllipse(port.offset, _PORT_HIT, _PORT_HIT)
            shape = shape.united(circle)
        _SHAPES[type(self)] = shape
        return shape

    def ports(self) -> list[Port]:
        return [p for p in (self.input_port, self.output_port) if p is not None]

    def port_at(self, scene_pos: QPointF) -> Port | None:
        """The port whose hit area holds `scene_pos`, if any."""
        local = scene_pos - self.pos()
        for port in (self.output_port, self.input_port):
            if port is not None and port.contains(local):
                return port
        return None

    def port_scene_pos(self, role: str) -> QPointF | None:
        """Scene position of the ``in`` or ``out`` port (None when the node has no such port)."""
        port = self.output_port if role == "out" else self.input_port
        return port.scenePos() if port is not None else None

    def body_rect(self) -> QRectF:
        return QRectF(-self.width / 2, -self.height / 2, self.width, self.height)

    def setPos(self, *args: Any) -> None:
        """Move the node and the ends of its edges. Nodes are moved only through this method (they are
        not ItemIsMovable), which spares a Python `itemChange` call for every change of every item."""
        before = self.pos()
        layer = self.layer
        old_rect = self.sceneBoundingRect() if layer is not None and layer.active else None
        super().setPos(*args)
        if self.pos() != before:
            scene = self.scene()
            # Inside `TopologyScene.deferred_edges` (a layout moves every node) the scene collects the
            # edges and re-routes each once at the end, instead of once per end that moved.
            pending = getattr(scene, "pending_edges", None) if scene is not None else None
            if pending is not None:
                pending.update(dict.fromkeys(self.edges))
            else:
                for edge in self.edges:
                    edge.adjust()
            if layer is not None:
                layer.node_moved(self, old_rect)
            if scene is not None and hasattr(scene, "node_item_moved"):
                scene.node_item_moved(self)

    def set_raised(self, raised: bool) -> None:
        """Selected nodes stack over the others (the scene calls this on selection changes)."""
        self.setZValue(Z_SELECTED_NODE if raised else Z_NODE)
        if self.layer is not None:
            self.layer.node_restyled(self)  # the layer outlines selected blocks

    def hoverEnterEvent(self, event: Any) -> None:
        if not self._tooltip_set:
            self._tooltip_set = True
            self.setToolTip(self.tooltip_text())
        self.hovered = True
        self._update_style()

    def hoverMoveEvent(self, event: Any) -> None:
        self._set_port_under_mouse(self.port_at(event.scenePos()))

    def hoverLeaveEvent(self, event: Any) -> None:
        self.hovered = False
        self._set_port_under_mouse(None)
        self._update_style()

    def _set_port_under_mouse(self, port: Port | None) -> None:
        """Port hover: the port grows, an out port shows a cross cursor and its own tooltip."""
        old = self._port_under_mouse
        if port is old:
            return
        if old is not None:
            old.hover = False
        self._port_under_mouse = port
        if port is not None:
            port.hover = True
        if port is not None and port.role == "out":
            self.setCursor(Qt.CursorShape.CrossCursor)
            self.setToolTip(port.tooltip())
        else:
            self.unsetCursor()
            if self._tooltip_set:
                self.setToolTip(self.tooltip_text())
        self.update()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = Theme.current()
        selected = self.isSelected()
        if option.levelOfDetailFromTransform(painter.worldTransform()) < LOD_SIMPLE:
            # Zoomed out: a plain aliased block in the node's colour, no text, badges or ports.
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            painter.setPen(theme.selection_pen if selected else theme.no_pen)
            painter.setBrush(self._accent)
            painter.drawRect(self.body_rect())
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.highlight_order is not None:
            painter.setPen(theme.highlight_glow_pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(self._body)
        if selected:
            painter.setPen(theme.selection_glow_pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(self._body)
        painter.setPen(self._outline_pen)
        painter.setBrush(self._fill)
        painter.drawPath(self._body)
        if selected:
            painter.setPen(theme.selection_pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(self._body)
        self._paint_glyph(painter, theme)
        self._paint_text(painter, theme)
        self._paint_badges(painter, theme)
        self._paint_markers(painter, theme)
        for port in (self.input_port, self.output_port):
            if port is not None:
                port.paint_on_node(painter, theme)

    def _text_left(self) -> float:
        return -self.width / 2 + GLYPH_SIZE + 20

    def _text_right(self) -> float:
        return self.width / 2 - 12

    def _paint_text(self, painter: QPainter, theme: Theme) -> None:
        left = self._text_left()
        right = self._text_right()
        title, subtitle = self.elided_text()
        if subtitle:
            title_rect = QRectF(left, -self.height / 2 + 6, right - left, self.height / 2 - 4)
            sub_rect = QRectF(left, 1, right - left, self.height / 2 - 7)
            painter.setFont(theme.subtitle_font)
            painter.setPen(theme.muted_pen)
            painter.drawText(sub_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, subtitle)
            painter.setFont(theme.title_font)
            painter.setPen(theme.text_pen)
            painter.drawText(title_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, title)
        else:
            rect = QRectF(left, -self.height / 2, right - left, self.height)
            painter.setFont(theme.title_font)
            painter.setPen(theme.text_pen)
            painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)

    def _paint_badges(self, painter: QPainter, theme: Theme) -> None:
        if not self._badge_rects:
            return
        painter.setFont(theme.badge_font)
        painter.setBrush(theme.label_brush)
        for rect, text, pen in self._badge_rects:
            painter.setPen(pen)
            painter.drawRoundedRect(rect, BADGE_HEIGHT / 2, BADGE_HEIGHT / 2)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_markers(self, painter: QPainter, theme: Theme) -> None:
        r = 8.0
        if self.severity is not None:
            center = QPointF(self.width / 2 - 6, -self.height / 2 + 2)
            painter.setPen(theme.no_pen)
            painter.setBrush(theme.severity[self.severity])
            painter.drawEllipse(center, r, r)
            painter.setPen(theme.white_pen)
            painter.setFont(theme.badge_font)
            mark = "i" if self.severity == "info" else "!"
            painter.drawText(
                QRectF(center.x() - r, center.y() - r, 2 * r, 2 * r), Qt.AlignmentFlag.AlignCenter, mark
            )
        if self.highlight_order is not None:
            center = QPointF(-self.width / 2 + 6, -self.height / 2 + 2)
            painter.setPen(theme.no_pen)
            painter.setBrush(theme.highlight)
            painter.drawEllipse(center, r + 1, r + 1)
            painter.setPen(theme.black_pen)
            painter.setFont(theme.badge_font)
            rect = QRectF(center.x() - r, center.y() - r, 2 * r, 2 * r)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(self.highlight_order))

    # -- subclass hooks ----------------------------------------------------------------------
    def _body_path(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.body_rect(), 10, 10)
        return path

    def _glyph_center(self) -> QPointF:
        return QPointF(-self.width / 2 + 10 + GLYPH_SIZE / 2, 0)

    def _paint_glyph(self, painter: QPainter, theme: Theme) -> None:
        painter.setPen(theme.no_pen)
        painter.setBrush(self._accent)
        painter.drawEllipse(self._glyph_center(), GLYPH_SIZE / 2, GLYPH_SIZE / 2)
