"""Fixtures for the AMQP tests: a real broker (in memory) served on 127.0.0.1, port 0.

`broker_server` runs `Broker` + `BrokerService` + `AmqpServer` on an event loop in a background
thread (as the app's broker thread does) and yields a `RunningBroker` with the bound port; the
broker's state is only touched on that loop's thread (`RunningBroker.call`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.server import AmqpServer
from mqstudio.amqp.service import BrokerService
from mqstudio.broker.broker import Broker

T = TypeVar("T")
WAIT = 10.0  # upper bound for a background step; never asserted as a duration


@dataclass
class RunningBroker:
    broker: Broker
    service: BrokerService
    server: AmqpServer
    loop: asyncio.AbstractEventLoop
    host: str
    port: int

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=WAIT)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the broker's loop thread and return its result."""

        async def _call() -> T:
            return fn()

        return self.run(_call())


@pytest.fixture
def broker_server() -> Iterator[RunningBroker]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="amqp-broker-test-loop", daemon=True)
    thread.start()
    broker = Broker()
    service = BrokerService(broker)
    auth = InMemoryAuthenticator(
        [User.create("guest", "guest", loopback_only=True), User.create("bob", "pw", vhosts=None)],
        vhosts=["/"],
    )
    server = AmqpServer(authenticator=auth, event_handler=service)
    host, port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(WAIT)
    running = RunningBroker(broker, service, server, loop, host, port)
    try:
        yield running
    finally:

        async def _stop() -> None:
            await server.stop(grace=0.5)
            service.close()

        asyncio.run_coroutine_threadsafe(_stop(), loop).result(WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()


def pika_params(running: RunningBroker, user: str = "guest", password: str = "guest") -> Any:
    import pika

    return pika.ConnectionParameters(
        host=running.host,
        port=running.port,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1,
        blocked_connection_timeout=None,
    )


@pytest.fixture
def connect(broker_server: RunningBroker) -> Iterator[Callable[[], Any]]:
    """A factory of pika BlockingConnections to the broker, closed at teardown."""
    import pika

    opened: list[pika.BlockingConnection] = []

    def _connect() -> pika.BlockingConnection:
        conn = pika.BlockingConnection(pika_params(broker_server))
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        if conn.is_open:
            conn.close()


def wait_until(conn: Any, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Process a pika BlockingConnection's events until `predicate()` holds (or give up)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        conn.process_data_events(time_limit=0.02)
    return True
