"""Graphics item of an exchange: a rounded hexagon with a glyph and colour per exchange type.

Owns: `ExchangeItem`, `exchange_glyph`. Draws the model only. Imports PySide6 and mqstudio.core.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPolygonF

from mqstudio.core.model import Exchange, ExchangeType
from mqstudio.ui.canvas.constants import EXCHANGE_HEIGHT, GLYPH_SIZE, Theme
from mqstudio.ui.canvas.items.node import Badge, NodeItem, Tooltip, arguments_tooltip

_SUBTITLES = {
    "direct": "direct exchange",
    "fanout": "fanout exchange",
    "topic": "topic exchange",
    "headers": "headers exchange",
}


@cache
def exchange_glyph(kind: str) -> QPainterPath:
    """A line drawing (unit: the glyph circle's radius is 14) that says how the exchange routes."""
    path = QPainterPath()
    if kind == ExchangeType.DIRECT:
        path.moveTo(-7, 0)
        path.lineTo(7, 0)
        path.moveTo(2, -5)
        path.lineTo(7, 0)
        path.lineTo(2, 5)
    elif kind == ExchangeType.FANOUT:
        for dy in (-6.0, 0.0, 6.0):
            path.moveTo(-7, 0)
            path.lineTo(6, dy)
        path.addEllipse(QPointF(-7, 0), 1.2, 1.2)
    elif kind == ExchangeType.TOPIC:
        for d in (-2.5, 2.5):
            path.moveTo(d - 1.2, -7)
            path.lineTo(d + 1.2 - 2.4, 7)
            path.moveTo(-7, d)
            path.lineTo(7, d)
    elif kind == ExchangeType.HEADERS:
        for dy in (-5.0, 0.0, 5.0):
            path.moveTo(-6, dy)
            path.lineTo(-3, dy)
            path.moveTo(0, dy)
            path.lineTo(6 if dy != 0 else 3, dy)
    else:  # delayed: a clock
        path.addEllipse(QPointF(0, 0), 7, 7)
        path.moveTo(0, 0)
        path.lineTo(0, -4.5)
        path.moveTo(0, 0)
        path.lineTo(3.5, 2)
    return path


class ExchangeItem(NodeItem):
    height = EXCHANGE_HEIGHT

    def describe(self, node: Exchange) -> tuple[str, str, str, list[Badge], Tooltip]:
        kind = str(node.type)
        if node.type == ExchangeType.DELAYED:
            subtitle = f"delayed → {node.delayed_type or '?'}"
        else:
            subtitle = _SUBTITLES.get(kind, kind)
        if node.internal:
            subtitle += " · internal"
        title = node.name or "(default exchange)"
        badges: list[Badge] = []
        if node.alternate_exchange:
            badges.append(Badge(f"AE {node.alternate_exchange}", "alternate"))
        if not node.durable:
            badges.append(Badge("transient", ""))
        if node.auto_delete:
            badges.append(Badge("auto-delete", ""))
        rows = [
            ("type", kind),
            ("vhost", node.vhost),
            ("durable", node.durable),
            ("auto-delete", node.auto_delete),
            ("internal", node.internal),
        ]
        tooltip = arguments_tooltip(f"exchange {title}", rows, dict(node.arguments))
        return title, subtitle, kind, badges, tooltip

    def _body_path(self) -> QPainterPath:
        w, h = self.width / 2, self.height / 2
        c = 14.0
        polygon = QPolygonF(
            [
                QPointF(-w + c, -h),
                QPointF(w - c, -h),
                QPointF(w, 0),
                QPointF(w - c, h),
                QPointF(-w + c, h),
                QPointF(-w, 0),
            ]
        )
        path = QPainterPath()
        path.addPolygon(polygon)
        path.closeSubpath()
        return path

    def _glyph_center(self) -> QPointF:
        return QPointF(-self.width / 2 + 16 + GLYPH_SIZE / 2, 0)

    def _text_left(self) -> float:
        return -self.width / 2 + GLYPH_SIZE + 26

    def _paint_glyph(self, painter: QPainter, theme: Theme) -> None:
        center = self._glyph_center()
        painter.setPen(theme.no_pen)
        painter.setBrush(self._accent)
        painter.drawEllipse(center, GLYPH_SIZE / 2, GLYPH_SIZE / 2)
        painter.setPen(theme.glyph_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.translate(center)
        painter.drawPath(exchange_glyph(self.accent_key))
        painter.translate(-center)

    def glyph_rect(self) -> QRectF:
        c = self._glyph_center()
        return QRectF(c.x() - GLYPH_SIZE / 2, c.y() - GLYPH_SIZE / 2, GLYPH_SIZE, GLYPH_SIZE)
