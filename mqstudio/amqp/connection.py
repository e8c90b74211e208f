"""Sans-I/O AMQP 0-9-1 server connection: handshake, channels, close, heartbeats.

Owns one client connection's protocol state, with no sockets and no clock of its own: the caller
feeds received bytes to `receive_data`, writes `data_to_send()` to the peer, reads events with
`next_event()`, and drives time with `heartbeat_due(now)` / `check_timeout(now)`.

States (spec §2.2.4 connection negotiation, §4.2.2 protocol header):
AWAIT_HEADER → AWAIT_START_OK → AWAIT_TUNE_OK → AWAIT_OPEN → OPEN → CLOSING → CLOSED.

Handled here: the connection class on channel 0; channel.open / close / close-ok / flow; content
assembly; soft (channel) versus hard (connection) errors. Every other method on an open channel
is passed up as `MethodReceived` for the channel layer, except runs of basic.ack (multiple=false),
passed up as one `AcksReceived` each.

Hot path: the frame buffer fuses a basic.publish that arrived whole with its header and body
(`FrameBuffer(fuse_content=True)`), and such publishes and basic.ack/nack/reject on an open
channel that is not assembling content skip the assembler; anything else is taken frame by
frame, so the outcome is the same either way (tests/amqp/test_fused_frames.py checks it).

Exactly one terminal event is emitted per connection: `ConnectionClosed` (a Close/Close-Ok
exchange) or `ConnectionLost` (transport gone, missed heartbeats, timeouts). After it, all the
connection's channels are gone; the broker requeues their unacknowledged messages.

The events it reports are defined in `mqstudio.amqp.events` and importable from here too.

Must not import: sockets, asyncio, Qt, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import collections
import enum
import logging
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata

from pamqp import body as pamqp_body
from pamqp import commands, common
from pamqp import header as pamqp_header
from pamqp import heartbeat as pamqp_heartbeat

from mqstudio.amqp.auth import (
    MECHANISMS,
    Authenticator,
    AuthError,
    AuthResult,
    InMemoryAuthenticator,
    VhostAccess,
    parse_response,
)
from mqstudio.amqp.events import (
    AcksReceived,
    AuthenticationFailed,
    ChannelClosed,
    ChannelFlow,
    ChannelOpened,
    ConnectionClosed,
    ConnectionLost,
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    MethodReceived,
    WritingResumed,
)
from mqstudio.amqp.framing import (
    FRAME_MIN_SIZE,
    PROTOCOL_HEADER,
    AmqpError,
    Command,
    ContentAssembler,
    Frame,
    FrameBuffer,
    FrameError,
    Method,
    ProtocolHeaderError,
    ReplyCode,
    format_reply_text,
    marshal,
    marshal_content,
    method_ids,
    method_name,
)

__all__ = [
    "AcksReceived",
    "AuthenticationFailed",
    "ChannelClosed",
    "ChannelFlow",
    "ChannelOpened",
    "Connection",
    "ConnectionClosed",
    "ConnectionConfig",
    "ConnectionLost",
    "ConnectionTerminated",
    "Event",
    "HandshakeCompleted",
    "MethodReceived",
    "State",
    "WritingResumed",
    "default_server_properties",
]

log = logging.getLogger(__name__)


class State(enum.Enum):
    AWAIT_HEADER = "await_header"
    AWAIT_START_OK = "await_start_ok"
    AWAIT_TUNE_OK = "await_tune_ok"
    AWAIT_OPEN = "await_open"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# RabbitMQ's names for the same states, used in its "unexpected method in connection state …".
_RABBIT_STATE = {
    State.AWAIT_START_OK: "starting",
    State.AWAIT_TUNE_OK: "tuning",
    State.AWAIT_OPEN: "opening",
    State.OPEN: "running",
}
#: Methods `_on_channel_method` handles itself on an open channel: the connection and channel
#: classes (spec classes 10 and 20). Everything else goes to the content assembler.
_CHANNEL_LEVEL: frozenset[type] = frozenset(
    cls for index, cls in commands.INDEX_MAPPING.items() if index >> 16 in (10, 20)
)
#: Methods without content that the assembler passes on unchanged (settlements: the hot path
#: of a consuming connection).
_SETTLE_METHODS: frozenset[type] = frozenset({commands.Basic.Ack, commands.Basic.Nack, commands.Basic.Reject})
_ACK = commands.Basic.Ack
_HANDSHAKE = frozenset({State.AWAIT_HEADER, State.AWAIT_START_OK, State.AWAIT_TUNE_OK, State.AWAIT_OPEN})

#: Capabilities announced in Connection.Start's server-properties, as RabbitMQ does.
SERVER_CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


def _unfused(command: Command) -> list[Frame]:
    """The frames a `FrameBuffer` fused into `command`: method, content header, body (if any)."""
    frames: list[Frame] = [command.method]
    if command.header is not None:
        frames.append(command.header)
        if command.body:
            body: pamqp_body.ContentBody = object.__new__(pamqp_body.ContentBody)
            body.value = command.body
            frames.append(body)
    return frames


def _version() -> str:
    try:
        return metadata.version("mqstudio")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def default_server_properties() -> common.FieldTable:
    """Connection.Start server-properties: product, version, platform and capabilities."""
    capabilities: common.FieldTable = dict.fromkeys(SERVER_CAPABILITIES, True)
    return {
        "product": "mqstudio",
        "version": _version(),
        "platform": f"Python {platform.python_version()}",
        "copyright": "mqstudio developers",
        "information": "mqstudio embedded broker (AMQP 0-9-1); licensed under MIT",
        "capabilities": capabilities,
    }


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Server-side limits proposed in Connection.Tune and the timeouts `check_timeout` applies."""

    channel_max: int = 2047  # RabbitMQ's default
    frame_max: int = 131072  # RabbitMQ's default
    heartbeat: int = 60  # seconds; RabbitMQ's default
    mechanisms: tuple[str, ...] = MECHANISMS
    locales: str = "en_US"
    server_properties: Mapping[str, common.FieldValue] | None = None
    handshake_timeout: float = 10.0  # RabbitMQ's handshake_timeout
    close_timeout: float = 10.0  # how long we wait for Close-Ok after sending Close
    max_body_size: int | None = 128 * 1024 * 1024  # RabbitMQ 3.x max_message_size
    #: Output flow control: above `write_high_water` octets waiting for the peer (in the
    #: transport or queued here) no more deliveries are written and the I/O adapter stops reading
    #: from the peer; both resume once the transport is below `write_low_water`.
    write_high_water: int = 1024 * 1024
    write_low_water: int = 256 * 1024


# --------------------------------------------------------------------------------------------
# The connection
# --------------------------------------------------------------------------------------------


class _ChannelState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # we sent Channel.Close and wait for Close-Ok


@dataclass(slots=True)
class _Channel:
    state: _ChannelState = _ChannelState.OPEN
    flow_active: bool = True


@dataclass(slots=True)
class _Clock:
    """Caller-clock bookkeeping: activity flags are stamped with the next `now` we are given."""

    rx_activity: bool = False
    tx_activity: bool = False
    last_rx: float | None = None
    last_tx: float | None = None
    handshake_started: float | None = None
    closing_started: float | None = None


class Connection:
    """One client connection, from protocol header to socket close, without I/O."""

    def __init__(
        self,
        authenticator: Authenticator | None = None,
        config: ConnectionConfig | None = None,
        peer: tuple[str, int] | str | None = None,
    ) -> None:
        self.config = config or ConnectionConfig()
        self.authenticator: Authenticator = authenticator or InMemoryAuthenticator()
        self.peer_host: str | None = peer[0] if isinstance(peer, tuple) else peer
        self.state = State.AWAIT_HEADER
        # Negotiated values; until Tune-Ok they hold our proposals (frame_max: spec frame-min-size).
        self.channel_max = self.config.channel_max or 0xFFFF
        self.frame_max = FRAME_MIN_SIZE
        self.heartbeat = self.config.heartbeat
        self.username: str | None = None
        self.vhost: str | None = None
        self.client_properties: common.FieldTable = {}
        #: Called (with no arguments) when output is queued into an empty buffer; lets an I/O
        #: adapter schedule a flush for data produced outside `receive_data`.
        self.output_ready: Callable[[], None] | None = None

        self._frames = FrameBuffer(FRAME_MIN_SIZE, fuse_content=True)
        self._assembler = ContentAssembler(self.config.max_body_size)
        self._channels: dict[int, _Channel] = {}
        self._out = bytearray()
        self._events: collections.deque[Event] = collections.deque()
        self._clock = _Clock()
        self._close_reason: tuple[int, str] = (0, "")
        self._blocked_reason: str | None = None
        self._blocked_sent = False
        self._write_paused = False
        self._want_writable = False

    # ---------------------------------------------------------------- I/O adapter interface

    @property
    def closed(self) -> bool:
        """True once the transport should be closed (after flushing `data_to_send()`)."""
        return self.state is State.CLOSED

    def receive_data(self, data: bytes) -> None:
        """Process received octets; then read `data_to_send()` and the events."""
        if self.state is State.CLOSED or not data:
            return
        self._clock.rx_activity = True  # any octet counts as a heartbeat (spec §4.2.7)
        try:
            frames = self._frames.feed(data)
            open_state = State.OPEN
            closed = State.CLOSED
            channel_open = _ChannelState.OPEN
            channels = self._channels
            assembling = self._assembler.pending
            events = self._events
            append_event = events.append
            max_body = self.config.max_body_size
            for channel, frame in frames:
                kind = type(frame)
                # Hot paths first: whole publishes and acks on an open channel of an open
                # connection that is not assembling content (what the assembler would pass on).
                if channel and self.state is open_state and (kind is Command or kind in _SETTLE_METHODS):
                    ch = channels.get(channel)
                    if ch is not None and ch.state is channel_open and not assembling(channel):
                        if kind is _ACK and not frame.multiple:  # type: ignore[union-attr]
                            tag: int = frame.delivery_tag  # type: ignore[union-attr]
                            # Extend the run not yet taken, if nothing came in between.
                            last = events[-1] if events else None
                            if type(last) is AcksReceived and last.channel == channel:
                                last.delivery_tags.append(tag)
                            else:
                                append_event(AcksReceived(channel, [tag]))
                            continue
                        if kind is not Command:
                            append_event(MethodReceived(channel, frame))  # type: ignore[arg-type]
                            continue
                        command: Command = frame  # type: ignore[assignment]
                        header = command.header
                        if header is not None and (max_body is None or header.body_size <= max_body):
                            append_event(MethodReceived(channel, command.method, header, command.body))
                            continue
                if kind is Command:
                    # Anything unusual: the three frames one by one, as they arrived.
                    for part in _unfused(frame):  # type: ignore[arg-type]
                        self._receive_frame(channel, part)
                        if self.state is closed:
                            return
                    continue
                self._receive_frame(channel, frame)  # type: ignore[arg-type]
                if self.state is closed:
                    return
            if self._frames.error_pending:
                self._frames.feed(b"")  # raises the error found behind the frames above
        except ProtocolHeaderError as exc:
            # Spec §4.2.2: reply with the header we do support, then close the socket.
            self._send_bytes(PROTOCOL_HEADER)
            self._terminate(ConnectionLost(str(exc)))
        except FrameError as exc:
            # The stream is desynchronised: nothing after this can be parsed, not even a
            # Close-Ok, so send Close and finish without waiting (as RabbitMQ's frame_error).
            log.warning("AMQP frame error from %s: %s", self.peer_host, exc.reply_text)
            if self.state is State.CLOSING:
                code, text = self._close_reason
                self._terminate(ConnectionClosed(code, text, "server"))
                return
            self._send_close(exc.reply_code, exc.reply_text, exc.class_id, exc.method_id)
            self._terminate(ConnectionClosed(exc.reply_code, exc.reply_text, "server"))

    def _receive_frame(self, channel: int, frame: Frame) -> None:
        if channel and self.state is State.OPEN and type(frame) is not pamqp_heartbeat.Heartbeat:
            try:
                self._on_channel_frame(channel, frame)
            except AmqpError as exc:
                self.handle_error(channel, exc)
        else:
            self._handle_frame(channel, frame)

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call."""
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        self._clock.tx_activity = True
        if self._want_writable and not self._write_paused:
            self._want_writable = False
            self._events.append(WritingResumed())
        return data

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    # ---------------------------------------------------------------- output flow control

    @property
    def writable(self) -> bool:
        """False while the peer is not keeping up: its transport is above the high-water mark
        (`pause_writing`) or a high-water mark's worth of output is queued here already."""
        return not self._write_paused and len(self._out) < self.config.write_high_water

    def want_writable(self) -> None:
        """Ask for one `WritingResumed` event once `writable` may have turned True again."""
        self._want_writable = True

    def pause_writing(self) -> None:
        """The I/O adapter's transport went above its high-water mark."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport drained below its low-water mark."""
        self._write_paused = False
        if self._want_writable and len(self._out) < self.config.write_high_water:
            self._want_writable = False
            self._events.append(WritingResumed())

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def drain_events(self) -> list[Event]:
        events = list(self._events)
        self._events.clear()
        return events

    def connection_lost(self, reason: str = "connection closed by the client") -> None:
        """The transport is gone (EOF or socket error)."""
        if self.state is State.CLOSING:
            # We had already closed; a peer that drops the socket instead of sending
            # Close-Ok (pika does after an error) still ends the connection our way.
            code, text = self._close_reason
            self._terminate(ConnectionClosed(code, text, "server"))
        elif self.state is not State.CLOSED:
            self._terminate(ConnectionLost(reason))

    # ---------------------------------------------------------------- time, driven by the caller

    def heartbeat_due(self, now: float) -> bool:
        """True when nothing was sent for heartbeat/2 seconds (RabbitMQ's send interval)."""
        if self.heartbeat == 0 or self.state not in (State.AWAIT_OPEN, State.OPEN):
            return False
        clock = self._clock
        if clock.tx_activity or clock.last_tx is None:
            clock.last_tx, clock.tx_activity = now, False
        return now - clock.last_tx >= self.heartbeat / 2

    def send_heartbeat(self) -> None:
        if self.state in (State.AWAIT_OPEN, State.OPEN):
            self._send_bytes(pamqp_heartbeat.Heartbeat.marshal())

    def check_timeout(self, now: float) -> bool:
        """Apply the handshake, close and heartbeat timeouts; True if the connection just died.

        Activity is stamped with the `now` of the first call that sees it, so call this at
        least every heartbeat/2 seconds (the server ticks every second).
        """
        clock = self._clock
        if self.state in _HANDSHAKE:
            if clock.handshake_started is None:
                clock.handshake_started = now
            elif now - clock.handshake_started >= self.config.handshake_timeout:
                self._terminate(ConnectionLost(f"handshake timeout after {self.config.handshake_timeout:g}s"))
                return True
            return False
        if self.state is State.CLOSING:
            if clock.closing_started is None:
                clock.closing_started = now
            elif now - clock.closing_started >= self.config.close_timeout:
                code, text = self._close_reason
                self._terminate(ConnectionClosed(code, text, "server"))
                return True
            return False
        if self.state is State.OPEN and self.heartbeat:
            if clock.rx_activity or clock.last_rx is None:
                clock.last_rx, clock.rx_activity = now, False
            elif now - clock.last_rx >= 2 * self.heartbeat:
                # Spec §4.2.7 / RabbitMQ: two missed intervals and the peer is considered dead.
                self._terminate(ConnectionLost(f"missed heartbeats from client, timeout: {self.heartbeat}s"))
                return True
        return False

    # ---------------------------------------------------------------- API for the broker side

    @property
    def open_channels(self) -> frozenset[int]:
        return frozenset(n for n, ch in self._channels.items() if ch.state is _ChannelState.OPEN)

    def channel_flow_active(self, channel: int) -> bool:
        ch = self._channels.get(channel)
        return ch is not None and ch.flow_active

    @property
    def supports_blocked(self) -> bool:
        return self._client_capability("connection.blocked")

    def send_method(self, channel: int, method: Method) -> None:
        """Queue a method on an open channel (dropped once the connection or channel closes)."""
        if self._can_send(channel):
            self._send_frame(channel, method)

    def send_content(
        self,
        channel: int,
        method: Method,
        properties: commands.Basic.Properties | None,
        body: bytes,
    ) -> None:
        """Queue a content-bearing method (Basic.Deliver, GetOk, Return) split to frame_max."""
        if self._can_send(channel):
            self._send_bytes(marshal_content(channel, method, properties, body, self.frame_max))

    def send_encoded(self, channel: int, data: bytes) -> None:
        """Queue frames already encoded for `channel` (dropped once the connection or channel
        closes); for deliveries written from `mqstudio.amqp.fastcodec` templates."""
        if self._can_send(channel):
            self._send_bytes(data)

    def block(self, reason: str) -> None:
        """Send Connection.Blocked (RabbitMQ extension) if the client announced support."""
        self._blocked_reason = reason
        self._flush_blocked()

    def unblock(self) -> None:
        self._blocked_reason = None
        if self._blocked_sent and self.state is State.OPEN:
            self._send_frame(0, commands.Connection.Unblocked())
        self._blocked_sent = False

    @property
    def blocked(self) -> bool:
        return self._blocked_reason is not None

    def close_channel(
        self, channel: int, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        """Soft error (spec §1.4.2.7 / channel.close): close one channel, keep the connection."""
        ch = self._channels.get(channel)
        if self.state is not State.OPEN or ch is None or ch.state is not _ChannelState.OPEN:
            return
        text = format_reply_text(reply_code, reply_text)
        ch.state = _ChannelState.CLOSING
        self._assembler.discard(channel)
        self._send_frame(channel, commands.Channel.Close(reply_code, text, class_id, method_id))
        self._events.append(ChannelClosed(channel, int(reply_code), text, "server"))

    def close_connection(
        self, reply_code: int = 200, reply_text: str = "", class_id: int = 0, method_id: int = 0
    ) -> None:
        """Hard error or shutdown: send Connection.Close and wait for Close-Ok.

        After this, every frame other than Connection.Close/Close-Ok is discarded (spec
        connection.close: "MUST discard … until it receives Close-Ok").
        """
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.state is State.AWAIT_HEADER:
            self._terminate(ConnectionLost("closed before the protocol header"))
            return
        text = format_reply_text(reply_code, reply_text or "Goodbye")  # 200 gets no prefix
        self._send_close(reply_code, text, class_id, method_id)
        self._close_reason = (int(reply_code), text)
        self.state = State.CLOSING
        self._clock.closing_started = None
        self._assembler.clear()
        self._channels.clear()

    def handle_error(self, channel: int, error: AmqpError) -> None:
        """Route an exception: soft codes close the channel, hard ones the connection."""
        if channel and not error.hard and channel in self.open_channels:
            self.close_channel(channel, error.reply_code, error.text, error.class_id, error.method_id)
        else:
            self.close_connection(error.reply_code, error.text, error.class_id, error.method_id)

    # ---------------------------------------------------------------- frame dispatch

    def _handle_frame(self, channel: int, frame: Frame) -> None:
        if isinstance(frame, pamqp_header.ProtocolHeader):
            self._send_start()
            return
        if self.state is State.CLOSING:
            self._while_closing(channel, frame)
            return
        try:
            if isinstance(frame, pamqp_heartbeat.Heartbeat):
                if channel != 0:
                    # Spec §4.2.7: a heartbeat on a non-zero channel is a 501 connection error.
                    raise FrameError(f"heartbeat frame on channel {channel}")
                return
            if channel == 0:
                if not isinstance(frame, Method):
                    raise AmqpError(ReplyCode.UNEXPECTED_FRAME, f"{frame.name} frame on channel 0")
                self._on_method0(frame)
            elif self.state is not State.OPEN:
                raise AmqpError(
                    ReplyCode.UNEXPECTED_FRAME,
                    f"{frame.name} frame on channel {channel} before the connection is open",
                )
            else:
                self._on_channel_frame(channel, frame)
        except AmqpError as exc:
            self.handle_error(channel, exc)

    def _while_closing(self, channel: int, frame: Frame) -> None:
        if channel != 0:
            return
        if isinstance(frame, commands.Connection.CloseOk):
            code, text = self._close_reason
            self._terminate(ConnectionClosed(code, text, "server"))
        elif isinstance(frame, commands.Connection.Close):
            # Both sides closed at once: answer theirs, keep waiting for our Close-Ok.
            self._send_frame(0, commands.Connection.CloseOk())

    def _on_method0(self, method: Method) -> None:
        state = self.state
        if isinstance(method, commands.Connection.Close):
            self._send_frame(0, commands.Connection.CloseOk())
            code = method.reply_code or 0
            self._terminate(ConnectionClosed(code, method.reply_text, "client"))
        elif state is State.AWAIT_START_OK and isinstance(method, commands.Connection.StartOk):
            self._on_start_ok(method)
        elif state is State.AWAIT_TUNE_OK and isinstance(method, commands.Connection.TuneOk):
            self._on_tune_ok(method)
        elif state is State.AWAIT_OPEN and isinstance(method, commands.Connection.Open):
            self._on_open(method)
        else:
            # rabbit_reader:handle_method0/2's catch-all: a hard CHANNEL_ERROR.
            raise AmqpError(
                ReplyCode.CHANNEL_ERROR,
                f"unexpected method {method_name(method)} in connection state {_RABBIT_STATE[state]}",
            ).for_method(method)

    # ---------------------------------------------------------------- handshake

    def _send_start(self) -> None:
        props = self.config.server_properties
        self._send_frame(
            0,
            commands.Connection.Start(
                version_major=0,
                version_minor=9,
                server_properties=dict(props) if props is not None else default_server_properties(),
                mechanisms=" ".join(self.config.mechanisms),
                locales=self.config.locales,
            ),
        )
        self.state = State.AWAIT_START_OK

    def _client_capability(self, name: str) -> bool:
        caps = self.client_properties.get("capabilities")
        return isinstance(caps, dict) and caps.get(name) is True

    def _on_start_ok(self, method: commands.Connection.StartOk) -> None:
        props = method.client_properties
        self.client_properties = dict(props) if isinstance(props, dict) else {}
        mechanism = method.mechanism
        if mechanism not in self.config.mechanisms:
            raise AmqpError(
                ReplyCode.COMMAND_INVALID, f"unknown authentication mechanism '{mechanism}'"
            ).for_method(method)
        try:
            credentials = parse_response(mechanism, method.response)
        except AuthError as exc:
            result = AuthResult("", False, str(exc))
        else:
            result = self.authenticator.authenticate(credentials, self.peer_host)
        if not result.ok:
            self._refuse_login(method, result)
            return
        self.username = result.username
        self._send_frame(
            0,
            commands.Connection.Tune(
                channel_max=self.channel_max, frame_max=self.config.frame_max, heartbeat=self.heartbeat
            ),
        )
        self.state = State.AWAIT_TUNE_OK

    def _refuse_login(self, method: commands.Connection.StartOk, result: AuthResult) -> None:
        mechanism = method.mechanism
        log.warning("AMQP login refused for %r from %s: %s", result.username, self.peer_host, result.reason)
        self._events.append(AuthenticationFailed(result.username, mechanism, result.reason))
        text = (
            f"Login was refused using authentication mechanism {mechanism}. "
            "For details see the broker logfile."
        )
        if self._client_capability("authentication_failure_close"):
            # RabbitMQ: clients announcing authentication_failure_close get a 403 Close…
            self.close_connection(ReplyCode.ACCESS_REFUSED, text, *method_ids(method))
        else:
            # …older ones just see the socket close, as the spec prescribes.
            self._terminate(ConnectionLost(f"authentication failed: {result.reason}"))

    def _on_tune_ok(self, method: commands.Connection.TuneOk) -> None:
        # Spec connection.tune-ok: the client may lower channel-max / frame-max; 0 means
        # "no limit of its own", so the server's proposal stands. RabbitMQ refuses higher values.
        server_channel_max = self.config.channel_max or 0xFFFF
        channel_max = method.channel_max or server_channel_max
        if channel_max > server_channel_max:
            raise AmqpError(
                ReplyCode.NOT_ALLOWED,
                f"negotiated channel_max = {channel_max} is higher than the maximum allowed value "
                f"({server_channel_max})",
            ).for_method(method)
        frame_max = method.frame_max or self.config.frame_max
        if frame_max < FRAME_MIN_SIZE:
            raise AmqpError(
                ReplyCode.NOT_ALLOWED, f"frame_max={frame_max} < {FRAME_MIN_SIZE} min size"
            ).for_method(method)
        if frame_max > self.config.frame_max:
            raise AmqpError(
                ReplyCode.NOT_ALLOWED, f"frame_max={frame_max} > {self.config.frame_max} max size"
            ).for_method(method)
        self.channel_max = channel_max
        self.frame_max = frame_max
        # The client's heartbeat is final, 0 included (heartbeats off), as in RabbitMQ.
        self.heartbeat = method.heartbeat
        self._frames.frame_max = frame_max
        self.state = State.AWAIT_OPEN

    def _on_open(self, method: commands.Connection.Open) -> None:
        vhost = method.virtual_host
        username = self.username or ""
        access = self.authenticator.vhost_access(username, vhost)
        if access is VhostAccess.NO_SUCH_VHOST:
            raise AmqpError(ReplyCode.NOT_ALLOWED, f"vhost {vhost} not found").for_method(method)
        if access is not VhostAccess.GRANTED:
            raise AmqpError(
                ReplyCode.NOT_ALLOWED, f"access to vhost '{vhost}' refused for user '{username}'"
            ).for_method(method)
        self.vhost = vhost
        self._send_frame(0, commands.Connection.OpenOk())
        self.state = State.OPEN
        self._events.append(
            HandshakeCompleted(
                username, vhost, self.client_properties, self.channel_max, self.frame_max, self.heartbeat
            )
        )
        self._flush_blocked()

    # ---------------------------------------------------------------- channels

    def _on_channel_frame(self, channel: int, frame: Frame) -> None:
        ch = self._channels.get(channel)
        if ch is not None and ch.state is _ChannelState.OPEN and type(frame) not in _CHANNEL_LEVEL:
            # Content and channel-layer methods (publish, ack, …): straight to the assembler.
            command = self._assembler.feed(channel, frame)
            if command is not None:
                self._events.append(MethodReceived(channel, command.method, command.header, command.body))
            return
        if ch is not None and ch.state is _ChannelState.CLOSING:
            # Spec channel.close: after sending Close, discard all but Close / Close-Ok.
            if isinstance(frame, commands.Channel.CloseOk):
                del self._channels[channel]
            elif isinstance(frame, commands.Channel.Close):
                self._send_frame(channel, commands.Channel.CloseOk())
            return
        if ch is None:
            self._on_unopened_channel(channel, frame)
            return
        if (
            not self._assembler.pending(channel)
            and isinstance(frame, Method)
            and self._on_channel_method(channel, ch, frame)
        ):
            return
        command = self._assembler.feed(channel, frame)
        if command is not None:
            self._events.append(MethodReceived(channel, command.method, command.header, command.body))

    def _on_unopened_channel(self, channel: int, frame: Frame) -> None:
        if not isinstance(frame, Method):
            # RabbitMQ's assembler sees a content frame where a method must start.
            raise AmqpError(
                ReplyCode.UNEXPECTED_FRAME,
                f"expected method frame, got non method frame instead (channel {channel})",
            )
        if not isinstance(frame, commands.Channel.Open):
            raise AmqpError(
                ReplyCode.CHANNEL_ERROR,
                f"expected 'channel.open' on channel {channel}, got '{method_name(frame)}'",
            ).for_method(frame)
        if channel > self.channel_max:
            raise AmqpError(
                ReplyCode.CHANNEL_ERROR,
                f"channel {channel} is above the negotiated channel_max ({self.channel_max})",
            ).for_method(frame)
        self._channels[channel] = _Channel()
        self._send_frame(channel, commands.Channel.OpenOk())
        self._events.append(ChannelOpened(channel))

    def _on_channel_method(self, channel: int, ch: _Channel, method: Method) -> bool:
        """Channel- and connection-class methods on an open channel; False passes it on."""
        if isinstance(method, commands.Channel.Open):
            raise AmqpError(ReplyCode.CHANNEL_ERROR, "second 'channel.open' seen").for_method(method)
        if isinstance(method, commands.Channel.Close):
            del self._channels[channel]
            self._assembler.discard(channel)
            self._send_frame(channel, commands.Channel.CloseOk())
            code = method.reply_code or 0
            self._events.append(ChannelClosed(channel, code, method.reply_text, "client"))
            return True
        if isinstance(method, commands.Channel.Flow):
            ch.flow_active = bool(method.active)
            self._send_frame(channel, commands.Channel.FlowOk(active=ch.flow_active))
            self._events.append(ChannelFlow(channel, ch.flow_active))
            return True
        if isinstance(method, commands.Channel.FlowOk):
            return True  # we never send Channel.Flow (RabbitMQ uses connection.blocked instead)
        if isinstance(method, commands.Channel.CloseOk) or method_ids(method)[0] == 10:
            raise AmqpError(
                ReplyCode.COMMAND_INVALID,
                f"unexpected method {method_name(method)} on channel {channel}",
            ).for_method(method)
        return False

    # ---------------------------------------------------------------- output and termination

    def _can_send(self, channel: int) -> bool:
        if self.state is not State.OPEN:
            return False
        if channel == 0:
            return True
        ch = self._channels.get(channel)
        return ch is not None and ch.state is _ChannelState.OPEN

    def _flush_blocked(self) -> None:
        if (
            self._blocked_reason is not None
            and not self._blocked_sent
            and self.state is State.OPEN
            and self.supports_blocked
        ):
            self._send_frame(0, commands.Connection.Blocked(reason=self._blocked_reason))
            self._blocked_sent = True

    def _send_close(self, code: int, text: str, class_id: int, method_id: int) -> None:
        self._send_frame(0, commands.Connection.Close(code, text, class_id, method_id))

    def _send_frame(self, channel: int, frame: Frame) -> None:
        self._send_bytes(marshal(frame, channel))

    def _send_bytes(self, data: bytes) -> None:
        was_empty = not self._out
        self._out += data
        if was_empty and self.output_ready is not None:
            self.output_ready()

    def _terminate(self, event: ConnectionTerminated) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._channels.clear()
        self._assembler.clear()
        self._events.append(event)
