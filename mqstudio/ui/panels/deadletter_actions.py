"""Replay actions of the Dead Letters panel (a mixin of `DeadLettersPanel`, split out to keep that
file small): open the replay dialog for the selected / filtered / all messages, run the journaled
`ReplayJob` on the session, and offer, resume or abandon the journal's unfinished jobs.

Owns: `ReplayActions`. It uses the panel's state and job helpers (`_long`, `_call`, `_say`, `reload`,
`resume_bar`, `_journal`, …); it never touches a backend on the GUI thread.
Imports PySide6, mqstudio.backends.base, mqstudio.ops, mqstudio.runtime and mqstudio.ui only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mqstudio.backends.base import Backend, BackendKind
from mqstudio.ops.journal import JobRecord
from mqstudio.ops.replay import ReplayJob, ReplayReport, selection_fingerprint
from mqstudio.runtime.jobs import Job
from mqstudio.ui.panels.deadletter_models import DeadRow
from mqstudio.ui.panels.deadletter_replay import ReplayControl, ReplayDialog, summary_lines
from mqstudio.ui.qtbridge import JobBridge


class ReplayActions:
    """Replay, resume and abandon for `DeadLettersPanel` (which provides every attribute used here)."""

    _journal: Any
    _journal_checked: bool
    _session: Any
    _kind: BackendKind | None
    replay_control: ReplayControl | None
    resume_bar: Any
    model: Any
    status: Any
    message: Any
    selected_rows: Callable[[], list[DeadRow]]
    filtered_rows: Callable[[], list[DeadRow]]
    _long: Callable[..., JobBridge | None]
    _call: Callable[..., JobBridge | None]
    _say: Callable[..., None]
    reload: Callable[[], None]

    if TYPE_CHECKING:
        @property
        def busy(self) -> bool: ...

        @property
        def current_queue(self) -> str | None: ...

    def replay_dialog(self, scope: str) -> ReplayDialog | None:
        """Open the replay dialog for the "selected", "filtered" or "all" messages of the queue."""
        queue = self.current_queue
        sources: dict[str, Callable[[], list[DeadRow]]] = {
            "selected": self.selected_rows, "filtered": self.filtered_rows, "all": lambda: self.model.rows}
        rows = sources[scope]()
        if queue is None or not rows or self.busy:
            return None
        messages = [row.message for row in rows]
        dialog = ReplayDialog(queue, messages, scope, kafka=self._kind is BackendKind.KAFKA,
                              complete=scope == "selected" or not self.model.truncated, parent=self)  # type: ignore[arg-type]
        # "all" means the whole queue (also what the table did not load); the others, these messages
        only = None if scope == "all" else [selection_fingerprint(m) for m in messages]
        dialog.replay_requested.connect(lambda: self.start_replay(dialog, queue, only))
        dialog.open()
        return dialog

    def start_replay(self, dialog: ReplayDialog, queue: str, only: list[str] | None) -> JobBridge | None:
        target, rate, max_replays = dialog.target(), dialog.rate(), dialog.max_replays()
        control, journal = ReplayControl(), self._journal

        def replay(backend: Backend, job: Job[Any]) -> ReplayReport:
            return control.attach(ReplayJob(backend, queue, target, rate=rate, journal=journal(),
                                            max_replays=max_replays, only=only)).run(job)

        bridge = self._long(replay, f"Replay from {queue}")
        if bridge is None:
            return None
        self.replay_control = control
        dialog.set_running(True)
        dialog.pause_requested.connect(control.set_paused)
        dialog.cancel_requested.connect(bridge.cancel)
        bridge.progressed.connect(dialog.on_progress)
        bridge.finished.connect(dialog.show_report)
        bridge.cancelled.connect(lambda: dialog.show_report(control.report))
        bridge.failed.connect(lambda msg: dialog.show_report(control.report, msg))
        bridge.settled.connect(lambda: self._replayed(control.report))
        return bridge

    def _replayed(self, report: ReplayReport | None) -> None:
        if report is not None:
            self.status.setText(f"Replayed {report.replayed}; {len(report.failed) + len(report.refused)} "
                                "kept in the DLQ" + (" (cancelled)" if report.cancelled else ""))
            self.message.emit(summary_lines(report)[0])
        self.reload()

    def _check_journal(self) -> None:
        """Once, on the first session: offer the journal's unfinished jobs (read on the session thread)."""
        if self._journal_checked or self._session is None:
            return
        self._journal_checked = True
        journal = self._journal
        bridge = self._call(lambda _backend: journal().unfinished_jobs(), "Look for unfinished replays")
        if bridge is not None:
            bridge.finished.connect(self._on_unfinished)

    def _on_unfinished(self, records: object) -> None:
        assert isinstance(records, list)
        jobs = [r for r in records if isinstance(r, JobRecord)]
        self.resume_bar.offer(jobs)
        if jobs:  # the dock may be closed: say so in the status bar too
            many = f"{len(jobs)} unfinished replays" if len(jobs) > 1 else "An unfinished replay"
            self.message.emit(f"{many} from an earlier run: Resume, Abandon or Later in the Dead Letters "
                              "panel")

    def resume_replay(self, job_id: str) -> JobBridge | None:
        control, journal = ReplayControl(), self._journal

        def resume(backend: Backend, job: Job[Any]) -> ReplayReport:
            return control.attach(ReplayJob.resumed(backend, journal(), job_id)).run(job)

        bridge = self._long(resume, "Resume replay")
        if bridge is not None:
            self.replay_control = control
            bridge.settled.connect(lambda: self._replayed(control.report))
        return bridge

    def abandon_replay(self, job_id: str) -> JobBridge | None:
        """Mark a journaled job abandoned (`Journal.abandon_job`): nothing is sent or removed."""
        journal = self._journal
        bridge = self._call(lambda _backend: journal().abandon_job(job_id), "Abandon replay")
        if bridge is not None:
            bridge.finished.connect(lambda summary: self._say(
                f"Abandoned the replay from {summary.job.source}: {summary.done} had been replayed; the "
                f"rest is still in the DLQ" + (f" ({summary.in_flight + summary.published} of them may "
                                               "also have a copy in the target)"
                                               if summary.in_flight + summary.published else "")))
        return bridge

    def pause_replay(self, paused: bool) -> None:
        if self.replay_control is not None:
            self.replay_control.set_paused(paused)
