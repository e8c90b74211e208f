"""Where a dead letter came from, and the provenance headers a replayed copy carries.

Owns: `Origin` / `origin_of(message)` (the destination a dead letter is sent back to), `Death` /
`death_of(message)` (why and where it died, as a compact table), `replay_count`, `replay_job`,
`item_key(message)` (what the journal calls a message), `replay_headers(message, ...)` (the copy's
headers: broker bookkeeping removed, our provenance added) and the header names. Works on
`mqstudio.backends.base` values only; must not import Qt, `mqstudio.ui`, `mqstudio.app` or
`mqstudio.cli`.

Facts this relies on:

* RabbitMQ keeps one ``x-death`` table per {queue, reason} pair, **newest first**: ``x-death[0]`` is
  the death that put the message where it is now; its ``exchange`` and ``routing-keys[0]`` are what
  the message was published with before that death (dlx docs, "Dead-Lettered Messages"). Sending it
  there routes it back into the queue it died in (also when that was the default exchange: then the
  routing key is the queue's name).
* RabbitMQ 4 ignores a client-sent ``x-death`` (4.0 release notes), and ``x-first-death-*`` /
  ``x-last-death-*`` describe the old history: a replayed copy carries none of them, so the broker
  starts a fresh history if it dies again. Our own headers have no ``x-`` prefix, which RabbitMQ
  reserves.
* Spring AMQP's ``RepublishMessageRecoverer`` records ``x-original-exchange`` / ``x-original-routingKey``
  instead; they are used when there is no ``x-death``.
* Spring Kafka's ``DeadLetterPublishingRecoverer`` adds ``kafka_dlt-original-topic`` / ``-partition``
  / ``-offset`` (partition and offset as 4- and 8-byte big-endian integers) and
  ``kafka_dlt-exception-*``; Kafka Connect adds ``__connect.errors.topic`` / ``.partition`` / ...
  as strings. Both are read; the copy keeps neither (they describe the old failure).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mqstudio.backends.base import BrokerMessage

__all__ = [
    "DROPPED_PREFIXES",
    "H_COUNT",
    "H_DEATH",
    "H_FROM",
    "H_JOB",
    "Death",
    "Origin",
    "death_of",
    "item_key",
    "origin_of",
    "replay_count",
    "replay_headers",
    "replay_job",
]

H_COUNT = "mqstudio-replay-count"
H_FROM = "mqstudio-replayed-from"
H_JOB = "mqstudio-replay-job"
H_DEATH = "mqstudio-original-death"

DROPPED_HEADERS = frozenset({"x-death"})
DROPPED_PREFIXES = ("x-first-death-", "x-last-death-", "kafka_dlt-", "__connect.errors.")
"""Broker/framework bookkeeping about the old death: never copied into the replayed message."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where to send a message back: a RabbitMQ exchange + routing key, or a Kafka topic (+ partition)."""

    target: str
    key: str = ""
    partition: int | None = None
    source: str = ""
    """What it was read from: ``x-death``, ``x-original-exchange``, ``kafka_dlt`` or ``connect``."""

    def describe(self) -> str:
        if self.partition is not None:
            return f"topic {self.target!r} partition {self.partition}"
        if self.source in ("kafka_dlt", "connect"):
            return f"topic {self.target!r}"
        where = "the default exchange" if self.target == "" else f"exchange {self.target!r}"
        return f"{where} with routing key {self.key!r}"


@dataclass(frozen=True, slots=True)
class Death:
    """Why and where a message died (the newest death), as a compact header table."""

    reason: str = ""
    queue: str = ""
    exchange: str = ""
    routing_key: str = ""
    count: int = 0
    time: int | None = None  # seconds since the epoch

    def as_header(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "reason": self.reason,
            "queue": self.queue,
            "exchange": self.exchange,
            "routing-key": self.routing_key,
            "count": self.count,
        }
        if self.time is not None:
            table["time"] = self.time
        return table


def _text(value: Any) -> str:
    if type(value) is str:  # the usual case, first
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    return "" if value is None else str(value)


def _int(value: Any) -> int | None:
    """An int from an int, a decimal string, or a big-endian binary integer (Spring Kafka headers,
    which the Kafka backend hands over as a str when the bytes happen to be valid UTF-8)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.lstrip("-").isdigit():
            return int(stripped)
        try:
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            value = value.encode()
    if isinstance(value, bytes | bytearray) and len(value) in (4, 8):
        return int.from_bytes(value, "big", signed=True)
    if isinstance(value, bytes | bytearray):
        try:
            return int(value.decode())
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def _seconds(value: Any) -> int | None:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(moment.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def _x_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The newest ``x-death`` entry (read only: not copied)."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return None


def origin_of(message: BrokerMessage) -> Origin | None:
    """Where `message` was going when it died, or None when nothing in it says so."""
    headers = message.headers
    newest = _x_death(headers)
    if newest is not None and "exchange" in newest:
        keys = newest.get("routing-keys")
        key = _text(keys[0]) if isinstance(keys, list | tuple) and keys else message.routing_key
        return Origin(_text(newest.get("exchange")), key, source="x-death")
    if "x-original-exchange" in headers:
        return Origin(
            _text(headers.get("x-original-exchange")),
            _text(headers.get("x-original-routingKey", message.routing_key)),
            source="x-original-exchange",
        )
    topic = headers.get("kafka_dlt-original-topic")
    if topic not in (None, "", b""):
        return Origin(
            _text(topic), partition=_int(headers.get("kafka_dlt-original-partition")), source="kafka_dlt"
        )
    topic = headers.get("__connect.errors.topic")
    if topic not in (None, "", b""):
        return Origin(
            _text(topic), partition=_int(headers.get("__connect.errors.partition")), source="connect"
        )
    return None


def death_of(message: BrokerMessage) -> Death:
    """The newest death of `message` (empty fields where the message does not say)."""
    headers = message.headers
    newest = _x_death(headers)
    if newest is not None:
        keys = newest.get("routing-keys")
        return Death(
            reason=_text(newest.get("reason")),
            queue=_text(newest.get("queue")),
            exchange=_text(newest.get("exchange")),
            routing_key=_text(keys[0]) if isinstance(keys, list | tuple) and keys else "",
            count=_int(newest.get("count")) or 0,
            time=_seconds(newest.get("time")),
        )
    if "x-last-death-reason" in headers or "x-first-death-reason" in headers:
        which = "x-last-death-" if "x-last-death-reason" in headers else "x-first-death-"
        return Death(
            reason=_text(headers.get(which + "reason")),
            queue=_text(headers.get(which + "queue")),
            exchange=_text(headers.get(which + "exchange")),
            routing_key=message.routing_key,
            count=1,
        )
    if "kafka_dlt-original-topic" in headers:
        offset = _int(headers.get("kafka_dlt-original-offset"))
        return Death(
            reason=_text(
                headers.get("kafka_dlt-exception-message") or headers.get("kafka_dlt-exception-fqcn")
            ),
            queue=_text(headers.get("kafka_dlt-original-topic")),
            routing_key=f"offset {offset}" if offset is not None else "",
            count=1,
            time=(_int(headers.get("kafka_dlt-original-timestamp")) or 0) // 1000 or None,
        )
    if "__connect.errors.topic" in headers:
        return Death(
            reason=_text(headers.get("__connect.errors.exception.message")),
            queue=_text(headers.get("__connect.errors.topic")),
            count=1,
        )
    return Death()


def replay_count(message: BrokerMessage) -> int:
    """How many times mqstudio replayed this message before (0 for a message never replayed)."""
    return _int(message.headers.get(H_COUNT)) or 0


def replay_job(message: BrokerMessage) -> str:
    """The id of the replay job that last sent this message ("" if none)."""
    return _text(message.headers.get(H_JOB))


def item_key(message: BrokerMessage) -> tuple[str, str]:
    """(key, position) naming a dead letter in the journal.

    `key` is the ``message_id`` when the message has one, else ``sha256:<hex of the body>``.
    `position` is ``topic/partition/offset`` for a Kafka record (unique: the same position is the
    same record) and "" for a queue message (a queue has no stable position).
    """
    message_id = message.properties.get("message_id")
    key = (
        f"id:{_text(message_id)}"
        if message_id not in (None, "")
        else ("sha256:" + hashlib.sha256(message.body).hexdigest())
    )
    position = ""
    if message.partition is not None and message.offset is not None:
        position = f"{message.source}/{message.partition}/{message.offset}"
    return key, position


def replay_headers(
    message: BrokerMessage,
    *,
    source: str,
    job_id: str,
    death: Death | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """The headers of the replayed copy of `message` taken from `source` by job `job_id`.

    Drops ``x-death``, ``x-first-death-*``, ``x-last-death-*``, ``kafka_dlt-*`` and
    ``__connect.errors.*``; keeps every other header; sets `H_COUNT` (previous count + 1), `H_FROM`,
    `H_JOB` and `H_DEATH` (a summary of the death being undone, see `Death.as_header`).
    `death` (= `death_of(message)`) and `count` (= `replay_count(message)`) may be passed when the
    caller computed them already. The headers are copied once (into the returned dict).
    """
    headers = {
        name: value
        for name, value in message.headers.items()
        if name not in DROPPED_HEADERS and not name.startswith(DROPPED_PREFIXES)
    }
    headers[H_COUNT] = (replay_count(message) if count is None else count) + 1
    headers[H_FROM] = source
    headers[H_JOB] = job_id
    headers[H_DEATH] = (death_of(message) if death is None else death).as_header()
    return headers
