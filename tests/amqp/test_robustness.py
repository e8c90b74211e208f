"""Malformed input over a raw socket against a running AmqpServer, and bad logins from pika.

Each case opens a healthy pika connection first, then a raw socket that completes the handshake
by hand (channel 1 open) and sends one kind of bad input. The server must answer with the reply
code the spec / RabbitMQ uses (decoded from its Connection.Close with pamqp) or with its protocol
header and a close, and the healthy connection must keep working afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pika
import pika.exceptions
import pytest
from pamqp import commands
from pamqp.base import Frame as Method
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.connection import ConnectionConfig
from mqstudio.amqp.framing import PROTOCOL_HEADER, Frame, FrameBuffer, ReplyCode, marshal
from mqstudio.amqp.server import AmqpServer
from mqstudio.amqp.service import BrokerService
from mqstudio.broker.broker import Broker

from .conftest import RunningBroker
from .test_server_pika import WAIT, LoopThread

pytestmark = pytest.mark.timeout(60)

#: The frame_max the raw client negotiates, small so "oversized" stays cheap.
RAW_FRAME_MAX = 4096


# ------------------------------------------------------------------------------ server


@dataclass
class RunningServer:
    """A broker served with a ConnectionConfig of the test's choosing (the fixture uses defaults)."""

    server: AmqpServer
    service: BrokerService

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address


def start_server(loop_thread: LoopThread, config: ConnectionConfig | None = None) -> RunningServer:
    service = BrokerService(Broker())
    auth = InMemoryAuthenticator([User.create("guest", "guest", loopback_only=True)], vhosts=["/"])
    server = AmqpServer(authenticator=auth, config=config, event_handler=service, tick_interval=0.1)
    loop_thread.run(server.start(port=0))
    return RunningServer(server, service)


def stop_server(loop_thread: LoopThread, running: RunningServer) -> None:
    async def stop() -> None:
        await running.server.stop(grace=0.2)
        running.service.close()

    loop_thread.run(stop())


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


def address(running: RunningBroker) -> tuple[str, int]:
    return running.host, running.port


def pika_params(
    address: tuple[str, int], password: str = "guest", vhost: str = "/"
) -> pika.ConnectionParameters:
    host, port = address
    return pika.ConnectionParameters(
        host=host,
        port=port,
        virtual_host=vhost,
        credentials=pika.PlainCredentials("guest", password),
        connection_attempts=1,
        heartbeat=0,
        blocked_connection_timeout=None,
    )


def exercise(connection: pika.BlockingConnection, tag: str) -> None:
    """Prove a connection is healthy: declare a queue, publish to it and get the message back."""
    channel = connection.channel()
    queue = f"robustness-{tag}"
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"still alive")
    method, _props, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None, "the published message must be there"
    assert body == b"still alive"
    channel.queue_delete(queue)
    channel.close()
    assert connection.is_open


# ------------------------------------------------------------------------------ raw client


def wire(*frames: tuple[int, Frame]) -> bytes:
    return b"".join(marshal(f, ch) for ch, f in frames)


def raw_frame(frame_type: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes([end])


class RawClient:
    """A hand-driven AMQP client on a blocking socket."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=WAIT)
        self._frames = FrameBuffer(1 << 20, expect_header=False)
        self._pending: list[tuple[int, Frame]] = []
        self.raw = bytearray()  # every octet received, for the protocol-header cases

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_to_eof(self) -> bytes:
        """Every octet until the server closes, undecoded."""
        received = bytearray()
        while chunk := self.sock.recv(65536):
            received += chunk
        return bytes(received)

    def recv_frame(self) -> tuple[int, Frame] | None:
        """The next frame from the server, or None at EOF."""
        while not self._pending:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.raw += chunk
            self._pending.extend(self._frames.feed(chunk))
        return self._pending.pop(0)

    def expect(self, kind: type[Method], channel: int = 0) -> Method:
        got = self.recv_frame()
        assert got is not None, f"EOF while waiting for {kind.__name__}"
        assert got[0] == channel and isinstance(got[1], kind), got
        return got[1]

    def handshake(self, frame_max: int = RAW_FRAME_MAX, open_channel: bool = True) -> None:
        self.send(PROTOCOL_HEADER)
        self.expect(commands.Connection.Start)
        self.send(
            wire(
                (
                    0,
                    commands.Connection.StartOk(
                        client_properties={"product": "raw"}, mechanism="PLAIN", response="\0guest\0guest"
                    ),
                )
            )
        )
        self.expect(commands.Connection.Tune)
        self.send(
            wire(
                (0, commands.Connection.TuneOk(channel_max=16, frame_max=frame_max, heartbeat=0)),
                (0, commands.Connection.Open(virtual_host="/")),
            )
        )
        self.expect(commands.Connection.OpenOk)
        if open_channel:
            self.send(wire((1, commands.Channel.Open())))
            self.expect(commands.Channel.OpenOk, channel=1)

    def await_close(self) -> commands.Connection.Close | None:
        """Read until Connection.Close (answered with Close-Ok) and then EOF; None if EOF first."""
        close: commands.Connection.Close | None = None
        while (got := self.recv_frame()) is not None:
            _, frame = got
            if isinstance(frame, commands.Connection.Close):
                close = frame
                # A frame error closes without waiting for our Close-Ok.
                with contextlib.suppress(OSError):
                    self.send(wire((0, commands.Connection.CloseOk())))
        return close


# ------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    reply_code: int


def _publish_header(channel: int, body_size: int) -> bytes:
    return wire(
        (channel, commands.Basic.Publish(exchange="", routing_key="nowhere")),
        (channel, ContentHeader(body_size=body_size, properties=commands.Basic.Properties())),
    )


CASES = [
    Case("wrong-frame-end-octet", raw_frame(1, 1, struct.pack(">HH", 60, 40) + b"\x00" * 4, end=0x00), 501),
    Case("unknown-frame-type", raw_frame(5, 0, b"hello"), 501),
    Case(
        "content-header-without-publish",
        wire((1, ContentHeader(body_size=3, properties=commands.Basic.Properties()))),
        505,
    ),
    Case("content-body-without-publish", wire((1, ContentBody(b"abc"))), 505),
    Case("method-on-unopened-channel", wire((3, commands.Basic.Qos(prefetch_count=1))), 504),
    Case("second-channel-open", wire((1, commands.Channel.Open())), 504),
    Case("oversized-frame", raw_frame(3, 1, b"x" * (RAW_FRAME_MAX + 100)), 501),
    Case("oversized-header-announced", struct.pack(">BHI", 3, 1, 0x7FFFFFFF), 501),
    Case("body-larger-than-declared", _publish_header(1, 5) + wire((1, ContentBody(b"0123456789"))), 505),
    Case(
        "method-inside-content", _publish_header(1, 5) + wire((1, commands.Basic.Qos(prefetch_count=1))), 505
    ),
    Case("heartbeat-on-channel-1", raw_frame(8, 1, b""), 501),
    Case("heartbeat-with-payload", raw_frame(8, 0, b"xx"), 501),
    Case("garbage-after-handshake", b"GET / HTTP/1.1\r\nHost: broker\r\n\r\n", 501),
    Case("undecodable-method-arguments", raw_frame(1, 1, struct.pack(">HH", 50, 10) + b"\xff"), 501),
    Case("unknown-method-id", raw_frame(1, 1, struct.pack(">HH", 60, 999)), 501),
    Case("handshake-method-after-open", wire((0, commands.Connection.Open(virtual_host="/"))), 504),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_gets_its_reply_code_and_spares_other_connections(
    broker_server: RunningBroker, case: Case
) -> None:
    healthy = pika.BlockingConnection(pika_params(address(broker_server)))
    try:
        raw = RawClient(address(broker_server))
        try:
            raw.handshake()
            raw.send(case.payload)
            close = raw.await_close()
        finally:
            raw.close()
        assert close is not None, "the server must explain itself with Connection.Close"
        assert close.reply_code == case.reply_code, close.reply_text
        assert close.reply_text.startswith(ReplyCode(case.reply_code).name), close.reply_text
        exercise(healthy, case.name)
    finally:
        healthy.close()


@pytest.mark.parametrize(
    "header",
    [
        b"AMQP\x00\x00\x09\x02",
        b"AMQP\x01\x01\x00\x0a",
        b"AMQP\x00\x00\x08\x00",
        b"\x16\x03\x01\x02\x00\x01\x00\x01",
    ],
    ids=["0-9-2", "amqp-1.0", "0-8", "tls-hello"],
)
def test_bad_protocol_header_is_answered_with_ours_and_closed(
    broker_server: RunningBroker, header: bytes
) -> None:
    healthy = pika.BlockingConnection(pika_params(address(broker_server)))
    try:
        raw = RawClient(address(broker_server))
        try:
            raw.send(header)
            received = raw.read_to_eof()
        finally:
            raw.close()
        assert received == PROTOCOL_HEADER
        exercise(healthy, "header")
    finally:
        healthy.close()


def test_method_on_channel_1_before_open_is_unexpected(broker_server: RunningBroker) -> None:
    raw = RawClient(address(broker_server))
    try:
        raw.send(PROTOCOL_HEADER)
        raw.expect(commands.Connection.Start)
        raw.send(wire((1, commands.Channel.Open())))
        close = raw.await_close()
    finally:
        raw.close()
    assert close is not None
    assert close.reply_code == ReplyCode.UNEXPECTED_FRAME


def test_bad_frame_split_across_many_writes_gets_the_same_reply(broker_server: RunningBroker) -> None:
    raw = RawClient(address(broker_server))
    try:
        raw.handshake()
        for octet in raw_frame(1, 1, struct.pack(">HH", 60, 40) + b"\x00" * 4, end=0x00):
            raw.send(bytes([octet]))
        close = raw.await_close()
    finally:
        raw.close()
    assert close is not None
    assert close.reply_code == ReplyCode.FRAME_ERROR


def test_peer_that_never_answers_close_ok_is_still_disconnected(loop_thread: LoopThread) -> None:
    srv = start_server(loop_thread, ConnectionConfig(close_timeout=0.3))
    try:
        raw = RawClient(srv.address)
        try:
            raw.handshake()
            raw.send(wire((5, commands.Basic.Qos(prefetch_count=1))))  # 504, Close-Ok awaited
            frames = []
            while (got := raw.recv_frame()) is not None:  # no Close-Ok from us: EOF must come
                frames.append(got[1])
        finally:
            raw.close()
        assert [type(f) for f in frames] == [commands.Connection.Close]
    finally:
        stop_server(loop_thread, srv)


# ------------------------------------------------------------------------------ bad logins


def test_wrong_password_raises_pikas_authentication_error(broker_server: RunningBroker) -> None:
    refused = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    with pytest.raises(refused) as info:
        pika.BlockingConnection(pika_params(address(broker_server), password="not-the-password"))
    assert "ACCESS_REFUSED" in str(info.value)
    healthy = pika.BlockingConnection(pika_params(address(broker_server)))
    exercise(healthy, "after-bad-password")
    healthy.close()


def test_unknown_vhost_is_refused_with_530(broker_server: RunningBroker) -> None:
    refused = (pika.exceptions.ProbableAccessDeniedError, pika.exceptions.ConnectionClosedByBroker)
    with pytest.raises(refused) as info:
        pika.BlockingConnection(pika_params(address(broker_server), vhost="no-such-vhost"))
    error = info.value
    if isinstance(error, pika.exceptions.ConnectionClosedByBroker):
        assert error.reply_code == 530
    else:
        assert "530" in str(error)
    assert "NOT_ALLOWED - vhost no-such-vhost not found" in str(error)


def test_heartbeat_frames_from_the_client_are_accepted(broker_server: RunningBroker) -> None:
    raw = RawClient(address(broker_server))
    try:
        raw.handshake()
        raw.send(wire((0, Heartbeat()), (0, Heartbeat()), (1, commands.Channel.Close(200, "bye", 0, 0))))
        raw.expect(commands.Channel.CloseOk, channel=1)
        raw.send(wire((0, commands.Connection.Close(200, "bye", 0, 0))))
        raw.expect(commands.Connection.CloseOk)
        assert raw.recv_frame() is None
    finally:
        raw.close()
