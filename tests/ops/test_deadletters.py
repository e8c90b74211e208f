"""ops.deadletters: DLQ discovery, death parsing (RabbitMQ, Spring Kafka, Kafka Connect), grouping,
filtering, and the destructive operations against the embedded broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mqstudio.backends.base import BackendKind, BrokerMessage, OutgoingMessage, UnsupportedError
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topic, Topology
from mqstudio.ops.deadletters import (
    DeathInfo,
    PurgeRefusedError,
    delete_from_middle,
    find_dead_letter_queues,
    fingerprint,
    group_by,
    matches,
    parse_death,
    purge,
    resubmit,
    selected,
)
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread


# -- discovery --------------------------------------------------------------------------------------
def _dlx_design(dlx_type: ExchangeType, binding_key: str, dlrk: str | None) -> Topology:
    t = Topology()
    args = {"x-dead-letter-exchange": "dlx"}
    if dlrk is not None:
        args["x-dead-letter-routing-key"] = dlrk
    work, dlx = Exchange("work"), Exchange("dlx", dlx_type)
    orders = Queue("orders", arguments=args)
    parked = Queue("parked")
    other = Queue("other")
    for node in (work, dlx, orders, parked, other):
        t.add_node(node)
    t.add_binding(Binding(work.id, orders.id, "order.created"))
    t.add_binding(Binding(dlx.id, parked.id, binding_key))
    return t


@pytest.mark.parametrize(
    ("dlx_type", "binding_key", "dlrk", "found"),
    [
        (ExchangeType.DIRECT, "dead", "dead", True),
        (ExchangeType.DIRECT, "other", "dead", False),
        (ExchangeType.DIRECT, "order.created", None, True),  # the message's own key is used
        (ExchangeType.FANOUT, "ignored", "dead", True),
        (ExchangeType.TOPIC, "dead.#", "dead.orders", True),
        (ExchangeType.TOPIC, "*.created", None, True),
        (ExchangeType.TOPIC, "*.deleted", "x.created", False),
    ],
)
def test_a_queue_the_dead_letter_exchange_routes_to_is_a_dlq(
    dlx_type: ExchangeType, binding_key: str, dlrk: str | None, found: bool
) -> None:
    infos = find_dead_letter_queues(_dlx_design(dlx_type, binding_key, dlrk))
    names = [i.name for i in infos]
    assert ("parked" in names) is found
    assert "other" not in names and "orders" not in names
    if found:
        assert infos[0].sources == ("orders",)
        assert "dead-letter target of orders" in infos[0].why


def test_the_default_exchange_as_dlx_targets_the_queue_named_by_the_key() -> None:
    t = Topology()
    t.add_node(Queue("orders", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "park"}))
    t.add_node(Queue("park"))
    assert [i.name for i in find_dead_letter_queues(t)] == ["park"]


def test_dead_letter_routes_follow_exchange_to_exchange_bindings() -> None:
    t = _dlx_design(ExchangeType.FANOUT, "", "dead")
    hop = Exchange("hop", ExchangeType.FANOUT)
    deep = Queue("deep")
    t.add_node(hop)
    t.add_node(deep)
    t.add_binding(Binding(t.find_exchange("dlx").id, hop.id))  # type: ignore[union-attr]
    t.add_binding(Binding(hop.id, deep.id))
    assert {i.name for i in find_dead_letter_queues(t)} == {"parked", "deep"}


def test_names_mark_dead_letter_queues_and_topics() -> None:
    t = Topology()
    for name in ("a.dlq", "b.dead", "c.DLQ", "d-dlq", "e.queue", "dlq"):
        t.add_node(Queue(name))
    for name in ("orders.DLT", "orders-dlt", "orders.dlq", "orders"):
        t.add_node(Topic(name))
    infos = find_dead_letter_queues(t)
    assert [(i.name, i.kind) for i in infos] == [
        ("a.dlq", "queue"), ("b.dead", "queue"), ("c.DLQ", "queue"), ("d-dlq", "queue"),
        ("orders.DLT", "topic"), ("orders-dlt", "topic"), ("orders.dlq", "topic"),
    ]
    assert all(i.by_name and not i.sources for i in infos)


# -- parsing ----------------------------------------------------------------------------------------
def _msg(headers: dict[str, object], **kw: object) -> BrokerMessage:
    return BrokerMessage(source=str(kw.pop("source", "dlq")), body=kw.pop("body", b"{}"),  # type: ignore[arg-type]
                         headers=headers, **kw)  # type: ignore[arg-type]


def test_x_death_is_read_newest_first_with_counts_summed() -> None:
    first = datetime(2024, 5, 1, 12, 0, 0)  # pika: naive UTC
    later = 1714568400 + 3600  # int seconds
    message = _msg({
        "x-death": [
            {"count": 2, "reason": "expired", "queue": "wait", "time": later, "exchange": "retry",
             "routing-keys": ["order.created"]},
            {"count": 1, "reason": "rejected", "queue": "orders", "time": first, "exchange": "work",
             "routing-keys": ["order.created", "cc.key"]},
        ],
    })
    info = parse_death(message)
    assert (info.reason, info.origin, info.exchange) == ("expired", "wait", "retry")
    assert info.routing_keys == ("order.created",)
    assert info.count == 3
    assert info.first_death == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert info.last_death == datetime.fromtimestamp(later, UTC)


def test_x_last_death_headers_win_over_the_first_x_death_entry() -> None:
    message = _msg({
        "x-death": [{"count": 1, "reason": "rejected", "queue": "q1", "exchange": "e1"}],
        "x-last-death-reason": "maxlen", "x-last-death-queue": "q2", "x-last-death-exchange": "e2",
    })
    info = parse_death(message)
    assert (info.reason, info.origin, info.exchange) == ("maxlen", "q2", "e2")


def test_x_first_death_alone_is_enough() -> None:
    info = parse_death(_msg({"x-first-death-reason": "expired", "x-first-death-queue": "q",
                             "x-first-death-exchange": ""}))
    assert (info.reason, info.origin, info.count) == ("expired", "q", 1)


def test_a_message_without_dead_letter_headers_has_an_empty_death() -> None:
    info = parse_death(_msg({"app": "x"}))
    assert info == DeathInfo() and not info.dead


def test_spring_kafka_dlt_headers_are_read_with_binary_partition_and_offset() -> None:
    message = _msg(
        {
            "kafka_dlt-original-topic": "orders",
            # the Kafka backend decodes header bytes that are valid UTF-8 to str
            "kafka_dlt-original-partition": (3).to_bytes(4, "big").decode("latin-1"),
            "kafka_dlt-original-offset": (1234).to_bytes(8, "big"),
            "kafka_dlt-exception-fqcn": b"org.example.ValidationException",
            "kafka_dlt-exception-message": "bad total",
            "kafka_dlt-exception-stacktrace": "at org.example.Foo",
        },
        source="orders.DLT", timestamp_ms=1_700_000_000_000, routing_key="k1",
    )
    info = parse_death(message)
    assert info.origin == "orders" and info.origin_partition == 3 and info.origin_offset == 1234
    assert info.exception == "org.example.ValidationException"
    assert info.reason == "ValidationException" and info.exception_message == "bad total"
    assert info.stacktrace == "at org.example.Foo" and info.count == 1
    assert info.last_death == datetime.fromtimestamp(1_700_000_000, UTC)


def test_kafka_connect_error_headers_are_read() -> None:
    info = parse_death(_msg({
        "__connect.errors.topic": "raw", "__connect.errors.partition": "0",
        "__connect.errors.offset": "77",
        "__connect.errors.exception.class.name": "org.apache.kafka.DataException",
        "__connect.errors.exception.message": "Converting byte[] failed",
    }))
    assert (info.origin, info.origin_partition, info.origin_offset) == ("raw", 0, 77)
    assert info.exception == "org.apache.kafka.DataException"
    assert info.exception_message == "Converting byte[] failed"


# -- grouping and filtering -------------------------------------------------------------------------
def _death(reason: str, queue: str, when: int, body: bytes = b"{}") -> BrokerMessage:
    return _msg({"x-death": [{"count": 1, "reason": reason, "queue": queue, "time": when}],
                 "tenant": {"id": 7, "name": "acme"}}, body=body)


def test_group_by_reason_and_origin_keeps_first_appearance_order() -> None:
    msgs = [_death("rejected", "a", 1), _death("expired", "b", 2), _death("rejected", "b", 3), _msg({})]
    by_reason = group_by(msgs, "reason")
    assert list(by_reason) == ["rejected", "expired", "(none)"]
    assert [len(v) for v in by_reason.values()] == [2, 1, 1]
    assert {k: len(v) for k, v in group_by(msgs, "origin").items()} == {"a": 1, "b": 2, "(none)": 1}
    assert list(group_by(msgs, "exception")) == ["(none)"]
    with pytest.raises(ValueError, match="cannot group"):
        group_by(msgs, "colour")  # type: ignore[arg-type]


def test_matches_text_in_body_and_nested_headers_case_insensitively() -> None:
    m = _death("rejected", "orders", 1_700_000_000, body=b'{"sku": "ABC-1"}')
    assert matches(m, text="abc-1") and matches(m, text="ACME") and matches(m, text="orders")
    assert not matches(m, text="nothing-like-this")


def test_matches_header_equals_value_or_presence() -> None:
    m = _msg({"priority": "high", "n": 5})
    assert matches(m, header="priority=high") and matches(m, header="n=5") and matches(m, header="n")
    assert matches(m, header=("priority", "high"))
    assert not matches(m, header="priority=low") and not matches(m, header="missing")


def test_matches_time_range_is_inclusive_and_accepts_milliseconds() -> None:
    m = _death("rejected", "q", 1_700_000_000)
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    assert matches(m, since=at, until=at)
    assert matches(m, since=1_699_999_999_000) and not matches(m, since=1_700_000_001_000)
    assert not matches(m, until=datetime(2020, 1, 1, tzinfo=UTC))
    assert not matches(_msg({}), since=at)  # no time at all: outside every range


def test_fingerprints_differ_by_headers_and_match_equal_content() -> None:
    a, b = _msg({"k": 1}), _msg({"k": 1})
    assert fingerprint(a) == fingerprint(b) != fingerprint(_msg({"k": 2}))


# -- against the embedded broker --------------------------------------------------------------------
@pytest.fixture
def backend() -> Iterator[EmbeddedBackend]:
    thread = EmbeddedBrokerThread(port=0, name="test-dlq-broker")
    thread.start()
    b = EmbeddedBackend(thread)
    b.connect()
    yield b
    b.close()
    assert thread.stop(10.0)


def _fill(backend: EmbeddedBackend, bodies: list[bytes]) -> None:
    t = Topology()
    t.add_node(Queue("parked.dlq"))
    backend.apply(backend.plan(t))
    for body in bodies:
        assert backend.publish(OutgoingMessage("", body, "parked.dlq", {"n": body.decode()})).routed


def _bodies(backend: EmbeddedBackend) -> list[bytes]:
    return [m.body for m in backend.peek("parked.dlq", 100)]


def test_delete_from_middle_removes_only_the_chosen_messages(backend: EmbeddedBackend) -> None:
    _fill(backend, [b"m0", b"m1", b"m2", b"m3", b"m4"])
    result = delete_from_middle(backend, "parked.dlq", lambda m: m.body in (b"m1", b"m3"), limit=10)
    assert (result.deleted, result.requeued) == (2, 3)
    assert sorted(_bodies(backend)) == [b"m0", b"m2", b"m4"]


def test_delete_from_middle_stops_at_the_limit(backend: EmbeddedBackend) -> None:
    _fill(backend, [b"a", b"b", b"c", b"d"])
    result = delete_from_middle(backend, "parked.dlq", lambda m: True, limit=2)
    assert result.deleted == 2
    assert sorted(_bodies(backend)) == [b"c", b"d"]


def test_selected_deletes_each_chosen_copy_once(backend: EmbeddedBackend) -> None:
    _fill(backend, [b"x", b"x", b"y"])
    chosen = [m for m in backend.peek("parked.dlq", 10) if m.body == b"x"][:1]
    result = delete_from_middle(backend, "parked.dlq", selected(chosen), limit=len(chosen))
    assert result.deleted == 1
    assert sorted(_bodies(backend)) == [b"x", b"y"]


def test_delete_from_middle_is_refused_on_kafka() -> None:
    class Kafka:
        kind = BackendKind.KAFKA

    with pytest.raises(UnsupportedError):
        delete_from_middle(Kafka(), "t.DLT", lambda m: True, 1)  # type: ignore[arg-type]


def test_purge_needs_the_queue_name_typed_exactly(backend: EmbeddedBackend) -> None:
    _fill(backend, [b"1", b"2"])
    with pytest.raises(PurgeRefusedError):
        purge(backend, "parked.dlq", "parked")
    assert len(_bodies(backend)) == 2
    assert purge(backend, "parked.dlq", "parked.dlq") == 2
    assert _bodies(backend) == []


def test_resubmit_publishes_the_edit_then_removes_the_original(backend: EmbeddedBackend) -> None:
    _fill(backend, [b"old", b"keep"])
    t = Topology()
    t.add_node(Queue("orders"))
    backend.apply(backend.plan(t))
    original = backend.peek("parked.dlq", 1)[0]
    result = resubmit(backend, "parked.dlq", original, OutgoingMessage("", b"new", "orders", {"fixed": True}))
    assert result.found and result.removed and result.published is not None
    assert _bodies(backend) == [b"keep"]
    arrived = backend.peek("orders", 10)
    assert [(m.body, m.headers) for m in arrived] == [(b"new", {"fixed": True})]


def test_resubmit_keeps_the_original_when_the_new_one_is_not_routed(backend: EmbeddedBackend) -> None:
    _fill(backend, [b"old"])
    original = backend.peek("parked.dlq", 1)[0]
    result = resubmit(backend, "parked.dlq", original, OutgoingMessage("", b"new", "no-such-queue"))
    assert result.found and not result.removed
    assert result.published is not None and not result.published.routed
    assert _bodies(backend) == [b"old"]


def test_fingerprint_ignores_the_delivery_count_a_quorum_queue_bumps_on_requeue() -> None:
    once = _msg({"k": 1, "x-delivery-count": 0})
    twice = _msg({"k": 1, "x-delivery-count": 1})
    assert fingerprint(once) == fingerprint(twice) == fingerprint(_msg({"k": 1}))
