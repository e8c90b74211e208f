"""Messages to and from JSON Lines files, exactly: one JSON object per message per line.

Owns: `encode_value` / `decode_value` (tagged JSON for AMQP field values), `message_to_json` /
`message_from_json`, `dump_line` / `load_line`, `export_messages` (non-destructive) and
`import_messages`. Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.

A line holds ``source``, ``exchange``, ``routing_key``, ``redelivered``, ``timestamp_ms``,
``partition``, ``offset``, ``properties``, ``headers`` and ``body`` with ``body_encoding``: ``"utf-8"``
(the body as text, when it decodes strictly) or ``"base64"``. Header and property values keep their
types: JSON strings, ints, floats and booleans stand for themselves (``1`` vs ``1.0`` vs ``true``
survive), lists are arrays, and everything JSON cannot say is a one-key tagged object:
``{"$bytes": base64}``, ``{"$datetime": iso-8601}``, ``{"$decimal": text}``, ``{"$float": "nan"}``
(non-finite), ``{"$tuple": [...]}``, ``{"$str": base64 of UTF-8 with surrogates}`` (a str that is not
valid Unicode text), and ``{"$table": {...}}`` for a nested table whose keys could be mistaken for a
tag (any key starting with ``$``). Other nested tables are plain objects. Export → import is
byte-exact for bodies and value-exact (type included) for headers and properties.

Exporting never removes a message: backends that read in place (embedded, Kafka) are peeked; a
RabbitMQ queue is read with `consume_for_replay`, every message held until the end and then
nack-requeued (which sets their ``redelivered`` flag, as RabbitMQ's own get + requeue peek does).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mqstudio.backends.base import (
    Backend,
    BackendKind,
    BrokerMessage,
    CancelledError,
    CancelToken,
    OutgoingMessage,
    Progress,
)

__all__ = [
    "ExportResult",
    "ImportResult",
    "JsonlError",
    "decode_value",
    "dump_line",
    "encode_value",
    "export_messages",
    "import_messages",
    "load_line",
    "message_from_json",
    "message_to_json",
    "read_messages",
    "write_messages",
]

FORMAT = "mqstudio-message/1"
_BATCH = 200
_TAGS = frozenset({"$bytes", "$datetime", "$decimal", "$float", "$tuple", "$str", "$table"})


class JsonlError(ValueError):
    """A line that is not a message this module wrote; `line` is 1-based."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


# -- values -----------------------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def encode_value(value: Any) -> Any:
    """`value` (an AMQP field value as clients return it) as JSON data, tagged where needed."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return {"$str": _b64(value.encode("utf-8", "surrogatepass"))}
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": _b64(bytes(value))}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode_value(v) for v in value]}
    if isinstance(value, Mapping):
        table = {str(k): encode_value(v) for k, v in value.items()}
        return {"$table": table} if any(k.startswith("$") for k in table) else table
    raise TypeError(f"cannot export a header value of type {type(value).__name__}")


def decode_value(data: Any) -> Any:
    """The inverse of `encode_value`."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        ((tag, inner),) = data.items()
        if tag in _TAGS:
            return _untag(tag, inner)
    return {k: decode_value(v) for k, v in data.items()}


def _untag(tag: str, inner: Any) -> Any:
    if tag == "$bytes":
        return base64.b64decode(inner, validate=True)
    if tag == "$datetime":
        return datetime.fromisoformat(inner)
    if tag == "$decimal":
        return Decimal(inner)
    if tag == "$float":
        return float(inner)
    if tag == "$tuple":
        return tuple(decode_value(v) for v in inner)
    if tag == "$str":
        return base64.b64decode(inner, validate=True).decode("utf-8", "surrogatepass")
    return {k: decode_value(v) for k, v in inner.items()}  # $table


# -- messages ---------------------------------------------------------------------------------------
def message_to_json(message: BrokerMessage) -> dict[str, Any]:
    try:
        body, encoding = message.body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = _b64(message.body), "base64"
    return {
        "format": FORMAT,
        "source": message.source,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "redelivered": message.redelivered,
        "timestamp_ms": message.timestamp_ms,
        "partition": message.partition,
        "offset": message.offset,
        "properties": encode_value(dict(message.properties)),
        "headers": encode_value(dict(message.headers)),
        "body_encoding": encoding,
        "body": body,
    }


def _table(data: Any, name: str) -> dict[str, Any]:
    value = decode_value(data if data is not None else {})
    if not isinstance(value, dict):
        raise JsonlError(f"{name} must be an object")
    return value


def message_from_json(data: Any) -> BrokerMessage:
    if not isinstance(data, dict) or not isinstance(data.get("body"), str):
        raise JsonlError("not an exported message (no body)")
    encoding = data.get("body_encoding", "utf-8")
    if encoding == "base64":
        body = base64.b64decode(data["body"], validate=True)
    elif encoding == "utf-8":
        body = data["body"].encode("utf-8")
    else:
        raise JsonlError(f"unknown body_encoding {encoding!r}")
    return BrokerMessage(
        source=str(data.get("source", "")),
        body=body,
        exchange=str(data.get("exchange", "")),
        routing_key=str(data.get("routing_key", "")),
        headers=_table(data.get("headers"), "headers"),
        properties=_table(data.get("properties"), "properties"),
        redelivered=bool(data.get("redelivered", False)),
        timestamp_ms=data.get("timestamp_ms"),
        partition=data.get("partition"),
        offset=data.get("offset"),
    )


def dump_line(message: BrokerMessage) -> str:
    """One line of JSON (no newline inside: JSON escapes every control character)."""
    return json.dumps(message_to_json(message), ensure_ascii=False, separators=(",", ":"))


def load_line(line: str, number: int = 0) -> BrokerMessage:
    try:
        return message_from_json(json.loads(line))
    except JsonlError as exc:
        raise JsonlError(str(exc), number) from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise JsonlError(f"not a JSON message: {exc}", number) from None


def write_messages(path: str | os.PathLike[str], messages: list[BrokerMessage]) -> None:
    """Write `messages` to `path` atomically (a temporary file renamed over it)."""
    with _atomic(Path(path)) as out:
        for message in messages:
            out.write(dump_line(message) + "\n")


def read_messages(path: str | os.PathLike[str]) -> Iterator[BrokerMessage]:
    """The messages of a JSONL file in order; blank lines are skipped."""
    with open(path, encoding="utf-8", newline="\n") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield load_line(line, number)


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Any]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- with a backend ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExportResult:
    count: int
    path: str
    method: str  # "peek" or "take-and-requeue"


@dataclass(frozen=True, slots=True)
class ImportResult:
    published: int
    unconfirmed: int
    unroutable: int


def peeks_in_place(backend: Backend) -> bool:
    """True when `peek` has no side effects (embedded: in place; Kafka: reads without committing)."""
    return backend.kind in (BackendKind.EMBEDDED, BackendKind.KAFKA)


def _check(cancel: CancelToken | None, what: str) -> None:
    if cancel is not None and cancel.cancelled:
        raise CancelledError(f"{what} was cancelled")


def export_messages(
    backend: Backend,
    source: str,
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    *,
    limit: int | None = None,
) -> ExportResult:
    """Write the messages of queue/topic `source` (all, or the first `limit`) to `path` without
    removing any (see the module docstring). A cancelled export leaves no file and raises
    `CancelledError`; on RabbitMQ every held message is requeued in any case."""
    target = Path(path)
    wanted = limit if limit is not None else 2**31 - 1
    if peeks_in_place(backend):
        messages = backend.peek(source, wanted)
        _check(cancel, "the export")
        with _atomic(target) as out:
            for done, message in enumerate(messages, start=1):
                out.write(dump_line(message) + "\n")
                if progress is not None and done % _BATCH == 0:
                    progress(done, len(messages), f"exported {done} of {len(messages)}")
                    _check(cancel, "the export")
        return ExportResult(len(messages), str(target), "peek")
    held: list[BrokerMessage] = []
    try:
        with _atomic(target) as out:
            while len(held) < wanted:
                _check(cancel, "the export")
                batch = backend.consume_for_replay(source, min(_BATCH, wanted - len(held)))
                if not batch:
                    break
                held.extend(batch)
                for message in batch:
                    out.write(dump_line(message) + "\n")
                if progress is not None:
                    progress(len(held), 0, f"exported {len(held)}")
    finally:
        for message in held:
            backend.settle(message, ack=False, requeue=True)
    return ExportResult(len(held), str(target), "take-and-requeue")


def import_messages(
    path: str | os.PathLike[str],
    backend: Backend,
    target: str,
    *,
    exchange: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Publish every message of the file to queue/topic `target` (RabbitMQ: through the default
    exchange, so exactly that queue gets it) with its headers and properties unchanged, or with
    `exchange` to that exchange under each message's own routing key."""
    messages = list(read_messages(path))
    published = unconfirmed = unroutable = 0
    kafka = backend.kind is BackendKind.KAFKA
    for done, message in enumerate(messages, start=1):
        _check(cancel, "the import")
        if kafka:
            out = OutgoingMessage(target, message.body, message.routing_key, dict(message.headers))
        elif exchange is not None:
            out = OutgoingMessage(exchange, message.body, message.routing_key, dict(message.headers),
                                  dict(message.properties))
        else:
            out = OutgoingMessage("", message.body, target, dict(message.headers), dict(message.properties))
        result = backend.publish(out)
        if not result.confirmed:
            unconfirmed += 1
        elif not result.routed:
            unroutable += 1
        else:
            published += 1
        if progress is not None:
            progress(done, len(messages), f"imported {done} of {len(messages)}")
    return ImportResult(published, unconfirmed, unroutable)
