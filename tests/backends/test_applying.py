"""run_plan: the apply loop every backend shares (consent, cancel between steps, progress, exact report)."""

from __future__ import annotations

import pytest

from mqstudio.backends.applying import run_plan
from mqstudio.backends.base import ConflictError
from mqstudio.core.model import Queue
from mqstudio.core.plan import Plan, Step, StepKind


def _step(name: str, *, consent: bool = False) -> Step:
    q = Queue(name)
    return Step(StepKind.CREATE_QUEUE, f"queue {name!r}", q, destructive=consent, needs_consent=consent)


class _Flag:
    def __init__(self) -> None:
        self.cancelled = False


class _Recorder:
    """A `run_step` that records the steps it ran and fails on the ones named in `fail`."""

    def __init__(self, *fail: str) -> None:
        self.ran: list[Step] = []
        self.fail = set(fail)

    def __call__(self, step: Step) -> None:
        if step.obj.name in self.fail:  # type: ignore[union-attr]
            raise ConflictError(f"{step.target} exists with other arguments", "recreate it")
        self.ran.append(step)


def test_every_step_runs_in_order_with_progress_before_each_and_done_at_the_end() -> None:
    steps = [_step("a"), _step("b"), _step("c")]
    seen: list[tuple[int, int, str]] = []
    run = _Recorder()
    report = run_plan(Plan(steps), run, progress=lambda done, total, what: seen.append((done, total, what)))
    assert run.ran == steps
    assert report.ok and report.applied == steps
    assert report.skipped == [] and report.not_applied == [] and report.failed is None
    assert seen == [(0, 3, steps[0].describe()), (1, 3, steps[1].describe()), (2, 3, steps[2].describe()),
                    (3, 3, "done")]


def test_steps_needing_consent_run_only_with_it_and_are_skipped_otherwise() -> None:
    plain, gated, allowed = _step("plain"), _step("gated", consent=True), _step("allowed", consent=True)
    seen: list[str] = []
    run = _Recorder()
    report = run_plan(Plan([plain, gated, allowed]), run, consent=[allowed],
                      progress=lambda done, total, what: seen.append(what))
    assert run.ran == [plain, allowed]
    assert report.applied == [plain, allowed]
    assert report.skipped == [gated]
    assert report.not_applied == [] and report.ok
    assert seen == [plain.describe(), allowed.describe(), "done"]  # a skipped step reports no progress


def test_cancel_is_checked_between_steps_and_the_rest_is_not_applied() -> None:
    steps = [_step("a"), _step("b"), _step("c")]
    flag = _Flag()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int, what: str) -> None:
        seen.append((done, total))
        if done == 1:
            flag.cancelled = True  # while step b is about to run: it still runs, c does not

    run = _Recorder()
    report = run_plan(Plan(steps), run, progress=progress, cancel=flag)
    assert run.ran == steps[:2]
    assert report.cancelled and not report.ok
    assert report.applied == steps[:2]
    assert report.not_applied == steps[2:]
    assert report.failed is None and report.skipped == []
    assert seen == [(0, 3), (1, 3)]  # no "done" after a cancel


def test_cancelled_before_the_first_step_runs_nothing_and_keeps_unconsented_steps_skipped() -> None:
    a, gated, b = _step("a"), _step("gated", consent=True), _step("b")
    flag = _Flag()
    flag.cancelled = True
    run = _Recorder()
    report = run_plan(Plan([a, gated, b]), run, cancel=flag)
    assert run.ran == []
    assert report.cancelled
    assert report.applied == []
    assert report.not_applied == [a, b]
    assert report.skipped == [gated]


def test_a_failure_mid_way_stops_the_run_and_reports_exactly_what_was_and_was_not_applied() -> None:
    a, b, gated, c, d = _step("a"), _step("b"), _step("gated", consent=True), _step("c"), _step("d")
    seen: list[str] = []
    run = _Recorder("c")
    report = run_plan(Plan([a, b, gated, c, d]), run, progress=lambda done, total, what: seen.append(what))
    assert run.ran == [a, b]
    assert report.applied == [a, b]
    assert report.failed == c
    assert report.error == "queue 'c' exists with other arguments (recreate it)"
    assert report.not_applied == [d]
    assert report.skipped == [gated]
    assert not report.cancelled and not report.ok
    assert seen == [a.describe(), b.describe(), c.describe()]  # no "done" after a failure
    everything = [*report.applied, report.failed, *report.not_applied, *report.skipped]
    assert sorted(s.target for s in everything) == sorted(s.target for s in [a, b, gated, c, d])


def test_an_error_that_is_not_a_backend_error_is_a_bug_and_propagates() -> None:
    def broken(step: Step) -> None:
        raise KeyError(step.target)

    with pytest.raises(KeyError):
        run_plan(Plan([_step("a")]), broken)


def test_an_empty_plan_reports_done() -> None:
    seen: list[tuple[int, int, str]] = []
    report = run_plan(Plan(), _Recorder(), progress=lambda d, total, what: seen.append((d, total, what)))
    assert report.ok and report.applied == []
    assert seen == [(0, 0, "done")]
