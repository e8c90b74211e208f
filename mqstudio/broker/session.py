"""Sessions: the engine's model of an AMQP 0-9-1 channel's consuming side.

Owns: `Session` (per-channel delivery-tag counter, basic.qos prefetch per consumer and global, the
unacknowledged map, the outbox of `Delivery` events the AMQP layer pulls with `poll()`, consumer
subscriptions, ack/nack/reject/recover/close). Delivery tags are per channel in AMQP 0-9-1, which
is why this object exists; the queue pushes deliveries into `outbox` directly (hot path).
Must not import anything outside the stdlib and this package; the vhost is referenced for typing.

RabbitMQ behaviours encoded here (docs pages in brackets):
- [confirms] acknowledging an unknown or already settled delivery tag is a channel error 406
  PRECONDITION_FAILED "unknown delivery tag N"; `multiple` settles every unacked tag <= N and N = 0
  with multiple settles them all.
- [consumer-prefetch] basic.qos global=false sets the limit for consumers created afterwards;
  global=true sets a limit shared by all consumers of the channel; 0 means unlimited.
- [consumers] an exclusive consumer needs a queue without consumers, and a queue with an exclusive
  consumer refuses others: 403 ACCESS_REFUSED "queue 'q' in vhost '/' in exclusive use". Reusing a
  consumer tag on a channel is 530 NOT_ALLOWED "attempt to reuse consumer tag 't'".
- basic.recover with requeue=false is refused by RabbitMQ (540 NOT_IMPLEMENTED); requeue=true
  returns every unacked message of the channel, as does closing the channel, each to its original
  position in its queue, flagged redelivered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mqstudio.broker.errors import AccessRefused, NotAllowed, NotImplementedFeature, PreconditionFailed
from mqstudio.broker.message import Delivery, QueuedMessage
from mqstudio.broker.queue import Consumer, Queue

if TYPE_CHECKING:
    from mqstudio.broker.vhost import VHost

CancelCallback = Callable[[str], None]


class Session:
    """One channel's consumers, delivery tags and unacknowledged messages."""

    __slots__ = (
        "cancelled",
        "closed",
        "connection_id",
        "consumers",
        "get_unacked",
        "global_prefetch",
        "id",
        "next_tag",
        "on_cancel",
        "outbox",
        "prefetch_count",
        "unacked",
        "vhost",
    )

    def __init__(
        self, vhost: VHost, session_id: int, connection_id: str, on_cancel: CancelCallback | None = None
    ) -> None:
        self.vhost = vhost
        self.id = session_id
        self.connection_id = connection_id
        self.next_tag = 1
        # Insertion order is tag order (tags only grow), which `multiple` settlement relies on.
        self.unacked: dict[int, QueuedMessage] = {}
        self.outbox: deque[Delivery] = deque()
        self.consumers: dict[str, Consumer] = {}
        self.prefetch_count = 0
        self.global_prefetch = 0
        # Unacked basic.get deliveries; the rest of `unacked` were made to consumers (see
        # `consumer_unacked`, derived so that delivering and acking touch one counter fewer).
        self.get_unacked = 0
        self.closed = False
        self.on_cancel = on_cancel
        # Server-initiated cancellations (queue deleted) when no callback was given.
        self.cancelled: list[str] = []

    def __repr__(self) -> str:
        return f"Session({self.id}, connection={self.connection_id!r}, unacked={len(self.unacked)})"

    # -- pulling events ---------------------------------------------------------------------------

    def poll(self, max_count: int | None = None) -> list[Delivery]:
        """Deliveries produced since the last poll, oldest first (what basic.deliver sends)."""
        out = self.outbox
        if max_count is None or max_count >= len(out):
            items = list(out)
            out.clear()
            return items
        return [out.popleft() for _ in range(max_count)]

    @property
    def consumer_unacked(self) -> int:
        """Unacked deliveries made to this session's consumers (what a global prefetch limits;
        basic.get ones do not count)."""
        return len(self.unacked) - self.get_unacked

    @property
    def pending(self) -> int:
        return len(self.outbox)

    # -- basic.qos / consume / cancel / get -------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise NotAllowed("session is closed")

    def qos(self, prefetch_count: int, global_: bool = False) -> None:
        self._check_open()
        if prefetch_count < 0 or prefetch_count > 65535:
            raise PreconditionFailed(f"prefetch_count {prefetch_count} out of range")
        if global_:
            self.global_prefetch = prefetch_count
            self._dispatch_all()
        else:
            self.prefetch_count = prefetch_count

    def basic_consume(
        self,
        queue: str,
        consumer_tag: str = "",
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        prefetch: int | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        """Subscribe to `queue`; returns the consumer tag (server-generated when "" is given)."""
        self._check_open()
        q = self.vhost.queue_for(queue, self.connection_id)
        tag = consumer_tag or self.vhost.generate_name("amq.ctag-")
        if tag in self.consumers:
            raise NotAllowed(f"attempt to reuse consumer tag '{tag}'")
        if q.consumers and (exclusive or q.consumers[0].exclusive):
            raise AccessRefused(f"queue '{q.name}' in vhost '{self.vhost.name}' in exclusive use")
        consumer = Consumer(
            tag,
            q,
            self,
            no_ack=no_ack,
            exclusive=exclusive,
            prefetch=self.prefetch_count if prefetch is None else prefetch,
            arguments=arguments,
        )
        self.consumers[tag] = consumer
        q.add_consumer(consumer)
        return tag

    def basic_cancel(self, consumer_tag: str) -> bool:
        """basic.cancel: unacked deliveries stay unacked (they still need settling)."""
        consumer = self.consumers.pop(consumer_tag, None)
        if consumer is None:
            return False  # RabbitMQ answers cancel-ok for an unknown tag too
        consumer.queue.remove_consumer(consumer)
        return True

    def server_cancel(self, consumer: Consumer) -> None:
        """The queue went away: drop the consumer and notify (basic.cancel from the server)."""
        if self.consumers.get(consumer.tag) is consumer:
            del self.consumers[consumer.tag]
            if self.on_cancel is not None:
                self.on_cancel(consumer.tag)
            else:
                self.cancelled.append(consumer.tag)

    def basic_get(self, queue: str, no_ack: bool = False) -> Delivery | None:
        """basic.get: one message or None (get-empty); ignores prefetch, as RabbitMQ does."""
        self._check_open()
        return self.vhost.queue_for(queue, self.connection_id).get(self, no_ack)

    # -- settlement -------------------------------------------------------------------------------

    def _take(self, delivery_tag: int, multiple: bool) -> list[QueuedMessage]:
        """Remove the settled tags from `unacked` (see the module docstring for `multiple`)."""
        unacked = self.unacked
        if multiple:
            if delivery_tag == 0:
                return self._take_all()
            if delivery_tag not in unacked:
                raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
            if delivery_tag == next(reversed(unacked)):
                return self._take_all()  # the newest tag: everything goes (the usual batch ack)
            tags = []
            for tag in unacked:
                if tag > delivery_tag:
                    break
                tags.append(tag)
            taken = [unacked.pop(tag) for tag in tags]
        else:
            qm = unacked.pop(delivery_tag, None)
            if qm is None:
                raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
            taken = [qm]
        self._forget_gets(taken)
        return taken

    def _take_all(self) -> list[QueuedMessage]:
        taken = list(self.unacked.values())
        self.unacked.clear()
        self.get_unacked = 0
        return taken

    def _forget_gets(self, taken: list[QueuedMessage]) -> None:
        # Envelopes without a consumer in `unacked` are basic.get deliveries.
        gets = sum(1 for qm in taken if qm.consumer is None)
        if gets:
            self.get_unacked -= gets

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        if not multiple:
            # Hot path: one tag, inlined settlement.
            try:
                qm = self.unacked.pop(delivery_tag)
            except KeyError:
                raise PreconditionFailed(f"unknown delivery tag {delivery_tag}") from None
            q = qm.queue
            c = qm.consumer
            if c is not None:
                qm.consumer = None
                c.unacked -= 1
            else:
                self.get_unacked -= 1
            q.acked += 1  # also settles it in q.unacked_count (derived)
            if q.ready_count:
                q.dispatch()
            if self.global_prefetch:
                self._dispatch_all()
            return
        touched: dict[int, Queue] = {}
        last = None
        for qm in self._take(delivery_tag, True):
            q = qm.queue
            q.ack(qm)
            if q is not last:  # runs of one queue are the rule: one dict store per run
                touched[id(q)] = last = q
        self._after_settle(touched)

    def nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self._settle_negative(self._take(delivery_tag, multiple), requeue)

    def reject(self, delivery_tag: int, requeue: bool = True) -> None:
        self._settle_negative(self._take(delivery_tag, False), requeue)

    def _settle_negative(self, taken: list[QueuedMessage], requeue: bool) -> None:
        touched: dict[int, Queue] = {}
        for qm in taken:
            q = qm.queue
            if requeue:
                q.requeue(qm, rejected=True)
            else:
                q.reject(qm)
            touched[id(q)] = q
        self._after_settle(touched)

    def recover(self, requeue: bool = True) -> None:
        self._check_open()
        if not requeue:
            raise NotImplementedFeature("requeue=false")
        self._return_all(rejected=False)

    def _return_all(self, rejected: bool) -> None:
        taken = self._take_all()
        touched: dict[int, Queue] = {}
        for qm in taken:
            qm.queue.requeue(qm, rejected=rejected)
            touched[id(qm.queue)] = qm.queue
        self._after_settle(touched)

    def _after_settle(self, touched: dict[int, Queue]) -> None:
        for q in touched.values():
            if not q.deleted:
                q.expire_due()  # reads the clock only for a queue with TTL'd messages
                q.dispatch()
        if self.global_prefetch:
            self._dispatch_all()

    def _dispatch_all(self) -> None:
        for q in {id(c.queue): c.queue for c in self.consumers.values()}.values():
            q.dispatch()

    # -- close ------------------------------------------------------------------------------------

    def close(self) -> None:
        """channel.close: cancel consumers, then return every unacked message (redelivered)."""
        if self.closed:
            return
        self.closed = True
        for consumer in list(self.consumers.values()):
            self.consumers.pop(consumer.tag, None)
            consumer.queue.remove_consumer(consumer)
        self._return_all(rejected=False)
        self.outbox.clear()
        self.vhost.session_closed(self)
