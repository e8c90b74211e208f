"""Helpers of the channel layer's basic class: properties, deliveries, direct reply-to, confirms.

Owns: conversion between pamqp's `Basic.Properties` and the engine's `Properties`, the frames
written for a `Delivery` (basic.deliver / basic.get-ok), the direct reply-to registry that maps
`amq.rabbitmq.reply-to.<token>` names to the channel consuming them, and `ConfirmTracker`, the
per-channel publisher-confirm bookkeeping (sequence numbers and coalesced acks).

Must not import: sockets, asyncio, Qt, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from pamqp import commands

from mqstudio.amqp.names import BasicDeliver, BasicGetOk
from mqstudio.broker.message import Delivery, Properties

__all__ = [
    "DIRECT_REPLY_TO",
    "DIRECT_REPLY_TO_PREFIX",
    "ConfirmTracker",
    "PropertiesCache",
    "ReplyRegistry",
    "deliver_method",
    "from_wire",
    "get_ok_method",
    "to_wire",
]

#: [direct-reply-to] The pseudo-queue an RPC client consumes from (no-ack) and names in reply_to.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
#: What reply_to is rewritten to: a per-channel name the server routes straight back.
DIRECT_REPLY_TO_PREFIX = DIRECT_REPLY_TO + "."


def from_wire(props: commands.Basic.Properties | None) -> Properties:
    """The engine's properties from a decoded content header (cluster_id is deprecated: dropped)."""
    if props is None:
        return Properties()
    return Properties(
        content_type=props.content_type,
        content_encoding=props.content_encoding,
        headers=props.headers,
        delivery_mode=props.delivery_mode,
        priority=props.priority,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        expiration=props.expiration,
        message_id=props.message_id,
        timestamp=props.timestamp,
        type=props.message_type,
        user_id=props.user_id,
        app_id=props.app_id,
    )


def _encodable(value: Any) -> Any:
    """A field value pamqp can encode again.

    pamqp decodes a longstr that is not UTF-8 as `bytes` but refuses `bytes` when encoding;
    `bytearray` goes out as a byte array ('x'), which pika, aiormq and py-amqp read as bytes.
    """
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {k: _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


def _has_bytes(value: Any) -> bool:
    if isinstance(value, bytes):
        return True
    if isinstance(value, dict):
        return any(_has_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_bytes(v) for v in value)
    return False


def to_wire(props: Properties) -> commands.Basic.Properties:
    """pamqp properties for an outgoing content header."""
    headers = props.headers
    if headers and _has_bytes(headers):
        headers = _encodable(headers)
    return commands.Basic.Properties(
        content_type=props.content_type,
        content_encoding=props.content_encoding,
        headers=headers,
        delivery_mode=props.delivery_mode if props.delivery_mode in (1, 2) else None,
        priority=props.priority,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        expiration=props.expiration,
        message_id=props.message_id,
        timestamp=props.timestamp,
        message_type=props.type,
        user_id=props.user_id,
        app_id=props.app_id,
    )


class PropertiesCache:
    """Remembers conversions of recently seen properties, in both directions.

    Towards the wire: the pamqp properties and their encoded octets (a content header's property
    flags and list) per engine `Properties` object. One published message is often delivered many
    times (fanout, requeues) and the engine never mutates a published message's properties, so
    converting once per object is enough.

    From the wire: the engine `Properties` per decoded pamqp properties object. The frame decoder
    hands out one shared pamqp object for content headers with identical property octets, so a
    publisher sending the same properties every time produces one engine object, which in turn
    hits the wire-side cache on every delivery. Both sides treat these objects as read-only.

    Entries hold the object itself, so an `id` cannot be reused while cached.
    """

    __slots__ = ("_engine", "_max", "_wire")

    def __init__(self, max_entries: int = 1024) -> None:
        self._wire: dict[int, tuple[Properties, commands.Basic.Properties, bytes]] = {}
        self._engine: dict[int, tuple[commands.Basic.Properties, Properties]] = {}
        self._max = max_entries

    def _to_wire(self, props: Properties) -> tuple[Properties, commands.Basic.Properties, bytes]:
        entry = self._wire.get(id(props))
        if entry is not None and entry[0] is props:
            return entry
        wire = to_wire(props)
        entry = (props, wire, wire.marshal())
        if len(self._wire) >= self._max:
            self._wire.clear()
        self._wire[id(props)] = entry
        return entry

    def get(self, props: Properties) -> commands.Basic.Properties:
        """The pamqp properties for an outgoing content header."""
        return self._to_wire(props)[1]

    def encoded(self, props: Properties) -> bytes:
        """The content header's property octets, as `Basic.Properties.marshal()` returns them."""
        entry = self._wire.get(id(props))
        if entry is not None and entry[0] is props:
            return entry[2]
        return self._to_wire(props)[2]

    def from_wire(self, wire: commands.Basic.Properties | None) -> Properties:
        """The engine properties of a decoded content header (shared: never mutate them)."""
        if wire is None:
            return Properties()
        entry = self._engine.get(id(wire))
        if entry is not None and entry[0] is wire:
            return entry[1]
        props = from_wire(wire)
        if len(self._engine) >= self._max:
            self._engine.clear()
        self._engine[id(wire)] = (wire, props)
        return props


def deliver_method(d: Delivery) -> commands.Basic.Deliver:
    return BasicDeliver(d.consumer_tag, d.delivery_tag, d.redelivered, d.exchange, d.routing_key)


def get_ok_method(d: Delivery) -> commands.Basic.GetOk:
    return BasicGetOk(d.delivery_tag, d.redelivered, d.exchange, d.routing_key, d.message_count)


T = TypeVar("T")


class ReplyRegistry(Generic[T]):
    """[direct-reply-to] token → the channel whose reply consumer receives `amq.rabbitmq.reply-to.<token>`.

    Tokens are random and unguessable, like RabbitMQ's encoded channel pid, so one client cannot
    address another's replies by accident.
    """

    __slots__ = ("_channels",)

    def __init__(self) -> None:
        self._channels: dict[str, T] = {}

    def register(self, channel: T) -> str:
        while True:
            token = secrets.token_urlsafe(18)
            if token not in self._channels:
                self._channels[token] = channel
                return token

    def unregister(self, token: str) -> None:
        self._channels.pop(token, None)

    def lookup(self, routing_key: str) -> T | None:
        """The channel a reply routed with `routing_key` (the rewritten reply_to) belongs to."""
        if not routing_key.startswith(DIRECT_REPLY_TO_PREFIX):
            return None
        return self._channels.get(routing_key[len(DIRECT_REPLY_TO_PREFIX) :])

    def __len__(self) -> int:
        return len(self._channels)


class ConfirmTracker:
    """[confirms] Publisher confirms of one channel in confirm mode.

    Sequence numbers start at 1 and count every basic.publish after confirm.select. Outcomes are
    recorded in publish order and released together (after the store's group commit), so the
    pending run is always contiguous and consecutive acks collapse into one `multiple` ack.
    """

    __slots__ = ("_pending", "next_seq")

    def __init__(self) -> None:
        self.next_seq = 1
        self._pending: list[tuple[int, bool]] = []

    def record(self, ack: bool) -> bool:
        """Record the next publish's outcome; True when it is the only one waiting (the first
        since the last `release`), i.e. when the channel must ask to have its confirms sent."""
        seq = self.next_seq
        self.next_seq = seq + 1
        pending = self._pending
        pending.append((seq, ack))
        return len(pending) == 1

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def release(self) -> Iterator[commands.Basic.Ack | commands.Basic.Nack]:
        """basic.ack / basic.nack frames for everything recorded, acks coalesced with `multiple`."""
        pending = self._pending
        self._pending = []
        i = 0
        n = len(pending)
        while i < n:
            seq, ack = pending[i]
            if not ack:
                yield commands.Basic.Nack(seq, False, False)
                i += 1
                continue
            j = i
            while j + 1 < n and pending[j + 1][1]:
                j += 1
            last = pending[j][0]
            # A multiple ack confirms every unconfirmed tag up to `last`; the nacks before this
            # run are already out, so it covers exactly this run.
            yield commands.Basic.Ack(last, j > i)
            i = j + 1

    def fail_all(self) -> None:
        """Turn every recorded outcome into a nack (the store could not make them durable)."""
        self._pending = [(seq, False) for seq, _ in self._pending]

    def clear(self) -> None:
        self._pending.clear()
