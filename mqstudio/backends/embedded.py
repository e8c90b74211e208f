"""The `Backend` of the embedded broker engine (`mqstudio.broker`), reached through its loop thread.

Owns: `EmbeddedBackend`, `BrokerHost` (what it needs from the thread running the engine:
`mqstudio.runtime.brokerthread.EmbeddedBrokerThread` satisfies it; backends must not import runtime).
Every engine access is a `host.call(fn)` that runs on the engine's thread; this object keeps no
engine references outside those calls, so it may be used from any one thread at a time.

Differences from the RabbitMQ backend, by design:
* `peek` reads a queue's ready messages in place: nothing is taken or requeued, so the
  `redelivered` flag and the delivery counters stay as they were (RabbitMQ's get + requeue sets
  redelivered and counts a redelivery).
* `tail` never changes routing: a queue target is watched through an engine observer
  (`mqstudio.broker.observe`), an exchange target by watching the vhost's queues for messages that
  were published (or dead-lettered) to that exchange, once per message. No temporary queue is bound,
  so mandatory/alternate-exchange outcomes are unchanged; messages the exchange routes nowhere are not
  shown (they are counted as ``unroutable`` in `stats`).
* publishing to a missing exchange raises `NotFoundError` (RabbitMQ closes the channel with 404);
  a mandatory message that no queue takes comes back as ``routed=False``.

Must not import Qt, `mqstudio.ui`, `mqstudio.app`, `mqstudio.cli` or `mqstudio.runtime`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import itertools
import queue as queue_module
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from mqstudio.backends.applying import run_plan
from mqstudio.backends.base import (
    ApplyReport,
    BackendError,
    BackendKind,
    BrokerMessage,
    CancelToken,
    Capabilities,
    ConflictError,
    NotFoundError,
    OutgoingMessage,
    PermissionDeniedError,
    Progress,
    PublishResult,
    UnreachableError,
    UnsupportedError,
)
from mqstudio.backends.translate import declare_exchange, declare_queue
from mqstudio.broker.broker import Broker
from mqstudio.broker.errors import (
    AccessRefused,
    BrokerError,
    NotAllowed,
    NotFound,
    PreconditionFailed,
    ResourceLocked,
)
from mqstudio.broker.exchanges import DestinationKind
from mqstudio.broker.message import Message, Properties, QueuedMessage
from mqstudio.broker.observe import observe_queue
from mqstudio.broker.queue import Queue as EngineQueue
from mqstudio.broker.session import Session
from mqstudio.broker.stats import BrokerStats
from mqstudio.core.document import TopologyDocument
from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Binding,
    DestinationType,
    Exchange,
    Queue,
    Topology,
    exchange_type,
)
from mqstudio.core.plan import BindingRef, Plan, Step, StepKind, is_builtin_exchange
from mqstudio.core.plan import plan as make_plan

__all__ = ["CALL_TIMEOUT", "EMBEDDED_CAPABILITIES", "BrokerHost", "EmbeddedBackend"]

T = TypeVar("T")

#: How long one engine call may take before the broker counts as unreachable (seconds).
CALL_TIMEOUT = 30.0
#: How often a tail looks for new queues and for cancellation (seconds).
TAIL_POLL = 0.1

EMBEDDED_CAPABILITIES = (
    Capabilities.EXCHANGES
    | Capabilities.HEADERS_EXCHANGE
    | Capabilities.DELAYED_EXCHANGE
    | Capabilities.DEAD_LETTERING
    | Capabilities.PEEK
    | Capabilities.REPLAY
    | Capabilities.TOPOLOGY_WRITE
    | Capabilities.STATS
    | Capabilities.TAIL
    | Capabilities.PURGE
)

_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)

_connection_ids = itertools.count(1)


class BrokerHost(Protocol):
    """Runs functions on the engine's thread (see `mqstudio.runtime.brokerthread`)."""

    @property
    def address(self) -> tuple[str, int]: ...

    def call(self, fn: Callable[[Broker], T]) -> concurrent.futures.Future[T]: ...


def _translate(exc: BrokerError) -> BackendError:
    if isinstance(exc, NotFound):
        return NotFoundError(exc.text)
    if isinstance(exc, AccessRefused):
        return PermissionDeniedError(exc.text)
    if isinstance(exc, PreconditionFailed | ResourceLocked):
        return ConflictError(exc.text)
    if isinstance(exc, NotAllowed):
        return NotFoundError(exc.text) if "not found" in exc.text else PermissionDeniedError(exc.text)
    return BackendError(exc.text)


# -- conversions ------------------------------------------------------------------------------------


def _properties_out(properties: Properties) -> dict[str, Any]:
    out = {name: value for name in _PROPERTY_NAMES if (value := getattr(properties, name)) is not None}
    if properties.timestamp is not None:
        out["timestamp"] = int(properties.timestamp.timestamp())
    return out


def _properties_in(message: OutgoingMessage) -> Properties:
    props: dict[str, Any] = {k: v for k, v in message.properties.items() if k in _PROPERTY_NAMES}
    stamp = message.properties.get("timestamp")
    if isinstance(stamp, int | float):
        props["timestamp"] = datetime.fromtimestamp(stamp, UTC)
    elif isinstance(stamp, datetime):
        props["timestamp"] = stamp
    return Properties(headers=dict(message.headers) or None, **props)


def _message_out(
    source: str,
    message: Message,
    *,
    redelivered: bool = False,
    enqueued_ms: int | None = None,
    handle: Any = None,
) -> BrokerMessage:
    props = message.properties
    stamp = props.timestamp
    return BrokerMessage(
        source=source,
        body=bytes(message.body),
        exchange=message.exchange,
        routing_key=message.routing_key,
        headers=dict(props.headers or {}),
        properties=_properties_out(props),
        redelivered=redelivered,
        timestamp_ms=int(stamp.timestamp() * 1000) if stamp is not None else enqueued_ms,
        handle=handle,
    )


def _thaw(value: Any) -> Any:
    """BindingRecord arguments are frozen (tables as sorted pairs, arrays as tuples): thaw arrays."""
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _stats_objects(stats: BrokerStats, vhost: str) -> tuple[ObjectStats, ...]:
    objects: list[ObjectStats] = [
        ObjectStats(
            "broker",
            "",
            "",
            counters={
                "published": stats.published,
                "delivered": stats.delivered,
                "acked": stats.acked,
                "unroutable": stats.unroutable,
                "dead_lettered": stats.dead_lettered,
                "dropped": stats.dropped,
                "expired": stats.expired,
            },
            gauges={"ready": stats.ready, "unacked": stats.unacked, "consumers": stats.consumers},
        )
    ]
    for vh in stats.vhosts:
        if vh.name != vhost:
            continue
        for x in vh.exchanges:
            if x.name == "":
                continue
            objects.append(
                ObjectStats(
                    "exchange",
                    x.name,
                    vh.name,
                    counters={
                        "published": x.published_in,
                        "routed": x.published_out,
                        "unroutable": x.unroutable,
                    },
                )
            )
        for q in vh.queues:
            counters = {
                "published": q.published,
                "delivered": q.delivered,
                "redelivered": q.redelivered,
                "acked": q.acked,
                "rejected": q.rejected,
                "expired": q.expired,
                "dead_lettered": q.dead_lettered_total,
                "dropped": q.dropped_total,
            }
            counters.update({f"dead_lettered.{reason}": n for reason, n in q.dead_lettered.items()})
            counters.update({f"dropped.{cause}": n for cause, n in q.dropped.items()})
            objects.append(
                ObjectStats(
                    "queue",
                    q.name,
                    vh.name,
                    counters=counters,
                    gauges={"ready": q.ready, "unacked": q.unacked, "consumers": q.consumers},
                )
            )
    return tuple(objects)


class _RecentMessages:
    """Messages seen lately (a fanout puts one `Message` object into many queues: show it once)."""

    def __init__(self, size: int = 1024) -> None:
        self._seen: OrderedDict[int, Message] = OrderedDict()  # holding them keeps their ids unique
        self._size = size

    def first_time(self, message: Message) -> bool:
        key = id(message)
        if key in self._seen:
            return False
        self._seen[key] = message
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


# -- the backend ------------------------------------------------------------------------------------


class EmbeddedBackend:
    """`Backend` over the embedded engine of `host`, for one vhost."""

    kind = BackendKind.EMBEDDED
    capabilities = EMBEDDED_CAPABILITIES

    def __init__(
        self, host: BrokerHost, vhost: str = DEFAULT_VHOST, *, timeout: float = CALL_TIMEOUT
    ) -> None:
        self._host = host
        self.vhost = vhost
        self._timeout = timeout
        self._connection_id = f"mqstudio-embedded-{next(_connection_ids)}"
        self._replay: Session | None = None  # engine-thread object; touched only inside calls
        self._connected = False

    @property
    def description(self) -> str:
        try:
            host, port = self._host.address
        except Exception:
            return f"embedded broker (not running) vhost {self.vhost}"
        return f"embedded broker amqp://{host}:{port}/ vhost {self.vhost}"

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(self, fn: Callable[[Broker], T]) -> T:
        try:
            return self._host.call(fn).result(self._timeout)
        except BrokerError as exc:
            raise _translate(exc) from exc
        except TimeoutError as exc:
            raise UnreachableError(
                "the embedded broker does not answer", "restart it from the Broker menu"
            ) from exc
        except RuntimeError as exc:  # BrokerStoppedError: the thread is not running
            raise UnreachableError(str(exc), "start the embedded broker") from exc

    # -- connection -------------------------------------------------------------------------------

    def connect(self) -> None:
        self._call(lambda b: b.vhost(self.vhost))
        self._connected = True

    def close(self) -> None:
        """Return unsettled replay messages to their queues and forget the engine session."""
        self._connected = False
        if self._replay is None:
            return

        def close_session(broker: Broker) -> None:
            broker.close_connection(self._connection_id)

        self._replay = None
        with contextlib.suppress(BackendError):  # the broker is gone, and its sessions with it
            self._call(close_session)

    # -- topology ---------------------------------------------------------------------------------

    def fetch_topology(self) -> TopologyDocument:
        """Exchanges (not the default exchange; `amq.*` only when bindings start there), queues and
        bindings of the vhost. Queues of mqstudio's own sessions (tail, replay) are not listed."""

        def read(broker: Broker) -> Topology:
            vh = broker.vhost(self.vhost)
            topology = Topology()
            if self.vhost not in topology.vhosts:
                topology.vhosts.append(self.vhost)
            ids: dict[tuple[str, str], str] = {}
            for name, x in sorted(vh.exchanges.items()):
                if name == "" or (is_builtin_exchange(name) and not x.has_bindings()):
                    continue
                ex = Exchange(
                    name,
                    exchange_type(x.type),
                    vhost=self.vhost,
                    durable=x.durable,
                    auto_delete=x.auto_delete,
                    internal=x.internal,
                    arguments=dict(x.arguments),
                )
                topology.add_node(ex)
                ids[("exchange", name)] = ex.id
            for name, q in sorted(vh.queues.items()):
                if q.owner is not None and q.owner.startswith("mqstudio-embedded-"):
                    continue
                core_q = Queue(
                    name,
                    vhost=self.vhost,
                    durable=q.durable,
                    exclusive=q.exclusive,
                    auto_delete=q.auto_delete,
                    arguments=dict(q.arguments),
                )
                topology.add_node(core_q)
                ids[("queue", name)] = core_q.id
            for name, x in sorted(vh.exchanges.items()):
                source = ids.get(("exchange", name))
                if source is None:
                    continue
                for record in x.bindings:
                    kind = "queue" if record.destination.kind is DestinationKind.QUEUE else "exchange"
                    destination = ids.get((kind, record.destination.name))
                    if destination is None:
                        continue
                    arguments = {k: _thaw(v) for k, v in record.arguments}
                    topology.add_binding(Binding(source, destination, record.routing_key, arguments))
            return topology

        topology = self._call(read)
        return TopologyDocument(topology, metadata={"source": self.description})

    def plan(self, desired: Topology, *, prune: bool = False) -> Plan:
        live = self.fetch_topology().topology
        return make_plan(desired, live, vhost=self.vhost, prune=prune)

    def apply(
        self,
        plan: Plan,
        *,
        consent: Iterable[Step] = (),
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> ApplyReport:
        """Run the steps in order on the engine's thread (see `run_plan` for consent, cancel, progress
        and the report). A create of an exchange or queue that exists with other properties fails, as
        on RabbitMQ."""
        return run_plan(
            plan,
            lambda step: self._call(functools.partial(self._execute, step=step)),
            consent=consent,
            progress=progress,
            cancel=cancel,
        )

    def _execute(self, broker: Broker, *, step: Step) -> None:
        obj, vhost = step.obj, self.vhost
        kind = step.kind
        if kind in (StepKind.CREATE_EXCHANGE, StepKind.RECREATE_EXCHANGE) and isinstance(obj, Exchange):
            if kind is StepKind.RECREATE_EXCHANGE and obj.name in broker.vhost(vhost).exchanges:
                broker.delete_exchange(vhost, obj.name)
            declare_exchange(broker, vhost, obj)
        elif kind in (StepKind.CREATE_QUEUE, StepKind.RECREATE_QUEUE) and isinstance(obj, Queue):
            if kind is StepKind.RECREATE_QUEUE and obj.name in broker.vhost(vhost).queues:
                broker.delete_queue(vhost, obj.name)
            declare_queue(broker, vhost, obj)
        elif kind in (StepKind.BIND, StepKind.UNBIND) and isinstance(obj, BindingRef):
            arguments = dict(obj.arguments)
            to_queue = obj.destination_type is DestinationType.QUEUE
            if kind is StepKind.BIND:
                op = broker.queue_bind if to_queue else broker.exchange_bind
            else:
                op = broker.queue_unbind if to_queue else broker.exchange_unbind
            op(vhost, obj.destination, obj.source, obj.routing_key, arguments=arguments)
        elif kind is StepKind.DELETE_QUEUE and isinstance(obj, Queue):
            broker.delete_queue(vhost, obj.name)
        elif kind is StepKind.DELETE_EXCHANGE and isinstance(obj, Exchange):
            broker.delete_exchange(vhost, obj.name)
        else:
            raise UnsupportedError(
                f"the embedded broker cannot {step.describe()}", "Kafka topics need a Kafka connection"
            )

    # -- messages ---------------------------------------------------------------------------------

    def publish(self, message: OutgoingMessage) -> PublishResult:
        """Publish into the engine. A missing exchange raises `NotFoundError`; a mandatory message no
        queue took is ``routed=False``; one refused by a queue's overflow policy is not confirmed."""
        properties = _properties_in(message)

        def publish(broker: Broker) -> PublishResult:
            result = broker.publish(
                self.vhost,
                message.target,
                message.key,
                properties,
                message.body,
                mandatory=message.mandatory,
            )
            if result.rejected_by_overflow:
                refused = ", ".join(result.rejected_by_overflow)
                detail = f"refused by the overflow limit of {refused}"
                return PublishResult(False, bool(result.routed), detail)
            if result.delayed:
                return PublishResult(True, True, "held by the delayed-message exchange")
            if result.unroutable:
                return PublishResult(True, False, "no queue is bound for this routing key")
            return PublishResult(True, True)

        return self._call(publish)

    def peek(
        self,
        source: str,
        limit: int = 50,
        *,
        partition: int | None = None,
        offset: int | None = None,
        timestamp_ms: int | None = None,
    ) -> list[BrokerMessage]:
        """The first `limit` ready messages of queue `source`, read in place (see module docstring)."""

        def read(broker: Broker) -> list[BrokerMessage]:
            q = broker.queue(self.vhost, source)
            now = broker.clock.now_ms()
            out: list[BrokerMessage] = []
            for qm in q.messages():
                if qm.expires_ms is not None and qm.expires_ms <= now:
                    continue  # due for expiry: never delivered, so not shown either
                out.append(
                    _message_out(source, qm.message, redelivered=qm.redelivered, enqueued_ms=qm.enqueued_ms)
                )
                if len(out) >= limit:
                    break
            return out

        return self._call(read)

    def _replay_session(self, broker: Broker) -> Session:
        if self._replay is None or self._replay.closed:
            self._replay = broker.open_session(self.vhost, connection_id=self._connection_id)
        return self._replay

    def consume_for_replay(self, source: str, limit: int) -> list[BrokerMessage]:
        """Take up to `limit` messages with manual acknowledgement (basic.get); settle each."""

        def take(broker: Broker) -> list[BrokerMessage]:
            session = self._replay_session(broker)
            out: list[BrokerMessage] = []
            while len(out) < limit:
                qm: QueuedMessage | None = session.basic_get(source)
                if qm is None:
                    break
                out.append(
                    _message_out(
                        source,
                        qm.message,
                        redelivered=qm.redelivered,
                        enqueued_ms=qm.enqueued_ms,
                        handle=(session.id, qm.delivery_tag),
                    )
                )
            return out

        return self._call(take)

    def settle(self, message: BrokerMessage, *, ack: bool, requeue: bool = True) -> None:
        """ack, or nack (requeue to its original position, or dead-letter/drop with requeue=False)."""

        def settle(broker: Broker) -> None:
            session = self._replay
            handle = message.handle
            if session is None or session.closed or not isinstance(handle, tuple) or handle[0] != session.id:
                raise ConflictError(
                    f"message from {message.source!r} is no longer held",
                    "it was returned to its queue when the session closed; take it again",
                )
            if ack:
                session.ack(handle[1])
            else:
                session.nack(handle[1], requeue=requeue)

        self._call(settle)

    def purge(self, source: str) -> int:
        return self._call(lambda broker: broker.purge_queue(self.vhost, source))

    def stats(self) -> Snapshot:
        snapshot = self._call(lambda broker: broker.snapshot())
        return Snapshot(time.time(), _stats_objects(snapshot, self.vhost))

    # -- tail -------------------------------------------------------------------------------------

    def tail(self, target: str, sink: Callable[[BrokerMessage], None], cancel: CancelToken) -> None:
        """Call `sink` (on this thread) for every message entering queue `target`, or published or
        dead-lettered to exchange `target`, until `cancel` is set. Messages are not taken."""
        inbox: queue_module.SimpleQueue[BrokerMessage] = queue_module.SimpleQueue()
        removers: dict[int, Callable[[], None]] = {}
        recent = _RecentMessages()

        def is_queue(broker: Broker) -> bool:
            vh = broker.vhost(self.vhost)
            if target in vh.queues:
                return True
            if target in vh.exchanges:
                return False
            raise NotFound(f"no queue or exchange '{target}' in vhost '{self.vhost}'")

        watch_queue = self._call(is_queue)

        def on_queue(q: EngineQueue, message: Message) -> None:
            inbox.put(_message_out(q.name, message))

        def on_exchange(q: EngineQueue, message: Message) -> None:
            if message.exchange == target and recent.first_time(message):
                inbox.put(_message_out(target, message))

        def watch(broker: Broker) -> None:
            vh = broker.vhost(self.vhost)
            queues = [vh.queues[target]] if watch_queue and target in vh.queues else []
            if not watch_queue:
                queues = list(vh.queues.values())
            for q in queues:
                if id(q) not in removers:
                    removers[id(q)] = observe_queue(q, on_queue if watch_queue else on_exchange)

        def unwatch(broker: Broker) -> None:
            for remove in removers.values():
                remove()
            removers.clear()

        try:
            self._call(watch)
            while not cancel.cancelled:
                try:
                    item = inbox.get(timeout=TAIL_POLL)
                except queue_module.Empty:
                    if not watch_queue:
                        self._call(watch)  # queues declared since
                    continue
                sink(item)
        finally:
            with contextlib.suppress(BackendError):  # the broker stopped: its observers went with it
                self._call(unwatch)
