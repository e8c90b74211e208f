"""A virtual host of the embedded broker engine: its exchanges, queues, sessions and time.

Owns: `VHost` (declare/delete/bind for exchanges and queues with RabbitMQ's checks and reply texts,
sessions, TTL and x-expires work in `tick()` driven by a deadline heap, stats). Publish routing,
delayed messages and dead-letter republishing are `mqstudio.broker.routing.Router`, which `VHost`
mixes in; `RouteResult` is re-exported from there. Exchange types come from `mqstudio.broker.exchanges`.
Must not import anything outside the stdlib and this package (never `mqstudio.core`).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mqstudio.broker.clock import Clock
from mqstudio.broker.errors import AccessRefused, NotFound, PreconditionFailed, ResourceLocked
from mqstudio.broker.exchanges import (
    Destination,
    DestinationKind,
    Exchange,
    ExchangeType,
    create_exchange,
)
from mqstudio.broker.queue import EQUIVALENCE_ARGS, Queue, QueueArguments, QueueType
from mqstudio.broker.routing import Router, RouteResult
from mqstudio.broker.session import CancelCallback, Session
from mqstudio.broker.stats import (
    ExchangeCounters,
    VHostStats,
    exchange_snapshot,
    queue_snapshot,
)

if TYPE_CHECKING:
    from mqstudio.broker.journal import Journal

__all__ = ["DEFAULT_EXCHANGES", "RouteResult", "VHost"]

DEFAULT_EXCHANGES = (
    ("amq.direct", ExchangeType.DIRECT),
    ("amq.fanout", ExchangeType.FANOUT),
    ("amq.topic", ExchangeType.TOPIC),
    ("amq.headers", ExchangeType.HEADERS),
    ("amq.match", ExchangeType.HEADERS),
)
# rabbit_exchange:assert_args_equivalence compares only these (the second for the delayed plugin).
_EXCHANGE_EQUIVALENCE_ARGS = ("alternate-exchange", "x-delayed-type")
_NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _amqp_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, str | bytes):
        return "longstr"
    if isinstance(value, float):
        return "double"
    return type(value).__name__


def _args_equivalent(
    current: Mapping[str, Any], received: Mapping[str, Any], keys: tuple[str, ...], what: str
) -> None:
    """rabbit_misc:assert_args_equivalence: compare only the listed keys, with their types."""
    for key in keys:
        cur = current.get(key)
        new = received.get(key)
        if (cur is None) and (new is None):
            continue
        if cur is not None and new is not None and type(cur) is type(new) and cur == new:
            continue
        got = "none" if new is None else f"the value '{new}' of type '{_amqp_type(new)}'"
        has = "none" if cur is None else f"the value '{cur}' of type '{_amqp_type(cur)}'"
        raise PreconditionFailed(f"inequivalent arg '{key}' for {what}: received {got} but current is {has}")


class VHost(Router):
    """One virtual host. All names are vhost-local; RabbitMQ's reply texts name the vhost."""

    def __init__(self, name: str, clock: Clock, rng: random.Random) -> None:
        self.name = name
        self._clock = clock
        self._rng = rng
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        self.sessions: dict[int, Session] = {}
        self._xcounters: dict[str, ExchangeCounters] = {}
        # exchange name -> routing key -> resolved route (only for key-only exchange types).
        self._route_cache = {}
        self._route_cache_size = 0
        self._delayed = []
        self._delayed_seq = 0
        self._stamp_ms = None
        # Queue wake-ups: (at ms, seq, queue), validated lazily against `Queue.wake_ms`.
        self._deadlines: list[tuple[int, int, Queue]] = []
        self._deadline_seq = 0
        # Persistence (mqstudio.broker.journal): set by the Broker when it has a store.
        self.journal: Journal | None = None
        self.session_class: type[Session] = Session
        self._declare_builtin("", ExchangeType.DIRECT)
        for name_, type_ in DEFAULT_EXCHANGES:
            self._declare_builtin(name_, type_)

    def _declare_builtin(self, name: str, type_: ExchangeType) -> None:
        self.exchanges[name] = create_exchange(name, type_.value, durable=True)
        self._xcounters[name] = ExchangeCounters()

    # -- helpers ----------------------------------------------------------------------------------

    def generate_name(self, prefix: str) -> str:
        """Server-generated names (`amq.gen-…`, `amq.ctag-…`): 22 url-safe characters, like RabbitMQ's
        base64 GUIDs, drawn from the broker's seeded generator so runs are reproducible."""
        while True:
            name = prefix + "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(22))
            if name not in self.queues:
                return name

    def _exchange(self, name: str) -> Exchange:
        x = self.exchanges.get(name)
        if x is None:
            raise NotFound(f"no {self._rs('exchange', name)}")
        return x

    def _queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            raise NotFound(f"no {self._rs('queue', name)}")
        return q

    def _locked(self, name: str) -> ResourceLocked:
        return ResourceLocked(
            f"cannot obtain exclusive access to locked {self._rs('queue', name)}. It could be originally "
            "declared on another connection or the exclusive property value does not match that of the "
            "original declaration."
        )

    def queue_for(self, name: str, connection_id: str | None) -> Queue:
        """The queue, checking exclusive ownership (`check_exclusive_access`, lax mode)."""
        q = self._queue(name)
        if connection_id is not None and q.owner is not None and q.owner != connection_id:
            raise self._locked(name)
        return q

    def _not_default(self, name: str) -> None:
        if name == "":
            raise AccessRefused("operation not permitted on the default exchange")

    # -- exchanges --------------------------------------------------------------------------------

    def declare_exchange(
        self,
        name: str,
        type: str = "direct",
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
    ) -> Exchange:
        if passive:
            return self._exchange(name)
        self._not_default(name)
        current = self.exchanges.get(name)
        if current is None:
            if name.startswith("amq."):
                raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
            x = create_exchange(
                name, type, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments
            )
            self.exchanges[name] = x
            self._xcounters[name] = ExchangeCounters()
            self._invalidate_routes()
            if self.journal is not None:
                self.journal.exchange_declared(self, x)
            return x
        # rabbit_exchange:assert_equivalence: type, durable, auto_delete, internal, then arguments.
        what = self._rs("exchange", name)
        if current.type != type:
            create_exchange(name, type)  # an unknown type is 503 before it is "inequivalent"
            raise PreconditionFailed(
                f"inequivalent arg 'type' for {what}: received '{type}' but current is '{current.type}'"
            )
        for field_, new, cur in (
            ("durable", durable, current.durable),
            ("auto_delete", auto_delete, current.auto_delete),
            ("internal", internal, current.internal),
        ):
            if new != cur:
                raise PreconditionFailed(
                    f"inequivalent arg '{field_}' for {what}: received '{_bool(new)}' but current is "
                    f"'{_bool(cur)}'"
                )
        _args_equivalent(current.arguments, arguments or {}, _EXCHANGE_EQUIVALENCE_ARGS, what)
        return current

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        self._not_default(name)
        if name.startswith("amq.") and name in self.exchanges:
            raise AccessRefused(f"deletion of system {self._rs('exchange', name)} is not allowed")
        x = self.exchanges.get(name)
        if x is None:
            return  # exchange.delete is idempotent in RabbitMQ
        if if_unused and x.has_bindings():
            raise PreconditionFailed(f"{self._rs('exchange', name)} in use")
        self._remove_exchange(name)

    def _remove_exchange(self, name: str) -> None:
        del self.exchanges[name]
        del self._xcounters[name]
        if self.journal is not None:
            self.journal.exchange_deleted(self, name)
        self._unbind_everywhere(Destination(DestinationKind.EXCHANGE, name))
        self._invalidate_routes()

    def _unbind_everywhere(self, destination: Destination) -> None:
        """Drop bindings to a deleted destination; auto-delete sources left without bindings go too."""
        emptied = []
        for x in list(self.exchanges.values()):
            if x.unbind_destination(destination) and x.auto_delete and not x.has_bindings():
                emptied.append(x.name)
        for name in emptied:
            if name in self.exchanges:
                self._remove_exchange(name)

    def _after_unbind(self, source: Exchange) -> None:
        self._invalidate_routes()
        # [exchanges] an auto-delete exchange is deleted when its last binding is removed.
        if source.auto_delete and not source.has_bindings() and source.name in self.exchanges:
            self._remove_exchange(source.name)

    def exchange_bind(
        self,
        destination: str,
        source: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self._not_default(source)
        self._not_default(destination)
        src = self._exchange(source)
        self._exchange(destination)
        dest = Destination(DestinationKind.EXCHANGE, destination)
        if src.bind(dest, routing_key, arguments) and self.journal is not None:
            self.journal.bound(self, src, dest, routing_key, arguments)
        self._invalidate_routes()

    def exchange_unbind(
        self,
        destination: str,
        source: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self._not_default(source)
        self._not_default(destination)
        src = self._exchange(source)
        self._exchange(destination)
        dest = Destination(DestinationKind.EXCHANGE, destination)
        if src.unbind(dest, routing_key, arguments):
            if self.journal is not None:
                self.journal.unbound(self, src, dest, routing_key, arguments)
            self._after_unbind(src)

    # -- queues -----------------------------------------------------------------------------------

    def declare_queue(
        self,
        name: str = "",
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
        owner: str | None = None,
    ) -> Queue:
        now = self.now_ms()
        current = self.queues.get(name) if name else None
        if passive:
            if current is None:
                raise NotFound(f"no {self._rs('queue', name)}")
            q = self.queue_for(name, owner)
            q.touch(now)
            q.expire(now)
            return q
        if current is not None:
            what = self._rs("queue", name)
            for field_, new, cur in (
                ("durable", durable, current.durable),
                ("auto_delete", auto_delete, current.auto_delete),
            ):
                if new != cur:
                    raise PreconditionFailed(
                        f"inequivalent arg '{field_}' for {what}: received '{_bool(new)}' but current is "
                        f"'{_bool(cur)}'"
                    )
            # check_exclusive_access(Q, Owner, strict): owner must match exactly.
            if current.owner != (owner if exclusive else None):
                raise self._locked(name)
            _args_equivalent(current.arguments, arguments or {}, EQUIVALENCE_ARGS, what)
            current.touch(now)
            current.expire(now)
            return current
        if not name:
            name = self.generate_name("amq.gen-")
        elif name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        args = QueueArguments.parse(arguments, name, self.name)
        if args.queue_type is QueueType.QUORUM:
            # rabbit_quorum_queue:declare refuses what a replicated queue cannot be.
            refused = ((exclusive, "exclusive"), (auto_delete, "auto-delete"), (not durable, "non-durable"))
            for bad, prop in refused:
                if bad:
                    raise PreconditionFailed(f"invalid property '{prop}' for {self._rs('queue', name)}")
        q = Queue(
            name,
            self,
            vhost=self.name,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=arguments,
            owner=(owner or "") if exclusive else None,
        )
        self.add_queue(q)
        if self.journal is not None:
            self.journal.queue_declared(self, q)
        return q

    def add_queue(self, q: Queue) -> None:
        """Register a built queue (declare, and recovery from a store, which skips the name checks)."""
        self.queues[q.name] = q
        self._invalidate_routes()
        q.reschedule()  # an x-expires lease starts now

    def queue_bind(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
        connection_id: str | None = None,
    ) -> None:
        self._not_default(exchange)
        x = self._exchange(exchange)
        self.queue_for(queue, connection_id)
        dest = Destination(DestinationKind.QUEUE, queue)
        if x.bind(dest, routing_key, arguments) and self.journal is not None:
            self.journal.bound(self, x, dest, routing_key, arguments)
        self._invalidate_routes()

    def queue_unbind(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
        connection_id: str | None = None,
    ) -> None:
        self._not_default(exchange)
        x = self._exchange(exchange)
        self.queue_for(queue, connection_id)
        dest = Destination(DestinationKind.QUEUE, queue)
        if x.unbind(dest, routing_key, arguments):
            if self.journal is not None:
                self.journal.unbound(self, x, dest, routing_key, arguments)
            self._after_unbind(x)

    def purge_queue(self, name: str, connection_id: str | None = None) -> int:
        return self.queue_for(name, connection_id).purge()

    def delete_queue(
        self, name: str, *, if_unused: bool = False, if_empty: bool = False, connection_id: str | None = None
    ) -> int:
        """queue.delete → the number of ready messages deleted (never dead-lettered) [dlx]."""
        q = self.queues.get(name)
        if q is None:
            return 0  # idempotent, like RabbitMQ's queue.delete-ok with message-count 0
        self.queue_for(name, connection_id)
        if if_unused and q.consumers:
            raise PreconditionFailed(f"{self._rs('queue', name)} in use")
        if if_empty and q.ready_count:
            raise PreconditionFailed(f"{self._rs('queue', name)} is not empty")
        return self._remove_queue(q)

    def _remove_queue(self, q: Queue) -> int:
        if self.journal is not None:
            self.journal.queue_deleted(self, q)
        count = q.purge()
        q.deleted = True
        del self.queues[q.name]
        for consumer in list(q.consumers):
            consumer.session.server_cancel(consumer)
        q.consumers.clear()
        q.consumers_changed()
        self._unbind_everywhere(Destination(DestinationKind.QUEUE, q.name))
        self._invalidate_routes()
        return count

    def queue_unused(self, queue: Queue) -> None:
        """Called by a queue whose last consumer went: auto-delete queues go now [queues]."""
        if queue.auto_delete and queue.had_consumers and not queue.consumers and not queue.deleted:
            self._remove_queue(queue)

    # -- sessions ---------------------------------------------------------------------------------

    def open_session(
        self, session_id: int, connection_id: str, on_cancel: CancelCallback | None = None
    ) -> Session:
        s = self.session_class(self, session_id, connection_id, on_cancel)
        self.sessions[session_id] = s
        return s

    def session_closed(self, session: Session) -> None:
        self.sessions.pop(session.id, None)

    def close_connection(self, connection_id: str) -> None:
        """The connection went away: close its sessions, then delete its exclusive queues."""
        for s in [s for s in self.sessions.values() if s.connection_id == connection_id]:
            s.close()
        for q in [q for q in self.queues.values() if q.owner == connection_id]:
            if not q.deleted:
                self._remove_queue(q)

    # -- time -------------------------------------------------------------------------------------

    def schedule(self, queue: Queue, at_ms: int) -> None:
        """`QueueHost.schedule`: push a wake-up for `queue` (which has set `wake_ms = at_ms`)."""
        self._deadline_seq += 1
        heap = self._deadlines
        heapq.heappush(heap, (at_ms, self._deadline_seq, queue))
        if len(heap) > 2 * len(self.queues) + 64:
            self._compact_deadlines()

    def _compact_deadlines(self) -> None:
        """Drop superseded entries: one per queue that has a wake-up (keeps the heap O(queues))."""
        heap = []
        for q in self.queues.values():
            if q.wake_ms is not None:
                self._deadline_seq += 1
                heap.append((q.wake_ms, self._deadline_seq, q))
        heapq.heapify(heap)
        self._deadlines = heap

    def tick(self) -> int:
        """Do the time-based work that is due; returns how many things happened.

        Only queues whose wake-up is due are visited (the deadline heap, see `mqstudio.broker.queue`);
        an entry whose queue has since been deleted or re-planned is skipped.
        """
        now = self.now_ms()
        n = 0
        delayed = self._delayed
        while delayed and delayed[0].due <= now:
            self._release(heapq.heappop(delayed))
            n += 1
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            t, _, q = heapq.heappop(heap)
            heap = self._deadlines  # a compaction (inside q.tick) may have replaced it
            if q.deleted or q.wake_ms != t:
                continue
            q.wake_ms = None
            n += q.tick(now)
            if q.deleted:
                continue
            if q.is_expired_unused(now):
                # [ttl] queue expiry: the queue is deleted, its messages are not dead-lettered.
                self._remove_queue(q)
                n += 1
            else:
                q.reschedule()
            heap = self._deadlines
        return n

    def next_deadline_ms(self) -> int | None:
        """When `tick()` next has work to do. Early wake-ups at the top of the heap (the queue's
        deadline moved later: a consumer came, the lease was renewed, heads were consumed) are
        re-planned here, so the answer is exact."""
        heap = self._deadlines
        while heap:
            t, _, q = heap[0]
            if q.deleted or q.wake_ms != t:
                heapq.heappop(heap)
                continue
            actual = q.next_deadline_ms()
            if actual == t:
                break
            heapq.heappop(heap)
            q.wake_ms = None
            q.reschedule()
            heap = self._deadlines
        deadline = heap[0][0] if heap else None
        if self._delayed:
            due = self._delayed[0].due
            if deadline is None or due < deadline:
                deadline = due
        return deadline

    # -- stats ------------------------------------------------------------------------------------

    def snapshot(self) -> VHostStats:
        self._fold_route_hits()
        return VHostStats(
            name=self.name,
            exchanges=tuple(
                exchange_snapshot(self.name, name, x.type, self._xcounters[name])
                for name, x in sorted(self.exchanges.items())
            ),
            queues=tuple(
                queue_snapshot(
                    self.name,
                    name,
                    q,
                    published=q.published,
                    ready=q.ready_count,
                    unacked=q.unacked_count,
                    consumers=len(q.consumers),
                )
                for name, q in sorted(self.queues.items())
            ),
            delayed=len(self._delayed),
        )

    def exchange_counters(self, name: str) -> ExchangeCounters:
        self._fold_route_hits()
        return self._xcounters[name]
