"""Per-object counters of the embedded broker engine and their plain-data snapshots.

Owns: `QueueCounters` / `ExchangeCounters` (mutable, slotted, bumped on the hot path; `Queue`
inherits `QueueCounters` so a bump is one attribute write) and the frozen snapshot dataclasses
(`QueueStats`, `ExchangeStats`, `VHostStats`, `BrokerStats`) that GUIs and the metrics layer read.
Snapshots are plain data: no references back into live engine objects.
Must not import anything outside the stdlib.

Counter meanings (the names follow the RabbitMQ management API where one exists):
- exchange `published_in`: messages that entered the exchange (client publish, dead-letter
  republish, arrival over an exchange-to-exchange binding); `published_out`: of those, how many the
  exchange routed to at least one destination; `unroutable`: publishes that reached no queue at all.
- queue `published`: messages the queue accepted; `delivered`: deliveries to consumers and
  basic.get (redeliveries included); `redelivered`: the subset flagged redelivered; `acked`;
  `rejected`: nack/reject calls' messages; `expired`: messages removed by TTL;
  `dead_lettered[reason]`: messages republished to the queue's dead-letter exchange;
  `dropped[cause]`: messages that left the queue for no queue at all: the dead-letter reason when
  the queue has no DLX, "dlx_missing" when the DLX does not exist (RabbitMQ drops silently),
  "unroutable" when the DLX routed nowhere, "cycle" per target queue skipped by cycle detection,
  "overflow" for reject-publish refusals.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class QueueCounters:
    """A queue's event counters. `published` is not here: `Queue` derives it from its arrival
    sequence number, which it increments for every accepted message anyway."""

    __slots__ = (
        "acked",
        "dead_lettered",
        "delivered",
        "dropped",
        "expired",
        "redelivered",
        "rejected",
    )

    def __init__(self) -> None:
        self.delivered = 0
        self.redelivered = 0
        self.acked = 0
        self.rejected = 0
        self.expired = 0
        self.dead_lettered: dict[str, int] = {}
        self.dropped: dict[str, int] = {}

    def count_dead_lettered(self, reason: str) -> None:
        self.dead_lettered[reason] = self.dead_lettered.get(reason, 0) + 1

    def count_dropped(self, cause: str, n: int = 1) -> None:
        self.dropped[cause] = self.dropped.get(cause, 0) + n


class ExchangeCounters:
    __slots__ = ("published_in", "published_out", "unroutable")

    def __init__(self) -> None:
        self.published_in = 0
        self.published_out = 0
        self.unroutable = 0


@dataclass(frozen=True, slots=True)
class ExchangeStats:
    vhost: str
    name: str
    type: str
    published_in: int
    published_out: int
    unroutable: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    vhost: str
    name: str
    ready: int
    unacked: int
    consumers: int
    published: int
    delivered: int
    redelivered: int
    acked: int
    rejected: int
    expired: int
    dead_lettered: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return self.ready + self.unacked

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def dead_lettered_total(self) -> int:
        return sum(self.dead_lettered.values())


@dataclass(frozen=True, slots=True)
class VHostStats:
    name: str
    exchanges: tuple[ExchangeStats, ...]
    queues: tuple[QueueStats, ...]
    delayed: int


@dataclass(frozen=True, slots=True)
class BrokerStats:
    """Whole-broker snapshot; totals are sums over every vhost's queues and exchanges."""

    time_ms: int
    vhosts: tuple[VHostStats, ...]
    published: int
    delivered: int
    acked: int
    ready: int
    unacked: int
    consumers: int
    unroutable: int
    dead_lettered: int
    dropped: int
    expired: int

    def queue(self, name: str, vhost: str = "/") -> QueueStats:
        for v in self.vhosts:
            if v.name == vhost:
                for q in v.queues:
                    if q.name == name:
                        return q
        raise KeyError(f"{vhost}{name}")

    def exchange(self, name: str, vhost: str = "/") -> ExchangeStats:
        for v in self.vhosts:
            if v.name == vhost:
                for x in v.exchanges:
                    if x.name == name:
                        return x
        raise KeyError(f"{vhost}{name}")


def queue_snapshot(
    vhost: str,
    name: str,
    counters: QueueCounters,
    *,
    published: int,
    ready: int,
    unacked: int,
    consumers: int,
) -> QueueStats:
    c = counters
    return QueueStats(
        vhost=vhost,
        name=name,
        ready=ready,
        unacked=unacked,
        consumers=consumers,
        published=published,
        delivered=c.delivered,
        redelivered=c.redelivered,
        acked=c.acked,
        rejected=c.rejected,
        expired=c.expired,
        dead_lettered=dict(c.dead_lettered),
        dropped=dict(c.dropped),
    )


def exchange_snapshot(vhost: str, name: str, type_: str, counters: ExchangeCounters) -> ExchangeStats:
    return ExchangeStats(
        vhost=vhost,
        name=name,
        type=type_,
        published_in=counters.published_in,
        published_out=counters.published_out,
        unroutable=counters.unroutable,
    )


def broker_snapshot(time_ms: int, vhosts: tuple[VHostStats, ...]) -> BrokerStats:
    queues = [q for v in vhosts for q in v.queues]
    exchanges = [x for v in vhosts for x in v.exchanges]
    return BrokerStats(
        time_ms=time_ms,
        vhosts=vhosts,
        published=sum(q.published for q in queues),
        delivered=sum(q.delivered for q in queues),
        acked=sum(q.acked for q in queues),
        ready=sum(q.ready for q in queues),
        unacked=sum(q.unacked for q in queues),
        consumers=sum(q.consumers for q in queues),
        unroutable=sum(x.unroutable for x in exchanges),
        dead_lettered=sum(q.dead_lettered_total for q in queues),
        dropped=sum(q.dropped_total for q in queues),
        expired=sum(q.expired for q in queues),
    )
