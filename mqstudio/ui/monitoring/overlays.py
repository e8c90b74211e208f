"""Live overlays on the topology canvas: traffic on edges, depth and consumers on queues.

Owns: `OverlayController` and `NodeOverlay`. When enabled (View ▸ Live Overlays), a timer reads the
sampler's newest snapshot (never waits on it) and, only when a new one arrived, draws:

* on binding edges, what their destination receives per second (brokers count per queue/exchange, not
  per binding) as a read-out after the label, and up to `OVERLAY_WIDTH` extra thickness on a log scale
  (10k msg/s = full); dead-letter edges show their source queue's dead-letter rate the same way;
* above queues a pill with depth (ready, unacked) and consumers — amber when messages wait with no
  consumer — and a red "DL" marker while the queue dead-letters (inflow > 0 since the last sample);
* above Kafka topics the produce rate, above consumer groups the lag.

Node pills are child items of the canvas items (they move with them and die with them); edges take
the read-out through their additive `EdgeItem.set_overlay` hook. Disabling clears everything.
Imports PySide6, mqstudio.core, mqstudio.runtime and mqstudio.ui.
"""

from __future__ import annotations

import math
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.core.model import ConsumerGroup, Queue, Topic
from mqstudio.runtime.sampler import Rates, Sampler, rates
from mqstudio.ui.canvas.constants import BADGE_HEIGHT, Theme
from mqstudio.ui.canvas.items.node import NodeItem
from mqstudio.ui.monitoring.series import object_key_for

REFRESH_MS = 500
FULL_RATE = 10_000.0  # msg/s drawn at full overlay thickness
_MARKER = "DL"


def _count(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def rate_text(rate: float) -> str:
    """``0.4/s``, ``12/s``, ``1.2k/s``."""
    return f"{rate:.1f}/s" if 0 < rate < 10 else f"{_count(rate)}/s"


def rate_level(rate: float) -> float:
    """0 … 1 on a log scale: 1 msg/s ≈ 0.08, 100 msg/s = 0.5, `FULL_RATE` = 1."""
    if rate <= 0:
        return 0.0
    return min(1.0, math.log10(1 + rate) / math.log10(1 + FULL_RATE))


class NodeOverlay(QGraphicsItem):
    """A pill above a node with a live read-out; `level` is "", "warning" or "error"; `marker` adds the
    red dead-letter marker at its left. Passes mouse presses through to the node."""

    def __init__(self, node: NodeItem) -> None:
        super().__init__(node)
        self.node_item = node
        self.text = ""
        self.level = ""
        self.marker = False
        self._rect = QRectF()
        self._bounds = QRectF()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(5)

    def set(self, text: str, level: str = "", marker: bool = False, tooltip: str = "") -> None:
        if (text, level, marker) == (self.text, self.level, self.marker):
            return
        self.prepareGeometryChange()
        self.text, self.level, self.marker = text, level, marker
        theme = Theme.current()
        width = theme.badge_metrics.horizontalAdvance(text) + 12
        top = -self.node_item.height / 2 - BADGE_HEIGHT - 4
        self._rect = QRectF(-width / 2, top, width, BADGE_HEIGHT)
        self._bounds = self._rect.adjusted(-BADGE_HEIGHT - 6, -2, 2, 2)
        self.setToolTip(tooltip)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self.text:
            return
        theme = Theme.current()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        color = theme.severity.get(self.level) if self.level else None
        painter.setPen(QPen(color if color is not None else theme.muted_text, 1.0))
        painter.setBrush(theme.label_brush)
        radius = BADGE_HEIGHT / 2
        painter.drawRoundedRect(self._rect, radius, radius)
        painter.setFont(theme.badge_font)
        painter.setPen(theme.text_pen)
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)
        if self.marker:
            center = QPointF(self._rect.left() - radius - 2, self._rect.center().y())
            painter.setPen(theme.no_pen)
            painter.setBrush(QBrush(theme.dead_letter))
            painter.drawEllipse(center, radius, radius)
            painter.setPen(QPen(QColor("white")))
            box = QRectF(center.x() - radius, center.y() - radius, 2 * radius, 2 * radius)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, _MARKER)


class OverlayController(QObject):
    """Draws live statistics from `sampler` on `scene` (a `TopologyScene`) while enabled."""

    def __init__(
        self, scene: Any, sampler: Sampler | None = None, *, refresh_ms: int = REFRESH_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent if parent is not None else scene)
        self.scene = scene
        self.sampler = sampler
        self._enabled = False
        self._seq = 0
        self._prev: Snapshot | None = None
        self._overlays: dict[str, NodeOverlay] = {}
        self._edges: list[Any] = []
        self.updates = 0
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, on: bool) -> None:
        self._enabled = bool(on)
        if self._enabled:
            self._seq = 0  # draw the newest snapshot at once
            self.timer.start()
            self.refresh()
        else:
            self.timer.stop()
            self.clear()

    def set_sampler(self, sampler: Sampler | None) -> None:
        if sampler is self.sampler:
            return
        self.sampler = sampler
        self._seq, self._prev = 0, None
        self.clear()

    def overlay_for(self, node_id: str) -> NodeOverlay | None:
        overlay = self._overlays.get(node_id)
        return overlay if overlay is not None and shiboken6.isValid(overlay) else None

    # -- the timer -----------------------------------------------------------------------------
    def refresh(self) -> None:
        sampler = self.sampler
        if not self._enabled or sampler is None:
            return
        items = sampler.since(self._seq)
        if not items:
            return
        self._seq, snapshot = items[-1]
        prev = self._prev if self._prev is not None else (items[-2][1] if len(items) > 1 else None)
        self._prev = snapshot
        self.apply(snapshot, rates(prev, snapshot))

    def apply(self, snapshot: Snapshot, per_second: Rates) -> None:
        """Draw `snapshot` (gauges) and `per_second` (rates) on the scene's items."""
        index = {o.key: o for o in snapshot.objects}
        topology = self.scene.editor.document.topology
        live: set[str] = set()
        for item in self.scene.node_items():
            node = topology.get(item.node_id)
            if not isinstance(node, Queue | Topic | ConsumerGroup):
                continue
            key = object_key_for(node, topology)
            stats = index.get(key) if key is not None else None
            if stats is None or key is None:
                continue
            overlay = self.overlay_for(item.node_id)
            if overlay is None or overlay.node_item is not item:
                overlay = NodeOverlay(item)
                self._overlays[item.node_id] = overlay
            overlay.set(*_describe(stats, per_second.get(key, {})))
            live.add(item.node_id)
        for node_id in [i for i in self._overlays if i not in live]:
            self._drop_overlay(node_id)
        self._clear_edges()
        for edge in self.scene.binding_edges():
            binding = topology.get(edge.binding_id)
            dest = object_key_for(topology.get(binding.destination), topology) if binding else None
            self._set_edge(edge, per_second.get(dest, {}).get("published", 0.0) if dest else 0.0)
        for edge in self.scene.derived_edges():
            if edge.kind == "dead-letter":
                source = object_key_for(topology.get(edge.source.node_id), topology)
                self._set_edge(edge, per_second.get(source, {}).get("dead_lettered", 0.0) if source else 0.0)
        self.updates += 1

    def _set_edge(self, edge: Any, rate: float) -> None:
        if rate > 0:
            edge.set_overlay(rate_text(rate), rate_level(rate))
            self._edges.append(edge)

    # -- clearing ------------------------------------------------------------------------------
    def clear(self) -> None:
        for node_id in list(self._overlays):
            self._drop_overlay(node_id)
        self._clear_edges()

    def _drop_overlay(self, node_id: str) -> None:
        overlay = self._overlays.pop(node_id, None)
        if overlay is not None and shiboken6.isValid(overlay):
            scene = overlay.scene()
            if scene is not None:
                scene.removeItem(overlay)  # also detaches it from its node
            else:
                overlay.setParentItem(None)  # None detaches

    def _clear_edges(self) -> None:
        edges, self._edges = self._edges, []
        for edge in edges:
            if shiboken6.isValid(edge):
                edge.set_overlay("", 0.0)


def _describe(stats: ObjectStats, per_second: dict[str, float]) -> tuple[str, str, bool, str]:
    """(text, level, dead-letter marker, tooltip) of one object's pill."""
    gauges = stats.gauges
    consumers = int(gauges.get("consumers", 0))
    if stats.kind == "topic":
        rate = per_second.get("produced", 0.0)
        return rate_text(rate) + " produced", "", False, f"topic {stats.name}: {rate:.1f} records/s"
    if stats.kind == "consumer_group":
        lag = gauges.get("lag", 0.0)
        level = "warning" if lag > 0 and consumers == 0 else ""
        text = f"lag {_count(lag)} · {consumers} member{'s' if consumers != 1 else ''}"
        return text, level, False, f"group {stats.name}: lag {lag:.0f}, {consumers} members"
    ready, unacked = gauges.get("ready", 0.0), gauges.get("unacked", 0.0)
    parts = [f"{_count(ready)} ready"]
    if unacked:
        parts.append(f"{_count(unacked)} unacked")
    parts.append(f"{consumers} consumer{'s' if consumers != 1 else ''}")
    dead = per_second.get("dead_lettered", 0.0)
    reasons = {k.split(".", 1)[1]: v for k, v in per_second.items() if k.startswith("dead_lettered.") and v}
    tip = [f"queue {stats.name}", f"ready {ready:.0f}, unacked {unacked:.0f}, consumers {consumers}",
           f"in {per_second.get('published', 0.0):.1f}/s, acked {per_second.get('acked', 0.0):.1f}/s"]
    if dead > 0:
        by_reason = ", ".join(f"{r} {rate_text(v)}" for r, v in sorted(reasons.items()))
        tip.append(f"dead-lettering {rate_text(dead)}" + (f" ({by_reason})" if by_reason else ""))
    level = "warning" if ready > 0 and consumers == 0 else ""
    return " · ".join(parts), level, dead > 0, "\n".join(tip)

