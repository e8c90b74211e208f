"""Jobs on worker threads, and one backend confined to one thread with automatic reconnects.

Owns: `Job` (id, title, state, progress, result or exception, cancellation: a `CancelToken`),
`JobState`, `JobRunner` (a fixed pool of worker threads running submitted callables), `Backoff`
(exponential, capped, jittered), `SessionState` / `SessionStatus` and `BackendSession` (ONE backend
created, connected, used and closed on ONE dedicated thread; calls run in submission order; an
`UnreachableError` drops the connection and reconnects with backoff, reporting each state change).

Threading contract (what `mqstudio.ui.qtbridge` relies on):
* done / state / progress callbacks run on the thread that runs the job (a worker, or the session
  thread). Two exceptions: cancelling a job that has not started settles it at once on the
  cancelling thread, and a done callback added to a settled job runs at once on the adding thread.
  The bridge re-emits every callback as a queued Qt signal, so the thread does not matter to it.
* callbacks must not block; an exception in one is logged and does not affect the job.
* `Job.wait()` / `Job.result()` return once the job has settled *and* its done callbacks have run.

A session never touches a user's document: it only runs the callables it is given.
Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.
"""

from __future__ import annotations

import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from mqstudio.backends.base import Backend, BackendError, CancelledError, UnreachableError

__all__ = [
    "BackendSession",
    "Backoff",
    "Job",
    "JobRunner",
    "JobState",
    "ProgressInfo",
    "SessionState",
    "SessionStatus",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
_ids = itertools.count(1)
_ids_lock = threading.Lock()


def _next_id() -> int:
    with _ids_lock:
        return next(_ids)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    done: int
    total: int
    what: str = ""


def _call_safely(callback: Callable[..., Any], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("job callback %r failed", callback)


class Job(Generic[T]):
    """One unit of work. The callable gets the job itself, so it can report progress and poll
    `cancelled` (the job is a `mqstudio.backends.base.CancelToken`: pass it as ``cancel=job``).

    A callable that raises `CancelledError` after the job was cancelled ends it CANCELLED; one that
    returns normally ends DONE even when cancellation was asked (it finished anyway, e.g. an apply
    reporting how far it got); any other exception ends it FAILED.
    """

    def __init__(self, fn: Callable[[Job[T]], T], title: str) -> None:
        self.id = _next_id()
        self.title = title
        self._fn = fn
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._cancel = threading.Event()
        self._state = JobState.QUEUED
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._progress: ProgressInfo | None = None
        self._done_callbacks: list[Callable[[Job[T]], None]] = []
        self._state_callbacks: list[Callable[[Job[T]], None]] = []
        self._progress_callbacks: list[Callable[[Job[T], ProgressInfo], None]] = []
        self._settling_thread: int | None = None

    def __repr__(self) -> str:
        return f"Job({self.id}, {self.title!r}, {self._state.value})"

    # -- state ------------------------------------------------------------------------------------

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def done(self) -> bool:
        """Settled: done, failed or cancelled."""
        return self._state.finished

    @property
    def last_progress(self) -> ProgressInfo | None:
        return self._progress

    @property
    def error(self) -> str:
        """The exception as a user-facing line ("" when none)."""
        return "" if self._exception is None else str(self._exception) or type(self._exception).__name__

    # -- CancelToken --------------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once cancellation was asked (the `CancelToken` protocol)."""
        return self._cancel.is_set()

    def cancel(self) -> bool:
        """Ask the job to stop. A queued job is settled CANCELLED at once and never runs; a running
        one is told through `cancelled` and stops when its callable looks. False when it had already
        settled."""
        self._cancel.set()
        with self._lock:
            state = self._state
            if state.finished:
                return False
            if state is JobState.QUEUED:
                self._state = JobState.CANCELLED
                self._exception = CancelledError(f"{self.title} was cancelled before it started")
        if state is JobState.QUEUED:
            self._announce()
        return True

    def check_cancelled(self) -> None:
        """Raise `CancelledError` if cancellation was asked (for callables with loops)."""
        if self._cancel.is_set():
            raise CancelledError(f"{self.title} was cancelled")

    # -- progress -----------------------------------------------------------------------------------

    def progress(self, done: int, total: int, what: str = "") -> None:
        """Report progress (a `mqstudio.backends.base.Progress`); callbacks run on this thread."""
        info = ProgressInfo(done, total, what)
        self._progress = info
        for callback in list(self._progress_callbacks):
            _call_safely(callback, self, info)

    # -- callbacks ----------------------------------------------------------------------------------

    def add_done_callback(self, callback: Callable[[Job[T]], None]) -> None:
        """Call `callback(job)` once the job settles (at once, on this thread, if it has)."""
        with self._lock:
            if not self._state.finished:
                self._done_callbacks.append(callback)
                return
        _call_safely(callback, self)

    def add_state_callback(self, callback: Callable[[Job[T]], None]) -> None:
        """Call `callback(job)` on every state change from now on (running, then the final state)."""
        self._state_callbacks.append(callback)

    def add_progress_callback(self, callback: Callable[[Job[T], ProgressInfo], None]) -> None:
        self._progress_callbacks.append(callback)

    # -- results ------------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job settled and its done callbacks ran; False on timeout."""
        if self._settling_thread == threading.get_ident():
            return True  # called from one of its own done callbacks
        return self._settled.wait(timeout)

    def result(self, timeout: float | None = None) -> T:
        """The return value; raises the job's exception, `CancelledError`, or `TimeoutError`."""
        if not self.wait(timeout):
            raise TimeoutError(f"{self.title} did not finish within {timeout} s")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[return-value]  # DONE: the callable's return value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.wait(timeout):
            raise TimeoutError(f"{self.title} did not finish within {timeout} s")
        return self._exception

    # -- running (worker side) ----------------------------------------------------------------------

    def _start(self) -> bool:
        with self._lock:
            if self._state is not JobState.QUEUED:
                return False
            self._state = JobState.RUNNING
        for callback in list(self._state_callbacks):
            _call_safely(callback, self)
        return True

    def run(self) -> None:
        """Run the callable on the calling thread (workers call this); no-op unless queued."""
        if not self._start():
            return
        try:
            value = self._fn(self)
        except CancelledError as exc:
            self._settle(JobState.CANCELLED if self.cancelled else JobState.FAILED, None, exc)
        except Exception as exc:
            self._settle(JobState.FAILED, None, exc)
        else:
            self._settle(JobState.DONE, value, None)

    def fail(self, exc: BaseException) -> None:
        """Settle a job that has not started as FAILED without running it (e.g. not connected)."""
        with self._lock:
            if self._state is not JobState.QUEUED:
                return
            self._state = JobState.FAILED
            self._exception = exc
        self._announce()

    def _settle(self, state: JobState, value: T | None, exc: BaseException | None) -> None:
        with self._lock:
            self._state = state
            self._result = value
            self._exception = exc
        self._announce()

    def _announce(self) -> None:
        """Run the state and done callbacks of a just-settled job, then release waiters."""
        self._settling_thread = threading.get_ident()
        try:
            for callback in list(self._state_callbacks):
                _call_safely(callback, self)
            with self._lock:
                done, self._done_callbacks = self._done_callbacks, []
            for done_callback in done:
                _call_safely(done_callback, self)
        finally:
            self._settling_thread = None
            self._fn = _finished  # drop references the callable holds (backends, documents)
            self._settled.set()


def _finished(job: Job[Any]) -> Any:  # pragma: no cover - never run (jobs run once)
    raise RuntimeError("job already ran")


_STOP = object()


class JobRunner:
    """A fixed pool of `max_workers` worker threads running submitted jobs in submission order
    (several at once). `listener(job)`, if given, is added as a state callback of every job."""

    def __init__(
        self,
        max_workers: int = 4,
        *,
        name: str = "mqstudio-job",
        listener: Callable[[Job[Any]], None] | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._queue: queue.SimpleQueue[Job[Any] | object] = queue.SimpleQueue()
        self._listener = listener
        self._lock = threading.Lock()
        self._active: dict[int, Job[Any]] = {}
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i + 1}", daemon=True)
            for i in range(max_workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self,
        fn: Callable[[Job[T]], T],
        *,
        title: str,
        on_done: Callable[[Job[T]], None] | None = None,
        on_progress: Callable[[Job[T], ProgressInfo], None] | None = None,
    ) -> Job[T]:
        """Queue `fn(job)`; callbacks given here are registered before the job can start."""
        job: Job[T] = Job(fn, title)
        if self._listener is not None:
            job.add_state_callback(self._listener)
        if on_progress is not None:
            job.add_progress_callback(on_progress)
        if on_done is not None:
            job.add_done_callback(on_done)
        job.add_done_callback(self._forget)
        with self._lock:
            if self._closed:
                raise RuntimeError("the job runner is shut down")
            self._active[job.id] = job
        self._queue.put(job)
        return job

    def jobs(self) -> list[Job[Any]]:
        """Jobs queued or running, oldest first."""
        with self._lock:
            return sorted(self._active.values(), key=lambda j: j.id)

    def _forget(self, job: Job[Any]) -> None:
        with self._lock:
            self._active.pop(job.id, None)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Job)
            item.run()

    def shutdown(self, *, cancel: bool = True, timeout: float = 5.0) -> bool:
        """Stop accepting jobs; with `cancel`, cancel queued and running ones; join the workers.
        Returns False when a worker did not finish within `timeout` (a callable ignoring cancel)."""
        with self._lock:
            self._closed = True
            pending = list(self._active.values())
        if cancel:
            for job in pending:
                job.cancel()
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# -- backend sessions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: `initial` · `factor`^attempt, capped at `cap`, ± `jitter` (a fraction) so
    many clients do not retry in step; never above `cap`."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        spread = base * self.jitter
        value = base + (rng or random).uniform(-spread, spread)
        return max(0.0, min(self.cap, value))


class SessionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A connection state change: `reason` says why (the error text), `attempt` counts failed
    connects since the last success, `retry_in` the backoff delay before the next one (seconds)."""

    state: SessionState
    reason: str = ""
    attempt: int = 0
    retry_in: float | None = None


_RECONNECT = object()


class BackendSession:
    """Owns one backend on one dedicated thread.

    The backend is created by `backend_factory()` *on that thread*, connected there, used only there
    (calls run one at a time in submission order) and closed there. Connection handling:

    * connect fails with `UnreachableError` → RECONNECTING, retried after `Backoff` delays (0.5 s
      doubling to 30 s, jittered) until it works or the session closes;
    * connect fails with any other error (bad credentials, no permission) → DISCONNECTED with the
      reason; queued and later calls fail with that error until `reconnect()` is asked;
    * a call fails with `UnreachableError` → that job fails (calls are not retried: a publish is not
      idempotent), the backend is closed and the session reconnects as above; calls submitted
      meanwhile wait for the connection (cancel them to give up).

    `listener(status)` is called on the session thread at every state change.
    """

    def __init__(
        self,
        backend_factory: Callable[[], Backend],
        *,
        listener: Callable[[SessionStatus], None] | None = None,
        backoff: Backoff | None = None,
        name: str = "mqstudio-backend",
        rng: random.Random | None = None,
    ) -> None:
        self._factory = backend_factory
        self._listener = listener
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._queue: queue.SimpleQueue[Job[Any] | object] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._backend: Backend | None = None
        self._fatal: BaseException | None = None
        self._status = SessionStatus(SessionState.DISCONNECTED, "not started")

    @property
    def status(self) -> SessionStatus:
        return self._status

    @property
    def state(self) -> SessionState:
        return self._status.state

    def start(self) -> None:
        """Start the thread (which connects); idempotent. `call()` starts it too."""
        with self._lock:
            if self._started or self._stopping:
                return
            self._started = True
        self._thread.start()

    def call(self, fn: Callable[[Backend], T], *, title: str = "") -> Job[T]:
        """Run `fn(backend)` on the session thread after every call submitted before it."""
        return self.call_job(lambda backend, _job: fn(backend), title=title or _title(fn))

    def call_job(self, fn: Callable[[Backend, Job[T]], T], *, title: str = "") -> Job[T]:
        """Like `call`, but `fn(backend, job)` also gets its job (progress, cancellation)."""

        def run(job: Job[T]) -> T:
            backend = self._backend
            if backend is None:
                raise self._fatal or UnreachableError("not connected")
            return fn(backend, job)

        job: Job[T] = Job(run, title or _title(fn))
        with self._lock:
            if self._stopping:
                raise RuntimeError("the backend session is closed")
        self.start()
        self._queue.put(job)
        return job

    def reconnect(self) -> None:
        """Connect again now: after a fatal error (e.g. fixed credentials) or to skip a backoff wait."""
        self._queue.put(_RECONNECT)
        self._wake.set()

    def close(self, timeout: float = 5.0) -> bool:
        """Cancel queued calls, close the backend on its thread and join it; False on timeout."""
        with self._lock:
            self._stopping = True
            started = self._started
        self._wake.set()
        self._queue.put(_STOP)
        if not started:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the session thread -------------------------------------------------------------------------

    def _report(self, status: SessionStatus) -> None:
        self._status = status
        if self._listener is not None:
            _call_safely(self._listener, status)

    def _run(self) -> None:
        try:
            self._connect(SessionState.CONNECTING)
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                if self._stopping:
                    if isinstance(item, Job):
                        item.cancel()
                    continue
                if item is _RECONNECT:
                    if self._backend is None:
                        self._fatal = None
                        self._connect(SessionState.CONNECTING)
                    continue
                assert isinstance(item, Job)
                if self._backend is None:
                    item.fail(self._fatal or UnreachableError("not connected"))
                    continue
                item.run()
                if item.state is JobState.FAILED and isinstance(item.exception(0), UnreachableError):
                    self._drop_backend()
                    self._connect(SessionState.RECONNECTING, reason=item.error)
        finally:
            self._drop_backend()
            while True:  # calls still queued when the session closed
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, Job):
                    item.cancel()
            self._report(SessionStatus(SessionState.DISCONNECTED, "closed"))

    def _drop_backend(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:
                log.debug("closing the backend failed", exc_info=True)

    def _connect(self, state: SessionState, reason: str = "") -> None:
        """Create and connect a backend, retrying unreachable brokers with backoff until connected,
        refused (fatal) or closing."""
        attempt = 0
        self._report(SessionStatus(state, reason, attempt))
        while not self._stopping:
            backend: Backend | None = None
            try:
                backend = self._factory()
                backend.connect()
            except UnreachableError as exc:
                _close_quietly(backend)
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                self._report(SessionStatus(SessionState.RECONNECTING, str(exc), attempt, delay))
                self._wake.wait(delay)
                self._wake.clear()
                continue
            except Exception as exc:
                _close_quietly(backend)
                self._fatal = exc if isinstance(exc, BackendError) else BackendError(str(exc))
                self._report(SessionStatus(SessionState.DISCONNECTED, str(exc), attempt + 1))
                return
            self._backend = backend
            self._fatal = None
            self._report(SessionStatus(SessionState.CONNECTED, getattr(backend, "description", "")))
            return


def _close_quietly(backend: Backend | None) -> None:
    if backend is None:
        return
    try:
        backend.close()
    except Exception:
        log.debug("closing a backend that failed to connect failed", exc_info=True)


def _title(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", "") or type(fn).__name__)
