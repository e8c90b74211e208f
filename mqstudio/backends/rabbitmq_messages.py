"""The pika-free half of the RabbitMQ backend: messages, error texts, replay and confirm bookkeeping.

Owns: the limits and hints `rabbitmq.py` shares with its callers (`MAX_PEEK`, `MAX_REPLAY_BATCH`,
`AMQP_HINT`), the AMQP basic property names, the conversion of a delivery (method, properties, body)
to a `BrokerMessage`, the texts that explain broker failures (channel close codes, the root cause
under a client library's wrappers, what a peek does to a queue) and the checks of a replay handle
before it is settled, which exchanges a tail may observe (`tail_exchange_info`, through the management
client it is given), the publisher-confirm bookkeeping of a pipelined publish (`Confirms`) and the
unsettled deliveries of the replay channel that tell when one ``multiple`` ack may settle many (`Unacked`).

Must not import pika (``rabbitmq.py`` and its float fix ``rabbitmq_pika`` are the only modules that
do, ARCHITECTURE.md), httpx, Qt,
`mqstudio.broker`, `mqstudio.ui` or `mqstudio.runtime`. Deliveries are read by attribute, so any
object shaped like pika's method frame and `BasicProperties` will do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mqstudio.backends.base import (
    BackendError,
    BrokerMessage,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PublishResult,
    UnreachableError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from mqstudio.backends.rabbitmq_http import ManagementClient

MAX_PEEK = 200
"""Hard cap on one peek: every peeked message is held unacknowledged until the peek returns."""
MAX_REPLAY_BATCH = 1000
AMQP_HINT = "is RabbitMQ running there, and is the AMQP port right? (5672, or 5671 for TLS)"
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)
MIRRORABLE_TYPES = {"direct", "topic", "fanout", "headers", "x-delayed-message"}
"""Exchange types a tail can copy bindings of without taking messages from the real destinations."""


# -- error texts ------------------------------------------------------------------------------------
def nothing() -> None:
    pass


def reply(exc: BaseException) -> str:
    inner = exc.args[0] if exc.args else exc
    return str(inner).strip("'\"") or type(exc).__name__


def reason(exc: BaseException) -> str:
    """The root cause under pika's wrappers, e.g. ``Connection refused``."""
    current: Any = exc
    for _ in range(5):
        nested = getattr(current, "exception", None)
        if nested is None and current.args and isinstance(current.args[0], BaseException):
            nested = current.args[0]
        if nested is None:
            break
        current = nested
    if isinstance(current, OSError) and current.strerror:
        return current.strerror
    return str(current) or type(current).__name__


def channel_error(code: int, text: str, what: str, username: str) -> BackendError:
    """The `BackendError` for a channel that RabbitMQ closed with `code` while trying to `what`."""
    if code == 404:
        return NotFoundError(f"cannot {what}: {text}")
    if code in (405, 406):
        return ConflictError(f"cannot {what}: {text}")
    if code == 403:
        return PermissionDeniedError(
            f"user {username!r} may not {what}: {text}",
            "check the user's configure/write/read permissions on the vhost",
        )
    if code == 540:
        return UnsupportedError(f"cannot {what}: {text}")
    return BackendError(f"cannot {what}: ({code}) {text}")


def peek_side_effects_text(queue: str, info: dict[str, Any]) -> str:
    """What peeking `queue` (management API `info`, maybe empty) does to it, in words for the UI."""
    qtype = str(info.get("type") or (info.get("arguments") or {}).get("x-queue-type") or "classic")
    if qtype == "stream":
        return f"Stream {queue!r} is read from an offset without consuming: peeking changes nothing."
    text = (
        f"Peeking {queue!r} takes up to {MAX_PEEK} messages with basic.get and returns them with "
        "basic.nack(requeue=True): RabbitMQ marks them redelivered, and other consumers do not "
        "get them while the peek holds them."
    )
    if qtype == "quorum":
        limit = (info.get("arguments") or {}).get("x-delivery-limit")
        policy = info.get("effective_policy_definition") or {}
        limit = limit if limit is not None else policy.get("delivery-limit")
        shown = f" ({limit})" if limit is not None else " when one is set"
        text += (
            f" On this quorum queue every peek counts as a delivery attempt toward its delivery "
            f"limit{shown}: a message peeked often enough is dead-lettered or dropped."
        )
    return text


# -- messages ---------------------------------------------------------------------------------------
def to_message(source: str, method: Any, props: Any, body: bytes, handle: Any) -> BrokerMessage:
    """A delivery (pika method frame, `BasicProperties`, body) as a `BrokerMessage` with `handle`."""
    properties = {n: getattr(props, n) for n in PROPERTY_NAMES if getattr(props, n, None) is not None}
    stamp = properties.get("timestamp")
    return BrokerMessage(
        source=source,
        body=bytes(body),
        exchange=str(getattr(method, "exchange", "") or ""),
        routing_key=str(getattr(method, "routing_key", "") or ""),
        headers={str(k): plain(v) for k, v in (props.headers or {}).items()},
        properties=properties,
        redelivered=bool(getattr(method, "redelivered", False)),
        timestamp_ms=int(stamp) * 1000 if isinstance(stamp, int) else None,
        handle=handle,
    )


def plain(value: Any) -> Any:
    """Header values as plain Python (pika decodes AMQP long-longs as its own `int` subclass)."""
    kind = type(value)
    if kind in _PLAIN:  # most values: nothing to convert (checked first, this runs per header)
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return value


_PLAIN = frozenset({str, bytes, int, bool, float, type(None)})


# -- replay bookkeeping -----------------------------------------------------------------------------
def replay_handle(message: BrokerMessage) -> tuple[int, int | None, int]:
    """The (connection generation, channel id, delivery tag) a replay take gave `message`."""
    handle = message.handle
    if not (isinstance(handle, tuple) and len(handle) == 3):
        raise ConflictError("this message was not taken with consume_for_replay by this backend")
    return handle


def check_settleable(
    message: BrokerMessage,
    handle: tuple[int, int | None, int],
    *,
    generation: int,
    channel_id: int | None,
    connected: bool,
    address: str,
    what: str = "message",
) -> None:
    """Refuse to settle a message taken on a connection or channel that is gone (it is back in its
    queue: acking its delivery tag would ack another message). `what` names it in the error text."""
    if handle[0] != generation or not connected:
        raise UnreachableError(
            f"lost the connection to RabbitMQ at {address} before settling: RabbitMQ has "
            f"put the {what} back in queue {message.source!r}",
            AMQP_HINT,
        )
    if handle[1] != channel_id:
        raise ConflictError(
            f"the channel that took this message is closed: RabbitMQ has put it back in queue "
            f"{message.source!r}"
        )


# -- tail targets -----------------------------------------------------------------------------------
def tail_exchange_info(http: ManagementClient, vhost: str, target: str) -> dict[str, Any]:
    """The management API's record of exchange `target`, if a tail can observe it; else the error that
    says why not (the default exchange, a queue, an exchange type that picks one destination)."""
    if target == "":
        raise UnsupportedError(
            "the default exchange routes to queues by name; tail the exchange that publishers use"
        )
    try:
        info = http.exchange(vhost, target)
    except NotFoundError:
        try:
            http.queue(vhost, target)
        except NotFoundError:
            raise NotFoundError(f"no exchange or queue named {target!r} in vhost {vhost!r}") from None
        sources = sorted(
            {str(b.get("source")) for b in http.queue_bindings(vhost, target) if b.get("source")}
        )
        alternative = (
            "tail " + " or ".join(f"exchange {s!r}" for s in sources) + " instead"
            if sources
            else "bind an exchange to it and tail that exchange"
        )
        raise UnsupportedError(
            f"RabbitMQ cannot observe queue {target!r} without taking its messages from its consumers",
            alternative,
        ) from None
    etype = str(info.get("type", ""))
    if etype == "x-delayed-message":
        etype = str((info.get("arguments") or {}).get("x-delayed-type", "direct"))
    if etype not in MIRRORABLE_TYPES:
        raise UnsupportedError(
            f"exchange {target!r} is of type {etype!r}, which routes each message to one destination: "
            "a tail binding would take messages away from the real ones",
            "tail an exchange upstream of it",
        )
    return info


# -- publisher confirms -----------------------------------------------------------------------------
class PublishGroup:
    """The results of messages published together, filled in as their confirms arrive."""

    def __init__(self, size: int) -> None:
        self.results: list[PublishResult | None] = [None] * size
        self.pending = size
        self.link: Any = None  # the publisher's connection, channel and confirm state, until waited for

    def set(self, index: int, result: PublishResult) -> None:
        if self.results[index] is None:
            self.pending -= 1
        self.results[index] = result

    def final(self) -> list[PublishResult]:
        """One result per message, in order (not confirmed where no confirm arrived)."""
        return [r if r is not None else PublishResult(False, False, "not confirmed") for r in self.results]


class Confirms:
    """Publisher-confirm bookkeeping of the ``pipeline`` channel (`rabbitmq.RabbitMQBackend.publish_many`).

    Confirms carry the channel's publish sequence number (``multiple`` covers every lower one). A
    ``basic.return`` carries no number: RabbitMQ sends it before the confirm of the same message, but
    confirms do not come in publish order (an unroutable message is confirmed at once, a persistent
    one routed to a durable queue after the fsync), so a return is matched to an unconfirmed message
    by the whole message: exchange, routing key, body and every property including the headers
    (`form`). Copies identical in all of that are interchangeable, and the oldest one is taken. Where
    the properties cannot be told apart exactly (`form` says a value does not survive decoding), every
    unconfirmed message with the same exchange, key and body is counted as returned: its source stays
    where it is (a duplicate at worst, never a loss). The pika frame of a confirm is read by
    `rabbitmq._Confirms.on_confirm`, which calls `confirmed`. Several `PublishGroup`s may be
    unconfirmed at once (a pipelined replay publishes the next batch before the confirms of the one
    before arrived).
    """

    def __init__(self, channel_id: int | None) -> None:
        self.channel_id = channel_id
        self.generation = 0  # of the connection the channel is on
        self.selected = False
        self.seq = 0
        # sequence number -> [group, index in it, (exchange, key, body), properties, form or None];
        # in sequence order (the form is worked out when a return needs it)
        self.outstanding: dict[int, list[Any]] = {}
        self.returned: dict[int, str] = {}

    def on_select_ok(self, _frame: Any) -> None:
        self.selected = True

    def sent(self, group: PublishGroup, index: int, ident: tuple[str, str, bytes], props: Any = None) -> None:
        self.seq += 1
        self.outstanding[self.seq] = [group, index, ident, props, None]

    def form(self, props: Any) -> tuple[Any, bool]:
        """The comparable form of sent properties `props` as a return would carry them, and whether it
        is exact (no two different properties have the same form). Here: `properties_form`."""
        return properties_form(props), True

    def returned_form(self, props: Any) -> Any:
        """The comparable form of the properties of a ``basic.return`` (as `form` makes them)."""
        return properties_form(props)

    def on_return(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        ident = (str(method.exchange), str(method.routing_key), bytes(body))
        why = f"returned by RabbitMQ: ({method.reply_code}) {method.reply_text}"
        candidates = [
            (seq, entry)
            for seq, entry in self.outstanding.items()
            if entry[2] == ident and seq not in self.returned
        ]
        if not candidates:
            return
        try:
            wanted = self.returned_form(props)
            matches = []
            for seq, entry in candidates:
                if entry[4] is None:
                    entry[4] = self.form(entry[3])
                if entry[4][0] == wanted:
                    matches.append((seq, entry[4][1]))
            if matches and all(exact for _seq, exact in matches):  # all alike: take the oldest
                self.returned[matches[0][0]] = why
                return
        except Exception:  # a value that cannot be compared: fail safe below
            pass
        # The returned one cannot be told apart: all that may be it stay unrouted (their sources stay).
        for seq, _entry in candidates:
            self.returned[seq] = f"{why} (this copy or one that could not be told apart from it)"

    def confirmed(self, tag: int, multiple: bool, ack: bool) -> None:
        """A confirm (``ack``) or nack of sequence number `tag` (and, with `multiple`, every lower one)."""
        seqs = [s for s in self.outstanding if s <= tag] if multiple else [tag]
        for seq in seqs:
            entry = self.outstanding.pop(seq, None)
            if entry is None:
                continue
            group, index = entry[0], entry[1]
            why = self.returned.pop(seq, "")
            if not ack:
                group.set(index, PublishResult(False, False, "RabbitMQ nacked the message"))
            elif why:
                group.set(index, PublishResult(True, False, why))
            else:
                group.set(index, PublishResult(True, True))

    def fail_all(self, detail: str) -> None:
        """The channel is gone: whatever it did not confirm is reported not confirmed, with `detail`."""
        for entry in self.outstanding.values():
            entry[0].set(entry[1], PublishResult(False, False, detail))
        self.outstanding.clear()
        self.returned.clear()


def properties_form(props: Any) -> tuple[Any, ...]:
    """Properties shaped like pika's `BasicProperties` (or None) as a comparable tuple: every basic
    property and the headers, with table values tagged by kind (so ``1``, ``True``, ``1.0`` and
    ``"1"`` differ) and text as UTF-8 octets (a client may decode a long string as either)."""
    if props is None:
        return ()
    return (
        tuple(_value_form(getattr(props, name, None)) for name in PROPERTY_NAMES),
        _value_form(getattr(props, "headers", None) or {}),
    )


def _value_form(value: Any) -> Any:
    if value is None:
        return ("V",)
    if isinstance(value, bool):
        return ("t", value)
    if isinstance(value, int):
        return ("i", int(value))
    if isinstance(value, str):
        return ("s", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("s", bytes(value))
    if isinstance(value, float):
        return ("f", value.hex())
    if isinstance(value, Decimal):
        return ("D", str(value.normalize()))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return ("T", int(value.timestamp()))
    if isinstance(value, dict):
        return ("F", tuple(sorted((str(k), _value_form(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("A", tuple(_value_form(v) for v in value))
    raise TypeError(f"cannot compare a header value of type {type(value).__name__}")


# -- acknowledgements -------------------------------------------------------------------------------
class Unacked:
    """The delivery tags of the ``replay`` channel that are not settled yet, in delivery order.

    ``basic.ack(multiple=True)`` settles *every* unsettled delivery up to its tag on the channel, so
    it may only be used for a run of tags at the head of this list that are all being settled: a
    message held further back (filtered, refused, failed, not yet confirmed) must never be caught by
    it. Every delivery of the channel has to be `add`ed before it is handed out, or a ``multiple``
    could settle a message nobody looked at. A new channel (`for_channel`) starts empty: the old
    one's deliveries went back to their queue with it.
    """

    def __init__(self) -> None:
        self.channel: tuple[int, int | None] | None = None
        self._tags: dict[int, None] = {}  # insertion order = delivery order (tags only grow)

    def for_channel(self, channel: tuple[int, int | None]) -> Unacked:
        """This list for `channel` (connection generation, channel id); emptied when it changed."""
        if channel != self.channel:
            self.channel = channel
            self._tags.clear()
        return self

    def add(self, tag: int) -> None:
        self._tags[tag] = None

    def __len__(self) -> int:
        return len(self._tags)

    def __contains__(self, tag: object) -> bool:
        return tag in self._tags

    def settle(self, tags: Iterable[int]) -> list[tuple[int, bool]]:
        """The (delivery tag, multiple) frames that settle exactly `tags`, which stop being unsettled:
        one ``multiple`` frame for the longest run at the head that is all in `tags`, then one frame
        per remaining tag."""
        wanted = set(tags)
        frames: list[tuple[int, bool]] = []
        run: list[int] = []
        for tag in self._tags:
            if tag not in wanted:
                break
            run.append(tag)
        if run:
            frames.append((run[-1], len(run) > 1))
            for tag in run:
                del self._tags[tag]
            wanted.difference_update(run)
        for tag in sorted(wanted):
            self._tags.pop(tag, None)
            frames.append((tag, False))
        return frames
