"""Jobs on worker threads and the thread-confined backend session (Qt-free)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mqstudio.backends.base import (
    AuthenticationError,
    Backend,
    CancelledError,
    UnreachableError,
)
from mqstudio.runtime.jobs import (
    BackendSession,
    Backoff,
    Job,
    JobRunner,
    JobState,
    ProgressInfo,
    SessionState,
    SessionStatus,
)

WAIT = 10.0


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    baseline = threading.active_count()
    yield
    assert threading.active_count() == baseline, [t.name for t in threading.enumerate()]


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    r = JobRunner(2)
    yield r
    assert r.shutdown(timeout=WAIT)


# -- JobRunner -------------------------------------------------------------------------------------


def test_submitted_job_runs_on_a_worker_thread_and_returns_its_result(runner: JobRunner) -> None:
    job = runner.submit(lambda j: threading.current_thread().name, title="where")
    assert job.result(WAIT).startswith("mqstudio-job-")
    assert job.state is JobState.DONE
    assert job.title == "where"


def test_job_ids_are_unique(runner: JobRunner) -> None:
    jobs = [runner.submit(lambda j: None, title=str(i)) for i in range(5)]
    assert len({j.id for j in jobs}) == 5
    for j in jobs:
        j.wait(WAIT)


def test_failing_job_keeps_its_exception_and_result_raises_it(runner: JobRunner) -> None:
    def boom(job: Job[None]) -> None:
        raise UnreachableError("broker down")

    job = runner.submit(boom, title="boom")
    with pytest.raises(UnreachableError):
        job.result(WAIT)
    assert job.state is JobState.FAILED
    assert job.error == "broker down"


def test_done_callback_runs_on_the_worker_thread_before_waiters_return(runner: JobRunner) -> None:
    seen: list[tuple[str, JobState, int]] = []

    def on_done(job: Job[int]) -> None:
        seen.append((threading.current_thread().name, job.state, job.result()))

    job = runner.submit(lambda j: 42, title="answer", on_done=on_done)
    assert job.wait(WAIT)
    assert seen and seen[0][0].startswith("mqstudio-job-")
    assert seen[0][1:] == (JobState.DONE, 42)


def test_done_callback_added_after_settling_runs_at_once(runner: JobRunner) -> None:
    job = runner.submit(lambda j: 1, title="x")
    job.wait(WAIT)
    seen: list[Job[int]] = []
    job.add_done_callback(seen.append)
    assert seen == [job]


def test_progress_reports_reach_the_callback_in_order(runner: JobRunner) -> None:
    reports: list[ProgressInfo] = []

    def work(job: Job[None]) -> None:
        for i in range(3):
            job.progress(i + 1, 3, f"step {i + 1}")

    job = runner.submit(work, title="steps", on_progress=lambda j, p: reports.append(p))
    job.wait(WAIT)
    assert reports == [ProgressInfo(i, 3, f"step {i}") for i in (1, 2, 3)]
    assert job.last_progress == ProgressInfo(3, 3, "step 3")


def test_running_job_sees_cancel_and_ends_cancelled_when_it_raises() -> None:
    started, release = threading.Event(), threading.Event()

    def work(job: Job[None]) -> None:
        started.set()
        release.wait(WAIT)
        job.check_cancelled()

    with JobRunner(1) as r:
        job = r.submit(work, title="long")
        assert started.wait(WAIT)
        assert job.state is JobState.RUNNING
        assert job.cancel()
        assert job.cancelled
        release.set()
        with pytest.raises(CancelledError):
            job.result(WAIT)
        assert job.state is JobState.CANCELLED


def test_job_that_finishes_despite_cancel_is_done() -> None:
    started, release = threading.Event(), threading.Event()

    def work(job: Job[str]) -> str:
        started.set()
        release.wait(WAIT)
        return "partial" if job.cancelled else "full"

    with JobRunner(1) as r:
        job = r.submit(work, title="apply")
        started.wait(WAIT)
        job.cancel()
        release.set()
        assert job.result(WAIT) == "partial"
        assert job.state is JobState.DONE


def test_cancelling_a_queued_job_settles_it_at_once_and_it_never_runs() -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def blocker(job: Job[None]) -> None:
        started.set()
        release.wait(WAIT)

    with JobRunner(1) as r:
        first = r.submit(blocker, title="first")
        started.wait(WAIT)
        second = r.submit(lambda j: ran.append("second"), title="second")
        assert second.state is JobState.QUEUED
        assert second.cancel()
        assert second.state is JobState.CANCELLED
        assert second.wait(0)
        release.set()
        first.wait(WAIT)
    assert ran == []
    assert not second.cancel()  # already settled


def test_state_listener_sees_running_then_the_final_state() -> None:
    states: list[tuple[int, JobState]] = []
    lock = threading.Lock()

    def listener(job: Job[Any]) -> None:
        with lock:
            states.append((job.id, job.state))

    with JobRunner(1, listener=listener) as r:
        job = r.submit(lambda j: None, title="x")
        job.wait(WAIT)
    assert states == [(job.id, JobState.RUNNING), (job.id, JobState.DONE)]


def test_a_failing_callback_does_not_break_the_job(runner: JobRunner) -> None:
    def bad(job: Job[int]) -> None:
        raise RuntimeError("callback bug")

    job = runner.submit(lambda j: 7, title="x", on_done=bad)
    assert job.result(WAIT) == 7


def test_shutdown_cancels_pending_jobs_and_refuses_new_ones() -> None:
    started, release = threading.Event(), threading.Event()

    def blocker(job: Job[None]) -> None:
        started.set()
        while not job.cancelled:
            release.wait(0.01)
        job.check_cancelled()

    r = JobRunner(1)
    running = r.submit(blocker, title="running")
    started.wait(WAIT)
    queued = r.submit(lambda j: None, title="queued")
    assert [j.title for j in r.jobs()] == ["running", "queued"]
    assert r.shutdown(timeout=WAIT)
    assert running.state is JobState.CANCELLED
    assert queued.state is JobState.CANCELLED
    with pytest.raises(RuntimeError):
        r.submit(lambda j: None, title="late")


def test_job_is_a_cancel_token() -> None:
    from mqstudio.backends.base import CancelToken

    job: Job[None] = Job(lambda j: None, "t")
    assert isinstance(job, CancelToken)


# -- Backoff ---------------------------------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_and_caps_at_thirty() -> None:
    b = Backoff(jitter=0.0)
    assert [b.delay(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.delay(10_000) == 30.0


def test_backoff_jitter_stays_within_its_fraction_and_under_the_cap() -> None:
    b = Backoff()
    rng = random.Random(7)
    for attempt in range(12):
        base = min(30.0, 0.5 * 2**attempt)
        for _ in range(20):
            d = b.delay(attempt, rng)
            assert base * 0.8 <= d <= min(30.0, base * 1.2)
    assert len({b.delay(2, rng) for _ in range(10)}) > 1


# -- BackendSession --------------------------------------------------------------------------------


class FakeBackend:
    """A stand-in Backend: records the thread it is used on; fails connects/calls on demand."""

    description = "fake"

    def __init__(self, plan: FakePlan) -> None:
        self.plan = plan
        self.threads: set[str] = set()
        self.closed = False
        plan.created.append(self)

    def connect(self) -> None:
        self.threads.add(threading.current_thread().name)
        with self.plan.lock:
            failure = self.plan.connect_failures.pop(0) if self.plan.connect_failures else None
        if failure is not None:
            raise failure

    def close(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.closed = True

    def ping(self) -> str:
        self.threads.add(threading.current_thread().name)
        return "pong"


class FakePlan:
    def __init__(self, connect_failures: list[Exception] | None = None) -> None:
        self.lock = threading.Lock()
        self.connect_failures = list(connect_failures or [])
        self.created: list[FakeBackend] = []

    def factory(self) -> Backend:
        return FakeBackend(self)  # type: ignore[return-value]


FAST = Backoff(initial=0.001, cap=0.005, jitter=0.0)


class Statuses:
    def __init__(self) -> None:
        self.items: list[SessionStatus] = []
        self.changed = threading.Condition()

    def __call__(self, status: SessionStatus) -> None:
        with self.changed:
            self.items.append(status)
            self.changed.notify_all()

    def wait_for(self, state: SessionState) -> SessionStatus:
        with self.changed:
            assert self.changed.wait_for(lambda: any(s.state is state for s in self.items), WAIT)
            return next(s for s in self.items if s.state is state)

    @property
    def states(self) -> list[SessionState]:
        return [s.state for s in self.items]


def ping(backend: Backend) -> str:
    return backend.ping()  # type: ignore[attr-defined, no-any-return]


def test_session_runs_every_call_on_its_one_thread_in_order() -> None:
    plan = FakePlan()
    session = BackendSession(plan.factory, name="backend-test", backoff=FAST)
    order: list[int] = []
    jobs = [session.call(lambda b, i=i: order.append(i) or ping(b)) for i in range(10)]
    assert [j.result(WAIT) for j in jobs] == ["pong"] * 10
    assert order == list(range(10))
    assert session.close(WAIT)
    (backend,) = plan.created
    assert backend.threads == {"backend-test"}
    assert backend.closed


def test_session_reports_connecting_connected_and_disconnected_on_close() -> None:
    statuses = Statuses()
    session = BackendSession(FakePlan().factory, listener=statuses, backoff=FAST)
    session.start()
    statuses.wait_for(SessionState.CONNECTED)
    assert session.state is SessionState.CONNECTED
    assert session.close(WAIT)
    assert statuses.states == [SessionState.CONNECTING, SessionState.CONNECTED, SessionState.DISCONNECTED]
    assert statuses.items[-1].reason == "closed"


def test_unreachable_broker_is_retried_with_backoff_until_it_answers() -> None:
    plan = FakePlan([UnreachableError("refused"), UnreachableError("refused")])
    statuses = Statuses()
    session = BackendSession(plan.factory, listener=statuses, backoff=FAST)
    assert session.call(ping).result(WAIT) == "pong"
    assert session.close(WAIT)
    assert statuses.states[:4] == [
        SessionState.CONNECTING,
        SessionState.RECONNECTING,
        SessionState.RECONNECTING,
        SessionState.CONNECTED,
    ]
    retrying = statuses.items[1:3]
    assert [s.reason for s in retrying] == ["refused", "refused"]
    assert [s.attempt for s in retrying] == [1, 2]
    assert all(s.retry_in is not None for s in retrying)
    assert all(b.closed for b in plan.created)


def test_call_failing_unreachable_fails_that_job_and_reconnects_for_the_next() -> None:
    plan = FakePlan()
    statuses = Statuses()
    session = BackendSession(plan.factory, listener=statuses, backoff=FAST)

    def drop(backend: Backend) -> None:
        raise UnreachableError("connection reset")

    failed = session.call(drop)
    after = session.call(ping)
    with pytest.raises(UnreachableError):
        failed.result(WAIT)
    assert after.result(WAIT) == "pong"
    assert session.close(WAIT)
    assert len(plan.created) == 2
    assert plan.created[0].closed
    reconnecting = next(s for s in statuses.items if s.state is SessionState.RECONNECTING)
    assert reconnecting.reason == "connection reset"


def test_refused_credentials_disconnect_and_fail_calls_until_reconnect() -> None:
    plan = FakePlan([AuthenticationError("bad password")])
    statuses = Statuses()
    session = BackendSession(plan.factory, listener=statuses, backoff=FAST)
    job = session.call(ping)
    with pytest.raises(AuthenticationError):
        job.result(WAIT)
    assert statuses.wait_for(SessionState.DISCONNECTED).reason == "bad password"
    session.reconnect()
    assert session.call(ping).result(WAIT) == "pong"
    assert session.close(WAIT)


def test_close_during_backoff_cancels_queued_calls_and_joins() -> None:
    plan = FakePlan([UnreachableError("down")] * 1000)
    statuses = Statuses()
    session = BackendSession(plan.factory, listener=statuses, backoff=Backoff(initial=60.0, cap=60.0))
    job = session.call(ping)
    statuses.wait_for(SessionState.RECONNECTING)
    assert session.close(WAIT)
    assert job.state is JobState.CANCELLED
    with pytest.raises(RuntimeError):
        session.call(ping)


def test_call_job_gets_its_job_for_progress_and_cancel() -> None:
    session = BackendSession(FakePlan().factory, backoff=FAST)

    def work(backend: Backend, job: Job[bool]) -> bool:
        job.progress(1, 1, "one")
        return job.cancelled

    job = session.call_job(work, title="with job")
    assert job.result(WAIT) is False
    assert job.last_progress == ProgressInfo(1, 1, "one")
    assert session.close(WAIT)


def test_closing_a_session_that_never_started_is_a_no_op() -> None:
    assert BackendSession(FakePlan().factory).close(WAIT)
