"""Plan and Apply against the embedded broker: the plan is made on the connection's thread, destructive
steps run only when ticked, the report is shown row by row, cancel stops between steps."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from mqstudio.backends.base import ApplyReport, Backend, CancelToken, Progress
from mqstudio.core import fileformat
from mqstudio.core.loading import build_document
from mqstudio.core.model import Topology
from mqstudio.core.plan import Plan, Step
from mqstudio.runtime.connect import apply_plan, open_backend
from mqstudio.runtime.jobs import BackendSession
from mqstudio.runtime.profiles import parse_url
from mqstudio.ui.dialogs.apply import PlanApplyDialog

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def _design(name: str) -> Topology:
    raw = (EXAMPLES / f"{name}.mqs.json").read_bytes()
    return build_document(fileformat.parse_json(raw, name), name)[1].topology


@pytest.fixture
def session() -> Iterator[BackendSession]:
    live = BackendSession(lambda: open_backend(parse_url("embedded://").profile, None), name="test-session")
    yield live
    live.close()


def _seed(session: BackendSession, name: str) -> None:
    design = _design(name)
    report = session.call(lambda b: apply_plan(b, b.plan(design), [])).result(30)
    assert report.ok


def _dialog(qtbot: QtBot, design: Topology, session: BackendSession) -> PlanApplyDialog:
    dialog = PlanApplyDialog(design, session.call_job, "embedded broker")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.plan is not None and not dialog.busy, timeout=30_000)
    return dialog


def _rows(dialog: PlanApplyDialog) -> list[tuple[str, str]]:
    tree = dialog.steps
    rows = []
    for index in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(index)
        assert item is not None
        rows.append((item.text(0), item.text(1)))
    return rows


def _apply(qtbot: QtBot, dialog: PlanApplyDialog) -> ApplyReport:
    with qtbot.waitSignal(dialog.applied, timeout=30_000) as signal:
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    report = signal.args[0]
    assert isinstance(report, ApplyReport)
    qtbot.waitUntil(lambda: not dialog.busy)
    return report


def test_the_plan_lists_every_step_and_applying_reports_each_as_applied(
    qtbot: QtBot, session: BackendSession
) -> None:
    dialog = _dialog(qtbot, _design("work-queue-dlx"), session)
    rows = _rows(dialog)
    assert len(rows) == 6 and rows[0][0].startswith("1. create exchange 'tasks'")
    assert dialog.apply_button.isEnabled()
    report = _apply(qtbot, dialog)
    assert report.ok and len(report.applied) == 6
    assert all(status == "✔ applied" for _, status in _rows(dialog))
    assert "Done: 6 applied" in dialog.status.text()
    assert not dialog.apply_button.isEnabled()  # one apply per plan


def test_a_broker_that_matches_has_nothing_to_apply(qtbot: QtBot, session: BackendSession) -> None:
    _seed(session, "work-queue-dlx")
    dialog = _dialog(qtbot, _design("work-queue-dlx"), session)
    assert _rows(dialog) == []
    assert "Nothing to do" in dialog.status.text()
    assert not dialog.apply_button.isEnabled()


def test_destructive_steps_are_unticked_red_and_skipped_unless_ticked(
    qtbot: QtBot, session: BackendSession
) -> None:
    _seed(session, "work-queue-dlx")
    dialog = _dialog(qtbot, _design("pub-sub"), session)
    qtbot.mouseClick(dialog.prune, Qt.MouseButton.LeftButton, pos=QPoint(8, dialog.prune.height() // 2))
    assert dialog.prune.isChecked()
    qtbot.waitUntil(lambda: dialog.plan is not None and not dialog.busy, timeout=30_000)
    plan = dialog.plan
    assert plan is not None
    gated = [s for s in plan.steps if s.destructive or s.needs_consent]
    assert len(gated) == 4  # two queue deletions (messages lost), two exchange deletions
    assert dialog.approved() == []
    for index, step in enumerate(plan.steps):
        item = dialog.steps.topLevelItem(index)
        assert item is not None
        if step in gated:
            assert item.checkState(0) == Qt.CheckState.Unchecked
            assert item.foreground(0).color().red() > 150  # red text
            assert item.text(1) == "needs your consent"
    queue_delete = next(s for s in gated if s.needs_consent)
    dialog.set_approved(queue_delete, True)
    report = _apply(qtbot, dialog)
    assert queue_delete in report.applied
    assert len(report.skipped) == 3 and queue_delete not in report.skipped
    statuses = dict(_rows(dialog))
    assert sum(s == "skipped (no consent)" for s in statuses.values()) == 3
    assert "Incomplete" in dialog.status.text() and "3 skipped" in dialog.status.text()


class _FailingBackend:
    """Delegates to a real backend but fails the third step, to check the report is shown exactly."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.kind = inner.kind
        self.capabilities = inner.capabilities
        self.vhost = "/"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def apply(self, plan: Plan, *, consent: Iterable[Step] = (), progress: Progress | None = None,
              cancel: CancelToken | None = None) -> ApplyReport:
        report = ApplyReport(applied=plan.steps[:2], failed=plan.steps[2], error="PRECONDITION_FAILED - boom",
                             not_applied=plan.steps[3:])
        return report


def test_a_failed_step_is_shown_with_its_error_and_the_rest_as_not_applied(qtbot: QtBot) -> None:
    session = BackendSession(
        lambda: _FailingBackend(open_backend(parse_url("embedded://").profile, None)),  # type: ignore[arg-type,return-value]
        name="test-failing",
    )
    try:
        dialog = _dialog(qtbot, _design("work-queue-dlx"), session)
        report = _apply(qtbot, dialog)
        rows = _rows(dialog)
        assert [status for _, status in rows[:2]] == ["✔ applied", "✔ applied"]
        assert rows[2][1] == "✖ FAILED: PRECONDITION_FAILED - boom"
        assert all(status == "not applied" for _, status in rows[3:])
        assert report.failed is not None
        assert "1 failed" in dialog.status.text() and "3 not applied" in dialog.status.text()
    finally:
        session.close()


class _HeldBackend(_FailingBackend):
    """Delegates to a real backend; its first progress report waits until `proceed` is set."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.first_step = threading.Event()
        self.proceed = threading.Event()

    def apply(self, plan: Plan, *, consent: Iterable[Step] = (), progress: Progress | None = None,
              cancel: CancelToken | None = None) -> ApplyReport:
        def held(done: int, total: int, what: str) -> None:
            if progress is not None:
                progress(done, total, what)
            if not self.first_step.is_set():
                self.first_step.set()
                self.proceed.wait(20)

        return self._inner.apply(plan, consent=consent, progress=held, cancel=cancel)


def test_cancel_stops_the_apply_between_steps_and_says_how_far_it_got(qtbot: QtBot) -> None:
    backend = _HeldBackend(open_backend(parse_url("embedded://").profile, None))
    session = BackendSession(lambda: backend, name="test-held")  # type: ignore[arg-type,return-value]
    try:
        dialog = _dialog(qtbot, _design("work-queue-dlx"), session)
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(backend.first_step.is_set, timeout=30_000)
        assert dialog.cancel_button.isEnabled() and not dialog.close_button.isEnabled()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        backend.proceed.set()
        qtbot.waitUntil(lambda: dialog.report is not None and not dialog.busy, timeout=30_000)
        report = dialog.report
        assert report is not None and report.cancelled
        assert len(report.applied) < 6 and report.not_applied
        assert "Cancelled" in dialog.status.text()
        assert any(status == "not applied" for _, status in _rows(dialog))
        assert dialog.close_button.isEnabled()
    finally:
        session.close()
