"""Broker-agnostic statistics snapshots: what every backend's `stats()` returns.

Owns: `ObjectStats`, `Snapshot`. Counters are cumulative since some origin the backend chooses (rates
are computed client-side from two snapshots), gauges are instantaneous. Stdlib only; no Qt, no numpy
(the UI keeps its own ring buffers).

Counter names (use these where the broker has them): ``published``, ``routed``, ``unroutable``,
``delivered``, ``acked``, ``redelivered``, ``dead_lettered`` (and ``dead_lettered.<reason>``),
``expired``, ``dropped``, ``produced`` (Kafka). Gauge names: ``ready``, ``unacked``, ``consumers``,
``lag`` (Kafka group/partition), ``end_offset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ObjectStats:
    """Statistics of one broker object: ``kind`` is exchange/queue/topic/consumer_group/broker."""

    kind: str
    name: str
    vhost: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.vhost, self.name)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """All objects' statistics at `timestamp` (seconds since the epoch, the sampler's clock)."""

    timestamp: float
    objects: tuple[ObjectStats, ...] = ()

    def get(self, kind: str, name: str, vhost: str = "") -> ObjectStats | None:
        return next((o for o in self.objects if o.key == (kind, vhost, name)), None)
