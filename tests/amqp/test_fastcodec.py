"""Hand-written hot-frame codecs against pamqp: golden bytes and differential property tests."""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass
from typing import Any

import pika.spec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from mqstudio.amqp.basic import PropertiesCache
from mqstudio.amqp.fastcodec import (
    METHOD_DECODERS,
    DeliverTemplates,
    HeaderDecoder,
    PublishDecoder,
    decode_publish,
    encode_delivery,
)
from mqstudio.amqp.framing import FrameBuffer, FrameError, marshal, marshal_content
from mqstudio.amqp.names import BasicDeliver
from mqstudio.broker.message import Properties

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shortstr = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
# Any UTF-8 name that fits a shortstr, as RabbitMQ accepts (pamqp's own validation is narrower).
exchange_names = st.one_of(st.from_regex(r"[a-zA-Z0-9\-_.:@#,/+ ]{0,40}", fullmatch=True), shortstr)
tags = st.integers(min_value=0, max_value=2**63 - 1)


def fields(obj: Any) -> dict[str, Any]:
    """A pamqp method's or properties' slots as a dict (pamqp methods define no __eq__)."""
    return {name: getattr(obj, name, "<unset>") for name in type(obj).__slots__}


def pamqp_decode(payload: bytes, frame_type: int = 1) -> Any:
    """What pamqp's generic frame unmarshal makes of a payload (value or exception type)."""
    raw = struct.pack(">BHI", frame_type, 1, len(payload)) + payload + b"\xce"
    try:
        return pamqp_frame.unmarshal(raw)[2]
    except Exception as exc:  # the type is what matters
        return type(exc)


def buffer_decode(payload: bytes, frame_type: int = 1) -> Any:
    """What our FrameBuffer makes of the same frame: the frame, or FrameError."""
    raw = struct.pack(">BHI", frame_type, 1, len(payload)) + payload + b"\xce"
    try:
        frames = FrameBuffer(0, expect_header=False).feed(raw)
    except FrameError:
        return FrameError
    assert len(frames) == 1
    return frames[0][1]


# ------------------------------------------------------------------------------ golden bytes


PUBLISH_GOLDEN = bytes.fromhex(
    "003c 0028"  # basic.publish (class 60, method 40)
    "0000"  # ticket
    "05 616d712e78"  # exchange "amq.x"
    "03 6b6579"  # routing key "key"
    "03"  # mandatory, immediate
)


def test_publish_golden_bytes_decode_to_pamqps_fields() -> None:
    m = decode_publish(PUBLISH_GOLDEN, 4, len(PUBLISH_GOLDEN))
    assert isinstance(m, commands.Basic.Publish)
    assert (m.ticket, m.exchange, m.routing_key, m.mandatory, m.immediate) == (0, "amq.x", "key", True, True)
    assert fields(m) == fields(pamqp_decode(PUBLISH_GOLDEN))


def test_ack_nack_reject_golden_bytes() -> None:
    ack = bytes.fromhex("003c 0050 0000000000000007 01")
    nack = bytes.fromhex("003c 0078 0000000000000007 02")
    reject = bytes.fromhex("003c 005a 0000000000000007 01")
    for payload, expected in (
        (ack, {"delivery_tag": 7, "multiple": True}),
        (nack, {"delivery_tag": 7, "multiple": False, "requeue": True}),
        (reject, {"delivery_tag": 7, "requeue": True}),
    ):
        decoded = buffer_decode(payload)
        assert fields(decoded) == expected
        assert fields(decoded) == fields(pamqp_decode(payload))


def test_deliver_golden_bytes() -> None:
    parts: list[bytes] = []
    template = DeliverTemplates(1).get("ctag", "", "q")
    encode_delivery(parts, 1, template, 5, True, b"\x00\x00", b"hi", 131072)
    assert b"".join(parts) == bytes.fromhex(
        "01 0001 00000015"  # method frame, channel 1, 21-octet payload
        "003c 003c"  # basic.deliver
        "04 63746167"  # consumer tag "ctag"
        "0000000000000005 01"  # delivery tag 5, redelivered
        "00 01 71"  # exchange "", routing key "q"
        "ce"
        "02 0001 0000000e"  # content header, 14 octets
        "003c 0000 0000000000000002 0000"  # class 60, weight 0, body size 2, no properties
        "ce"
        "03 0001 00000002 6869 ce"  # body "hi"
    )


# ------------------------------------------------------------------------------ decoding


@SETTINGS
@given(
    ticket=st.integers(0, 0xFFFF),
    exchange=shortstr,
    routing_key=shortstr,
    mandatory=st.booleans(),
    immediate=st.booleans(),
)
def test_publish_decodes_like_pamqp(
    ticket: int, exchange: str, routing_key: str, mandatory: bool, immediate: bool
) -> None:
    def ss(s: str) -> bytes:
        raw = s.encode()
        return bytes([len(raw)]) + raw

    payload = (
        struct.pack(">IH", commands.Basic.Publish.index, ticket)
        + ss(exchange)
        + ss(routing_key)
        + bytes([mandatory | immediate << 1])
    )
    fast = decode_publish(payload, 4, len(payload))
    assert fast is not None
    assert fields(fast) == fields(pamqp_decode(payload))


@SETTINGS
@given(index=st.sampled_from(sorted(METHOD_DECODERS)), tail=st.binary(max_size=40))
def test_any_hot_method_payload_decodes_like_pamqp(index: int, tail: bytes) -> None:
    """Arbitrary octets after a hot method's index: same value as pamqp, or an error as pamqp."""
    payload = struct.pack(">I", index) + tail
    expected = pamqp_decode(payload)
    got = buffer_decode(payload)
    if isinstance(expected, type):
        assert got is FrameError
    else:
        assert type(got) is type(expected)
        assert fields(got) == fields(expected)
    fast = METHOD_DECODERS[index](payload, 4, len(payload))
    if fast is not None:  # the hand decoder only answers for what pamqp decodes identically
        assert fields(fast) == fields(expected)


@SETTINGS
@given(tail=st.binary(max_size=40))
def test_publish_payloads_decode_like_pamqp_cached_or_not(tail: bytes) -> None:
    payload = struct.pack(">I", commands.Basic.Publish.index) + tail
    expected = pamqp_decode(payload)
    raw = struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"
    buffer = FrameBuffer(0, expect_header=False)
    for _ in range(2):  # a miss, then (for what decodes) a hit
        try:
            got = buffer.feed(raw)[0][1]
        except FrameError:
            assert isinstance(expected, type)
            buffer = FrameBuffer(0, expect_header=False)
            continue
        assert fields(got) == fields(expected)


def test_publish_cache_is_bounded_shares_equal_methods_and_skips_what_it_cannot_decode() -> None:
    decoder = PublishDecoder(max_entries=4)
    first = marshal(commands.Basic.Publish(exchange="x", routing_key="k"), 1)[7:-1]
    a = decoder.decode(first, 0, len(first))
    b = decoder.decode(first, 0, len(first))
    assert a is not None
    assert a is b
    for i in range(20):
        raw = marshal(commands.Basic.Publish(routing_key=str(i)), 1)[7:-1]
        got = decoder.decode(raw, 0, len(raw))
        assert got is not None
        assert got.routing_key == str(i)
        assert len(decoder._cache) <= 4
    bad = first[:-2]  # truncated: not the canonical layout
    assert decoder.decode(bad, 0, len(bad)) is None
    assert bad not in decoder._cache


def test_whole_headers_are_shared_per_payload_and_bounded() -> None:
    decoder = HeaderDecoder(max_entries=4)
    raw = ContentHeader(0, 5, commands.Basic.Properties(message_id="a")).marshal()
    other_size = ContentHeader(0, 6, commands.Basic.Properties(message_id="a")).marshal()
    a = decoder.decode(raw, 0, len(raw))
    assert decoder.decode(raw, 0, len(raw)) is a
    c = decoder.decode(other_size, 0, len(other_size))
    assert c is not a
    assert c.body_size == 6
    assert c.properties is a.properties
    for i in range(20):
        more = ContentHeader(0, i, commands.Basic.Properties(message_id="a")).marshal()
        assert decoder.decode(more, 0, len(more)).body_size == i
        assert len(decoder._whole) <= 4


@SETTINGS
@given(tag=tags, a=st.booleans(), b=st.booleans())
def test_settlement_methods_decode_like_pamqp(tag: int, a: bool, b: bool) -> None:
    for method in (
        commands.Basic.Ack(tag, a),
        commands.Basic.Nack(tag, a, b),
        commands.Basic.Reject(tag, a),
    ):
        payload = marshal(method, 1)[7:-1]
        fast = METHOD_DECODERS[method.index](payload, 4, len(payload))
        assert fast is not None
        assert type(fast) is type(method)
        assert fields(fast) == fields(method) == fields(pamqp_decode(payload))


timestamps = st.datetimes(
    min_value=datetime.datetime(1970, 1, 2), max_value=datetime.datetime(2100, 1, 1)
).map(lambda d: d.replace(microsecond=0, tzinfo=datetime.UTC))
properties = st.builds(
    commands.Basic.Properties,
    content_type=st.none() | shortstr,
    content_encoding=st.none() | shortstr,
    headers=st.none()
    | st.dictionaries(
        st.text(max_size=8), st.integers(-(2**31), 2**31 - 1) | st.text(max_size=8), max_size=4
    ),
    delivery_mode=st.none() | st.sampled_from([1, 2]),
    priority=st.none() | st.integers(0, 9),
    correlation_id=st.none() | shortstr,
    reply_to=st.none() | shortstr,
    expiration=st.none() | st.integers(0, 10**6).map(str),
    message_id=st.none() | shortstr,
    timestamp=st.none() | timestamps,
    message_type=st.none() | shortstr,
    user_id=st.none() | shortstr,
    app_id=st.none() | shortstr,
)


@SETTINGS
@given(props=properties, body_size=st.integers(0, 2**40))
def test_content_headers_decode_like_pamqp_cached_or_not(
    props: commands.Basic.Properties, body_size: int
) -> None:
    payload = ContentHeader(0, body_size, props).marshal()
    expected = pamqp_decode(payload, 2)
    decoder = HeaderDecoder()
    for _ in range(2):  # a miss, then a hit
        got = decoder.decode(payload, 0, len(payload))
        assert (got.class_id, got.weight, got.body_size) == (
            expected.class_id,
            expected.weight,
            expected.body_size,
        )
        assert fields(got.properties) == fields(expected.properties)


@SETTINGS
@given(payload=st.binary(max_size=40))
def test_any_content_header_payload_decodes_like_pamqp(payload: bytes) -> None:
    expected = pamqp_decode(payload, 2) if payload else FrameError
    for _ in range(2):
        got = buffer_decode(payload, 2)
        if isinstance(expected, type):
            assert got is FrameError
        else:
            assert (got.class_id, got.weight, got.body_size) == (
                expected.class_id,
                expected.weight,
                expected.body_size,
            )
            assert fields(got.properties) == fields(expected.properties)


def test_header_cache_is_bounded_and_shares_equal_properties() -> None:
    decoder = HeaderDecoder(max_entries=4)
    first = ContentHeader(0, 1, commands.Basic.Properties(message_id="a")).marshal()
    a = decoder.decode(first, 0, len(first))
    b = decoder.decode(first, 0, len(first))
    assert a.properties is b.properties
    for i in range(20):
        raw = ContentHeader(0, 1, commands.Basic.Properties(message_id=str(i))).marshal()
        decoder.decode(raw, 0, len(raw))
        assert len(decoder._cache) <= 4


# ------------------------------------------------------------------------------ encoding


@SETTINGS
@given(
    channel=st.integers(1, 0xFFFF),
    consumer_tag=shortstr,
    delivery_tag=tags,
    redelivered=st.booleans(),
    exchange=exchange_names,
    routing_key=shortstr,
    props=properties,
    body=st.binary(max_size=300),
    frame_max=st.sampled_from([9, 10, 20, 100, 4096, 131072]),
)
def test_delivery_encodes_like_pamqp(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    props: commands.Basic.Properties,
    body: bytes,
    frame_max: int,
) -> None:
    method = BasicDeliver(consumer_tag, delivery_tag, redelivered, exchange, routing_key)
    expected = marshal_content(channel, method, props, body, frame_max)
    templates = DeliverTemplates(channel)
    for _ in range(2):  # built, then cached
        parts: list[bytes] = []
        template = templates.get(consumer_tag, exchange, routing_key)
        encode_delivery(parts, channel, template, delivery_tag, redelivered, props.marshal(), body, frame_max)
        assert b"".join(parts) == expected


@dataclass
class _Msg:
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes


@dataclass
class _Delivery:
    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    message: _Msg


@SETTINGS
@given(
    channel=st.integers(1, 0xFFFF),
    runs=st.lists(
        st.tuples(
            st.sampled_from(["ctag-1", "ctag-2"]),
            st.sampled_from(["", "amq.topic"]),
            st.sampled_from(["k", "other"]),
            st.sampled_from([0, 1, 2]),  # which properties object
            st.sampled_from([b"", b"x", b"y" * 64, b"z" * 64, b"w" * 300]),
            st.booleans(),
            st.integers(1, 4),  # run length
        ),
        max_size=12,
    ),
    frame_max=st.sampled_from([100, 4096]),
)
def test_batch_encoding_equals_encoding_each_delivery_like_pamqp(
    channel: int, runs: list[tuple[str, str, str, int, bytes, bool, int]], frame_max: int
) -> None:
    shared = [Properties(), Properties(content_type="a/b", delivery_mode=2), Properties(message_id="m")]
    deliveries: list[Any] = []
    tag = 1
    for consumer_tag, exchange, routing_key, which, body, redelivered, length in runs:
        for _ in range(length):
            # Fresh string objects now and then: equal but not identical must encode the same.
            key = "".join(list(routing_key)) if tag % 3 == 0 else routing_key
            message = _Msg(exchange, key, shared[which], body)
            deliveries.append(_Delivery(consumer_tag, tag, redelivered, message))
            tag += 1
    cache = PropertiesCache()

    def reference(d: _Delivery) -> bytes:
        m = d.message
        tag, redelivered = d.delivery_tag, d.redelivered
        deliver = BasicDeliver(d.consumer_tag, tag, redelivered, m.exchange, m.routing_key)
        return marshal_content(channel, deliver, cache.get(m.properties), m.body, frame_max)

    expected = b"".join(reference(d) for d in deliveries)
    assert DeliverTemplates(channel).encode(deliveries, cache.encoded, frame_max) == expected


def test_multi_frame_body_matches_pamqp_body_frames() -> None:
    body = bytes(range(256)) * 3
    parts: list[bytes] = []
    encode_delivery(parts, 2, DeliverTemplates(2).get("t", "x", "k"), 1, False, b"\x00\x00", body, 108)
    frames = FrameBuffer(0, expect_header=False).feed(b"".join(parts))
    bodies = [f for _, f in frames if isinstance(f, ContentBody)]
    assert [len(f.value) for f in bodies] == [100] * 7 + [68]
    assert b"".join(f.value for f in bodies) == body


@pytest.mark.parametrize("exchange", ['orders "eu"', "caf\u00e9", "x" * 200, "\u00e9" * 127 + "x"])
def test_any_rabbitmq_exchange_name_is_encoded_as_pika_encodes_it(exchange: str) -> None:
    # pamqp's Basic.Deliver refuses these (DOMAIN_REGEX, 127 characters); RabbitMQ sends them.
    with pytest.raises(ValueError, match="exchange"):
        commands.Basic.Deliver("t", 1, False, exchange, "k")
    payload = b"".join(pika.spec.Basic.Deliver("t", 0, False, exchange, "k \u00e9").encode())
    head, tail = DeliverTemplates(1).get("t", exchange, "k \u00e9")
    # Template = frame header, method index, consumer tag | (tag, bit) | exchange, routing key.
    assert head[11:] + struct.pack(">qB", 0, 0) + tail[:-1] == payload


def test_exchange_name_over_255_octets_is_still_refused() -> None:
    with pytest.raises(TypeError, match="255"):
        DeliverTemplates(1).get("t", "\u00e9" * 128, "k")


def test_template_cache_is_bounded() -> None:
    templates = DeliverTemplates(1, max_entries=8)
    for i in range(50):
        templates.get("t", "", f"k{i}")
        assert len(templates._templates) <= 8


# ------------------------------------------------------------------------------ FrameBuffer fast paths


def test_large_frame_in_many_reads_is_held_without_reparsing() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB payload
    raw = struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce"
    buffer = FrameBuffer(0, expect_header=False)
    chunks = [raw[i : i + 1000] for i in range(0, len(raw), 1000)]
    for chunk in chunks[:-1]:
        assert buffer.feed(chunk) == []
    assert buffer.buffered == len(raw) - len(chunks[-1])
    [(channel, frame)] = buffer.feed(chunks[-1])
    assert channel == 1
    assert isinstance(frame, ContentBody)
    assert frame.value == body
    assert type(frame.value) is bytes
    assert buffer.buffered == 0


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_any_bytes_like(kind: Any) -> None:
    raw = marshal(commands.Basic.Ack(3, True), 5) + marshal(ContentBody(b"x"), 5)
    frames = FrameBuffer(0, expect_header=False).feed(kind(raw))
    assert [(c, type(f)) for c, f in frames] == [(5, commands.Basic.Ack), (5, ContentBody)]
