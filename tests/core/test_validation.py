"""Argument, name and bind validation follow RabbitMQ's and Kafka's own rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqstudio.core.errors import (
    DuplicateBindingError,
    InvalidArgumentError,
    InvalidBindingError,
    UnknownObjectError,
)
from mqstudio.core.model import (
    Binding,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    NodeKind,
    Queue,
    Topic,
    Topology,
)
from mqstudio.core.validation import (
    check_bind,
    check_node,
    topic_matches,
    validate_binding_args,
    validate_consumer_group,
    validate_exchange,
    validate_name,
    validate_queue,
    validate_topic,
)


def paths(problems: list[Any]) -> list[str]:
    return [p.path for p in problems]


# -- names --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "name", "fragment"),
    [
        (NodeKind.QUEUE, "", "needs a name"),
        (NodeKind.QUEUE, "q" * 256, "255"),
        (NodeKind.QUEUE, "é" * 128, "256 bytes"),
        (NodeKind.QUEUE, "amq.mine", "reserved"),
        (NodeKind.EXCHANGE, "amq.custom", "reserved"),
        (NodeKind.TOPIC, "", "not a valid Kafka topic name"),
        (NodeKind.TOPIC, ".", "not a valid Kafka topic name"),
        (NodeKind.TOPIC, "..", "not a valid Kafka topic name"),
        (NodeKind.TOPIC, "t" * 250, "249"),
        (NodeKind.TOPIC, "orders/eu", "'/'"),
        (NodeKind.TOPIC, "orders eu", "letters, digits"),
        (NodeKind.CONSUMER_GROUP, "", "needs a name"),
    ],
)
def test_invalid_names_are_reported_with_a_reason(kind: NodeKind, name: str, fragment: str) -> None:
    problems = validate_name(kind, name, "x.name")
    assert len(problems) == 1
    assert problems[0].path == "x.name"
    assert fragment in problems[0].message


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (NodeKind.EXCHANGE, ""),  # the default exchange
        (NodeKind.EXCHANGE, "amq.topic"),  # built into every vhost
        (NodeKind.QUEUE, "q" * 255),
        (NodeKind.QUEUE, "orders.eu/v1 ünïcode"),
        (NodeKind.TOPIC, "t" * 249),
        (NodeKind.TOPIC, "orders.eu_v1-x"),
        (NodeKind.CONSUMER_GROUP, "billing"),
    ],
)
def test_valid_names_have_no_problems(kind: NodeKind, name: str) -> None:
    assert validate_name(kind, name, "name") == []


@settings(deadline=None)
@given(st.text(alphabet="abcXYZ019._-", min_size=1, max_size=249).filter(lambda s: s not in (".", "..")))
def test_any_kafka_name_from_the_legal_alphabet_is_valid(name: str) -> None:
    assert validate_name(NodeKind.TOPIC, name) == []


# -- queues -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "bad_key", "fragment"),
    [
        ({"x-message-ttl": -1}, "x-message-ttl", "at least 0"),
        ({"x-message-ttl": "60000"}, "x-message-ttl", "integer"),
        ({"x-message-ttl": 1.5}, "x-message-ttl", "integer"),
        ({"x-message-ttl": True}, "x-message-ttl", "integer"),
        ({"x-expires": 0}, "x-expires", "at least 1"),
        ({"x-max-length": -5}, "x-max-length", "at least 0"),
        ({"x-max-length-bytes": "10MB"}, "x-max-length-bytes", "integer"),
        ({"x-overflow": "drop-tail"}, "x-overflow", "one of"),
        ({"x-queue-type": "quorum", "x-overflow": "reject-publish-dlx"}, "x-overflow", "quorum"),
        ({"x-max-priority": -1}, "x-max-priority", "at least 0"),
        ({"x-max-priority": 256}, "x-max-priority", "at most 255"),
        ({"x-queue-type": "quorum", "x-max-priority": 5}, "x-max-priority", "quorum"),
        ({"x-queue-type": "lazy"}, "x-queue-type", "one of"),
        ({"x-delivery-limit": 3}, "x-delivery-limit", "only quorum"),
        ({"x-queue-type": "quorum", "x-delivery-limit": -1}, "x-delivery-limit", "at least 0"),
        ({"x-dead-letter-exchange": 5}, "x-dead-letter-exchange", "string"),
        ({"x-dead-letter-routing-key": "k"}, "x-dead-letter-routing-key", "x-dead-letter-exchange"),
        (
            {"x-queue-type": "quorum", "x-dead-letter-strategy": "exactly-once"},
            "x-dead-letter-strategy",
            "one of",
        ),
        ({"x-dead-letter-strategy": "at-most-once"}, "x-dead-letter-strategy", "only quorum"),
        ({"x-single-active-consumer": 1}, "x-single-active-consumer", "true or false"),
        ({"x-queue-mode": "eager"}, "x-queue-mode", "one of"),
        ({"x-queue-type": "quorum", "x-queue-mode": "lazy"}, "x-queue-mode", "only classic"),
        ({"x-queue-type": "stream", "x-max-age": "7 days"}, "x-max-age", "unit"),
        ({"x-queue-type": "stream", "x-message-ttl": 1000}, "x-message-ttl", "streams do not support"),
        ({"x-queue-type": "stream", "x-max-length": 10}, "x-max-length", "streams do not support"),
        ({"x-queue-type": "stream", "x-dead-letter-exchange": "d"}, "x-dead-letter-exchange", "streams"),
    ],
)
def test_queue_arguments_rabbitmq_refuses_are_problems(
    arguments: dict[str, Any], bad_key: str, fragment: str
) -> None:
    problems = validate_queue(Queue("q", arguments=arguments), "queues[0]")
    assert paths(problems) == [f"queues[0].arguments.{bad_key}"]
    assert fragment in problems[0].message


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"x-message-ttl": 0, "x-expires": 1, "x-max-length": 0, "x-max-length-bytes": 0},
        {"x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "dlx"},
        {"x-queue-type": "quorum", "x-overflow": "drop-head"},
        {"x-queue-type": "quorum", "x-overflow": "reject-publish", "x-dead-letter-strategy": "at-least-once"},
        {"x-queue-type": "quorum", "x-delivery-limit": 0},
        {"x-max-priority": 1},
        {"x-max-priority": 255},
        {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "retry"},
        {"x-single-active-consumer": True, "x-queue-mode": "lazy"},
        {"x-queue-type": "stream"},
        {"x-queue-type": "stream", "x-max-age": "7D", "x-max-length-bytes": 10**9},
        {"x-custom-plugin-arg": object(), "x-anything": [1, 2]},  # unknown x- arguments are allowed
    ],
)
def test_queue_arguments_rabbitmq_accepts_have_no_problems(arguments: dict[str, Any]) -> None:
    assert validate_queue(Queue("q", arguments=arguments)) == []


@pytest.mark.parametrize("queue_type", ["quorum", "stream"])
@pytest.mark.parametrize(
    ("flags", "bad_field"),
    [
        ({"durable": False}, "durable"),
        ({"exclusive": True}, "exclusive"),
        ({"auto_delete": True}, "auto_delete"),
    ],
)
def test_replicated_queues_must_be_durable_and_not_exclusive_or_auto_delete(
    queue_type: str, flags: dict[str, bool], bad_field: str
) -> None:
    q = Queue("q", arguments={"x-queue-type": queue_type}, **flags)
    assert paths(validate_queue(q, "q")) == [f"q.{bad_field}"]


def test_queue_flags_must_be_booleans_not_integers() -> None:
    q = Queue("q", durable=1)  # type: ignore[arg-type]
    assert paths(validate_queue(q)) == ["durable"]


def test_queue_paths_have_no_leading_dot_without_a_base_path() -> None:
    problems = validate_queue(Queue("", arguments={"x-expires": 0}))
    assert paths(problems) == ["name", "arguments.x-expires"]


# -- exchanges ----------------------------------------------------------------------------------
def test_delayed_exchange_without_delayed_type_is_a_problem() -> None:
    problems = validate_exchange(Exchange("delay", type=ExchangeType.DELAYED), "exchanges[1]")
    assert paths(problems) == ["exchanges[1].arguments.x-delayed-type"]


@pytest.mark.parametrize(
    ("ex", "expected"),
    [
        (Exchange("d", type=ExchangeType.DELAYED, arguments={"x-delayed-type": "direct"}), []),
        (
            Exchange("d", type=ExchangeType.DELAYED, arguments={"x-delayed-type": "delayed"}),
            ["arguments.x-delayed-type"],
        ),
        (Exchange("e", arguments={"alternate-exchange": "ae"}), []),
        (Exchange("e", arguments={"alternate-exchange": 1}), ["arguments.alternate-exchange"]),
        (Exchange("e", type="x-consistent-hash"), []),
        (Exchange("e", type="fancy"), []),
        (Exchange("e", type=""), ["type"]),
        (Exchange("e", type="x" * 256), ["type"]),
        (Exchange("e", type=3), ["type"]),  # type: ignore[arg-type]
        (Exchange("e", internal="yes"), ["internal"]),  # type: ignore[arg-type]
        (Exchange("", type=ExchangeType.DIRECT), []),
    ],
)
def test_exchange_rules(ex: Exchange, expected: list[str]) -> None:
    assert paths(validate_exchange(ex)) == expected


# -- Kafka --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (Topic("t", partitions=3, replication_factor=3), []),
        (Topic("t", partitions=0), ["partitions"]),
        (Topic("t", replication_factor=0), ["replication_factor"]),
        (Topic("t", configs={"cleanup.policy": "compact,delete"}), []),
        (Topic("t", configs={"cleanup.policy": "archive"}), ["configs.cleanup.policy"]),
        (Topic("t", configs={"retention.ms": "-1"}), []),
        (Topic("t", configs={"retention.ms": "-2"}), ["configs.retention.ms"]),
        (Topic("t", configs={"retention.ms": "7d"}), ["configs.retention.ms"]),
        (
            Topic("t", configs={"min.insync.replicas": "2"}, replication_factor=1),
            ["configs.min.insync.replicas"],
        ),
        (Topic("t", configs={"some.unknown.key": "whatever"}), []),
        (Topic("t", configs={"retention.ms": 100}), ["configs.retention.ms"]),  # type: ignore[dict-item]
    ],
)
def test_topic_rules(topic: Topic, expected: list[str]) -> None:
    assert paths(validate_topic(topic)) == expected


def test_consumer_group_needs_a_name() -> None:
    assert paths(validate_consumer_group(ConsumerGroup(""), "groups[0]")) == ["groups[0].name"]
    assert validate_consumer_group(ConsumerGroup("billing", topics=["t-1"])) == []


# -- check_node ---------------------------------------------------------------------------------
def test_check_node_raises_the_first_problem_with_its_path() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        check_node(Queue("q", arguments={"x-max-length": -1, "x-expires": 0}))
    assert caught.value.path == "arguments.x-expires"


def test_check_node_accepts_a_valid_node() -> None:
    check_node(Queue("q", arguments={"x-message-ttl": 1000}))


# -- bindings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("x_match", ["all", "any", "all-with-x", "any-with-x"])
def test_headers_binding_accepts_every_x_match_rabbitmq_knows(x_match: str) -> None:
    source = Exchange("h", type=ExchangeType.HEADERS)
    assert validate_binding_args(Binding(source.id, "q", "", {"x-match": x_match}), source) == []


def test_headers_binding_with_unknown_x_match_is_a_problem() -> None:
    source = Exchange("h", type=ExchangeType.HEADERS)
    problems = validate_binding_args(Binding(source.id, "q", "", {"x-match": "some"}), source, "bindings[0]")
    assert paths(problems) == ["bindings[0].arguments.x-match"]


def test_x_match_on_a_direct_exchange_is_an_ordinary_argument() -> None:
    source = Exchange("d")
    assert validate_binding_args(Binding(source.id, "q", "k", {"x-match": "some"}), source) == []


def test_binding_arguments_must_fit_an_amqp_table() -> None:
    source = Exchange("h", type=ExchangeType.HEADERS)
    binding = Binding(source.id, "q", "", {"format": {1, 2}, "ok": [1, "a", {"n": None}]})
    assert paths(validate_binding_args(binding, source)) == ["arguments.format"]


@pytest.fixture
def topo() -> Topology:
    t = Topology()
    for node in (
        Exchange("orders", id="ex"),
        Exchange("audit", type=ExchangeType.HEADERS, id="hx"),
        Exchange("", id="default"),
        Exchange("remote", vhost="/other", id="other"),
        Queue("billing", id="q"),
        Topic("events", id="t"),
        ConsumerGroup("g", id="g"),
    ):
        t.add_node(node)
    return t


@pytest.mark.parametrize(
    ("source", "destination", "field", "fragment"),
    [
        ("q", "ex", "source", "starts at an exchange"),
        ("ex", "t", "destination", "Kafka"),
        ("t", "q", "source", "Kafka"),
        ("ex", "g", "destination", "Kafka"),
        ("default", "q", "source", "default exchange"),
        ("ex", "default", "destination", "default exchange"),
        ("other", "q", "destination", "vhost"),
    ],
)
def test_check_bind_refuses_bindings_rabbitmq_cannot_hold(
    topo: Topology, source: str, destination: str, field: str, fragment: str
) -> None:
    with pytest.raises(InvalidBindingError) as caught:
        check_bind(topo, source, destination, "k", {})
    assert caught.value.path == field
    assert fragment in caught.value.message


def test_check_bind_refuses_an_identical_binding(topo: Topology) -> None:
    topo.add_binding(Binding("ex", "q", "k", {"a": 1}, id="b1"))
    with pytest.raises(DuplicateBindingError):
        check_bind(topo, "ex", "q", "k", {"a": 1})
    check_bind(topo, "ex", "q", "k", {"a": 2})  # different arguments: a different binding
    check_bind(topo, "ex", "q", "k2", {"a": 1})
    check_bind(topo, "ex", "q", "k", {"a": 1}, ignore="b1")  # editing b1 itself


def test_check_bind_refuses_a_bad_x_match(topo: Topology) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        check_bind(topo, "hx", "q", "", {"x-match": "most"})
    assert caught.value.path == "arguments.x-match"


def test_check_bind_allows_exchange_to_exchange(topo: Topology) -> None:
    check_bind(topo, "ex", "hx", "k", None)


def test_check_bind_reports_unknown_ids(topo: Topology) -> None:
    with pytest.raises(UnknownObjectError):
        check_bind(topo, "ex", "missing", "", {})


# -- topic matching -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("#", "", True),
        ("*", "", False),
        ("#.b", "b", True),
        ("#.b", "a.x.b", True),
        ("#.b", "a.b.c", False),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("*.#.*", "a", False),
        ("*.#.*", "a.b", True),
        ("a..b", "a..b", True),
        ("a.*.b", "a..b", True),
    ],
)
def test_topic_matching_is_word_by_word(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


words = st.lists(st.sampled_from(["a", "b", "c", "dd"]), min_size=0, max_size=6)


@settings(deadline=None)
@given(words)
def test_a_key_matches_itself_and_hash(key_words: list[str]) -> None:
    key = ".".join(key_words)
    assert topic_matches(key, key)
    assert topic_matches("#", key)


@settings(deadline=None)
@given(words.filter(bool), st.data())
def test_replacing_a_word_by_star_still_matches(key_words: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(key_words) - 1))
    pattern = [*key_words]
    pattern[index] = "*"
    assert topic_matches(".".join(pattern), ".".join(key_words))
    assert not topic_matches(".".join([*pattern, "*"]), ".".join(key_words))


@settings(deadline=None)
@given(words, words, words)
def test_hash_absorbs_any_middle(prefix: list[str], middle: list[str], suffix: list[str]) -> None:
    pattern = ".".join([*prefix, "#", *suffix])
    assert topic_matches(pattern, ".".join([*prefix, *middle, *suffix]))


# -- what RabbitMQ accepts ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arguments",
    [
        {"x-max-priority": 0},  # check_max_priority_arg: a non-negative integer up to 255
        {"x-max-priority": 255},
        # declared fine; RabbitMQ falls back to at-most-once (lint warns instead)
        {"x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once", "x-dead-letter-exchange": "d"},
        {"x-queue-type": "stream", "x-max-length-bytes": 10**9, "x-max-age": "7D"},
        {"x-queue-type": "stream", "x-stream-max-segment-size-bytes": 500_000, "x-initial-cluster-size": 3},
    ],
)
def test_queue_arguments_rabbitmq_accepts_are_not_problems(arguments: dict[str, Any]) -> None:
    assert validate_queue(Queue("q", arguments=arguments)) == []


@pytest.mark.parametrize(
    "key",
    [
        "x-expires",
        "x-message-ttl",
        "x-max-length",
        "x-overflow",
        "x-dead-letter-exchange",
        "x-queue-mode",
        "x-single-active-consumer",
        "x-max-in-memory-length",
        "x-quorum-initial-group-size",
    ],
)
def test_stream_refuses_what_check_declare_arguments_refuses(key: str) -> None:
    values = {"x-overflow": "drop-head", "x-dead-letter-exchange": "d", "x-queue-mode": "lazy"}
    value = values.get(key, True if key == "x-single-active-consumer" else 5)
    problems = validate_queue(Queue("s", arguments={"x-queue-type": "stream", key: value}))
    assert [p.path for p in problems] == [f"arguments.{key}"]
    assert "streams do not support" in problems[0].message


def test_plugin_exchange_types_are_valid_and_stay_plain_strings() -> None:
    ex = Exchange("hash", type="x-consistent-hash")
    assert validate_exchange(ex) == [] and ex.type == "x-consistent-hash" and not ex.type_known
    known = Exchange("t", type="topic")
    assert known.type is ExchangeType.TOPIC and known.type_known
