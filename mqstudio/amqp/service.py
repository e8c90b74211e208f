"""The broker service: glues the engine (`Broker`) to the wire (`AmqpServer`'s connection events).

Owns: `BrokerService`, the `AmqpServer` event handler that keeps one `ChannelHandler` (and so one
broker `Session`) per open AMQP channel, and the delivery pump. Runs on the event loop's thread
only, like everything the server calls.

Scheduling, once per loop iteration after any input (`call_soon` coalesces every connection that
had data in the same iteration):
1. group commit: `broker.commit()` when the engine has one (it makes pending persistent messages
   durable in one write for the whole batch);
2. only then the publisher confirms recorded during the batch ([confirms]: "a persistent message
   is confirmed when it has been persisted to disk");
3. the delivery pump: every session's outbox is written as basic.deliver frames.
Broker time (TTL, delayed messages, x-expires) runs on a timer set to `broker.next_deadline_ms()`.

Connection loss (socket gone, heartbeat timeout) and channel close requeue unacknowledged messages
through `Session.close` / `Broker.close_connection`, which also deletes exclusive queues.

Must not import: Qt, pika, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from pamqp import commands

from mqstudio.amqp.basic import PropertiesCache, ReplyRegistry
from mqstudio.amqp.channel import ChannelHandler, ConnectionInfo
from mqstudio.amqp.connection import (
    AcksReceived,
    AuthenticationFailed,
    ChannelClosed,
    ChannelFlow,
    ChannelOpened,
    Connection,
    ConnectionClosed,
    ConnectionLost,
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    MethodReceived,
    State,
)
from mqstudio.amqp.framing import AmqpError, ReplyCode
from mqstudio.broker.broker import Broker
from mqstudio.broker.errors import BrokerError

__all__ = ["BrokerService"]

log = logging.getLogger(__name__)

_OPEN = State.OPEN
#: What an error in a run of acks is reported against (Channel.Close's class and method ids).
_ACK = commands.Basic.Ack()


@dataclass(slots=True)
class _ConnectionState:
    info: ConnectionInfo
    channels: dict[int, ChannelHandler] = field(default_factory=dict)


class BrokerService:
    """`AmqpServer` event handler serving AMQP 0-9-1 clients from one `Broker`."""

    def __init__(self, broker: Broker, on_log: Callable[[str], None] | None = None) -> None:
        self._broker = broker
        self._replies: ReplyRegistry[ChannelHandler] = ReplyRegistry()
        self._properties_cache = PropertiesCache()
        self._connections: dict[Connection, _ConnectionState] = {}
        self._ids = itertools.count(1)
        self._confirming: dict[int, ChannelHandler] = {}
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: int | None = None
        #: Human-readable lines (connections opened/closed, errors); the runner prints them.
        self.on_log = on_log

    # ---------------------------------------------------------------- ChannelHost

    @property
    def broker(self) -> Broker:
        return self._broker

    @property
    def replies(self) -> ReplyRegistry[ChannelHandler]:
        return self._replies

    @property
    def properties_cache(self) -> PropertiesCache:
        return self._properties_cache

    def confirms_ready(self, channel: ChannelHandler) -> None:
        self._confirming[id(channel)] = channel

    def commit(self) -> None:
        commit = getattr(self._broker, "commit", None)
        if callable(commit):
            commit()

    # ---------------------------------------------------------------- inspection

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def channels(self) -> list[ChannelHandler]:
        return [ch for state in self._connections.values() for ch in state.channels.values()]

    # ---------------------------------------------------------------- the event handler

    def __call__(self, connection: Connection, event: Event, /) -> None:
        if type(event) is MethodReceived:
            # The hot path: a channel's method (every publish and every ack).
            state = self._connections.get(connection)
            if state is not None and connection.state is _OPEN:
                handler = state.channels.get(event.channel)
                # Not found or closed: a channel we closed with an error; drop what was in flight.
                if handler is not None and not handler.closed:
                    method = event.method
                    try:
                        handler.handle(method, event.header, event.body)
                    except BrokerError as exc:
                        self._fail(connection, handler, AmqpError(exc.code, exc.text).for_method(method))
                    except AmqpError as exc:
                        self._fail(connection, handler, exc.for_method(method))
            if not self._flush_scheduled:
                self._schedule_flush()
            return
        if type(event) is AcksReceived:
            state = self._connections.get(connection)
            if state is not None and connection.state is _OPEN:
                handler = state.channels.get(event.channel)
                if handler is not None and not handler.closed:
                    try:
                        handler.ack_each(event.delivery_tags)
                    except BrokerError as exc:
                        self._fail(connection, handler, AmqpError(exc.code, exc.text).for_method(_ACK))
                    except AmqpError as exc:
                        self._fail(connection, handler, exc.for_method(_ACK))
            if not self._flush_scheduled:
                self._schedule_flush()
            return
        if isinstance(event, ChannelOpened):
            self._on_channel_opened(connection, event)
        elif isinstance(event, ChannelClosed):
            self._on_channel_closed(connection, event)
        elif isinstance(event, ChannelFlow):
            self._on_flow(connection, event)
        elif isinstance(event, HandshakeCompleted):
            self._on_handshake(connection, event)
        elif isinstance(event, ConnectionTerminated):
            self._on_terminated(connection, event)
        elif isinstance(event, AuthenticationFailed):
            self._log(
                f"login refused for user '{event.username}' from {connection.peer_host}: {event.reason}"
            )
        self._schedule_flush()

    def _fail(self, connection: Connection, handler: ChannelHandler, error: AmqpError) -> None:
        state = self._connections[connection]
        self._log(
            f"{'connection' if error.hard else 'channel'} error on {state.info.connection_id} "
            f"channel {handler.number}: {error.reply_text}"
        )
        if not error.hard:
            handler.close()
        connection.handle_error(handler.number, error)

    def _on_handshake(self, connection: Connection, event: HandshakeCompleted) -> None:
        caps = event.client_properties.get("capabilities")
        cancel_notify = isinstance(caps, dict) and caps.get("consumer_cancel_notify") is True
        cid = f"conn-{next(self._ids)} ({connection.peer_host or '?'})"
        info = ConnectionInfo(connection, cid, event.vhost, event.username, cancel_notify)
        self._connections[connection] = _ConnectionState(info)
        product = event.client_properties.get("product", "unknown client")
        self._log(
            f"connection {cid} opened: user '{event.username}', vhost '{event.vhost}', client {product!s}"
        )

    def _on_channel_opened(self, connection: Connection, event: ChannelOpened) -> None:
        state = self._connections.get(connection)
        if state is None:
            return
        try:
            state.channels[event.channel] = ChannelHandler(self, state.info, event.channel)
        except BrokerError as exc:  # the vhost vanished from the engine
            connection.close_connection(exc.code, exc.text)

    def _on_channel_closed(self, connection: Connection, event: ChannelClosed) -> None:
        state = self._connections.get(connection)
        if state is None:
            return
        handler = state.channels.pop(event.channel, None)
        if handler is not None:
            handler.close()
            self._confirming.pop(id(handler), None)

    def _on_flow(self, connection: Connection, event: ChannelFlow) -> None:
        state = self._connections.get(connection)
        handler = None if state is None else state.channels.get(event.channel)
        if handler is not None:
            handler.flow_active = event.active

    def _on_terminated(self, connection: Connection, event: ConnectionTerminated) -> None:
        state = self._connections.pop(connection, None)
        if state is None:
            return
        for handler in state.channels.values():
            handler.close()
            self._confirming.pop(id(handler), None)
        state.channels.clear()
        # Requeues whatever the sessions still held and deletes the connection's exclusive queues.
        self._broker.close_connection(state.info.connection_id)
        cid = state.info.connection_id
        if isinstance(event, ConnectionClosed):
            how = "by the client" if event.initiator == "client" else f"by the broker ({event.reply_text})"
            self._log(f"connection {cid} closed {how}")
        elif isinstance(event, ConnectionLost):
            self._log(f"connection {cid} lost: {event.reason}")

    def _log(self, line: str) -> None:
        log.info("%s", line)
        if self.on_log is not None:
            self.on_log(line)

    # ---------------------------------------------------------------- pumping

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop (unit tests): flush now
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)
        # This loop iteration's input is one engine batch, until flush ends it: untimed publishes
        # share one clock read (Broker.begin_batch; TTL and other time rules still read the clock).
        self._broker.begin_batch()

    def flush(self) -> None:
        """Group commit, then confirms, then deliveries; then re-arm the broker timer."""
        self._broker.end_batch()
        self._flush_scheduled = False
        confirming = list(self._confirming.values())
        self._confirming.clear()
        try:
            self.commit()
        except Exception:
            # [confirms] a message the broker could not make durable is nacked, never acked.
            log.exception("broker commit failed; nacking this batch's confirms")
            for handler in confirming:
                if handler.confirms is not None:
                    handler.confirms.fail_all()
        for handler in confirming:
            handler.release_confirms()
        self.pump_deliveries()
        self._arm_timer()

    def pump_deliveries(self) -> int:
        n = 0
        for connection, state in list(self._connections.items()):
            for handler in list(state.channels.values()):
                if not handler.session.outbox:
                    continue
                try:
                    n += handler.write_deliveries()
                except Exception:
                    # A delivery that cannot be encoded must not stall every other channel; the
                    # connection goes (541) and its unacked messages are requeued.
                    log.exception("cannot write deliveries on %r", handler)
                    connection.close_connection(
                        ReplyCode.INTERNAL_ERROR, "internal error, see the broker log"
                    )
        return n

    def _arm_timer(self) -> None:
        due = self._broker.next_deadline_ms()
        if due is None:
            return
        if self._timer is not None and self._timer_due is not None and self._timer_due <= due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer is not None:
            self._timer.cancel()
        # At least 1 ms, so a deadline that a tick cannot clear never spins the loop.
        delay = max(0.001, (due - self._broker.clock.now_ms()) / 1000.0)
        self._timer_due = due
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_due = None
        self._broker.tick()
        self.flush()

    def close(self) -> None:
        """Stop the broker timer (the server's stop closes the connections) and end an open engine
        batch (a flush scheduled on a loop that stops never runs)."""
        self._broker.end_batch()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_due = None
