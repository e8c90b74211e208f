"""Per-channel state machine of the AMQP front-end: AMQP 0-9-1 methods → broker engine calls.

Owns: `ChannelHandler` (one per open channel: its broker `Session`, the last declared queue,
confirm and tx modes, the direct reply-to consumer, channel.flow), `ConnectionInfo` and the
`ChannelHost` protocol the service implements. Errors raised by the engine (`BrokerError`, with
RabbitMQ's reply codes) and by this layer (`AmqpError`) are turned into channel.close (soft
codes) or connection.close (hard codes) by the service through `Connection.handle_error`.

Behaviour follows RabbitMQ's rabbit_channel (docs pages in brackets):
- [specification] an empty queue name in queue.bind/purge/delete, basic.consume and basic.get means
  the queue last declared on the channel; none → 404 "no previously declared queue". An empty
  routing key in queue.bind with an empty queue name is that queue's name too.
- [confirms] confirm.select starts sequence numbers at 1; unroutable messages are confirmed after
  their basic.return; a queue refusing the message (x-overflow reject-publish) means basic.nack.
  confirm.select on a transactional channel and tx.select on a confirm channel are 406.
- [specification] tx: publishes and acknowledgements are buffered until tx.commit, discarded by
  tx.rollback (messages acknowledged inside the transaction stay unacknowledged).
- [direct-reply-to] consuming `amq.rabbitmq.reply-to` needs no-ack; publishing with that reply_to
  rewrites it to `amq.rabbitmq.reply-to.<token>`, which the default exchange routes straight back
  to the consuming channel; without such a consumer the publish is 406 "fast reply consumer does
  not exist".
- [consumer-cancel] a consumer whose queue is deleted gets basic.cancel from the server when the
  client announced the consumer_cancel_notify capability.

Must not import: sockets, asyncio, Qt, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pamqp import commands
from pamqp import header as pamqp_header

from mqstudio.amqp.basic import (
    DIRECT_REPLY_TO,
    ConfirmTracker,
    PropertiesCache,
    ReplyRegistry,
    get_ok_method,
)
from mqstudio.amqp.connection import Connection
from mqstudio.amqp.fastcodec import DeliverTemplates
from mqstudio.amqp.framing import AmqpError, Method, ReplyCode
from mqstudio.amqp.names import BasicDeliver, BasicReturn, QueueDeclareOk
from mqstudio.broker.broker import Broker
from mqstudio.broker.errors import PreconditionFailed
from mqstudio.broker.message import Properties
from mqstudio.broker.session import Session

__all__ = ["ChannelHandler", "ChannelHost", "ConnectionInfo"]


@dataclass(slots=True)
class ConnectionInfo:
    """What every channel of one connection shares."""

    connection: Connection
    connection_id: str
    vhost: str
    username: str
    #: The client announced consumer_cancel_notify (RabbitMQ sends basic.cancel only then).
    cancel_notify: bool


class ChannelHost(Protocol):
    """What a channel needs from the service that owns it."""

    @property
    def broker(self) -> Broker: ...

    @property
    def replies(self) -> ReplyRegistry[ChannelHandler]: ...

    @property
    def properties_cache(self) -> PropertiesCache: ...

    def confirms_ready(self, channel: ChannelHandler) -> None:
        """Send `channel`'s recorded confirms after the next group commit."""

    def commit(self) -> None:
        """Make pending persistent work durable now (tx.commit)."""


@dataclass(slots=True)
class _Publish:
    exchange: str
    routing_key: str
    mandatory: bool
    properties: Properties
    wire_properties: commands.Basic.Properties | None
    body: bytes


#: Deliveries encoded per batch between two checks of the connection's writability.
_DELIVERY_BATCH = 256


def _not_found(text: str) -> AmqpError:
    return AmqpError(ReplyCode.NOT_FOUND, text)


def _precondition(text: str) -> AmqpError:
    return AmqpError(ReplyCode.PRECONDITION_FAILED, text)


class ChannelHandler:
    """One open AMQP channel bound to one broker session."""

    def __init__(self, host: ChannelHost, info: ConnectionInfo, number: int) -> None:
        self.host = host
        self.info = info
        self.number = number
        self.session: Session = host.broker.open_session(info.vhost, info.connection_id, self._server_cancel)
        self.closed = False
        self.flow_active = True
        self.last_queue = ""
        self.confirms: ConfirmTracker | None = None
        # tx mode: buffered publishes and settlements ("ack"/"nack"/"reject", tags, requeue).
        self.tx_publishes: list[_Publish] | None = None
        self.tx_settles: list[tuple[str, list[int], bool]] = []
        self.tx_settled: set[int] = set()
        # Direct reply-to: (consumer tag, token) of this channel's reply consumer.
        self.reply_consumer: tuple[str, str] | None = None
        self._conn = info.connection
        # Fixed for the channel's life; looked up once (hot path).
        self._engine = host.broker
        self._vhost = info.vhost
        self._from_wire = host.properties_cache.from_wire
        self._templates = DeliverTemplates(number)
        self._dispatch: dict[
            type[Method], Callable[[Any, pamqp_header.ContentHeader | None, bytes], None]
        ] = {
            commands.Basic.Publish: self._basic_publish,
            commands.Basic.Ack: self._basic_ack,
            commands.Basic.Nack: self._basic_nack,
            commands.Basic.Reject: self._basic_reject,
            commands.Basic.Qos: self._basic_qos,
            commands.Basic.Consume: self._basic_consume,
            commands.Basic.Cancel: self._basic_cancel,
            commands.Basic.CancelOk: self._ignore,
            commands.Basic.Get: self._basic_get,
            commands.Basic.Recover: self._basic_recover,
            commands.Basic.RecoverAsync: self._basic_recover,
            commands.Exchange.Declare: self._exchange_declare,
            commands.Exchange.Delete: self._exchange_delete,
            commands.Exchange.Bind: self._exchange_bind,
            commands.Exchange.Unbind: self._exchange_unbind,
            commands.Queue.Declare: self._queue_declare,
            commands.Queue.Bind: self._queue_bind,
            commands.Queue.Unbind: self._queue_unbind,
            commands.Queue.Purge: self._queue_purge,
            commands.Queue.Delete: self._queue_delete,
            commands.Confirm.Select: self._confirm_select,
            commands.Tx.Select: self._tx_select,
            commands.Tx.Commit: self._tx_commit,
            commands.Tx.Rollback: self._tx_rollback,
        }

    def __repr__(self) -> str:
        return f"ChannelHandler({self.info.connection_id!r}, {self.number})"

    # ---------------------------------------------------------------- entry points

    def handle(self, method: Method, header: pamqp_header.ContentHeader | None, body: bytes | None) -> None:
        """One whole command from the client; raises AmqpError or BrokerError."""
        handler = self._dispatch.get(type(method))
        if handler is None:
            # rabbit_channel answers methods it does not know (e.g. access.request aside) like this.
            raise AmqpError(ReplyCode.COMMAND_INVALID, f"unexpected method {method.name.lower()}")
        handler(method, header, body or b"")

    def _ignore(self, _m: Method, _h: object, _b: bytes) -> None:
        # basic.cancel-ok answering our server-side basic.cancel (RabbitMQ 4.3 clients send it).
        return

    def _send(self, method: Method) -> None:
        self._conn.send_method(self.number, method)

    def write_deliveries(self, *, force: bool = False) -> int:
        """Write basic.deliver for what the session produced; held back while flow is off.

        Written in batches while the connection is `writable`; when the peer falls behind the
        rest stays in the session's outbox and the connection reports `WritingResumed` later
        (the service then pumps again). `force` writes everything regardless, for callers that
        must keep delivery tags in order on the wire (basic.get-ok, a reply, a server cancel).
        """
        session = self.session
        outbox = session.outbox
        if self.closed or not self.flow_active or not outbox:
            return 0
        conn = self._conn
        encoded = self.host.properties_cache.encoded
        encode = self._templates.encode
        number = self.number
        written = 0
        while outbox:
            if not force and not conn.writable:
                conn.want_writable()
                break
            deliveries = session.poll(None if force else _DELIVERY_BATCH)
            # One buffer per batch: one append to the connection's output, one socket write.
            conn.send_encoded(number, encode(deliveries, encoded, conn.frame_max))
            written += len(deliveries)
        return written

    def release_confirms(self) -> None:
        tracker = self.confirms
        if tracker is None or self.closed:
            return
        for frame in tracker.release():
            self._send(frame)

    def close(self) -> None:
        """The channel is gone (either side closed it, or the connection ended)."""
        if self.closed:
            return
        self.closed = True
        if self.reply_consumer is not None:
            self.host.replies.unregister(self.reply_consumer[1])
            self.reply_consumer = None
        if self.confirms is not None:
            self.confirms.clear()
        self.tx_publishes = None
        # [channels] closing a channel requeues its unacknowledged deliveries (redelivered=true).
        self.session.close()

    def _server_cancel(self, consumer_tag: str) -> None:
        # [consumer-cancel] deliveries already made come first, then the cancel notification.
        self.write_deliveries(force=True)
        if self.info.cancel_notify and not self.closed:
            self._send(commands.Basic.Cancel(consumer_tag, nowait=True))

    # ---------------------------------------------------------------- helpers

    def _queue_name(self, name: str) -> str:
        if name:
            return name
        if not self.last_queue:
            raise _not_found("no previously declared queue")
        return self.last_queue

    @property
    def _broker(self) -> Broker:
        return self.host.broker

    # ---------------------------------------------------------------- exchange class

    def _exchange_declare(self, m: commands.Exchange.Declare, _h: object, _b: bytes) -> None:
        self._broker.declare_exchange(
            self.info.vhost,
            m.exchange,
            m.exchange_type,
            durable=m.durable,
            auto_delete=m.auto_delete,
            internal=m.internal,
            arguments=m.arguments,
            passive=m.passive,
        )
        if not m.nowait:
            self._send(commands.Exchange.DeclareOk())

    def _exchange_delete(self, m: commands.Exchange.Delete, _h: object, _b: bytes) -> None:
        self._broker.delete_exchange(self.info.vhost, m.exchange, if_unused=m.if_unused)
        if not m.nowait:
            self._send(commands.Exchange.DeleteOk())

    def _exchange_bind(self, m: commands.Exchange.Bind, _h: object, _b: bytes) -> None:
        self._broker.exchange_bind(
            self.info.vhost, m.destination, m.source, m.routing_key, arguments=m.arguments
        )
        if not m.nowait:
            self._send(commands.Exchange.BindOk())

    def _exchange_unbind(self, m: commands.Exchange.Unbind, _h: object, _b: bytes) -> None:
        self._broker.exchange_unbind(
            self.info.vhost, m.destination, m.source, m.routing_key, arguments=m.arguments
        )
        if not m.nowait:
            self._send(commands.Exchange.UnbindOk())

    # ---------------------------------------------------------------- queue class

    def _queue_declare(self, m: commands.Queue.Declare, _h: object, _b: bytes) -> None:
        if m.passive and m.queue == DIRECT_REPLY_TO:
            # [direct-reply-to] the pseudo-queue "exists" for a passive declare.
            if not m.nowait:
                self._send(QueueDeclareOk(DIRECT_REPLY_TO, 0, 0))
            return
        ok = self._broker.declare_queue(
            self.info.vhost,
            m.queue,
            durable=m.durable,
            exclusive=m.exclusive,
            auto_delete=m.auto_delete,
            arguments=m.arguments,
            passive=m.passive,
            owner=self.info.connection_id,
        )
        self.last_queue = ok.name
        if not m.nowait:
            self._send(QueueDeclareOk(ok.name, ok.message_count, ok.consumer_count))

    def _queue_bind(self, m: commands.Queue.Bind, _h: object, _b: bytes) -> None:
        queue = self._queue_name(m.queue)
        key = m.routing_key if (m.queue or m.routing_key) else queue
        self._broker.queue_bind(
            self.info.vhost,
            queue,
            m.exchange,
            key,
            arguments=m.arguments,
            connection_id=self.info.connection_id,
        )
        if not m.nowait:
            self._send(commands.Queue.BindOk())

    def _queue_unbind(self, m: commands.Queue.Unbind, _h: object, _b: bytes) -> None:
        queue = self._queue_name(m.queue)
        self._broker.queue_unbind(
            self.info.vhost,
            queue,
            m.exchange,
            m.routing_key,
            arguments=m.arguments,
            connection_id=self.info.connection_id,
        )
        self._send(commands.Queue.UnbindOk())

    def _queue_purge(self, m: commands.Queue.Purge, _h: object, _b: bytes) -> None:
        n = self._broker.purge_queue(self.info.vhost, self._queue_name(m.queue), self.info.connection_id)
        if not m.nowait:
            self._send(commands.Queue.PurgeOk(n))

    def _queue_delete(self, m: commands.Queue.Delete, _h: object, _b: bytes) -> None:
        n = self._broker.delete_queue(
            self.info.vhost,
            self._queue_name(m.queue),
            if_unused=m.if_unused,
            if_empty=m.if_empty,
            connection_id=self.info.connection_id,
        )
        if not m.nowait:
            self._send(commands.Queue.DeleteOk(n))

    # ---------------------------------------------------------------- basic: consuming

    def _basic_qos(self, m: commands.Basic.Qos, _h: object, _b: bytes) -> None:
        if m.prefetch_size:
            # rabbit_channel: prefetch_size is not implemented (540, a connection error).
            raise AmqpError(ReplyCode.NOT_IMPLEMENTED, f"prefetch_size!=0 ({m.prefetch_size})")
        self.session.qos(m.prefetch_count, m.global_)
        self._send(commands.Basic.QosOk())

    def _basic_consume(self, m: commands.Basic.Consume, _h: object, _b: bytes) -> None:
        if m.queue == DIRECT_REPLY_TO:
            self._consume_replies(m)
            return
        queue = self._queue_name(m.queue)
        if m.consumer_tag and self.reply_consumer is not None and self.reply_consumer[0] == m.consumer_tag:
            raise AmqpError(ReplyCode.NOT_ALLOWED, f"attempt to reuse consumer tag '{m.consumer_tag}'")
        # Consume-ok must precede the first delivery: the session queues deliveries in its
        # outbox and they are written after this method returns.
        tag = self.session.basic_consume(
            queue, m.consumer_tag, no_ack=m.no_ack, exclusive=m.exclusive, arguments=m.arguments
        )
        if not m.nowait:
            self._send(commands.Basic.ConsumeOk(tag))

    def _consume_replies(self, m: commands.Basic.Consume) -> None:
        if not m.no_ack:
            raise _precondition("reply consumer cannot acknowledge")
        if self.reply_consumer is not None:
            raise _precondition("reply consumer already set")
        tag = m.consumer_tag or self.session.vhost.generate_name("amq.ctag-")
        if tag in self.session.consumers:
            raise AmqpError(ReplyCode.NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'")
        self.reply_consumer = (tag, self.host.replies.register(self))
        if not m.nowait:
            self._send(commands.Basic.ConsumeOk(tag))

    def _basic_cancel(self, m: commands.Basic.Cancel, _h: object, _b: bytes) -> None:
        tag = m.consumer_tag or ""
        if self.reply_consumer is not None and self.reply_consumer[0] == tag:
            self.host.replies.unregister(self.reply_consumer[1])
            self.reply_consumer = None
        else:
            self.session.basic_cancel(tag)
        if not m.nowait:
            self._send(commands.Basic.CancelOk(tag))

    def _basic_get(self, m: commands.Basic.Get, _h: object, _b: bytes) -> None:
        d = self.session.basic_get(self._queue_name(m.queue), m.no_ack)
        if d is None:
            self._send(commands.Basic.GetEmpty())
            return
        # Earlier consumer deliveries hold lower tags: write them first, keeping tags in order.
        self.write_deliveries(force=True)
        self._conn.send_content(
            self.number,
            get_ok_method(d),
            self.host.properties_cache.get(d.message.properties),
            d.message.body,
        )

    def deliver_reply(
        self, exchange: str, routing_key: str, props: commands.Basic.Properties | None, body: bytes
    ) -> None:
        """[direct-reply-to] A reply routed to this channel's reply consumer (no-ack)."""
        assert self.reply_consumer is not None
        self.write_deliveries(force=True)
        session = self.session
        tag = session.next_tag
        session.next_tag = tag + 1
        self._conn.send_content(
            self.number,
            BasicDeliver(self.reply_consumer[0], tag, False, exchange, routing_key),
            props,
            body,
        )

    # ---------------------------------------------------------------- basic: settlement

    def _tx_take(self, tag: int, multiple: bool) -> list[int]:
        """Validate a settlement inside a transaction; the tags it covers, in order."""
        unacked = self.session.unacked
        settled = self.tx_settled
        if multiple:
            if tag != 0 and (tag not in unacked or tag in settled):
                raise PreconditionFailed(f"unknown delivery tag {tag}")
            tags = [t for t in unacked if (tag == 0 or t <= tag) and t not in settled]
        else:
            if tag not in unacked or tag in settled:
                raise PreconditionFailed(f"unknown delivery tag {tag}")
            tags = [tag]
        settled.update(tags)
        return tags

    def _basic_ack(self, m: commands.Basic.Ack, _h: object, _b: bytes) -> None:
        if self.tx_publishes is not None:
            self.tx_settles.append(("ack", self._tx_take(m.delivery_tag, m.multiple), False))
            return
        self.session.ack(m.delivery_tag, m.multiple)

    def ack_each(self, tags: list[int]) -> None:
        """basic.ack (multiple=false) for each tag in turn: a run of acks (`AcksReceived`)."""
        if self.tx_publishes is not None:
            for tag in tags:
                self.tx_settles.append(("ack", self._tx_take(tag, False), False))
            return
        ack = self.session.ack
        for tag in tags:
            ack(tag)

    def _basic_nack(self, m: commands.Basic.Nack, _h: object, _b: bytes) -> None:
        if self.tx_publishes is not None:
            self.tx_settles.append(("nack", self._tx_take(m.delivery_tag, m.multiple), m.requeue))
            return
        self.session.nack(m.delivery_tag, m.multiple, m.requeue)

    def _basic_reject(self, m: commands.Basic.Reject, _h: object, _b: bytes) -> None:
        if self.tx_publishes is not None:
            self.tx_settles.append(("reject", self._tx_take(m.delivery_tag or 0, False), m.requeue))
            return
        self.session.reject(m.delivery_tag or 0, m.requeue)

    def _basic_recover(
        self, m: commands.Basic.Recover | commands.Basic.RecoverAsync, _h: object, _b: bytes
    ) -> None:
        self.session.recover(m.requeue)
        if isinstance(m, commands.Basic.Recover):
            self._send(commands.Basic.RecoverOk())

    # ---------------------------------------------------------------- basic: publishing

    def _basic_publish(
        self, m: commands.Basic.Publish, h: pamqp_header.ContentHeader | None, body: bytes
    ) -> None:
        if m.immediate:
            # RabbitMQ dropped `immediate` in 3.0: 540 NOT_IMPLEMENTED, a connection error.
            raise AmqpError(ReplyCode.NOT_IMPLEMENTED, "immediate=true")
        wire = h.properties if h is not None else None
        # Shared with every publish of the same property octets: replaced, never mutated.
        props = self._from_wire(wire)
        user_id = props.user_id
        if user_id is not None and user_id != self.info.username:
            # [validated-user-id] the user_id property must name the connection's user.
            raise _precondition(
                f"user_id property set to '{user_id}' but authenticated user was '{self.info.username}'"
            )
        if props.reply_to == DIRECT_REPLY_TO:
            if self.reply_consumer is None:
                raise _precondition("fast reply consumer does not exist")
            props = replace(props, reply_to=f"{DIRECT_REPLY_TO}.{self.reply_consumer[1]}")
            wire = None  # the rewritten reply_to must reach the consumer
        if self.tx_publishes is not None:
            self._check_publishable(m.exchange)
            self.tx_publishes.append(_Publish(m.exchange, m.routing_key, m.mandatory, props, wire, body))
            return
        ack = self._route(m.exchange, m.routing_key, m.mandatory, props, wire, body)
        tracker = self.confirms
        if tracker is not None and tracker.record(ack):
            self.host.confirms_ready(self)  # once per batch: it stays registered until released

    def _check_publishable(self, exchange: str) -> None:
        x = self.session.vhost.exchanges.get(exchange)
        if x is None:
            raise _not_found(f"no exchange '{exchange}' in vhost '{self.info.vhost}'")
        if x.internal:
            raise AmqpError(
                ReplyCode.ACCESS_REFUSED,
                f"cannot publish to internal exchange '{exchange}' in vhost '{self.info.vhost}'",
            )

    # Positional on purpose: called once per publish on the hot path.
    def _route(  # noqa: PLR0917
        self,
        exchange: str,
        routing_key: str,
        mandatory: bool,
        props: Properties,
        wire: commands.Basic.Properties | None,
        body: bytes,
    ) -> bool:
        """Route one message; sends basic.return when due. True = ack, False = nack (confirms)."""
        if not exchange and routing_key.startswith(DIRECT_REPLY_TO):
            target = self.host.replies.lookup(routing_key)
            if target is not None and not target.closed and target.reply_consumer is not None:
                target.deliver_reply(
                    exchange, routing_key, wire or self.host.properties_cache.get(props), body
                )
                return True
            if mandatory:
                self._return(exchange, routing_key, props, wire, body)
            return True
        result = self._engine.publish(self._vhost, exchange, routing_key, props, body, mandatory=mandatory)
        if result.returned:
            # [confirms] "For unroutable messages, the broker will issue a confirm once the
            # exchange verifies a message won't route to any queue (returns an empty list of
            # queues)" — after the basic.return.
            self._return(exchange, routing_key, props, wire, body)
        return not result.rejected_by_overflow

    def _return(
        self,
        exchange: str,
        routing_key: str,
        props: Properties,
        wire: commands.Basic.Properties | None,
        body: bytes,
    ) -> None:
        self._conn.send_content(
            self.number,
            BasicReturn(ReplyCode.NO_ROUTE, "NO_ROUTE", exchange, routing_key),
            wire or self.host.properties_cache.get(props),
            body,
        )

    # ---------------------------------------------------------------- confirm and tx classes

    def _confirm_select(self, m: commands.Confirm.Select, _h: object, _b: bytes) -> None:
        if self.tx_publishes is not None:
            raise _precondition("cannot switch from tx to confirm mode")
        if self.confirms is None:
            self.confirms = ConfirmTracker()
        if not m.nowait:
            self._send(commands.Confirm.SelectOk())

    def _tx_select(self, _m: commands.Tx.Select, _h: object, _b: bytes) -> None:
        if self.confirms is not None:
            raise _precondition("cannot switch from confirm to tx mode")
        if self.tx_publishes is None:
            self.tx_publishes = []
        self._send(commands.Tx.SelectOk())

    def _tx_commit(self, _m: commands.Tx.Commit, _h: object, _b: bytes) -> None:
        publishes = self.tx_publishes
        if publishes is None:
            raise _precondition("channel is not transactional")
        settles = self.tx_settles
        self.tx_publishes, self.tx_settles, self.tx_settled = [], [], set()
        for p in publishes:
            self._route(p.exchange, p.routing_key, p.mandatory, p.properties, p.wire_properties, p.body)
        session = self.session
        for kind, tags, requeue in settles:
            for tag in tags:
                if tag not in session.unacked:
                    continue  # requeued meanwhile (basic.recover): nothing left to settle
                if kind == "ack":
                    session.ack(tag)
                elif kind == "nack":
                    session.nack(tag, False, requeue)
                else:
                    session.reject(tag, requeue)
        self.host.commit()
        self._send(commands.Tx.CommitOk())

    def _tx_rollback(self, _m: commands.Tx.Rollback, _h: object, _b: bytes) -> None:
        if self.tx_publishes is None:
            raise _precondition("channel is not transactional")
        self.tx_publishes, self.tx_settles, self.tx_settled = [], [], set()
        self._send(commands.Tx.RollbackOk())
