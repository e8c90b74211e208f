"""Persistence back-ends of the embedded broker engine: the `Store` protocol, `SqliteStore`, `NullStore`.

Owns: what is written (the `Batch` of changes one `Broker.commit()` hands over), what is read back
at start-up (`StoredState`), the tagged-JSON codec for AMQP field values (`encode_value`,
`decode_value`, `encode_properties`, `decode_properties`), `SqliteStore` (one SQLite file, schema
versioned with PRAGMA user_version) and `NullStore` (keeps nothing; for tests and benchmarks of the
bookkeeping alone). Which objects and messages are persistent, and the pending-work bookkeeping,
belong to `mqstudio.broker.journal`; this module only stores what it is given.
Must not import anything outside the stdlib (sqlite3 is stdlib) and this package's errors-free parts.

Durability trade-off (SQLite in WAL mode):
- ``durability="power"`` (default): ``synchronous=FULL``; every commit fsyncs the WAL, so a commit
  that returned survives a power loss or OS crash. This is what a publisher confirm promises.
- ``durability="process"``: ``synchronous=NORMAL``; a commit that returned survives the broker process
  being killed (SIGKILL, crash) because the data is in the OS page cache, but the last commits can be
  lost on power loss or kernel panic (the WAL is fsynced only at checkpoints). Several times faster
  when each commit is small.

Message properties and x-arguments are stored as tagged JSON, never pickle: a store file must not be
able to run code when it is opened. Every JSON object in the encoding is a one-key tag, so the
decoding is unambiguous: ``{"m": {...}}`` table, ``{"b": base64}`` bytes, ``{"d": "1.5"}`` decimal,
``{"t": iso-8601}`` timestamp, ``{"f": "nan"}`` non-finite float, ``{"r": text}`` for a value of a type
AMQP cannot carry (kept as its text). Arrays are JSON arrays; str, int, finite float, bool and None
are themselves. A message's dead-letter history (`Message.deaths`, the broker's own, never derived
from headers) is stored next to its properties as plain JSON (`encode_deaths`), NULL when empty.

Schema versions: 1 had no dead-letter history column; opening a version 1 file adds it (NULL for the
rows already there: those messages are treated as never dead-lettered by this broker, so a copied
x-death header can never make the engine drop them as a cycle).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import operator
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from mqstudio.broker.message import NO_DEATHS, Death, Properties

__all__ = [
    "SCHEMA_VERSION",
    "STORE_FILENAME",
    "Batch",
    "Durability",
    "NullStore",
    "SqliteStore",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "StoredBinding",
    "StoredExchange",
    "StoredMessage",
    "StoredQueue",
    "StoredState",
    "decode_deaths",
    "decode_properties",
    "decode_value",
    "encode_deaths",
    "encode_properties",
    "encode_value",
]

SCHEMA_VERSION = 2
STORE_FILENAME = "broker.sqlite3"
# PRAGMA application_id: "mqst". Lets us tell our files from other SQLite databases.
APPLICATION_ID = 0x6D717374

Durability = Literal["process", "power"]


class StoreError(Exception):
    """The store cannot be opened, read or written. `path` names the file."""

    def __init__(self, text: str, path: str = "") -> None:
        super().__init__(text)
        self.path = path


class StoreVersionError(StoreError):
    """The file was written by a newer mqstudio (schema version above ours)."""


class StoreCorruptError(StoreError):
    """The file is not a readable mqstudio store (damaged, truncated, or some other file)."""


class StoreLockedError(StoreError):
    """Another broker process has the store open."""


# -- tagged JSON codec ---------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """An AMQP field value as JSON-compatible data with type tags (see module docstring)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is dict:
        return {"m": {str(k): encode_value(v) for k, v in value.items()}}
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"f": repr(value)}  # 'nan', 'inf', '-inf'
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, Mapping):
        return {"m": {str(k): encode_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return {"r": str(value)}


def decode_value(data: Any) -> Any:
    """Inverse of `encode_value` (tuples come back as lists, as pamqp decodes arrays)."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    if len(data) != 1:
        raise ValueError(f"not a tagged value: {data!r}")
    ((tag, payload),) = data.items()
    if tag == "m":
        return {k: decode_value(v) for k, v in payload.items()}
    if tag == "b":
        return base64.b64decode(payload)
    if tag == "d":
        return Decimal(payload)
    if tag == "t":
        return datetime.fromisoformat(payload)
    if tag == "f":
        return float(payload)
    if tag == "r":
        return str(payload)
    raise ValueError(f"unknown value tag {tag!r}")


# One encoder for every write: json.dumps with options would build a new one per call.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode_arguments(arguments: Mapping[str, Any] | None) -> str:
    """x-arguments (a field table) as stored text."""
    return _dumps(encode_value(dict(arguments or {})))


def decode_arguments(text: str) -> dict[str, Any]:
    value = decode_value(json.loads(text))
    if not isinstance(value, dict):
        raise ValueError("arguments are not a table")
    return value


_PROPERTY_NAMES = tuple(f.name for f in fields(Properties))
_property_values = operator.attrgetter(*_PROPERTY_NAMES)
_EMPTY_PROPERTIES_TEXT = "{}"


def encode_properties(properties: Properties) -> str:
    """The set properties (None ones left out) as stored text."""
    out = {
        name: value if type(value) is str or type(value) is int else encode_value(value)
        for name, value in zip(_PROPERTY_NAMES, _property_values(properties), strict=True)
        if value is not None
    }
    return _dumps(out) if out else _EMPTY_PROPERTIES_TEXT


def decode_properties(text: str) -> Properties:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("properties are not an object")
    unknown = set(data) - set(_PROPERTY_NAMES)
    if unknown:
        raise ValueError(f"unknown properties {sorted(unknown)}")
    return Properties(**{k: decode_value(v) for k, v in data.items()})


def encode_deaths(deaths: tuple[Death, ...]) -> str | None:
    """A message's dead-letter history as stored text (None when it has none)."""
    if not deaths:
        return None
    return _dumps(
        [
            [d.queue, d.reason, d.count, d.time_ms, d.exchange, list(d.routing_keys), d.original_expiration]
            for d in deaths
        ]
    )


def _typed(value: Any, type_: type) -> Any:
    if type(value) is not type_:
        raise ValueError(f"dead-letter history field {value!r} is not a {type_.__name__}")
    return value


def decode_deaths(text: str | None) -> tuple[Death, ...]:
    if text is None:
        return NO_DEATHS
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("dead-letter history is not a list")
    out = []
    for row in data:
        if not isinstance(row, list) or len(row) != 7:
            raise ValueError(f"malformed dead-letter history entry {row!r}")
        queue, reason, count, time_ms, exchange, keys, expiration = row
        out.append(
            Death(
                _typed(queue, str),
                _typed(reason, str),
                _typed(count, int),
                _typed(time_ms, int),
                _typed(exchange, str),
                tuple(_typed(k, str) for k in _typed(keys, list)),
                None if expiration is None else _typed(expiration, str),
            )
        )
    return tuple(out)


# -- what is written and read ----------------------------------------------------------------------


@dataclass(slots=True)
class Batch:
    """Everything one `Broker.commit()` writes, applied as one transaction.

    `ops` are definition changes in the order they happened: (kind, named parameters), kinds
    vhost+/vhost-/exchange+/exchange-/queue+/queue-/binding+/binding-. The message lists are
    applied after them: content rows, queue rows, queue-row updates (delivered flag, delivery
    count), queue-row deletes, content deletes. Rows created and removed within one batch never
    reach the store at all.
    """

    ops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # (content id, exchange, routing key, properties text, body, dead-letter history text | None)
    contents: list[tuple[int, str, str, str, bytes, str | None]] = field(default_factory=list)
    # [queue id, seq, content id, enqueued ms, expires ms | None, priority, delivered, delivery count]
    messages: list[list[Any]] = field(default_factory=list)
    # (delivered, delivery count, queue id, seq)
    updates: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (queue id, seq)
    deletes: list[tuple[int, int]] = field(default_factory=list)
    content_deletes: list[tuple[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.ops)
            + len(self.contents)
            + len(self.messages)
            + len(self.updates)
            + len(self.deletes)
            + len(self.content_deletes)
        )


@dataclass(frozen=True, slots=True)
class StoredExchange:
    vhost: str
    name: str
    type: str
    auto_delete: bool
    internal: bool
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredQueue:
    id: int
    vhost: str
    name: str
    auto_delete: bool
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredBinding:
    vhost: str
    source: str
    destination_kind: str  # "queue" | "exchange"
    destination: str
    routing_key: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    queue_id: int
    seq: int
    content_id: int
    enqueued_ms: int
    expires_ms: int | None
    priority: int
    delivered: bool
    delivery_count: int


@dataclass(slots=True)
class StoredState:
    """The whole store as read at start-up.

    `contents`: id -> (exchange, routing key, properties, body, dead-letter history).
    """

    vhosts: list[str] = field(default_factory=list)
    exchanges: list[StoredExchange] = field(default_factory=list)
    queues: list[StoredQueue] = field(default_factory=list)
    bindings: list[StoredBinding] = field(default_factory=list)
    contents: dict[int, tuple[str, str, Properties, bytes, tuple[Death, ...]]] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)


class Store(Protocol):
    """A persistence back-end. The engine calls `load()` once at start-up, then `apply()` per commit."""

    @property
    def location(self) -> str:
        """Where the data lives (a file path), for messages and logs."""
        ...

    def load(self) -> StoredState: ...

    def apply(self, batch: Batch) -> None:
        """Write the batch as one atomic transaction; raise StoreError (nothing written) on failure."""
        ...

    def close(self) -> None: ...


class NullStore:
    """Stores nothing and recovers nothing: the engine's bookkeeping without any I/O."""

    location = ":null:"

    def __init__(self) -> None:
        self.batches = 0
        self.written = 0

    def load(self) -> StoredState:
        return StoredState()

    def apply(self, batch: Batch) -> None:
        self.batches += 1
        self.written += len(batch)

    def close(self) -> None:
        pass


# -- SQLite ----------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE vhosts (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE exchanges (
    vhost TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
    auto_delete INTEGER NOT NULL, internal INTEGER NOT NULL, arguments TEXT NOT NULL,
    PRIMARY KEY (vhost, name)
) WITHOUT ROWID;
CREATE TABLE queues (
    id INTEGER PRIMARY KEY, vhost TEXT NOT NULL, name TEXT NOT NULL,
    auto_delete INTEGER NOT NULL, arguments TEXT NOT NULL
);
CREATE UNIQUE INDEX queues_by_name ON queues (vhost, name);
CREATE TABLE bindings (
    vhost TEXT NOT NULL, source TEXT NOT NULL, dest_kind TEXT NOT NULL, dest TEXT NOT NULL,
    routing_key TEXT NOT NULL, args_key TEXT NOT NULL, arguments TEXT NOT NULL,
    PRIMARY KEY (vhost, source, dest_kind, dest, routing_key, args_key)
) WITHOUT ROWID;
CREATE INDEX bindings_by_dest ON bindings (vhost, dest_kind, dest);
CREATE TABLE contents (
    id INTEGER PRIMARY KEY, exchange TEXT NOT NULL, routing_key TEXT NOT NULL,
    properties TEXT NOT NULL, body BLOB NOT NULL, deaths TEXT
);
CREATE TABLE messages (
    queue_id INTEGER NOT NULL, seq INTEGER NOT NULL, content_id INTEGER NOT NULL,
    enqueued_ms INTEGER NOT NULL, expires_ms INTEGER, priority INTEGER NOT NULL,
    delivered INTEGER NOT NULL, delivery_count INTEGER NOT NULL,
    PRIMARY KEY (queue_id, seq)
) WITHOUT ROWID;
"""

# Statements per definition op; named parameters, so each statement takes what it needs.
_OP_SQL: dict[str, tuple[str, ...]] = {
    "vhost+": ("INSERT OR IGNORE INTO vhosts (name) VALUES (:vhost)",),
    "vhost-": (
        "DELETE FROM bindings WHERE vhost = :vhost",
        "DELETE FROM exchanges WHERE vhost = :vhost",
        "DELETE FROM messages WHERE queue_id IN (SELECT id FROM queues WHERE vhost = :vhost)",
        "DELETE FROM queues WHERE vhost = :vhost",
        "DELETE FROM vhosts WHERE name = :vhost",
    ),
    "exchange+": (
        "INSERT OR REPLACE INTO exchanges VALUES (:vhost, :name, :type, :auto_delete, :internal, :arguments)",
    ),
    "exchange-": (
        "DELETE FROM exchanges WHERE vhost = :vhost AND name = :name",
        "DELETE FROM bindings WHERE vhost = :vhost AND source = :name",
        "DELETE FROM bindings WHERE vhost = :vhost AND dest_kind = 'exchange' AND dest = :name",
    ),
    "queue+": ("INSERT INTO queues VALUES (:id, :vhost, :name, :auto_delete, :arguments)",),
    "queue-": (
        "DELETE FROM messages WHERE queue_id = :id",
        "DELETE FROM queues WHERE id = :id",
        "DELETE FROM bindings WHERE vhost = :vhost AND dest_kind = 'queue' AND dest = :name",
    ),
    "binding+": (
        "INSERT OR IGNORE INTO bindings VALUES "
        "(:vhost, :source, :dest_kind, :dest, :routing_key, :args_key, :arguments)",
    ),
    "binding-": (
        "DELETE FROM bindings WHERE vhost = :vhost AND source = :source AND dest_kind = :dest_kind "
        "AND dest = :dest AND routing_key = :routing_key AND args_key = :args_key",
    ),
}

_MOVE_AWAY = (
    "Move the file away to start with an empty broker (keep it for inspection), "
    "or run the broker with --in-memory."
)


def store_file(path: str | os.PathLike[str]) -> Path:
    """The database file for `path`: an existing directory holds `broker.sqlite3`; anything else is
    the file itself (its parent directories are created)."""
    p = Path(path)
    if p.is_dir():
        return p / STORE_FILENAME
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


class SqliteStore:
    """The broker's state in one SQLite file (WAL mode; see the module docstring for durability).

    Opening takes an exclusive lock for the life of the store, so a second broker process on the
    same file fails with `StoreLockedError` instead of both writing to it.
    """

    def __init__(self, path: str | os.PathLike[str], *, durability: Durability = "power") -> None:
        if durability not in ("process", "power"):
            raise ValueError(f"durability must be 'process' or 'power', not {durability!r}")
        self.path = store_file(path)
        self.durability: Durability = durability
        self.commits = 0
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves. The engine is single-threaded
            # but may be created on one thread and run on another (the server's loop thread).
            self._con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the broker store {self.path}: {e}", str(self.path)) from e
        try:
            self._setup()
        except BaseException:
            self._con.close()
            raise

    @property
    def location(self) -> str:
        return str(self.path)

    def _corrupt(self, detail: str) -> StoreCorruptError:
        return StoreCorruptError(
            f"the broker store {self.path} cannot be read: {detail}. {_MOVE_AWAY}", str(self.path)
        )

    def _setup(self) -> None:
        con = self._con
        try:
            con.execute("PRAGMA locking_mode = EXCLUSIVE")
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()
            sync = "FULL" if self.durability == "power" else "NORMAL"
            con.execute(f"PRAGMA synchronous = {sync}")
            # Take the exclusive lock now rather than at the first commit.
            con.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreLockedError(
                    f"the broker store {self.path} is in use by another broker process", str(self.path)
                ) from e
            raise self._corrupt(str(e)) from e
        except sqlite3.DatabaseError as e:
            raise self._corrupt(str(e)) from e
        try:
            if mode is None or str(mode[0]).lower() != "wal":
                raise self._corrupt(f"cannot switch to WAL mode (got {mode!r})")
            version = int(con.execute("PRAGMA user_version").fetchone()[0])
            app_id = int(con.execute("PRAGMA application_id").fetchone()[0])
            tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
                raise self._corrupt("it is an SQLite database, but not an mqstudio broker store")
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"the broker store {self.path} has schema version {version}, but this mqstudio "
                    f"understands versions up to {SCHEMA_VERSION}: it was written by a newer "
                    "mqstudio. Upgrade mqstudio, or use another data directory or --in-memory.",
                    str(self.path),
                )
            if version == 0:
                self._create()  # a new file, or an empty SQLite database
            elif version < SCHEMA_VERSION:
                self._migrate(version)
            con.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            self._rollback()
            raise self._corrupt(str(e)) from e
        except BaseException:
            self._rollback()
            raise

    def _create(self) -> None:
        con = self._con
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate(self, version: int) -> None:
        """Bring an older file up to SCHEMA_VERSION (inside the opening transaction)."""
        con = self._con
        if version < 2:
            con.execute("ALTER TABLE contents ADD COLUMN deaths TEXT")
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _rollback(self) -> None:
        if self._con.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._con.execute("ROLLBACK")

    def load(self) -> StoredState:
        con = self._con
        state = StoredState()
        try:
            state.vhosts = [r[0] for r in con.execute("SELECT name FROM vhosts ORDER BY name")]
            state.exchanges = [
                StoredExchange(r[0], r[1], r[2], bool(r[3]), bool(r[4]), decode_arguments(r[5]))
                for r in con.execute("SELECT * FROM exchanges ORDER BY vhost, name")
            ]
            state.queues = [
                StoredQueue(r[0], r[1], r[2], bool(r[3]), decode_arguments(r[4]))
                for r in con.execute("SELECT * FROM queues ORDER BY id")
            ]
            state.bindings = [
                StoredBinding(r[0], r[1], r[2], r[3], r[4], decode_arguments(r[5]))
                for r in con.execute(
                    "SELECT vhost, source, dest_kind, dest, routing_key, arguments FROM bindings"
                )
            ]
            state.contents = {
                r[0]: (r[1], r[2], decode_properties(r[3]), bytes(r[4]), decode_deaths(r[5]))
                for r in con.execute(
                    "SELECT id, exchange, routing_key, properties, body, deaths FROM contents"
                )
            }
            state.messages = [
                StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7])
                for r in con.execute("SELECT * FROM messages ORDER BY queue_id, seq")
            ]
        except sqlite3.DatabaseError as e:
            raise self._corrupt(str(e)) from e
        except (ValueError, TypeError, KeyError) as e:
            raise self._corrupt(f"a stored record is malformed ({e})") from e
        return state

    def apply(self, batch: Batch) -> None:
        con = self._con
        try:
            con.execute("BEGIN")
            for kind, params in batch.ops:
                for sql in _OP_SQL[kind]:
                    con.execute(sql, params)
            if batch.contents:
                con.executemany(
                    "INSERT INTO contents (id, exchange, routing_key, properties, body, deaths) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    batch.contents,
                )
            if batch.messages:
                con.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch.messages)
            if batch.updates:
                con.executemany(
                    "UPDATE messages SET delivered = ?, delivery_count = ? WHERE queue_id = ? AND seq = ?",
                    batch.updates,
                )
            if batch.deletes:
                con.executemany("DELETE FROM messages WHERE queue_id = ? AND seq = ?", batch.deletes)
            if batch.content_deletes:
                con.executemany("DELETE FROM contents WHERE id = ?", batch.content_deletes)
            con.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise StoreError(f"cannot write to the broker store {self.path}: {e}", str(self.path)) from e
        self.commits += 1

    def close(self) -> None:
        self._con.close()
