"""Headers matching: x-match modes, x- arguments, void presence checks, typed equality."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqstudio.broker.errors import PreconditionFailed
from mqstudio.broker.headers import HeadersMatcher, XMatch, canonical, headers_match, parse_x_match

# (binding arguments, message headers, matches?) — rules of rabbit_exchange_type_headers.erl.
CASES: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = [
    # all (the default)
    ({"a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),
    ({"a": 1, "b": "x"}, {"a": 1, "b": "x", "c": 3}, True),
    ({"a": 1, "b": "x"}, {"a": 1}, False),
    ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
    ({"x-match": "all", "a": 1}, {"a": 1}, True),
    ({"a": 1}, None, False),
    # any
    ({"x-match": "any", "a": 1, "b": 2}, {"b": 2}, True),
    ({"x-match": "any", "a": 1, "b": 2}, {"a": 2, "b": 1}, False),
    ({"x-match": "any", "a": 1}, {}, False),
    ({"x-match": "any", "a": 1}, None, False),
    # no conditions: all of nothing holds, any of nothing does not
    ({}, {}, True),
    ({}, None, True),
    ({"x-match": "all"}, {"a": 1}, True),
    ({"x-match": "any"}, {"a": 1}, False),
    # x- arguments are ignored under all/any ...
    ({"x-match": "all", "x-foo": "bar", "a": 1}, {"a": 1}, True),
    ({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"}, False),
    # ... and included under the -with-x modes; x-match itself never is
    ({"x-match": "all-with-x", "x-foo": "bar"}, {"x-foo": "bar"}, True),
    ({"x-match": "all-with-x", "x-foo": "bar"}, {}, False),
    ({"x-match": "all-with-x", "x-foo": "bar", "a": 1}, {"a": 1}, False),
    ({"x-match": "all-with-x"}, {}, True),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": 2}, {"x-foo": "bar"}, True),
    ({"x-match": "any-with-x", "x-foo": "bar"}, {"x-foo": "baz"}, False),
    ({"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False),
    # a void binding argument tests presence only
    ({"a": None}, {"a": "anything"}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {}, False),
    ({"x-match": "any", "a": None, "b": 1}, {"a": 0}, True),
    ({"a": 1}, {"a": None}, False),
    # typed equality
    ({"a": 1}, {"a": "1"}, False),
    ({"a": "1"}, {"a": 1}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": 1}, {"a": True}, False),
    ({"a": 0}, {"a": False}, False),
    ({"a": 1}, {"a": 1.0}, True),  # Erlang == compares numbers by value
    ({"a": "x"}, {"a": b"x"}, True),  # both are a longstr on the wire
    ({"a": Decimal("1.5")}, {"a": Decimal("1.5")}, True),
    ({"a": Decimal("1")}, {"a": 1}, False),
    ({"a": {"k": [1, 2]}}, {"a": {"k": [1, 2]}}, True),
    ({"a": {"k": [1, 2]}}, {"a": {"k": [1, True]}}, False),
    ({"a": [1, 2]}, {"a": (1, 2)}, True),
    (
        {"a": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)},
        {"a": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)},
        True,
    ),
]


@pytest.mark.parametrize(("arguments", "headers", "expected"), CASES)
def test_headers_match_table(
    arguments: dict[str, Any], headers: dict[str, Any] | None, expected: bool
) -> None:
    assert headers_match(arguments, headers) is expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, XMatch.ALL),
        ({"x-match": "all"}, XMatch.ALL),
        ({"x-match": "any"}, XMatch.ANY),
        ({"x-match": "all-with-x"}, XMatch.ALL_WITH_X),
        ({"x-match": "any-with-x"}, XMatch.ANY_WITH_X),
        ({"x-match": b"any"}, XMatch.ANY),
    ],
)
def test_parse_x_match(arguments: dict[str, Any], expected: XMatch) -> None:
    assert parse_x_match(arguments) is expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("some", "Invalid x-match field value"), ("ALL", "Invalid x-match field value"), (1, "field type")],
)
def test_invalid_x_match_is_precondition_failed(value: object, fragment: str) -> None:
    with pytest.raises(PreconditionFailed) as info:
        parse_x_match({"x-match": value})
    assert info.value.code == 406
    assert fragment in info.value.text


def test_compile_drops_x_arguments_only_when_not_with_x() -> None:
    assert [n for n, _ in HeadersMatcher.compile({"x-a": 1, "b": 2}).conditions] == ["b"]
    both = HeadersMatcher.compile({"x-match": "any-with-x", "x-a": 1, "b": 2})
    assert [n for n, _ in both.conditions] == ["b", "x-a"]


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1, True),
        (1, True, False),
        (1, 1.0, True),
        ("a", b"a", True),
        ("1", 1, False),
        (None, None, True),
        (None, 0, False),
        ({"a": 1}, {"a": 1}, True),
        ({"a": 1}, {"a": True}, False),
        ([1], (1,), True),
        ([1], {"0": 1}, False),
    ],
)
def test_canonical_equality(left: object, right: object, equal: bool) -> None:
    assert (canonical(left) == canonical(right)) is equal
    hash(canonical(left))  # must be usable as a dict key


# -- property: the matcher agrees with the rules written as set logic ---------------------------

NAMES = st.sampled_from(["a", "b", "x-c"])
VALUES = st.sampled_from([1, "1", True, None, 2.0, b"1"])


def _typed(value: object) -> tuple[str, object]:
    if value is None or isinstance(value, bool):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("num", float(value))
    if isinstance(value, bytes):
        return ("str", value.decode())
    return ("str", value)


def _oracle(arguments: dict[str, Any], headers: dict[str, Any]) -> bool:
    mode = arguments.get("x-match", "all")
    considered = {
        k: v
        for k, v in arguments.items()
        if k != "x-match" and (mode.endswith("with-x") or not k.startswith("x-"))
    }
    hits = [k in headers and (v is None or _typed(v) == _typed(headers[k])) for k, v in considered.items()]
    return all(hits) if mode.startswith("all") else any(hits)


@given(
    mode=st.sampled_from([None, "all", "any", "all-with-x", "any-with-x"]),
    arguments=st.dictionaries(NAMES, VALUES, max_size=3),
    headers=st.dictionaries(NAMES, VALUES, max_size=3),
)
def test_matcher_agrees_with_set_logic(
    mode: str | None, arguments: dict[str, Any], headers: dict[str, Any]
) -> None:
    if mode is not None:
        arguments = {**arguments, "x-match": mode}
    assert headers_match(arguments, headers) is _oracle(arguments, headers)
