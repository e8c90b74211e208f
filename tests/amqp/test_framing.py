"""Framing: golden bytes, split-point robustness, frame_max and malformed frames, content assembly."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader, ProtocolHeader
from pamqp.heartbeat import Heartbeat

from mqstudio.amqp.framing import (
    FRAME_OVERHEAD,
    PROTOCOL_HEADER,
    AmqpError,
    Command,
    ContentAssembler,
    Frame,
    FrameBuffer,
    FrameError,
    ProtocolHeaderError,
    ReplyCode,
    format_reply_text,
    marshal,
    marshal_content,
    method_ids,
    split_body,
)

# ------------------------------------------------------------------------------ golden bytes


def test_protocol_header_golden_bytes() -> None:
    assert PROTOCOL_HEADER == b"AMQP\x00\x00\x09\x01"
    assert marshal(ProtocolHeader(), 0) == b"AMQP\x00\x00\x09\x01"


def test_heartbeat_golden_bytes() -> None:
    # type 8, channel 0, size 0, frame-end 0xCE (spec §4.2.7)
    assert marshal(Heartbeat(), 0) == bytes.fromhex("08 0000 00000000 ce")


def test_tune_golden_bytes() -> None:
    frame = marshal(commands.Connection.Tune(channel_max=2047, frame_max=131072, heartbeat=60), 0)
    assert frame == bytes.fromhex(
        "01 0000 0000000c"  # method frame, channel 0, 12-octet payload
        "000a 001e"  # connection.tune (class 10, method 30)
        "07ff 00020000 003c"  # channel-max 2047, frame-max 131072, heartbeat 60
        "ce"
    )


START_GOLDEN = bytes.fromhex(
    "01 0000 0000003a"  # method frame, channel 0, 58-octet payload
    "000a 000a"  # connection.start (class 10, method 10)
    "00 09"  # version-major 0, version-minor 9
    "00000015 07 70726f64756374 53 00000008 6d7173747564696f"  # {"product": S"mqstudio"}
    "0000000e 504c41494e20414d51504c41494e"  # mechanisms "PLAIN AMQPLAIN"
    "00000005 656e5f5553"  # locales "en_US"
    "ce"
)


def test_start_golden_bytes() -> None:
    start = commands.Connection.Start(
        version_major=0,
        version_minor=9,
        server_properties={"product": "mqstudio"},
        mechanisms="PLAIN AMQPLAIN",
        locales="en_US",
    )
    assert marshal(start, 0) == START_GOLDEN


def test_golden_frames_decode_back() -> None:
    buffer = FrameBuffer(expect_header=False)
    [(channel, frame)] = buffer.feed(START_GOLDEN)
    assert channel == 0
    assert isinstance(frame, commands.Connection.Start)
    assert frame.server_properties == {"product": "mqstudio"}
    assert frame.mechanisms == "PLAIN AMQPLAIN"


# ------------------------------------------------------------------------------ FrameBuffer


def _sample_stream() -> tuple[bytes, list[tuple[int, bytes]]]:
    """A header plus a realistic mix of frames; returns the bytes and the expected frames."""
    frames: list[tuple[int, Frame]] = [
        (0, commands.Connection.StartOk(client_properties={"product": "test"}, response="\0guest\0guest")),
        (0, Heartbeat()),
        (1, commands.Channel.Open()),
        (1, commands.Basic.Publish(exchange="amq.topic", routing_key="a.b")),
        (1, ContentHeader(body_size=5, properties=commands.Basic.Properties(content_type="text/plain"))),
        (1, ContentBody(b"hel")),
        (1, ContentBody(b"lo")),
        (7, commands.Queue.Declare(queue="q", durable=True, arguments={"x-max-length": 10})),
    ]
    stream = PROTOCOL_HEADER + b"".join(marshal(f, ch) for ch, f in frames)
    return stream, [(0, PROTOCOL_HEADER)] + [(ch, marshal(f, ch)) for ch, f in frames]


def _normalise(frames: list[tuple[int, Frame]]) -> list[tuple[int, bytes]]:
    return [(ch, marshal(f, ch)) for ch, f in frames]


def test_feed_whole_stream_yields_every_frame() -> None:
    stream, expected = _sample_stream()
    assert _normalise(FrameBuffer().feed(stream)) == expected


def test_feed_split_at_every_position_yields_the_same_frames() -> None:
    stream, expected = _sample_stream()
    for cut in range(len(stream) + 1):
        buffer = FrameBuffer()
        got = buffer.feed(stream[:cut]) + buffer.feed(stream[cut:])
        assert _normalise(got) == expected, f"split at {cut}"
        assert buffer.buffered == 0


def test_feed_one_octet_at_a_time_yields_the_same_frames() -> None:
    stream, expected = _sample_stream()
    buffer = FrameBuffer()
    got: list[tuple[int, Frame]] = []
    for i in range(len(stream)):
        got += buffer.feed(stream[i : i + 1])
    assert _normalise(got) == expected


# pamqp validates exchange and queue names against the spec's [a-zA-Z0-9-_.:] domain.
_short = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.:", max_size=40)
_frames = st.one_of(
    st.builds(lambda: (0, Heartbeat())),
    st.builds(lambda ch: (ch, commands.Channel.Open()), st.integers(1, 65535)),
    st.builds(
        lambda ch, ex, rk: (ch, commands.Basic.Publish(exchange=ex, routing_key=rk)),
        st.integers(1, 65535),
        _short,
        _short,
    ),
    st.builds(
        lambda ch, n, ct: (
            ch,
            ContentHeader(body_size=n, properties=commands.Basic.Properties(content_type=ct)),
        ),
        st.integers(1, 65535),
        st.integers(0, 2**40),
        _short,
    ),
    st.builds(lambda ch, b: (ch, ContentBody(b)), st.integers(1, 65535), st.binary(max_size=300)),
    st.builds(
        lambda ch, q, args: (ch, commands.Queue.Declare(queue=q, arguments=args)),
        st.integers(1, 65535),
        _short,
        st.dictionaries(_short.filter(bool), st.integers(-(2**31), 2**31 - 1), max_size=3),
    ),
)


@settings(max_examples=150, deadline=None)
@given(frames=st.lists(_frames, max_size=12), data=st.data())
def test_any_split_of_any_stream_yields_the_same_frames(
    frames: list[tuple[int, Frame]], data: st.DataObject
) -> None:
    stream = PROTOCOL_HEADER + b"".join(marshal(f, ch) for ch, f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    buffer = FrameBuffer(frame_max=131072)
    got: list[tuple[int, Frame]] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += buffer.feed(stream[start:cut])
        start = cut
    expected = [(0, PROTOCOL_HEADER)] + [(ch, marshal(f, ch)) for ch, f in frames]
    assert _normalise(got) == expected
    assert buffer.buffered == 0


def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    buffer = FrameBuffer(frame_max=4096, expect_header=False)
    # Only the 7-octet header of a 200 000-octet frame: refused before any body is buffered.
    with pytest.raises(FrameError) as info:
        buffer.feed(struct.pack(">BHI", 3, 1, 200_000))
    assert info.value.reply_code == 501
    assert "exceeds the negotiated frame_max of 4096" in info.value.reply_text
    assert info.value.reply_text.startswith("FRAME_ERROR - ")


def test_payload_of_exactly_frame_max_is_tolerated_like_rabbitmq() -> None:
    buffer = FrameBuffer(frame_max=4096, expect_header=False)
    [(channel, frame)] = buffer.feed(marshal(ContentBody(b"x" * 4096), 3))
    assert channel == 3
    assert isinstance(frame, ContentBody)
    assert len(frame.value) == 4096
    with pytest.raises(FrameError):
        FrameBuffer(frame_max=4096, expect_header=False).feed(marshal(ContentBody(b"x" * 4097), 3))


def test_bad_frame_end_octet_is_a_frame_error() -> None:
    frame = bytearray(marshal(commands.Channel.Open(), 1))
    frame[-1] = 0x00
    with pytest.raises(FrameError) as info:
        FrameBuffer(expect_header=False).feed(bytes(frame))
    assert info.value.reply_code == 501
    assert "frame-end octet 0x00" in info.value.text


def test_unknown_frame_type_is_a_frame_error() -> None:
    with pytest.raises(FrameError) as info:
        FrameBuffer(expect_header=False).feed(struct.pack(">BHI", 9, 0, 0) + b"\xce")
    assert info.value.reply_code == 501
    assert "unknown frame type 9" in info.value.text


def test_heartbeat_with_payload_is_a_frame_error() -> None:
    with pytest.raises(FrameError):
        FrameBuffer(expect_header=False).feed(struct.pack(">BHI", 8, 0, 1) + b"x\xce")


def test_undecodable_method_is_a_frame_error() -> None:
    payload = struct.pack(">HH", 999, 999)  # no such class/method
    with pytest.raises(FrameError) as info:
        FrameBuffer(expect_header=False).feed(struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce")
    assert info.value.reply_code == 501


def test_empty_body_frame_is_accepted() -> None:
    [(channel, frame)] = FrameBuffer(expect_header=False).feed(struct.pack(">BHI", 3, 2, 0) + b"\xce")
    assert channel == 2
    assert isinstance(frame, ContentBody)
    assert frame.value == b""


def test_good_frames_before_a_bad_one_are_returned_first() -> None:
    good = marshal(commands.Channel.Open(), 1)
    bad = struct.pack(">BHI", 9, 0, 0) + b"\xce"
    buffer = FrameBuffer(expect_header=False)
    frames = buffer.feed(good + bad)
    assert [type(f) for _, f in frames] == [commands.Channel.Open]
    assert buffer.error_pending
    with pytest.raises(FrameError):
        buffer.feed(b"")


@pytest.mark.parametrize(
    "header",
    [b"AMQP\x00\x00\x09\x00", b"AMQP\x01\x01\x00\x09", b"AMQP\x00\x01\x00\x00"],
)
def test_wrong_protocol_version_is_refused(header: bytes) -> None:
    with pytest.raises(ProtocolHeaderError) as info:
        FrameBuffer().feed(header)
    assert info.value.received == header


def test_non_amqp_traffic_is_refused_as_soon_as_it_diverges() -> None:
    with pytest.raises(ProtocolHeaderError):
        FrameBuffer().feed(b"GET")


def test_partial_header_waits_for_more() -> None:
    buffer = FrameBuffer()
    assert buffer.feed(b"AMQP\x00") == []
    [(channel, frame)] = buffer.feed(b"\x00\x09\x01")
    assert channel == 0
    assert isinstance(frame, ProtocolHeader)


# ------------------------------------------------------------------------------ errors


def test_reply_text_carries_rabbitmq_style_prefix_once() -> None:
    assert format_reply_text(530, "vhost x not found") == "NOT_ALLOWED - vhost x not found"
    assert format_reply_text(530, "NOT_ALLOWED - already") == "NOT_ALLOWED - already"
    # RabbitMQ: 252 octets and "..."; the é split at octet 252 is dropped, not sent half.
    assert format_reply_text(404, "x" + "é" * 300) == "NOT_FOUND - x" + "é" * 119 + "..."
    assert format_reply_text(404, "x" * 300) == "NOT_FOUND - " + "x" * 240 + "..."
    assert len(format_reply_text(404, "x" * 243).encode()) == 255  # fits: not cut


def test_soft_and_hard_codes_follow_the_spec() -> None:
    assert not AmqpError(404, "no queue").hard
    assert not AmqpError(406, "x").hard
    assert AmqpError(504, "x").hard
    assert AmqpError(530, "x").hard


# ------------------------------------------------------------------------------ content


def _publish() -> commands.Basic.Publish:
    return commands.Basic.Publish(exchange="", routing_key="q")


def test_publish_header_and_bodies_assemble_into_one_command() -> None:
    assembler = ContentAssembler()
    method = _publish()
    assert assembler.feed(1, method) is None
    assert assembler.pending(1)
    assert assembler.feed(1, ContentHeader(body_size=6)) is None
    assert assembler.feed(1, ContentBody(b"abc")) is None
    command = assembler.feed(1, ContentBody(b"def"))
    assert isinstance(command, Command)
    assert command.method is method
    assert command.body == b"abcdef"
    assert command.header is not None
    assert command.header.body_size == 6
    assert not assembler.pending(1)


def test_zero_size_body_completes_at_the_header() -> None:
    assembler = ContentAssembler()
    assembler.feed(1, _publish())
    command = assembler.feed(1, ContentHeader(body_size=0))
    assert command is not None
    assert command.body == b""


def test_channels_assemble_independently() -> None:
    assembler = ContentAssembler()
    assembler.feed(1, _publish())
    assembler.feed(2, _publish())
    assembler.feed(2, ContentHeader(body_size=1))
    assembler.feed(1, ContentHeader(body_size=1))
    one = assembler.feed(1, ContentBody(b"1"))
    two = assembler.feed(2, ContentBody(b"2"))
    assert one is not None and one.body == b"1"
    assert two is not None and two.body == b"2"


def test_method_without_content_is_a_command_at_once() -> None:
    command = ContentAssembler().feed(1, commands.Queue.Declare(queue="q"))
    assert command is not None
    assert command.header is None and command.body is None


def test_body_larger_than_announced_is_unexpected_frame() -> None:
    assembler = ContentAssembler()
    assembler.feed(1, _publish())
    assembler.feed(1, ContentHeader(body_size=3))
    with pytest.raises(AmqpError) as info:
        assembler.feed(1, ContentBody(b"abcd"))
    assert info.value.reply_code == ReplyCode.UNEXPECTED_FRAME
    assert (info.value.class_id, info.value.method_id) == (60, 40)


def test_content_header_without_method_is_unexpected_frame() -> None:
    with pytest.raises(AmqpError) as info:
        ContentAssembler().feed(1, ContentHeader(body_size=3))
    assert info.value.reply_code == 505
    assert "expected method frame" in info.value.text


def test_method_where_header_is_due_is_unexpected_frame() -> None:
    assembler = ContentAssembler()
    assembler.feed(1, _publish())
    with pytest.raises(AmqpError) as info:
        assembler.feed(1, _publish())
    assert info.value.reply_code == 505
    assert "expected content header for class 60" in info.value.text


def test_method_where_body_is_due_is_unexpected_frame() -> None:
    assembler = ContentAssembler()
    assembler.feed(1, _publish())
    assembler.feed(1, ContentHeader(body_size=3))
    with pytest.raises(AmqpError) as info:
        assembler.feed(1, _publish())
    assert info.value.reply_code == 505
    assert "expected content body" in info.value.text


def test_content_header_for_another_class_is_unexpected_frame() -> None:
    assembler = ContentAssembler()
    assembler.feed(1, _publish())
    header = ContentHeader(body_size=1)
    header.class_id = 50  # type: ignore[assignment]
    with pytest.raises(AmqpError) as info:
        assembler.feed(1, header)
    assert "got one for class 50" in info.value.text


def test_message_above_max_body_size_is_a_soft_precondition_failure() -> None:
    assembler = ContentAssembler(max_body_size=10)
    assembler.feed(1, _publish())
    with pytest.raises(AmqpError) as info:
        assembler.feed(1, ContentHeader(body_size=11))
    assert info.value.reply_code == ReplyCode.PRECONDITION_FAILED
    assert not info.value.hard
    assert not assembler.pending(1)


def test_split_body_respects_frame_max_overhead() -> None:
    assert split_body(b"", 4096) == []
    chunks = split_body(b"x" * 10_000, 4096)
    assert [len(c) for c in chunks] == [4088, 4088, 1824]
    assert all(len(c) + FRAME_OVERHEAD <= 4096 for c in chunks)
    with pytest.raises(ValueError):
        split_body(b"x", FRAME_OVERHEAD)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=20_000), frame_max=st.integers(4096, 9000))
def test_marshalled_content_reassembles_to_the_same_body(body: bytes, frame_max: int) -> None:
    method = commands.Basic.Deliver(consumer_tag="c", delivery_tag=1, exchange="", routing_key="q")
    props = commands.Basic.Properties(content_type="application/json", headers={"k": "v"})
    wire = marshal_content(5, method, props, body, frame_max)
    buffer = FrameBuffer(frame_max=frame_max, expect_header=False)
    frames = buffer.feed(wire)
    assert all(len(marshal(f, ch)) <= frame_max for ch, f in frames)
    assembler = ContentAssembler()
    commands_out = [c for ch, f in frames if (c := assembler.feed(ch, f)) is not None]
    assert len(commands_out) == 1
    assert commands_out[0].body == body
    assert commands_out[0].header is not None
    assert commands_out[0].header.properties.content_type == "application/json"
    assert method_ids(commands_out[0].method) == (60, 60)
