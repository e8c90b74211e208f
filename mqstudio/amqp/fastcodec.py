"""Hand-written codecs for the frames that dominate a busy connection.

Owns the hot paths of the wire layer, each a drop-in for pamqp's generic codec on its frame:
- decoding basic.publish, basic.ack, basic.nack and basic.reject method payloads (fixed layouts),
  basic.publish once per distinct payload,
- decoding content headers, each distinct header (and property list) decoded once,
- encoding basic.deliver + content header + body frames from cached per-consumer templates.

pamqp walks every field through a by-name type dispatch; on a connection publishing or consuming
tens of thousands of small messages a second that generic walk was most of the server's time.

Equivalence with pamqp is the contract, checked by tests/amqp/test_fastcodec.py (golden bytes and
differential property tests): a decoder accepts only the canonical layout of its frame (exact
payload length, well-formed strings) and returns None for anything else, so the caller falls
back to pamqp, which then produces whatever value or error it always did. The encoder builds its
cached pieces by cutting a frame pamqp marshalled (`names.BasicDeliver`: any exchange name and
routing key, as RabbitMQ; shortstrs over 255 octets are still refused).

Decoded objects are real pamqp objects, built without running their constructors (which
validate; pamqp's own unmarshal does not). Identical publish methods, content headers and
property lists share one object each: consumers treat decoded frames as read-only.

Must not import: sockets, asyncio, Qt, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeAlias

from pamqp import commands
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header
from pamqp.base import Frame as Method

from mqstudio.amqp.names import BasicDeliver
from mqstudio.broker.message import Delivery, Properties

__all__ = [
    "METHOD_DECODERS",
    "DeliverTemplate",
    "DeliverTemplates",
    "HeaderDecoder",
    "PublishDecoder",
    "encode_delivery",
]

_new = object.__new__
_UNSET = object()
_FRAME_END = 0xCE
_CE = b"\xce"

# pamqp's field types: 'short' is an unsigned short, 'longlong' a signed 64-bit integer.
_USHORT = struct.Struct(">H")
_TAG_BITS = struct.Struct(">qB")
_HEADER_FIXED = struct.Struct(">HHQ")  # class-id, weight, body-size

MethodDecoder: TypeAlias = Callable[[bytes | bytearray, int, int], Method | None]


# --------------------------------------------------------------------------------------------
# Method payloads. `pos` is the first octet after the 4-octet class/method index, `end` the
# frame-end octet's position. None = not the canonical layout: let pamqp decide.
# --------------------------------------------------------------------------------------------


def decode_publish(buf: bytes | bytearray, pos: int, end: int) -> Method | None:
    """basic.publish: ticket short, exchange shortstr, routing-key shortstr, mandatory/immediate."""
    if end - pos < 5:
        return None
    (ticket,) = _USHORT.unpack_from(buf, pos)
    x_start = pos + 3
    x_end = x_start + buf[pos + 2]
    if x_end >= end:
        return None
    k_start = x_end + 1
    k_end = k_start + buf[x_end]
    if k_end + 1 != end:
        return None
    try:
        exchange = buf[x_start:x_end].decode("utf-8")
        routing_key = buf[k_start:k_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    bits = buf[k_end]
    m = _new(commands.Basic.Publish)
    m.ticket = ticket
    m.exchange = exchange
    m.routing_key = routing_key
    m.mandatory = bits & 1 != 0
    m.immediate = bits & 2 != 0
    return m


def decode_ack(buf: bytes | bytearray, pos: int, end: int) -> Method | None:
    """basic.ack: delivery-tag longlong, multiple bit."""
    if end - pos != 9:
        return None
    tag, bits = _TAG_BITS.unpack_from(buf, pos)
    m = _new(commands.Basic.Ack)
    m.delivery_tag = tag
    m.multiple = bits & 1 != 0
    return m


def decode_nack(buf: bytes | bytearray, pos: int, end: int) -> Method | None:
    """basic.nack: delivery-tag longlong, multiple and requeue bits."""
    if end - pos != 9:
        return None
    tag, bits = _TAG_BITS.unpack_from(buf, pos)
    m = _new(commands.Basic.Nack)
    m.delivery_tag = tag
    m.multiple = bits & 1 != 0
    m.requeue = bits & 2 != 0
    return m


def decode_reject(buf: bytes | bytearray, pos: int, end: int) -> Method | None:
    """basic.reject: delivery-tag longlong, requeue bit."""
    if end - pos != 9:
        return None
    tag, bits = _TAG_BITS.unpack_from(buf, pos)
    m = _new(commands.Basic.Reject)
    m.delivery_tag = tag
    m.requeue = bits & 1 != 0
    return m


#: pamqp method index (class << 16 | method) → hand decoder.
METHOD_DECODERS: dict[int, MethodDecoder] = {
    commands.Basic.Publish.index: decode_publish,
    commands.Basic.Ack.index: decode_ack,
    commands.Basic.Nack.index: decode_nack,
    commands.Basic.Reject.index: decode_reject,
}


# --------------------------------------------------------------------------------------------
# Content headers
# --------------------------------------------------------------------------------------------


class PublishDecoder:
    """basic.publish method frames, decoded once per distinct payload.

    A publisher sends the same exchange, routing key and flags again and again; the decoded
    method is kept per exact payload octets (class/method index included), so a cached entry is
    always what `decode_publish` returns for those octets. Shared: treat the methods as read-only.
    """

    __slots__ = ("_cache", "max_entries")

    def __init__(self, max_entries: int = 256) -> None:
        self._cache: dict[bytes, Method] = {}
        self.max_entries = max_entries

    def decode(self, buf: bytes | bytearray, start: int, end: int) -> Method | None:
        """The method frame payload buf[start:end] (index first), or None: let pamqp decide."""
        key = bytes(buf[start:end])
        method = self._cache.get(key)
        if method is None:
            method = decode_publish(buf, start + 4, end)
            if method is not None:
                cache = self._cache
                if len(cache) >= self.max_entries:
                    cache.clear()
                cache[key] = method
        return method


class HeaderDecoder:
    """Content header frames, decoded once per distinct byte string.

    Publishers mostly send the same properties again and again, often with bodies of one size.
    Whole headers are kept per exact payload octets; on a miss the fixed part (class, weight,
    body size) is unpacked by hand and the properties come from a second cache keyed by their
    exact octets, so a cached entry is always what pamqp would decode. Shared: headers and their
    properties are read-only for everyone downstream.
    """

    __slots__ = ("_cache", "_whole", "max_entries", "max_key")

    def __init__(self, max_entries: int = 64, max_key: int = 512) -> None:
        self._cache: dict[bytes, commands.Basic.Properties] = {}
        self._whole: dict[bytes, pamqp_header.ContentHeader] = {}
        self.max_entries = max_entries
        self.max_key = max_key

    def decode(self, buf: bytes | bytearray, start: int, end: int) -> pamqp_header.ContentHeader:
        """The header in buf[start:end]; raises what pamqp raises on a malformed one."""
        size = end - start
        if not 14 <= size <= self.max_key + 12:
            header = pamqp_header.ContentHeader()
            header.unmarshal(bytes(buf[start:end]))
            return header
        key = bytes(buf[start:end])
        whole = self._whole.get(key)
        if whole is not None:
            return whole
        cache = self._cache
        props = cache.get(key[12:])
        if props is not None:
            header = _new(pamqp_header.ContentHeader)
            header.class_id, header.weight, header.body_size = _HEADER_FIXED.unpack_from(key)
            header.properties = props
        else:
            header = pamqp_header.ContentHeader()
            header.unmarshal(key)
            if len(cache) >= self.max_entries:
                cache.clear()
            cache[key[12:]] = header.properties
        if len(self._whole) >= self.max_entries:
            self._whole.clear()
        self._whole[key] = header
        return header


# --------------------------------------------------------------------------------------------
# basic.deliver
# --------------------------------------------------------------------------------------------

#: (frame octets up to and including the consumer tag, frame octets after the redelivered bit).
DeliverTemplate: TypeAlias = tuple[bytes, bytes]

# content header frame: type, channel, size, class-id, weight, body-size (flags come with the
# cached property octets); after it, a body frame's frame-end-less head: end of the header
# frame, then type, channel, size.
_HEADER_FRAME = struct.Struct(">BHIHHQ")
_END_AND_BODY_HEAD = struct.Struct(">BBHI")
_BODY_HEAD = struct.Struct(">BHI")
_BASIC_CLASS = commands.Basic.frame_id


class DeliverTemplates:
    """basic.deliver frames of one channel, cut around the two fields that vary per delivery.

    Everything else in the frame (size, consumer tag, exchange, routing key) is the same for every
    delivery of one consumer from one exchange and routing key; the template is pamqp's own
    encoding of such a delivery with the delivery tag and redelivered bit left out.
    """

    __slots__ = ("_templates", "channel", "max_entries")

    def __init__(self, channel: int, max_entries: int = 256) -> None:
        self.channel = channel
        self.max_entries = max_entries
        self._templates: dict[tuple[str, str, str], DeliverTemplate] = {}

    def get(self, consumer_tag: str, exchange: str, routing_key: str) -> DeliverTemplate:
        key = (consumer_tag, exchange, routing_key)
        template = self._templates.get(key)
        if template is None:
            template = self._build(consumer_tag, exchange, routing_key)
            if len(self._templates) >= self.max_entries:
                self._templates.clear()
            self._templates[key] = template
        return template

    def encode(
        self, deliveries: Iterable[Delivery], encoded: Callable[[Properties], bytes], frame_max: int
    ) -> bytes:
        """basic.deliver, content header and body frames of every delivery, as one buffer.

        `encoded` gives a message's content header property octets. Equal to `encode_delivery`
        applied to each delivery in turn (tests/amqp/test_fastcodec.py); consecutive deliveries
        of one consumer, exchange and routing key with the same properties object and body size
        (the usual run) share their template lookup and the octets between tag and body.
        """
        parts: list[bytes] = []
        channel = self.channel
        template = self.get
        step = frame_max - 8
        pack_tag = _TAG_BITS.pack
        last_tag: object = _UNSET
        last_exchange: object = _UNSET
        last_key: object = _UNSET
        last_props: object = _UNSET
        last_size = -1
        head = tail = middle = b""
        for d in deliveries:
            m = d.message
            consumer_tag, exchange, routing_key = d.consumer_tag, m.exchange, m.routing_key
            # Identity, not equality: a false miss only costs the lookup below.
            if consumer_tag is not last_tag or exchange is not last_exchange or routing_key is not last_key:
                head, tail = template(consumer_tag, exchange, routing_key)
                last_tag, last_exchange, last_key = consumer_tag, exchange, routing_key
            props, body = m.properties, m.body
            size = len(body)
            if props is not last_props or size != last_size:
                if not 0 < size <= step:
                    # Empty or several body frames: the general encoder, no reuse.
                    tag, redelivered = d.delivery_tag, d.redelivered
                    encode_delivery(
                        parts, channel, (head, tail), tag, redelivered, encoded(props), body, frame_max
                    )
                    last_props = _UNSET
                    continue
                octets = encoded(props)
                middle = b"".join((
                    _HEADER_FRAME.pack(2, channel, 12 + len(octets), _BASIC_CLASS, 0, size),
                    octets,
                    _END_AND_BODY_HEAD.pack(_FRAME_END, 3, channel, size),
                ))
                last_props, last_size = props, size
            parts += (head, pack_tag(d.delivery_tag, d.redelivered), tail, middle, body, _CE)
        return b"".join(parts)

    def _build(self, consumer_tag: str, exchange: str, routing_key: str) -> DeliverTemplate:
        # Any exchange name and routing key, as RabbitMQ (mqstudio.amqp.names); pamqp still
        # refuses a shortstr over 255 octets.
        frame = pamqp_frame.marshal(BasicDeliver(consumer_tag, 0, False, exchange, routing_key), self.channel)
        # 7-octet frame header, 4-octet method index, then the consumer tag as a shortstr.
        cut = 7 + 4 + 1 + frame[11]
        return frame[:cut], frame[cut + _TAG_BITS.size :]


# Positional on purpose: called once per delivery on the hot path.
def encode_delivery(  # noqa: PLR0917
    parts: list[bytes],
    channel: int,
    template: DeliverTemplate,
    delivery_tag: int,
    redelivered: bool,
    properties: bytes,
    body: bytes,
    frame_max: int,
) -> None:
    """Append basic.deliver, its content header and body frames to `parts`.

    `properties` is a content header's property octets (flags and list, as
    `Basic.Properties.marshal()` returns them). The octets equal pamqp's marshalling of the same
    frames (tests/amqp/test_fastcodec.py).
    """
    size = len(body)
    parts += (
        template[0],
        _TAG_BITS.pack(delivery_tag, redelivered),
        template[1],
        _HEADER_FRAME.pack(2, channel, 12 + len(properties), _BASIC_CLASS, 0, size),
        properties,
    )
    if not size:
        parts.append(_CE)
        return
    step = frame_max - 8
    if size <= step:
        parts += (_END_AND_BODY_HEAD.pack(_FRAME_END, 3, channel, size), body, _CE)
        return
    if step <= 0:
        raise ValueError(f"frame_max {frame_max} leaves no room for a payload")
    view = memoryview(body)
    parts.append(_CE)
    for i in range(0, size, step):
        chunk = bytes(view[i : i + step])
        parts += (_BODY_HEAD.pack(3, channel, len(chunk)), chunk, _CE)
