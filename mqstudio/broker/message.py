"""Messages as the embedded broker engine holds them.

Owns: `Properties` (every AMQP 0-9-1 basic property), `Message` (body + properties + where it was
published + the broker's own dead-letter history), `Death` (one entry of that history),
`QueuedMessage` (the per-queue envelope: sequence number, enqueue time, expiry deadline,
redelivered flag, delivery count) and `Delivery` (the event a consumer or basic.get receives).
The engine treats `Properties` and `Message` as immutable once published: one message may sit in
many queues (fanout), so anything that changes it (dead-lettering) builds a new one.
Must not import anything outside the stdlib and `mqstudio.broker.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mqstudio.broker.errors import PreconditionFailed

if TYPE_CHECKING:
    from mqstudio.broker.queue import Consumer, Queue

PERSISTENT = 2
TRANSIENT = 1


@dataclass(slots=True)
class Properties:
    """The AMQP 0-9-1 `basic` content-header properties, all optional as on the wire.

    `expiration` stays a string (milliseconds) because that is its AMQP type (shortstr) and because
    dead-lettering copies it verbatim into x-death `original-expiration`.
    """

    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] | None = None
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: datetime | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    cluster_id: str | None = None


EMPTY_PROPERTIES = Properties()


@dataclass(frozen=True, slots=True)
class Death:
    """One {queue, reason} entry of the broker's dead-letter history of a message (RabbitMQ 4's
    `#death{}` annotation): how often, when first (`time_ms`), from which exchange and with which
    routing keys it was dead-lettered there, and its per-message TTL (`original_expiration`)."""

    queue: str
    reason: str
    count: int
    time_ms: int
    exchange: str
    routing_keys: tuple[str, ...]
    original_expiration: str | None = None


NO_DEATHS: tuple[Death, ...] = ()


class Message:
    """A published message: body, properties and the exchange/routing key it was published with.

    After dead-lettering, `exchange` is the dead-letter exchange and `routing_key` the key it was
    republished with, as RabbitMQ reports them on the next delivery.

    `deaths` is the broker's own dead-letter history, newest first; only dead-lettering sets it
    (`mqstudio.broker.deadletter`). A client-published message starts with none, whatever its
    headers say: RabbitMQ 4 does not interpret an `x-death` header a client (re-)publishes (4.0
    release notes), so a copied header can neither inflate counts nor trigger cycle detection.
    """

    __slots__ = ("body", "deaths", "exchange", "properties", "routing_key")

    def __init__(
        self,
        body: bytes,
        properties: Properties,
        exchange: str,
        routing_key: str,
        deaths: tuple[Death, ...] = NO_DEATHS,
    ) -> None:
        self.body = body
        self.properties = properties
        self.exchange = exchange
        self.routing_key = routing_key
        self.deaths = deaths

    @property
    def size(self) -> int:
        """What x-max-length-bytes counts: the body only (RabbitMQ maxlength docs). Derived, not
        stored: most messages are delivered without ever being counted (the engine itself reads
        `len(message.body)`, cheaper than a property call)."""
        return len(self.body)

    @property
    def headers(self) -> dict[str, Any]:
        """The headers table, or an empty dict (never None) for convenient reading."""
        return self.properties.headers or {}

    def __repr__(self) -> str:
        return f"Message(exchange={self.exchange!r}, routing_key={self.routing_key!r}, size={self.size})"


class NewMessage(Message):
    """A `Message` whose fields the caller sets one by one: the publish hot path builds these.

    Why: CPython 3.11 runs a class's Python `__init__` in a nested interpreter call that costs about
    as much as the whole rest of the object's construction (measured with callgrind: ~950 machine
    instructions per object, ~6% of a publish→deliver→ack). Using object's own `__init__` skips
    it. Every slot must be set before the object is used; everything else treats it as a `Message`.

    `deaths` is a class constant here, not set per message: a message a client publishes has no
    dead-letter history (dead-lettering builds a plain `Message` with one).
    """

    __slots__ = ()
    __init__ = object.__init__
    deaths = NO_DEATHS


class QueuedMessage:
    """One message's stay in one queue, and the delivery event made from it.

    `seq` is the queue-local arrival order: a requeued message (nack/reject with requeue, recover,
    channel close) goes back to the position its `seq` says, not to the tail, as RabbitMQ classic
    queues do. `expires_ms` is the absolute deadline (lower of x-message-ttl and the per-message
    `expiration`, fixed at enqueue time and kept across requeues, per the RabbitMQ TTL docs).
    `delivery_count` counts returns to the queue; quorum queues compare it with x-delivery-limit.

    A message in a queue is either ready or held by exactly one delivery, so the envelope doubles
    as the `Delivery` event (one allocation per message on the hot path instead of two):
    `consumer_tag` ("" for basic.get), `delivery_tag`, `redelivered`, `exchange`, `routing_key`,
    and `message_count` (basic.get-ok's count of ready messages left; 0 for consumer deliveries).
    A requeue makes a fresh envelope, so a delivery already handed out never changes afterwards.
    """

    __slots__ = (
        "consumer",
        "consumer_tag",
        "delivery_count",
        "delivery_tag",
        "enqueued_ms",
        "expires_ms",
        "message",
        "message_count",
        "priority",
        "queue",
        "redelivered",
        "seq",
    )

    # Positional on purpose: built once per message per queue on the hot path.
    def __init__(  # noqa: PLR0917
        self,
        message: Message,
        seq: int,
        enqueued_ms: int,
        expires_ms: int | None,
        priority: int,
        queue: Queue,
    ) -> None:
        self.message = message
        self.seq = seq
        self.enqueued_ms = enqueued_ms
        self.expires_ms = expires_ms
        self.priority = priority
        self.queue = queue
        self.redelivered = False
        self.delivery_count = 0
        # The consumer holding it unacknowledged (None while ready, or when taken by basic.get).
        self.consumer: Consumer | None = None
        self.consumer_tag = ""
        self.delivery_tag = 0
        self.message_count = 0

    def returned(self, delivery_count: int) -> QueuedMessage:
        """A fresh envelope for the same stay, flagged redelivered (requeue)."""
        qm = QueuedMessage(
            self.message, self.seq, self.enqueued_ms, self.expires_ms, self.priority, self.queue
        )
        qm.redelivered = True
        qm.delivery_count = delivery_count
        return qm

    @property
    def exchange(self) -> str:
        return self.message.exchange

    @property
    def routing_key(self) -> str:
        return self.message.routing_key

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def properties(self) -> Properties:
        return self.message.properties

    @property
    def queue_name(self) -> str:
        return self.queue.name

    def __lt__(self, other: QueuedMessage) -> bool:
        # heapq orders returned (requeued) messages by their original arrival.
        return self.seq < other.seq

    def __repr__(self) -> str:
        return (
            f"QueuedMessage(seq={self.seq}, tag={self.delivery_tag}, consumer={self.consumer_tag!r}, "
            f"redelivered={self.redelivered}, {self.message!r})"
        )


class NewQueuedMessage(QueuedMessage):
    """A `QueuedMessage` whose fields the caller sets one by one (`Queue.publish`'s fast path, for
    queues without TTL or priorities), for the reason `NewMessage` gives. Every slot must be set
    before the object is used, except the four below: they are class constants, because such an
    envelope never has a deadline or a priority and is never redelivered (a requeue makes a fresh
    plain `QueuedMessage`). Setting them on one raises AttributeError."""

    __slots__ = ()
    __init__ = object.__init__
    expires_ms = None
    priority = 0
    redelivered = False
    delivery_count = 0


# What basic.deliver / basic.get-ok carry: the envelope itself (see QueuedMessage).
Delivery = QueuedMessage


def parse_expiration(value: str | None) -> int | None:
    """The per-message TTL in ms from the `expiration` property, validated as RabbitMQ does.

    RabbitMQ closes the channel with 406 PRECONDITION_FAILED for a value that is not a non-negative
    integer ("invalid expiration 'abc': no_integer").
    """
    if value is None:
        return None
    try:
        ttl = int(value)
    except ValueError:
        raise PreconditionFailed(f"invalid expiration '{value}': no_integer") from None
    if ttl < 0:
        raise PreconditionFailed(f"invalid expiration '{value}': negative_value")
    return ttl
