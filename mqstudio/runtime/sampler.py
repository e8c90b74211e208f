"""Statistics sampling for live monitoring: poll `Backend.stats()` on a worker thread, keep the latest.

Owns: `Sampler` (one daemon thread asking for a `Snapshot` every `interval_s`, keeping the latest one
and a short numbered history that readers pick up with `since`), `rates` (cumulative counters of two
snapshots → per-second rates, counter resets handled) and `SamplerState`.

Readers (the UI's panels and canvas overlays) poll `latest` / `since` from their own timers: a read
takes a lock for a few microseconds and never waits for the broker. The sampler thread is the only
one that waits: for a `BackendSession` it submits ``stats()`` to the session's thread (the backend
stays confined there) and waits for that one call, never queueing a second one behind it, so a slow
broker lowers the sampling rate instead of piling up calls. A plain callable is called on the sampler
thread itself (tests, fault injection, a backend the caller owns).

Qt-free; must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from mqstudio.core.metrics import Snapshot
from mqstudio.runtime.jobs import BackendSession

__all__ = ["Rates", "Sampler", "SamplerState", "StatsSource", "rates"]

log = logging.getLogger(__name__)

StatsSource = BackendSession | Callable[[], Snapshot]
Rates = dict[tuple[str, str, str], dict[str, float]]
"""Per-second rates by object key ``(kind, vhost, name)`` and counter name."""

_POLL = 0.05  # how often a sampler waiting on a session call checks whether it was stopped


def rates(prev: Snapshot | None, cur: Snapshot) -> Rates:
    """Per-second rates of every counter of `cur` since `prev`.

    A counter lower than before means its origin restarted (broker restart, queue re-declared): the
    rate is counted from 0, i.e. ``cur / dt``, never negative. An object or counter missing from `prev`
    appeared in between and is counted from 0 too. No rates without a `prev` or when time did not
    advance (``{}``).
    """
    if prev is None:
        return {}
    dt = cur.timestamp - prev.timestamp
    if dt <= 0:
        return {}
    before = {o.key: o.counters for o in prev.objects}
    out: Rates = {}
    for obj in cur.objects:
        old = before.get(obj.key, {})
        per: dict[str, float] = {}
        for name, value in obj.counters.items():
            delta = value - old.get(name, 0)
            if delta < 0:
                delta = value  # restarted from 0 within this interval
            per[name] = delta / dt
        out[obj.key] = per
    return out


class SamplerState(StrEnum):
    IDLE = "idle"  # not started
    SAMPLING = "sampling"
    FAILING = "failing"  # the last call failed (see `error`); still retrying every interval
    STOPPED = "stopped"  # stopped, or its session was closed


class Sampler:
    """Poll `source` every `interval_s` seconds on a daemon thread.

    `source` is a `BackendSession` (``stats()`` runs on the session's thread) or a callable returning a
    `Snapshot` (called on the sampler's thread). Sampling is at a fixed rate; a call longer than the
    interval delays the next one (no catching up). Failures are kept in `error` and sampling goes on;
    a closed session stops the sampler. `keep` snapshots are kept for `since`.
    """

    def __init__(
        self,
        source: StatsSource,
        interval_s: float = 1.0,
        *,
        keep: int = 64,
        name: str = "mqstudio-sampler",
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.source = source
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._history: deque[tuple[int, Snapshot]] = deque(maxlen=max(1, keep))
        self._sequence = 0
        self._error = ""
        self._state = SamplerState.IDLE
        self._calls = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- readers (any thread; never block on the broker) ---------------------------------------------
    @property
    def latest(self) -> Snapshot | None:
        with self._lock:
            return self._history[-1][1] if self._history else None

    @property
    def sequence(self) -> int:
        """Number of the latest snapshot (0 before the first); grows by one per snapshot."""
        return self._sequence

    def since(self, sequence: int) -> list[tuple[int, Snapshot]]:
        """Snapshots numbered after `sequence`, oldest first (at most `keep` of them)."""
        with self._lock:
            if self._sequence <= sequence:
                return []
            return [item for item in self._history if item[0] > sequence]

    @property
    def error(self) -> str:
        """The last failure as a user-facing line; "" once a call succeeded again."""
        return self._error

    @property
    def state(self) -> SamplerState:
        return self._state

    @property
    def calls(self) -> int:
        """Calls made so far (successful or not)."""
        return self._calls

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- control -----------------------------------------------------------------------------------
    def start(self) -> Sampler:
        """Start the thread; idempotent."""
        with self._lock:
            if self._thread.ident is not None or self._stop.is_set():
                return self
            self._state = SamplerState.SAMPLING
            self._thread.start()
        return self

    def stop(self, timeout: float = 0.0) -> bool:
        """Ask the thread to stop; wait up to `timeout` (0: do not wait, e.g. on the GUI thread: it
        ends after the call in progress). True when the thread has ended."""
        self._stop.set()
        if self._thread.ident is None:
            self._state = SamplerState.STOPPED
            return True
        if timeout > 0:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the sampler thread --------------------------------------------------------------------------
    def _run(self) -> None:
        due = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    snapshot = self._fetch()
                except _SessionClosed:
                    break
                except Exception as exc:  # a failed poll is reported, never fatal
                    self._error = str(exc) or type(exc).__name__
                    self._state = SamplerState.FAILING
                    log.debug("statistics call failed", exc_info=True)
                else:
                    if snapshot is not None:
                        self._record(snapshot)
                due += self.interval_s
                now = time.monotonic()
                due = max(due, now)  # a call longer than the interval: start again from now
                self._stop.wait(due - now)
        finally:
            self._state = SamplerState.STOPPED

    def _record(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._sequence += 1
            self._history.append((self._sequence, snapshot))
        self._error = ""
        self._state = SamplerState.SAMPLING

    def _fetch(self) -> Snapshot | None:
        self._calls += 1
        source = self.source
        if not isinstance(source, BackendSession):
            return source()
        try:
            job = source.call(lambda backend: backend.stats(), title="Statistics")
        except RuntimeError as exc:  # "the backend session is closed"
            raise _SessionClosed from exc
        while not job.wait(_POLL):
            if self._stop.is_set():
                job.cancel()  # still queued: dropped; running: it finishes on the session thread
                return None
        return job.result(0)


class _SessionClosed(Exception):
    pass
