"""The Broker facade: declarations and their RabbitMQ checks, routing, vhosts, stats."""

from __future__ import annotations

from typing import Any

import pytest

from mqstudio.broker.errors import (
    AccessRefused,
    BrokerError,
    CommandInvalid,
    NotAllowed,
    NotFound,
    PreconditionFailed,
)

from .enginekit import Kit

X = "inequivalent arg "  # RabbitMQ's assert_equivalence reply text starts so


def test_default_exchanges_are_predeclared() -> None:
    names = set(Kit().broker.vhost("/").exchanges)
    assert names == {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"}


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        (
            {"durable": False},
            PreconditionFailed,
            X + "'durable' for exchange 'x' in vhost '/': received 'false' but current is 'true'",
        ),
        (
            {"type_": "fanout"},
            PreconditionFailed,
            X + "'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'",
        ),
        (
            {"auto_delete": True},
            PreconditionFailed,
            X + "'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            {"internal": True},
            PreconditionFailed,
            X + "'internal' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            {"arguments": {"alternate-exchange": "ae"}},
            PreconditionFailed,
            "inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received the value 'ae' of "
            "type 'longstr' but current is none",
        ),
        ({"type_": "nonsense"}, CommandInvalid, "unknown exchange type 'nonsense'"),
    ],
)
def test_exchange_redeclare_equivalence(kwargs: dict[str, Any], error: type[BrokerError], text: str) -> None:
    k = Kit()
    k.broker.declare_exchange("/", "x", "direct")
    type_ = kwargs.pop("type_", "direct")
    with pytest.raises(error) as exc:
        k.broker.declare_exchange("/", "x", type_, **kwargs)
    assert exc.value.text == text


def test_equivalent_redeclare_is_ok_including_amq_names() -> None:
    k = Kit()
    k.broker.declare_exchange("/", "x", "topic", arguments={"unrelated": 1})
    k.broker.declare_exchange("/", "x", "topic", arguments={"unrelated": 2})  # only AE is compared
    k.broker.declare_exchange("/", "amq.direct", "direct")


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (
            lambda b: b.declare_exchange("/", "amq.custom", "direct"),
            AccessRefused,
            "exchange name 'amq.custom' contains reserved prefix 'amq.*'",
        ),
        (
            lambda b: b.declare_exchange("/", "", "direct"),
            AccessRefused,
            "operation not permitted on the default exchange",
        ),
        (
            lambda b: b.delete_exchange("/", ""),
            AccessRefused,
            "operation not permitted on the default exchange",
        ),
        (
            lambda b: b.queue_bind("/", "q", "", "k"),
            AccessRefused,
            "operation not permitted on the default exchange",
        ),
        (
            lambda b: b.declare_exchange("/", "nope", passive=True),
            NotFound,
            "no exchange 'nope' in vhost '/'",
        ),
        (lambda b: b.declare_queue("/", "nope", passive=True), NotFound, "no queue 'nope' in vhost '/'"),
        (
            lambda b: b.declare_queue("/", "amq.q"),
            AccessRefused,
            "queue name 'amq.q' contains reserved prefix 'amq.*'",
        ),
        (lambda b: b.queue_bind("/", "q", "missing", "k"), NotFound, "no exchange 'missing' in vhost '/'"),
        (
            lambda b: b.queue_bind("/", "missing", "amq.direct", "k"),
            NotFound,
            "no queue 'missing' in vhost '/'",
        ),
        (lambda b: b.publish("/", "missing", "k", None, b""), NotFound, "no exchange 'missing' in vhost '/'"),
        (lambda b: b.vhost("other"), NotAllowed, "vhost other not found"),
    ],
)
def test_declaration_errors(call: Any, error: type[BrokerError], text: str) -> None:
    k = Kit()
    k.queue("q")
    with pytest.raises(error) as exc:
        call(k.broker)
    assert exc.value.text == text and exc.value.code == error.code


@pytest.mark.parametrize(
    ("redeclare", "text"),
    [
        (
            {"durable": False},
            X + "'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'",
        ),
        (
            {"arguments": {"x-message-ttl": 5}},
            X + "'x-message-ttl' for queue 'q' in vhost '/': received the value '5' of type 'long' "
            "but current is the value '10' of type 'long'",
        ),
        (
            {"arguments": {}},
            X + "'x-message-ttl' for queue 'q' in vhost '/': received none but current is the "
            "value '10' of type 'long'",
        ),
    ],
)
def test_queue_redeclare_equivalence(redeclare: dict[str, Any], text: str) -> None:
    k = Kit()
    k.broker.declare_queue("/", "q", arguments={"x-message-ttl": 10})
    with pytest.raises(PreconditionFailed) as exc:
        k.broker.declare_queue("/", "q", **redeclare)
    assert exc.value.text == text


def test_queue_declare_ok_counts_and_server_names() -> None:
    k = Kit()
    ok = k.broker.declare_queue("/", "")
    assert ok.name.startswith("amq.gen-") and ok.message_count == 0
    k.publish(ok.name)
    name, count, consumers = k.broker.declare_queue("/", ok.name, passive=True)
    assert (name, count, consumers) == (ok.name, 1, 0)


def test_server_names_are_deterministic_per_seed() -> None:
    assert Kit().broker.declare_queue("/", "").name == Kit().broker.declare_queue("/", "").name


@pytest.mark.parametrize("prop", ["exclusive", "auto_delete", "non_durable"])
def test_quorum_queue_property_refusals(prop: str) -> None:
    k = Kit()
    kw = {
        "exclusive": prop == "exclusive",
        "auto_delete": prop == "auto_delete",
        "durable": prop != "non_durable",
    }
    with pytest.raises(PreconditionFailed) as exc:
        k.broker.declare_queue("/", "qq", arguments={"x-queue-type": "quorum"}, owner="c1", **kw)
    assert exc.value.text == f"invalid property '{prop.replace('_', '-')}' for queue 'qq' in vhost '/'"


def test_every_queue_is_bound_to_the_default_exchange_by_name() -> None:
    k = Kit()
    k.queue("jobs")
    assert k.publish("jobs").routed == ("jobs",)
    assert k.publish("other").unroutable


@pytest.mark.parametrize(("mandatory", "returned"), [(True, True), (False, False)])
def test_mandatory_unroutable_is_returned(mandatory: bool, returned: bool) -> None:
    k = Kit()
    k.exchange("x")
    r = k.publish("nobody", exchange="x", mandatory=mandatory)
    assert (r.unroutable, r.returned, r.routed) == (True, returned, ())
    assert k.broker.snapshot().exchange("x").unroutable == 1


def test_internal_exchange_refuses_direct_publish_but_routes_via_e2e() -> None:
    k = Kit()
    k.exchange("front", "fanout")
    k.exchange("inner", "direct", internal=True)
    k.queue("q")
    k.broker.exchange_bind("/", "inner", "front")
    k.bind("q", "inner", "k")
    with pytest.raises(AccessRefused) as exc:
        k.publish("k", exchange="inner")
    assert exc.value.text == "cannot publish to internal exchange 'inner' in vhost '/'"
    assert k.publish("k", exchange="front").routed == ("q",)


def test_exchange_to_exchange_loop_terminates_and_delivers_once() -> None:
    k = Kit()
    k.exchange("a", "fanout")
    k.exchange("b", "fanout")
    k.queue("q")
    k.broker.exchange_bind("/", "b", "a")
    k.broker.exchange_bind("/", "a", "b")
    k.bind("q", "b")
    k.bind("q", "a")
    assert k.publish("", exchange="a").routed == ("q",)
    assert k.stats("q").ready == 1


def test_alternate_exchange_chain() -> None:
    # ae docs: unroutable messages go to the AE; if the AE cannot route either, to its own AE.
    k = Kit()
    k.exchange("ae2", "fanout")
    k.exchange("ae1", "direct", arguments={"alternate-exchange": "ae2"})
    k.exchange("main", "direct", arguments={"alternate-exchange": "ae1"})
    k.queue("caught")
    k.queue("q")
    k.bind("caught", "ae2")
    k.bind("q", "main", "known")
    assert k.publish("known", exchange="main").routed == ("q",)
    assert k.publish("unknown", exchange="main").routed == ("caught",)


def test_alternate_exchange_loop_is_unroutable() -> None:
    k = Kit()
    k.exchange("a", "direct", arguments={"alternate-exchange": "b"})
    k.exchange("b", "direct", arguments={"alternate-exchange": "a"})
    assert k.publish("k", exchange="a").unroutable


def test_cc_header_adds_routing_keys() -> None:
    k = Kit()
    k.queue("one")
    k.queue("two")
    r = k.publish("one", headers={"CC": ["two"]})
    assert r.routed == ("one", "two")
    (d,) = k.get_all("two")
    assert d.message.headers["CC"] == ["two"]


def test_delete_exchange_if_unused_and_cleanup() -> None:
    k = Kit()
    k.exchange("x")
    k.queue("q")
    k.bind("q", "x", "k")
    with pytest.raises(PreconditionFailed) as exc:
        k.broker.delete_exchange("/", "x", if_unused=True)
    assert exc.value.text == "exchange 'x' in vhost '/' in use"
    k.broker.delete_exchange("/", "x")
    k.broker.delete_exchange("/", "x")  # idempotent
    with pytest.raises(AccessRefused):
        k.broker.delete_exchange("/", "amq.fanout")


def test_auto_delete_exchange_goes_with_its_last_binding() -> None:
    k = Kit()
    k.exchange("ad", "fanout", auto_delete=True)
    k.queue("q1")
    k.queue("q2")
    k.bind("q1", "ad")
    k.bind("q2", "ad")
    k.broker.queue_unbind("/", "q1", "ad")
    assert "ad" in k.broker.vhost("/").exchanges
    k.broker.delete_queue("/", "q2")  # removing the destination removes the binding too
    assert "ad" not in k.broker.vhost("/").exchanges


def test_route_cache_follows_binding_changes() -> None:
    k = Kit()
    k.exchange("x")
    k.queue("q1")
    k.queue("q2")
    k.bind("q1", "x", "k")
    assert k.publish("k", exchange="x").routed == ("q1",)
    k.bind("q2", "x", "k")
    assert k.publish("k", exchange="x").routed == ("q1", "q2")
    k.broker.queue_unbind("/", "q1", "x", "k")
    assert k.publish("k", exchange="x").routed == ("q2",)
    k.broker.delete_queue("/", "q2")
    assert k.publish("k", exchange="x").unroutable


def test_vhosts_are_isolated() -> None:
    k = Kit()
    k.broker.add_vhost("other")
    k.broker.declare_queue("other", "q")
    assert k.publish("q").unroutable
    assert k.broker.publish("other", "", "q", None, b"x").routed == ("q",)
    k.broker.delete_vhost("other")
    assert k.broker.vhost_names == ["/"]


def test_snapshot_counters() -> None:
    k = Kit()
    k.exchange("x")
    k.queue("q")
    k.bind("q", "x", "k")
    s = k.session()
    s.basic_consume("q", "c")
    for _ in range(3):
        k.publish("k", exchange="x")
    ds = s.poll()
    s.ack(ds[0].delivery_tag)
    s.nack(ds[1].delivery_tag, requeue=True)
    snap = k.broker.snapshot()
    q = snap.queue("q")
    assert (
        q.published,
        q.delivered,
        q.redelivered,
        q.acked,
        q.rejected,
        q.ready,
        q.unacked,
        q.consumers,
    ) == (
        3,
        4,
        1,
        1,
        1,
        0,
        2,
        1,
    )
    x = snap.exchange("x")
    assert (x.published_in, x.published_out, x.unroutable) == (3, 3, 0)
    assert (snap.published, snap.acked, snap.unacked) == (3, 1, 2)
