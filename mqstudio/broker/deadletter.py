"""Dead-lettering rules of the embedded broker engine, as pure functions over messages.

Owns: `DeadLetterReason`, building the dead-lettered copy of a message (x-death bookkeeping,
x-first-death-* / x-last-death-* headers, `expiration` removal, CC/BCC handling), the routing keys
it is republished with, and RabbitMQ's cycle detection. Routing the copy through the dead-letter
exchange is the vhost's job (`mqstudio.broker.vhost`), so this module knows no exchanges or queues.
Must not import anything outside the stdlib and `mqstudio.broker.message`.

Semantics follow https://www.rabbitmq.com/docs/dlx and RabbitMQ's own implementation
(`mc_compat:record_death/3`, `update_x_death_header/2`, `is_death_cycle/2`), cross-checked with
lavinmq's `queue/feature/dead_lettering.cr`:
- x-death has one entry per {queue, reason} pair, newest first. A repeat of a known pair increments
  that entry's `count` and moves it to the front; its other fields (time, exchange, routing-keys)
  keep the values of the first occurrence, as `increment_xdeath_event_count` does.
- x-first-death-{reason,queue,exchange} are set only by the first dead-lettering (when the message
  had no x-death yet); x-last-death-* (RabbitMQ 3.13+) are overwritten every time.
- The `expiration` property is removed so the message cannot expire again in the queues it is
  routed to; a new entry records it as `original-expiration`.
- With x-dead-letter-routing-key the message is republished with that single key and its CC header
  is removed; without it, with its original routing keys (the publish key plus CC). BCC never
  survives publishing (sender-selected distribution), so it cannot reach x-death either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mqstudio.broker.message import Message

X_DEATH = "x-death"


class DeadLetterReason(StrEnum):
    """The `reason` values RabbitMQ writes into x-death (dlx docs, "Dead-Lettered Messages")."""

    REJECTED = "rejected"  # basic.reject / basic.nack with requeue=false
    EXPIRED = "expired"  # per-message or per-queue TTL
    MAXLEN = "maxlen"  # x-max-length / x-max-length-bytes with drop-head or reject-publish-dlx
    DELIVERY_LIMIT = "delivery_limit"  # quorum queue x-delivery-limit exceeded


def header_routes(headers: dict[str, Any] | None, name: str) -> list[str]:
    """The extra routing keys in a CC or BCC header (an array of strings; anything else ignored)."""
    if not headers:
        return []
    value = headers.get(name)
    if isinstance(value, list | tuple):
        return [k for k in value if isinstance(k, str)]
    return []


def x_death(message: Message) -> list[dict[str, Any]]:
    """The message's x-death array (newest first), or [] when it was never dead-lettered."""
    value = message.headers.get(X_DEATH)
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def _now_timestamp(now_ms: int) -> datetime:
    # AMQP 0-9-1 timestamps have one-second resolution (RabbitMQ uses os:system_time(seconds)).
    return datetime.fromtimestamp(now_ms // 1000, tz=UTC)


def dead_letter(
    message: Message,
    queue_name: str,
    reason: DeadLetterReason,
    now_ms: int,
    *,
    dlx: str,
    dlrk: str | None,
) -> tuple[Message, list[str]]:
    """The copy of `message` to republish to `dlx`, and the routing keys to route it with.

    The original is left untouched: it may still be referenced by other queues (fanout).
    """
    props = message.properties
    headers: dict[str, Any] = dict(props.headers) if props.headers else {}
    headers.pop("BCC", None)
    cc = header_routes(headers, "CC")
    # "routing-keys - the routing keys (including CC keys but excluding BCC ones) the message was
    # published with" (dlx docs): the publish key first, then CC.
    death_keys = [message.routing_key, *cc]
    reason_s = str(reason)

    deaths = [d for d in headers.get(X_DEATH) or () if isinstance(d, dict)]
    if not deaths:
        headers["x-first-death-reason"] = reason_s
        headers["x-first-death-queue"] = queue_name
        headers["x-first-death-exchange"] = message.exchange
    for i, entry in enumerate(deaths):
        if entry.get("queue") == queue_name and entry.get("reason") == reason_s:
            updated = dict(entry)
            count = updated.get("count")
            updated["count"] = (count if isinstance(count, int) else 0) + 1
            del deaths[i]
            deaths.insert(0, updated)
            break
    else:
        entry = {
            "count": 1,
            "reason": reason_s,
            "queue": queue_name,
            "time": _now_timestamp(now_ms),
            "exchange": message.exchange,
            "routing-keys": death_keys,
        }
        if props.expiration is not None:
            entry["original-expiration"] = props.expiration
        deaths.insert(0, entry)
    headers[X_DEATH] = deaths
    headers["x-last-death-reason"] = reason_s
    headers["x-last-death-queue"] = queue_name
    headers["x-last-death-exchange"] = message.exchange

    if dlrk is not None:
        route_keys = [dlrk]
        headers.pop("CC", None)
        new_key = dlrk
    else:
        route_keys = death_keys
        new_key = message.routing_key
    new_props = replace(props, headers=headers, expiration=None)
    return Message(message.body, new_props, dlx, new_key), route_keys


def is_cycle(deaths: Sequence[dict[str, Any]], target_queue: str) -> bool:
    """Would delivering a dead-lettered message (with `deaths` already updated) to `target_queue`
    close a fully automatic loop?

    RabbitMQ (`is_death_cycle/2`, dlx docs "Dead-Lettered Messages Can Form Cycles"): walk x-death
    newest first up to and including the first entry for `target_queue`; it is a cycle only if such
    an entry exists and none of the walked entries has reason `rejected` (a rejection means a client
    took part, so the loop is deliberate, e.g. a retry topology).
    """
    walked: list[dict[str, Any]] = []
    for entry in deaths:
        walked.append(entry)
        if entry.get("queue") == target_queue:
            return all(e.get("reason") != DeadLetterReason.REJECTED for e in walked)
    return False
