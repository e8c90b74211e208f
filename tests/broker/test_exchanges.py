"""Exchanges: the registry, per-type routing tables, binding bookkeeping, delayed-message rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqstudio.broker.errors import CommandInvalid, PreconditionFailed
from mqstudio.broker.exchanges import (
    EXCHANGE_TYPES,
    BindingRecord,
    DelayedMessageExchange,
    Destination,
    DestinationKind,
    DirectExchange,
    Exchange,
    ExchangeType,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
    create_exchange,
)
from mqstudio.broker.headers import headers_match
from mqstudio.broker.topic import topic_matches


def q(name: str) -> Destination:
    return Destination(DestinationKind.QUEUE, name)


def x(name: str) -> Destination:
    return Destination(DestinationKind.EXCHANGE, name)


Q1, Q2, Q3 = q("q1"), q("q2"), q("q3")


# -- registry and declaration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "cls"),
    [
        ("direct", DirectExchange),
        ("fanout", FanoutExchange),
        ("topic", TopicExchange),
        ("headers", HeadersExchange),
        (ExchangeType.TOPIC, TopicExchange),
    ],
)
def test_create_exchange_uses_the_registry(type_name: str, cls: type[Exchange]) -> None:
    ex = create_exchange("ex", type_name, durable=False, auto_delete=True, internal=True, arguments={"k": 1})
    assert type(ex) is cls
    assert EXCHANGE_TYPES[cls.type] is cls
    assert (ex.name, ex.durable, ex.auto_delete, ex.internal, ex.arguments) == (
        "ex",
        False,
        True,
        True,
        {"k": 1},
    )


def test_declaration_defaults() -> None:
    ex = create_exchange("ex", "direct")
    assert (ex.durable, ex.auto_delete, ex.internal, ex.arguments, ex.bindings) == (
        True,
        False,
        False,
        {},
        [],
    )


def test_unknown_type_is_command_invalid_like_rabbitmq() -> None:
    with pytest.raises(CommandInvalid) as info:
        create_exchange("ex", "x-consistent-hash")
    assert info.value.code == 503
    assert info.value.text == "unknown exchange type 'x-consistent-hash'"


def test_arguments_are_copied() -> None:
    args = {"alternate-exchange": "ae"}
    ex = create_exchange("ex", "fanout", arguments=args)
    args["alternate-exchange"] = "other"
    assert ex.alternate_exchange == "ae"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, None),
        ({"alternate-exchange": "ae"}, "ae"),
        ({"alternate-exchange": b"ae"}, "ae"),
        ({"alternate-exchange": 5}, None),
    ],
)
def test_alternate_exchange(arguments: dict[str, Any], expected: str | None) -> None:
    assert create_exchange("ex", "direct", arguments=arguments).alternate_exchange == expected


# -- routing tables -----------------------------------------------------------------------------

DIRECT_BINDINGS = [(Q1, "a"), (Q2, "a"), (Q3, "b"), (x("x2"), "b"), (Q1, "")]


@pytest.mark.parametrize(
    ("routing_key", "expected"),
    [("a", {Q1, Q2}), ("b", {Q3, x("x2")}), ("", {Q1}), ("c", set()), ("A", set()), ("a.b", set())],
)
def test_direct_routes_on_exact_key(routing_key: str, expected: set[Destination]) -> None:
    ex = create_exchange("d", "direct")
    for dest, key in DIRECT_BINDINGS:
        ex.bind(dest, key)
    assert ex.route(routing_key, None) == expected


@pytest.mark.parametrize("routing_key", ["", "a", "anything.at.all"])
def test_fanout_routes_to_every_binding(routing_key: str) -> None:
    ex = create_exchange("f", "fanout")
    ex.bind(Q1, "ignored")
    ex.bind(Q2, "")
    ex.bind(x("x2"), "#")
    assert ex.route(routing_key, {"h": 1}) == {Q1, Q2, x("x2")}


def test_empty_exchanges_route_nowhere() -> None:
    for type_name in ("direct", "fanout", "topic", "headers"):
        assert create_exchange("e", type_name).route("a", {"a": 1}) == set()


@pytest.mark.parametrize(
    ("routing_key", "expected"),
    [
        ("quick.orange.rabbit", {Q1, Q2}),
        ("lazy.orange.elephant", {Q1, Q2}),
        ("quick.orange.fox", {Q1}),
        ("lazy.brown.fox", {Q2}),
        ("lazy.pink.rabbit", {Q2}),
        ("quick.brown.fox", set()),
        ("orange", set()),
        ("quick.orange.new.rabbit", set()),
        ("lazy.orange.new.rabbit", {Q2}),
    ],
)
def test_topic_exchange_tutorial_five(routing_key: str, expected: set[Destination]) -> None:
    ex = create_exchange("topic_logs", "topic")
    ex.bind(Q1, "*.orange.*")
    ex.bind(Q2, "*.*.rabbit")
    ex.bind(Q2, "lazy.#")
    assert ex.route(routing_key, None) == expected


HEADERS_BINDINGS: list[tuple[Destination, dict[str, Any]]] = [
    (Q1, {"x-match": "all", "format": "pdf", "type": "report"}),
    (Q2, {"x-match": "any", "format": "zip", "type": "log"}),
    (Q3, {"x-match": "all-with-x", "x-tenant": "acme"}),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"format": "pdf", "type": "report"}, {Q1}),
        ({"format": "pdf", "type": "log"}, {Q2}),
        ({"format": "zip"}, {Q2}),
        ({"x-tenant": "acme", "format": "pdf", "type": "report"}, {Q1, Q3}),
        ({"format": "PDF", "type": "report"}, set()),
        ({}, set()),
        (None, set()),
    ],
)
def test_headers_exchange_routes_on_headers_not_key(
    headers: dict[str, Any] | None, expected: set[Destination]
) -> None:
    ex = create_exchange("h", "headers")
    for dest, args in HEADERS_BINDINGS:
        ex.bind(dest, "routing key is ignored", args)
    assert ex.route("anything", headers) == expected


def test_headers_binding_with_bad_x_match_is_refused_and_not_stored() -> None:
    ex = create_exchange("h", "headers")
    with pytest.raises(PreconditionFailed) as info:
        ex.bind(Q1, "", {"x-match": "most"})
    assert info.value.code == 406
    assert ex.bindings == []
    assert ex.route("", {"a": 1}) == set()


def test_x_match_is_not_validated_on_other_types() -> None:
    ex = create_exchange("d", "direct")
    assert ex.bind(Q1, "k", {"x-match": "most"}) is True
    assert ex.route("k", None) == {Q1}


# -- binding bookkeeping ------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["direct", "fanout", "topic", "headers"])
def test_bind_is_idempotent(type_name: str) -> None:
    ex = create_exchange("e", type_name)
    assert ex.bind(Q1, "k", {"a": 1}) is True
    assert ex.bind(Q1, "k", {"a": 1}) is False
    assert ex.bindings == [BindingRecord("e", Q1, "k", (("a", 1),))]


def test_binding_identity_includes_key_arguments_and_destination_kind() -> None:
    ex = create_exchange("e", "direct")
    assert ex.bind(q("n"), "k") is True
    assert ex.bind(x("n"), "k") is True  # a queue and an exchange may share a name
    assert ex.bind(q("n"), "k2") is True
    assert ex.bind(q("n"), "k", {"a": 1}) is True
    assert ex.bind(q("n"), "k", {"a": True}) is True  # typed: True is not 1
    assert ex.bind(q("n"), "k", {}) is False  # {} and None are the same (no arguments)
    assert len(ex.bindings) == 5


def test_binding_record_arguments_are_sorted_and_frozen() -> None:
    ex = create_exchange("e", "topic")
    ex.bind(Q1, "a.#", {"z": 1, "a": {"n": [1, 2]}, "m": None})
    (record,) = ex.bindings
    assert record.source == "e"
    assert record.arguments == (("a", (("n", (1, 2)),)), ("m", None), ("z", 1))
    hash(record)
    with pytest.raises(AttributeError):
        record.routing_key = "other"  # type: ignore[misc]


def test_bindings_list_in_declaration_order() -> None:
    ex = create_exchange("e", "fanout")
    for dest in (Q3, Q1, Q2):
        ex.bind(dest, "")
    assert [b.destination for b in ex.bindings] == [Q3, Q1, Q2]


@pytest.mark.parametrize("type_name", ["direct", "fanout", "topic", "headers"])
def test_same_destination_twice_routes_once_until_the_last_binding_goes(type_name: str) -> None:
    ex = create_exchange("e", type_name)
    ex.bind(Q1, "k", {"x-match": "any", "h": 1})
    ex.bind(Q1, "k", {"x-match": "any", "h": 1, "v": 2})
    assert ex.route("k", {"h": 1}) == {Q1}
    assert ex.unbind(Q1, "k", {"x-match": "any", "h": 1}) is True
    assert ex.route("k", {"h": 1}) == {Q1}
    assert ex.unbind(Q1, "k", {"x-match": "any", "h": 1, "v": 2}) is True
    assert ex.route("k", {"h": 1}) == set()
    assert ex.bindings == []


def test_unbind_needs_the_exact_binding() -> None:
    ex = create_exchange("e", "direct")
    ex.bind(Q1, "k", {"a": 1})
    assert ex.unbind(Q1, "k") is False
    assert ex.unbind(Q1, "k", {"a": True}) is False
    assert ex.unbind(Q2, "k", {"a": 1}) is False
    assert ex.unbind(Q1, "other", {"a": 1}) is False
    assert ex.route("k", None) == {Q1}
    assert ex.unbind(Q1, "k", {"a": 1}) is True
    assert ex.unbind(Q1, "k", {"a": 1}) is False
    assert ex.route("k", None) == set()


@pytest.mark.parametrize("type_name", ["direct", "fanout", "topic", "headers"])
def test_unbind_destination_removes_all_its_bindings(type_name: str) -> None:
    ex = create_exchange("e", type_name)
    ex.bind(Q1, "a")
    ex.bind(Q2, "a")
    ex.bind(Q1, "b", {"x": 1})
    ex.bind(x("q1"), "a")  # same name, other kind: must survive
    removed = ex.unbind_destination(Q1)
    assert removed == [BindingRecord("e", Q1, "a", ()), BindingRecord("e", Q1, "b", (("x", 1),))]
    assert [b.destination for b in ex.bindings] == [Q2, x("q1")]
    assert Q1 not in ex.route("a", {}) | ex.route("b", {})
    assert Q2 in ex.route("a", {})
    assert ex.unbind_destination(Q1) == []
    assert ex.bind(Q1, "a") is True  # and it can be bound again


def test_route_returns_a_fresh_set() -> None:
    for type_name in ("direct", "fanout", "topic", "headers"):
        ex = create_exchange("e", type_name)
        ex.bind(Q1, "k")
        ex.route("k", {}).add(Q2)
        ex.route("k", {}).clear()
        assert ex.route("k", {}) == {Q1}


def test_has_bindings() -> None:
    ex = create_exchange("e", "direct")
    assert not ex.has_bindings()
    ex.bind(Q1, "k")
    assert ex.has_bindings()
    ex.unbind_destination(Q1)
    assert not ex.has_bindings()


# -- x-delayed-message --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "code", "text"),
    [
        ({}, PreconditionFailed, 406, "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        ({"x-delayed-type": 5}, PreconditionFailed, 406, "must be an existing exchange type"),
        (
            {"x-delayed-type": "x-delayed-message"},
            PreconditionFailed,
            406,
            "can't be used for 'x-delayed-type'",
        ),
        ({"x-delayed-type": "nope"}, CommandInvalid, 503, "unknown exchange type 'nope'"),
    ],
)
def test_delayed_exchange_needs_a_valid_delayed_type(
    arguments: dict[str, Any], error: type[Exception], code: int, text: str
) -> None:
    with pytest.raises(error) as info:
        create_exchange("dx", "x-delayed-message", arguments=arguments)
    assert getattr(info.value, "code", None) == code
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("delayed_type", "key", "headers", "expected"),
    [
        ("direct", "a", None, {Q1}),
        ("direct", "b", None, set()),
        ("fanout", "zzz", None, {Q1, Q2}),
        ("topic", "a.b.c", None, {Q1, Q2}),
        ("topic", "a", None, {Q1}),
        ("headers", "", {"h": 1}, {Q2}),
        ("headers", "", {"h": "1"}, set()),
    ],
)
def test_delayed_exchange_routes_like_its_delayed_type(
    delayed_type: str, key: str, headers: dict[str, Any] | None, expected: set[Destination]
) -> None:
    ex = create_exchange("dx", "x-delayed-message", arguments={"x-delayed-type": delayed_type, "x-delay": 9})
    assert isinstance(ex, DelayedMessageExchange)
    assert ex.delayed_type == delayed_type
    ex.bind(Q1, "a" if delayed_type == "direct" else "a.#", {"x-match": "all", "zz": 0})
    ex.bind(Q2, "*.b.*", {"h": 1})
    assert ex.route(key, headers) == expected
    q1_key = ex.bindings[0].routing_key
    assert ex.unbind_destination(Q1) == [BindingRecord("dx", Q1, q1_key, (("x-match", "all"), ("zz", 0)))]
    assert Q1 not in ex.route(key, headers)


def test_delayed_headers_exchange_validates_bindings() -> None:
    ex = create_exchange("dx", "x-delayed-message", arguments={"x-delayed-type": "headers"})
    with pytest.raises(PreconditionFailed):
        ex.bind(Q1, "", {"x-match": "most"})
    assert ex.bindings == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, 0),
        ({}, 0),
        ({"x-delay": 5000}, 5000),
        ({"x-delay": 0}, 0),
        ({"x-delay": -100}, 0),
        ({"x-delay": 1.9}, 1),  # the plugin truncates floats
        ({"x-delay": float("nan")}, 0),
        ({"x-delay": "250"}, 250),  # ... and parses integer strings
        ({"x-delay": b"250"}, 250),
        ({"x-delay": "-250"}, 0),
        ({"x-delay": "1_000"}, 0),
        ({"x-delay": " 5"}, 0),
        ({"x-delay": "soon"}, 0),
        ({"x-delay": True}, 0),
        ({"x-delay": None}, 0),
        ({"x-delay": [5]}, 0),
        ({"x-delay": 4_294_967_295}, 4_294_967_295),
        ({"x-delay": 4_294_967_296}, 0),  # beyond the Erlang timer: routed at once
        ({"X-Delay": 5}, 0),
    ],
)
def test_delay_ms(headers: dict[str, Any] | None, expected: int) -> None:
    ex = create_exchange("dx", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    assert isinstance(ex, DelayedMessageExchange)
    assert ex.delay_ms(headers) == expected


# -- property: an exchange routes like a list of bindings scanned by hand ------------------------

DESTS = st.sampled_from([Q1, Q2, x("q1")])
KEYS = st.lists(st.sampled_from(["a", "b", "", "*", "#"]), max_size=3).map(".".join)
ARGS = st.sampled_from([None, {"x-match": "any", "h": 1}, {"h": True}, {"h": None}])
OPS = st.lists(st.tuples(st.sampled_from(["bind", "unbind", "drop"]), DESTS, KEYS, ARGS), max_size=25)


def _reference_match(type_name: str, pattern: str, arguments: Any, key: str, headers: dict[str, Any]) -> bool:
    if type_name == "direct":
        return pattern == key
    if type_name == "fanout":
        return True
    if type_name == "topic":
        return topic_matches(pattern, key)
    return headers_match(arguments or {}, headers)


@settings(max_examples=150)
@given(
    type_name=st.sampled_from(["direct", "fanout", "topic", "headers"]),
    ops=OPS,
    probes=st.lists(st.tuples(KEYS, st.sampled_from([{}, {"h": 1}, {"h": True}])), min_size=1, max_size=4),
)
def test_routing_agrees_with_a_plain_binding_list(
    type_name: str, ops: list[tuple[str, Destination, str, Any]], probes: list[tuple[str, dict[str, Any]]]
) -> None:
    ex = create_exchange("e", type_name)
    model: list[tuple[Destination, str, Any]] = []
    for op, dest, key, args in ops:
        entry = (dest, key, args)
        if op == "bind":
            assert ex.bind(dest, key, args) is (entry not in model)
            if entry not in model:
                model.append(entry)
        elif op == "unbind":
            assert ex.unbind(dest, key, args) is (entry in model)
            if entry in model:
                model.remove(entry)
        else:
            removed = ex.unbind_destination(dest)
            assert [(r.destination, r.routing_key) for r in removed] == [
                (d, k) for d, k, _ in model if d == dest
            ]
            model = [m for m in model if m[0] != dest]
    assert [(b.destination, b.routing_key) for b in ex.bindings] == [(d, k) for d, k, _ in model]
    for key, headers in probes:
        expected = {d for d, p, a in model if _reference_match(type_name, p, a, key, headers)}
        assert ex.route(key, headers) == expected
