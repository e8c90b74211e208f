"""The statistics sampler: rates from cumulative counters, polling on its own thread (Qt-free)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from mqstudio.backends.base import UnreachableError
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.jobs import BackendSession
from mqstudio.runtime.sampler import Sampler, SamplerState, rates

WAIT = 10.0


def _snap(t: float, **counters: int) -> Snapshot:
    return Snapshot(t, (ObjectStats("queue", "q", "/", counters=dict(counters)),))


def _until(condition: object, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    baseline = threading.active_count()
    yield
    _until(lambda: threading.active_count() == baseline)


def test_rates_are_counter_deltas_per_second() -> None:
    out = rates(_snap(10.0, published=100, acked=40), _snap(12.0, published=160, acked=50))
    assert out[("queue", "/", "q")] == {"published": 30.0, "acked": 5.0}


def test_a_counter_that_goes_down_restarted_and_counts_from_zero() -> None:
    out = rates(_snap(10.0, published=1000), _snap(11.0, published=7))
    assert out[("queue", "/", "q")]["published"] == 7.0


def test_an_object_or_counter_new_since_the_previous_snapshot_counts_from_zero() -> None:
    prev = Snapshot(0.0, ())
    out = rates(prev, _snap(2.0, published=10))
    assert out[("queue", "/", "q")]["published"] == 5.0


def test_no_rates_without_a_previous_snapshot_or_when_time_did_not_advance() -> None:
    assert rates(None, _snap(1.0, published=3)) == {}
    assert rates(_snap(5.0, published=1), _snap(5.0, published=9)) == {}


def test_a_sampler_polls_a_callable_on_its_own_thread_and_keeps_the_latest() -> None:
    threads: set[str] = set()
    count = iter(range(10_000))

    def stats() -> Snapshot:
        threads.add(threading.current_thread().name)
        return _snap(time.time(), published=next(count))

    sampler = Sampler(stats, interval_s=0.01, name="test-sampler").start()
    try:
        _until(lambda: sampler.sequence >= 3)
        latest = sampler.latest
        assert latest is not None
        assert threads == {"test-sampler"}
        assert sampler.state is SamplerState.SAMPLING
    finally:
        assert sampler.stop(WAIT)
    assert sampler.state is SamplerState.STOPPED


def test_since_returns_only_newer_snapshots_oldest_first() -> None:
    sampler = Sampler(lambda: _snap(time.time()), interval_s=0.01, keep=8).start()
    try:
        _until(lambda: sampler.sequence >= 5)
        items = sampler.since(2)
        numbers = [n for n, _ in items]
        assert numbers == sorted(numbers) and numbers[0] == 3
        assert sampler.since(sampler.sequence) == []
    finally:
        sampler.stop(WAIT)


def test_a_failing_call_is_reported_and_sampling_goes_on() -> None:
    calls = iter(range(10_000))

    def flaky() -> Snapshot:
        n = next(calls)
        if n % 2 == 0:
            raise UnreachableError("broker gone")
        return _snap(time.time(), published=n)

    sampler = Sampler(flaky, interval_s=0.01).start()
    try:
        _until(lambda: sampler.sequence >= 3)
        assert sampler.calls >= 6
    finally:
        sampler.stop(WAIT)


def test_a_failure_shows_in_error_and_state() -> None:
    def down() -> Snapshot:
        raise UnreachableError("broker gone")

    sampler = Sampler(down, interval_s=0.01).start()
    try:
        _until(lambda: sampler.error == "broker gone")
        assert sampler.state is SamplerState.FAILING
        assert sampler.latest is None
    finally:
        sampler.stop(WAIT)


def test_stop_without_waiting_returns_at_once_while_a_call_is_in_progress() -> None:
    release = threading.Event()

    def slow() -> Snapshot:
        release.wait(WAIT)
        return _snap(time.time())

    sampler = Sampler(slow, interval_s=0.01).start()
    _until(lambda: sampler.calls >= 1)
    assert sampler.stop() is False  # the call is still running: not waited for
    release.set()
    assert sampler.stop(WAIT)


def test_a_sampler_on_a_session_reads_the_embedded_broker_and_ends_when_the_session_closes() -> None:
    with EmbeddedBrokerThread(port=0) as broker:
        session = BackendSession(lambda: EmbeddedBackend(broker), name="test-session")
        sampler = Sampler(session, interval_s=0.02).start()
        try:
            _until(lambda: sampler.sequence >= 2)
            latest = sampler.latest
            assert latest is not None and latest.get("broker", "") is not None
        finally:
            assert session.close(WAIT)
        _until(lambda: not sampler.running)
        assert sampler.state is SamplerState.STOPPED


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Sampler(lambda: _snap(0.0), interval_s=0)
