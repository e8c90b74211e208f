"""Replay widgets of the Dead Letters panel: the replay dialog, the resume bar and the job handle.

Owns: `ReplayDialog` (destination: origin or ``exchange[:key]`` / ``topic[:key]``, rate, loop guard,
a Dry Run that lists per message where it would go or why it is refused — `ops.replay.plan_replay`
over the loaded messages, no broker call — then progress, Pause/Resume, Cancel and the summary),
`ResumeBar` (non-modal: unfinished journaled jobs, Resume / Abandon / Later) and `ReplayControl` (hands
pause/resume to a `ReplayJob` created on the session thread, and opens the journal there). The panel
runs the jobs; these widgets never touch a backend.
Imports PySide6, mqstudio.backends.base, mqstudio.ops and mqstudio.ui only.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mqstudio.backends.base import BrokerMessage
from mqstudio.ops.journal import JobRecord, Journal
from mqstudio.ops.replay import (
    DEFAULT_MAX_REPLAYS,
    ReplayItem,
    ReplayJob,
    ReplayReport,
    Target,
    parse_target,
    plan_replay,
)
from mqstudio.ui.panels.deadletter_models import body_preview

REFUSED_COLOR = "#c0392b"


class ReplayControl:
    """Pause/resume for a `ReplayJob` that the worker creates (it needs the session's backend): a
    pause asked before the job exists is applied when it is attached. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paused = False
        self.job: ReplayJob | None = None

    def attach(self, job: ReplayJob) -> ReplayJob:
        with self._lock:
            self.job = job
            if self._paused:
                job.pause()
        return job

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused
            if self.job is not None:
                (self.job.pause if paused else self.job.resume)()

    @property
    def report(self) -> ReplayReport | None:
        return None if self.job is None else self.job.report


class JournalOpener:
    """Opens the replay journal once, lazily, on whichever worker thread first needs it (the file
    lives on local disk, but the GUI thread does not wait on it either)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._journal: Journal | None = None

    def __call__(self) -> Journal:
        with self._lock:
            if self._journal is None:
                self._journal = Journal(self.path)
            return self._journal

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None


def summary_lines(report: ReplayReport) -> list[str]:
    """The headline counts first, then the report's details (failures with reasons, refusals)."""
    head = (f"Replayed {report.replayed} · failed {len(report.failed)} · refused {len(report.refused)}"
            f" · possible duplicates {len(report.possible_duplicates)}")
    if report.cancelled:
        head += " · cancelled (the rest stays in the DLQ)"
    return [head, "", *report.describe()]


class ReplayDialog(QDialog):
    """Options, dry run and the running replay. Signals: ``replay_requested()`` (the panel starts the
    job and feeds `on_progress` / `show_report`), ``pause_requested(bool)``, ``cancel_requested()``."""

    replay_requested = Signal()
    pause_requested = Signal(bool)
    cancel_requested = Signal()

    def __init__(self, queue: str, messages: list[BrokerMessage], scope: str, *, kafka: bool = False,
                 complete: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue, self.messages, self.kafka = queue, messages, kafka
        self.setWindowTitle(f"Replay from {queue}")
        self.resize(720, 560)
        n = len(messages)
        count = f"{n}{'' if complete else '+'} message{'s' if n != 1 else ''}"
        what = f"all {count}" if scope == "all" else f"the {count.replace(' ', f' {scope} ', 1)}"
        self.title = QLabel(f"Replay <b>{what}</b> from <b>{queue}</b>", self)
        self.title.setWordWrap(True)

        self.origin_radio = QRadioButton("Back where each message died (its origin)", self)
        self.target_radio = QRadioButton("To topic[:key]" if kafka else "To exchange[:routing key]", self)
        self.origin_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.origin_radio)
        group.addButton(self.target_radio)
        self.target_edit = QLineEdit(self)
        self.target_edit.setPlaceholderText("orders.retry:key" if kafka else "exchange:routing.key  (:queue "
                                            "= default exchange)")
        self.target_edit.setEnabled(False)
        self.target_radio.toggled.connect(self.target_edit.setEnabled)
        self.target_radio.toggled.connect(lambda *_: self._plan_stale())
        self.target_edit.textChanged.connect(lambda *_: self._plan_stale())
        target_row = QHBoxLayout()
        target_row.addWidget(self.target_radio)
        target_row.addWidget(self.target_edit, 1)

        self.rate_spin = QSpinBox(self)
        self.rate_spin.setRange(0, 1_000_000)
        self.rate_spin.setSuffix(" msg/s")
        self.rate_spin.setSpecialValueText("unlimited")
        self.rate_spin.setToolTip("Messages per second; 0 = as fast as the broker confirms")
        self.max_spin = QSpinBox(self)
        self.max_spin.setRange(1, 1000)
        self.max_spin.setValue(DEFAULT_MAX_REPLAYS)
        self.max_spin.setToolTip("Loop guard: a message already replayed this many times is refused")
        self.max_spin.valueChanged.connect(lambda *_: self._plan_stale())
        form = QFormLayout()
        form.addRow("Destination:", self.origin_radio)
        form.addRow("", target_row)
        for spin in (self.rate_spin, self.max_spin):
            spin.setMinimumWidth(140)
        guard = QLabel("loop guard: refuse messages already replayed this often", self)
        guard.setEnabled(False)
        max_row = QHBoxLayout()
        max_row.addWidget(self.max_spin)
        max_row.addWidget(guard, 1)
        rate_row = QHBoxLayout()
        rate_row.addWidget(self.rate_spin)
        rate_row.addWidget(QLabel("0 = unlimited", self), 1)
        form.addRow("Rate:", rate_row)
        form.addRow("Max replays:", max_row)

        self.plan_tree = QTreeWidget(self)
        self.plan_tree.setHeaderLabels(["Message", "Would go to / refused because"])
        self.plan_tree.setRootIsDecorated(False)
        self.plan_tree.setUniformRowHeights(True)
        self.plan_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.plan_tree.setColumnWidth(0, 200)
        self.plan_label = QLabel("Dry Run lists where each message would go, without moving any.", self)
        self.plan_label.setWordWrap(True)

        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._on_pause)
        self.cancel_button = QPushButton("Cancel Replay", self)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress_row = QWidget(self)
        row = QHBoxLayout(self.progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress, 1)
        row.addWidget(self.pause_button)
        row.addWidget(self.cancel_button)
        self.progress_row.hide()

        self.summary = QPlainTextEdit(self)
        self.summary.setReadOnly(True)
        self.summary.setMaximumHeight(130)
        self.summary.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.dry_run_button = self.buttons.addButton("Dry Run", QDialogButtonBox.ButtonRole.ActionRole)
        self.replay_button = self.buttons.addButton("Replay", QDialogButtonBox.ButtonRole.ApplyRole)
        self.replay_button.setDefault(True)
        self.dry_run_button.clicked.connect(self.dry_run)
        self.replay_button.clicked.connect(self._on_replay)
        self.buttons.rejected.connect(self.reject)
        self.error = QLabel(self)
        self.error.setStyleSheet(f"color: {REFUSED_COLOR}")
        self.error.setWordWrap(True)
        self.error.hide()

        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.plan_tree, 1)
        layout.addWidget(self.progress_row)
        layout.addWidget(self.summary)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.running = False
        self.finished_report: ReplayReport | None = None
        self.replay_button.setEnabled(bool(messages))

    # -- options ---------------------------------------------------------------------------------
    def target(self) -> Target | None:
        """None: to each message's origin. ValueError when "To" is chosen with nothing typed."""
        if self.origin_radio.isChecked():
            return None
        text = self.target_edit.text().strip()
        if not text:
            raise ValueError("Type the " + ("topic" if self.kafka else "exchange") + " to replay to")
        return parse_target(text)

    def rate(self) -> float | None:
        return float(self.rate_spin.value()) or None

    def max_replays(self) -> int:
        return self.max_spin.value()

    def _options_ok(self) -> Target | bool | None:
        try:
            target = self.target()
        except ValueError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return False
        self.error.hide()
        return target

    # -- dry run ---------------------------------------------------------------------------------
    def dry_run(self) -> list[ReplayItem]:
        """Fill the list: per loaded message its destination or the refusal (no broker call)."""
        target = self._options_ok()
        if target is False:
            return []
        assert target is None or isinstance(target, Target)
        items = plan_replay(self.messages, self.queue, target, max_replays=self.max_replays())
        self.plan_tree.clear()
        for item in items:
            row = QTreeWidgetItem(self.plan_tree, [_label(item.message), _destination(item)])
            row.setToolTip(0, item.key)
            if not item.ok:
                row.setForeground(1, QColor(REFUSED_COLOR))
                row.setText(1, "refused: " + item.refused)
            row.setToolTip(1, row.text(1))
        ok = sum(item.ok for item in items)
        self.plan_label.setText(f"Dry run: {ok} would be replayed, {len(items) - ok} refused "
                                "(refused messages stay in the DLQ). Nothing was moved.")
        return items

    def _plan_stale(self) -> None:
        if self.plan_tree.topLevelItemCount():
            self.plan_tree.clear()
            self.plan_label.setText("Options changed: Dry Run again to see where each message would go.")

    # -- running ---------------------------------------------------------------------------------
    def _on_replay(self) -> None:
        if self._options_ok() is False:
            return
        self.replay_requested.emit()

    def set_running(self, running: bool) -> None:
        self.running = running
        for widget in (self.origin_radio, self.target_radio, self.rate_spin, self.max_spin,
                       self.dry_run_button, self.replay_button):
            widget.setEnabled(not running)
        self.target_edit.setEnabled(not running and self.target_radio.isChecked())
        self.progress_row.setVisible(running)
        if running:
            self.progress.setRange(0, 0)
            self.progress.setFormat("Starting…")
            self.pause_button.setChecked(False)
            self.summary.hide()

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_requested.emit(paused)

    def on_progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(total, 0))
        if total > 0:
            self.progress.setValue(min(done, total))
        self.progress.setFormat(f"{done} of {total} · {what}" if total > 0 else what or "…")

    def show_report(self, report: ReplayReport | None, error: str = "") -> None:
        """The end: summary (replayed / failed with reasons / refused / possible duplicates)."""
        self.set_running(False)
        self.finished_report = report
        lines = summary_lines(report) if report is not None else []
        if error:
            lines = [f"The replay stopped: {error}", "", *lines]
        self.summary.setPlainText("\n".join(lines))
        self.summary.show()
        self.replay_button.setEnabled(False)  # the loaded messages are stale now
        self.dry_run_button.setEnabled(False)
        close = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setDefault(True)

    def reject(self) -> None:
        if self.running:
            self.cancel_requested.emit()  # closing a running replay cancels it (nothing is lost)
        super().reject()


def _label(message: BrokerMessage) -> str:
    ident = message.properties.get("message_id")
    return f"{ident} · {body_preview(message.body, 40)}" if ident else body_preview(message.body, 48)


def _destination(item: ReplayItem) -> str:
    return item.destination.describe() if item.destination is not None else "(nowhere)"


class ResumeBar(QFrame):
    """A non-modal bar over the panel: "An unfinished replay … Resume / Abandon / Later". Signals
    carry the job id. Later leaves the job in the journal untouched (offered again on the next start);
    Abandon only marks it abandoned there (`Journal.abandon_job`: no message is sent or removed)."""

    resume_requested = Signal(str)
    abandon_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReplayResumeBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#ReplayResumeBar { background: palette(alternate-base); }")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # a bar, not a pane
        self.records: list[JobRecord] = []
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Go on with the job: the messages it did not finish are replayed")
        self.abandon_button = QPushButton("Abandon", self)
        self.abandon_button.setToolTip(
            "Forget the job. Nothing is sent or removed: the messages it did not finish are still in "
            "the DLQ; those it was sending when it stopped may also have a copy in the target")
        self.later_button = QPushButton("Later", self)
        self.later_button.setToolTip("Hide this until mqstudio starts again; the job stays unfinished")
        self.resume_button.clicked.connect(lambda: self._take("resume"))
        self.abandon_button.clicked.connect(lambda: self._take("abandon"))
        self.later_button.clicked.connect(lambda: self._take("later"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.resume_button)
        layout.addWidget(self.abandon_button)
        layout.addWidget(self.later_button)
        self.hide()

    def offer(self, records: list[JobRecord]) -> None:
        self.records = list(records)
        if not self.records:
            self.hide()
            return
        job = self.records[0]
        when = datetime.fromtimestamp(job.updated).strftime("%Y-%m-%d %H:%M")
        more = f" ({len(self.records) - 1} more after it)" if len(self.records) > 1 else ""
        to = job.target or "their origins"
        self.label.setText(f"An unfinished replay from <b>{job.source}</b> to {to} ({job.state.value}, "
                           f"{when}) can be resumed{more}.")
        self.show()

    def _take(self, choice: str) -> None:
        if self.records:
            job = self.records.pop(0)
            self.offer(self.records)
            if choice == "resume":
                self.resume_requested.emit(job.id)
            elif choice == "abandon":
                self.abandon_requested.emit(job.id)
