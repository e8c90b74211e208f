"""Edges of the canvas: `BindingEdge` (a model binding, selectable, labelled with its routing key or
header match) and `DerivedEdge` (drawn from a node's field: dead-letter exchange, alternate exchange,
producer target, consumer source, consumer-group subscription).

Owns: `EdgeItem`, `BindingEdge`, `DerivedEdge`, `binding_label`. Edges run from the source's output port
to the destination's input port as a smooth cubic curve with an arrow head and follow their nodes live
(`NodeItem.itemChange` calls `adjust`). Draws the model only. Imports PySide6 and mqstudio.core.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
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

ARROW_LENGTH = 10.0
ARROW_WIDTH = 5.0


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


class EdgeItem(QGraphicsItem):
    """A curve from `source`'s output port to `dest`'s input port."""

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
        self._path = QPainterPath()
        self._arrow = QPolygonF()
        self._label_rect = QRectF()
        self._elided_label = ""
        self._bounds = QRectF()
        self._shape: QPainterPath | None = None
        self._pen = QPen()
        self._arrow_brush = QBrush()
        self.setAcceptHoverEvents(True)
        self.setZValue(Z_EDGE)

    # -- geometry ----------------------------------------------------------------------------
    def set_label(self, text: str) -> None:
        self.label = text
        metrics = Theme.current().label_metrics
        self._elided_label = metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, LABEL_MAX_WIDTH)
        self.adjust()

    def adjust(self) -> None:
        """Recompute the curve from the nodes' current positions (called while nodes move)."""
        self.prepareGeometryChange()
        p1 = self.source.output_pos()
        p2 = self.dest.input_pos() - QPointF(PORT_RADIUS + 1, 0)
        dx = p2.x() - p1.x()
        path = QPainterPath(p1)
        if dx >= 40:
            bend = max(dx * 0.5, 40.0)
            path.cubicTo(QPointF(p1.x() + bend, p1.y()), QPointF(p2.x() - bend, p2.y()), p2)
        else:
            # A backward edge loops out below both nodes instead of cutting across them.
            low = max(p1.y(), p2.y()) + max(self.source.height, self.dest.height) / 2 + 36
            r = 36.0
            path.cubicTo(
                QPointF(p1.x() + r * 1.6, p1.y()), QPointF(p1.x() + r * 1.6, low), QPointF(p1.x(), low)
            )
            path.lineTo(QPointF(p2.x(), low))
            path.cubicTo(QPointF(p2.x() - r * 1.6, low), QPointF(p2.x() - r * 1.6, p2.y()), p2)
        self._path = path
        self._arrow = QPolygonF(
            [
                p2,
                QPointF(p2.x() - ARROW_LENGTH, p2.y() - ARROW_WIDTH),
                QPointF(p2.x() - ARROW_LENGTH, p2.y() + ARROW_WIDTH),
            ]
        )
        bounds = path.controlPointRect().united(self._arrow.boundingRect())
        if self._elided_label:
            metrics = Theme.current().label_metrics
            mid = path.pointAtPercent(0.5)
            width = metrics.horizontalAdvance(self._elided_label) + 10
            height = metrics.height() + 2
            self._label_rect = QRectF(mid.x() - width / 2, mid.y() - height / 2, width, height)
            bounds = bounds.united(self._label_rect)
        else:
            self._label_rect = QRectF()
        self._bounds = bounds.adjusted(-6, -6, 6, 6)
        self._shape = None

    def detach(self) -> None:
        for node in (self.source, self.dest):
            if self in node.edges:
                node.edges.remove(self)

    def path(self) -> QPainterPath:
        return self._path

    def midpoint(self) -> QPointF:
        return self._path.pointAtPercent(0.5)

    # -- states ------------------------------------------------------------------------------
    def set_highlighted(self, on: bool) -> None:
        if on != self.highlighted:
            self.highlighted = on
            self.update_style()

    def set_severity(self, severity: str | None) -> None:
        self.severity = severity
        self.update_style()

    def base_color(self, theme: Theme) -> QColor:
        return theme.edge

    def update_style(self) -> None:
        theme = Theme.current()
        color = self.base_color(theme)
        width = self.base_width()
        if self.severity is not None:
            color = theme.severity[self.severity]
        if self.isSelected():
            color, width = theme.selection, width + 1.0
        if self.highlighted:
            color, width = theme.highlight, width + 2.0
        elif self._hover:
            width += 1.0
        pen = QPen(color, width, self.pen_style(), Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        self._pen = pen
        self._arrow_brush = QBrush(color)
        self.update()

    def base_width(self) -> float:
        return 1.6

    def pen_style(self) -> Qt.PenStyle:
        return Qt.PenStyle.SolidLine

    # -- QGraphicsItem -----------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10)
            shape = stroker.createStroke(self._path)
            if not self._label_rect.isNull():
                shape.addRect(self._label_rect)
            self._shape = shape
        return self._shape

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.update_style()
        return super().itemChange(change, value)

    def hoverEnterEvent(self, event: Any) -> None:
        self._hover = True
        self.update_style()

    def hoverLeaveEvent(self, event: Any) -> None:
        self._hover = False
        self.update_style()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = Theme.current()
        painter.setPen(self._pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < LOD_SIMPLE:
            painter.drawPath(self._path)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.drawPath(self._path)
        painter.setPen(theme.no_pen)
        painter.setBrush(self._arrow_brush)
        painter.drawPolygon(self._arrow)
        if self._elided_label:
            painter.setBrush(theme.label_brush)
            painter.setPen(self._label_pen(theme))
            painter.drawRoundedRect(self._label_rect, 4, 4)
            painter.setFont(theme.label_font)
            painter.setPen(theme.text_pen)
            painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self._elided_label)

    def _label_pen(self, theme: Theme) -> QPen:
        return theme.no_pen


class BindingEdge(EdgeItem):
    """A model binding; selectable (Delete removes it with `Unbind`)."""

    def __init__(self, binding: Binding, source: NodeItem, dest: NodeItem) -> None:
        super().__init__(source, dest)
        self.binding_id = binding.id
        self.exchange_to_exchange = False
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)

    def update_from(self, binding: Binding, source: Any, dest: Any) -> None:
        self.exchange_to_exchange = isinstance(dest, Exchange)
        label = binding_label(binding, source)
        lines = [f"<b>binding</b> {source.name} → {dest.name}", f"routing key: {binding.routing_key!r}"]
        lines += [f"{k} = {v!r}" for k, v in binding.arguments.items()]
        self.setToolTip("<br>".join(lines))
        self.set_label(label)
        self.update_style()

    def base_color(self, theme: Theme) -> QColor:
        return theme.accent_for("exchange-binding") if self.exchange_to_exchange else theme.edge

    def base_width(self) -> float:
        return 2.2 if self.exchange_to_exchange else 1.6

    def pen_style(self) -> Qt.PenStyle:
        return Qt.PenStyle.SolidLine


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
        self.setToolTip(f"{tips[kind]} {dest.title}")
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
        return 1.6 if self.kind in ("dead-letter", "alternate") else 1.2

    def pen_style(self) -> Qt.PenStyle:
        if self.kind in ("dead-letter", "alternate"):
            return Qt.PenStyle.DashLine
        return Qt.PenStyle.DotLine

    def _label_pen(self, theme: Theme) -> QPen:
        return self._pen
