"""`mqstudio broker`: run the embedded broker as a standalone AMQP 0-9-1 server.

Owns: `run_broker` (build the `Broker` — in memory or persisted under a data directory —, the
user table, `BrokerService` and `AmqpServer`; print the listening address and readable lines for
connections opened/closed and errors; shut down cleanly on Ctrl-C / SIGTERM), `parse_user` and
`default_data_dir`. The CLI (`mqstudio.cli`) only parses arguments and calls `run_broker`.
`start_serving` / `Serving.stop` are the start/stop pair `run_broker` and the GUI's broker thread
(`mqstudio.runtime.brokerthread`) share: service, authenticator and server wired the same way.

Must not import: Qt, pika, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.connection import ConnectionConfig
from mqstudio.amqp.server import DEFAULT_HOST, DEFAULT_PORT, AmqpServer
from mqstudio.amqp.service import BrokerService
from mqstudio.broker.broker import Broker
from mqstudio.broker.store import StoreError

__all__ = ["Serving", "default_data_dir", "parse_user", "run_broker", "start_serving"]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_UNUSABLE = 0, 2
#: RabbitMQ's default max_message_size (128 MiB); larger bodies close the channel with 406.
DEFAULT_MAX_BODY_SIZE = 128 * 1024 * 1024


def default_data_dir() -> Path:
    """Where a persisted broker keeps its store: $XDG_DATA_HOME/mqstudio/broker (~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mqstudio" / "broker"


def parse_user(spec: str) -> tuple[str, str]:
    """'user:password' → (user, password); the password may itself contain colons."""
    name, sep, password = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"expected USER:PASSWORD, got {spec!r}")
    return name, password


def _authenticator(users: Iterable[tuple[str, str]], vhosts: Iterable[str]) -> InMemoryAuthenticator:
    given = [User.create(name, password, vhosts=None) for name, password in users]
    # Without --user, RabbitMQ's default: guest/guest, allowed from localhost only.
    return InMemoryAuthenticator(given or None, vhosts=vhosts)


@dataclass(slots=True)
class Serving:
    """A broker being served on a running event loop (see `start_serving`)."""

    broker: Broker
    service: BrokerService
    server: AmqpServer
    address: tuple[str, int]

    async def stop(self, grace: float = 2.0) -> None:
        """Close client connections (320 CONNECTION_FORCED, then cut off after `grace`), stop the
        broker timer. The broker itself stays open: its owner closes it."""
        await self.server.stop(grace=grace)
        self.service.close()


async def start_serving(
    broker: Broker,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    users: Iterable[tuple[str, str]] = (),
    *,
    log: Callable[[str], None] | None = None,
    max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
) -> Serving:
    """Serve `broker` to AMQP clients on the running loop; raises OSError when it cannot listen."""
    service = BrokerService(broker, on_log=log)
    server = AmqpServer(
        authenticator=_authenticator(users, broker.vhost_names),
        config=ConnectionConfig(max_body_size=max_body_size),
        event_handler=service,
    )
    address = await server.start(host, port)
    return Serving(broker, service, server, address)


def run_broker(  # noqa: PLR0917 - the signature the CLI calls, positional by design
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    data_dir: str | os.PathLike[str] | None = None,
    in_memory: bool = False,
    users: Iterable[tuple[str, str]] = (),
    log: Callable[[str], None] = print,
    *,
    max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
    ready: Callable[[tuple[str, int]], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve until Ctrl-C / SIGTERM (or `stop` is set); returns the process exit status.

    `ready` is called with the bound address once clients can connect (tests use port 0).
    """
    if in_memory:
        broker = Broker()
        where = "in memory (nothing is kept after exit)"
    else:
        path = Path(data_dir) if data_dir is not None else default_data_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
            broker = Broker.open(path)
        except (OSError, StoreError) as exc:
            log(f"error: cannot open the broker store in {path}: {exc}")
            return EXIT_UNUSABLE
        where = f"persisted in {broker.store.location if broker.store is not None else path}"
        r = broker.recovery
        if r is not None and (r.exchanges or r.queues or r.messages):
            log(
                f"recovered {r.exchanges} exchanges, {r.queues} queues, {r.bindings} bindings and "
                f"{r.messages} messages from {r.location}"
            )
    try:
        return asyncio.run(_serve(broker, host, port, list(users), log, where, max_body_size, ready, stop))
    except KeyboardInterrupt:  # Ctrl-C before the signal handler was installed
        return EXIT_OK
    finally:
        broker.close()


async def _serve(  # noqa: PLR0917 - private, one call site
    broker: Broker,
    host: str,
    port: int,
    users: list[tuple[str, str]],
    log: Callable[[str], None],
    where: str,
    max_body_size: int | None,
    ready: Callable[[tuple[str, int]], None] | None,
    stop: threading.Event | None,
) -> int:
    loop = asyncio.get_running_loop()
    try:
        serving = await start_serving(broker, host, port, users, log=log, max_body_size=max_body_size)
    except OSError as exc:
        log(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}")
        return EXIT_UNUSABLE
    stopping = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows has no signal handlers
                loop.add_signal_handler(sig, stopping.set)
    if stop is not None:
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(stopping.set)),
            name="mqstudio-broker-stop",
            daemon=True,
        ).start()
    address = serving.address
    who = ", ".join(name for name, _ in users) if users else "guest/guest (localhost only)"
    log(f"mqstudio broker listening on amqp://{address[0]}:{address[1]}/ — {where}; users: {who}")
    if ready is not None:
        ready(address)
    try:
        await stopping.wait()
    finally:
        log("shutting down: closing client connections")
        await serving.stop(grace=2.0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    log("mqstudio broker stopped")
    return EXIT_OK
