"""What the embedded broker engine persists, when, and how it is rebuilt from a store.

Owns: `Journal` (the engine-side bookkeeping of durable state: which exchanges, queues, bindings and
messages are persistent, and the pending changes the next `Broker.commit()` writes as one `Batch`),
`QueueJournal` (the per-queue hooks `Queue` calls), `JournalSession` and `RecoveryReport`.
Back-ends live in `mqstudio.broker.store`. Must not import anything outside the stdlib and this package.

Rules (RabbitMQ's, see the "Queues" and "Publishers" docs pages):
- Durable exchanges (built-in `amq.*` ones always exist and are never written), durable queues that
  are not exclusive, and bindings whose source and destination are both durable are stored.
- A message is stored only when it is persistent (`delivery_mode` 2) and sits in a stored queue. A
  message routed to several stored queues is one content row plus one row per queue; the content
  goes when its last queue row goes.
- A queue row goes on ack, on basic.get/consume with no-ack, on reject (dead-lettering), expiry,
  drop-head, the delivery limit, purge and queue deletion. A dead-lettered message moved into a
  stored queue is a new row in the same pending batch, so the move is atomic.
- A row remembers that its message was delivered; recovered, such a message is `redelivered`, as
  RabbitMQ flags messages delivered but unacknowledged before a restart. Delivery counts (quorum
  x-delivery-limit) and absolute TTL deadlines are stored and restored, and so is a message's
  dead-letter history (`Message.deaths`), which its x-death header is never read back into.
- Group commit: changes accumulate in memory and `commit()` writes them in one transaction. A row
  created and removed before the commit (a message consumed and acked within one batch of input)
  costs no I/O at all. Publisher confirms for persistent messages must wait for `commit()`;
  `needs_commit` says whether anything is pending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mqstudio.broker.errors import BrokerError
from mqstudio.broker.exchanges import Destination, DestinationKind, Exchange
from mqstudio.broker.headers import canonical
from mqstudio.broker.message import PERSISTENT, Message, QueuedMessage
from mqstudio.broker.queue import Queue
from mqstudio.broker.session import Session
from mqstudio.broker.store import (
    Batch,
    Store,
    StoreCorruptError,
    StoredState,
    StoreError,
    encode_arguments,
    encode_deaths,
    encode_properties,
)

if TYPE_CHECKING:
    from mqstudio.broker.broker import Broker
    from mqstudio.broker.vhost import VHost

__all__ = ["Journal", "JournalSession", "QueueJournal", "RecoveryReport"]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What `Broker` rebuilt from its store at start-up."""

    location: str
    vhosts: int = 0
    exchanges: int = 0
    queues: int = 0
    bindings: int = 0
    messages: int = 0
    redelivered: int = 0
    discarded: int = 0  # orphan rows (no queue / no content) cleaned up


def _norm(value: Any) -> Any:
    # `canonical` calls 1 and 1.0 (and Decimal 1.0 and 1) equal, as RabbitMQ does; their reprs differ,
    # so bring equal values to one spelling before using the repr as a key.
    if isinstance(value, tuple):
        return tuple(_norm(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def binding_key(arguments: Mapping[str, Any] | None) -> str:
    """The stored identity of a binding's arguments: equal exactly when the engine's are."""
    if not arguments:
        return ""
    return repr(_norm(canonical(dict(arguments))))


class QueueJournal:
    """The store hooks of one stored (durable, non-exclusive) queue; `Queue.journal` points here.

    `rows` maps the queue-local seq of each stored message (committed or pending) to its content id;
    a message not in `rows` (transient, or the queue is not stored) makes every hook a no-op.
    """

    __slots__ = ("id", "journal", "rows")

    def __init__(self, journal: Journal, queue_id: int) -> None:
        self.journal = journal
        self.id = queue_id
        self.rows: dict[int, int] = {}

    def enqueued(self, qm: QueuedMessage) -> None:
        message = qm.message
        if message.properties.delivery_mode != PERSISTENT:
            return
        j = self.journal
        cid = j.content_id(message)
        self.rows[qm.seq] = cid
        j.ins_rows[(self.id, qm.seq)] = [
            self.id,
            qm.seq,
            cid,
            qm.enqueued_ms,
            qm.expires_ms,
            qm.priority,
            int(qm.redelivered),
            qm.delivery_count,
        ]

    def delivered(self, qm: QueuedMessage) -> None:
        """Handed to a consumer that must ack: remember it was delivered (redelivered on recovery)."""
        if qm.redelivered or qm.seq not in self.rows:
            return  # a returned message's row already says delivered
        self._update(qm, qm.delivery_count)

    def returned(self, qm: QueuedMessage) -> None:
        """Back in the queue after nack/reject/recover/channel close: keep its delivery count."""
        if qm.seq in self.rows:
            self._update(qm, qm.delivery_count)

    def _update(self, qm: QueuedMessage, delivery_count: int) -> None:
        key = (self.id, qm.seq)
        j = self.journal
        pending = j.ins_rows.get(key)
        if pending is not None:
            pending[6] = 1
            pending[7] = delivery_count
        else:
            j.upd_rows[key] = (1, delivery_count, self.id, qm.seq)

    def removed(self, qm: QueuedMessage) -> None:
        """The message left the queue for good (ack, no-ack delivery, reject, expiry, drop, purge)."""
        cid = self.rows.pop(qm.seq, None)
        if cid is None:
            return
        j = self.journal
        key = (self.id, qm.seq)
        if j.ins_rows.pop(key, None) is None:
            j.upd_rows.pop(key, None)
            j.del_rows[key] = None
        j.unref(cid)


class JournalSession(Session):
    """A session whose single-tag ack also removes the message from the store.

    `Session.ack` settles one tag inline (its hot path) without going through `Queue.ack`, where the
    other removal hooks live, so the removal is added here, after the ack succeeded.
    """

    __slots__ = ()

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        if multiple:
            super().ack(delivery_tag, True)
            return
        qm = self.unacked.get(delivery_tag)
        super().ack(delivery_tag, False)
        if qm is not None:
            qj = qm.queue.journal
            if qj is not None:
                qj.removed(qm)


class Journal:
    """Durable state bookkeeping between the engine and a `Store` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ops: list[tuple[str, dict[str, Any]]] = []
        # Pending content rows keep the message; properties are encoded only if it is still there
        # at commit time (most messages consumed within the batch never are).
        self.ins_content: dict[int, Message] = {}
        self.ins_rows: dict[tuple[int, int], list[Any]] = {}
        self.upd_rows: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self.del_rows: dict[tuple[int, int], None] = {}
        self.del_content: list[int] = []
        self.refs: dict[int, int] = {}
        self._next_content = 1
        self._next_queue = 1
        # The last message given a content row: a fanout enqueues one message into several queues
        # in a row, and they share the content. Held strongly so its id() cannot be reused.
        self._last_message: Message | None = None
        self._last_cid = 0
        self.commits = 0

    # -- pending work ------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return (
            len(self.ops)
            + len(self.ins_content)
            + len(self.ins_rows)
            + len(self.upd_rows)
            + len(self.del_rows)
            + len(self.del_content)
        )

    def commit(self) -> None:
        """Write all pending changes as one transaction. On StoreError nothing is written and the
        changes stay pending, so a later commit retries them."""
        if not self.pending_count:
            return
        batch = Batch(
            self.ops,
            [
                (
                    cid,
                    m.exchange,
                    m.routing_key,
                    encode_properties(m.properties),
                    m.body,
                    encode_deaths(m.deaths),
                )
                for cid, m in self.ins_content.items()
            ],
            list(self.ins_rows.values()),
            list(self.upd_rows.values()),
            list(self.del_rows),
            [(cid,) for cid in self.del_content],
        )
        self.store.apply(batch)
        self.ops = []
        self.ins_content = {}
        self.ins_rows = {}
        self.upd_rows = {}
        self.del_rows = {}
        self.del_content = []
        self.commits += 1

    def content_id(self, message: Message) -> int:
        """The content row for `message`, created (pending) unless the last message was the same."""
        if message is self._last_message:
            cid = self._last_cid
            self.refs[cid] += 1
            return cid
        cid = self._next_content
        self._next_content = cid + 1
        self.refs[cid] = 1
        self.ins_content[cid] = message
        self._last_message = message
        self._last_cid = cid
        return cid

    def unref(self, cid: int) -> None:
        left = self.refs[cid] - 1
        if left:
            self.refs[cid] = left
            return
        del self.refs[cid]
        if cid == self._last_cid:
            self._last_message = None
            self._last_cid = 0
        if self.ins_content.pop(cid, None) is None:
            self.del_content.append(cid)

    # -- definitions -------------------------------------------------------------------------------

    def attach(self, vhost: VHost, *, write: bool = True) -> None:
        """Start journalling a vhost (new ones are written; recovered ones already are)."""
        vhost.journal = self
        vhost.session_class = JournalSession
        if write:
            self.ops.append(("vhost+", {"vhost": vhost.name}))

    def vhost_deleted(self, name: str) -> None:
        self.ops.append(("vhost-", {"vhost": name}))

    def exchange_declared(self, vhost: VHost, x: Exchange) -> None:
        if not x.durable:
            return
        self.ops.append(
            (
                "exchange+",
                {
                    "vhost": vhost.name,
                    "name": x.name,
                    "type": x.type,
                    "auto_delete": int(x.auto_delete),
                    "internal": int(x.internal),
                    "arguments": encode_arguments(x.arguments),
                },
            )
        )

    def exchange_deleted(self, vhost: VHost, name: str) -> None:
        self.ops.append(("exchange-", {"vhost": vhost.name, "name": name}))

    def queue_declared(self, vhost: VHost, q: Queue) -> None:
        if not q.durable or q.exclusive:
            return  # exclusive queues die with their connection, so never outlive a restart
        qid = self._next_queue
        self._next_queue = qid + 1
        q.journal = QueueJournal(self, qid)
        self.ops.append(
            (
                "queue+",
                {
                    "id": qid,
                    "vhost": vhost.name,
                    "name": q.name,
                    "auto_delete": int(q.auto_delete),
                    "arguments": encode_arguments(q.arguments),
                },
            )
        )

    def queue_deleted(self, vhost: VHost, q: Queue) -> None:
        """Drop the queue's rows (ready and unacked alike) before the engine purges it."""
        qj = q.journal
        if not isinstance(qj, QueueJournal):
            return
        q.journal = None  # later acks of its unacked messages are no-ops
        qid = qj.id
        for seq, cid in qj.rows.items():
            key = (qid, seq)
            # Committed rows go with the queue's "DELETE ... WHERE queue_id" below.
            self.ins_rows.pop(key, None)
            self.upd_rows.pop(key, None)
            self.del_rows.pop(key, None)
            self.unref(cid)
        qj.rows.clear()
        self.ops.append(("queue-", {"id": qid, "vhost": vhost.name, "name": q.name}))

    @staticmethod
    def _binding_params(
        vhost: VHost, source: str, destination: Destination, routing_key: str, arguments: Any
    ) -> dict[str, Any]:
        return {
            "vhost": vhost.name,
            "source": source,
            "dest_kind": destination.kind.value,
            "dest": destination.name,
            "routing_key": routing_key,
            "args_key": binding_key(arguments),
            "arguments": encode_arguments(arguments),
        }

    def bound(
        self,
        vhost: VHost,
        source: Exchange,
        destination: Destination,
        routing_key: str,
        arguments: Mapping[str, Any] | None,
    ) -> None:
        if not source.durable:
            return
        if destination.kind is DestinationKind.QUEUE:
            q = vhost.queues.get(destination.name)
            if q is None or q.journal is None:
                return
        else:
            x = vhost.exchanges.get(destination.name)
            if x is None or not x.durable:
                return
        self.ops.append(
            ("binding+", self._binding_params(vhost, source.name, destination, routing_key, arguments))
        )

    def unbound(
        self,
        vhost: VHost,
        source: Exchange,
        destination: Destination,
        routing_key: str,
        arguments: Mapping[str, Any] | None,
    ) -> None:
        if source.durable:
            self.ops.append(
                ("binding-", self._binding_params(vhost, source.name, destination, routing_key, arguments))
            )

    # -- recovery ----------------------------------------------------------------------------------

    def recover(self, broker: Broker) -> RecoveryReport:
        """Rebuild the broker's durable state from the store, then start journalling every vhost.

        Called once, by `Broker.__init__`, before anything else touches the broker.
        """
        store = self.store
        state = store.load()
        try:
            return self._rebuild(broker, state)
        except BrokerError as e:
            raise StoreError(
                f"the broker store {store.location} holds a definition this broker cannot restore "
                f"({e.text}). Use the mqstudio version that wrote it, move the file away, or run the "
                "broker with --in-memory.",
                store.location,
            ) from e
        except (KeyError, ValueError, TypeError) as e:
            raise StoreCorruptError(
                f"the broker store {store.location} holds inconsistent data ({type(e).__name__}: {e}). "
                "Move the file away to start with an empty broker, or run the broker with --in-memory.",
                store.location,
            ) from e

    def _rebuild(self, broker: Broker, state: StoredState) -> RecoveryReport:
        names = set(state.vhosts)
        names.update(x.vhost for x in state.exchanges)
        names.update(q.vhost for q in state.queues)
        names.update(b.vhost for b in state.bindings)
        for name in sorted(names - set(broker.vhost_names)):
            broker.add_vhost(name)
        for sx in state.exchanges:
            broker.vhost(sx.vhost).declare_exchange(
                sx.name,
                sx.type,
                durable=True,
                auto_delete=sx.auto_delete,
                internal=sx.internal,
                arguments=sx.arguments,
            )
        queues: dict[int, tuple[Queue, QueueJournal]] = {}
        for sq in state.queues:
            if sq.vhost not in broker.vhost_names:
                broker.add_vhost(sq.vhost)
            vh = broker.vhost(sq.vhost)
            q = Queue(
                sq.name, vh, vhost=vh.name, durable=True, auto_delete=sq.auto_delete, arguments=sq.arguments
            )
            vh.add_queue(q)
            qj = q.journal = QueueJournal(self, sq.id)
            queues[sq.id] = (q, qj)
            self._next_queue = max(self._next_queue, sq.id + 1)
        discarded = 0
        for sb in state.bindings:
            vh = broker.vhost(sb.vhost)
            try:
                if sb.destination_kind == DestinationKind.QUEUE.value:
                    vh.queue_bind(sb.destination, sb.source, sb.routing_key, arguments=sb.arguments)
                else:
                    vh.exchange_bind(sb.destination, sb.source, sb.routing_key, arguments=sb.arguments)
            except BrokerError:
                # A binding whose source or destination is gone: drop the stale row.
                dest = Destination(DestinationKind(sb.destination_kind), sb.destination)
                params = self._binding_params(vh, sb.source, dest, sb.routing_key, sb.arguments)
                self.ops.append(("binding-", params))
                discarded += 1
        messages: dict[int, Message] = {}
        restored: dict[int, list[QueuedMessage]] = {}
        redelivered = 0
        for sm in state.messages:
            entry = queues.get(sm.queue_id)
            content = state.contents.get(sm.content_id)
            if entry is None or content is None:
                self.del_rows[(sm.queue_id, sm.seq)] = None
                discarded += 1
                continue
            q, qj = entry
            message = messages.get(sm.content_id)
            if message is None:
                exchange, routing_key, props, body, deaths = content
                message = messages[sm.content_id] = Message(body, props, exchange, routing_key, deaths)
            qm = QueuedMessage(message, sm.seq, sm.enqueued_ms, sm.expires_ms, sm.priority, q)
            qm.redelivered = sm.delivered
            qm.delivery_count = sm.delivery_count
            redelivered += sm.delivered
            restored.setdefault(sm.queue_id, []).append(qm)
            qj.rows[sm.seq] = sm.content_id
            self.refs[sm.content_id] = self.refs.get(sm.content_id, 0) + 1
        for qid, qms in restored.items():
            queues[qid][0].restore(qms)
        for cid in state.contents:
            if cid not in self.refs:
                self.del_content.append(cid)
                discarded += 1
        if state.contents:
            self._next_content = max(state.contents) + 1
        for name in broker.vhost_names:
            self.attach(broker.vhost(name), write=name not in state.vhosts)
        self.commit()
        return RecoveryReport(
            location=self.store.location,
            vhosts=len(state.vhosts),
            exchanges=len(state.exchanges),
            queues=len(state.queues),
            bindings=len(state.bindings),
            messages=sum(len(v) for v in restored.values()),
            redelivered=redelivered,
            discarded=discarded,
        )
