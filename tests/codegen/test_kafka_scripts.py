"""Generated kafka-python producer and group consumer, run as subprocesses against Tansu: the producer
creates the topic and sends with acks=all, the consumer reads every record and commits exactly what it
handled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from mqstudio.core.codegen import generate
from mqstudio.core.model import ConsumerGroup, Producer, Topic, Topology
from tests.codegen.conftest import run_script, write_snippets
from tests.fixtures.kafka import Tansu

pytestmark = pytest.mark.kafka

# Tansu joins a group in about half the session timeout: keep the group timers short.
GROUP_ENV = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_MAX_POLL_INTERVAL_MS": "3000"}


def test_producer_and_group_consumer_round_trip(tansu: Tansu, kafka_prefix: str, tmp_path: Path) -> None:
    topology = Topology()
    topic = Topic(f"{kafka_prefix}orders.v1", partitions=2)  # Kafka allows [A-Za-z0-9._-]
    topology.add_node(topic)
    group = ConsumerGroup(f"{kafka_prefix}billing \"g\"", topics=[topic.id])
    topology.add_node(group)
    topology.add_node(Producer("shop", target=topic.id, routing_key="order-{n}",
                               headers={"source": "shöp"}, payload='{"n": {{counter}}}'))
    scripts = write_snippets(tmp_path, generate(topology, group.id))
    assert list(scripts) == ["kafka-python producer", "kafka-python consumer", "Spring Cloud Stream"]
    env = {"KAFKA_BOOTSTRAP_SERVERS": tansu.bootstrap, **GROUP_ENV}

    produced = run_script(scripts["kafka-python producer"], "--count", "5", env=env)
    assert produced.returncode == 0, produced.stderr
    assert produced.stdout.count("sent ") == 5

    consumed = run_script(scripts["kafka-python consumer"], "--count", "5", env=env)
    assert consumed.returncode == 0, consumed.stderr
    received = [json.loads(line.removeprefix("received: ")) for line in consumed.stdout.splitlines()]
    assert sorted(r["n"] for r in received) == [1, 2, 3, 4, 5]

    # Manual commits: the group's committed offsets cover exactly the five records.
    # (committed() fetches the group's offsets without joining the group)
    probe = KafkaConsumer(bootstrap_servers=tansu.bootstrap, group_id=group.name, enable_auto_commit=False)
    try:
        committed = [probe.committed(TopicPartition(topic.name, p)) or 0 for p in range(topic.partitions)]
    finally:
        probe.close()
    assert sum(committed) == 5

    # A second run of the same group reads only what came since: two records and one whose handler
    # raises (not UTF-8), which is reported and skipped, not retried forever.
    assert run_script(scripts["kafka-python producer"], "--count", "2", env=env).returncode == 0
    poison = KafkaProducer(bootstrap_servers=tansu.bootstrap, acks="all")
    try:
        poison.send(topic.name, value=b"\xff not utf-8").get(timeout=30)
    finally:
        poison.close()
    again = run_script(scripts["kafka-python consumer"], "--count", "3", env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(json.loads(x.removeprefix("received: "))["n"] for x in again.stdout.splitlines()) == [1, 2]
    assert again.stderr.count("UnicodeDecodeError") == 1, again.stderr
