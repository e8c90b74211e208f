"""Runtime callbacks as queued Qt signals: the only way worker-thread results reach widgets.

Owns: `JobBridge` (a `mqstudio.runtime.jobs.Job`'s progress and outcome), `SessionBridge` (a
`BackendSession`'s state changes), and `submit` (run a callable on a `JobRunner` with a bridge
attached before it can start).

Runtime callbacks run on worker threads. Each bridge re-emits them through a private signal connected
to itself with `Qt.QueuedConnection`, so the public signals are always emitted on the bridge's (GUI)
thread and every slot behind them may touch widgets. A bridge deleted before its job settles simply
drops the late callbacks. Imports PySide6 and `mqstudio.runtime` only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal

from mqstudio.runtime.jobs import Job, JobRunner, JobState, ProgressInfo, SessionStatus

T = TypeVar("T")

_PROGRESS, _DONE = "progress", "done"
_Outcome = tuple[JobState, Any, BaseException | None, str]


class JobBridge(QObject):
    """Signals (GUI thread): ``progressed(done, total, what)``; then exactly one of ``finished(result)``,
    ``failed(message)`` (the exception is in `exception`) or ``cancelled()``; then ``settled()``."""

    progressed = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    settled = Signal()
    _relay = Signal(str, object)

    def __init__(self, job: Job[Any] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self.job: Job[Any] | None = None
        self.exception: BaseException | None = None
        self._done = False
        if job is not None:
            self.watch(job)

    # -- worker side (any thread) --------------------------------------------------------------
    def watch(self, job: Job[Any]) -> None:
        """Follow `job` (its progress from now on, and its outcome even if it has already settled)."""
        self.job = job
        job.add_progress_callback(self.on_progress)
        job.add_done_callback(self.on_done)

    def on_progress(self, _job: Job[Any], info: ProgressInfo) -> None:
        self._emit(_PROGRESS, info)

    def on_done(self, job: Job[Any]) -> None:
        # Runs on the settling thread, where the outcome is readable before waiters are released.
        if job.state is JobState.DONE:
            outcome: _Outcome = (job.state, job.result(0), None, "")
        else:
            outcome = (job.state, None, job.exception(0), job.error)
        self._emit(_DONE, outcome)

    def _emit(self, kind: str, payload: object) -> None:
        if shiboken6.isValid(self):
            # Deleted between the check and the emit: nobody is listening.
            with contextlib.suppress(RuntimeError):
                self._relay.emit(kind, payload)

    # -- GUI side ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done

    def cancel(self) -> None:
        """Ask the job to stop; ``cancelled`` (or its result, if it finished first) follows."""
        if self.job is not None:
            self.job.cancel()

    def _dispatch(self, kind: str, payload: object) -> None:
        if self._done:
            return
        if kind == _PROGRESS:
            assert isinstance(payload, ProgressInfo)
            self.progressed.emit(payload.done, payload.total, payload.what)
            return
        assert isinstance(payload, tuple)
        state, value, exception, error = payload
        self._done = True
        if state is JobState.DONE:
            self.finished.emit(value)
        elif state is JobState.CANCELLED:
            self.cancelled.emit()
        else:
            self.exception = exception
            self.failed.emit(error)
        self.settled.emit()


def submit(
    runner: JobRunner, fn: Callable[[Job[T]], T], *, title: str, parent: QObject | None = None
) -> JobBridge:
    """Run `fn(job)` on `runner`; the returned bridge is attached before the job can start."""
    bridge = JobBridge(parent=parent)
    job = runner.submit(fn, title=title, on_done=bridge.on_done, on_progress=bridge.on_progress)
    bridge.job = job
    return bridge


class SessionBridge(QObject):
    """Pass `report` as a `BackendSession`'s listener. Signal ``state_changed(SessionStatus)`` on the
    GUI thread; `status` is the latest one delivered."""

    state_changed = Signal(object)
    _relay = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self.status: SessionStatus | None = None

    def report(self, status: SessionStatus) -> None:
        """The session's listener: called on the session thread."""
        if shiboken6.isValid(self):
            with contextlib.suppress(RuntimeError):
                self._relay.emit(status)

    def _dispatch(self, status: object) -> None:
        assert isinstance(status, SessionStatus)
        self.status = status
        self.state_changed.emit(status)
