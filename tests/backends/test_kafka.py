"""KafkaBackend against a real Kafka-compatible broker (Tansu, one per session; see tests/fixtures/kafka.py).

Topology read/plan/apply, publish and peek (offset, timestamp), consumer-group lag and offset resets,
replay settle semantics, tail, and stats. Every test uses names from ``kafka_prefix``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from mqstudio.backends.base import BrokerMessage, Capabilities, ConflictError, OutgoingMessage
from mqstudio.backends.kafka import KafkaBackend
from mqstudio.core.model import Exchange, Topic, Topology
from mqstudio.core.plan import StepKind
from tests.fixtures.kafka import CONSUMER_OPTIONS, Tansu

pytestmark = pytest.mark.kafka


class _Cancel:
    def __init__(self) -> None:
        self.event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()


def _design(*topics: Topic) -> Topology:
    topology = Topology()
    for topic in topics:
        topology.add_node(topic)
    return topology


@pytest.fixture
def topic(kafka_backend: KafkaBackend, kafka_prefix: str) -> str:
    """A fresh topic with 3 partitions."""
    name = f"{kafka_prefix}orders"
    kafka_backend.create_topic(Topic(name, partitions=3))
    return name


def _publish(backend: KafkaBackend, topic: str, count: int, partition: int = 0) -> None:
    for i in range(count):
        backend.publish(OutgoingMessage(topic, f"m{i}".encode(), partition=partition))


@pytest.fixture
def group_consumer(tansu: Tansu, topic: str, kafka_prefix: str) -> Iterator[KafkaConsumer]:
    """A member of group ``<prefix>billing`` subscribed to `topic`, with its partitions assigned."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=tansu.bootstrap, group_id=f"{kafka_prefix}billing", **CONSUMER_OPTIONS
    )
    deadline = time.monotonic() + 20
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=100, max_records=1)
    assert consumer.assignment(), "the test consumer never joined its group"
    try:
        yield consumer
    finally:
        consumer.close()


def test_capabilities_are_topics_groups_and_no_exchanges(kafka_backend: KafkaBackend) -> None:
    caps = kafka_backend.capabilities
    for flag in (
        Capabilities.TOPICS,
        Capabilities.CONSUMER_GROUPS,
        Capabilities.TOPOLOGY_WRITE,
        Capabilities.PEEK,
        Capabilities.REPLAY,
        Capabilities.STATS,
        Capabilities.TAIL,
    ):
        assert flag in caps
    assert Capabilities.EXCHANGES not in caps
    assert Capabilities.DEAD_LETTERING not in caps


def test_apply_creates_designed_topic_with_partitions_and_configs(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    name = f"{kafka_prefix}payments"
    design = _design(Topic(name, partitions=3, configs={"retention.ms": "60000"}))
    plan = kafka_backend.plan(design)
    assert [s.kind for s in plan.steps if s.target == f"topic {name!r}"] == [StepKind.CREATE_TOPIC]

    steps = []
    report = kafka_backend.apply(plan, progress=lambda done, total, what: steps.append(what))

    assert report.ok, report.describe()
    live = kafka_backend.fetch_topology().topology.find_topic(name)
    assert live is not None
    assert (live.partitions, live.replication_factor) == (3, 1)
    assert live.configs.get("retention.ms") == "60000"
    assert steps and steps[-1] == "done"
    assert not [s for s in kafka_backend.plan(design).steps if s.target == f"topic {name!r}"]


def test_plan_ignores_exchanges_with_a_warning(kafka_backend: KafkaBackend, kafka_prefix: str) -> None:
    design = _design(Topic(f"{kafka_prefix}a"))
    design.add_node(Exchange("orders"))
    plan = kafka_backend.plan(design)
    assert all(step.kind == StepKind.CREATE_TOPIC for step in plan.steps)
    assert any("Kafka has no exchanges" in w for w in plan.warnings)


def test_publish_returns_partition_and_offset_and_peek_reads_key_and_headers(
    kafka_backend: KafkaBackend, topic: str
) -> None:
    first = kafka_backend.publish(
        OutgoingMessage(topic, b"hello", key="order-1", headers={"trace": "abc", "n": 3}, partition=2)
    )
    second = kafka_backend.publish(OutgoingMessage(topic, b"again", partition=2))

    assert (first.confirmed, first.partition, first.offset) == (True, 2, 0)
    assert (second.partition, second.offset) == (2, 1)
    peeked = kafka_backend.peek(topic, partition=2)
    assert [m.body for m in peeked] == [b"hello", b"again"]
    assert peeked[0].routing_key == "order-1"
    assert peeked[0].headers == {"trace": "abc", "n": "3"}
    assert (peeked[0].partition, peeked[0].offset, peeked[0].source) == (2, 0, topic)


def test_peek_is_non_destructive_and_reads_all_partitions(kafka_backend: KafkaBackend, topic: str) -> None:
    for partition in range(3):
        kafka_backend.publish(OutgoingMessage(topic, f"p{partition}".encode(), partition=partition))

    once = kafka_backend.peek(topic)
    twice = kafka_backend.peek(topic)

    assert sorted(m.body for m in once) == [b"p0", b"p1", b"p2"]
    assert [(m.partition, m.offset) for m in once] == [(m.partition, m.offset) for m in twice]
    assert len(kafka_backend.peek(topic, limit=2)) == 2


def test_peek_from_offset_starts_at_that_offset(kafka_backend: KafkaBackend, topic: str) -> None:
    _publish(kafka_backend, topic, 5, partition=1)
    peeked = kafka_backend.peek(topic, partition=1, offset=3)
    assert [(m.offset, m.body) for m in peeked] == [(3, b"m3"), (4, b"m4")]
    assert kafka_backend.peek(topic, partition=1, offset=2, limit=1)[0].body == b"m2"


def test_peek_by_timestamp_starts_at_first_record_at_or_after_it(
    kafka_backend: KafkaBackend, topic: str
) -> None:
    base = int(time.time() * 1000) - 60_000
    for i in range(4):
        props = {"timestamp_ms": base + i * 1000}
        kafka_backend.publish(OutgoingMessage(topic, f"t{i}".encode(), partition=0, properties=props))

    peeked = kafka_backend.peek(topic, partition=0, timestamp_ms=base + 1500)

    assert [m.body for m in peeked] == [b"t2", b"t3"]
    assert peeked[0].timestamp_ms == base + 2000
    assert kafka_backend.peek(topic, partition=0, timestamp_ms=base + 10_000) == []


def test_group_lag_counts_records_after_the_committed_offsets(
    kafka_backend: KafkaBackend, topic: str, group_consumer: KafkaConsumer, kafka_prefix: str
) -> None:
    _publish(kafka_backend, topic, 5, partition=0)
    _publish(kafka_backend, topic, 2, partition=1)
    group = f"{kafka_prefix}billing"
    group_consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "", -1)})

    stats = kafka_backend.stats().get("consumer_group", group)

    assert stats is not None
    assert stats.gauges[f"lag.{topic}.0"] == 2
    assert stats.gauges[f"lag.{topic}.1"] == 2
    assert stats.gauges["lag"] == 4
    assert stats.gauges["consumers"] == 1
    assert kafka_backend.group_lag(group)[TopicPartition(topic, 0)] == 2
    live = kafka_backend.fetch_topology().topology
    node = live.find_node(live.consumer_groups[0].kind, group)
    topic_node = live.find_topic(topic)
    assert node is not None and topic_node is not None
    assert node.topics == [topic_node.id]  # type: ignore[union-attr]


def test_offset_reset_is_refused_while_the_group_has_members_and_done_after(
    kafka_backend: KafkaBackend, topic: str, group_consumer: KafkaConsumer, kafka_prefix: str
) -> None:
    group = f"{kafka_prefix}billing"
    base = int(time.time() * 1000) - 60_000
    for i in range(4):
        props = {"timestamp_ms": base + i * 1000}
        kafka_backend.publish(OutgoingMessage(topic, b"x", partition=0, properties=props))
    group_consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "", -1)})

    with pytest.raises(ConflictError, match="active member"):
        kafka_backend.reset_offsets(group, topic, "earliest")
    group_consumer.close()

    assert kafka_backend.reset_offsets(group, topic, "earliest") == {0: 0, 1: 0, 2: 0}
    assert kafka_backend.group_lag(group)[TopicPartition(topic, 0)] == 4
    assert kafka_backend.reset_offsets(group, topic, timestamp_ms=base + 2000, partition=0) == {0: 2}
    assert kafka_backend.reset_offsets(group, topic, 3, partition=0) == {0: 3}
    assert kafka_backend.reset_offsets(group, topic, "latest") == {0: 4, 1: 0, 2: 0}
    assert kafka_backend.group_lag(group)[TopicPartition(topic, 0)] == 0


def test_plan_adds_partitions_and_apply_grows_the_topic_or_says_the_broker_cannot(
    kafka_backend: KafkaBackend, topic: str
) -> None:
    plan = kafka_backend.plan(_design(Topic(topic, partitions=5)))
    steps = [s for s in plan.steps if s.target == f"topic {topic!r}"]
    assert [s.kind for s in steps] == [StepKind.ALTER_TOPIC_PARTITIONS]
    assert "3 → 5" in steps[0].reason

    report = kafka_backend.apply(plan.__class__(steps=steps))

    if report.ok:  # a broker with CreatePartitions (Kafka)
        assert kafka_backend.fetch_topology().topology.find_topic(topic).partitions == 5  # type: ignore[union-attr]
    else:  # Tansu 0.6 does not implement CreatePartitions
        assert report.failed == steps[0]
        assert "does not support" in report.error


def test_shrinking_partitions_is_a_plan_warning_and_apply_refuses_it(
    kafka_backend: KafkaBackend, topic: str
) -> None:
    plan = kafka_backend.plan(_design(Topic(topic, partitions=2)))

    assert not [s for s in plan.steps if s.target == f"topic {topic!r}"]
    assert any("can only add partitions" in w and repr(topic) in w for w in plan.warnings)
    # A hand-made shrink step is refused before it reaches the broker.
    from mqstudio.core.plan import Plan, Step

    shrink = Step(StepKind.ALTER_TOPIC_PARTITIONS, f"topic {topic!r}", Topic(topic, partitions=2))
    report = kafka_backend.apply(Plan(steps=[shrink]))
    assert report.failed == shrink
    assert "only add partitions" in report.error


def test_prune_deletes_a_topic_only_with_consent(kafka_backend: KafkaBackend, topic: str) -> None:
    plan = kafka_backend.plan(Topology(), prune=True)
    delete = next(s for s in plan.steps if s.kind == StepKind.DELETE_TOPIC and s.obj.name == topic)  # type: ignore[union-attr]
    assert delete.needs_consent

    refused = kafka_backend.apply(type(plan)(steps=[delete]))
    assert refused.skipped == [delete] and refused.applied == []
    assert kafka_backend.fetch_topology().topology.find_topic(topic) is not None

    done = kafka_backend.apply(type(plan)(steps=[delete]), consent=[delete])
    assert done.applied == [delete]
    assert kafka_backend.fetch_topology().topology.find_topic(topic) is None


def test_apply_stops_when_cancelled_and_reports_the_rest(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    plan = kafka_backend.plan(_design(Topic(f"{kafka_prefix}x"), Topic(f"{kafka_prefix}y")))
    mine = [s for s in plan.steps if s.target.startswith(f"topic '{kafka_prefix}")]
    cancel = _Cancel()

    def progress(done: int, total: int, what: str) -> None:
        cancel.event.set()  # cancel after the first step has started

    report = kafka_backend.apply(type(plan)(steps=mine), progress=progress, cancel=cancel)

    assert report.cancelled and not report.ok
    assert report.applied == mine[:1] and report.not_applied == mine[1:]


def test_tail_receives_a_record_produced_after_it_started(kafka_backend: KafkaBackend, topic: str) -> None:
    kafka_backend.publish(OutgoingMessage(topic, b"before", partition=0))
    received: list[BrokerMessage] = []
    got_one, ready, cancel = threading.Event(), threading.Event(), _Cancel()
    errors: list[BaseException] = []

    def sink(message: BrokerMessage) -> None:
        received.append(message)
        got_one.set()

    def run() -> None:
        try:
            kafka_backend.tail(topic, sink, cancel, on_ready=ready.set)
        except BaseException as exc:  # reported below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(20)
    kafka_backend.publish(OutgoingMessage(topic, b"live", key="k", partition=1))
    assert got_one.wait(20), errors
    cancel.event.set()
    thread.join(20)

    assert not thread.is_alive() and not errors
    assert [m.body for m in received] == [b"live"]
    assert received[0].routing_key == "k"


def test_replay_commits_only_past_settled_records_and_requeues_nacked_ones(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    dlt = f"{kafka_prefix}orders.dlt"
    kafka_backend.create_topic(Topic(dlt))
    _publish(kafka_backend, dlt, 3)
    group = f"{kafka_backend.replay_group}.{dlt}"

    taken = kafka_backend.consume_for_replay(dlt, 3)
    assert [m.offset for m in taken] == [0, 1, 2]
    kafka_backend.settle(taken[1], ack=True)
    assert kafka_backend.group_lag(group).get(TopicPartition(dlt, 0), 3) == 3  # offset 0 still out
    kafka_backend.settle(taken[0], ack=True)
    assert kafka_backend.group_lag(group)[TopicPartition(dlt, 0)] == 1
    kafka_backend.settle(taken[2], ack=False, requeue=True)

    again = kafka_backend.consume_for_replay(dlt, 5)
    assert [(m.offset, m.redelivered) for m in again] == [(2, True)]
    kafka_backend.settle(again[0], ack=True)
    assert kafka_backend.group_lag(group)[TopicPartition(dlt, 0)] == 0
    assert kafka_backend.consume_for_replay(dlt, 5) == []


def test_stats_report_end_offsets_and_produced_per_topic(kafka_backend: KafkaBackend, topic: str) -> None:
    _publish(kafka_backend, topic, 3, partition=0)
    _publish(kafka_backend, topic, 2, partition=2)

    snapshot = kafka_backend.stats()
    stats = snapshot.get("topic", topic)

    assert stats is not None
    assert stats.counters["produced"] == 5
    assert stats.gauges["end_offset"] == 5
    assert stats.gauges["partitions"] == 3
    assert snapshot.timestamp > 0
