"""The one interface every broker backend implements, and the errors it raises.

Owns: `Backend` (a blocking, thread-confined Protocol), `Capabilities`, the message value types,
`ApplyReport`, `CancelToken`, and `BackendError` with its subclasses. Imports only the stdlib and
mqstudio.core: the UI may import this module (and only this one) from `mqstudio.backends`.

Threading: a backend instance is used by one worker thread at a time (see `mqstudio.runtime`); every
method may block on the network and must never be called on the GUI thread. Long operations take a
`CancelToken` and a progress callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Flag, StrEnum, auto
from typing import Any, Protocol, runtime_checkable

from mqstudio.core.document import TopologyDocument
from mqstudio.core.metrics import Snapshot
from mqstudio.core.model import Topology
from mqstudio.core.plan import Plan, Step


class BackendKind(StrEnum):
    EMBEDDED = "embedded"
    RABBITMQ = "rabbitmq"
    KAFKA = "kafka"


class Capabilities(Flag):
    """What a backend can do; the UI hides or greys out what is missing."""

    NONE = 0
    EXCHANGES = auto()
    HEADERS_EXCHANGE = auto()
    DELAYED_EXCHANGE = auto()
    DEAD_LETTERING = auto()
    PEEK = auto()
    REPLAY = auto()
    TOPICS = auto()
    CONSUMER_GROUPS = auto()
    TOPOLOGY_WRITE = auto()
    STATS = auto()
    TAIL = auto()
    PURGE = auto()


# -- errors -----------------------------------------------------------------------------------------
class BackendError(Exception):
    """A failure a user can act on. `hint` says what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UnreachableError(BackendError):
    """The host does not answer, refuses the connection, or the name does not resolve."""


class AuthenticationError(BackendError):
    """The broker refused the credentials."""


class PermissionDeniedError(BackendError):
    """Authenticated, but this user may not do that (vhost access, configure/write/read permission)."""


class NotFoundError(BackendError):
    """The queue, exchange, topic, group or vhost does not exist."""


class ConflictError(BackendError):
    """The object exists already with other properties, or the operation conflicts with its state
    (e.g. resetting the offsets of a group that has members)."""


class UnsupportedError(BackendError):
    """This broker (or its configuration, e.g. no management plugin) cannot do that."""


class CancelledError(BackendError):
    """The user cancelled a long operation; `ApplyReport`/partial results say how far it got."""


# -- cancellation and progress -------------------------------------------------------------------
@runtime_checkable
class CancelToken(Protocol):
    @property
    def cancelled(self) -> bool: ...


class NeverCancelled:
    cancelled = False


Progress = Callable[[int, int, str], None]
"""progress(done, total, what): called between steps of a long operation."""


# -- messages ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class OutgoingMessage:
    """A message to publish. For RabbitMQ `target` is an exchange ("" = default exchange) and `key` the
    routing key; for Kafka `target` is a topic, `key` the record key and `partition` optional."""

    target: str
    body: bytes
    key: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    partition: int | None = None
    mandatory: bool = True


@dataclass(slots=True)
class PublishResult:
    confirmed: bool
    routed: bool = True
    detail: str = ""
    partition: int | None = None
    offset: int | None = None


@dataclass(slots=True)
class BrokerMessage:
    """A message read from a queue or topic (peek, tail, replay).

    `properties` holds AMQP basic properties by their pika names (content_type, delivery_mode,
    priority, correlation_id, reply_to, expiration, message_id, timestamp, type, user_id, app_id);
    `headers` the application headers incl. x-death. `handle` is backend-private (delivery tag,
    Kafka offset) and only meaningful to the backend that returned it.
    """

    source: str
    body: bytes
    exchange: str = ""
    routing_key: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    redelivered: bool = False
    timestamp_ms: int | None = None
    partition: int | None = None
    offset: int | None = None
    handle: Any = None


# -- apply ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ApplyReport:
    """What an apply did: every step is in exactly one of applied / failed / not_applied / skipped."""

    applied: list[Step] = field(default_factory=list)
    failed: Step | None = None
    error: str = ""
    not_applied: list[Step] = field(default_factory=list)
    skipped: list[Step] = field(default_factory=list)  # needed consent that was not given
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.failed is None and not self.cancelled and not self.not_applied

    def describe(self) -> list[str]:
        lines = [f"applied: {step.describe()}" for step in self.applied]
        if self.failed is not None:
            lines.append(f"FAILED: {self.failed.describe()}: {self.error}")
        lines += [f"skipped (no consent): {step.describe()}" for step in self.skipped]
        lines += [f"not applied: {step.describe()}" for step in self.not_applied]
        if self.cancelled:
            lines.append("cancelled by the user")
        return lines


# -- the interface ----------------------------------------------------------------------------------
class Backend(Protocol):
    """A connection to one broker (and vhost, for RabbitMQ). Blocking; one thread at a time."""

    kind: BackendKind
    capabilities: Capabilities

    @property
    def description(self) -> str:
        """For the status bar, e.g. ``rabbitmq guest@127.0.0.1:5672 vhost /`` (never a password)."""
        ...

    def connect(self) -> None:
        """Open connections and check credentials; raise the specific BackendError on failure."""
        ...

    def close(self) -> None: ...

    def fetch_topology(self) -> TopologyDocument:
        """The live topology as a document (no layout; the UI lays it out)."""
        ...

    def plan(self, desired: Topology, *, prune: bool = False) -> Plan: ...

    def apply(
        self,
        plan: Plan,
        *,
        consent: Iterable[Step] = (),
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> ApplyReport:
        """Run the plan's steps in order; steps needing consent run only if listed in `consent`.
        Stops at the first failure and reports exactly what was and was not applied. Every backend
        does this through `mqstudio.backends.applying.run_plan`: `progress(index, total, what)` before
        each step that runs, then `progress(total, total, "done")` when none failed or was cancelled."""
        ...

    def publish(self, message: OutgoingMessage) -> PublishResult: ...

    def peek(self, source: str, limit: int = 50, *, partition: int | None = None,
             offset: int | None = None, timestamp_ms: int | None = None) -> list[BrokerMessage]:
        """Read without consuming (RabbitMQ: get + requeue, which sets `redelivered`)."""
        ...

    def consume_for_replay(self, source: str, limit: int) -> list[BrokerMessage]:
        """Take messages with manual acknowledgement; each must be settled with `settle`."""
        ...

    def settle(self, message: BrokerMessage, *, ack: bool, requeue: bool = True) -> None: ...

    def purge(self, source: str) -> int: ...

    def tail(self, target: str, sink: Callable[[BrokerMessage], None], cancel: CancelToken) -> None:
        """Deliver live messages flowing through `target` (exchange, queue or topic) to `sink` until
        `cancel` is set, without taking them from their consumers (RabbitMQ: a temporary exclusive
        queue bound to the exchange; Kafka: a consumer without a group)."""
        ...

    def stats(self) -> Snapshot: ...
