"""Series ring buffers: wrap-around, windows as views, rates with counter resets, trend, time-to-drain."""

from __future__ import annotations

import numpy as np
import pytest

from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.ui.monitoring.series import (
    SeriesStore,
    SnapshotRecorder,
    time_to_drain,
    trend,
)

Q = ("queue", "/", "orders")


def _fill(store: SeriesStore, n: int, start: float = 1000.0) -> None:
    for i in range(n):
        store.append(start + i, {(*Q, "ready"): float(i)})


def test_the_default_store_keeps_at_least_an_hour_at_one_second() -> None:
    store = SeriesStore()
    assert store.capacity >= 3600 and store.resolution_s == 1.0


def test_the_ring_wraps_around_keeping_the_newest_samples_in_order() -> None:
    store = SeriesStore(capacity=5)
    _fill(store, 12)
    t, y = store.window((*Q, "ready"))
    assert list(y) == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert list(t) == [1007.0, 1008.0, 1009.0, 1010.0, 1011.0]
    assert len(store) == 5


def test_a_window_across_the_wrap_around_is_a_view_not_a_copy() -> None:
    store = SeriesStore(capacity=5)
    _fill(store, 7)  # the latest samples straddle the end of the ring
    t, y = store.window((*Q, "ready"))
    assert t.base is not None and y.base is not None
    assert list(y) == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_a_window_holds_only_the_last_seconds() -> None:
    store = SeriesStore(capacity=100)
    _fill(store, 50)
    t, y = store.window((*Q, "ready"), 10)
    assert t[0] == 1039.0 and t[-1] == 1049.0 and len(y) == 11


def test_samples_within_one_resolution_slot_replace_each_other() -> None:
    store = SeriesStore(capacity=10)
    store.append(100.2, {(*Q, "ready"): 1.0})
    store.append(100.7, {(*Q, "ready"): 2.0})
    store.append(101.1, {(*Q, "ready"): 3.0})
    assert list(store.window((*Q, "ready"))[1]) == [2.0, 3.0]


def test_a_series_that_was_always_zero_reads_as_zeros_without_its_own_buffer() -> None:
    store = SeriesStore(capacity=10)
    for i in range(4):
        store.append(float(i), {(*Q, "redelivered"): 0.0})
    _t, y = store.window((*Q, "redelivered"))
    assert (*Q, "redelivered") in store
    assert len(y) == 4 and not y.any() and not y.flags.writeable
    assert (*Q, "unknown") not in store


def test_a_series_first_seen_later_reads_zero_before_it_appeared() -> None:
    store = SeriesStore(capacity=10)
    store.append(1.0, {})
    store.append(2.0, {(*Q, "published"): 5.0})
    assert list(store.window((*Q, "published"))[1]) == [0.0, 5.0]


def test_the_recorder_turns_counters_into_rates_and_survives_a_counter_reset() -> None:
    recorder = SnapshotRecorder(SeriesStore(capacity=10))

    def snap(t: float, published: int, ready: float) -> Snapshot:
        return Snapshot(t, (ObjectStats("queue", "orders", "/", {"published": published}, {"ready": ready}),))

    assert recorder.feed(snap(10.0, 100, 5)) is False  # nothing to compare with yet
    assert recorder.feed(snap(11.0, 150, 7))
    assert recorder.feed(snap(12.0, 20, 9))  # broker restarted: 20 since then
    store = recorder.store
    assert list(store.window((*Q, "published"))[1]) == [50.0, 20.0]
    assert list(store.window((*Q, "ready"))[1]) == [7.0, 9.0]
    assert recorder.feed(snap(12.0, 30, 9)) is False  # not newer


def test_a_snapshot_without_a_broker_object_gets_one_summed_over_queues() -> None:
    recorder = SnapshotRecorder(SeriesStore(capacity=10))
    for t, n in ((0.0, 0), (1.0, 10)):
        recorder.feed(Snapshot(t, (
            ObjectStats("queue", "a", "/", {"published": n}, {"ready": 1}),
            ObjectStats("queue", "b", "/", {"published": 2 * n}, {"ready": 2}),
        )))
    store = recorder.store
    assert store.last(("broker", "", "", "published")) == 30.0
    assert store.last(("broker", "", "", "ready")) == 3.0


def test_trend_is_the_least_squares_slope() -> None:
    t = np.arange(10, dtype=float)
    assert trend(t, 3 * t + 7) == pytest.approx(3.0)
    assert trend(t, np.full(10, 4.0)) == pytest.approx(0.0)
    assert trend(t[:1], t[:1]) == 0.0


def test_the_store_trend_follows_a_growing_queue() -> None:
    store = SeriesStore(capacity=100)
    _fill(store, 60)
    assert store.trend((*Q, "ready"), 30) == pytest.approx(1.0)


def test_time_to_drain_when_consumers_outpace_publishers() -> None:
    assert time_to_drain(1000, consume_rate=30, publish_rate=10) == pytest.approx(50.0)
    assert time_to_drain(1000, consume_rate=10, publish_rate=10) is None
    assert time_to_drain(1000, consume_rate=5, publish_rate=10) is None
    assert time_to_drain(0, consume_rate=0, publish_rate=0) == 0.0


def test_the_drain_estimate_uses_mean_rates_over_the_window() -> None:
    store = SeriesStore(capacity=100)
    for i in range(20):
        store.append(float(i), {(*Q, "ready"): 600.0, (*Q, "acked"): 40.0, (*Q, "published"): 10.0})
    assert store.drain_estimate(*Q, seconds=10) == pytest.approx(20.0)


def test_the_drain_estimate_counts_deliveries_when_nothing_is_acked() -> None:
    store = SeriesStore(capacity=100)
    for i in range(5):
        store.append(float(i), {(*Q, "ready"): 100.0, (*Q, "delivered"): 20.0})
    assert store.drain_estimate(*Q) == pytest.approx(5.0)
