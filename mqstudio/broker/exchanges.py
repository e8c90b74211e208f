"""Exchanges of the embedded broker: binding bookkeeping and one routing rule per exchange type.

Owns: `Destination`, `BindingRecord`, the `Exchange` base class, its subclasses (direct, fanout, topic,
headers, x-delayed-message), the `EXCHANGE_TYPES` registry and `create_exchange`. An exchange routes
for itself only: `route()` returns the queues *and exchanges* bound to it that match; the engine
(queues/broker.py) follows exchange-to-exchange bindings, the alternate exchange, the default
exchange's implicit bindings, `internal` and delayed delivery. Must not import anything outside the
stdlib and this package (no `mqstudio.core`: the designer's model is not broker state).

References: AMQP 0-9-1 spec §3.1.3 (exchange types) and RabbitMQ's `rabbit_exchange_type_*.erl`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from .errors import CommandInvalid, PreconditionFailed
from .headers import HeadersMatcher, canonical, canonical_headers
from .topic import TopicTrie

__all__ = [
    "EXCHANGE_TYPES",
    "BindingRecord",
    "DelayedMessageExchange",
    "Destination",
    "DestinationKind",
    "DirectExchange",
    "Exchange",
    "ExchangeType",
    "FanoutExchange",
    "HeadersExchange",
    "TopicExchange",
    "create_exchange",
]


class DestinationKind(StrEnum):
    QUEUE = "queue"
    EXCHANGE = "exchange"


class ExchangeType(StrEnum):
    DIRECT = "direct"
    FANOUT = "fanout"
    TOPIC = "topic"
    HEADERS = "headers"
    DELAYED = "x-delayed-message"


@dataclass(frozen=True, slots=True)
class Destination:
    kind: DestinationKind
    name: str


@dataclass(frozen=True, slots=True)
class BindingRecord:
    """One binding as declared: `arguments` is frozen and sorted by name (values as given)."""

    source: str
    destination: Destination
    routing_key: str
    arguments: tuple[tuple[str, Any], ...]


def _freeze(arguments: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if not arguments:
        return ()
    return tuple(sorted(((str(k), _freeze_value(v)) for k, v in arguments.items()), key=lambda kv: kv[0]))


def _freeze_value(value: Any) -> Any:
    # Tables and arrays become tuples so a BindingRecord stays hashable and immutable.
    if isinstance(value, Mapping):
        return _freeze(value)
    if isinstance(value, list | tuple):
        return tuple(_freeze_value(v) for v in value)
    return value


# Identity of a binding: RabbitMQ treats two bindings as the same when source, destination, key and
# arguments (typed field table) are equal. `canonical` keeps True and 1 apart, which Python's == doesn't.
_BindingKey = tuple[Destination, str, Any]


def _binding_key(
    destination: Destination, routing_key: str, arguments: Mapping[str, Any] | None
) -> _BindingKey:
    return (destination, routing_key, canonical(dict(arguments or {})))


class Exchange:
    """Base of every exchange type; subclasses keep their routing index in sync via the hooks below."""

    type: ClassVar[str]

    __slots__ = ("_bindings", "_by_destination", "arguments", "auto_delete", "durable", "internal", "name")

    def __init__(
        self,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments: dict[str, Any] = dict(arguments or {})
        # Insertion-ordered, so `bindings` lists in declaration order (what a UI or export expects).
        self._bindings: dict[_BindingKey, BindingRecord] = {}
        self._by_destination: dict[Destination, dict[_BindingKey, BindingRecord]] = {}
        self._setup()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, bindings={len(self._bindings)})"

    # -- public API -------------------------------------------------------------------------------

    @property
    def bindings(self) -> list[BindingRecord]:
        return list(self._bindings.values())

    @property
    def alternate_exchange(self) -> str | None:
        """RabbitMQ's `alternate-exchange` argument: where unroutable messages go (engine follows it)."""
        value = self.arguments.get("alternate-exchange")
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("utf-8", "replace")
        return value if isinstance(value, str) else None

    def bind(
        self, destination: Destination, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> bool:
        """Add a binding; False when an identical one exists (queue.bind is idempotent in RabbitMQ)."""
        key = _binding_key(destination, routing_key, arguments)
        if key in self._bindings:
            return False
        record = BindingRecord(self.name, destination, routing_key, _freeze(arguments))
        # Validate before storing so a refused binding (406) leaves no trace.
        self._check_binding(record, arguments or {})
        self._bindings[key] = record
        self._by_destination.setdefault(destination, {})[key] = record
        self._index_add(key, record, arguments or {})
        return True

    def unbind(
        self, destination: Destination, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> bool:
        """Remove the binding with exactly these arguments; False when there is none.

        RabbitMQ answers queue.unbind for a missing binding with unbind-ok, so callers should not
        treat False as an error.
        """
        key = _binding_key(destination, routing_key, arguments)
        record = self._bindings.pop(key, None)
        if record is None:
            return False
        self._forget(key, record)
        return True

    def unbind_destination(self, destination: Destination) -> list[BindingRecord]:
        """Drop every binding to `destination` (it was deleted); returns them in declaration order."""
        records = self._by_destination.get(destination)
        if not records:
            return []
        removed = list(records.items())
        for key, record in removed:
            del self._bindings[key]
            self._forget(key, record)
        return [record for _, record in removed]

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> set[Destination]:
        """Destinations bound to this exchange that match; one hop only (see module docstring)."""
        raise NotImplementedError

    def has_bindings(self) -> bool:
        """True while any binding exists (the engine deletes auto-delete exchanges when this turns False)."""
        return bool(self._bindings)

    # -- subclass hooks ---------------------------------------------------------------------------

    def _setup(self) -> None:
        """Create the routing index and check declaration arguments (raise a BrokerError to refuse)."""
        raise NotImplementedError

    def _check_binding(self, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        """Raise a BrokerError to refuse a binding (like `validate_binding/2`)."""

    def _index_add(self, key: _BindingKey, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _index_remove(self, key: _BindingKey, record: BindingRecord) -> None:
        raise NotImplementedError

    def _forget(self, key: _BindingKey, record: BindingRecord) -> None:
        per_destination = self._by_destination[record.destination]
        del per_destination[key]
        if not per_destination:
            del self._by_destination[record.destination]
        self._index_remove(key, record)


def _incr(counts: dict[Destination, int], destination: Destination) -> None:
    counts[destination] = counts.get(destination, 0) + 1


def _decr(counts: dict[Destination, int], destination: Destination) -> None:
    left = counts[destination] - 1
    if left:
        counts[destination] = left
    else:
        del counts[destination]


class DirectExchange(Exchange):
    """Routes to bindings whose key equals the routing key (AMQP 0-9-1 §3.1.3.1)."""

    type = ExchangeType.DIRECT.value

    __slots__ = ("_routes",)

    def _setup(self) -> None:
        # routing key -> destination -> number of bindings. Counting, because the same queue may be
        # bound with one key several times under different arguments; it must stay routed until
        # the last of those bindings goes, and still receive one copy.
        self._routes: dict[str, dict[Destination, int]] = {}

    def _index_add(self, key: _BindingKey, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        _incr(self._routes.setdefault(record.routing_key, {}), record.destination)

    def _index_remove(self, key: _BindingKey, record: BindingRecord) -> None:
        counts = self._routes[record.routing_key]
        _decr(counts, record.destination)
        if not counts:
            del self._routes[record.routing_key]

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> set[Destination]:
        counts = self._routes.get(routing_key)
        return set(counts) if counts else set()


class FanoutExchange(Exchange):
    """Routes to every binding, ignoring the routing key (AMQP 0-9-1 §3.1.3.2)."""

    type = ExchangeType.FANOUT.value

    __slots__ = ("_destinations",)

    def _setup(self) -> None:
        self._destinations: dict[Destination, int] = {}

    def _index_add(self, key: _BindingKey, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        _incr(self._destinations, record.destination)

    def _index_remove(self, key: _BindingKey, record: BindingRecord) -> None:
        _decr(self._destinations, record.destination)

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> set[Destination]:
        return set(self._destinations)


class TopicExchange(Exchange):
    """Routes by `*`/`#` word patterns (AMQP 0-9-1 §3.1.3.3), matched with a trie (topic.py)."""

    type = ExchangeType.TOPIC.value

    __slots__ = ("_counts", "_trie")

    def _setup(self) -> None:
        self._trie: TopicTrie[Destination] = TopicTrie()
        # (pattern, destination) -> bindings; the trie holds each pair once (see DirectExchange).
        self._counts: dict[tuple[str, Destination], int] = {}

    def _index_add(self, key: _BindingKey, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        pair = (record.routing_key, record.destination)
        count = self._counts.get(pair, 0)
        if count == 0:
            self._trie.add(record.routing_key, record.destination)
        self._counts[pair] = count + 1

    def _index_remove(self, key: _BindingKey, record: BindingRecord) -> None:
        pair = (record.routing_key, record.destination)
        count = self._counts[pair] - 1
        if count:
            self._counts[pair] = count
        else:
            del self._counts[pair]
            self._trie.remove(record.routing_key, record.destination)

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> set[Destination]:
        return self._trie.match(routing_key)


class HeadersExchange(Exchange):
    """Routes on message headers against binding arguments (AMQP 0-9-1 §3.1.3.4; rules in headers.py).

    Like RabbitMQ, every binding is tested per message (there is no index over header values).
    """

    type = ExchangeType.HEADERS.value

    __slots__ = ("_matchers",)

    def _setup(self) -> None:
        self._matchers: dict[_BindingKey, tuple[Destination, HeadersMatcher]] = {}

    def _check_binding(self, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        HeadersMatcher.compile(arguments)  # raises PreconditionFailed for a bad x-match

    def _index_add(self, key: _BindingKey, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        self._matchers[key] = (record.destination, HeadersMatcher.compile(arguments))

    def _index_remove(self, key: _BindingKey, record: BindingRecord) -> None:
        del self._matchers[key]

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> set[Destination]:
        prepared = canonical_headers(headers)
        result: set[Destination] = set()
        for destination, matcher in self._matchers.values():
            if destination not in result and matcher.matches(prepared):
                result.add(destination)
        return result


X_DELAYED_TYPE = "x-delayed-type"
X_DELAY = "x-delay"
# The plugin hands delays to an Erlang timer, whose maximum is 2^32 - 1 ms; anything longer is
# routed at once (`delay_message/2`: `Delay > 0, Delay =< ?ERL_MAX_T`).
MAX_DELAY_MS = 4_294_967_295


class DelayedMessageExchange(Exchange):
    """The rabbitmq-delayed-message-exchange plugin's `x-delayed-message` type.

    It routes exactly like the type named by its `x-delayed-type` argument; the `x-delay` header
    (milliseconds) tells the engine how long to hold the message first. Holding is the engine's job,
    on its injectable clock: this class only routes and reads the delay. (The plugin also rewrites
    `x-delay` to `-Delay` when it releases a message, so an exchange-to-exchange hop does not delay
    it twice; that too is the engine's business.)

    Declaration rules (plugin's `validate/1`): `x-delayed-type` missing or not a string → 406
    "Invalid argument, 'x-delayed-type' must be an existing exchange type"; `x-delayed-message`
    itself → 406; a string naming no registered type → 503 "unknown exchange type", because the
    plugin delegates to `rabbit_exchange:check_type/1` exactly as a direct declaration would.
    """

    type = ExchangeType.DELAYED.value

    __slots__ = ("_inner",)

    def _setup(self) -> None:
        inner_type = self.arguments.get(X_DELAYED_TYPE)
        if isinstance(inner_type, bytes | bytearray):
            inner_type = bytes(inner_type).decode("utf-8", "replace")
        if not isinstance(inner_type, str):
            raise PreconditionFailed("Invalid argument, 'x-delayed-type' must be an existing exchange type")
        if inner_type == self.type:
            raise PreconditionFailed(
                "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"
            )
        inner_cls = EXCHANGE_TYPES.get(inner_type)
        if inner_cls is None:
            raise CommandInvalid(f"unknown exchange type '{inner_type}'")
        # The inner exchange shares our name so its records read as ours; it never appears in the
        # vhost, it is only our routing index.
        self._inner: Exchange = inner_cls(self.name)

    @property
    def delayed_type(self) -> str:
        return self._inner.type

    def delay_ms(self, headers: Mapping[str, Any] | None) -> int:
        """How long the engine should hold a message, in ms; 0 means route now.

        Follows the plugin's `rabbit_delayed_message_utils:get_delay/1`: integer headers are taken
        as they are, floats are truncated, strings holding an integer are parsed; anything else,
        a missing header, a delay <= 0 or one beyond the Erlang timer limit means no delay.
        """
        if not headers:
            return 0
        value = headers.get(X_DELAY)
        delay: int
        if isinstance(value, bool):
            return 0  # an AMQP boolean is not a number, although Python's bool is an int
        if isinstance(value, int):
            delay = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                return 0
            delay = int(value)  # trunc/1
        elif isinstance(value, str | bytes | bytearray):
            text = value if isinstance(value, str) else bytes(value).decode("ascii", "replace")
            # Erlang's binary_to_integer takes an optional sign and digits only (no spaces, no "_"
            # separators, which Python's int() would accept).
            digits = text[1:] if text[:1] in ("+", "-") else text
            if not (digits.isascii() and digits.isdigit()):
                return 0
            delay = int(text)
        else:
            return 0
        return delay if 0 < delay <= MAX_DELAY_MS else 0

    def _check_binding(self, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        self._inner._check_binding(record, arguments)

    def _index_add(self, key: _BindingKey, record: BindingRecord, arguments: Mapping[str, Any]) -> None:
        self._inner._index_add(key, record, arguments)

    def _index_remove(self, key: _BindingKey, record: BindingRecord) -> None:
        self._inner._index_remove(key, record)

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> set[Destination]:
        return self._inner.route(routing_key, headers)


EXCHANGE_TYPES: dict[str, type[Exchange]] = {
    cls.type: cls
    for cls in (DirectExchange, FanoutExchange, TopicExchange, HeadersExchange, DelayedMessageExchange)
}


def create_exchange(
    name: str,
    type: str,
    *,
    durable: bool = True,
    auto_delete: bool = False,
    internal: bool = False,
    arguments: Mapping[str, Any] | None = None,
) -> Exchange:
    """Build an exchange of a registered type, refusing unknown types as RabbitMQ does.

    RabbitMQ's `rabbit_exchange:check_type/1` answers an unknown type with a connection-level
    503 COMMAND_INVALID "unknown exchange type '…'".
    """
    cls = EXCHANGE_TYPES.get(str(type))
    if cls is None:
        raise CommandInvalid(f"unknown exchange type '{type}'")
    return cls(name, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments)
