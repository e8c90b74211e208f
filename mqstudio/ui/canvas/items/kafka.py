"""Graphics items of Kafka objects: `TopicItem` (a partitioned log) and `GroupItem` (a consumer group).

Owns: those two items. Draws the model only. Imports PySide6 and mqstudio.core.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter, QPainterPath

from mqstudio.core.model import ConsumerGroup, Topic
from mqstudio.ui.canvas.constants import GLYPH_SIZE, KAFKA_HEIGHT, Theme
from mqstudio.ui.canvas.items.node import Badge, NodeItem, Tooltip, arguments_tooltip, format_duration


class TopicItem(NodeItem):
    height = KAFKA_HEIGHT

    def describe(self, node: Topic) -> tuple[str, str, str, list[Badge], Tooltip]:
        plural = "s" if node.partitions != 1 else ""
        subtitle = f"topic · {node.partitions} partition{plural} · rf {node.replication_factor}"
        badges: list[Badge] = []
        policy = node.configs.get("cleanup.policy")
        if policy and "compact" in policy:
            badges.append(Badge("compact", "topic"))
        retention = node.configs.get("retention.ms")
        if retention is not None and retention.lstrip("-").isdigit():
            text = "∞" if int(retention) < 0 else format_duration(int(retention))
            badges.append(Badge(f"retention {text}", "x-delayed-message"))
        rows = [("partitions", node.partitions), ("replication factor", node.replication_factor)]
        tooltip = arguments_tooltip(f"Kafka topic {node.name}", rows, dict(node.configs))
        return node.name, subtitle, "kafka-topic", badges, tooltip

    def _body_path(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.body_rect(), 4, 4)
        return path

    def _paint_glyph(self, painter: QPainter, theme: Theme) -> None:
        c = self._glyph_center()
        painter.setPen(theme.no_pen)
        painter.setBrush(self._accent)
        painter.drawRoundedRect(
            QRectF(c.x() - GLYPH_SIZE / 2, c.y() - GLYPH_SIZE / 2, GLYPH_SIZE, GLYPH_SIZE), 4, 4
        )
        painter.setBrush(theme.port_brush)
        for i, length in enumerate((16.0, 11.0, 14.0)):  # partitions as logs of different lengths
            painter.drawRect(QRectF(c.x() - 8, c.y() - 7 + i * 5.5, length, 3))


class GroupItem(NodeItem):
    height = KAFKA_HEIGHT

    def describe(self, node: ConsumerGroup) -> tuple[str, str, str, list[Badge], Tooltip]:
        count = len(node.topics)
        subtitle = f"consumer group · {count} topic{'s' if count != 1 else ''}"
        tooltip = arguments_tooltip(f"consumer group {node.name}", [("topics", count)], {})
        return node.name, subtitle, "consumer_group", [], tooltip

    def _body_path(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.body_rect(), 14, 14)
        return path

    def _paint_glyph(self, painter: QPainter, theme: Theme) -> None:
        c = self._glyph_center()
        painter.setPen(theme.no_pen)
        painter.setBrush(self._accent)
        painter.drawEllipse(c, GLYPH_SIZE / 2, GLYPH_SIZE / 2)
        painter.setBrush(theme.port_brush)
        for dx, dy in ((-5.0, -3.0), (5.0, -3.0), (0.0, 5.0)):
            painter.drawEllipse(c + QPointF(dx, dy), 3.2, 3.2)
