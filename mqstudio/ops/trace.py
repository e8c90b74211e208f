"""Route tracing: where one message goes through a design, hop by hop, on the real engine.

Owns: `trace()`, `Outcome`, `HopKind`, `Hop`, `TraceResult`, `TraceError`. A trace builds a FRESH
in-memory `mqstudio.broker.Broker` on a `ManualClock`, declares the design into it
(`mqstudio.backends.translate`), publishes one marked message and then plays the chosen outcome:
a consumer rejects it (requeue=false), its TTL runs out, or its queue is full. Routing, dead-lettering,
x-death bookkeeping and cycle detection are the engine's; this module only watches and explains:

- which bindings matched is asked of the engine's own exchange types, one binding at a time;
- why and when a message left a queue is observed on the vhost's ``dead_letter`` entry point, which
  every engine rule (reject, TTL, max-length, delivery limit) goes through;
- where it arrived is read back from the engine's queues (the message carries a marker message-id).

After dead-lettering, a queue the message reaches delivers it to a consumer unless it has a message
TTL (a wait queue), in which case the TTL runs out at once on the virtual clock. The trace stops when
every copy is delivered or dropped, or after `max_hops` hops. Everything is in memory and deterministic:
no network, no disk, no threads, no wall clock. Must not import Qt, `mqstudio.ui`, `mqstudio.app` or
`mqstudio.cli`.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mqstudio.backends.translate import TopologyMapping, TranslationError, apply_topology
from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import ManualClock
from mqstudio.broker.deadletter import DeadLetterReason, dead_letter, header_routes, is_cycle, x_death
from mqstudio.broker.errors import BrokerError
from mqstudio.broker.exchanges import (
    BindingRecord,
    DelayedMessageExchange,
    DestinationKind,
    Exchange,
    create_exchange,
)
from mqstudio.broker.message import Message, Properties
from mqstudio.broker.queue import Overflow, Queue
from mqstudio.core.model import DEFAULT_VHOST, Topology

MARKER = "mqstudio-trace"
_FILLER = "mqstudio-trace-filler"
_BODY = b"mqstudio route trace"  # not empty: x-max-length-bytes counts body bytes
_MAX_FILL_MESSAGES = 100_000
_MAX_FILL_BYTES = 64 * 1024 * 1024


class Outcome(StrEnum):
    """What happens to the message in the queues the publish reaches."""

    DELIVERED = "delivered"  # a consumer takes and acks it
    REJECTED = "rejected"  # a consumer rejects it with requeue=false
    EXPIRED = "expired"  # nobody consumes it before its TTL runs out
    OVERFLOW = "overflow"  # the queue is full when it arrives (or, with drop-head, fills up behind it)


class HopKind(StrEnum):
    ROUTED = "routed"
    UNROUTABLE = "unroutable"
    ALTERNATE_EXCHANGE = "alternate-exchange"
    DEAD_LETTERED = "dead-lettered"
    DROPPED = "dropped"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class Hop:
    """One step: the core ids involved in order (exchange, binding, destination; or queue, DLX), what
    happened, why (`reason`: dead-letter reason or drop cause), and the x-death header at that point."""

    kind: HopKind
    object_ids: tuple[str, ...]
    text: str
    reason: str = ""
    routing_key: str = ""
    x_death: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TraceResult:
    hops: tuple[Hop, ...]
    notes: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def path(self) -> list[str]:
        """Every object id the message touched (nodes and bindings), in order of first touch."""
        return list(dict.fromkeys(i for hop in self.hops for i in hop.object_ids))

    @property
    def kinds(self) -> list[HopKind]:
        return [hop.kind for hop in self.hops]


class TraceError(Exception):
    """The trace cannot start: unknown exchange, a design the engine refuses, a refused publish."""

    def __init__(self, message: str, object_id: str = "") -> None:
        super().__init__(message)
        self.object_id = object_id


class _HopLimit(Exception):
    pass


def _deaths(message: Message) -> tuple[dict[str, Any], ...]:
    return tuple(copy.deepcopy(x_death(message)))


class _Tracer:
    def __init__(self, topology: Topology, vhost: str, max_hops: int) -> None:
        self.topology = topology
        self.max_hops = max_hops
        self.clock = ManualClock()
        self.broker = Broker(self.clock, seed=0)
        try:
            self.mapping: TopologyMapping = apply_topology(self.broker, topology, vhost)
        except TranslationError as exc:
            raise TraceError(str(exc), exc.object_id) from exc
        self.vhost = vhost
        self.vh = self.broker.vhost(vhost)
        self.session = self.broker.open_session(vhost, "mqstudio-trace")
        self.hops: list[Hop] = []
        self.notes: list[str] = list(self.mapping.warnings)
        self.events: deque[tuple[str, Message, DeadLetterReason, int]] = deque()
        self.arrivals: deque[tuple[str, Message]] = deque()
        self._seen: set[tuple[str, int]] = set()
        self._keep: list[Message] = []  # keeps seen messages alive so their ids stay unique
        self._scratch: dict[tuple[str, BindingRecord], Exchange] = {}
        original = self.vh.dead_letter

        def observe(queue: Queue, message: Message, reason: DeadLetterReason) -> None:
            if message.properties.message_id == MARKER:
                self.events.append((queue.name, message, reason, self.clock.now_ms()))
            original(queue, message, reason)

        # Queues call their host's dead_letter for every way a message can leave them other than an
        # ack; shadowing it on this private engine instance (and passing through) is how the tracer
        # learns when and why the message left, without re-implementing the rules.
        setattr(self.vh, "dead_letter", observe)  # noqa: B010

    # -- ids and hops -----------------------------------------------------------------------------
    def _xid(self, name: str) -> tuple[str, ...]:
        object_id = self.mapping.exchange_id(name)
        return (object_id,) if object_id is not None else ()

    def _qid(self, name: str) -> tuple[str, ...]:
        object_id = self.mapping.queue_id(name)
        return (object_id,) if object_id is not None else ()

    def _add(self, hop: Hop) -> None:
        if len(self.hops) >= self.max_hops:
            raise _HopLimit
        self.hops.append(hop)

    # -- routing explanation ----------------------------------------------------------------------
    def _matches(self, x: Exchange, record: BindingRecord, keys: Sequence[str], headers: Any) -> bool:
        """Ask the engine's own exchange type whether this one binding matches (a scratch exchange of
        the same type holding only this binding)."""
        scratch = self._scratch.get((x.name, record))
        if scratch is None:
            scratch = create_exchange("mqstudio.trace.scratch", x.type, arguments=x.arguments)
            scratch.bind(record.destination, record.routing_key, dict(record.arguments))
            self._scratch[(x.name, record)] = scratch
        return any(scratch.route(key, headers) for key in keys)

    def _explain(
        self, entry: str, keys: Sequence[str], headers: Any, deaths: tuple[dict[str, Any], ...]
    ) -> list[str]:
        """Hops for routing from exchange `entry` (e2e bindings and alternate exchanges followed like
        `rabbit_exchange:route/2`); returns the queues the engine should have delivered to."""
        queues: list[str] = []
        visited = {entry}
        pending = deque([entry])
        shown = ", ".join(repr(k) for k in keys)
        while pending:
            name = pending.popleft()
            x = self.vh.exchanges[name]
            label = "the default exchange" if name == "" else f"exchange {name!r}"
            matched: list[tuple[BindingRecord | None, DestinationKind, str]]
            if name == "":
                # Every queue is bound to the default exchange by its own name (AMQP 0-9-1 §3.1.3.1).
                matched = [(None, DestinationKind.QUEUE, k) for k in keys if k in self.vh.queues]
            else:
                matched = [
                    (r, r.destination.kind, r.destination.name)
                    for r in x.bindings
                    if self._matches(x, r, keys, headers)
                ]
            if not matched:
                ae = x.alternate_exchange
                if ae is not None and ae not in visited and ae in self.vh.exchanges:
                    visited.add(ae)
                    pending.append(ae)
                    text = (
                        f"{label} matched no binding for {shown}; it hands the message to its alternate "
                        f"exchange {ae!r}"
                    )
                    self._add(
                        Hop(
                            HopKind.ALTERNATE_EXCHANGE,
                            (*self._xid(name), *self._xid(ae)),
                            text,
                            routing_key=keys[0],
                            x_death=deaths,
                        )
                    )
                else:
                    why = "no binding matches"
                    if ae is not None and ae not in self.vh.exchanges:
                        why += f" and its alternate exchange {ae!r} does not exist"
                    text = f"{label}: {why} {shown}; the message is dropped (returned if mandatory)"
                    self._add(
                        Hop(
                            HopKind.UNROUTABLE,
                            self._xid(name),
                            text,
                            reason="unroutable",
                            routing_key=keys[0],
                            x_death=deaths,
                        )
                    )
                continue
            for record, kind, dest in matched:
                bids = tuple(self.mapping.binding_ids(record)[:1]) if record is not None else ()
                if kind is DestinationKind.QUEUE:
                    ids = (*self._xid(name), *bids, *self._qid(dest))
                    text = f"{label} routes {shown} to queue {dest!r}"
                    if dest not in queues:
                        queues.append(dest)
                else:
                    ids = (*self._xid(name), *bids, *self._xid(dest))
                    text = f"{label} routes {shown} to exchange {dest!r}"
                    if dest not in visited:
                        visited.add(dest)
                        pending.append(dest)
                if record is not None and record.routing_key:
                    text += f" (binding key {record.routing_key!r})"
                self._add(Hop(HopKind.ROUTED, ids, text, routing_key=keys[0], x_death=deaths))
        return queues

    # -- engine actions ---------------------------------------------------------------------------
    def _settle(self) -> None:
        """Explain every dead-lettering the last action caused, then collect where copies arrived."""
        while self.events:
            self._left_queue(*self.events.popleft())
        for qname, queue in self.vh.queues.items():
            for qm in queue.messages():
                m = qm.message
                if m.properties.message_id != MARKER or (qname, id(m)) in self._seen:
                    continue
                self._seen.add((qname, id(m)))
                self._keep.append(m)
                self.arrivals.append((qname, m))

    def _left_queue(self, qname: str, message: Message, reason: DeadLetterReason, now: int) -> None:
        args = self.vh.queues[qname].args if qname in self.vh.queues else None
        dlx = args.dead_letter_exchange if args is not None else None
        qid = self._qid(qname)
        if args is None or dlx is None:
            text = f"{reason} in queue {qname!r}, which has no dead-letter exchange: the message is dropped"
            self._add(Hop(HopKind.DROPPED, qid, text, reason=str(reason), x_death=_deaths(message)))
            return
        if dlx not in self.vh.exchanges:
            text = (
                f"{reason} in queue {qname!r}; its dead-letter exchange {dlx!r} does not exist, so "
                "RabbitMQ drops the message silently"
            )
            self._add(Hop(HopKind.DROPPED, qid, text, reason="dlx_missing", x_death=_deaths(message)))
            return
        new, keys = dead_letter(message, qname, reason, now, dlx=dlx, dlrk=args.dead_letter_routing_key)
        deaths = _deaths(new)
        target = "the default exchange" if dlx == "" else f"exchange {dlx!r}"
        text = f"{reason} in queue {qname!r}: dead-lettered to {target} with key {new.routing_key!r}"
        self._add(
            Hop(
                HopKind.DEAD_LETTERED,
                (*qid, *self._xid(dlx)),
                text,
                reason=str(reason),
                routing_key=new.routing_key,
                x_death=deaths,
            )
        )
        for target_queue in self._explain(dlx, keys, new.properties.headers, deaths):
            if is_cycle(list(deaths), target_queue):
                text = (
                    f"not delivered to queue {target_queue!r}: it would reach it again without a "
                    "rejection on the way, and RabbitMQ drops such dead-letter cycles"
                )
                self._add(Hop(HopKind.DROPPED, self._qid(target_queue), text, reason="cycle", x_death=deaths))

    def _take(self, qname: str, message: Message) -> int | None:
        """basic.get until our copy comes out; others go back where they were. Its delivery tag."""
        others: list[int] = []
        tag: int | None = None
        while tag is None:
            delivery = self.session.basic_get(qname)
            if delivery is None:
                break
            if delivery.message is message:
                tag = delivery.delivery_tag
            else:
                others.append(delivery.delivery_tag)
        for other in others:
            self.session.reject(other, requeue=True)
        return tag

    def _fill(self, queue: Queue, *, behind: bool) -> bool:
        """Publish filler messages so the queue is full (`behind`: one past full, pushing out the head)."""
        args = queue.args
        extra = 1 if behind else 0
        if args.max_length is not None:
            count = args.max_length - queue.ready_count + extra
            if count > _MAX_FILL_MESSAGES:
                self.notes.append(f"queue {queue.name!r} holds {args.max_length} messages; too many to fill")
                return False
            for _ in range(max(count, 0)):
                self.broker.publish(self.vhost, "", queue.name, Properties(message_id=_FILLER), b"")
            return True
        assert args.max_length_bytes is not None
        size = args.max_length_bytes - queue.ready_bytes + extra
        if size > _MAX_FILL_BYTES:
            self.notes.append(f"queue {queue.name!r} holds {args.max_length_bytes} bytes; too many to fill")
            return False
        if size > 0:
            self.broker.publish(self.vhost, "", queue.name, Properties(message_id=_FILLER), bytes(size))
        return True

    # -- the trace --------------------------------------------------------------------------------
    def run(
        self,
        *,
        exchange_id: str,
        routing_key: str,
        headers: Mapping[str, Any] | None,
        priority: int | None,
        ttl_ms: int | None,
        outcome: Outcome,
    ) -> None:
        name = self._exchange_name(exchange_id)
        x = self.vh.exchanges[name]
        if x.internal:
            raise TraceError(
                f"{self.topology.label(exchange_id)} is internal: publishers cannot publish to "
                "it, only other exchanges",
                exchange_id,
            )
        table = dict(headers) if headers else None
        keys = [routing_key, *header_routes(table, "CC"), *header_routes(table, "BCC")]
        expected = self._explain(name, keys, table, ())
        behind: list[Queue] = []
        if outcome is Outcome.OVERFLOW:
            behind = self._prepare_overflow(expected)
        properties = Properties(
            headers=table,
            priority=priority,
            expiration=None if ttl_ms is None else str(ttl_ms),
            message_id=MARKER,
            delivery_mode=2,
        )
        try:
            result = self.broker.publish(self.vhost, name, routing_key, properties, _BODY)
        except BrokerError as exc:
            raise TraceError(f"{self.topology.label(exchange_id)}: {exc}", exchange_id) from exc
        if result.delayed and isinstance(x, DelayedMessageExchange):
            delay = x.delay_ms(table)
            self.notes.append(f"exchange {name!r} holds the message for {delay} ms before routing it")
            self.clock.advance(delay)
            self.broker.tick()
        for qname in result.rejected_by_overflow:
            if self.vh.queues[qname].args.overflow is Overflow.REJECT_PUBLISH:
                text = (
                    f"queue {qname!r} is full and refuses new messages (x-overflow reject-publish): "
                    "the publisher gets a nack when it uses confirms"
                )
                self._add(Hop(HopKind.DROPPED, self._qid(qname), text, reason="overflow"))
        for queue in behind:
            self._fill(queue, behind=True)
        self._settle()
        self._follow(outcome)

    def _exchange_name(self, exchange_id: str) -> str:
        if exchange_id == "":
            return ""
        if exchange_id not in self.mapping.exchanges:
            raise TraceError(f"no exchange with id {exchange_id!r} in vhost {self.vhost!r}", exchange_id)
        return self.mapping.exchanges[exchange_id]

    def _prepare_overflow(self, expected: list[str]) -> list[Queue]:
        behind: list[Queue] = []
        for qname in expected:
            queue = self.vh.queues[qname]
            args = queue.args
            if args.max_length is None and args.max_length_bytes is None:
                self.notes.append(
                    f"queue {qname!r} has no length limit (x-max-length or x-max-length-bytes), "
                    "so it never overflows"
                )
            elif args.overflow is Overflow.DROP_HEAD:
                behind.append(queue)  # the message is pushed out once newer messages fill the queue
            else:
                self._fill(queue, behind=False)
        return behind

    def _follow(self, outcome: Outcome) -> None:
        while self.arrivals:
            qname, message = self.arrivals.popleft()
            queue = self.vh.queues.get(qname)
            envelope = next((qm for qm in queue.messages() if qm.message is message), None) if queue else None
            if queue is None or envelope is None:
                continue  # it already left (a clock advance for another copy expired it too)
            first = not x_death(message)
            if first and outcome is Outcome.REJECTED:
                tag = self._take(qname, message)
                if tag is not None:
                    self.session.reject(tag, requeue=False)
                self._settle()
            elif (first and outcome is Outcome.EXPIRED) or (not first and envelope.expires_ms is not None):
                if envelope.expires_ms is None:
                    self.notes.append(
                        f"queue {qname!r} has no message TTL and the message has none either, "
                        "so it never expires there"
                    )
                    self._delivered(qname, message, f"stays in queue {qname!r} until a consumer takes it")
                    continue
                self.clock.set(max(self.clock.now_ms(), envelope.expires_ms))
                self.broker.tick()
                self._settle()
            else:
                self._delivered(qname, message)

    def _delivered(self, qname: str, message: Message, text: str = "") -> None:
        text = text or f"delivered to a consumer of queue {qname!r}"
        self._add(
            Hop(
                HopKind.DELIVERED,
                self._qid(qname),
                text,
                routing_key=message.routing_key,
                x_death=_deaths(message),
            )
        )
        tag = self._take(qname, message)
        if tag is not None:
            self.session.ack(tag)  # gone, so later clock advances cannot expire it


def trace(
    topology: Topology,
    vhost: str = DEFAULT_VHOST,
    *,
    routing_key: str = "",
    headers: Mapping[str, Any] | None = None,
    priority: int | None = None,
    ttl_ms: int | None = None,
    outcome: Outcome = Outcome.DELIVERED,
    exchange_id: str = "",
    max_hops: int = 16,
) -> TraceResult:
    """Publish one message to `exchange_id` ("" is the default exchange) of a fresh engine holding the
    design's `vhost`, play `outcome` in the queues it reaches and follow it hop by hop.

    Raises `TraceError` when the design cannot be declared or the publish is refused.
    """
    tracer = _Tracer(topology, vhost, max_hops)
    truncated = False
    try:
        tracer.run(
            exchange_id=exchange_id,
            routing_key=routing_key,
            headers=headers,
            priority=priority,
            ttl_ms=ttl_ms,
            outcome=Outcome(outcome),
        )
    except _HopLimit:
        truncated = True
        tracer.notes.append(f"stopped after {max_hops} hops; the message may go on")
    return TraceResult(tuple(tracer.hops), tuple(tracer.notes), truncated)
