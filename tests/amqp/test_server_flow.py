"""The asyncio adapter's listeners (127.0.0.1 and ::1) and output flow control (back-pressure)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pamqp import commands
from pamqp.body import ContentBody

from mqstudio.amqp.connection import Connection, ConnectionConfig, WritingResumed
from mqstudio.amqp.framing import PROTOCOL_HEADER, FrameBuffer
from mqstudio.amqp.server import AmqpServer
from mqstudio.amqp.service import BrokerService
from mqstudio.broker.broker import Broker
from mqstudio.broker.message import Properties

from .test_connection import LOOPBACK, to_open_wait
from .test_connection import wire as conn_wire
from .test_robustness import RawClient, wire
from .test_server_pika import WAIT, LoopThread


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback here")


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


def greets_with_connection_start(address: tuple[str, int]) -> bool:
    """Connect, send the protocol header, and see Connection.Start come back."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(WAIT)
        s.connect(address)
        s.sendall(PROTOCOL_HEADER)
        frames = FrameBuffer(0, expect_header=False)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return False
            got = frames.feed(chunk)
            if got:
                return isinstance(got[0][1], commands.Connection.Start)


# ------------------------------------------------------------------------------ listeners


@needs_ipv6
def test_default_host_listens_on_both_loopbacks_with_one_port(loop_thread: LoopThread) -> None:
    server = AmqpServer()
    host, port = loop_thread.run(server.start("127.0.0.1", 0))
    try:
        assert server.addresses == [("127.0.0.1", port), ("::1", port)]
        assert greets_with_connection_start(("127.0.0.1", port))
        assert greets_with_connection_start(("::1", port))
    finally:
        loop_thread.run(server.stop(grace=0))
    assert host == "127.0.0.1"


def test_ipv6_loopback_can_be_turned_off(loop_thread: LoopThread) -> None:
    server = AmqpServer()
    _, port = loop_thread.run(server.start("127.0.0.1", 0, ipv6_loopback=False))
    try:
        assert server.addresses == [("127.0.0.1", port)]
    finally:
        loop_thread.run(server.stop(grace=0))


@needs_ipv6
def test_port_taken_on_ipv6_loopback_falls_back_to_a_port_free_on_both(loop_thread: LoopThread) -> None:
    with socket.socket(socket.AF_INET6) as blocker:
        blocker.bind(("::1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        if taken >= 65535 - 20:
            pytest.skip("no room above the OS-chosen port")
        server = AmqpServer()
        _, port = loop_thread.run(server.start("127.0.0.1", taken, port_fallback=True))
        try:
            assert taken < port <= taken + 20
            assert server.addresses == [("127.0.0.1", port), ("::1", port)]
        finally:
            loop_thread.run(server.stop(grace=0))


@needs_ipv6
def test_explicit_port_taken_on_ipv6_loopback_still_serves_ipv4(loop_thread: LoopThread) -> None:
    with socket.socket(socket.AF_INET6) as blocker:
        blocker.bind(("::1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        server = AmqpServer()
        try:
            _, port = loop_thread.run(server.start("127.0.0.1", taken, port_fallback=False))
        except OSError:
            pytest.skip("the port is taken on 127.0.0.1 too")
        try:
            assert port == taken
            assert server.addresses == [("127.0.0.1", taken)]
            assert greets_with_connection_start(("127.0.0.1", taken))
        finally:
            loop_thread.run(server.stop(grace=0))


def test_server_stops_every_listener(loop_thread: LoopThread) -> None:
    server = AmqpServer()
    loop_thread.run(server.start("127.0.0.1", 0))
    addresses = server.addresses
    loop_thread.run(server.stop(grace=0))
    for address in addresses:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        with socket.socket(family) as s, pytest.raises(OSError):
            s.settimeout(WAIT)
            s.connect(address)


# ------------------------------------------------------------------------------ back-pressure

HIGH = 64 * 1024
LOW = 16 * 1024
BODY = b"m" * 1024
BATCH = 500
BATCHES = 40  # 20,000 messages, ~20 MiB on the wire: far more than the kernel's socket buffers


class SlowClient(RawClient):
    """A RawClient with a small receive buffer, so the kernel cannot hide a slow reader."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(WAIT)
        self.sock.connect(address)
        self._frames = FrameBuffer(1 << 20, expect_header=False)
        self._pending = []
        self.raw = bytearray()


def test_slow_no_ack_consumer_is_held_at_the_high_water_mark(loop_thread: LoopThread) -> None:
    broker = Broker()
    service = BrokerService(broker)
    server = AmqpServer(
        config=ConnectionConfig(write_high_water=HIGH, write_low_water=LOW), event_handler=service
    )
    address = loop_thread.run(server.start("127.0.0.1", 0, ipv6_loopback=False))
    client = SlowClient(address)
    try:
        client.handshake(frame_max=131072)
        client.send(
            wire(
                (1, commands.Queue.Declare(queue="slow")),
                (1, commands.Basic.Consume(queue="slow", consumer_tag="c", no_ack=True)),
            )
        )
        client.expect(commands.Queue.DeclareOk, channel=1)
        client.expect(commands.Basic.ConsumeOk, channel=1)

        async def publish_batch() -> tuple[int, int, bool, int]:
            for _ in range(BATCH):
                broker.publish("/", "", "slow", Properties(), BODY)
            service.flush()
            [protocol] = server._protocols
            transport: Any = protocol._transport
            conn = protocol.connection
            assert conn is not None
            [handler] = service.channels()
            return (
                transport.get_write_buffer_size(),
                len(conn._out),
                transport.is_reading(),
                len(handler.session.outbox),
            )

        samples = [loop_thread.run(publish_batch()) for _ in range(BATCHES)]
        buffered = [transport + queued for transport, queued, _, _ in samples]
        # Bounded by the high-water mark plus one batch of deliveries, whatever was published.
        bound = HIGH + 256 * (len(BODY) + 200)
        assert max(buffered) <= bound, max(buffered)
        # The rest waits in the session, and reading from the peer is paused meanwhile.
        assert samples[-1][3] > 0
        assert not samples[-1][2]

        # Once the client reads, everything arrives, in order, and reading resumes.
        tags: list[int] = []
        received = 0
        while received < BATCH * BATCHES:
            got = client.recv_frame()
            assert got is not None
            frame = got[1]
            if isinstance(frame, commands.Basic.Deliver):
                tags.append(frame.delivery_tag)
            elif isinstance(frame, ContentBody):
                received += 1
        assert tags == list(range(1, BATCH * BATCHES + 1))

        async def reading() -> bool:
            [protocol] = server._protocols
            transport: Any = protocol._transport
            return bool(transport.is_reading())

        assert loop_thread.run(reading())
    finally:
        client.close()
        loop_thread.run(server.stop(grace=0))
        with contextlib.suppress(Exception):
            service.close()


# ------------------------------------------------------------------------------ sans-I/O flow control


def test_connection_is_not_writable_above_the_high_water_mark_and_says_when_it_is_again() -> None:
    conn = Connection(config=ConnectionConfig(write_high_water=1000, write_low_water=100), peer=LOOPBACK)
    to_open_wait(conn)
    conn.receive_data(conn_wire((0, commands.Connection.Open("/")), (1, commands.Channel.Open())))
    conn.data_to_send()
    conn.drain_events()
    assert conn.writable
    conn.send_encoded(1, b"x" * 1000)  # queued here, not yet taken by the adapter
    assert not conn.writable
    conn.want_writable()
    assert conn.drain_events() == []
    conn.data_to_send()
    assert conn.writable
    assert conn.drain_events() == [WritingResumed()]  # exactly once
    conn.data_to_send()
    assert conn.drain_events() == []

    conn.pause_writing()  # the transport is above its own high-water mark
    assert not conn.writable
    conn.want_writable()
    conn.data_to_send()
    assert conn.drain_events() == []  # still paused: no wake-up
    conn.resume_writing()
    assert conn.writable
    assert conn.drain_events() == [WritingResumed()]
