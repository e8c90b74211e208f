"""Graphics item of a queue: a rounded "pipe" with message slots, a classic/quorum/stream marker and
badges for the arguments that change its behaviour (DLX, TTL, max-length, overflow, priority, limit).

Owns: `QueueItem`, `queue_badges`. Draws the model only. Imports PySide6 and mqstudio.core.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter, QPainterPath

from mqstudio.core.model import Queue, QueueType
from mqstudio.ui.canvas.constants import GLYPH_SIZE, QUEUE_HEIGHT, Theme
from mqstudio.ui.canvas.items.node import Badge, NodeItem, Tooltip, arguments_tooltip, format_duration

_OVERFLOW = {"reject-publish": "reject", "reject-publish-dlx": "reject→DLX", "drop-head": "drop-head"}


def _count(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000:
        return f"{value / 1000:g}k"
    return str(value)


def queue_badges(queue: Queue) -> list[Badge]:
    """The key arguments of a queue as short badges, most consequential first."""
    args = queue.arguments
    badges: list[Badge] = []
    if queue.dead_letter_exchange is not None:
        badges.append(Badge("DLX", "dead-letter"))
    if "x-message-ttl" in args:
        badges.append(Badge(f"TTL {format_duration(args['x-message-ttl'])}", "x-delayed-message"))
    if "x-expires" in args:
        badges.append(Badge(f"expires {format_duration(args['x-expires'])}", ""))
    if "x-max-length" in args:
        badges.append(Badge(f"max {_count(args['x-max-length'])}", "headers"))
    if "x-max-length-bytes" in args:
        badges.append(Badge(f"max {_count(args['x-max-length-bytes'])}B", "headers"))
    if "x-overflow" in args:
        badges.append(Badge(_OVERFLOW.get(str(args["x-overflow"]), str(args["x-overflow"])), "headers"))
    if "x-max-priority" in args:
        badges.append(Badge(f"prio {args['x-max-priority']}", "fanout"))
    if "x-delivery-limit" in args:
        badges.append(Badge(f"limit {args['x-delivery-limit']}", "quorum"))
    if args.get("x-single-active-consumer") is True:
        badges.append(Badge("SAC", ""))
    return badges


class QueueItem(NodeItem):
    height = QUEUE_HEIGHT

    def describe(self, node: Queue) -> tuple[str, str, str, list[Badge], Tooltip]:
        kind = node.queue_type.value
        flags = [f"{kind} queue"]
        if node.exclusive:
            flags.append("exclusive")
        if not node.durable:
            flags.append("transient")
        if node.auto_delete:
            flags.append("auto-delete")
        rows = [
            ("type", kind),
            ("vhost", node.vhost),
            ("durable", node.durable),
            ("exclusive", node.exclusive),
            ("auto-delete", node.auto_delete),
        ]
        tooltip = arguments_tooltip(f"queue {node.name}", rows, dict(node.arguments))
        return node.name, " · ".join(flags), kind, queue_badges(node), tooltip

    def _body_path(self) -> QPainterPath:
        path = QPainterPath()
        r = self.height / 2
        path.addRoundedRect(self.body_rect(), r, r)
        return path

    def _glyph_center(self) -> QPointF:
        return QPointF(-self.width / 2 + 8 + GLYPH_SIZE / 2, 0)

    def _text_left(self) -> float:
        return -self.width / 2 + GLYPH_SIZE + 16

    def _text_right(self) -> float:
        return self.width / 2 - 26

    def _paint_glyph(self, painter: QPainter, theme: Theme) -> None:
        center = self._glyph_center()
        painter.setPen(theme.no_pen)
        painter.setBrush(self._accent)
        painter.drawEllipse(center, GLYPH_SIZE / 2, GLYPH_SIZE / 2)
        painter.setBrush(theme.port_brush)
        if self.accent_key == QueueType.QUORUM:  # three replicas
            for dx, dy in ((0.0, -4.5), (-4.5, 3.0), (4.5, 3.0)):
                painter.drawEllipse(center + QPointF(dx, dy), 2.8, 2.8)
        elif self.accent_key == QueueType.STREAM:
            for dy in (-4.0, 0.0, 4.0):
                painter.drawRoundedRect(QRectF(center.x() - 6, center.y() + dy - 1, 12, 2.2), 1, 1)
        else:
            painter.drawEllipse(center, 3.5, 3.5)
        # message slots at the pipe's outlet
        painter.setBrush(self._accent)
        right = self.width / 2 - 14
        for i in range(3):
            painter.setOpacity(0.6 - i * 0.18)
            painter.drawRoundedRect(QRectF(right - i * 5, -8, 3, 16), 1.5, 1.5)
        painter.setOpacity(1.0)
