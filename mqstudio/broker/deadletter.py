"""Dead-lettering rules of the embedded broker engine, as pure functions over messages.

Owns: `DeadLetterReason`, building the dead-lettered copy of a message (x-death bookkeeping,
x-first-death-* / x-last-death-* headers, `expiration` removal, CC/BCC handling), the routing keys
it is republished with, and RabbitMQ's cycle detection. Routing the copy through the dead-letter
exchange is the vhost's job (`mqstudio.broker.vhost`), so this module knows no exchanges or queues.
Must not import anything outside the stdlib and `mqstudio.broker.message`.

Semantics follow https://www.rabbitmq.com/docs/dlx and RabbitMQ 4's own implementation
(`mc:record_death/4`, `mc:is_death_cycle/2`, `mc_amqpl:deaths_to_headers/2`), cross-checked with
lavinmq's `queue/feature/dead_lettering.cr`:
- The history is the broker's, kept on `Message.deaths` (RabbitMQ's `deaths` annotation), never
  read back from headers: RabbitMQ 4 "will not interpret this x-death header anymore when clients
  (re-)publish a message" (4.0 release notes). A client's own x-death header travels as an opaque
  header until the broker dead-letters the message, which replaces it with the broker's history
  (`rabbit_misc:set_table_value` in `deaths_to_headers`).
- x-death has one entry per {queue, reason} pair, newest first. A repeat of a known pair increments
  that entry's `count` and moves it to the front; its other fields (time, exchange, routing-keys)
  keep the values of the first occurrence, as `update_death` does.
- x-first-death-{reason,queue,exchange} are set by the broker's first dead-lettering of the message
  (overwriting client-sent ones); x-last-death-* are overwritten every time.
- The `expiration` property is removed so the message cannot expire again in the queues it is
  routed to; a new entry records it as `original-expiration`.
- With x-dead-letter-routing-key the message is republished with that single key and its CC header
  is removed; without it, with its original routing keys (the publish key plus CC). BCC never
  survives publishing (sender-selected distribution), so it cannot reach x-death either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mqstudio.broker.message import Death, Message

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


def x_death_entry(death: Death) -> dict[str, Any]:
    """One x-death table as RabbitMQ 4 writes it (`mc_amqpl:death_table/1`)."""
    entry: dict[str, Any] = {
        "count": death.count,
        "reason": death.reason,
        "queue": death.queue,
        "time": _now_timestamp(death.time_ms),
        "exchange": death.exchange,
        "routing-keys": list(death.routing_keys),
    }
    if death.original_expiration is not None:
        entry["original-expiration"] = death.original_expiration
    return entry


def x_death(message: Message) -> list[dict[str, Any]]:
    """The broker's dead-letter history of the message as x-death tables (newest first), or [] when
    the broker never dead-lettered it. A client-sent x-death header is not history (module docstring)."""
    return [x_death_entry(d) for d in message.deaths]


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

    The copy carries the updated history (`Message.deaths`) and headers built from it. The original
    is left untouched: it may still be referenced by other queues (fanout).
    """
    props = message.properties
    headers: dict[str, Any] = dict(props.headers) if props.headers else {}
    headers.pop("BCC", None)
    cc = header_routes(headers, "CC")
    # "routing-keys - the routing keys (including CC keys but excluding BCC ones) the message was
    # published with" (dlx docs): the publish key first, then CC.
    death_keys = [message.routing_key, *cc]
    reason_s = str(reason)

    deaths = list(message.deaths)
    if not deaths:
        headers["x-first-death-reason"] = reason_s
        headers["x-first-death-queue"] = queue_name
        headers["x-first-death-exchange"] = message.exchange
    for i, death in enumerate(deaths):
        if death.queue == queue_name and death.reason == reason_s:
            del deaths[i]
            deaths.insert(0, replace(death, count=death.count + 1))
            break
    else:
        deaths.insert(
            0,
            Death(queue_name, reason_s, 1, now_ms, message.exchange, tuple(death_keys), props.expiration),
        )
    headers[X_DEATH] = [x_death_entry(d) for d in deaths]
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
    return Message(message.body, new_props, dlx, new_key, tuple(deaths)), route_keys


def is_cycle(deaths: Sequence[Death] | Sequence[Mapping[str, Any]], target_queue: str) -> bool:
    """Would delivering a dead-lettered message (with `deaths` already updated) to `target_queue`
    close a fully automatic loop?

    RabbitMQ (`mc:is_cycle_v2/2`, dlx docs "Dead-Lettered Messages Can Form Cycles"): walk the
    history newest first up to and including the first entry for `target_queue`; it is a cycle only
    if such an entry exists and none of the walked entries has reason `rejected` (a rejection means
    a client took part, so the loop is deliberate, e.g. a retry topology). `deaths` is the broker's
    history (`Message.deaths`), or x-death tables as `x_death()` returns them.
    """
    rejected = DeadLetterReason.REJECTED.value
    queue: Any
    reason: Any
    for entry in deaths:
        if isinstance(entry, Death):
            queue, reason = entry.queue, entry.reason
        else:
            queue, reason = entry.get("queue"), entry.get("reason")
        if reason == rejected:
            return False
        if queue == target_queue:
            return True
    return False
