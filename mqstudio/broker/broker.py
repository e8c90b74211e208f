"""The embedded broker engine's facade: vhosts, declarations, publish, sessions, time and stats.

Owns: `Broker` (the synchronous API the AMQP server, the embedded backend and the GUI sit on) and
`DeclareOk`. Everything is delegated to the named `VHost`; this module adds vhost management,
session/connection bookkeeping and whole-broker `tick()` / `next_deadline_ms()` / `snapshot()`.
The engine is deterministic: time comes from the injected `Clock`, server-generated names from a
seeded generator; there are no threads, sockets or asyncio here.
Must not import anything outside the stdlib and this package (never `mqstudio.core`).

Typical use by a server loop::

    broker = Broker()
    s = broker.open_session("/", connection_id="c1")
    broker.declare_queue("/", "jobs")
    s.basic_consume("jobs", "worker")
    broker.publish("/", "", "jobs", Properties(), b"hello")
    for d in s.poll(): ...; s.ack(d.delivery_tag)
    broker.tick(); sleep_until(broker.next_deadline_ms())

A server that handles input in batches brackets each with `begin_batch()` / `end_batch()`: the
publishes of a batch that no time rule applies to then share one clock read (see `begin_batch`).

Persistence: `Broker(store=SqliteStore(path))` or `Broker.open(path)` rebuilds the stored durable state
(exchanges, queues, bindings, persistent messages; see `mqstudio.broker.journal`) at construction and
then journals changes in memory. `commit()` writes them as one transaction; a server calls it once
per batch of socket input (and after `tick()`), and sends publisher confirms for persistent messages
only after it returned (`needs_commit` says whether anything is waiting). `close()` commits and closes.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from mqstudio.broker.clock import Clock, SystemClock
from mqstudio.broker.errors import NotAllowed, NotFound, PreconditionFailed
from mqstudio.broker.exchanges import Exchange
from mqstudio.broker.journal import Journal, RecoveryReport
from mqstudio.broker.message import Properties
from mqstudio.broker.queue import Queue
from mqstudio.broker.session import CancelCallback, Session
from mqstudio.broker.stats import BrokerStats, broker_snapshot
from mqstudio.broker.store import Durability, SqliteStore, Store
from mqstudio.broker.vhost import RouteResult, VHost

__all__ = ["Broker", "DeclareOk", "RouteResult"]

DEFAULT_VHOST = "/"


class DeclareOk(NamedTuple):
    """queue.declare-ok: the (possibly server-generated) name and the counts it reports."""

    name: str
    message_count: int
    consumer_count: int


class Broker:
    def __init__(self, clock: Clock | None = None, *, seed: int = 0, store: Store | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._rng = random.Random(seed)
        self._vhosts: dict[str, VHost] = {}
        self._next_session = 1
        self._journal: Journal | None = None
        self.store = store
        self.recovery: RecoveryReport | None = None
        self.add_vhost(DEFAULT_VHOST)
        if store is not None:
            journal = Journal(store)
            self.recovery = journal.recover(self)
            self._journal = journal

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        seed: int = 0,
        durability: Durability = "power",
    ) -> Broker:
        """A broker persisted in an SQLite store at `path` (an existing directory holds
        `broker.sqlite3`; any other path is the file), with its stored state recovered.
        Raises `StoreError` subclasses for a locked, corrupt or too new store."""
        store = SqliteStore(path, durability=durability)
        try:
            return cls(clock, seed=seed, store=store)
        except BaseException:
            store.close()
            raise

    # -- persistence ------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Store changes waiting for `commit()` (0 without a store)."""
        return 0 if self._journal is None else self._journal.pending_count

    @property
    def needs_commit(self) -> bool:
        """True when confirms of persistent messages published so far must wait for `commit()`."""
        return self._journal is not None and self._journal.pending_count > 0

    def commit(self) -> None:
        """Write pending store changes as one transaction (group commit); no-op without a store.

        Raises `StoreError` when the write fails: nothing was written, the changes stay pending
        and the next `commit()` retries them; confirms waiting for this commit must not be sent.
        """
        if self._journal is not None:
            self._journal.commit()

    def close(self) -> None:
        """Commit what is pending and close the store (the broker must not be used afterwards)."""
        if self.store is not None:
            try:
                self.commit()
            finally:
                self.store.close()

    # -- vhosts -----------------------------------------------------------------------------------

    @property
    def vhost_names(self) -> list[str]:
        return sorted(self._vhosts)

    def add_vhost(self, name: str) -> VHost:
        if name in self._vhosts:
            raise PreconditionFailed(f"vhost '{name}' already exists")
        vh = VHost(name, self.clock, self._rng)
        self._vhosts[name] = vh
        if self._journal is not None:
            self._journal.attach(vh)
        return vh

    def delete_vhost(self, name: str) -> None:
        vh = self.vhost(name)
        for s in list(vh.sessions.values()):
            s.close()
        for q in list(vh.queues.values()):
            vh.delete_queue(q.name)
        del self._vhosts[name]
        if self._journal is not None:
            self._journal.vhost_deleted(name)

    def vhost(self, name: str) -> VHost:
        vh = self._vhosts.get(name)
        if vh is None:
            # connection.open to an unknown vhost is a 530 NOT_ALLOWED connection error.
            raise NotAllowed(f"vhost {name} not found")
        return vh

    # -- exchanges --------------------------------------------------------------------------------

    def declare_exchange(
        self,
        vhost: str,
        name: str,
        type: str = "direct",
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
    ) -> Exchange:
        return self.vhost(vhost).declare_exchange(
            name,
            type,
            durable=durable,
            auto_delete=auto_delete,
            internal=internal,
            arguments=arguments,
            passive=passive,
        )

    def delete_exchange(self, vhost: str, name: str, *, if_unused: bool = False) -> None:
        self.vhost(vhost).delete_exchange(name, if_unused=if_unused)

    def exchange_bind(
        self,
        vhost: str,
        destination: str,
        source: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.vhost(vhost).exchange_bind(destination, source, routing_key, arguments=arguments)

    def exchange_unbind(
        self,
        vhost: str,
        destination: str,
        source: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.vhost(vhost).exchange_unbind(destination, source, routing_key, arguments=arguments)

    # -- queues -----------------------------------------------------------------------------------

    def declare_queue(
        self,
        vhost: str,
        name: str = "",
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
        owner: str | None = None,
    ) -> DeclareOk:
        q = self.vhost(vhost).declare_queue(
            name,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=arguments,
            passive=passive,
            owner=owner,
        )
        return DeclareOk(q.name, q.message_count, q.consumer_count)

    def queue(self, vhost: str, name: str) -> Queue:
        """The live queue object (inspection, tests); raises 404 NotFound."""
        q = self.vhost(vhost).queues.get(name)
        if q is None:
            raise NotFound(f"no queue '{name}' in vhost '{vhost}'")
        return q

    def queue_bind(
        self,
        vhost: str,
        queue: str,
        exchange: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
        connection_id: str | None = None,
    ) -> None:
        self.vhost(vhost).queue_bind(
            queue, exchange, routing_key, arguments=arguments, connection_id=connection_id
        )

    def queue_unbind(
        self,
        vhost: str,
        queue: str,
        exchange: str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
        connection_id: str | None = None,
    ) -> None:
        self.vhost(vhost).queue_unbind(
            queue, exchange, routing_key, arguments=arguments, connection_id=connection_id
        )

    def purge_queue(self, vhost: str, name: str, connection_id: str | None = None) -> int:
        return self.vhost(vhost).purge_queue(name, connection_id)

    def delete_queue(
        self,
        vhost: str,
        name: str,
        *,
        if_unused: bool = False,
        if_empty: bool = False,
        connection_id: str | None = None,
    ) -> int:
        return self.vhost(vhost).delete_queue(
            name, if_unused=if_unused, if_empty=if_empty, connection_id=connection_id
        )

    # -- publishing -------------------------------------------------------------------------------

    def publish(
        self,
        vhost: str,
        exchange: str,
        routing_key: str,
        properties: Properties | None,
        body: bytes,
        *,
        mandatory: bool = False,
    ) -> RouteResult:
        # The publish hot path: the vhost looked up inline and `mandatory` passed positionally
        # (a keyword call and the `vhost()` call cost ~10% of a publish→deliver→ack in CPython 3.11).
        try:
            vh = self._vhosts[vhost]
        except KeyError:
            vh = self.vhost(vhost)  # raises the 530 NOT_ALLOWED
        return vh.publish(exchange, routing_key, properties, body, mandatory)

    # -- sessions and connections -----------------------------------------------------------------

    def open_session(
        self, vhost: str = DEFAULT_VHOST, connection_id: str = "", on_cancel: CancelCallback | None = None
    ) -> Session:
        """A channel's consuming context: its own delivery tags, prefetch and unacked messages."""
        sid = self._next_session
        self._next_session += 1
        return self.vhost(vhost).open_session(sid, connection_id, on_cancel)

    def close_connection(self, connection_id: str) -> None:
        """Close the connection's sessions (requeueing their unacked messages) and delete its
        exclusive queues [queues: "Exclusive Queues"]."""
        for vh in self._vhosts.values():
            vh.close_connection(connection_id)

    # -- time -------------------------------------------------------------------------------------

    def begin_batch(self) -> None:
        """Start a batch of input (the AMQP server: one event-loop iteration, ended by its flush).

        Until `end_batch()`, a message no time rule applies to (no `expiration`, no queue-level TTL
        in any queue it reaches) is stamped with the time the batch began (one clock read, here)
        rather than a clock read each (reading the OS clock costs about a tenth of a publish).
        The stamp is only `enqueued_ms`, which no rule reads; message TTL, x-expires, delayed
        messages and x-death times read the clock whenever they apply, batch or not. A batch must
        end before the caller waits for more input, or later messages keep the old stamp.
        """
        now = self.clock.now_ms()
        for vh in self._vhosts.values():
            vh.begin_batch(now)

    def end_batch(self) -> None:
        """End the batch `begin_batch()` started (harmless without one)."""
        for vh in self._vhosts.values():
            vh.end_batch()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """`begin_batch()` ... `end_batch()` around a block of synchronous calls."""
        self.begin_batch()
        try:
            yield
        finally:
            self.end_batch()

    def tick(self) -> int:
        """Run due time-based work (delayed messages, TTL at queue heads, x-expires)."""
        return sum(vh.tick() for vh in list(self._vhosts.values()))

    def next_deadline_ms(self) -> int | None:
        """When `tick()` next has work to do (absolute clock ms), or None when nothing is pending."""
        deadlines = [t for vh in self._vhosts.values() if (t := vh.next_deadline_ms()) is not None]
        return min(deadlines) if deadlines else None

    # -- stats ------------------------------------------------------------------------------------

    def snapshot(self) -> BrokerStats:
        return broker_snapshot(
            self.clock.now_ms(), tuple(self._vhosts[name].snapshot() for name in sorted(self._vhosts))
        )
