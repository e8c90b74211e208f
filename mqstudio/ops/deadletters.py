"""Dead-letter inspection: find dead-letter queues, read why a message died, filter, delete, purge.

Owns: `DlqInfo` / `find_dead_letter_queues(topology)`, `DeathInfo` / `parse_death(message)`,
`group_by`, `matches`, `message_time`, `fingerprint`, `delete_from_middle`, `resubmit`, `purge`
(with `PurgeRefusedError`) and `check_replay_route` (a replay's source and target before it
starts). Works on `mqstudio.backends.base` values only; never imports Qt,
`mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.

Where the facts come from:

* RabbitMQ writes one ``x-death`` table per {queue, reason} pair, newest first; a repeat increments
  that entry's ``count`` and moves it to the front without touching its ``time`` (dlx docs,
  "Dead-Lettered Messages"). ``x-first-death-*`` is written once, ``x-last-death-*`` every time
  (RabbitMQ 3.13+). pika hands AMQP timestamps over as naive UTC ``datetime``s; other clients and
  JSON give ints (seconds): both are read, naive ones as UTC.
* Spring Kafka's ``DeadLetterPublishingRecoverer`` adds ``kafka_dlt-original-topic/-partition/-offset``
  (partition and offset as 4- and 8-byte big-endian integers) and ``kafka_dlt-exception-fqcn/-message/
  -stacktrace``; Kafka Connect's dead-letter queue (``errors.deadletterqueue.context.headers.enable``)
  adds ``__connect.errors.topic/.partition/.offset/.exception.class.name/.exception.message/
  .exception.stacktrace`` as strings.

Deleting from the middle of a RabbitMQ queue is not an AMQP operation: `delete_from_middle` takes
messages in order, acks the chosen ones and nack-requeues the rest. Side effects on RabbitMQ: every
requeued message gets ``redelivered=true`` and may come back in another order (RabbitMQ requeues to
the original position only on a best-effort basis; quorum queues count a redelivery towards
``x-delivery-limit``); the queue's consumers do not see the held messages while the scan runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mqstudio.backends.base import (
    Backend,
    BackendKind,
    BrokerMessage,
    CancelToken,
    OutgoingMessage,
    Progress,
    PublishResult,
    UnsupportedError,
)
from mqstudio.core.lint import topic_matches
from mqstudio.core.model import Exchange, ExchangeType, Queue, Topology

__all__ = [
    "DeathInfo",
    "DeleteResult",
    "DlqInfo",
    "GroupKey",
    "PurgeRefusedError",
    "ReplayRouteError",
    "ResubmitResult",
    "check_replay_route",
    "delete_from_middle",
    "find_dead_letter_queues",
    "fingerprint",
    "group_by",
    "matches",
    "message_time",
    "parse_death",
    "purge",
    "resubmit",
]

_QUEUE_SUFFIXES = (".dlq", ".dead", ".DLQ", "-dlq")
_TOPIC_SUFFIXES = (".DLT", "-dlt", ".dlq")
#: How many messages one `consume_for_replay` call takes while scanning a queue.
SCAN_BATCH = 100


# -- discovery --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DlqInfo:
    """A queue (RabbitMQ) or topic (Kafka) that holds dead letters. `sources` are the queues whose
    dead-letter exchange routes here; `by_name` is True when the name's suffix says so."""

    name: str
    kind: Literal["queue", "topic"] = "queue"
    vhost: str = ""
    sources: tuple[str, ...] = ()
    by_name: bool = False

    @property
    def why(self) -> str:
        parts = []
        if self.sources:
            parts.append("dead-letter target of " + ", ".join(self.sources))
        if self.by_name:
            parts.append("named like a dead-letter " + self.kind)
        return "; ".join(parts)


def _routed_queues(topology: Topology, exchange_name: str, vhost: str, key: str | None) -> set[str]:
    """Ids of queues a message with routing key `key` (None: any of the source's keys) may reach
    from `exchange_name`, following exchange-to-exchange bindings."""
    if exchange_name == "":
        # The default exchange delivers to the queue named by the key (AMQP 0-9-1 §3.1.3.1).
        q = topology.find_queue(key, vhost) if key is not None else None
        return {q.id} if q is not None else set()
    start = topology.find_exchange(exchange_name, vhost)
    out: set[str] = set()
    pending: list[Exchange] = [start] if start is not None else []
    seen: set[str] = set()
    while pending:
        ex = pending.pop()
        if ex.id in seen:
            continue
        seen.add(ex.id)
        kind = ex.delayed_type if ex.type == ExchangeType.DELAYED else ex.type
        for b in topology.bindings_from(ex.id):
            if kind == ExchangeType.DIRECT:
                hit = key is None or b.routing_key == key
            elif kind == ExchangeType.TOPIC:
                hit = key is None or topic_matches(b.routing_key, key)
            else:  # fanout; headers and plugin types (not simulated): any binding may match
                hit = True
            if not hit:
                continue
            dest = topology.get(b.destination)
            if isinstance(dest, Queue):
                out.add(dest.id)
            elif isinstance(dest, Exchange):
                pending.append(dest)
    return out


def _dead_letter_keys(topology: Topology, q: Queue) -> list[str | None]:
    """The keys a dead letter of `q` may carry: x-dead-letter-routing-key, else the message's own
    keys (its queue name via the default exchange, or the keys of the bindings into `q`)."""
    if q.dead_letter_routing_key is not None:
        return [q.dead_letter_routing_key]
    keys: list[str | None] = [q.name]
    for b in topology.bindings_to(q.id):
        wildcard = any(w in ("*", "#") for w in b.routing_key.split("."))
        keys.append(None if wildcard else b.routing_key)
    return keys


def find_dead_letter_queues(topology: Topology) -> list[DlqInfo]:
    """RabbitMQ queues that some queue's dead-letter exchange routes to, queues named ``*.dlq``,
    ``*.dead``, ``*.DLQ`` or ``*-dlq``, and Kafka topics named ``*.DLT``, ``*-dlt`` or ``*.dlq``;
    in topology order."""
    sources: dict[str, list[str]] = {}
    for q in topology.queues:
        dlx = q.dead_letter_exchange
        if dlx is None:
            continue
        for key in _dead_letter_keys(topology, q):
            for target in _routed_queues(topology, dlx, q.vhost, key):
                if target != q.id and q.name not in sources.setdefault(target, []):
                    sources[target].append(q.name)
    out: list[DlqInfo] = []
    for q in topology.queues:
        by_name = q.name.endswith(_QUEUE_SUFFIXES)
        if q.id in sources or by_name:
            out.append(DlqInfo(q.name, "queue", q.vhost, tuple(sources.get(q.id, ())), by_name))
    out.extend(DlqInfo(t.name, "topic", by_name=True) for t in topology.topics
               if t.name.endswith(_TOPIC_SUFFIXES))
    return out


# -- why a message died -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeathInfo:
    """Why and where a message was dead-lettered; empty strings and None where unknown.

    `count` is the total number of dead-letterings (the sum over x-death entries, 1 for Kafka DLT
    records, 0 when the message carries no dead-letter headers)."""

    reason: str = ""
    origin: str = ""
    exchange: str = ""
    routing_keys: tuple[str, ...] = ()
    count: int = 0
    first_death: datetime | None = None
    last_death: datetime | None = None
    exception: str = ""
    exception_message: str = ""
    stacktrace: str = ""
    origin_partition: int | None = None
    origin_offset: int | None = None
    deaths: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def dead(self) -> bool:
        return self.count > 0 or bool(self.reason or self.origin or self.exception)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value  # milliseconds from some clients
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _as_int(value: Any) -> int | None:
    """A header integer: an int, decimal text, or Spring's big-endian 4/8 bytes (which the Kafka
    backend may have decoded to a str of control characters)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"-?\d+", value.strip() or "x"):
            return int(value.strip())
        try:
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            return None
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if re.fullmatch(rb"-?\d+", raw.strip() or b"x"):
            return int(raw.strip())
        if len(raw) in (4, 8):
            return int.from_bytes(raw, "big", signed=True)
    return None


def _rabbit_death(headers: Mapping[str, Any]) -> DeathInfo:
    raw = headers.get("x-death")
    deaths = tuple(d for d in raw if isinstance(d, Mapping)) if isinstance(raw, list | tuple) else ()
    newest: Mapping[str, Any] = deaths[0] if deaths else {}
    count = 0
    for d in deaths:
        c = _as_int(d.get("count"))
        count += c if c is not None else 1
    times = [t for t in (_as_time(d.get("time")) for d in deaths) if t is not None]
    keys = newest.get("routing-keys")
    routing_keys = tuple(_text(k) for k in keys) if isinstance(keys, list | tuple) else ()
    reason = _text(headers.get("x-last-death-reason") or newest.get("reason"))
    origin = _text(headers.get("x-last-death-queue") or newest.get("queue"))
    exchange = headers.get("x-last-death-exchange", newest.get("exchange"))
    if not deaths and reason:
        count = 1
    return DeathInfo(
        reason=reason,
        origin=origin,
        exchange=_text(exchange),
        routing_keys=routing_keys,
        count=count,
        first_death=min(times) if times else None,
        last_death=_as_time(newest.get("time")) if newest else None,
        deaths=deaths,
    )


def _kafka_death(headers: Mapping[str, Any], message: BrokerMessage) -> DeathInfo | None:
    if "kafka_dlt-original-topic" in headers or "kafka_dlt-exception-fqcn" in headers:
        prefix, names = "kafka_dlt-", ("original-topic", "original-partition", "original-offset",
                                        "exception-fqcn", "exception-message", "exception-stacktrace")
    elif any(k.startswith("__connect.errors.") for k in headers):
        prefix, names = "__connect.errors.", ("topic", "partition", "offset", "exception.class.name",
                                              "exception.message", "exception.stacktrace")
    else:
        return None
    topic, partition, offset, fqcn, text, stack = (headers.get(prefix + n) for n in names)
    exception = _text(fqcn)
    when = _as_time(message.timestamp_ms) if message.timestamp_ms is not None else None
    return DeathInfo(
        reason=exception.rsplit(".", 1)[-1] if exception else "error",
        origin=_text(topic),
        routing_keys=(message.routing_key,) if message.routing_key else (),
        count=1,
        first_death=when,
        last_death=when,
        exception=exception,
        exception_message=_text(text),
        stacktrace=_text(stack),
        origin_partition=_as_int(partition),
        origin_offset=_as_int(offset),
    )


def parse_death(message: BrokerMessage) -> DeathInfo:
    """Why `message` was dead-lettered, from RabbitMQ's x-death / x-first-/x-last-death-* headers or
    the Spring Kafka / Kafka Connect dead-letter headers. An empty `DeathInfo` when it has none."""
    headers = message.headers or {}
    kafka = _kafka_death(headers, message)
    if kafka is not None:
        return kafka
    info = _rabbit_death(headers)
    first_reason = headers.get("x-first-death-reason")
    if not info.reason and first_reason:
        return DeathInfo(
            reason=_text(first_reason),
            origin=_text(headers.get("x-first-death-queue")),
            exchange=_text(headers.get("x-first-death-exchange")),
            count=1,
        )
    return info


def message_time(message: BrokerMessage, info: DeathInfo | None = None) -> datetime | None:
    """When the message died (last death), else its own timestamp."""
    info = info if info is not None else parse_death(message)
    if info.last_death is not None:
        return info.last_death
    if message.timestamp_ms is not None:
        return datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)
    return None


# -- grouping and filtering -------------------------------------------------------------------------
GroupKey = Literal["reason", "origin", "exception"]
NONE_GROUP = "(none)"


def group_key(info: DeathInfo, key: GroupKey) -> str:
    if key == "reason":
        value = info.reason
    elif key == "origin":
        value = info.origin
    elif key == "exception":
        value = info.exception
    else:
        raise ValueError(f"cannot group by {key!r}: use reason, origin or exception")
    return value or NONE_GROUP


def group_by(messages: Iterable[BrokerMessage], key: GroupKey) -> dict[str, list[BrokerMessage]]:
    """Messages grouped by death reason, origin queue/topic or exception class, groups in order of
    first appearance; messages without the value go to ``"(none)"``."""
    out: dict[str, list[BrokerMessage]] = {}
    for message in messages:
        out.setdefault(group_key(parse_death(message), key), []).append(message)
    return out


def _flatten(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _flatten(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _flatten(v)
    else:
        yield _text(value)


def _header_matches(message: BrokerMessage, header: str | tuple[str, str]) -> bool:
    expected: str | None
    if isinstance(header, tuple):
        name, expected = header
    else:
        name, sep, value = header.partition("=")
        name, expected = name.strip(), (value.strip() if sep else None)
    for table in (message.headers, message.properties):
        if name in table:
            return expected is None or _text(table[name]) == expected
    return False


def _moment(value: datetime | int | float) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value / 1000, UTC)  # milliseconds since the epoch


def matches(
    message: BrokerMessage,
    text: str | None = None,
    header: str | tuple[str, str] | None = None,
    since: datetime | int | None = None,
    until: datetime | int | None = None,
) -> bool:
    """Filter: `text` (case-insensitive) in the body, routing key, exchange, header or property names
    and values; `header` ``"name=value"`` (or ``(name, value)``; ``"name"``: present); `since` /
    `until` (datetimes or epoch milliseconds) bound `message_time`, inclusive. Unset criteria pass."""
    if text:
        needle = text.casefold()
        haystack = [message.body.decode("utf-8", errors="replace"), message.routing_key, message.exchange,
                    *_flatten(message.headers), *_flatten(message.properties)]
        if not any(needle in part.casefold() for part in haystack):
            return False
    if header and not _header_matches(message, header):
        return False
    if since is not None or until is not None:
        when = message_time(message)
        if when is None:
            return False
        if since is not None and when < _moment(since):
            return False
        if until is not None and when > _moment(until):
            return False
    return True


# Headers the broker rewrites while a message sits in a queue: a quorum queue bumps x-delivery-count on
# every requeue (and a peek on RabbitMQ is a get + requeue), so they cannot identify a message.
VOLATILE_HEADERS = frozenset({"x-delivery-count"})


def fingerprint(message: BrokerMessage) -> str:
    """A digest of what identifies a message's content (body, exchange, key, headers, properties),
    to find it again in a queue: AMQP messages have no identity of their own. Headers in
    `VOLATILE_HEADERS` are left out, so a message keeps its fingerprint across requeues."""
    headers = sorted((kv for kv in message.headers.items() if kv[0] not in VOLATILE_HEADERS),
                     key=lambda kv: kv[0])
    digest = hashlib.sha256()
    for part in (message.body, message.exchange.encode(), message.routing_key.encode(),
                 repr(headers).encode(),
                 repr(sorted(message.properties.items(), key=lambda kv: kv[0])).encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


# -- destructive operations -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeleteResult:
    examined: int
    deleted: int
    requeued: int


class PurgeRefusedError(ValueError):
    """The typed confirmation did not name the queue."""


def _refuse_kafka(backend: Backend, what: str) -> None:
    if backend.kind is BackendKind.KAFKA:
        raise UnsupportedError(f"Kafka cannot {what}", "records stay until retention removes them")


def _scan(
    backend: Backend,
    queue: str,
    choose: Callable[[BrokerMessage], bool],
    limit: int,
    *,
    cancel: CancelToken | None,
    progress: Progress | None,
    on_chosen: Callable[[BrokerMessage], bool],
) -> DeleteResult:
    """Take messages in order (holding all of them, so none is seen twice) until `limit` were chosen
    or the queue is empty; `on_chosen(m)` settles a chosen one and returns True when it was removed.
    Everything else is nack-requeued at the end, also after an error or cancellation."""
    held: list[BrokerMessage] = []
    examined = chosen = removed = 0
    try:
        while chosen < limit and not (cancel is not None and cancel.cancelled):
            batch = backend.consume_for_replay(queue, SCAN_BATCH)
            if not batch:
                break
            for index, message in enumerate(batch):
                if chosen >= limit:
                    held.extend(batch[index:])
                    break
                examined += 1
                if choose(message):
                    chosen += 1
                    removed += on_chosen(message)
                else:
                    held.append(message)
            if progress is not None:
                progress(removed, limit, f"examined {examined} messages of {queue}")
    finally:
        for message in held:
            backend.settle(message, ack=False, requeue=True)
    return DeleteResult(examined, removed, len(held))


def delete_from_middle(
    backend: Backend,
    queue: str,
    predicate: Callable[[BrokerMessage], bool],
    limit: int,
    *,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> DeleteResult:
    """Remove up to `limit` messages of `queue` for which `predicate` is true, keeping the rest.

    Takes messages in order with `consume_for_replay`, acks the chosen ones and nack-requeues the
    others (see the module docstring for the side effects: redelivered flag, order). Refused on
    Kafka (a topic cannot lose records in the middle)."""
    _refuse_kafka(backend, "delete single records from a topic")

    def ack(message: BrokerMessage) -> bool:
        backend.settle(message, ack=True)
        return True

    return _scan(backend, queue, predicate, limit, cancel=cancel, progress=progress, on_chosen=ack)


def selected(messages: Sequence[BrokerMessage]) -> Callable[[BrokerMessage], bool]:
    """A predicate matching each of `messages` once (by `fingerprint`), for `delete_from_middle`."""
    wanted: dict[str, int] = {}
    for message in messages:
        key = fingerprint(message)
        wanted[key] = wanted.get(key, 0) + 1

    def choose(message: BrokerMessage) -> bool:
        key = fingerprint(message)
        if wanted.get(key, 0) <= 0:
            return False
        wanted[key] -= 1
        return True

    return choose


@dataclass(frozen=True, slots=True)
class ResubmitResult:
    found: bool
    published: PublishResult | None
    removed: bool


def resubmit(backend: Backend, queue: str, original: BrokerMessage, new: OutgoingMessage,
             *, cancel: CancelToken | None = None) -> ResubmitResult:
    """Publish `new` (an edited copy of `original`), then remove `original` from `queue`: found by
    `fingerprint`, held while publishing, acked only after a confirmed and routed publish, otherwise
    requeued. Other messages taken on the way are requeued (the side effects of `delete_from_middle`)."""
    outcome: list[PublishResult] = []

    def publish_then_ack(message: BrokerMessage) -> bool:
        result = backend.publish(new)
        outcome.append(result)
        if result.confirmed and result.routed:
            backend.settle(message, ack=True)
            return True
        backend.settle(message, ack=False, requeue=True)
        return False

    if backend.kind is BackendKind.KAFKA:  # a topic keeps the original; publishing is all there is
        result = backend.publish(new)
        return ResubmitResult(True, result, False)
    target = fingerprint(original)
    report = _scan(backend, queue, lambda m: fingerprint(m) == target, 1, cancel=cancel, progress=None,
                   on_chosen=publish_then_ack)
    return ResubmitResult(bool(outcome), outcome[0] if outcome else None, report.deleted == 1)


def purge(backend: Backend, queue: str, confirm_name: str) -> int:
    """Purge `queue` only when the user typed its name exactly as `confirm_name`; returns the count."""
    if confirm_name != queue:
        raise PurgeRefusedError(f"type the queue name {queue!r} exactly to purge it")
    return backend.purge(queue)


# -- replay pre-flight ------------------------------------------------------------------------------
class ReplayRouteError(ValueError):
    """A replay that must not start: its source or target does not exist, or the target is the source."""


def check_replay_route(topology: Topology, kind: BackendKind, source: str, target: str | None,
                       key: str | None = None) -> None:
    """Refuse, before anything is taken, a replay whose dead-letter queue (Kafka: topic) `source` does
    not exist, whose `target` exchange (Kafka: topic) does not exist, or that would send the messages
    straight back into `source` (the default exchange with key `source`, or the DLT itself).
    `target` None means "each message's origin" (checked per message by the replay)."""
    kafka = kind is BackendKind.KAFKA
    if kafka:
        names = {t.name for t in topology.topics}
        if source not in names:
            raise ReplayRouteError(f"no topic {source!r} on this broker")
        if target is not None:
            if target == source:
                raise ReplayRouteError(f"refusing to replay topic {source!r} into itself")
            if target not in names:
                raise ReplayRouteError(f"no topic {target!r} on this broker (the replay target)")
        return
    queues = {q.name for q in topology.queues}
    if source not in queues:
        raise ReplayRouteError(f"no queue {source!r} in this vhost")
    if target is None:
        return
    if target == "":
        if key == source:
            raise ReplayRouteError(f"refusing to replay queue {source!r} into itself")
        if key is not None and key not in queues:
            raise ReplayRouteError(f"no queue {key!r} in this vhost for the default exchange to route to")
        return
    exchanges = {x.name for x in topology.exchanges}
    if target not in exchanges:
        raise ReplayRouteError(f"no exchange {target!r} in this vhost (the replay target)")
    dlq = next(q for q in topology.queues if q.name == source)
    if _routed_queues(topology, target, dlq.vhost, key) == {dlq.id}:
        routed = f"routes key {key!r}" if key is not None else "routes every message"
        raise ReplayRouteError(f"refusing to replay queue {source!r} into itself: exchange {target!r} "
                               f"{routed} only to it")
