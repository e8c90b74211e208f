"""Time series of live statistics: numpy ring buffers at 1 s resolution, and what they tell.

Owns: `object_key_for` (model object → statistics key), `SeriesStore` (one shared time axis and one
value ring per series, ≥ 1 hour by default, wrap-around, `window(key, seconds)` as views without
copying), `SnapshotRecorder` (snapshots → per-second rates of counters and gauge values, fed into a
store), `trend` (least-squares slope) and `time_to_drain`.

Every ring is stored twice in a row (``[0, cap)`` and again at ``[cap, 2 cap)``), so the latest `n`
samples are always one contiguous slice: a window is a view, never a copy, even across the
wrap-around. Views stay valid until the next `append` (which may overwrite the oldest slot of a full
ring): read them, hand them to ``setData``, then append. Series that have only ever been 0 are not
allocated (most redelivered/unroutable/dead-letter series stay 0); their windows are views of one
shared read-only zero array.

Imports numpy, mqstudio.core and mqstudio.runtime; no Qt (the panel and overlays draw).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from mqstudio.core.metrics import Snapshot
from mqstudio.core.model import Binding, Consumer, ConsumerGroup, Exchange, Producer, Queue, Topic
from mqstudio.runtime.sampler import rates

__all__ = [
    "GAUGES",
    "ObjectKey",
    "SeriesKey",
    "SeriesStore",
    "SnapshotRecorder",
    "object_key_for",
    "time_to_drain",
    "trend",
]

ObjectKey = tuple[str, str, str]
"""A statistics object: ``(kind, vhost, name)`` as in `mqstudio.core.metrics.ObjectStats.key`."""
SeriesKey = tuple[str, str, str, str]
"""``(kind, vhost, name, metric)``: metric is a counter name (plotted as a per-second rate) or a gauge."""

Array = npt.NDArray[np.float64]
HOUR = 3600
GAUGES = ("ready", "unacked", "consumers", "lag")
"""Gauges kept as series (per-partition lag, offsets and partition counts are not)."""


class SeriesStore:
    """Ring buffers of `capacity` samples, one sample per `resolution_s` at most.

    A sample in the same resolution slot as the previous one replaces it. All series share one time
    axis: a series missing from a sample gets 0 there.
    """

    def __init__(self, capacity: int = HOUR, resolution_s: float = 1.0) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.resolution_s = resolution_s
        self._t: Array = np.zeros(2 * capacity)
        self._series: dict[SeriesKey, Array] = {}
        self._seen: dict[SeriesKey, None] = {}  # insertion-ordered set of every key ever appended
        self._zeros: Array = np.zeros(2 * capacity)
        self._zeros.flags.writeable = False
        self._head = -1  # index in [0, capacity) of the latest sample
        self._count = 0
        self.version = 0  # grows on every append: readers redraw only when it moved

    # -- writing -----------------------------------------------------------------------------------
    def append(self, t: float, values: Mapping[SeriesKey, float]) -> None:
        """Add the sample at time `t` (seconds, increasing): `values` by key, absent keys are 0."""
        cap, res = self.capacity, self.resolution_s
        if self._count and math.floor(t / res) <= math.floor(self.last_time / res):
            i = self._head  # same slot: the later sample wins
        else:
            i = (self._head + 1) % cap
            self._head = i
            self._count = min(cap, self._count + 1)
        self._t[i] = self._t[i + cap] = t
        for key, value in values.items():
            if key not in self._series:
                self._seen.setdefault(key)
                if value == 0:
                    continue
                self._series[key] = np.zeros(2 * cap)
        for key, ring in self._series.items():
            ring[i] = ring[i + cap] = values.get(key, 0.0)
        self.version += 1

    def clear(self) -> None:
        self._series.clear()
        self._seen.clear()
        self._head, self._count = -1, 0
        self.version += 1

    # -- reading -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Samples stored (at most `capacity`)."""
        return self._count

    def __contains__(self, key: object) -> bool:
        return key in self._seen

    @property
    def key_count(self) -> int:
        """How many keys were ever appended (cheap: readers rebuild their curve set when it grows)."""
        return len(self._seen)

    def keys(self) -> list[SeriesKey]:
        """Every key ever appended, in first-seen order."""
        return list(self._seen)

    @property
    def last_time(self) -> float:
        return float(self._t[self._head]) if self._count else 0.0

    def _span(self, seconds: float | None) -> slice:
        if not self._count:
            return slice(0, 0)
        end = self._head + self.capacity + 1
        start = end - self._count
        if seconds is not None:
            times = self._t[start:end]
            start += int(np.searchsorted(times, self.last_time - seconds, side="left"))
        return slice(start, end)

    def times(self, seconds: float | None = None) -> Array:
        """Sample times of the last `seconds` (all when None), oldest first: a view."""
        return self._t[self._span(seconds)]

    def window(self, key: SeriesKey, seconds: float | None = None) -> tuple[Array, Array]:
        """(t, y) of `key` over the last `seconds` before the latest sample: views, valid until the
        next `append`. A key never seen, or only ever 0, gives zeros."""
        span = self._span(seconds)
        ring = self._series.get(key)
        return self._t[span], (ring if ring is not None else self._zeros)[span]

    def last(self, key: SeriesKey) -> float:
        ring = self._series.get(key)
        return float(ring[self._head]) if ring is not None and self._count else 0.0

    def mean(self, key: SeriesKey, seconds: float) -> float:
        _, y = self.window(key, seconds)
        return float(y.mean()) if len(y) else 0.0

    def trend(self, key: SeriesKey, seconds: float) -> float:
        """Least-squares slope of `key` over the window, in units per second (0 with < 2 samples)."""
        return trend(*self.window(key, seconds))

    def drain_estimate(self, kind: str, vhost: str, name: str, seconds: float = 60.0) -> float | None:
        """Seconds until queue `name` is empty at its mean rates over the window (consumed: acked,
        else delivered; in: published), 0.0 when empty, None when it is not draining."""
        depth = self.last((kind, vhost, name, "ready"))
        out_key: SeriesKey = (kind, vhost, name, "acked")
        if out_key not in self._series:  # never acked (no-ack consumers): deliveries count
            out_key = (kind, vhost, name, "delivered")
        consume = self.mean(out_key, seconds)
        publish = self.mean((kind, vhost, name, "published"), seconds)
        return time_to_drain(depth, consume, publish)


def trend(t: Array, y: Array) -> float:
    """Least-squares slope dy/dt (units per second); 0.0 with fewer than 2 points or no time spread."""
    if len(t) < 2:
        return 0.0
    tc = t - t.mean()
    denom = float(np.dot(tc, tc))
    if denom == 0:
        return 0.0
    return float(np.dot(tc, y - y.mean()) / denom)


def time_to_drain(depth: float, consume_rate: float, publish_rate: float) -> float | None:
    """``depth / (consume - publish)`` in seconds when the queue is draining; 0.0 when empty; None when
    it holds steady or grows (it never drains at these rates)."""
    if depth <= 0:
        return 0.0
    net = consume_rate - publish_rate
    if net <= 0:
        return None
    return depth / net


class SnapshotRecorder:
    """Feeds snapshots into a `SeriesStore`: counters as per-second rates since the previous snapshot,
    `GAUGES` as they are. Snapshots without a ``broker`` object (RabbitMQ, Kafka) get one summed over
    their queues and topics, so "the whole broker" always has series."""

    def __init__(self, store: SeriesStore | None = None) -> None:
        self.store = store if store is not None else SeriesStore()
        self.previous: Snapshot | None = None

    def feed(self, snapshot: Snapshot) -> bool:
        """Record `snapshot`; False for the first one (no rates yet) or one not newer than the last."""
        prev = self.previous
        if prev is not None and snapshot.timestamp <= prev.timestamp:
            return False
        self.previous = snapshot
        if prev is None:
            return False
        self.store.append(snapshot.timestamp, sample_values(snapshot, rates(prev, snapshot)))
        return True

    def feed_all(self, snapshots: Iterable[Snapshot]) -> int:
        return sum(self.feed(s) for s in snapshots)


def sample_values(
    snapshot: Snapshot, per_second: Mapping[tuple[str, str, str], Mapping[str, float]]
) -> dict[SeriesKey, float]:
    """One sample: rates of every counter and the `GAUGES` of every object (plus a summed broker)."""
    values: dict[SeriesKey, float] = {}
    has_broker = False
    total: dict[str, float] = {}
    for obj in snapshot.objects:
        kind, vhost, name = obj.key
        has_broker = has_broker or kind == "broker"
        for counter, rate in per_second.get(obj.key, {}).items():
            values[(kind, vhost, name, counter)] = rate
            if kind in ("queue", "topic"):
                total[counter] = total.get(counter, 0.0) + rate
        for gauge in GAUGES:
            if gauge in obj.gauges:
                value = float(obj.gauges[gauge])
                values[(kind, vhost, name, gauge)] = value
                if kind in ("queue", "consumer_group"):
                    total[gauge] = total.get(gauge, 0.0) + value
    if not has_broker:
        for metric, value in total.items():
            values[("broker", "", "", metric)] = value
    return values


def object_key_for(node: Any, topology: Any) -> ObjectKey | None:
    """The statistics key of a model object; bindings, producers and consumers stand for the broker
    object they feed (destination, target exchange or topic, source queue or group)."""
    if isinstance(node, Queue):
        return ("queue", node.vhost, node.name)
    if isinstance(node, Exchange):
        return ("exchange", node.vhost, node.name)
    if isinstance(node, Topic):
        return ("topic", "", node.name)
    if isinstance(node, ConsumerGroup):
        return ("consumer_group", "", node.name)
    ref = ""
    if isinstance(node, Binding):
        ref = node.destination
    elif isinstance(node, Producer):
        ref = node.target
    elif isinstance(node, Consumer):
        ref = node.source
    if ref:
        return object_key_for(topology.get(ref), topology)
    return None
