"""The embedded broker on its own thread: engine + AMQP listener on a private asyncio loop.

Owns: `EmbeddedBrokerThread`. `start()` opens the `Broker` (in memory, or persisted under
`data_dir`), serves it to AMQP 0-9-1 clients through `mqstudio.amqp.runner.start_serving` (the same
wiring `mqstudio broker` uses) and returns the bound address. The engine is single-threaded: every
access from another thread goes through `call(fn)`, which runs `fn(broker)` on the loop thread and
then flushes the service (group commit, publisher confirms, deliveries to AMQP consumers, broker
timer), exactly as after socket input.

Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from mqstudio.amqp.runner import Serving, start_serving
from mqstudio.amqp.server import DEFAULT_HOST, DEFAULT_PORT
from mqstudio.broker.broker import Broker

__all__ = ["BrokerStoppedError", "EmbeddedBrokerThread"]

T = TypeVar("T")


class BrokerStoppedError(RuntimeError):
    """The broker thread is not running (not started, stopped, or it failed to start)."""


class EmbeddedBrokerThread:
    """Runs the embedded broker on a dedicated thread with its own event loop.

    `port` 5672 falls back to the next free port when taken; 0 asks for any free port (tests).
    `users` are (name, password) pairs; none means guest/guest from localhost only.
    `broker_factory` replaces the default construction (tests: a `ManualClock`).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        users: Iterable[tuple[str, str]] = (),
        *,
        broker_factory: Callable[[], Broker] | None = None,
        on_log: Callable[[str], None] | None = None,
        name: str = "mqstudio-broker",
        grace: float = 1.0,
    ) -> None:
        self._data_dir = None if data_dir is None else Path(data_dir)
        self._host = host
        self._port = port
        self._users = list(users)
        self._factory = broker_factory
        self._on_log = on_log
        self._name = name
        self._grace = grace
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._serving: Serving | None = None
        self._address: tuple[str, int] | None = None
        self._accepting = False
        # Futures handed out and not yet run: failed when the loop ends before running them.
        self._pending: set[concurrent.futures.Future[Any]] = set()

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._accepting

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the AMQP listener is bound to (kept after `stop`); raises before `start`."""
        if self._address is None:
            raise BrokerStoppedError("the embedded broker is not running")
        return self._address

    def start(self, timeout: float = 30.0) -> tuple[str, int]:
        """Open the broker and listen; returns (host, port). Raises the error that prevented it
        (OSError: cannot listen; `mqstudio.broker.store.StoreError`: unusable data directory)."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the embedded broker thread was started already")
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the embedded broker did not start within {timeout} s")
        if self._startup_error is not None:
            self._thread.join(timeout)
            raise self._startup_error
        return self.address

    def stop(self, timeout: float = 10.0) -> bool:
        """Close client connections, close the broker (committing what is pending) and join the
        thread; False when it did not end within `timeout`. Idempotent."""
        thread = self._thread
        if thread is None:
            return True
        self._accepting = False
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        return not thread.is_alive()

    def __enter__(self) -> EmbeddedBrokerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- calls ------------------------------------------------------------------------------------

    def call(self, fn: Callable[[Broker], T]) -> concurrent.futures.Future[T]:
        """Run `fn(broker)` on the loop thread; the future holds its result or exception
        (`BrokerStoppedError` when the broker is not running). Calls run in submission order.
        Called on the loop thread itself, it runs `fn` at once (so nested calls cannot deadlock)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        loop = self._loop
        if not self._accepting or loop is None:
            future.set_exception(BrokerStoppedError("the embedded broker is not running"))
            return future
        if self._thread is threading.current_thread():
            self._invoke(fn, future)
            return future
        with self._lock:
            self._pending.add(future)
        try:
            loop.call_soon_threadsafe(self._invoke, fn, future)
        except RuntimeError:  # closed between the check and the call
            self._fail_pending()
        return future

    def _fail_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, set()
        for future in pending:
            if future.set_running_or_notify_cancel():
                future.set_exception(BrokerStoppedError("the embedded broker stopped"))

    def _invoke(self, fn: Callable[[Broker], T], future: concurrent.futures.Future[T]) -> None:
        with self._lock:
            self._pending.discard(future)
        serving = self._serving
        if serving is None or not self._accepting or not future.set_running_or_notify_cancel():
            if not future.done():
                future.set_running_or_notify_cancel()
                future.set_exception(BrokerStoppedError("the embedded broker is not running"))
            return
        try:
            result = fn(serving.broker)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        finally:
            # What fn did (publish, settle, declare) must reach AMQP consumers and the store now.
            serving.service.flush()

    # -- the thread -------------------------------------------------------------------------------

    def _open_broker(self) -> Broker:
        if self._factory is not None:
            return self._factory()
        if self._data_dir is None:
            return Broker()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        return Broker.open(self._data_dir)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            self._accepting = False
            self._ready.set()
            loop.close()
            self._fail_pending()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        broker: Broker | None = None
        try:
            broker = self._open_broker()
            self._serving = await start_serving(broker, self._host, self._port, self._users, log=self._on_log)
        except BaseException as exc:
            self._startup_error = exc
            if broker is not None:
                broker.close()
            return
        self._address = self._serving.address
        self._accepting = True
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            self._accepting = False
            await self._serving.stop(grace=self._grace)
            broker.close()
            self._serving = None
