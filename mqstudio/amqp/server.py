"""asyncio adapter of the AMQP front-end: sockets in, `Connection` objects, sockets out.

Owns the listening socket, one asyncio.Protocol per client moving bytes to and from its sans-I/O
`Connection`, event dispatch to a pluggable handler, and the one-second tick that drives
heartbeats and timeouts with the loop's clock. No protocol decisions are made here.

Binds the loopback addresses unless told otherwise (never 0.0.0.0 by default): 127.0.0.1 and, when
the host has IPv6, ::1 on the same port, so clients resolving "localhost" to either reach us. Port 0
asks the OS for a free port (tests); the default port 5672, if taken (on either address), falls back
to the next free port. The IPv4 address actually bound is `AmqpServer.address`; `addresses` lists
every listener.

Everything runs on the event loop's thread, including the event handler and any
`Connection.send_*` call made by the broker side.

Must not import: Qt, pika, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from typing import Protocol

from pamqp import commands

from mqstudio.amqp.auth import Authenticator, InMemoryAuthenticator
from mqstudio.amqp.connection import (
    AcksReceived,
    Connection,
    ConnectionConfig,
    ConnectionTerminated,
    Event,
    MethodReceived,
)
from mqstudio.amqp.framing import ReplyCode, method_ids, method_name

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "IPV6_LOOPBACK",
    "AmqpServer",
    "EventHandler",
    "reject_unimplemented",
]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Also bound, on the same port, when listening on DEFAULT_HOST.
IPV6_LOOPBACK = "::1"
DEFAULT_PORT = 5672
#: How many ports above a taken default port are tried before giving up.
PORT_FALLBACK_ATTEMPTS = 20


class EventHandler(Protocol):
    """Receives every event of every connection, on the loop thread, in order."""

    def __call__(self, connection: Connection, event: Event, /) -> None: ...


def reject_unimplemented(connection: Connection, event: Event) -> None:
    """Default handler until the channel layer exists: fail clearly with 540 NOT_IMPLEMENTED."""
    if isinstance(event, MethodReceived | AcksReceived):
        method = event.method if isinstance(event, MethodReceived) else commands.Basic.Ack()
        connection.close_connection(
            ReplyCode.NOT_IMPLEMENTED, f"not implemented yet: {method_name(method)}", *method_ids(method)
        )


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, server: AmqpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._flush_scheduled = False
        self.connection: Connection | None = None

    # asyncio.Protocol callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        config = self._server.config
        transport.set_write_buffer_limits(high=config.write_high_water, low=config.write_low_water)
        peername = transport.get_extra_info("peername")
        peer = (str(peername[0]), int(peername[1])) if isinstance(peername, tuple) else None
        self.connection = Connection(self._server.authenticator, self._server.config, peer)
        self.connection.output_ready = self._schedule_flush
        self._server._protocols.add(self)
        log.debug("AMQP client connected from %s", peer)

    def data_received(self, data: bytes) -> None:
        assert self.connection is not None
        self.connection.receive_data(data)
        self.pump()

    def eof_received(self) -> bool:
        if self.connection is not None:
            self.connection.connection_lost("client closed the socket")
            self.pump()
        return False  # let asyncio close the transport

    def pause_writing(self) -> None:
        # The peer does not read as fast as we write: stop producing output for it (deliveries
        # wait in their sessions) and stop reading from it (a publisher waits in TCP), so its
        # output buffer cannot grow without bound.
        if self.connection is not None:
            self.connection.pause_writing()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self.connection is not None:
            self.connection.resume_writing()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
        self._schedule_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._protocols.discard(self)
        if self.connection is not None:
            reason = f"socket error: {exc}" if exc else "client closed the socket"
            self.connection.connection_lost(reason)
            self._dispatch()
        self._transport = None

    # moving bytes and events --------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.pump)

    def pump(self) -> None:
        """Dispatch pending events, write pending bytes, close the socket once closed."""
        self._flush_scheduled = False
        conn = self.connection
        if conn is None:
            return
        self._dispatch()
        data = conn.data_to_send()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if data:
            transport.write(data)
        if conn.closed:
            transport.close()  # writes what is buffered first
        elif conn.has_events:
            self._schedule_flush()  # e.g. WritingResumed, raised while taking the output

    def _dispatch(self) -> None:
        conn = self.connection
        assert conn is not None
        handler = self._server.event_handler
        # Whole batches, in order; events a handler raises meanwhile come in the next batch,
        # behind the rest of this one, as a queue would have them.
        while conn.has_events:
            for event in conn.drain_events():
                try:
                    handler(conn, event)
                except Exception:  # a broker bug must not kill the loop; the client gets 541
                    log.exception("AMQP event handler failed on %r", event)
                    conn.close_connection(ReplyCode.INTERNAL_ERROR, "internal error, see the broker log")
                if type(event) is not MethodReceived and isinstance(event, ConnectionTerminated):
                    log.debug("AMQP connection from %s ended: %r", conn.peer_host, event)

    def tick(self, now: float) -> None:
        conn = self.connection
        if conn is None:
            return
        if not conn.check_timeout(now) and conn.heartbeat_due(now):
            conn.send_heartbeat()
        self.pump()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class AmqpServer:
    """Listens for AMQP 0-9-1 clients and runs one `Connection` per socket."""

    def __init__(
        self,
        authenticator: Authenticator | None = None,
        config: ConnectionConfig | None = None,
        event_handler: EventHandler | None = None,
        tick_interval: float = 1.0,
    ) -> None:
        self.authenticator: Authenticator = authenticator or InMemoryAuthenticator()
        self.config = config or ConnectionConfig()
        self.event_handler: EventHandler = event_handler or reject_unimplemented
        self.tick_interval = tick_interval
        self._server: asyncio.Server | None = None
        self._server6: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._protocols: set[_ClientProtocol] = set()
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; raises before `start`."""
        if self._address is None:
            raise RuntimeError("AmqpServer is not started")
        return self._address

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every (host, port) listened on: `address`, then [::1] when bound too."""
        found = [self.address]
        if self._server6 is not None:
            sockname = self._server6.sockets[0].getsockname()
            found.append((str(sockname[0]), int(sockname[1])))
        return found

    @property
    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def connections(self) -> list[Connection]:
        return [p.connection for p in self._protocols if p.connection is not None]

    async def start(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        port_fallback: bool | None = None,
        ipv6_loopback: bool | None = None,
    ) -> tuple[str, int]:
        """Bind and listen; returns the bound address.

        `port_fallback` (default: only for the default port 5672) tries the next ports when the
        requested one is taken; port 0 always means "any free port". `ipv6_loopback` (default:
        when `host` is 127.0.0.1) also listens on [::1] with the same port, if the host has IPv6;
        with fallback on, a port taken on [::1] counts as taken.
        """
        if self._server is not None:
            raise RuntimeError("AmqpServer already started")
        loop = asyncio.get_running_loop()
        fallback = port == DEFAULT_PORT if port_fallback is None else port_fallback
        dual = host == DEFAULT_HOST if ipv6_loopback is None else ipv6_loopback
        attempts = PORT_FALLBACK_ATTEMPTS if fallback and port != 0 else 1
        for candidate in range(port, port + attempts):
            last = candidate == port + attempts - 1
            try:
                server = await self._listen(host, candidate)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or last:
                    raise
                log.info("AMQP port %d is taken, trying %d", candidate, candidate + 1)
                continue
            bound = int(server.sockets[0].getsockname()[1])
            if dual:
                try:
                    self._server6 = await self._listen(IPV6_LOOPBACK, bound)
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE and attempts > 1 and not last:
                        server.close()
                        await server.wait_closed()
                        log.info("AMQP port %d is taken on [::1], trying %d", candidate, candidate + 1)
                        continue
                    # No IPv6 here (EADDRNOTAVAIL, EAFNOSUPPORT) or a port we were told to use.
                    log.info("AMQP server not listening on [::1]:%d: %s", bound, exc)
            self._server = server
            break
        assert self._server is not None
        sockname = self._server.sockets[0].getsockname()
        self._address = (str(sockname[0]), int(sockname[1]))
        self._ticker = loop.create_task(self._tick_forever(), name="amqp-server-ticker")
        for address in self.addresses:
            log.info("AMQP server listening on %s:%d", *address)
        return self._address

    async def _listen(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: _ClientProtocol(self), host, port, reuse_address=True)

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_interval)
            now = loop.time()
            for protocol in list(self._protocols):
                protocol.tick(now)

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening, tell clients 320 CONNECTION_FORCED, wait briefly, then cut them off."""
        if self._server is None:
            return
        self._server.close()
        if self._server6 is not None:
            self._server6.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for protocol in list(self._protocols):
            if protocol.connection is not None:
                protocol.connection.close_connection(
                    ReplyCode.CONNECTION_FORCED, "broker forced connection closure with reason 'shutdown'"
                )
                protocol.pump()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._protocols and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for protocol in list(self._protocols):
            protocol.abort()
        await self._server.wait_closed()
        self._server = None
        if self._server6 is not None:
            await self._server6.wait_closed()
            self._server6 = None

    async def serve_forever(self) -> None:
        if self._server is None:
            raise RuntimeError("AmqpServer is not started")
        await self._server.serve_forever()
