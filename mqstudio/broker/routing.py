"""Publish routing, delayed-message holding and dead-letter republishing of a virtual host.

Owns: `RouteResult`, `Router` (the routing half of `mqstudio.broker.vhost.VHost`, a mixin so the
publish hot path stays one method call: route resolution and its cache, delivery into queues,
x-delayed-message holding and release, dead-letter republishing with cycle detection).
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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mqstudio.broker.clock import Clock
from mqstudio.broker.deadletter import DeadLetterReason, dead_letter, header_routes, is_cycle
from mqstudio.broker.errors import AccessRefused, NotFound
from mqstudio.broker.exchanges import (
    DelayedMessageExchange,
    Destination,
    DestinationKind,
    Exchange,
    ExchangeType,
)
from mqstudio.broker.message import (
    EMPTY_PROPERTIES,
    Message,
    NewMessage,
    Properties,
    parse_expiration,
)
from mqstudio.broker.queue import Queue
from mqstudio.broker.stats import ExchangeCounters

# Routes of these types depend on the routing key only, so a resolved route can be cached.
_CACHEABLE_TYPES = frozenset({ExchangeType.DIRECT.value, ExchangeType.FANOUT.value, ExchangeType.TOPIC.value})
_ROUTE_CACHE_MAX = 4096


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

    __slots__ = (
        "bump_in",
        "bump_out",
        "cacheable",
        "delayed",
        "entry",
        "hits",
        "keys",
        "ok",
        "queues",
        "single",
        "untimed",
    )

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
        # No target has a queue-level TTL: for a message without `expiration` the time of a publish
        # then only stamps `enqueued_ms` (no rule reads it), so a batch's stamp may stand in for it.
        self.untimed = all(q.args.message_ttl is None for q in queues)
        self.keys = keys
        self.cacheable = cacheable
        self.bump_in = bump_in
        self.bump_out = bump_out
        self.delayed = delayed
        # Publishes through the fast path not yet added to the entry exchange's counters (one
        # increment instead of two per message; `Router._fold_route_hits` adds them up).
        self.hits = 0
        self.ok = RouteResult(
            tuple(q.name for q in queues), not queues and not delayed, False, (), bool(delayed)
        )


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


class Router:
    """Routing state and methods of a vhost (mixed into `VHost`, which owns the attributes)."""

    name: str
    _clock: Clock
    exchanges: dict[str, Exchange]
    queues: dict[str, Queue]
    _xcounters: dict[str, ExchangeCounters]
    # exchange name -> routing key -> resolved route (only for key-only exchange types).
    _route_cache: dict[str, dict[str, _Route]]
    _route_cache_size: int
    _delayed: list[_Delayed]
    _delayed_seq: int
    # The batch stamp (see `begin_batch`): the time the batch began, None outside a batch.
    _stamp_ms: int | None

    def now_ms(self) -> int:
        return self._clock.now_ms()

    # -- batch stamp ------------------------------------------------------------------------------

    def begin_batch(self, now_ms: int) -> None:
        """A caller that handles input in batches (the AMQP server: one event-loop iteration) starts
        one at `now_ms`: until `end_batch()`, messages that no time rule applies to (no
        `expiration`, no queue-level TTL in any target) are stamped (`enqueued_ms`) with `now_ms`
        instead of a clock read each. Every time rule (message TTL, x-expires, delayed messages,
        x-death times) still reads the clock when it applies."""
        self._stamp_ms = now_ms

    def end_batch(self) -> None:
        self._stamp_ms = None

    def _stamp(self) -> int:
        """`now` for a publish only stamped with it (see `begin_batch`)."""
        stamp = self._stamp_ms
        return self._clock.now_ms() if stamp is None else stamp

    def _rs(self, kind: str, name: str) -> str:
        return f"{kind} '{name}' in vhost '{self.name}'"

    def _invalidate_routes(self) -> None:
        self._fold_route_hits()
        self._route_cache.clear()
        self._route_cache_size = 0

    def _fold_route_hits(self) -> None:
        """Bring exchange counters up to date with the fast path's per-route hits (before they are
        read, and before cached routes are dropped)."""
        for routes in self._route_cache.values():
            for route in routes.values():
                hits = route.hits
                if hits:
                    route.hits = 0
                    c = route.entry
                    c.published_in += hits
                    c.published_out += hits

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
        mandatory: bool = False,
    ) -> RouteResult:
        """basic.publish. Raises 404 for a missing exchange, 403 for an internal one, 406 for a bad
        `expiration` (all channel errors in RabbitMQ). `mandatory` may be passed by position (the
        broker facade does: cheaper than a keyword) or by keyword."""
        props = EMPTY_PROPERTIES if properties is None else properties
        if props.expiration is None and not props.headers:
            # Hot path: a cached route to one queue. A cache entry exists only for an exchange that
            # passed the checks below and still exists (every declare/delete/bind clears the cache).
            routes = self._route_cache.get(exchange)
            if routes is not None:
                route = routes.get(routing_key)
                if route is not None and route.single is not None:
                    route.hits += 1  # the entry exchange's published_in and published_out
                    q = route.single
                    # Message(body, props, exchange, routing_key) without the __init__ call (see NewMessage).
                    m = NewMessage()
                    m.body = body
                    m.properties = props
                    m.exchange = exchange
                    m.routing_key = routing_key
                    # `_stamp()` inlined: in a batch, an untimed route needs no clock read of its own.
                    now = self._stamp_ms
                    if now is None or not route.untimed:
                        now = self._clock.now_ms()
                    if q.publish(m, None, now):
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
        now = self._stamp() if msg_ttl is None and route.untimed else self._clock.now_ms()
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
        message = Message(m.body, replace(props, headers=headers), m.exchange, m.routing_key, m.deaths)
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
        # Cycle detection reads the broker's own history only, never a client-sent x-death header.
        deaths = new.deaths
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
