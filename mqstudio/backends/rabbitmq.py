"""The remote RabbitMQ backend: AMQP 0-9-1 through pika, topology and statistics through the management API.

Owns: `AmqpClient` (one pika `BlockingConnection` with a few role channels, error mapping) and
`RabbitMQBackend` (implements `mqstudio.backends.base.Backend` by composing `AmqpClient` with
`rabbitmq_http.ManagementClient`); the pika-free parts (message conversion, error texts, replay-handle
checks, tail-target checks, confirm bookkeeping) live in `rabbitmq_messages`. This is the only module
that imports pika (ARCHITECTURE.md), besides `rabbitmq_pika`, which fixes pika's float header values
(read as ints, not writable) before any is read or written; httpx stays in `rabbitmq_http`. No Qt,
no `mqstudio.broker`.

Behaviour worth knowing (it is RabbitMQ's, not ours):

* **Peek is not free.** AMQP has no "browse": peek takes messages with ``basic.get`` and gives them back
  with ``basic.nack(requeue=True)``. RabbitMQ then marks them ``redelivered``, and on a quorum queue
  every such return counts as a delivery attempt toward ``x-delivery-limit`` (a message peeked often
  enough is dropped or dead-lettered). Messages are held unacknowledged while a peek collects them,
  so other consumers do not see them meanwhile. See `peek_side_effects`. Streams are read
  non-destructively with a stream offset instead. Peek is capped at `MAX_PEEK` messages.
* **Tail observes exchanges, never queues.** Consuming from a queue takes its messages, so a queue
  cannot be observed without disturbing its consumers. `tail` binds a temporary exclusive, auto-delete,
  server-named queue to the exchange with copies of the exchange's own bindings (so exactly the
  messages that are routed somewhere are seen, and unroutable ones stay unroutable: mandatory returns
  and alternate exchanges behave as without the tail). For a queue target it refuses with
  `UnsupportedError` naming the exchanges bound to that queue, which can be tailed instead.
* **Replay is at-least-once.** `consume_for_replay` takes messages with manual acknowledgement on a
  dedicated channel; `settle` acks or nacks them. If the connection goes away before `settle`,
  RabbitMQ puts the messages back in the queue; `settle` then raises `UnreachableError` and never
  acknowledges a delivery tag of another channel. `take_for_replay` is the streamed take (consumers
  with a quota, optionally taking ahead); `settle_many` settles a run of them with one ``multiple``
  frame only when no unsettled delivery of the channel lies in it (`rabbitmq_messages.Unacked`).
* **Publishing** uses publisher confirms and ``mandatory``: a message returned before its confirm is
  reported ``routed=False``. `publish_many` / `publish_start` pipeline them: a return is matched to
  its message by exchange, key, body and every property (`rabbitmq_messages.Confirms`), a message
  AMQP cannot carry (a name or key over 255 octets) is reported not published without numbering it,
  and `publish_wait` gives up (not confirmed) after `confirm_idle` seconds without a confirm.

Replay speed comes from pika used below its blocking API, on purpose and only here: frames are
marshalled and written in large chunks (pika sends each frame with a syscall of its own), callbacks
are registered on ``channel._impl``, and waits end the moment their condition holds (`_pump_until`;
``process_data_events`` would wait out its whole time limit).

Credentials come from the caller (the profile's keyring entry). The password is held by pika's
`PlainCredentials` and httpx's auth object only: no URL with a password is ever built, logged or shown.
"""

from __future__ import annotations

import contextlib
import itertools
import ssl
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from mqstudio.backends import rabbitmq_pika
from mqstudio.backends.applying import run_plan
from mqstudio.backends.base import (
    ApplyReport,
    AuthenticationError,
    BackendError,
    BackendKind,
    BrokerMessage,
    CancelToken,
    Capabilities,
    ConflictError,
    NotFoundError,
    OutgoingMessage,
    PermissionDeniedError,
    Progress,
    PublishResult,
    UnreachableError,
    UnsupportedError,
)
from mqstudio.backends.rabbitmq_http import ManagementClient, definitions_from_lists, run_step, snapshot
from mqstudio.backends.rabbitmq_messages import (
    AMQP_HINT,
    MAX_PEEK,
    MAX_REPLAY_BATCH,
    PROPERTY_NAMES,
    Confirms,
    PublishGroup,
    Unacked,
    channel_error,
    check_settleable,
    nothing,
    peek_side_effects_text,
    reason,
    replay_handle,
    reply,
    tail_exchange_info,
    to_message,
)
from mqstudio.core.definitions import import_definitions
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import FileFormatError
from mqstudio.core.metrics import Snapshot
from mqstudio.core.model import DEFAULT_VHOST, Topology
from mqstudio.core.plan import Plan, Step, plan

rabbitmq_pika.apply()  # pika 1.4 reads float/double headers as ints and cannot write floats

_TAIL_POLL_S = 0.2
_TAIL_REBIND_S = 5.0
_STREAM_IDLE_S = 1.0
_FRAMES_PER_WRITE = 300
_REQUEUE_GRACE_S = 5.0
_REQUEUE_WAIT_S = 1.0


# -- AMQP -------------------------------------------------------------------------------------------
class AmqpClient:
    """One blocking AMQP connection with a channel per role (``main``, ``publish``, ``replay``).

    Thread-confined like the backend. A closed channel (after a broker error) is reopened on next use;
    a lost connection is reopened on next use too, except that replay handles of the old connection
    become invalid (their messages are back in the queue).
    """

    def __init__(
        self,
        host: str,
        port: int,
        vhost: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        heartbeat: int = 60,
        blocked_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        connection_name: str = "mqstudio",
    ) -> None:
        self.host, self.port, self.vhost, self.username = host, port, vhost, username
        self._params = pika.ConnectionParameters(
            host=host,
            port=port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(username, password, erase_on_connect=False),
            connection_attempts=1,
            retry_delay=0,
            socket_timeout=timeout,
            stack_timeout=timeout * 2,
            blocked_connection_timeout=blocked_timeout,
            heartbeat=heartbeat,
            client_properties={"connection_name": connection_name},
            ssl_options=pika.SSLOptions(ssl_context, host) if ssl_context is not None else None,
        )
        self._conn: pika.BlockingConnection | None = None
        self._channels: dict[str, BlockingChannel] = {}
        self._channel_ids: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.generation = 0
        self.lost_at: float | None = None
        """When a connection was last lost (monotonic): RabbitMQ requeues what it held a moment later."""
        """Counts connections opened; a replay handle names the one that took its message."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._conn is not None and self._conn.is_open

    def open_connection(self, *, own: bool = True) -> pika.BlockingConnection:
        """A new connection with these parameters, errors mapped (`own`: see `errors`)."""
        with self.errors("connect", own=own):
            return pika.BlockingConnection(self._params)

    def connection(self) -> pika.BlockingConnection:
        """The open connection, reopened when it is gone.

        A non-blocking poll first lets pika send due heartbeats and notice a connection that the
        broker closed while we were idle (missed heartbeats, a restart), so that an idle backend
        reconnects instead of failing its next operation. Channels (and replay handles) of the old
        connection are invalid afterwards.
        """
        if self._conn is not None and self._conn.is_open:
            try:
                self._conn.process_data_events(time_limit=0)
            except (pex.AMQPError, OSError):
                self._drop()
        if self._conn is None or not self._conn.is_open:
            self._drop()
            self._conn = self.open_connection()
            self.generation += 1
        return self._conn

    def current(self) -> pika.BlockingConnection:
        """The open connection as it is: not polled, not reopened (`UnreachableError` when gone)."""
        if self._conn is None or not self._conn.is_open:
            raise UnreachableError(f"lost the connection to RabbitMQ at {self.address}", AMQP_HINT)
        return self._conn

    def channel(self, role: str = "main") -> BlockingChannel:
        ch = self._channels.get(role)
        if ch is not None and ch.is_open:
            return ch
        conn = self.connection()
        with self.errors(f"open a {role} channel"):
            ch = conn.channel()
            if role == "publish":
                ch.confirm_delivery()
        self._channels[role] = ch
        self._channel_ids[role] = next(self._ids)
        return ch

    def close_channel(self, role: str) -> None:
        """Close the `role` channel (if open); the next `channel` of that role opens a new one."""
        ch = self._channels.pop(role, None)
        self._channel_ids.pop(role, None)
        if ch is not None and ch.is_open and self.is_open:
            with contextlib.suppress(Exception):
                ch.close()

    def channel_id(self, role: str) -> int | None:
        ch = self._channels.get(role)
        return self._channel_ids.get(role) if ch is not None and ch.is_open and self.is_open else None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._channels.clear()
        self._channel_ids.clear()
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def errors(self, what: str, *, own: bool = True) -> Iterator[None]:
        """Map pika and socket failures of `what` to the specific `BackendError`.

        With `own` (the default) a connection-level failure also drops this client's connection;
        operations on a connection of their own (tail) pass ``own=False``.
        """
        drop = self._drop if own else nothing
        try:
            yield
        except BackendError:
            raise
        except pex.ChannelClosedByBroker as exc:
            raise channel_error(exc.reply_code, exc.reply_text, what, self.username) from None
        except (pex.ChannelWrongStateError, pex.ChannelClosed) as exc:
            raise ConflictError(f"cannot {what}: the channel is closed ({exc})") from None
        except pex.ProbableAuthenticationError as exc:
            drop()
            raise AuthenticationError(
                f"RabbitMQ at {self.address} refused the login of user {self.username!r}: {reply(exc)}",
                "check the user name and password",
            ) from None
        except pex.ProbableAccessDeniedError as exc:
            drop()
            raise PermissionDeniedError(
                f"user {self.username!r} may not open vhost {self.vhost!r} at {self.address}: {reply(exc)}",
                f"check that the vhost exists and grant access: rabbitmqctl set_permissions -p "
                f"'{self.vhost}' '{self.username}' '.*' '.*' '.*'",
            ) from None
        except pex.ConnectionClosedByBroker as exc:
            drop()
            if exc.reply_code in (403, 530):
                raise PermissionDeniedError(
                    f"RabbitMQ closed the connection of user {self.username!r} (vhost {self.vhost!r}) "
                    f"while trying to {what}: {exc.reply_text}"
                ) from None
            raise UnreachableError(
                f"RabbitMQ at {self.address} closed the connection while trying to {what}: "
                f"({exc.reply_code}) {exc.reply_text}",
                "the broker may be shutting down or an operator closed the connection; try again",
            ) from None
        except pex.ConnectionBlockedTimeout:
            drop()
            raise UnreachableError(
                f"RabbitMQ at {self.address} blocked the connection while trying to {what}",
                "a resource alarm (memory or disk) is in effect on the broker",
            ) from None
        except pex.AMQPConnectionError as exc:
            drop()
            raise UnreachableError(
                f"cannot reach RabbitMQ at {self.address}: {reason(exc)}", AMQP_HINT
            ) from None
        except (pex.AMQPError, OSError) as exc:
            if isinstance(exc, OSError) or (own and not self.is_open):
                drop()
                raise UnreachableError(
                    f"cannot reach RabbitMQ at {self.address}: {reason(exc)}", AMQP_HINT
                ) from None
            raise BackendError(f"cannot {what}: {type(exc).__name__}: {exc}") from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self.lost_at = time.monotonic()
        self._channels.clear()
        self._channel_ids.clear()
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()


def _basic_properties(message: OutgoingMessage) -> BasicProperties:
    props: dict[str, Any] = {}
    for name, given in message.properties.items():
        if name not in PROPERTY_NAMES:
            raise UnsupportedError(f"{name!r} is not an AMQP basic property", ", ".join(PROPERTY_NAMES))
        value = given
        if name == "expiration" and value is not None:
            value = str(value)
        if name == "timestamp" and isinstance(value, datetime):
            value = int(value.timestamp())
        props[name] = value
    return BasicProperties(headers=dict(message.headers) or None, **props)


# -- the backend ------------------------------------------------------------------------------------
class RabbitMQBackend:
    """A RabbitMQ broker (one vhost): AMQP for messages, the management API for topology and stats."""

    kind = BackendKind.RABBITMQ
    BASE_CAPABILITIES = (
        Capabilities.EXCHANGES
        | Capabilities.HEADERS_EXCHANGE
        | Capabilities.DEAD_LETTERING
        | Capabilities.PEEK
        | Capabilities.REPLAY
        | Capabilities.TOPOLOGY_WRITE
        | Capabilities.STATS
        | Capabilities.TAIL
        | Capabilities.PURGE
    )

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5672,
        *,
        username: str = "guest",
        password: str = "guest",
        vhost: str = DEFAULT_VHOST,
        management_port: int = 15672,
        management_scheme: str = "http",
        management_host: str | None = None,
        prometheus_port: int | None = 15692,
        timeout: float = 10.0,
        heartbeat: int = 60,
        ssl_context: ssl.SSLContext | None = None,
        http: ManagementClient | None = None,
    ) -> None:
        self.host, self.port, self.vhost, self.username = host, port, vhost, username
        self.capabilities = self.BASE_CAPABILITIES
        self.server_version = ""
        self.cluster_name = ""
        self._default_queue_type: str | None = None
        self.amqp = AmqpClient(
            host,
            port,
            vhost,
            username,
            password,
            timeout=timeout,
            heartbeat=heartbeat,
            ssl_context=ssl_context,
        )
        self.http = http or ManagementClient(
            management_host or host,
            management_port,
            username=username,
            password=password,
            scheme=management_scheme,
            timeout=timeout,
            prometheus_port=prometheus_port,
        )
        self._tail_params = (host, port, vhost, username, password, timeout, ssl_context)
        self._pipeline: _Confirms | None = None
        self._unacked = Unacked()
        self._taker: _Taker | None = None
        self._replaying: int | None = None  # the connection generation a replay round takes on
        self.confirm_idle = max(30.0, 3 * timeout)
        """`publish_wait` gives up after this many seconds without a confirm."""

    def __repr__(self) -> str:
        return f"RabbitMQBackend({self.description})"

    @property
    def description(self) -> str:
        return f"rabbitmq {self.username}@{self.host}:{self.port} vhost {self.vhost}"

    # -- lifecycle ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Check the management API (version, cluster, exchange types, the vhost) and open AMQP."""
        overview = self.http.overview()
        self.server_version = str(overview.get("rabbitmq_version") or overview.get("product_version") or "")
        self.cluster_name = str(overview.get("cluster_name") or "")
        types = {str(t.get("name")) for t in overview.get("exchange_types") or () if isinstance(t, dict)}
        self.capabilities = self.BASE_CAPABILITIES
        if "x-delayed-message" in types:
            self.capabilities |= Capabilities.DELAYED_EXCHANGE
        self.amqp.connection()
        self._default_queue_type = self.http.default_queue_type(self.vhost)

    def close(self) -> None:
        self.amqp.close()
        self.http.close()

    def __enter__(self) -> RabbitMQBackend:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_vhosts(self) -> list[str]:
        """The vhosts this user can see, for the vhost picker."""
        return self.http.vhost_names()

    # -- topology ----------------------------------------------------------------------------
    def fetch_topology(self) -> TopologyDocument:
        """The vhost's definitions (``GET /api/definitions/{vhost}``) as a document.

        Users without the administrator tag may not read definitions; for them the topology is
        assembled from the exchange, queue and binding lists (policies only when readable). Exclusive
        queues belong to their connection and are left out, as RabbitMQ's own export does.
        """
        try:
            data = self.http.definitions(self.vhost)
        except PermissionDeniedError:
            data = definitions_from_lists(self.http, self.vhost)
        self._default_queue_type = self.http.default_queue_type(self.vhost)
        source = f"RabbitMQ {self.host}:{self.port} vhost {self.vhost!r}"
        try:
            document = import_definitions(data, source=source, vhost=self.vhost)
        except FileFormatError as exc:
            raise ConflictError(f"the live topology cannot be shown: {exc}") from None
        definitions = document.metadata.setdefault("definitions", {})
        if self._default_queue_type and isinstance(definitions, dict):
            # Where policies.document_default_queue_types looks (a cluster-wide export's vhosts[]).
            definitions.setdefault("vhosts", []).append(
                {
                    "name": self.vhost,
                    "default_queue_type": self._default_queue_type,
                    "metadata": {"default_queue_type": self._default_queue_type},
                }
            )
        document.metadata["rabbitmq"] = {
            "host": self.host,
            "vhost": self.vhost,
            "version": self.server_version,
            "cluster_name": self.cluster_name,
            "default_queue_type": self._default_queue_type,
        }
        document.set_dirty(False)
        return document

    def plan(self, desired: Topology, *, prune: bool = False) -> Plan:
        live = self.fetch_topology()
        return plan(
            desired,
            live.topology,
            vhost=self.vhost,
            prune=prune,
            default_queue_type=self._default_queue_type or "classic",
        )

    def apply(
        self,
        plan: Plan,
        *,
        consent: Iterable[Step] = (),
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> ApplyReport:
        """Run the steps in order through the management API (see `run_plan` for consent, cancel,
        progress and the report).

        A delete or unbind whose object is already gone counts as applied (the broker is as the step
        wants it). A recreate that deleted but could not declare again fails with an error that says so.
        """
        return run_plan(
            plan,
            lambda step: run_step(self.http, self.vhost, step),
            consent=consent,
            progress=progress,
            cancel=cancel,
        )

    # -- messages ----------------------------------------------------------------------------
    def publish(self, message: OutgoingMessage) -> PublishResult:
        """Publish with confirms; ``mandatory`` messages that RabbitMQ returns are ``routed=False``."""
        props = _basic_properties(message)
        if self._replaying is not None:
            self.amqp.connection()
            self._check_round()  # a replay round does not go on silently on a new connection
        ch = self.amqp.channel("publish")
        where = f"publish to exchange {message.target!r} in vhost {self.vhost!r}"
        with self.amqp.errors(where):
            try:
                ch.basic_publish(
                    message.target, message.key, message.body, props, mandatory=message.mandatory
                )
            except pex.UnroutableError as exc:
                return PublishResult(confirmed=True, routed=False, detail=_returned(exc))
            except pex.NackError:
                return PublishResult(confirmed=False, routed=False, detail="RabbitMQ nacked the message")
        return PublishResult(confirmed=True, routed=True)

    def publish_many(self, messages: list[OutgoingMessage], *, window: int = 512) -> list[PublishResult]:
        """Publish several messages with confirms, up to `window` unconfirmed at a time (one result per
        message, in order). Much faster than `publish`, which waits for each confirm.

        A message returned (``mandatory``) is ``routed=False``; a nacked one is not confirmed. If the
        broker closes the channel (e.g. a missing exchange), the messages it did not confirm yet are
        reported not confirmed with the reason: they may or may not have been routed. A lost
        connection raises `UnreachableError` (nothing is known about the unconfirmed ones).
        """
        return self.publish_wait(self.publish_start(messages, window=window))

    def publish_start(self, messages: list[OutgoingMessage], *, window: int = 4096) -> PublishGroup:
        """`publish_many` without waiting for the confirms (only while `window` messages are
        unconfirmed on the channel): the caller can prepare the next batch meanwhile. `publish_wait`
        returns the results. Messages with a property AMQP does not have are not published at all."""
        group = PublishGroup(len(messages))
        try:
            props = [_basic_properties(m) for m in messages]
        except UnsupportedError as exc:
            for index in range(len(messages)):
                group.set(index, PublishResult(False, False, f"not published: {exc}"))
            return group
        conn = self.amqp.connection()
        self._check_round()
        ch = self.amqp.channel("pipeline")
        state = self._pipeline
        if state is None or state.channel_id != self.amqp.channel_id("pipeline"):
            if state is not None and state.generation == self.amqp.generation:
                # its channel closed (the connection did not): what it did not confirm never will be
                state.fail_all("not confirmed: the channel closed before the confirm")
            state = _Confirms(self.amqp.channel_id("pipeline"))
            state.generation = self.amqp.generation
            self._pipeline = state
            with self.amqp.errors("turn on publisher confirms"):
                ch._impl.confirm_delivery(state.on_confirm, callback=state.on_select_ok)
                ch._impl.add_on_return_callback(state.on_return)
                while not state.selected:
                    conn.process_data_events(time_limit=0.05)
        # Every frame is made before any sequence number is taken: a message that cannot be encoded
        # (a name or key over 255 octets, a header value AMQP has no type for, e.g. a set) is not
        # published, and the numbering stays the broker's.
        number, body_max = ch.channel_number, conn._impl._body_max_length
        prepared: list[tuple[int, OutgoingMessage, list[bytes]]] = []
        for index, message in enumerate(messages):
            try:
                prepared.append((index, message, _publish_frames(number, message, props[index], body_max)))
            except _NotEncodable as exc:
                group.set(index, PublishResult(False, False, f"not published: {exc}"))
        group.link = (conn, ch, state)
        numbered = False
        try:
            with self._publishing(state):
                frames: list[bytes] = []
                for index, message, message_frames in prepared:
                    state.sent(group, index, (message.target, message.key, message.body), props[index])
                    numbered = True
                    frames += message_frames
                    if len(frames) >= _FRAMES_PER_WRITE or len(state.outstanding) >= window:
                        _write(conn, ch, frames)
                        frames = []
                    if len(state.outstanding) >= window:
                        _pump_until(conn, ch, lambda: len(state.outstanding) < window)
                _write(conn, ch, frames)
                conn.process_data_events(time_limit=0)  # sends them now
        except BaseException as exc:
            if numbered and self.amqp.is_open:
                # what was numbered may or may not have been written: the numbering starts over
                # (a lost connection needs nothing: the next one has a new pipeline channel)
                self._drop_pipeline(state, f"not confirmed: publishing failed ({exc})")
            raise
        return group

    def _drop_pipeline(self, state: _Confirms, detail: str) -> None:
        """Give up on the ``pipeline`` channel of `state`: what it did not confirm is not confirmed
        (`detail`), and the channel is closed, so that the next publish numbers from 1 on a new one."""
        state.fail_all(detail)
        if self._pipeline is state:
            self._pipeline = None
            self.amqp.close_channel("pipeline")

    def publish_wait(
        self, group: PublishGroup, *, idle: float | None = None, cancel: CancelToken | None = None
    ) -> list[PublishResult]:
        """The results of a `publish_start`, once every message of it was confirmed (or refused).

        Gives up when no confirm arrived for `idle` seconds (default `confirm_idle`) or `cancel` is
        cancelled: what did not come back is reported not confirmed (never confirmed), and the
        pipeline channel is closed, which also makes the other groups on it not confirmed."""
        link, group.link = group.link, None
        if group.pending and link is not None:
            conn, ch, state = link
            alive = conn.is_open and conn is self.amqp._conn
            if alive and id(state) != id(self._pipeline):  # the channel closed, not the link
                state.fail_all("not confirmed: the channel closed before the confirm")
                return group.final()
            if not alive:
                raise UnreachableError(
                    f"lost the connection to RabbitMQ at {self.amqp.address} before the confirms arrived",
                    AMQP_HINT,
                )
            limit = self.confirm_idle if idle is None else idle
            with self._publishing(state):
                left, since = len(state.outstanding), time.monotonic()
                while group.pending:
                    _pump_until(conn, ch, lambda: not group.pending)
                    if not group.pending:
                        break
                    now = time.monotonic()
                    if len(state.outstanding) != left:
                        left, since = len(state.outstanding), now
                    elif cancel is not None and cancel.cancelled:
                        self._drop_pipeline(state, "not confirmed: stopped waiting for the confirm")
                    elif now - since >= limit:
                        self._drop_pipeline(state, f"not confirmed: no confirm from RabbitMQ for {limit:g} s")
        return group.final()

    @contextlib.contextmanager
    def _publishing(self, state: _Confirms) -> Iterator[None]:
        try:
            with self.amqp.errors(f"publish to vhost {self.vhost!r}"):
                yield
        except (ConflictError, NotFoundError, PermissionDeniedError, UnsupportedError) as exc:
            if self._pipeline is state:
                self._pipeline = None  # the channel is gone; what it did not confirm is unknown
            if not self.amqp.is_open:
                self.amqp.close()
                raise UnreachableError(
                    f"lost the connection to RabbitMQ at {self.amqp.address} while publishing: {exc}",
                    AMQP_HINT,
                ) from None
            state.fail_all(f"not confirmed: {exc}")

    def message_count(self, queue: str) -> int:
        """Messages ready in `queue` now (AMQP queue.declare passive; exact, unlike the management API).

        Within a second of losing a connection it waits out that second first: RabbitMQ puts back
        what the lost connection held a moment after it noticed, and a count taken before that would
        leave those messages out (a replay counts what it will take when it starts)."""
        lost = self.amqp.lost_at
        if lost is not None and (left := lost + _REQUEUE_WAIT_S - time.monotonic()) > 0:
            time.sleep(left)
        return self._ready_count(queue)

    def _ready_count(self, queue: str) -> int:
        ch = self.amqp.channel("main")
        with self.amqp.errors(f"count the messages of queue {queue!r} in vhost {self.vhost!r}"):
            frame = ch.queue_declare(queue, passive=True)
        return int(getattr(frame.method, "message_count", 0) or 0)

    def peek_side_effects(self, queue: str) -> str:
        """What peeking `queue` does to it, in words for the UI (depends on the queue type)."""
        info: dict[str, Any] = {}
        with contextlib.suppress(BackendError):
            info = self.http.queue(self.vhost, queue)
        return peek_side_effects_text(queue, info)

    def peek(
        self,
        source: str,
        limit: int = 50,
        *,
        partition: int | None = None,
        offset: int | None = None,
        timestamp_ms: int | None = None,
    ) -> list[BrokerMessage]:
        """Up to `limit` (at most `MAX_PEEK`) messages from the head of queue `source`, put back.

        basic.get each, then one basic.nack(multiple, requeue) — see the module docstring for what
        that does to the messages. Streams are read from `offset` (default: the first) instead.
        """
        limit = max(0, min(limit, MAX_PEEK))
        if self._queue_type(source) == "stream":
            return self._peek_stream(source, limit, offset, timestamp_ms)
        ch = self.amqp.channel("main")
        out: list[BrokerMessage] = []
        last_tag = 0
        with self.amqp.errors(f"peek queue {source!r} in vhost {self.vhost!r}"):
            try:
                while len(out) < limit:
                    method, props, body = ch.basic_get(source, auto_ack=False)
                    if method is None:
                        break
                    last_tag = method.delivery_tag
                    out.append(to_message(source, method, props, body, None))
            finally:
                if last_tag and ch.is_open:
                    ch.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
        return out

    def _queue_type(self, queue: str) -> str:
        try:
            info = self.http.queue(self.vhost, queue)
        except NotFoundError:
            raise NotFoundError(f"queue {queue!r} does not exist in vhost {self.vhost!r}") from None
        return str(info.get("type") or "classic")

    def _peek_stream(
        self, source: str, limit: int, offset: int | None, timestamp_ms: int | None
    ) -> list[BrokerMessage]:
        start: Any = offset if offset is not None else "first"
        if timestamp_ms is not None and offset is None:
            start = datetime.fromtimestamp(timestamp_ms / 1000)
        conn = self.amqp.connection()
        out: list[BrokerMessage] = []
        with self.amqp.errors(f"read stream {source!r} in vhost {self.vhost!r}"):
            ch = conn.channel()
            try:
                ch.basic_qos(prefetch_count=max(limit, 1))

                def on_message(_ch: Any, method: Any, props: BasicProperties, body: bytes) -> None:
                    if len(out) < limit:
                        msg = to_message(source, method, props, body, None)
                        stream_offset = (props.headers or {}).get("x-stream-offset")
                        msg.offset = stream_offset if isinstance(stream_offset, int) else None
                        out.append(msg)

                ch.basic_consume(source, on_message, arguments={"x-stream-offset": start})
                idle_since = time.monotonic()
                seen = 0
                while len(out) < limit and time.monotonic() - idle_since < _STREAM_IDLE_S:
                    conn.process_data_events(time_limit=0.1)
                    if len(out) != seen:
                        seen, idle_since = len(out), time.monotonic()
            finally:
                if ch.is_open:
                    ch.close()
        return out

    def consume_for_replay(self, source: str, limit: int) -> list[BrokerMessage]:
        """Take up to `limit` messages from queue `source` unacknowledged; `settle` each one."""
        limit = max(0, min(limit, MAX_REPLAY_BATCH))
        ch = self.amqp.channel("replay")
        taker = (self.amqp.generation, self.amqp.channel_id("replay"))
        unacked = self._unacked.for_channel(taker)
        out: list[BrokerMessage] = []
        with self.amqp.errors(f"take messages from queue {source!r} in vhost {self.vhost!r}"):
            while len(out) < limit:
                method, props, body = ch.basic_get(source, auto_ack=False)
                if method is None:
                    break
                unacked.add(method.delivery_tag)
                out.append(to_message(source, method, props, body, (*taker, method.delivery_tag)))
        return out

    def take_for_replay(self, source: str, limit: int, *, ahead: int = 0) -> list[BrokerMessage]:
        """`consume_for_replay`, streamed: a consumer with prefetch = the messages wanted instead of one
        basic.get round trip per message; `settle_many` them.

        Each consumer is given a quota (its prefetch) and cancelled as soon as it delivered that many,
        and only messages of consumers that are done are returned: none of a consumer's messages can be
        acked while it runs, so no consumer delivers more than its quota. The first one's quota is the
        messages ready (at most `limit`); a consumer is also cancelled when nothing arrived for a
        second (others took some). `ahead` > 0 keeps taking, consumer after consumer (quota `limit`),
        until `ahead` messages are taken beyond those returned: they arrive while the caller
        publishes and are returned by the next calls. Whatever is taken and not returned is given back
        by `end_take`. Deliveries that reach pika after a cancel are rejected with requeue by pika
        itself: nothing is held that was not returned."""
        limit = max(0, min(limit, MAX_REPLAY_BATCH))
        ahead = max(0, min(ahead, 2 * MAX_REPLAY_BATCH))
        where = f"take messages from queue {source!r} in vhost {self.vhost!r}"
        conn = self.amqp.connection()
        self._check_round()
        ch = self.amqp.channel("replay")
        key = (self.amqp.generation, self.amqp.channel_id("replay"))
        taker = self._taker
        if taker is not None and taker.key == key and taker.source != source:
            self.end_take()  # another queue's leftovers: give them back
            taker.source = source
        if taker is None or taker.key != key:  # (a lost channel's leftovers went back with it)
            taker = self._taker = _Taker(key, source, ch, self._unacked.for_channel(key))
        with self.amqp.errors(where):
            taker.unit = max(1, limit)
            taker.allowance = limit + ahead if ahead else 0  # consumers chained while waiting
            if taker.done < limit and taker.tag is None:
                wanted = min(limit - taker.done, self._ready_count(source))
                lost = self.amqp.lost_at
                if wanted <= 0 and lost is not None and time.monotonic() - lost < _REQUEUE_GRACE_S:
                    # Right after a lost link what it held may not be back in the queue yet: a
                    # consumer waits for it (up to the idle second) instead of reporting it empty.
                    wanted = limit - taker.done
                if wanted > 0:
                    taker.start(conn, wanted)
            seen, idle_since = len(taker.buffer), time.monotonic()
            while taker.done < limit and taker.tag is not None:
                _pump_until(conn, ch, lambda: taker.done >= limit or taker.tag is None)
                if len(taker.buffer) != seen:
                    seen, idle_since = len(taker.buffer), time.monotonic()
                elif time.monotonic() - idle_since >= _STREAM_IDLE_S:
                    break
            if taker.done < limit:
                taker.cancel()  # idle: what its consumer took may be returned (and acked) now
            out = taker.buffer[:limit]
            del taker.buffer[:limit]
            taker.allowance = ahead
            if ahead and len(out) == limit and taker.tag is None:
                taker.chain(conn)
        if out:
            self._replaying = self.amqp.generation
        return out

    def _check_round(self) -> None:
        """A replay round (takes until `end_take`) must not go on silently on a new connection: its
        caller still holds messages and unconfirmed copies of the lost one."""
        if self._replaying is not None and self._replaying != self.amqp.generation:
            self._replaying = None
            raise UnreachableError(
                f"lost the connection to RabbitMQ at {self.amqp.address} during the replay: RabbitMQ "
                "has put back the messages it held",
                AMQP_HINT,
            )

    def end_take(self) -> None:
        """Stop taking ahead: cancel `take_for_replay`'s consumer and nack-requeue what it took and
        did not return. No-op when the connection that took them is gone (they are back already)."""
        self._replaying = None
        taker = self._taker
        if taker is None or taker.key != (self.amqp.generation, self.amqp.channel_id("replay")):
            self._taker = None
            return
        with self.amqp.errors(f"stop taking messages from queue {taker.source!r}"):
            taker.cancel()
        taker.allowance = 0
        held, taker.buffer = taker.buffer, []
        if held:
            self.settle_many(held, ack=False, requeue=True)

    def settle_many(self, messages: list[BrokerMessage], *, ack: bool, requeue: bool = True) -> None:
        """`settle` for several messages with one network write (acks have no reply); a run of them
        at the head of the channel's unsettled deliveries is settled by one ``multiple`` frame."""
        if not messages:
            return
        if self.amqp.is_open:
            with contextlib.suppress(UnreachableError):
                self.amqp.connection()
        for message in messages:
            check_settleable(
                message,
                replay_handle(message),
                generation=self.amqp.generation,
                channel_id=self.amqp.channel_id("replay"),
                connected=self.amqp.is_open,
                address=self.amqp.address,
                what="messages",
            )
        ch = self.amqp.channel("replay")  # the one that took them: checked above
        conn = self.amqp.current()  # (reopening it here would leave `ch` closed)
        unacked = self._unacked.for_channel((self.amqp.generation, self.amqp.channel_id("replay")))
        with self.amqp.errors(f"settle messages of queue {messages[0].source!r}"):
            number = ch.channel_number
            method: Callable[[int, bool], Any] = (
                (lambda tag, multiple: Basic.Ack(delivery_tag=tag, multiple=multiple))
                if ack
                else (lambda tag, multiple: Basic.Nack(delivery_tag=tag, multiple=multiple, requeue=requeue))
            )
            frames = [
                pika.frame.Method(number, method(tag, multiple)).marshal()
                for tag, multiple in unacked.settle(m.handle[2] for m in messages)
            ]
            _write(conn, ch, frames)
            conn.process_data_events(time_limit=0)

    def settle(self, message: BrokerMessage, *, ack: bool, requeue: bool = True) -> None:
        """Ack (done) or nack (`requeue`: back to the queue; else dead-lettered or dropped)."""
        handle = replay_handle(message)
        tag = handle[2]
        if self.amqp.is_open:
            with contextlib.suppress(UnreachableError):
                self.amqp.connection()  # notices a connection lost meanwhile (and reopens it)
        check_settleable(
            message,
            handle,
            generation=self.amqp.generation,
            channel_id=self.amqp.channel_id("replay"),
            connected=self.amqp.is_open,
            address=self.amqp.address,
        )
        ch = self.amqp.channel("replay")  # the one that took them: checked above
        conn = self.amqp.current()  # (reopening it here would leave `ch` closed)
        unacked = self._unacked.for_channel((self.amqp.generation, self.amqp.channel_id("replay")))
        with self.amqp.errors(f"settle a message of queue {message.source!r}"):
            if ack:
                ch.basic_ack(delivery_tag=tag)
            else:
                ch.basic_nack(delivery_tag=tag, requeue=requeue)
            unacked.settle([tag])
            # basic.ack has no reply: reading what is pending makes a lost link show here, not later.
            conn.process_data_events(time_limit=0)

    def purge(self, source: str) -> int:
        """Empty queue `source`; returns how many messages it held (AMQP queue.purge says so)."""
        ch = self.amqp.channel("main")
        with self.amqp.errors(f"purge queue {source!r} in vhost {self.vhost!r}"):
            frame = ch.queue_purge(source)
        count = getattr(frame.method, "message_count", 0)
        return int(count or 0)

    # -- tail ----------------------------------------------------------------------------------
    def tail(self, target: str, sink: Callable[[BrokerMessage], None], cancel: CancelToken) -> None:
        """Deliver copies of the messages routed through exchange `target` to `sink` until cancelled.

        A temporary exclusive, auto-delete, server-named queue on a connection of its own is bound to
        the exchange with copies of the exchange's bindings (re-read every few seconds), so the tail
        sees exactly what reaches some destination, and takes nothing from anyone.

        A queue cannot be observed without consuming from it (AMQP has no browse), which would take
        messages from its consumers: for a queue target this raises `UnsupportedError` naming the
        exchanges bound to it, which can be tailed instead. Plugin exchange types that pick one
        destination (e.g. ``x-consistent-hash``) are refused too: a copy binding would divert messages.
        """
        info = tail_exchange_info(self.http, self.vhost, target)
        conn = self.amqp.open_connection(own=False)
        where = f"tail exchange {target!r} in vhost {self.vhost!r}"
        try:
            with self.amqp.errors(where, own=False):
                ch = conn.channel()
                queue = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
                bound: set[str] = set()
                self._mirror_bindings(ch, target, queue, info, bound)

                def on_message(_ch: Any, method: Basic.Deliver, props: BasicProperties, body: bytes) -> None:
                    sink(to_message(target, method, props, body, None))

                ch.basic_consume(queue, on_message, auto_ack=True)
                last_rebind = time.monotonic()
                while not cancel.cancelled:
                    conn.process_data_events(time_limit=_TAIL_POLL_S)
                    if time.monotonic() - last_rebind >= _TAIL_REBIND_S:
                        self._mirror_bindings(ch, target, queue, info, bound)
                        last_rebind = time.monotonic()
        finally:
            with contextlib.suppress(Exception):
                conn.close()  # the exclusive queue goes with its connection

    def _mirror_bindings(
        self, ch: BlockingChannel, exchange: str, queue: str, info: dict[str, Any], bound: set[str]
    ) -> None:
        for b in self.http.exchange_source_bindings(self.vhost, exchange):
            key = str(b.get("routing_key", ""))
            args = dict(b.get("arguments") or {})
            ident = repr((key, sorted(args.items())))
            if b.get("destination") == queue or ident in bound:
                continue
            ch.queue_bind(queue, exchange, routing_key=key, arguments=args or None)
            bound.add(ident)

    def stats(self) -> Snapshot:
        """Queue and exchange statistics from the management API (see `rabbitmq_http.snapshot`)."""
        return snapshot(self.http, self.vhost)


def _pump_until(
    conn: pika.BlockingConnection, ch: BlockingChannel, done: Callable[[], bool], limit: float = 0.05
) -> None:
    """Process I/O until `done()` or `limit` seconds passed; raise if the channel closed.

    ``process_data_events(time_limit)`` would always wait the whole time limit here: the callbacks
    registered on ``ch._impl`` do not count as events for it. Waiting only as long as needed is what
    lets a batch go out the moment its last confirm arrived.
    """
    fired: list[bool] = []
    loop = conn._impl.ioloop
    timer = loop.call_later(limit, lambda: fired.append(True))
    try:
        ch._flush_output(lambda: bool(fired), done)
    finally:
        if not fired:
            loop.remove_timeout(timer)
    if not ch.is_open:
        reason = getattr(ch._impl, "_closing_reason", None)
        if isinstance(reason, pex.ChannelClosedByBroker):
            raise reason
        raise pex.ChannelWrongStateError(f"the channel closed: {reason}")


class _NotEncodable(Exception):
    """A message AMQP cannot carry as given (the text says why); it is not published."""


def _publish_frames(
    number: int, message: OutgoingMessage, props: BasicProperties, body_max: int
) -> list[bytes]:
    """The marshalled method, header and body frames of one ``basic.publish`` on channel `number`
    (`_NotEncodable` when AMQP cannot carry the message)."""
    for what, name in (("exchange name", message.target), ("routing key", message.key)):
        size = len(name.encode("utf-8", "surrogatepass"))
        if size > 255:
            raise _NotEncodable(f"the {what} is {size} octets long; AMQP allows at most 255")
    body = message.body
    try:
        frames = [
            pika.frame.Method(
                number,
                Basic.Publish(exchange=message.target, routing_key=message.key, mandatory=message.mandatory),
            ).marshal(),
            pika.frame.Header(number, len(body), props).marshal(),
        ]
    except pex.ShortStringTooLong as exc:
        raise _NotEncodable(f"a property is longer than the 255 octets AMQP allows: {exc}") from None
    except pex.UnsupportedAMQPFieldException as exc:
        value = exc.args[-1] if exc.args else None
        raise _NotEncodable(
            f"AMQP has no type for a header value of type {type(value).__name__}: {value!r}"
        ) from None
    except (struct.error, TypeError, ValueError, AssertionError, UnicodeError) as exc:
        raise _NotEncodable(f"the properties cannot be encoded: {exc}") from None
    frames += [
        pika.frame.Body(number, body[i : i + body_max]).marshal() for i in range(0, len(body), body_max)
    ]
    return frames


def _write(conn: pika.BlockingConnection, ch: BlockingChannel, frames: list[bytes]) -> None:
    """Queue marshalled frames as one write: pika sends each frame it is given with a syscall of its
    own (three per publish), which costs more than the encoding on a busy machine."""
    if not frames:
        return
    if not conn._impl.is_open:
        raise pex.ConnectionWrongStateError("Attempted to send a frame on closed connection.")
    if not ch.is_open:
        raise pex.ChannelWrongStateError("Channel is closed.")
    conn._impl._output_marshaled_frames([b"".join(frames)])


class _Taker:
    """`take_for_replay`'s consumers on the replay channel `key` and what they took and it did not
    return yet: the messages of consumers that are done first, then those of the running one. One per
    channel (it knows whether a consume-ok is still to come)."""

    def __init__(
        self, key: tuple[int, int | None], source: str, ch: BlockingChannel, unacked: Unacked
    ) -> None:
        self.key, self.source, self.ch, self.unacked = key, source, ch, unacked
        self.buffer: list[BrokerMessage] = []
        self.tag: str | None = None  # the running consumer
        self.consuming = False  # its basic.consume sent, the consume-ok not received yet
        self.quota = 0
        self.delivered = 0
        self.unit = 1  # the quota of a chained consumer
        self.allowance = 0  # chain consumers while fewer than this many are taken and not returned
        self.prefetch = 0  # the channel's basic.qos (0 = unlimited, RabbitMQ's default)

    @property
    def done(self) -> int:
        """Messages in the buffer whose consumer is done (they may be returned, and acked)."""
        return len(self.buffer) - (self.delivered if self.tag is not None else 0)

    def start(self, conn: pika.BlockingConnection | None, quota: int) -> None:
        """A consumer that may deliver `quota` messages (its prefetch; cancelled once it did)."""
        ch = self.ch
        while self.consuming and conn is not None:  # a consume-ok is still to come (see below)
            _pump_until(conn, ch, lambda: not self.consuming)
        # BlockingChannel latches every basic.consume-ok of its channel and refuses a second one
        # unless reset: its own basic_consume resets it, and this consumer is made on ch._impl.
        ch._basic_consume_ok_result.reset()
        self.quota, self.delivered, self.consuming = quota, 0, True
        if quota != self.prefetch:  # it applies to the consumers made after it: set only on change
            ch._impl.basic_qos(prefetch_count=quota)
            self.prefetch = quota
        self.tag = ch._impl.basic_consume(self.source, self._on_message, auto_ack=False, callback=self._on_ok)

    def chain(self, conn: pika.BlockingConnection | None) -> None:
        """The next consumer, if fewer than `allowance` messages are taken and not returned (from a
        callback, `conn` None: only if no consume-ok is to come, else the next take starts it)."""
        room = self.allowance - len(self.buffer)
        if room > 0 and self.ch.is_open and (conn is not None or not self.consuming):
            self.start(conn, min(self.unit, room))

    def _on_ok(self, _frame: Any) -> None:
        self.consuming = False

    def cancel(self) -> None:
        tag, self.tag = self.tag, None
        if tag is not None and self.ch.is_open:
            self.ch._impl.basic_cancel(tag)  # nowait: later deliveries are rejected (requeued) by pika

    def _on_message(self, _ch: Any, method: Basic.Deliver, props: BasicProperties, body: bytes) -> None:
        self.unacked.add(method.delivery_tag)
        self.buffer.append(to_message(self.source, method, props, body, (*self.key, method.delivery_tag)))
        if method.consumer_tag == self.tag:
            self.delivered += 1
            if self.delivered >= self.quota:
                self.cancel()
                # Its consume-ok came before its first delivery: none is pending, start() needs no wait.
                self.chain(None)


class _Confirms(Confirms):
    """`Confirms` fed by pika's ``basic.ack`` / ``basic.nack`` frames."""

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        self.confirmed(int(method.delivery_tag), bool(method.multiple), isinstance(method, Basic.Ack))

    def form(self, props: Any) -> tuple[Any, bool]:
        """The encoding a return of `props` decodes to and pika encodes again: exact when that is the
        encoding sent (pika's decoding lost nothing, so equal forms are equal messages on the wire).
        Float headers are exact since `rabbitmq_pika` (they are sent as doubles and decode as such)."""
        sent = b"".join(props.encode())
        again = b"".join(BasicProperties().decode(sent).encode())
        return again, again == sent

    def returned_form(self, props: Any) -> Any:
        return b"".join(props.encode())


def _returned(exc: pex.UnroutableError) -> str:
    returned = exc.messages[0] if getattr(exc, "messages", None) else None
    method = getattr(returned, "method", None)
    if method is not None:
        return f"returned by RabbitMQ: ({method.reply_code}) {method.reply_text}"
    return "returned by RabbitMQ: no queue is bound for this routing key"
