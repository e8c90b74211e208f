"""Queues of the embedded broker engine: storage, TTL, length limits, priorities and dispatch.

Owns: `Queue` (ready messages in arrival order, requeue to the original position, expiry at
the head, max-length overflow, quorum delivery limit, round-robin dispatch to consumers) and
`Consumer`. Dead-lettering and auto-deletion are asked of the queue's host (the vhost) through the
`QueueHost` protocol, so this module knows no exchanges.
Must not import anything outside the stdlib and this package's message/deadletter/stats/queueargs
modules; sessions are referenced for typing only.

Rules and their sources (RabbitMQ docs pages named in brackets):
- [ttl] x-message-ttl and the per-message `expiration`: the lower applies. A message expires only
  when it reaches the head of its queue ("Only when expired messages reach the head of a queue
  will they actually be discarded (or dead-lettered)"), so a longer-lived message ahead blocks
  expiry behind it; expired messages are never delivered. A requeued message keeps its original
  expiry. TTL 0 expires a message at once unless a consumer can take it immediately.
- [maxlength] x-max-length / x-max-length-bytes count ready messages only (bodies only for bytes).
  drop-head drops (or dead-letters, reason maxlen) from the head; reject-publish refuses the new
  message; reject-publish-dlx refuses it and dead-letters it. The overflow check happens before a
  waiting consumer is offered the message, as in `rabbit_amqqueue_process`.
- [priority] x-max-priority: a missing priority counts as 0, priorities above the maximum are
  capped to it, higher first, FIFO within a priority. Each priority level expires at its own head.
- [quorum-queues] x-delivery-limit: every return of a delivered message (nack/reject with requeue,
  basic.recover, the consumer's channel closing) increments its delivery count, as rabbit_fifo's
  `return_one` does; when the count exceeds the limit the message is dead-lettered with reason
  delivery_limit instead of requeued, so a consumer sees it at most limit + 1 times. Default limit
  20 (RabbitMQ 4.0), negative for none. Classic queues ignore x-delivery-limit.
- [consumers] round-robin among consumers with free prefetch; x-single-active-consumer delivers
  to the first registered consumer only.

Time: a queue never scans itself on a timer. `wake_ms` is when its vhost's deadline heap will next
wake it, always at or before its real next deadline (`next_deadline_ms`: the earliest expiry among
the heads of its priority levels, or its x-expires lease). Whatever can make that deadline earlier
(a message becoming a level head, requeue, the last consumer leaving) pulls `wake_ms` forward and
pushes a heap entry (`QueueHost.schedule`); whatever moves it later leaves the early entry, which the
vhost fixes lazily (`reschedule`). So idle queues and queues without TTL cost nothing per tick, and
`expire()` is O(1) until something is due. Non-empty priority levels are a bitmask: the head level
is one `int.bit_length()`, not a scan of up to 256 levels.

Persistence: a queue the broker stores (durable, with a store attached) has a `journal`; the queue
tells it when a message arrives, is delivered, returns and leaves for good (`MessageJournal`).
What is written, and when, is `mqstudio.broker.journal`'s business.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from mqstudio.broker.deadletter import DeadLetterReason
from mqstudio.broker.message import Delivery, Message, NewQueuedMessage, QueuedMessage
from mqstudio.broker.queueargs import (
    DEFAULT_QUORUM_DELIVERY_LIMIT,
    EQUIVALENCE_ARGS,
    Overflow,
    QueueArguments,
    QueueType,
)
from mqstudio.broker.stats import QueueCounters

if TYPE_CHECKING:
    from mqstudio.broker.session import Session

__all__ = [
    "DEFAULT_QUORUM_DELIVERY_LIMIT",
    "EQUIVALENCE_ARGS",
    "Consumer",
    "MessageJournal",
    "Overflow",
    "Queue",
    "QueueArguments",
    "QueueHost",
    "QueueType",
]


class QueueHost(Protocol):
    """What a queue needs from its vhost."""

    def now_ms(self) -> int: ...

    def dead_letter(self, queue: Queue, message: Message, reason: DeadLetterReason) -> None: ...

    def queue_unused(self, queue: Queue) -> None: ...

    def schedule(self, queue: Queue, at_ms: int) -> None:
        """Wake `queue` (its `tick` work) at `at_ms`; the queue has set `wake_ms = at_ms`."""
        ...


class MessageJournal(Protocol):
    """Persistence hooks of a stored queue (implemented by `mqstudio.broker.journal.QueueJournal`)."""

    def enqueued(self, qm: QueuedMessage) -> None: ...

    def delivered(self, qm: QueuedMessage) -> None: ...

    def returned(self, qm: QueuedMessage) -> None: ...

    def removed(self, qm: QueuedMessage) -> None: ...


class Consumer:
    """One basic.consume subscription: a queue, the session (channel) it delivers on, its prefetch."""

    __slots__ = ("arguments", "exclusive", "no_ack", "prefetch", "queue", "session", "tag", "unacked")

    def __init__(
        self,
        tag: str,
        queue: Queue,
        session: Session,
        *,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.tag = tag
        self.queue = queue
        self.session = session
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch  # 0 = unlimited (AMQP basic.qos)
        self.unacked = 0
        self.arguments = dict(arguments or {})

    def can_take(self) -> bool:
        # [consumer-prefetch] no-ack consumers are not limited; a per-consumer limit and the
        # channel-wide (global) limit both apply when both are set.
        if self.no_ack:
            return True
        if self.prefetch and self.unacked >= self.prefetch:
            return False
        s = self.session
        return not (s.global_prefetch and s.consumer_unacked >= s.global_prefetch)

    def __repr__(self) -> str:
        return f"Consumer({self.tag!r}, queue={self.queue.name!r}, unacked={self.unacked})"


class _Level:
    """One priority level: `returns` (heap by seq) holds requeued messages, `ready` new arrivals.

    Every requeued message was delivered from the head, so its seq is lower than every message
    still in `ready`: draining `returns` first and then `ready` is exactly arrival order.
    """

    __slots__ = ("ready", "returns")

    def __init__(self) -> None:
        self.ready: deque[QueuedMessage] = deque()
        self.returns: list[QueuedMessage] = []

    def head(self) -> QueuedMessage | None:
        if self.returns:
            return self.returns[0]
        return self.ready[0] if self.ready else None

    def pop(self) -> QueuedMessage:
        if self.returns:
            return heapq.heappop(self.returns)
        return self.ready.popleft()

    def __len__(self) -> int:
        return len(self.ready) + len(self.returns)


class Queue(QueueCounters):
    """A RabbitMQ-style queue. Counters come from `QueueCounters` (see stats.py)."""

    __slots__ = (
        "_has_ttl",
        "_host",
        "_level0",
        "_levels",
        "_mask",
        "_noack_delivered",
        "_prio",
        "_rr",
        "_seq",
        "_seq_base",
        "_settled_other",
        "_simple",
        "_sole",
        "args",
        "arguments",
        "auto_delete",
        "consumers",
        "deleted",
        "durable",
        "exclusive",
        "had_consumers",
        "journal",
        "last_used_ms",
        "name",
        "owner",
        "ready_bytes",
        "ready_count",
        "vhost",
        "wake_ms",
    )

    def __init__(
        self,
        name: str,
        host: QueueHost,
        *,
        vhost: str = "/",
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.vhost = vhost
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.args = QueueArguments.parse(self.arguments, name, vhost)
        self.owner = owner
        self._host = host
        n_levels = (self.args.max_priority or 0) + 1
        self._levels = [_Level() for _ in range(n_levels)]
        self._level0 = self._levels[0]
        self._prio = n_levels > 1
        # Bit p set <=> priority level p holds ready messages (priority queues only).
        self._mask = 0
        # Some ready message may carry an expiry: only then are level heads checked for TTL.
        self._has_ttl = self.args.message_ttl is not None
        # When the vhost's deadline heap wakes this queue (see the module docstring); None: never.
        self.wake_ms: int | None = None
        # Arrival order of accepted messages; recovered messages keep theirs (see `restore`), so
        # `_seq - _seq_base` counts the messages accepted since the queue was built: `published`.
        self._seq = 0
        self._seq_base = 0
        self._rr = 0
        a = self.args
        # Queues without TTL, length limits or priorities take the inlined publish path.
        self._simple = (
            a.message_ttl is None
            and a.max_length is None
            and a.max_length_bytes is None
            and a.max_priority is None
            and not a.single_active_consumer
        )
        self.consumers: list[Consumer] = []
        # The only consumer while there is exactly one (see `consumers_changed`), else None.
        self._sole: Consumer | None = None
        self.ready_count = 0
        self.ready_bytes = 0
        # `unacked_count` is derived from these and the `delivered`/`acked` counters, so a delivery
        # and its ack each touch one counter fewer: deliveries that need no ack (no-ack consumers
        # and basic.get), and unacked messages that left otherwise than by ack (reject, requeue).
        self._noack_delivered = 0
        self._settled_other = 0
        self.deleted = False
        self.had_consumers = False
        self.last_used_ms = host.now_ms()
        self.journal: MessageJournal | None = None

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, ready={self.ready_count}, unacked={self.unacked_count})"

    @property
    def message_count(self) -> int:
        """Ready messages, as queue.declare-ok and basic.get-ok report them."""
        return self.ready_count

    @property
    def unacked_count(self) -> int:
        """Messages delivered and not yet settled (acked, rejected or returned)."""
        return self.delivered - self._noack_delivered - self.acked - self._settled_other

    @property
    def published(self) -> int:
        """Messages this queue accepted (counter; recovered messages are not counted)."""
        return self._seq - self._seq_base

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    @property
    def is_quorum(self) -> bool:
        return self.args.queue_type is QueueType.QUORUM

    # -- storage ----------------------------------------------------------------------------------

    def _head_level(self) -> _Level | None:
        if self._prio:
            m = self._mask
            return self._levels[m.bit_length() - 1] if m else None
        return self._level0 if self.ready_count else None

    def _nonempty_levels(self) -> list[_Level]:
        """Levels holding ready messages, highest priority first."""
        if not self._prio:
            return [self._level0] if self.ready_count else []
        levels = self._levels
        out = []
        m = self._mask
        while m:
            p = m.bit_length() - 1
            out.append(levels[p])
            m ^= 1 << p
        return out

    def _note(self, expires_ms: int | None) -> None:
        """A ready message became (or may have become) the head of its level: wake in time for it."""
        if expires_ms is not None:
            wake = self.wake_ms
            if wake is None or expires_ms < wake:
                self.wake_ms = expires_ms
                self._host.schedule(self, expires_ms)

    def _enqueue(self, qm: QueuedMessage, level: _Level) -> None:
        """Append a new arrival (or a recovered message) to its level."""
        if qm.expires_ms is not None:
            self._has_ttl = True
            if not level.ready and not level.returns:
                self._note(qm.expires_ms)
        level.ready.append(qm)
        if self._prio:
            self._mask |= 1 << qm.priority
        self.ready_count += 1
        self.ready_bytes += len(qm.message.body)

    def _pop_from(self, level: _Level) -> QueuedMessage:
        qm = level.pop()
        self.ready_count -= 1
        self.ready_bytes -= len(qm.message.body)
        if level.returns:
            if self._has_ttl:
                self._note(level.returns[0].expires_ms)
        elif level.ready:
            if self._has_ttl:
                self._note(level.ready[0].expires_ms)
        else:
            if self._prio:
                self._mask &= ~(1 << qm.priority)
            if not self.ready_count and self.args.message_ttl is None:
                self._has_ttl = False
        return qm

    def _pop_head(self) -> QueuedMessage | None:
        level = self._head_level()
        return None if level is None else self._pop_from(level)

    def _take_head(self, now: int) -> QueuedMessage | None:
        """The head to deliver: expired heads of the level popped are expired on the way (only
        that level is looked at; `expire()` has cleared the others' due heads)."""
        while True:
            level = self._head_level()
            if level is None:
                return None
            qm = self._pop_from(level)
            e = qm.expires_ms
            if e is None or e > now:
                return qm
            self._expired(qm)

    def messages(self) -> list[QueuedMessage]:
        """Ready messages in delivery order (for inspection; not a hot path)."""
        out: list[QueuedMessage] = []
        for level in self._nonempty_levels():
            out.extend(sorted(level.returns))
            out.extend(level.ready)
        return out

    # -- publish ----------------------------------------------------------------------------------

    def publish(self, message: Message, msg_ttl: int | None, now: int) -> bool:
        """Offer a message; False when overflow reject-publish(-dlx) refused it."""
        if not self._simple or msg_ttl is not None:
            return self._publish_full(message, msg_ttl, now)
        # Hot path: no TTL, no length limit, no priorities. Same rules as `_publish_full`, inlined.
        seq = self._seq = self._seq + 1
        # QueuedMessage(message, seq, now, None, 0, self) without the __init__ call (see
        # NewQueuedMessage: no deadline, priority 0 and never redelivered are its class constants);
        # the delivery fields are set below, once, by whichever way it goes.
        qm = NewQueuedMessage()
        qm.message = message
        qm.seq = seq
        qm.enqueued_ms = now
        qm.queue = self
        qm.message_count = 0
        journal = self.journal
        if journal is not None:
            qm.consumer = None  # the hook gets a complete envelope (still ready)
            qm.consumer_tag = ""
            qm.delivery_tag = 0
            journal.enqueued(qm)
        if not self.ready_count:
            c = self._sole
            if c is not None:
                # One consumer (the usual case): delivered here, unless its window is full.
                session = c.session
                if c.no_ack:
                    tag = session.next_tag
                    session.next_tag = tag + 1
                    qm.consumer = None
                    self._noack_delivered += 1
                elif (not c.prefetch or c.unacked < c.prefetch) and (
                    not session.global_prefetch or session.consumer_unacked < session.global_prefetch
                ):
                    tag = session.next_tag
                    session.next_tag = tag + 1
                    qm.consumer = c
                    c.unacked += 1
                    session.unacked[tag] = qm
                else:
                    tag = 0
                if tag:
                    self.delivered += 1
                    qm.consumer_tag = c.tag
                    qm.delivery_tag = tag
                    session.outbox.append(qm)
                    if journal is not None:
                        if c.no_ack:
                            journal.removed(qm)
                        else:
                            journal.delivered(qm)
                    return True
            elif self.consumers:
                qm.consumer = None
                qm.consumer_tag = ""
                qm.delivery_tag = 0
                consumer = self._next_consumer()
                if consumer is not None:
                    self._deliver(consumer, qm)
                    return True
        qm.consumer = None
        qm.consumer_tag = ""
        qm.delivery_tag = 0
        self._level0.ready.append(qm)
        self.ready_count += 1
        self.ready_bytes += len(message.body)
        if self.consumers:
            self.dispatch()
        return True

    def _publish_full(self, message: Message, msg_ttl: int | None, now: int) -> bool:
        args = self.args
        if (args.max_length is not None or args.max_length_bytes is not None) and args.overflow is not (
            Overflow.DROP_HEAD
        ):
            max_len = args.max_length
            max_bytes = args.max_length_bytes
            if (max_len is not None and self.ready_count + 1 > max_len) or (
                max_bytes is not None and self.ready_bytes + len(message.body) > max_bytes
            ):
                if args.overflow is Overflow.REJECT_PUBLISH_DLX:
                    self._host.dead_letter(self, message, DeadLetterReason.MAXLEN)
                else:
                    self.count_dropped("overflow")
                return False
        ttl = args.message_ttl
        if msg_ttl is not None and (ttl is None or msg_ttl < ttl):
            ttl = msg_ttl
        if args.max_priority is None:
            priority = 0
        else:
            p = message.properties.priority or 0
            priority = p if p < args.max_priority else args.max_priority
        seq = self._seq = self._seq + 1
        qm = QueuedMessage(message, seq, now, None if ttl is None else now + ttl, priority, self)
        if self.journal is not None:
            self.journal.enqueued(qm)
        if not self.ready_count and self.consumers:
            consumer = self._next_consumer()
            if consumer is not None:
                self._deliver(consumer, qm)
                return True
        self._enqueue(qm, self._levels[priority])
        if args.max_length is not None or args.max_length_bytes is not None:
            self._drop_head_over_limit()
        if ttl is not None:
            self.expire(now)
        if self.consumers:
            self.dispatch()
        return True

    def _drop_head_over_limit(self) -> None:
        args = self.args
        if args.overflow is not Overflow.DROP_HEAD:
            return
        max_len = args.max_length
        max_bytes = args.max_length_bytes
        while self.ready_count and (
            (max_len is not None and self.ready_count > max_len)
            or (max_bytes is not None and self.ready_bytes > max_bytes)
        ):
            qm = self._pop_head()
            assert qm is not None
            if self.journal is not None:
                self.journal.removed(qm)
            self._host.dead_letter(self, qm.message, DeadLetterReason.MAXLEN)

    # -- expiry -----------------------------------------------------------------------------------

    def expire(self, now: int) -> int:
        """Remove expired messages at the head of each priority level; returns how many.

        O(1) unless something is due (`wake_ms <= now`); then the non-empty levels are walked once
        and `wake_ms` is brought up to date.
        """
        wake = self.wake_ms
        if wake is None or wake > now or not self.ready_count or not self._has_ttl:
            return 0
        n = self._expire_levels(now)
        self.reschedule()
        return n

    def _expire_levels(self, now: int) -> int:
        n = 0
        for level in self._nonempty_levels():
            while True:
                head = level.head()
                if head is None or head.expires_ms is None or head.expires_ms > now:
                    break
                self._expired(self._pop_from(level))
                n += 1
        return n

    def _expired(self, qm: QueuedMessage) -> None:
        """[ttl] an expired head leaves: dead-lettered (reason expired) or dropped."""
        self.expired += 1
        if self.journal is not None:
            self.journal.removed(qm)
        self._host.dead_letter(self, qm.message, DeadLetterReason.EXPIRED)

    def next_deadline_ms(self) -> int | None:
        """The earliest time something in this queue can change by itself (head TTL, x-expires)."""
        deadline: int | None = None
        if self._has_ttl and self.ready_count:
            for level in self._nonempty_levels():
                head = level.head()
                t = None if head is None else head.expires_ms
                if t is not None and (deadline is None or t < deadline):
                    deadline = t
        expires = self.args.expires
        if expires is not None and not self.consumers:
            t = self.last_used_ms + expires
            if deadline is None or t < deadline:
                deadline = t
        return deadline

    def reschedule(self) -> None:
        """Set `wake_ms` to the real next deadline (the vhost calls this after waking the queue, or
        when it finds the wake-up early); a changed deadline gets a new heap entry."""
        deadline = self.next_deadline_ms()
        if deadline != self.wake_ms:
            self.wake_ms = deadline
            if deadline is not None:
                self._host.schedule(self, deadline)

    def tick(self, now: int) -> int:
        """The vhost's deadline heap woke this queue: expire due heads, then hand what is left to
        consumers. Returns how many messages expired."""
        n = self._expire_levels(now) if self.ready_count and self._has_ttl else 0
        if self.ready_count and self.consumers:
            self.dispatch()
        return n

    def is_expired_unused(self, now: int) -> bool:
        """[ttl] "Queue TTL": unused (no consumers, no basic.get, no redeclare) for x-expires ms."""
        expires = self.args.expires
        return expires is not None and not self.consumers and now >= self.last_used_ms + expires

    def touch(self, now: int) -> None:
        """Record a use (consumer change, basic.get, redeclare). `last_used_ms` matters only to
        x-expires, so the hot paths call this only for a queue that has it."""
        self.last_used_ms = now

    def expire_due(self) -> int:
        """`expire(now)` reading the clock only when something can be due (a TTL'd head)."""
        if self.wake_ms is None or not self.ready_count or not self._has_ttl:
            return 0
        return self.expire(self._host.now_ms())

    # -- consumers and dispatch -------------------------------------------------------------------

    def _next_consumer(self) -> Consumer | None:
        consumers = self.consumers
        if self.args.single_active_consumer:
            c = consumers[0]
            return c if c.can_take() else None
        n = len(consumers)
        if n == 1:
            c = consumers[0]
            return c if c.can_take() else None
        start = self._rr
        for i in range(n):
            idx = (start + i) % n
            c = consumers[idx]
            if c.can_take():
                self._rr = (idx + 1) % n
                return c
        return None

    def _deliver(self, consumer: Consumer, qm: QueuedMessage) -> None:
        session = consumer.session
        tag = session.next_tag
        session.next_tag = tag + 1
        if consumer.no_ack:
            self._noack_delivered += 1
        else:
            qm.consumer = consumer
            consumer.unacked += 1
            session.unacked[tag] = qm
        self.delivered += 1
        if qm.redelivered:
            self.redelivered += 1
        qm.consumer_tag = consumer.tag
        qm.delivery_tag = tag
        session.outbox.append(qm)
        if self.journal is not None:
            if consumer.no_ack:
                self.journal.removed(qm)
            else:
                self.journal.delivered(qm)

    def dispatch(self) -> int:
        """Hand ready messages to consumers with free prefetch, round-robin; returns how many."""
        if not self.ready_count or not self.consumers or self.deleted:
            return 0
        c = self._sole
        if c is not None and not self._has_ttl and not self._prio:
            return self._dispatch_sole(c)
        n = 0
        if self._has_ttl:
            # Expired messages are never delivered: clear due heads once, then check only the head
            # of the level each message is taken from.
            now = self._host.now_ms()
            self.expire(now)
            while self.ready_count:
                consumer = self._next_consumer()
                if consumer is None:
                    break
                qm = self._take_head(now)
                if qm is None:
                    break
                self._deliver(consumer, qm)
                n += 1
            return n
        while self.ready_count:
            consumer = self._next_consumer()
            if consumer is None:
                break
            level = self._head_level()
            assert level is not None
            self._deliver(consumer, self._pop_from(level))
            n += 1
        return n

    def _dispatch_sole(self, c: Consumer) -> int:
        """`dispatch()` for the common case (one consumer, one level, no TTL), without the general
        path's per-message helper calls: an ack of a prefetch-limited consumer lands here."""
        n = self.ready_count
        if not c.no_ack:
            # As many as `can_take()` would allow one by one: each delivery takes a slot of the
            # consumer's window and of the channel's (global) one.
            if c.prefetch and c.prefetch - c.unacked < n:
                n = c.prefetch - c.unacked
            session = c.session
            if session.global_prefetch and session.global_prefetch - session.consumer_unacked < n:
                n = session.global_prefetch - session.consumer_unacked
        level = self._level0
        ready = level.ready
        returns = level.returns
        delivered = 0
        while delivered < n:
            # `_pop_from` without its TTL and priority bookkeeping (neither applies here).
            qm = heapq.heappop(returns) if returns else ready.popleft()
            self.ready_count -= 1
            self.ready_bytes -= len(qm.message.body)
            self._deliver(c, qm)
            delivered += 1
        return delivered

    def consumers_changed(self) -> None:
        """Call after changing `consumers`: keeps `_sole` (the publish fast path's consumer) right."""
        consumers = self.consumers
        self._sole = consumers[0] if len(consumers) == 1 else None

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers.append(consumer)
        self.consumers_changed()
        self.had_consumers = True
        if self.args.expires is not None:
            self.touch(self._host.now_ms())
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        """basic.cancel or the session going away; an auto-delete queue goes with its last consumer."""
        try:
            idx = self.consumers.index(consumer)
        except ValueError:
            return
        del self.consumers[idx]
        self.consumers_changed()
        if self._rr > idx:
            self._rr -= 1
        if self.consumers:
            self._rr %= len(self.consumers)
        else:
            self._rr = 0
        if self.args.expires is not None:
            self.touch(self._host.now_ms())
        if not self.consumers:
            if self.args.expires is not None:
                self._note(self.last_used_ms + self.args.expires)  # [ttl] the x-expires lease starts
            self._host.queue_unused(self)
        elif self.args.single_active_consumer and idx == 0:
            self.dispatch()  # the next consumer becomes the single active one

    # -- basic.get, settlement --------------------------------------------------------------------

    def get(self, session: Session, no_ack: bool) -> Delivery | None:
        if self._has_ttl or self.args.expires is not None:
            now = self._host.now_ms()
            self.touch(now)
            self.expire(now)
            qm = self._take_head(now) if self._has_ttl else self._pop_head()
        else:
            qm = self._pop_head()  # no time rule applies: no clock read
        if qm is None:
            return None
        tag = session.next_tag
        session.next_tag = tag + 1
        if no_ack:
            self._noack_delivered += 1
        else:
            session.unacked[tag] = qm
            session.get_unacked += 1
        self.delivered += 1
        if qm.redelivered:
            self.redelivered += 1
        qm.delivery_tag = tag
        qm.message_count = self.ready_count
        if self.journal is not None:
            if no_ack:
                self.journal.removed(qm)
            else:
                self.journal.delivered(qm)
        return qm

    def _free_slot(self, qm: QueuedMessage) -> None:
        """The message left its consumer: free its prefetch slot."""
        c = qm.consumer
        if c is not None:
            qm.consumer = None
            c.unacked -= 1

    def settled(self, qm: QueuedMessage) -> None:
        """An unacked message was settled otherwise than by ack (reject, requeue)."""
        self._free_slot(qm)
        self._settled_other += 1

    def ack(self, qm: QueuedMessage) -> None:
        c = qm.consumer  # `_free_slot`, inlined: a multiple ack calls this once per message
        if c is not None:
            qm.consumer = None
            c.unacked -= 1
        self.acked += 1
        if self.journal is not None:
            self.journal.removed(qm)

    def reject(self, qm: QueuedMessage) -> None:
        """nack/reject with requeue=false: dead-letter with reason `rejected` [dlx]."""
        self.settled(qm)
        self.rejected += 1
        if self.journal is not None:
            self.journal.removed(qm)
        if not self.deleted:
            self._host.dead_letter(self, qm.message, DeadLetterReason.REJECTED)

    def requeue(self, qm: QueuedMessage, rejected: bool) -> None:
        """Return an unacked message to its original position, flagged redelivered.

        `rejected` is True for nack/reject (counted in `rejected`); recover and session close
        return messages without a client verdict.
        """
        self.settled(qm)
        if rejected:
            self.rejected += 1
        if self.deleted:
            return
        count = qm.delivery_count + 1
        limit = self.args.delivery_limit
        if limit is not None and count > limit:
            if self.journal is not None:
                self.journal.removed(qm)
            self._host.dead_letter(self, qm.message, DeadLetterReason.DELIVERY_LIMIT)
            return
        qm = qm.returned(count)
        if self.journal is not None:
            self.journal.returned(qm)
        heapq.heappush(self._levels[qm.priority].returns, qm)
        if self._prio:
            self._mask |= 1 << qm.priority
        self.ready_count += 1
        self.ready_bytes += len(qm.message.body)
        if qm.expires_ms is not None:
            # It keeps its original expiry and goes back to (near) the head of its level.
            self._has_ttl = True
            self._note(qm.expires_ms)
        # rabbit_amqqueue_process:requeue_and_run drops from the head when over the limit, then
        # drops expired messages.
        if self.args.max_length is not None or self.args.max_length_bytes is not None:
            self._drop_head_over_limit()

    # -- purge / delete ---------------------------------------------------------------------------

    def purge(self) -> int:
        """queue.purge: drop ready messages (never dead-lettered); unacked ones stay."""
        n = self.ready_count
        journal = self.journal
        for level in self._nonempty_levels():
            if journal is not None:
                for qm in (*level.returns, *level.ready):
                    journal.removed(qm)
            level.ready.clear()
            level.returns.clear()
        self._mask = 0
        self.ready_count = 0
        self.ready_bytes = 0
        self._has_ttl = self.args.message_ttl is not None
        return n

    def restore(self, messages: Iterable[QueuedMessage]) -> None:
        """Put messages recovered from a store back as ready, in seq order within each priority."""
        top = len(self._levels) - 1
        published = self.published
        for qm in sorted(messages, key=lambda m: m.seq):
            qm.priority = min(qm.priority, top)
            self._enqueue(qm, self._levels[qm.priority])
            self._seq = max(self._seq, qm.seq)
        self._seq_base = self._seq - published  # recovered messages were not published here
