"""Header matching for the headers exchange: `x-match` parsing and type-aware value comparison.

Owns: `XMatch`, `parse_x_match` (binding validation), `canonical` (the type-tagged, hashable form of an
AMQP field value, also used by exchanges.py to decide whether two bindings are identical) and
`HeadersMatcher` (one compiled binding). Must not import anything outside the stdlib.

Rules follow RabbitMQ's `deps/rabbit/src/rabbit_exchange_type_headers.erl`:

* `x-match` is `all` (default when absent), `any`, `all-with-x` or `any-with-x`; any other string, or
  a non-string, is refused when binding ("Invalid x-match field value …", 406 PRECONDITION_FAILED);
* under `all`/`any`, binding arguments whose name starts with `x-` are ignored for matching; under
  `all-with-x`/`any-with-x` they take part. `x-match` itself never takes part;
* a binding argument with no value (AMQP field type `void`, `None` here) matches when the header is
  present, whatever its value;
* `all` with no considered arguments matches every message; `any` with none matches nothing;
* values are compared as typed AMQP values: `1` and `"1"` differ, `True` and `1` differ (Erlang
  `true` is an atom), `1` and `1.0` are equal (Erlang `==` on numbers), `str` and `bytes` holding
  the same UTF-8 are equal (both are a `longstr` on the wire).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .errors import PreconditionFailed

__all__ = ["X_MATCH", "HeadersMatcher", "XMatch", "canonical", "headers_match", "parse_x_match"]

X_MATCH = "x-match"


class XMatch(StrEnum):
    ALL = "all"
    ANY = "any"
    ALL_WITH_X = "all-with-x"
    ANY_WITH_X = "any-with-x"

    @property
    def needs_all(self) -> bool:
        return self in (XMatch.ALL, XMatch.ALL_WITH_X)

    @property
    def includes_x(self) -> bool:
        return self in (XMatch.ALL_WITH_X, XMatch.ANY_WITH_X)


def parse_x_match(arguments: Mapping[str, Any]) -> XMatch:
    """The binding's match kind; raises PreconditionFailed like RabbitMQ's `validate_binding/2`."""
    raw = arguments.get(X_MATCH)
    if raw is None:
        # The spec is vague on whether x-match may be omitted; RabbitMQ defaults to `all`.
        return XMatch.ALL
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", "replace")
    if not isinstance(raw, str):
        raise PreconditionFailed(
            f"Invalid x-match field type {type(raw).__name__} (value {raw!r}); expected longstr"
        )
    try:
        return XMatch(raw)
    except ValueError:
        raise PreconditionFailed(
            f"Invalid x-match field value {raw!r}; expected all, any, all-with-x, or any-with-x"
        ) from None


def canonical(value: Any) -> Any:
    """A hashable, type-tagged form of an AMQP field value: equal iff RabbitMQ would call them equal.

    Python's own `==` is wrong for routing: `True == 1` and `hash(True) == hash(1)`, while in RabbitMQ
    a boolean never equals an integer. Tagging every value with its AMQP kind fixes that, and turning
    tables and arrays into tuples makes binding arguments usable as dictionary keys.
    """
    if value is None:
        return ("void",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        # Erlang `==` compares numbers by value across integer and float types.
        return ("num", value)
    if isinstance(value, str):
        return ("str", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray | memoryview):
        return ("str", bytes(value))
    if isinstance(value, Decimal):
        return ("decimal", value)
    if isinstance(value, Mapping):
        return ("table", tuple(sorted((str(k), canonical(v)) for k, v in value.items())))
    if isinstance(value, Sequence):
        return ("array", tuple(canonical(v) for v in value))
    # datetime (AMQP timestamp) and anything else hashable: equal only to the same type and value.
    return (type(value).__qualname__, value)


@dataclass(frozen=True, slots=True)
class HeadersMatcher:
    """One headers binding, compiled once at bind time so routing only compares prepared values."""

    mode: XMatch
    # (header name, canonical value or None for a void "presence only" argument)
    conditions: tuple[tuple[str, Any], ...]

    @classmethod
    def compile(cls, arguments: Mapping[str, Any]) -> HeadersMatcher:
        mode = parse_x_match(arguments)
        conditions: list[tuple[str, Any]] = []
        for name, value in sorted(arguments.items()):
            if name == X_MATCH:
                continue  # never a condition, not even under *-with-x
            if name.startswith("x-") and not mode.includes_x:
                continue
            conditions.append((name, None if value is None else canonical(value)))
        return cls(mode, tuple(conditions))

    def matches(self, headers: Mapping[str, Any]) -> bool:
        """`headers` must map names to `canonical` values (see `canonical_headers`)."""
        if self.mode.needs_all:
            for name, expected in self.conditions:
                if name not in headers:
                    return False
                if expected is not None and headers[name] != expected:
                    return False
            return True
        for name, expected in self.conditions:
            if name in headers and (expected is None or headers[name] == expected):
                return True
        return False


def canonical_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Message headers in the form `HeadersMatcher.matches` expects; computed once per message."""
    if not headers:
        return {}
    return {str(name): canonical(value) for name, value in headers.items()}


def headers_match(binding_arguments: Mapping[str, Any], headers: Mapping[str, Any] | None) -> bool:
    """Convenience for one-off checks (tests, the UI's "would this match?"): compile and match."""
    return HeadersMatcher.compile(binding_arguments).matches(canonical_headers(headers))
