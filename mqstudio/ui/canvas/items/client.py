"""Graphics items of simulated clients: `ProducerItem` (publishes to an exchange or topic) and
`ConsumerItem` (consumes from a queue or consumer group). Their target/source is drawn by the scene as
a derived edge. Draws the model only; fields are read with `getattr` so that partial models still draw.
Imports PySide6 and mqstudio.core.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath

from mqstudio.ui.canvas.constants import CLIENT_HEIGHT, CLIENT_WIDTH, GLYPH_SIZE, Theme
from mqstudio.ui.canvas.items.node import Badge, NodeItem, Tooltip, arguments_tooltip


@cache
def client_glyph(role: str) -> QPainterPath:
    path = QPainterPath()
    if role == "producer":  # a message leaving: envelope with an arrow
        path.moveTo(-7, -4)
        path.lineTo(1, -4)
        path.lineTo(1, 4)
        path.lineTo(-7, 4)
        path.closeSubpath()
        path.moveTo(-7, -4)
        path.lineTo(-3, 0)
        path.lineTo(1, -4)
        path.moveTo(3, 0)
        path.lineTo(8, 0)
        path.moveTo(5.5, -2.5)
        path.lineTo(8, 0)
        path.lineTo(5.5, 2.5)
    else:  # a message arriving into a tray
        path.moveTo(-8, 0)
        path.lineTo(-2, 0)
        path.moveTo(-4.5, -2.5)
        path.lineTo(-2, 0)
        path.lineTo(-4.5, 2.5)
        path.moveTo(1, -5)
        path.lineTo(1, 5)
        path.lineTo(8, 5)
        path.lineTo(8, -5)
    return path


def _fmt(value: Any, unit: str = "") -> str:
    if isinstance(value, float):
        return f"{value:g}{unit}"
    return f"{value}{unit}"


class _ClientItem(NodeItem):
    width = CLIENT_WIDTH
    height = CLIENT_HEIGHT
    role = "producer"
    running = False
    running_text = ""

    def set_running(self, running: bool, text: str = "") -> None:
        """The traffic generator runs this client (`mqstudio.ui.traffic`): a green pill on the top edge
        with `text` (e.g. ``1,234 sent``). Drawing only; the model is untouched."""
        if (running, text) != (self.running, self.running_text):
            self.running, self.running_text = running, text
            self.update()

    def _paint_markers(self, painter: QPainter, theme: Theme) -> None:
        super()._paint_markers(painter, theme)
        if not self.running:
            return
        metrics = theme.badge_metrics
        label = "\u25b6 " + (self.running_text or "running")
        label = metrics.elidedText(label, Qt.TextElideMode.ElideRight, self.width - 36)
        width = min(self.width - 24, metrics.horizontalAdvance(label) + 12)
        rect = QRectF(self.width / 2 - 10 - width, -self.height / 2 - 7, width, 14)
        painter.setPen(theme.no_pen)
        painter.setBrush(theme.valid)
        painter.drawRoundedRect(rect, 7, 7)
        painter.setPen(theme.white_pen)
        painter.setFont(theme.badge_font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)

    def _body_path(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.body_rect(), 8, 8)
        return path

    def _glyph_center(self) -> QPointF:
        return QPointF(-self.width / 2 + 8 + GLYPH_SIZE / 2, 0)

    def _text_left(self) -> float:
        return -self.width / 2 + GLYPH_SIZE + 16

    def _paint_glyph(self, painter: QPainter, theme: Theme) -> None:
        center = self._glyph_center()
        painter.setPen(theme.no_pen)
        painter.setBrush(self._accent)
        half = GLYPH_SIZE / 2
        painter.drawRoundedRect(QRectF(center.x() - half, center.y() - half, GLYPH_SIZE, GLYPH_SIZE), 7, 7)
        painter.setPen(theme.glyph_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.translate(center)
        painter.drawPath(client_glyph(self.role))
        painter.translate(-center)


class ProducerItem(_ClientItem):
    has_input = False
    role = "producer"

    def describe(self, node: Any) -> tuple[str, str, str, list[Badge], Tooltip]:
        rate = getattr(node, "rate", None)
        key = getattr(node, "routing_key", "") or ""
        parts = [f"{_fmt(rate)} msg/s" if rate is not None else "producer"]
        if key:
            parts.append(f"key {key}")
        headers = getattr(node, "headers", None) or {}
        badges = (
            [Badge(f"{len(headers)} header{'s' if len(headers) != 1 else ''}", "headers")] if headers else []
        )
        rows = [("publishes to", getattr(node, "target", "") or "—"), ("routing key", key), ("rate", rate)]
        tooltip = arguments_tooltip(f"producer {node.name}", rows, dict(headers))
        return node.name, " · ".join(parts), "producer", badges, tooltip


class ConsumerItem(_ClientItem):
    has_output = False
    role = "consumer"

    def describe(self, node: Any) -> tuple[str, str, str, list[Badge], Tooltip]:
        prefetch = getattr(node, "prefetch", None)
        processing = getattr(node, "processing_ms", None)
        failure = getattr(node, "failure_rate", None)
        parts = []
        if prefetch is not None:
            parts.append(f"prefetch {prefetch}")
        if processing is not None:
            parts.append(f"{_fmt(processing)} ms")
        badges: list[Badge] = []
        if isinstance(failure, int | float) and failure > 0:
            badges.append(Badge(f"fails {failure * 100:g}%", "error"))
        rows = [
            ("consumes from", getattr(node, "source", "") or "—"),
            ("prefetch", prefetch),
            ("processing", f"{processing} ms"),
            ("failure rate", failure),
        ]
        tooltip = arguments_tooltip(f"consumer {node.name}", rows, {})
        return node.name, " · ".join(parts) or "consumer", "consumer", badges, tooltip
