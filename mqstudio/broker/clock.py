"""Time source of the embedded broker engine.

Owns: the `Clock` protocol (`now_ms()`), `SystemClock` (wall clock) and `ManualClock` (tests and
replays advance it explicitly). Every time-based rule of the engine (TTL, x-expires, delayed
messages, x-death timestamps) reads time only through an injected clock, so the engine stays
deterministic and tests never sleep or assert on timing.
Must not import anything outside the stdlib.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Milliseconds since the Unix epoch (x-death `time` fields are derived from it)."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The wall clock. `time.time_ns` rather than `monotonic` because x-death timestamps and the
    AMQP `timestamp` property are absolute times a client reads."""

    __slots__ = ()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to; used by tests so TTL rules run without sleeping."""

    __slots__ = ("_now",)

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        """Move time forward by `ms` (never backwards: the engine's deadlines assume monotonic time)."""
        if ms < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += ms
        return self._now

    def set(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise ValueError("a clock cannot go backwards")
        self._now = now_ms
