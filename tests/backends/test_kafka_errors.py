"""KafkaBackend errors: kafka-python exceptions become the base `BackendError`s with actionable messages.

The mapping table runs without a broker; the rest against the session's Tansu (tests/fixtures/kafka.py),
except the unreachable bootstrap, which needs nothing listening.
"""

from __future__ import annotations

import kafka.errors as kerrors
import pytest

from mqstudio.backends.base import (
    AuthenticationError,
    BackendError,
    BrokerMessage,
    ConflictError,
    NotFoundError,
    OutgoingMessage,
    PermissionDeniedError,
    UnreachableError,
    UnsupportedError,
)
from mqstudio.backends.kafka import KafkaBackend, KafkaSecurity
from mqstudio.backends.kafka_admin import translate_error
from mqstudio.core.model import Topic
from tests.fixtures.kafka import free_port


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (kerrors.TopicAlreadyExistsError(), ConflictError),
        (kerrors.UnknownTopicOrPartitionError(), NotFoundError),
        (kerrors.GroupIdNotFoundError(), NotFoundError),
        (kerrors.TopicAuthorizationFailedError(), PermissionDeniedError),
        (kerrors.GroupAuthorizationFailedError(), PermissionDeniedError),
        (kerrors.SaslAuthenticationFailedError(), AuthenticationError),
        (kerrors.IncompatibleBrokerVersion(), UnsupportedError),
        (kerrors.InvalidPartitionsError(), ConflictError),
        (kerrors.NonEmptyGroupError(), ConflictError),
        (kerrors.KafkaConnectionError(), UnreachableError),
        (kerrors.KafkaTimeoutError(), UnreachableError),
        (ConnectionRefusedError(), UnreachableError),
        (kerrors.InvalidReplicationFactorError(), BackendError),
    ],
)
def test_kafka_errors_map_to_backend_errors(raised: Exception, expected: type[BackendError]) -> None:
    error = translate_error(raised, "create topic 'orders'", "k1:9092")
    assert type(error) is expected
    assert error.message.startswith("cannot create topic 'orders'")


def test_mapped_errors_say_what_to_do() -> None:
    conflict = translate_error(kerrors.TopicAlreadyExistsError(), "create topic 'orders'")
    assert "already exists" in conflict.message and conflict.hint
    unsupported = translate_error(
        kerrors.IncompatibleBrokerVersion("no CreatePartitions"), "add partitions", "k:1"
    )
    assert "does not support" in unsupported.message and "k:1" in unsupported.message


def test_description_names_the_cluster_but_never_the_password() -> None:
    backend = KafkaBackend(
        "k1:9093,k2:9093",
        client_id="studio",
        security=KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "alice", "s3cret"),
    )
    assert "k1:9093" in backend.description and "SASL_SSL" in backend.description
    assert "s3cret" not in backend.description and "s3cret" not in repr(backend.security)
    config = backend.security.client_config()
    assert config["sasl_mechanism"] == "SCRAM-SHA-512" and config["sasl_plain_username"] == "alice"


def test_unreachable_bootstrap_raises_unreachable_with_host_and_port() -> None:
    port = free_port()  # nothing listens there
    backend = KafkaBackend(f"127.0.0.1:{port}", timeout_s=0.5)

    with pytest.raises(UnreachableError) as info:
        backend.connect()

    assert f"cannot reach Kafka at 127.0.0.1:{port}" in info.value.message
    assert "advertised" in info.value.hint
    backend.close()


@pytest.mark.kafka
def test_creating_a_topic_that_exists_raises_conflict(kafka_backend: KafkaBackend, kafka_prefix: str) -> None:
    topic = Topic(f"{kafka_prefix}dup", partitions=1)
    kafka_backend.create_topic(topic)

    with pytest.raises(ConflictError, match="already exists"):
        kafka_backend.create_topic(Topic(topic.name, partitions=2))


@pytest.mark.kafka
def test_apply_reports_a_create_that_conflicts_and_what_was_not_applied(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    from mqstudio.core.plan import Plan, Step, StepKind

    taken = Topic(f"{kafka_prefix}taken")
    kafka_backend.create_topic(taken)
    steps = [
        Step(StepKind.CREATE_TOPIC, f"topic {taken.name!r}", taken),
        Step(StepKind.CREATE_TOPIC, "topic 'next'", Topic(f"{kafka_prefix}next")),
    ]

    report = kafka_backend.apply(Plan(steps=steps))

    assert report.failed == steps[0] and report.not_applied == steps[1:] and not report.applied
    assert "already exists" in report.error


@pytest.mark.kafka
def test_publish_to_an_unknown_topic_is_not_found_and_does_not_create_it(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    name = f"{kafka_prefix}missing"
    with pytest.raises(NotFoundError, match="does not exist"):
        kafka_backend.publish(OutgoingMessage(name, b"x"))
    assert kafka_backend.fetch_topology().topology.find_topic(name) is None


@pytest.mark.kafka
def test_unknown_partition_is_not_found(kafka_backend: KafkaBackend, kafka_prefix: str) -> None:
    name = f"{kafka_prefix}one"
    kafka_backend.create_topic(Topic(name, partitions=1))

    with pytest.raises(NotFoundError, match="no partition 4"):
        kafka_backend.peek(name, partition=4)
    with pytest.raises(NotFoundError):
        kafka_backend.publish(OutgoingMessage(name, b"x", partition=4))


@pytest.mark.kafka
def test_peek_of_an_unknown_topic_is_not_found(kafka_backend: KafkaBackend, kafka_prefix: str) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        kafka_backend.peek(f"{kafka_prefix}nothing")


@pytest.mark.kafka
def test_settling_a_record_not_taken_for_replay_is_a_conflict(kafka_backend: KafkaBackend) -> None:
    with pytest.raises(ConflictError, match="consume_for_replay"):
        kafka_backend.settle(BrokerMessage("orders", b"x", partition=0, offset=0), ack=True)


@pytest.mark.kafka
def test_purge_deletes_records_or_says_the_broker_cannot_and_how_to_empty_it(
    kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    name = f"{kafka_prefix}purge"
    kafka_backend.create_topic(Topic(name, partitions=2))
    for partition in (0, 1, 1):
        kafka_backend.publish(OutgoingMessage(name, b"x", partition=partition))

    try:
        purged = kafka_backend.purge(name)
    except UnsupportedError as exc:  # Tansu 0.6: DeleteRecords is advertised but not implemented
        assert "DeleteRecords" in exc.message and "recreate the topic" in exc.hint
        assert len(kafka_backend.peek(name)) == 3  # nothing was deleted
    else:  # a broker with DeleteRecords (Kafka)
        assert purged == 3
        assert kafka_backend.peek(name) == []
