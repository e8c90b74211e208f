"""Plan and Apply: what applying the open design to the connected broker would do, then doing it.

Owns: `PlanApplyDialog`. On open it plans on the connection's thread (`BackendSession.call_job`):
`runtime.connect.design_for` (a design drawn in another single vhost is planned for the connection's)
then `backend.plan`. Every step is listed in order; destructive steps (recreating or deleting a queue
or exchange) carry a checkbox, unchecked by default, with the consequence in red: only checked ones
run. Warnings and objects left alone are listed below. Apply runs `runtime.connect.apply_plan` on the
same thread with a progress bar and Cancel; the result shows the `ApplyReport` exactly: each row says
applied, FAILED (with the error), not applied, or skipped.

Never blocks the GUI thread. Imports PySide6, mqstudio.core, mqstudio.runtime, backends.base only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mqstudio.backends.base import ApplyReport, Backend
from mqstudio.core.model import Topology
from mqstudio.core.plan import Plan, Step
from mqstudio.runtime.connect import apply_plan, design_for, needs_approval, snapshot
from mqstudio.runtime.jobs import Job
from mqstudio.ui.qtbridge import JobBridge
from mqstudio.ui.theme import is_dark

CallJob = Callable[..., Job[Any]]
"""`BackendSession.call_job`: ``call_job(fn(backend, job), title=...) -> Job``."""

_RED, _GREEN, _AMBER, _GREY = ("#cf222e", "#ff7b72"), ("#1a7f37", "#3fb950"), ("#9a6700", "#d29922"), (
    "#6e7781", "#8b949e")
_STEP, _STATUS = 0, 1


class PlanApplyDialog(QDialog):
    """Signals: ``planned(Plan)`` once the plan is listed; ``applied(ApplyReport)`` after an apply."""

    planned = Signal(object)
    applied = Signal(object)

    def __init__(
        self,
        design: Topology,
        call_job: CallJob,
        target: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("PlanApplyDialog")
        self.setWindowTitle("Plan and Apply")
        self._design = snapshot(design)
        self._call_job = call_job
        self.plan: Plan | None = None
        self.report: ApplyReport | None = None
        self._rows: dict[int, QTreeWidgetItem] = {}
        self._job: JobBridge | None = None
        self._dark = is_dark(self.palette())
        self._build(target)
        self.refresh_plan()

    # -- construction --------------------------------------------------------------------------
    def _build(self, target: str) -> None:
        self.target_label = QLabel(f"Make <b>{_esc(target)}</b> match the design:", self)
        self.target_label.setWordWrap(True)
        self.prune = QCheckBox("&Prune: also delete what the design does not have", self)
        self.prune.toggled.connect(self.refresh_plan)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.hide()

        self.steps = QTreeWidget(self)
        self.steps.setObjectName("PlanSteps")
        self.steps.setColumnCount(2)
        self.steps.setHeaderLabels(["Step", "Result"])
        self.steps.setRootIsDecorated(False)
        self.steps.setUniformRowHeights(False)
        self.steps.setWordWrap(True)
        self.steps.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.steps.setAlternatingRowColors(True)
        header = self.steps.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(_STEP, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(_STATUS, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(_STATUS, 190)
        self.steps.itemChanged.connect(self._on_item_changed)

        self.notes = QLabel(self)
        self.notes.setObjectName("PlanWarnings")
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.RichText)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes.hide()

        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%v / %m")
        self.status = QLabel(self)
        self.status.setObjectName("ApplyStatus")
        self.status.setWordWrap(True)
        status_row = QHBoxLayout()
        status_row.setSpacing(10)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.progress)
        self.progress.setMaximumWidth(220)
        self.progress.hide()

        self.buttons = QDialogButtonBox(self)
        self.apply_button: QPushButton = self.buttons.addButton(
            "&Apply", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.setSpacing(10)
        layout.addWidget(self.target_label)
        layout.addWidget(self.prune)
        layout.addWidget(self.note)
        layout.addWidget(self.steps, 1)
        layout.addWidget(self.notes)
        layout.addLayout(status_row)
        layout.addWidget(self.buttons)
        self.resize(820, 540)

    def _colour(self, pair: tuple[str, str]) -> QColor:
        return QColor(pair[1] if self._dark else pair[0])

    # -- planning ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._job is not None

    def refresh_plan(self) -> JobBridge | None:
        """(Re)plan on the connection's thread; the list shows the result."""
        if self._job is not None:
            return None
        design, prune = self._design, self.prune.isChecked()

        def make_plan(backend: Backend, _job: Job[Any]) -> tuple[Plan, str]:
            desired, note = design_for(design, backend.kind, str(getattr(backend, "vhost", "/")))
            return backend.plan(desired, prune=prune), note

        self.report = None
        self.plan = None
        self.steps.clear()
        self._rows.clear()
        self.notes.hide()
        bridge = self._start(make_plan, "Plan", "Comparing the design with the broker…")
        bridge.finished.connect(self._show_plan)
        bridge.failed.connect(lambda message: self._finish_failed("Could not plan", message))
        return bridge

    def _show_plan(self, result: object) -> None:
        assert isinstance(result, tuple)
        plan: Plan = result[0]
        note: str = result[1]
        self.plan = plan
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self.steps.blockSignals(True)
        for number, step in enumerate(plan.steps, 1):
            item = QTreeWidgetItem(self.steps, [f"{number}. {_short(step)}", ""])
            item.setToolTip(_STEP, step.describe())
            if needs_approval(step):
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(_STEP, Qt.CheckState.Unchecked)
                item.setForeground(_STEP, QBrush(self._colour(_RED)))
                item.setText(_STATUS, "needs your consent")
                item.setForeground(_STATUS, QBrush(self._colour(_RED)))
                item.setToolTip(_STATUS, _consequence(step))
            else:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self._rows[id(step)] = item
        self.steps.blockSignals(False)
        amber, grey = self._colour(_AMBER).name(), self._colour(_GREY).name()
        lines = [f'<span style="color:{amber}">⚠ {_esc(w)}</span>' for w in plan.warnings]
        lines += [f'<span style="color:{grey}">left alone (not in the design): {_esc(u)}</span>'
                  for u in plan.unmanaged]
        self.notes.setText("<br>".join(lines))
        self.notes.setVisible(bool(lines))
        if plan.is_empty:
            self.status.setText("Nothing to do: the broker already matches the design.")
        else:
            gated = sum(needs_approval(s) for s in plan.steps)
            plural = "s" if gated != 1 else ""
            consent = f"; tick the {gated} destructive step{plural} to include" if gated else ""
            self.status.setText(f"{len(plan.steps)} step{'s' if len(plan.steps) != 1 else ''}{consent}.")
        self.planned.emit(plan)
        self._update_buttons()

    # -- consent -------------------------------------------------------------------------------
    def approved(self) -> list[Step]:
        """The destructive steps whose box is ticked."""
        if self.plan is None:
            return []
        return [s for s in self.plan.steps if needs_approval(s)
                and self._rows[id(s)].checkState(_STEP) == Qt.CheckState.Checked]

    def set_approved(self, step: Step, on: bool) -> None:
        self._rows[id(step)].setCheckState(_STEP, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def runnable(self) -> int:
        if self.plan is None:
            return 0
        return sum(not needs_approval(s) for s in self.plan.steps) + len(self.approved())

    def _on_item_changed(self, _item: QTreeWidgetItem, _column: int) -> None:
        self._update_buttons()

    # -- apply ---------------------------------------------------------------------------------
    def apply(self) -> JobBridge | None:
        plan = self.plan
        if plan is None or self._job is not None or self.report is not None or self.runnable() == 0:
            return None
        approved = self.approved()

        def run(backend: Backend, job: Job[Any]) -> ApplyReport:
            return apply_plan(backend, plan, approved, progress=job.progress, cancel=job)

        for row in self._rows.values():
            row.setFlags(row.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
        bridge = self._start(run, "Apply", "Applying…")
        self.progress.setRange(0, len(plan.steps))
        self.progress.setValue(0)
        bridge.progressed.connect(self._on_progress)
        bridge.finished.connect(self._show_report)
        bridge.failed.connect(lambda message: self._finish_failed("The apply stopped", message))
        return bridge

    def _on_progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        self.status.setText(what)

    def _show_report(self, result: object) -> None:
        assert isinstance(result, ApplyReport)
        self.report = result
        outcomes: list[tuple[list[Step], str, tuple[str, str]]] = [
            (result.applied, "✔ applied", _GREEN),
            (result.not_applied, "not applied", _GREY),
            (result.skipped, "skipped (no consent)", _AMBER),
        ]
        for steps, text, colour in outcomes:
            for step in steps:
                self._mark(step, text, colour)
        if result.failed is not None:
            self._mark(result.failed, f"✖ FAILED: {result.error}", _RED)
        counts = [f"{len(result.applied)} applied"]
        counts += ["1 failed"] if result.failed is not None else []
        counts += [f"{len(result.not_applied)} not applied"] if result.not_applied else []
        counts += [f"{len(result.skipped)} skipped"] if result.skipped else []
        complete = result.ok and not result.skipped
        verdict = "Cancelled" if result.cancelled else "Done" if complete else "Incomplete"
        error = f" — {result.error}" if result.failed is not None else ""
        colour = _GREEN if verdict == "Done" else _RED if result.failed is not None else _AMBER
        self.status.setText(
            f'<span style="color:{self._colour(colour).name()}; font-weight:600">{verdict}: '
            f"{_esc(', '.join(counts))}{_esc(error)}</span>"
        )
        if self.plan is not None:
            self.progress.setValue(len(result.applied))
        self.applied.emit(result)

    def _mark(self, step: Step, text: str, colour: tuple[str, str]) -> None:
        row = self._rows.get(id(step))
        if row is None:
            return
        row.setText(_STATUS, text)
        row.setToolTip(_STATUS, text)
        row.setForeground(_STATUS, QBrush(self._colour(colour)))

    # -- jobs ----------------------------------------------------------------------------------
    def _start(self, fn: Callable[[Backend, Job[Any]], Any], title: str, status: str) -> JobBridge:
        bridge = JobBridge(parent=self)
        self._job = bridge
        bridge.cancelled.connect(lambda: self._finish_failed(f"{title} cancelled", ""))
        bridge.settled.connect(self._on_settled)
        bridge.watch(self._call_job(fn, title=title))
        self.status.setText(status)
        self.progress.setRange(0, 0)
        self.progress.show()
        self._update_buttons()
        return bridge

    def _on_settled(self) -> None:
        self._job = None
        if self.report is None:  # planning (or a failed apply): nothing to count
            self.progress.hide()
        self._update_buttons()

    def _finish_failed(self, what: str, message: str) -> None:
        text = f"{what}: {message}" if message else what
        self.status.setText(f'<span style="color:{self._colour(_RED).name()}">{_esc(text)}</span>')

    def cancel(self) -> None:
        """Ask the running plan or apply to stop (an apply stops between steps and reports)."""
        if self._job is not None:
            self._job.cancel()
            self.status.setText("Cancelling…")

    def _update_buttons(self) -> None:
        busy = self._job is not None
        self.apply_button.setEnabled(not busy and self.report is None and self.runnable() > 0)
        self.cancel_button.setEnabled(busy)
        self.close_button.setEnabled(not busy)
        self.prune.setEnabled(not busy and self.report is None)

    def reject(self) -> None:
        if self._job is not None:
            self.cancel()
            return
        super().reject()


def _short(step: Step) -> str:
    """The step without its ``[destructive, needs consent]`` flags (the checkbox and colour say it)."""
    text = step.describe()
    for suffix in (" [destructive, needs consent]", " [destructive]", " [needs consent]"):
        text = text.removesuffix(suffix)
    return text


def _consequence(step: Step) -> str:
    if step.needs_consent:
        return "Deletes the queue and every message in it"
    return "Deletes the object; its bindings go with it (re-bound where the design has them)"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
