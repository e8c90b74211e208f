"""The traffic generator against Kafka (Tansu): a design's producer publishes to a topic, a consumer on
the topic's consumer group consumes it, and the records it fails go to the topic's dead-letter topic
(``<topic>.DLT``) with Spring Kafka's ``kafka_dlt-*`` headers, so the dead-letter tools and replay see
where each came from. Nothing is lost: every record sent is acknowledged or dead-lettered."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from mqstudio.backends import kafka_admin as kadmin
from mqstudio.backends.kafka import KafkaBackend
from mqstudio.core.model import Consumer, ConsumerGroup, Producer, Topic, Topology
from mqstudio.ops.deadletters import parse_death
from mqstudio.ops.traffic import ConsumerRunner, TrafficController, TrafficError
from tests.fixtures.kafka import CONSUMER_OPTIONS, KAFKA_GROUP_TIMEOUTS, Tansu


def _wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _records(tansu: Tansu, topic: str, n: int, timeout: float = 30.0) -> list[Any]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=tansu.bootstrap, group_id=f"{topic}-check", **CONSUMER_OPTIONS
    )
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(records)
    finally:
        consumer.close()
    return out


def _design(prefix: str, *, dead_letter_topic: bool = True) -> Topology:
    t = Topology()
    orders = Topic(f"{prefix}orders", partitions=2, id="t-orders")
    t.add_node(orders)
    if dead_letter_topic:
        t.add_node(Topic(f"{prefix}orders.DLT", id="t-dlt"))
    t.add_node(ConsumerGroup(f"{prefix}workers", topics=["t-orders"], id="g-workers"))
    t.add_node(Producer("api", target="t-orders", routing_key="order-{n}", rate=300, id="p-api"))
    t.add_node(Consumer("worker", source="g-workers", prefetch=20, failure_rate=0.3, id="c-worker"))
    return t


def test_generator_on_kafka_publishes_consumes_and_dead_letters_to_the_dlt(
    tansu: Tansu, kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    design = _design(kafka_prefix)
    for topic in design.topics:
        kafka_backend.create_topic(topic)
    origin, dlt = f"{kafka_prefix}orders", f"{kafka_prefix}orders.DLT"

    def backend() -> KafkaBackend:
        return KafkaBackend(
            tansu.bootstrap, client_id="mqstudio-traffic-test", group_timeouts=KAFKA_GROUP_TIMEOUTS
        )

    controller = TrafficController(design, backend_factory=backend)
    worker = controller.start("c-worker")
    assert isinstance(worker, ConsumerRunner) and worker.dead_letter_topic == dlt
    controller.start("p-api")
    assert _wait_until(lambda: controller.stats()["p-api"].sent >= 150)
    assert controller.stop("p-api", timeout=30)
    sent = controller.stats()["p-api"]
    assert sent.failed == 0 and sent.error == "", sent
    assert _wait_until(lambda: worker.stats.acked + worker.stats.failed == sent.sent, timeout=90), (
        worker.stats,
        sent,
    )
    assert controller.stop("c-worker", timeout=30)
    stats = worker.stats
    assert stats.error == "" and stats.requeued == 0
    assert 0 < stats.failed < sent.sent  # 30 % of them, give or take

    dead = _records(tansu, dlt, stats.failed)
    assert len(dead) == stats.failed
    originals = {(r.partition, r.offset): r for r in _records(tansu, origin, sent.sent)}
    assert len(originals) == sent.sent
    for record in dead:
        headers = dict(record.headers)
        partition = int.from_bytes(headers["kafka_dlt-original-partition"], "big")
        offset = int.from_bytes(headers["kafka_dlt-original-offset"], "big")
        source = originals[(partition, offset)]
        assert headers["kafka_dlt-original-topic"] == origin.encode()
        assert (record.value, record.key) == (source.value, source.key)
        assert headers["kafka_dlt-exception-message"].startswith(b"simulated failure")
    # The dead-letter tools read the same origin back (what replay uses to send records home).
    message = kafka_backend.peek(dlt, 1)[0]
    death = parse_death(message)
    assert death is not None and death.origin == origin and death.origin_partition in (0, 1)


def test_a_kafka_consumer_without_a_dead_letter_topic_skips_failures(kafka_prefix: str) -> None:
    design = _design(kafka_prefix, dead_letter_topic=False)
    controller = TrafficController(design, backend_factory=lambda: KafkaBackend("127.0.0.1:1"))
    runner = controller._make("c-worker")
    assert isinstance(runner, ConsumerRunner) and runner.dead_letter_topic is None
    assert runner.source == f"{kafka_prefix}orders"


def test_a_consumer_group_with_no_topic_is_refused(kafka_prefix: str) -> None:
    t = Topology()
    t.add_node(ConsumerGroup(f"{kafka_prefix}idle", id="g-idle"))
    t.add_node(Consumer("worker", source="g-idle", id="c-worker"))
    controller = TrafficController(t, backend_factory=lambda: KafkaBackend("127.0.0.1:1"))
    with pytest.raises(TrafficError, match="not connected"):
        controller.start("c-worker")


def _group_stats(backend: KafkaBackend, group: str) -> dict[str, float] | None:
    for obj in backend.stats().objects:
        if obj.kind == "consumer_group" and obj.name == group:
            return dict(obj.gauges)
    return None


def test_a_consumer_on_a_group_node_consumes_in_that_group_so_its_lag_follows_the_generator(
    tansu: Tansu, kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    t = Topology()
    t.add_node(Topic(f"{kafka_prefix}orders", partitions=2, id="t-orders"))
    t.add_node(ConsumerGroup(f"{kafka_prefix}workers", topics=["t-orders"], id="g-workers"))
    t.add_node(Producer("api", target="t-orders", rate=200, id="p-api"))
    t.add_node(Consumer("worker", source="g-workers", prefetch=20, id="c-worker"))
    for topic in t.topics:
        kafka_backend.create_topic(topic)
    group, topic_name = f"{kafka_prefix}workers", f"{kafka_prefix}orders"
    controller = TrafficController(
        t,
        backend_factory=lambda: KafkaBackend(
            tansu.bootstrap, client_id="mqstudio-traffic-test", group_timeouts=KAFKA_GROUP_TIMEOUTS
        ),
    )

    def produce(at_least: int) -> int:
        controller.start("p-api")
        assert _wait_until(lambda: controller.stats()["p-api"].sent >= at_least)
        assert controller.stop("p-api", timeout=30)
        stats = controller.stats()["p-api"]
        assert stats.failed == 0 and stats.error == "", stats
        return stats.sent

    def consume(expected: int) -> None:
        worker = controller.start("c-worker")
        assert isinstance(worker, ConsumerRunner) and worker.group == group
        assert _wait_until(lambda: worker.stats.acked == expected, timeout=60), worker.stats
        assert controller.stop("c-worker", timeout=30)
        assert worker.stats.error == "", worker.stats

    first = produce(60)
    consume(first)
    gauges = _group_stats(kafka_backend, group)
    assert gauges is not None and gauges["lag"] == 0, gauges
    committed = kadmin.committed_offsets(kafka_backend.admin, group)
    assert set(committed) == {TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)}
    assert sum(committed.values()) == first
    # the backend's own replay group never consumed: the design's group is the one that moves
    assert _group_stats(kafka_backend, f"{kafka_backend.replay_group}.{topic_name}") is None

    second = produce(30)  # the group is idle: its lag grows by what was produced
    gauges = _group_stats(kafka_backend, group)
    assert gauges is not None and gauges["lag"] == second, gauges

    consume(second)  # it catches up from its committed offsets, not from the beginning
    gauges = _group_stats(kafka_backend, group)
    assert gauges is not None and gauges["lag"] == 0, gauges
