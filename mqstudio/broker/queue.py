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
from mqstudio.broker.message import Delivery, Message, QueuedMessage
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
        "_host",
        "_level0",
        "_levels",
        "_rr",
        "_seq",
        "_simple",
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
        "unacked_count",
        "vhost",
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
        self._seq = 0
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
        self.ready_count = 0
        self.ready_bytes = 0
        self.unacked_count = 0
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
    def consumer_count(self) -> int:
        return len(self.consumers)

    @property
    def is_quorum(self) -> bool:
        return self.args.queue_type is QueueType.QUORUM

    # -- storage ----------------------------------------------------------------------------------

    def _head_level(self) -> _Level | None:
        if len(self._levels) == 1:
            return self._level0 if self.ready_count else None
        for level in reversed(self._levels):
            if level.ready or level.returns:
                return level
        return None

    def _pop_head(self) -> QueuedMessage | None:
        level = self._head_level()
        if level is None:
            return None
        qm = level.pop()
        self.ready_count -= 1
        self.ready_bytes -= qm.message.size
        return qm

    def messages(self) -> list[QueuedMessage]:
        """Ready messages in delivery order (for inspection; not a hot path)."""
        out: list[QueuedMessage] = []
        for level in reversed(self._levels):
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
        qm = QueuedMessage(message, seq, now, None, 0, self)
        self.published += 1
        journal = self.journal
        if journal is not None:
            journal.enqueued(qm)
        consumers = self.consumers
        if not self.ready_count and consumers:
            if len(consumers) == 1:
                c = consumers[0]
                session = c.session
                if c.no_ack:
                    tag = session.next_tag
                    session.next_tag = tag + 1
                elif (not c.prefetch or c.unacked < c.prefetch) and (
                    not session.global_prefetch or session.consumer_unacked < session.global_prefetch
                ):
                    tag = session.next_tag
                    session.next_tag = tag + 1
                    qm.consumer = c
                    c.unacked += 1
                    session.consumer_unacked += 1
                    session.unacked[tag] = qm
                    self.unacked_count += 1
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
            else:
                consumer = self._next_consumer()
                if consumer is not None:
                    self._deliver(consumer, qm)
                    return True
        self._level0.ready.append(qm)
        self.ready_count += 1
        self.ready_bytes += message.size
        if consumers:
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
                max_bytes is not None and self.ready_bytes + message.size > max_bytes
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
        self.published += 1
        if self.journal is not None:
            self.journal.enqueued(qm)
        if not self.ready_count and self.consumers:
            consumer = self._next_consumer()
            if consumer is not None:
                self._deliver(consumer, qm)
                return True
        level = self._levels[priority]
        level.ready.append(qm)
        self.ready_count += 1
        self.ready_bytes += message.size
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
        """Remove expired messages at the head of each priority level; returns how many."""
        n = 0
        for level in self._levels:
            while True:
                head = level.head()
                if head is None or head.expires_ms is None or head.expires_ms > now:
                    break
                level.pop()
                self.ready_count -= 1
                self.ready_bytes -= head.message.size
                self.expired += 1
                n += 1
                if self.journal is not None:
                    self.journal.removed(head)
                self._host.dead_letter(self, head.message, DeadLetterReason.EXPIRED)
        return n

    def next_deadline_ms(self) -> int | None:
        """The earliest time something in this queue can change by itself (head TTL, x-expires)."""
        deadline: int | None = None
        if self.ready_count:
            for level in self._levels:
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

    def is_expired_unused(self, now: int) -> bool:
        """[ttl] "Queue TTL": unused (no consumers, no basic.get, no redeclare) for x-expires ms."""
        expires = self.args.expires
        return expires is not None and not self.consumers and now >= self.last_used_ms + expires

    def touch(self, now: int) -> None:
        self.last_used_ms = now

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
        if not consumer.no_ack:
            qm.consumer = consumer
            consumer.unacked += 1
            session.consumer_unacked += 1
            session.unacked[tag] = qm
            self.unacked_count += 1
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
        now = self._host.now_ms()
        n = 0
        while self.ready_count:
            consumer = self._next_consumer()
            if consumer is None:
                break
            # Expired messages are never delivered: clear the head before taking it.
            self.expire(now)
            qm = self._pop_head()
            if qm is None:
                break
            self._deliver(consumer, qm)
            n += 1
        return n

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers.append(consumer)
        self.had_consumers = True
        self.touch(self._host.now_ms())
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        """basic.cancel or the session going away; an auto-delete queue goes with its last consumer."""
        try:
            idx = self.consumers.index(consumer)
        except ValueError:
            return
        del self.consumers[idx]
        if self._rr > idx:
            self._rr -= 1
        if self.consumers:
            self._rr %= len(self.consumers)
        else:
            self._rr = 0
        self.touch(self._host.now_ms())
        if not self.consumers:
            self._host.queue_unused(self)
        elif self.args.single_active_consumer and idx == 0:
            self.dispatch()  # the next consumer becomes the single active one

    # -- basic.get, settlement --------------------------------------------------------------------

    def get(self, session: Session, no_ack: bool) -> Delivery | None:
        now = self._host.now_ms()
        self.touch(now)
        self.expire(now)
        qm = self._pop_head()
        if qm is None:
            return None
        tag = session.next_tag
        session.next_tag = tag + 1
        if not no_ack:
            session.unacked[tag] = qm
            self.unacked_count += 1
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

    def settled(self, qm: QueuedMessage) -> None:
        """The message left the consumer (ack, reject, requeue): free its prefetch slot."""
        c = qm.consumer
        if c is not None:
            qm.consumer = None
            c.unacked -= 1
            c.session.consumer_unacked -= 1
        self.unacked_count -= 1

    def ack(self, qm: QueuedMessage) -> None:
        self.settled(qm)
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
        self.ready_count += 1
        self.ready_bytes += qm.message.size
        # rabbit_amqqueue_process:requeue_and_run drops from the head when over the limit, then
        # drops expired messages.
        if self.args.max_length is not None or self.args.max_length_bytes is not None:
            self._drop_head_over_limit()

    # -- purge / delete ---------------------------------------------------------------------------

    def purge(self) -> int:
        """queue.purge: drop ready messages (never dead-lettered); unacked ones stay."""
        n = self.ready_count
        journal = self.journal
        for level in self._levels:
            if journal is not None:
                for qm in (*level.returns, *level.ready):
                    journal.removed(qm)
            level.ready.clear()
            level.returns.clear()
        self.ready_count = 0
        self.ready_bytes = 0
        return n

    def restore(self, messages: Iterable[QueuedMessage]) -> None:
        """Put messages recovered from a store back as ready, in seq order within each priority."""
        top = len(self._levels) - 1
        for qm in sorted(messages, key=lambda m: m.seq):
            qm.priority = min(qm.priority, top)
            self._levels[qm.priority].ready.append(qm)
            self.ready_count += 1
            self.ready_bytes += qm.message.size
            self._seq = max(self._seq, qm.seq)
