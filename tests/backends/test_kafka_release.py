"""KafkaBackend.release_pending on Tansu: records taken for replay and given back (the caller dropped
them: a lost link, a cancel, the end of a job) are read again by the next take, each once; records
settled meanwhile are not handed out again; and once everything is settled the committed offsets
reach the end of every partition."""

from __future__ import annotations

import pytest

from mqstudio.backends import kafka_admin as kadmin
from mqstudio.backends.base import BrokerMessage, ConflictError, OutgoingMessage
from mqstudio.backends.kafka import KafkaBackend
from mqstudio.core.model import Topic

pytestmark = pytest.mark.kafka


def _fill(backend: KafkaBackend, topic: str, n: int, partitions: int) -> None:
    records = [
        OutgoingMessage(topic, b"m%d" % i, key=f"k{i}", headers={"rid": str(i)}, partition=i % partitions)
        for i in range(n)
    ]
    assert all(r.confirmed for r in backend.publish_many(records))


def _take(backend: KafkaBackend, topic: str, n: int) -> list[BrokerMessage]:
    out: list[BrokerMessage] = []
    for _ in range(20):  # the first takes may come back short while the group joins
        out += backend.consume_for_replay(topic, n - len(out))
        if len(out) >= n:
            break
    return out


def _rids(messages: list[BrokerMessage]) -> list[str]:
    return sorted((str(m.headers["rid"]) for m in messages), key=int)


def _committed(backend: KafkaBackend, topic: str) -> dict[int, int]:
    offsets = kadmin.committed_offsets(backend.admin, f"{backend.replay_group}.{topic}")
    return {tp.partition: o for tp, o in offsets.items() if tp.topic == topic}


def test_records_given_back_are_taken_again_once_and_then_committed_to_the_end(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic = f"{kafka_prefix}dlt"
    kafka_backend.create_topic(Topic(topic, partitions=2))
    _fill(kafka_backend, topic, 40, partitions=2)

    first = _take(kafka_backend, topic, 30)
    assert len(first) == 30
    by_rid = {str(m.headers["rid"]): m for m in first}
    # The caller acked some (with gaps), requeued one, and then dropped the rest (e.g. its link went).
    acked = [m for m in first if int(m.headers["rid"]) % 3 == 0]
    kafka_backend.settle_many(acked, ack=True)
    requeued = next(m for m in first if m not in acked)
    kafka_backend.settle(requeued, ack=False, requeue=True)
    given_back = [m for m in first if m not in acked]

    assert kafka_backend.release_pending(topic) == len(given_back)
    # Nothing given back was committed past, though later records of its partition were acked.
    for partition, offset in _committed(kafka_backend, topic).items():
        lowest = min(int(m.offset or 0) for m in given_back if m.partition == partition)
        assert offset <= lowest
    # A given-back record is not held any more: settling it is refused.
    with pytest.raises(ConflictError):
        kafka_backend.settle(by_rid[str(given_back[0].headers["rid"])], ack=True)

    # The next takes return the given-back records again (each once, the requeued one too) and then
    # the 10 never taken; the acked ones are not handed out again.
    second = _take(kafka_backend, topic, 50)
    never_taken = [str(i) for i in range(40) if str(i) not in by_rid]
    assert len(never_taken) == 10
    assert _rids(second) == sorted([*_rids(given_back), *never_taken], key=int)
    assert not kafka_backend.consume_for_replay(topic, 10)

    kafka_backend.settle_many(second, ack=True)
    # Everything replayed is committed: the offsets reach the end of both partitions.
    assert _committed(kafka_backend, topic) == {0: 20, 1: 20}


def test_release_without_anything_taken_gives_back_nothing(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    topic = f"{kafka_prefix}dlt"
    kafka_backend.create_topic(Topic(topic, partitions=1))
    assert kafka_backend.release_pending(topic) == 0
    _fill(kafka_backend, topic, 5, partitions=1)
    taken = _take(kafka_backend, topic, 5)
    kafka_backend.settle_many(taken, ack=True)
    assert kafka_backend.release_pending(topic) == 0
    assert not kafka_backend.consume_for_replay(topic, 5)
    assert _committed(kafka_backend, topic) == {0: 5}
