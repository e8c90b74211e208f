"""Idle and slow sockets must not stall the server, and unfinished handshakes are timed out.

A thousand sockets that connect and say nothing, a thousand that stop half-way through the
protocol header and one client dribbling its handshake an octet every 10 ms: meanwhile a pika
connection still completes its handshake and a channel round trip. Only pytest-timeout bounds
the time; nothing here asserts a duration.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time

import pika
import pytest
from pamqp import commands

from mqstudio.amqp.connection import ConnectionConfig
from mqstudio.amqp.framing import PROTOCOL_HEADER

from .conftest import RunningBroker
from .test_robustness import (
    RawClient,
    address,
    exercise,
    loop_thread,
    pika_params,
    start_server,
    stop_server,
    wire,
)
from .test_server_pika import WAIT, LoopThread

__all__ = ["loop_thread"]  # a fixture, imported for use here

IDLE = 1000
HALF_HEADER = 1000
ACCEPT_BATCH = 50


def ensure_fd_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE when it is too low for the sockets (both ends are ours)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_sockets(running: RunningBroker, count: int, first_bytes: bytes) -> list[socket.socket]:
    """Connect `count` sockets, in batches the server has accepted before the next one.

    Connecting faster than the loop accepts overflows the listen backlog, and the kernel then
    retries the SYN a second later: slow for the test, and not what is being tested.
    """
    socks: list[socket.socket] = []
    base = connection_count(running)
    while len(socks) < count:
        for _ in range(min(ACCEPT_BATCH, count - len(socks))):
            sock = socket.create_connection(address(running), timeout=WAIT)
            if first_bytes:
                sock.sendall(first_bytes)
            socks.append(sock)
        wait_until_accepted(running, base + len(socks))
    return socks


def connection_count(running: RunningBroker) -> int:
    """How many Connections the server holds, read on its own loop thread."""
    return running.call(lambda: len(running.server.connections))


def wait_until_accepted(running: RunningBroker, count: int) -> None:
    """Wait (bounded by pytest-timeout) until the server has a Connection for `count` sockets."""
    while connection_count(running) < count:
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_idle_and_half_header_sockets_and_a_slow_handshake_do_not_stall_a_pika_client(
    broker_server: RunningBroker,
) -> None:
    ensure_fd_limit(2 * (IDLE + HALF_HEADER) + 256)
    # The fixture's default 10 s handshake timeout keeps every silent socket open meanwhile.
    running = broker_server
    server_address = address(running)
    socks: list[socket.socket] = []
    slow_done = threading.Event()
    slow_error: list[BaseException] = []
    stop_dribbling = threading.Event()
    midway = threading.Event()
    pika_done = threading.Event()

    def slow_handshake() -> None:
        try:
            raw = RawClient(server_address)
            try:
                handshake = PROTOCOL_HEADER + wire(
                    (
                        0,
                        commands.Connection.StartOk(
                            client_properties={}, mechanism="PLAIN", response="\0guest\0guest"
                        ),
                    ),
                    (0, commands.Connection.TuneOk(channel_max=16, frame_max=4096, heartbeat=0)),
                    (0, commands.Connection.Open(virtual_host="/")),
                )
                for i, octet in enumerate(handshake):
                    if i == len(handshake) // 2:
                        # Park mid-handshake (inside Start-Ok) until pika got through.
                        midway.set()
                        pika_done.wait(WAIT * 3)
                    if stop_dribbling.is_set():
                        return
                    raw.send(bytes([octet]))
                    time.sleep(0.01)
                raw.expect(commands.Connection.Start)
                raw.expect(commands.Connection.Tune)
                raw.expect(commands.Connection.OpenOk)
                slow_done.set()
            finally:
                raw.close()
        except BaseException as exc:  # reported by the main thread
            slow_error.append(exc)

    try:
        socks += open_sockets(running, IDLE, b"")
        socks += open_sockets(running, HALF_HEADER, PROTOCOL_HEADER[:4])
        slow = threading.Thread(target=slow_handshake, name="slow-handshake", daemon=True)
        slow.start()
        assert midway.wait(WAIT * 3), "the slow client must get half-way"

        connection = pika.BlockingConnection(pika_params(server_address))
        try:
            assert connection.is_open
            exercise(connection, "load-idle")
            # The dribbling client is parked mid-handshake while pika gets through.
            assert not slow_done.is_set()
        finally:
            connection.close()
            pika_done.set()

        slow.join(timeout=WAIT * 3)
        assert not slow_error, slow_error
        assert slow_done.is_set(), "the slow handshake must complete too"
        # None of the idle sockets was dropped for the crowd (handshake timeout not reached).
        assert connection_count(running) >= IDLE + HALF_HEADER
    finally:
        stop_dribbling.set()
        for sock in socks:
            sock.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "first_bytes", [b"", PROTOCOL_HEADER[:4], PROTOCOL_HEADER], ids=["silent", "half", "header"]
)
def test_socket_that_never_completes_the_handshake_is_closed_after_the_timeout(
    loop_thread: LoopThread, first_bytes: bytes
) -> None:
    running = start_server(loop_thread, ConnectionConfig(handshake_timeout=0.3))
    try:
        with socket.create_connection(running.address, timeout=WAIT) as sock:
            if first_bytes:
                sock.sendall(first_bytes)
            received = bytearray()
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(4096):  # blocks until the server closes the socket
                    received += chunk
        # At most the Connection.Start the full header earned; never a Close (spec: just close).
        if first_bytes == PROTOCOL_HEADER:
            assert received[:1] == b"\x01"
        else:
            assert received == b""
        healthy = pika.BlockingConnection(pika_params(running.address))
        exercise(healthy, "after-timeout")
        healthy.close()
    finally:
        stop_server(loop_thread, running)


@pytest.mark.timeout(30)
def test_a_completed_handshake_is_not_subject_to_the_handshake_timeout(loop_thread: LoopThread) -> None:
    running = start_server(loop_thread, ConnectionConfig(handshake_timeout=0.3))
    try:
        connection = pika.BlockingConnection(pika_params(running.address))
        try:
            # Several handshake timeouts pass while the connection sits idle (heartbeats off).
            connection.sleep(1.0)
            assert connection.is_open
            exercise(connection, "past-timeout")
        finally:
            connection.close()
    finally:
        stop_server(loop_thread, running)
