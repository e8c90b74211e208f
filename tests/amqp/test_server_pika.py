"""AmqpServer against real clients (pika BlockingConnection, aio-pika) on a free port."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pika
import pika.exceptions
import pytest
from pamqp import commands

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.connection import (
    ChannelClosed,
    ChannelOpened,
    Connection,
    ConnectionClosed,
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    MethodReceived,
)
from mqstudio.amqp.framing import PROTOCOL_HEADER
from mqstudio.amqp.server import AmqpServer, reject_unimplemented

T = TypeVar("T")
WAIT = 10.0  # generous upper bound for a background event; never asserted as a duration


class Recorder:
    """Event handler that records events, then behaves like the default handler."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.terminated = threading.Event()
        #: Stand in for the future channel layer on basic.qos (aio-pika's robust channel sends it).
        self.answer_qos = False

    def __call__(self, connection: Connection, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, ConnectionTerminated):
            self.terminated.set()
        if (
            self.answer_qos
            and isinstance(event, MethodReceived)
            and isinstance(event.method, commands.Basic.Qos)
        ):
            connection.send_method(event.channel, commands.Basic.QosOk())
            return
        reject_unimplemented(connection, event)


class LoopThread:
    """An asyncio loop running in a daemon thread, like the app's broker thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="amqp-test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=WAIT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=WAIT)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(loop_thread: LoopThread, recorder: Recorder) -> Iterator[AmqpServer]:
    auth = InMemoryAuthenticator(
        [User.create("guest", "guest", loopback_only=True), User.create("bob", "pw", vhosts=["/"])],
        vhosts=["/", "other"],
    )
    srv = AmqpServer(authenticator=auth, event_handler=recorder)
    loop_thread.run(srv.start(port=0))
    yield srv
    loop_thread.run(srv.stop(grace=0.2))


def params(
    server: AmqpServer, user: str = "guest", password: str = "guest", vhost: str = "/"
) -> pika.ConnectionParameters:
    host, port = server.address
    return pika.ConnectionParameters(
        host=host,
        port=port,
        virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1,
        blocked_connection_timeout=None,
    )


def test_server_binds_loopback_on_a_free_port(server: AmqpServer) -> None:
    host, port = server.address
    assert host == "127.0.0.1"
    assert port > 0
    assert server.is_serving


def test_pika_connects_opens_and_closes_cleanly(server: AmqpServer, recorder: Recorder) -> None:
    connection = pika.BlockingConnection(params(server))
    assert connection.is_open
    channel = connection.channel()
    assert channel.is_open
    channel.close()
    assert channel.is_closed
    connection.close()
    assert connection.is_closed

    assert recorder.terminated.wait(WAIT)
    kinds = [type(e) for e in recorder.events]
    assert kinds == [HandshakeCompleted, ChannelOpened, ChannelClosed, ConnectionClosed]
    handshake = recorder.events[0]
    assert isinstance(handshake, HandshakeCompleted)
    assert handshake.username == "guest"
    assert handshake.client_properties.get("product") == "Pika Python Client Library"
    closed = recorder.events[-1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.initiator == "client"


def test_pika_wrong_password_raises_an_authentication_error(server: AmqpServer) -> None:
    refused = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    with pytest.raises(refused) as info:
        pika.BlockingConnection(params(server, password="wrong"))
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(info.value)


def test_pika_unknown_vhost_is_refused_with_530(server: AmqpServer) -> None:
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(params(server, vhost="nope"))
    assert "NOT_ALLOWED - vhost nope not found" in str(info.value)


def test_pika_vhost_without_permission_is_refused_with_530(server: AmqpServer) -> None:
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(params(server, user="bob", password="pw", vhost="other"))
    assert "access to vhost 'other' refused for user 'bob'" in str(info.value)


def test_pika_publish_fails_clearly_until_the_channel_layer_exists(server: AmqpServer) -> None:
    connection = pika.BlockingConnection(params(server))
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        channel.queue_declare("orders")
    assert info.value.reply_code == 540
    assert info.value.reply_text == "NOT_IMPLEMENTED - not implemented yet: queue.declare"


def test_aio_pika_connect_robust_opens_and_closes(server: AmqpServer, recorder: Recorder) -> None:
    aio_pika = pytest.importorskip("aio_pika")
    host, port = server.address
    recorder.answer_qos = True

    async def session() -> None:
        connection = await aio_pika.connect_robust(host=host, port=port, login="guest", password="guest")
        channel = await connection.channel(publisher_confirms=False)
        assert not channel.is_closed
        await channel.close()
        await connection.close()

    asyncio.run(asyncio.wait_for(session(), WAIT))
    assert recorder.terminated.wait(WAIT)
    assert ChannelOpened(1) in recorder.events


def test_wrong_protocol_header_gets_our_header_then_eof(server: AmqpServer) -> None:
    with socket.create_connection(server.address, timeout=WAIT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(64):
            received += chunk
    assert received == PROTOCOL_HEADER


def test_eof_mid_handshake_is_reported_as_lost(server: AmqpServer, recorder: Recorder) -> None:
    with socket.create_connection(server.address, timeout=WAIT) as sock:
        sock.sendall(PROTOCOL_HEADER)
        assert sock.recv(1)  # Connection.Start is on its way
    assert recorder.terminated.wait(WAIT)
    assert type(recorder.events[-1]).__name__ == "ConnectionLost"


def test_taken_port_falls_back_to_the_next_free_one(loop_thread: LoopThread) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        if taken >= 65535 - 20:
            pytest.skip("no room above the OS-chosen port")
        srv = AmqpServer()
        host, port = loop_thread.run(srv.start(port=taken, port_fallback=True))
        try:
            assert host == "127.0.0.1"
            assert port != taken
            assert taken < port <= taken + 20
            assert srv.address == (host, port)
        finally:
            loop_thread.run(srv.stop(grace=0))

        strict = AmqpServer()
        with pytest.raises(OSError):
            loop_thread.run(strict.start(port=taken, port_fallback=False))
