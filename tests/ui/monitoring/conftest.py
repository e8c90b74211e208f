"""Monitoring test helpers: a hand-fed sampler stand-in and snapshot builders."""

from __future__ import annotations

import threading

from mqstudio.core.metrics import ObjectStats, Snapshot


class FedSampler:
    """Offers snapshots the way `Sampler` does (`since`, `latest`, `error`), fed by the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[int, Snapshot]] = []
        self.error = ""

    def push(self, snapshot: Snapshot) -> None:
        with self._lock:
            self.items.append((len(self.items) + 1, snapshot))

    def since(self, sequence: int) -> list[tuple[int, Snapshot]]:
        with self._lock:
            return [item for item in self.items if item[0] > sequence]

    @property
    def latest(self) -> Snapshot | None:
        return self.items[-1][1] if self.items else None

    @property
    def sequence(self) -> int:
        return len(self.items)


def queue_stats(name: str, *, vhost: str = "/", ready: float = 0, unacked: float = 0, consumers: float = 0,
                **counters: int) -> ObjectStats:
    return ObjectStats("queue", name, vhost, counters=dict(counters),
                       gauges={"ready": ready, "unacked": unacked, "consumers": consumers})
