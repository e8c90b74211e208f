"""The plan-apply loop every backend shares: consent, cancellation, progress and the exact `ApplyReport`.

Owns: `run_plan`. A backend's `apply` supplies only how one step is carried out (`run_step`, raising a
`BackendError` the user can act on); the order, the bookkeeping and the callbacks are the same for all
backends, so a report means the same thing whichever broker produced it. Imports only the stdlib,
`mqstudio.core` and `mqstudio.backends.base`; no Qt, no broker client library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mqstudio.backends.base import ApplyReport, BackendError, CancelToken, Progress
from mqstudio.core.plan import Plan, Step

__all__ = ["run_plan"]


def run_plan(
    plan: Plan,
    run_step: Callable[[Step], None],
    *,
    consent: Iterable[Step] = (),
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> ApplyReport:
    """Run `plan`'s steps in order with `run_step` and report exactly what happened.

    * A step that needs consent and is not in `consent` is not run: it is ``skipped``, wherever it
      stands (also after a failure or a cancellation), so every step is in exactly one list.
    * `cancel` is checked before each step that would run; once set, that step and the rest are
      ``not_applied`` (or ``skipped``) and ``cancelled`` is set.
    * `progress(index, total, step.describe())` is called before each step that runs (``index`` counts
      the steps before it, run or skipped), and `progress(total, total, "done")` once all have been
      dealt with; not after a failure or a cancellation.
    * The first `BackendError` from `run_step` stops the run: that step is ``failed`` with the error's
      text, the rest are ``not_applied`` (or ``skipped``). Any other exception is a bug and propagates.
    """
    consented = list(consent)  # steps compare by value; they need not be hashable
    report = ApplyReport()

    def withheld(step: Step) -> bool:
        return step.needs_consent and step not in consented

    def leave(rest: list[Step]) -> None:
        for step in rest:
            (report.skipped if withheld(step) else report.not_applied).append(step)

    total = len(plan.steps)
    for index, step in enumerate(plan.steps):
        if withheld(step):
            report.skipped.append(step)
            continue
        if cancel is not None and cancel.cancelled:
            report.cancelled = True
            leave(plan.steps[index:])
            return report
        if progress is not None:
            progress(index, total, step.describe())
        try:
            run_step(step)
        except BackendError as exc:
            report.failed, report.error = step, str(exc)
            leave(plan.steps[index + 1 :])
            return report
        report.applied.append(step)
    if progress is not None:
        progress(total, total, "done")
    return report
