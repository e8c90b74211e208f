"""A virtual host of the embedded broker engine: its exchanges, queues, routing and dead-lettering.

Owns: `VHost` (declare/delete/bind for exchanges and queues with RabbitMQ's checks and reply texts,
publish routing across exchange-to-exchange bindings and alternate exchanges, the default exchange's
implicit bindings, delayed-message holding, dead-letter republishing with cycle detection, TTL and
x-expires work in `tick()`) and `RouteResult`. Exchange types come from `mqstudio.broker.exchanges`.
Must not import anything outside the stdlib and this package (never `mqstudio.core`).

Routing follows RabbitMQ's `rabbit_exchange:route/2`: each exchange reached routes for itself; its
exchange destinations are followed with a visited set (so e2e loops terminate, and a message reaches
a queue at most once); an exchange that matched nothing hands the message to its alternate-exchange
(whose own AE applies in turn) [ae]. CC and BCC headers add routing keys; BCC is removed from the
message before it is enqueued (sender-selected distribution) [sender-selected]. The default exchange
routes to the queue named by the routing key; it cannot be bound, declared or deleted [exchanges].
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mqstudio.broker.clock import Clock
from mqstudio.broker.deadletter import DeadLetterReason, dead_letter, header_routes, is_cycle, x_death
from mqstudio.broker.errors import AccessRefused, NotFound, PreconditionFailed, ResourceLocked
from mqstudio.broker.exchanges import (
    DelayedMessageExchange,
    Destination,
    DestinationKind,
    Exchange,
    ExchangeType,
    create_exchange,
)
from mqstudio.broker.message import EMPTY_PROPERTIES, Message, Properties, parse_expiration
from mqstudio.broker.queue import EQUIVALENCE_ARGS, Queue, QueueArguments, QueueType
from mqstudio.broker.session import CancelCallback, Session
from mqstudio.broker.stats import (
    ExchangeCounters,
    VHostStats,
    exchange_snapshot,
    queue_snapshot,
)

if TYPE_CHECKING:
    from mqstudio.broker.journal import Journal

DEFAULT_EXCHANGES = (
    ("amq.direct", ExchangeType.DIRECT),
    ("amq.fanout", ExchangeType.FANOUT),
    ("amq.topic", ExchangeType.TOPIC),
    ("amq.headers", ExchangeType.HEADERS),
    ("amq.match", ExchangeType.HEADERS),
)
# Routes of these types depend on the routing key only, so a resolved route can be cached.
_CACHEABLE_TYPES = frozenset({ExchangeType.DIRECT.value, ExchangeType.FANOUT.value, ExchangeType.TOPIC.value})
_ROUTE_CACHE_MAX = 4096
# rabbit_exchange:assert_args_equivalence compares only these (the second for the delayed plugin).
_EXCHANGE_EQUIVALENCE_ARGS = ("alternate-exchange", "x-delayed-type")
_NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True, slots=True)
class RouteResult:
    """What happened to one publish.

    `routed`: queues that took the message; `rejected_by_overflow`: queues that refused it
    (x-overflow reject-publish/-dlx; with confirms the AMQP layer nacks); `unroutable`: no queue
    matched; `returned`: unroutable and mandatory (the AMQP layer sends basic.return 312 NO_ROUTE);
    `delayed`: held by an x-delayed-message exchange, routed later by `tick()`.
    """

    routed: tuple[str, ...] = ()
    unroutable: bool = False
    returned: bool = False
    rejected_by_overflow: tuple[str, ...] = ()
    delayed: bool = False


_UNROUTABLE = RouteResult((), True, False)
_RETURNED = RouteResult((), True, True)
_DELAYED = RouteResult(delayed=True)


class _Route:
    """A resolved route (cache entry): target queues and the exchange counters it bumps."""

    __slots__ = ("bump_in", "bump_out", "cacheable", "delayed", "entry", "keys", "ok", "queues", "single")

    def __init__(  # noqa: PLR0917 - private record, built in one place
        self,
        queues: tuple[Queue, ...],
        bump_in: tuple[ExchangeCounters, ...],
        bump_out: tuple[ExchangeCounters, ...],
        delayed: list[tuple[DelayedMessageExchange, int]],
        keys: list[str],
        cacheable: bool,
        entry: ExchangeCounters,
    ) -> None:
        self.queues = queues
        self.entry = entry
        # The common case gets its own publish path: one queue, reached from the entry exchange only.
        self.single = (
            queues[0] if len(queues) == 1 and not bump_in and bump_out == (entry,) and not delayed else None
        )
        self.keys = keys
        self.cacheable = cacheable
        self.bump_in = bump_in
        self.bump_out = bump_out
        self.delayed = delayed
        self.ok = RouteResult(
            tuple(q.name for q in queues), not queues and not delayed, False, (), bool(delayed)
        )


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


class _Delayed:
    __slots__ = ("delay", "due", "exchange", "keys", "message", "seq")

    def __init__(  # noqa: PLR0917 - private record, built in one place
        self,
        due: int,
        seq: int,
        exchange: DelayedMessageExchange,
        message: Message,
        keys: list[str],
        delay: int,
    ) -> None:
        self.due = due
        self.seq = seq
        self.exchange = exchange
        self.message = message
        self.keys = keys
        self.delay = delay

    def __lt__(self, other: _Delayed) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


class VHost:
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
        self._route_cache: dict[str, dict[str, _Route]] = {}
        self._route_cache_size = 0
        self._delayed: list[_Delayed] = []
        self._delayed_seq = 0
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

    def now_ms(self) -> int:
        return self._clock.now_ms()

    def generate_name(self, prefix: str) -> str:
        """Server-generated names (`amq.gen-…`, `amq.ctag-…`): 22 url-safe characters, like RabbitMQ's
        base64 GUIDs, drawn from the broker's seeded generator so runs are reproducible."""
        while True:
            name = prefix + "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(22))
            if name not in self.queues:
                return name

    def _rs(self, kind: str, name: str) -> str:
        return f"{kind} '{name}' in vhost '{self.name}'"

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

    def _invalidate_routes(self) -> None:
        self._route_cache.clear()
        self._route_cache_size = 0

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

    # -- routing ----------------------------------------------------------------------------------

    def _resolve(self, entry: Exchange, keys: list[str], headers: Mapping[str, Any] | None) -> _Route:
        """Follow bindings from `entry` to the set of queues (see module docstring for the rules)."""
        counters = self._xcounters
        exchanges = self.exchanges
        found: dict[str, Queue] = {}
        bump_in: list[ExchangeCounters] = []
        bump_out: list[ExchangeCounters] = []
        delayed: list[tuple[DelayedMessageExchange, int]] = []
        cacheable = True
        visited = {entry.name}
        stack = [entry]
        while stack:
            x = stack.pop()
            if x is not entry:
                bump_in.append(counters[x.name])
            if isinstance(x, DelayedMessageExchange):
                cacheable = False
                delay = x.delay_ms(headers)
                if delay > 0:
                    delayed.append((x, delay))
                    continue
            elif x.type not in _CACHEABLE_TYPES:
                cacheable = False
            dests: set[Destination]
            if x.name == "":
                # The default exchange: every queue is bound by its own name, implicitly.
                dests = {Destination(DestinationKind.QUEUE, k) for k in keys if k in self.queues}
            elif len(keys) == 1:
                dests = x.route(keys[0], headers)
            else:
                dests = set()
                for k in keys:
                    dests |= x.route(k, headers)
            if not dests:
                ae = x.alternate_exchange
                if ae is not None and ae not in visited and ae in exchanges:
                    visited.add(ae)
                    stack.append(exchanges[ae])
                continue
            bump_out.append(counters[x.name])
            for d in dests:
                if d.kind is DestinationKind.QUEUE:
                    q = self.queues.get(d.name)
                    if q is not None:
                        found[d.name] = q
                elif d.name not in visited and d.name in exchanges:
                    visited.add(d.name)
                    stack.append(exchanges[d.name])
        return _Route(
            tuple(found[n] for n in sorted(found)),
            tuple(bump_in),
            tuple(bump_out),
            delayed,
            keys,
            cacheable,
            counters[entry.name],
        )

    def publish(
        self,
        exchange: str,
        routing_key: str,
        properties: Properties | None,
        body: bytes,
        *,
        mandatory: bool = False,
    ) -> RouteResult:
        """basic.publish. Raises 404 for a missing exchange, 403 for an internal one, 406 for a bad
        `expiration` (all channel errors in RabbitMQ)."""
        props = EMPTY_PROPERTIES if properties is None else properties
        if props.expiration is None and not props.headers:
            # Hot path: a cached route to one queue. A cache entry exists only for an exchange that
            # passed the checks below and still exists (every declare/delete/bind clears the cache).
            routes = self._route_cache.get(exchange)
            if routes is not None:
                route = routes.get(routing_key)
                if route is not None and route.single is not None:
                    c = route.entry
                    c.published_in += 1
                    c.published_out += 1
                    q = route.single
                    if q.publish(Message(body, props, exchange, routing_key), None, self._clock.now_ms()):
                        return route.ok
                    return RouteResult((), False, False, (q.name,))
        x = self.exchanges.get(exchange)
        if x is None:
            raise NotFound(f"no {self._rs('exchange', exchange)}")
        if x.internal:
            raise AccessRefused(f"cannot publish to internal {self._rs('exchange', exchange)}")
        exp = props.expiration
        msg_ttl = None if exp is None else parse_expiration(exp)
        headers = props.headers
        if headers and ("CC" in headers or "BCC" in headers):
            keys = [routing_key, *header_routes(headers, "CC"), *header_routes(headers, "BCC")]
            route = self._resolve(x, keys, headers)
            if "BCC" in headers:
                props = replace(props, headers={k: v for k, v in headers.items() if k != "BCC"})
        else:
            routes = self._route_cache.get(exchange)
            cached = None if routes is None else routes.get(routing_key)
            if cached is None:
                route = self._resolve(x, [routing_key], headers)
                if route.cacheable:
                    if self._route_cache_size >= _ROUTE_CACHE_MAX:
                        self._invalidate_routes()
                    self._route_cache.setdefault(exchange, {})[routing_key] = route
                    self._route_cache_size += 1
            else:
                route = cached
        return self._deliver(
            route, Message(body, props, exchange, routing_key), msg_ttl, mandatory, route.entry
        )

    def _deliver(
        self,
        route: _Route,
        message: Message,
        msg_ttl: int | None,
        mandatory: bool,
        entry: ExchangeCounters | None,
    ) -> RouteResult:
        if entry is not None:
            entry.published_in += 1
        for c in route.bump_in:
            c.published_in += 1
        for c in route.bump_out:
            c.published_out += 1
        for dx, delay in route.delayed:
            self._hold(dx, message, route.keys, delay)
        queues = route.queues
        if not queues:
            if route.delayed:
                return _DELAYED
            if entry is not None:
                entry.unroutable += 1
            return _RETURNED if mandatory else _UNROUTABLE
        now = self._clock.now_ms()
        rejected: list[str] | None = None
        for q in queues:
            if not q.publish(message, msg_ttl, now):
                if rejected is None:
                    rejected = []
                rejected.append(q.name)
        if rejected is None:
            return route.ok
        routed = tuple(q.name for q in queues if q.name not in rejected)
        return RouteResult(routed, False, False, tuple(rejected), bool(route.delayed))

    # -- delayed messages (x-delayed-message exchanges) -------------------------------------------

    def _hold(self, exchange: DelayedMessageExchange, message: Message, keys: list[str], delay: int) -> None:
        self._delayed_seq += 1
        heapq.heappush(
            self._delayed,
            _Delayed(self.now_ms() + delay, self._delayed_seq, exchange, message, list(keys), delay),
        )

    def _release(self, held: _Delayed) -> None:
        x = held.exchange
        if self.exchanges.get(x.name) is not x:
            return  # the exchange was deleted (or replaced) meanwhile: the plugin loses the message
        # The plugin rewrites x-delay to -Delay on release, so a later delayed hop routes at once.
        props = held.message.properties
        headers = dict(props.headers or {})
        headers["x-delay"] = -held.delay
        m = held.message
        message = Message(m.body, replace(props, headers=headers), m.exchange, m.routing_key)
        exp = props.expiration
        route = self._resolve(x, held.keys, headers)
        self._deliver(route, message, None if exp is None else parse_expiration(exp), False, None)

    @property
    def delayed_count(self) -> int:
        return len(self._delayed)

    # -- dead-lettering ---------------------------------------------------------------------------

    def dead_letter(self, queue: Queue, message: Message, reason: DeadLetterReason) -> None:
        """Republish a message a queue let go of to its x-dead-letter-exchange [dlx].

        No DLX configured: the message is dropped (counted under its reason). DLX declared in the
        arguments but missing: "the message will be silently dropped" (dlx docs; counted as
        dlx_missing). Target queues that would close an automatic cycle are skipped (counted as
        cycle), the others still receive the message, as `rabbit_dead_letter` does.
        """
        args = queue.args
        dlx_name = args.dead_letter_exchange
        if dlx_name is None:
            queue.count_dropped(str(reason))
            return
        x = self.exchanges.get(dlx_name)
        if x is None:
            queue.count_dropped("dlx_missing")
            return
        now = self.now_ms()
        new, keys = dead_letter(
            message, queue.name, reason, now, dlx=dlx_name, dlrk=args.dead_letter_routing_key
        )
        route = self._resolve(x, keys, new.properties.headers)
        deaths = x_death(new)
        targets = tuple(q for q in route.queues if not is_cycle(deaths, q.name))
        skipped = len(route.queues) - len(targets)
        if skipped:
            queue.count_dropped("cycle", skipped)
        if not targets and not route.delayed:
            if not skipped:
                queue.count_dropped("unroutable")
            return
        queue.count_dead_lettered(str(reason))
        route.queues = targets
        self._deliver(route, new, None, False, self._xcounters[dlx_name])

    # -- time -------------------------------------------------------------------------------------

    def tick(self) -> int:
        """Do the time-based work that is due; returns how many things happened."""
        now = self.now_ms()
        n = 0
        delayed = self._delayed
        while delayed and delayed[0].due <= now:
            self._release(heapq.heappop(delayed))
            n += 1
        for q in list(self.queues.values()):
            if q.deleted:
                continue
            n += q.expire(now)
            if q.ready_count and q.consumers:
                q.dispatch()
        for q in list(self.queues.values()):
            if not q.deleted and q.is_expired_unused(now):
                # [ttl] queue expiry: the queue is deleted, its messages are not dead-lettered.
                self._remove_queue(q)
                n += 1
        return n

    def next_deadline_ms(self) -> int | None:
        deadline = self._delayed[0].due if self._delayed else None
        for q in self.queues.values():
            t = q.next_deadline_ms()
            if t is not None and (deadline is None or t < deadline):
                deadline = t
        return deadline

    # -- stats ------------------------------------------------------------------------------------

    def snapshot(self) -> VHostStats:
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
                    ready=q.ready_count,
                    unacked=q.unacked_count,
                    consumers=len(q.consumers),
                )
                for name, q in sorted(self.queues.items())
            ),
            delayed=len(self._delayed),
        )

    def exchange_counters(self, name: str) -> ExchangeCounters:
        return self._xcounters[name]
