"""The publish fast path: FrameBuffer(fuse_content=True) and Connection's handling of fused commands.

A basic.publish whose content header and single body frame arrive together is yielded as one
`Command`; anything unusual comes out frame by frame. The contract is that fusing never changes
what a connection does: the differential property test feeds the same hostile streams, cut the
same way, to a fusing and a non-fusing connection and compares every event and every octet sent.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from mqstudio.amqp.connection import (
    Connection,
    ConnectionConfig,
    HandshakeCompleted,
    MethodReceived,
    State,
)
from mqstudio.amqp.events import Event
from mqstudio.amqp.framing import (
    FRAME_MIN_SIZE,
    PROTOCOL_HEADER,
    Command,
    ContentAssembler,
    Frame,
    FrameBuffer,
    FrameError,
    marshal,
    marshal_content,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pamqp.*")

LOOPBACK = ("127.0.0.1", 40000)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROPS = commands.Basic.Properties(content_type="text/plain", delivery_mode=2, headers={"a": 1})


def publish(channel: int, body: bytes, props: commands.Basic.Properties = PROPS, rk: str = "q") -> bytes:
    return marshal_content(channel, commands.Basic.Publish(exchange="", routing_key=rk), props, body, 1 << 20)


def raw_frame(frame_type: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes([end])


def fusing(frame_max: int = 1 << 20) -> FrameBuffer:
    return FrameBuffer(frame_max, expect_header=False, fuse_content=True)


# ------------------------------------------------------------------------------ FrameBuffer


def test_whole_publish_comes_out_as_one_command_equal_to_pamqps_decoding() -> None:
    out = fusing().feed(publish(3, b"hello"))
    assert len(out) == 1
    channel, command = out[0]
    assert channel == 3
    assert isinstance(command, Command)
    assert isinstance(command.method, commands.Basic.Publish)
    assert (command.method.exchange, command.method.routing_key) == ("", "q")
    assert command.header is not None
    assert command.header.body_size == 5
    assert command.header.properties.content_type == "text/plain"
    assert command.header.properties.headers == {"a": 1}
    assert command.body == b"hello"


def test_publish_with_empty_body_is_fused_at_its_header() -> None:
    out = fusing().feed(publish(1, b"") + marshal(commands.Basic.Ack(7), 1))
    assert [type(f) for _, f in out] == [Command, commands.Basic.Ack]
    command = out[0][1]
    assert isinstance(command, Command)
    assert command.body == b""


def test_without_the_flag_the_buffer_yields_plain_frames() -> None:
    out = FrameBuffer(1 << 20, expect_header=False).feed(publish(1, b"x"))
    assert [type(f) for _, f in out] == [commands.Basic.Publish, ContentHeader, ContentBody]


def test_body_spread_over_several_frames_is_not_fused() -> None:
    data = marshal_content(1, commands.Basic.Publish(routing_key="q"), PROPS, b"y" * 10000, FRAME_MIN_SIZE)
    out = fusing(FRAME_MIN_SIZE).feed(data)
    assert [type(f) for _, f in out] == [commands.Basic.Publish, ContentHeader] + [ContentBody] * 3


@pytest.mark.parametrize("cut", [5, 30, 45, 50, -1])
def test_publish_cut_after_its_method_frame_is_not_fused_and_completes_later(cut: int) -> None:
    data = publish(1, b"payload")
    method_end = len(marshal(commands.Basic.Publish(routing_key="q"), 1))
    cut = method_end + cut if cut > 0 else len(data) + cut
    buffer = fusing()
    first = buffer.feed(data[:cut])
    rest = buffer.feed(data[cut:])
    assert Command not in [type(f) for _, f in first + rest]
    assembler = ContentAssembler()
    assembled = [c for ch, f in first + rest if (c := assembler.feed(ch, f)) is not None]  # type: ignore[arg-type]
    assert len(assembled) == 1
    assert assembled[0].body == b"payload"


def test_publish_cut_inside_its_method_frame_is_fused_once_whole() -> None:
    data = publish(1, b"payload")
    buffer = fusing()
    assert buffer.feed(data[:3]) == []
    assert [type(f) for _, f in buffer.feed(data[3:])] == [Command]


def test_header_on_another_channel_is_left_to_the_assembler() -> None:
    method = marshal(commands.Basic.Publish(routing_key="q"), 1)
    header = marshal(ContentHeader(body_size=1, properties=PROPS), 2)
    out = fusing().feed(method + header + marshal(ContentBody(b"z"), 1))
    assert [(ch, type(f)) for ch, f in out] == [
        (1, commands.Basic.Publish),
        (2, ContentHeader),
        (1, ContentBody),
    ]


def test_header_with_a_weight_or_another_class_is_yielded_as_a_frame() -> None:
    good = marshal(ContentHeader(body_size=1, properties=PROPS), 1)
    payload = good[7:-1]
    method = marshal(commands.Basic.Publish(routing_key="q"), 1)
    for bad in (payload[:2] + b"\x00\x01" + payload[4:], b"\x00\x32" + payload[2:]):
        data = method + raw_frame(2, 1, bad) + raw_frame(3, 1, b"z")
        out = fusing().feed(data)
        assert [type(f) for _, f in out] == [commands.Basic.Publish, ContentHeader, ContentBody]


def test_body_frame_with_a_bad_end_octet_fails_where_it_is() -> None:
    good = publish(1, b"abc")
    buffer = fusing()
    out = buffer.feed(good[:-1] + b"\x00")
    assert [type(f) for _, f in out] == [commands.Basic.Publish, ContentHeader]
    with pytest.raises(FrameError, match="frame-end"):
        buffer.feed(b"")


def test_undecodable_header_fails_where_it_is() -> None:
    data = marshal(commands.Basic.Publish(routing_key="q"), 1) + raw_frame(2, 1, b"\x00\x3c\x00\x00\x00")
    buffer = fusing()
    out = buffer.feed(data)
    assert [type(f) for _, f in out] == [commands.Basic.Publish]
    with pytest.raises(FrameError, match="cannot decode"):
        buffer.feed(b"")


def test_oversized_body_frame_behind_a_publish_is_refused_from_its_header() -> None:
    data = publish(1, b"b" * 5000)
    buffer = fusing(FRAME_MIN_SIZE)
    out = buffer.feed(data)
    assert [type(f) for _, f in out] == [commands.Basic.Publish, ContentHeader]
    with pytest.raises(FrameError, match="exceeds the negotiated frame_max"):
        buffer.feed(b"")


def test_repeated_publishes_fuse_from_the_remembered_pair_with_their_own_bodies() -> None:
    buffer = fusing()
    bodies = [b"a" * 10, b"b" * 10, b"c" * 10]
    out = buffer.feed(b"".join(publish(1, body) for body in bodies))
    assert [type(f) for _, f in out] == [Command] * 3
    commands_out = [f for _, f in out if isinstance(f, Command)]
    assert [c.body for c in commands_out] == bodies
    assert commands_out[1].method is commands_out[0].method  # decoded once, shared
    assert commands_out[2].header is commands_out[0].header


@pytest.mark.parametrize(
    ("body_frame", "expected"),
    [
        (raw_frame(3, 2, b"z" * 10), [ContentBody]),  # another channel
        (raw_frame(3, 1, b"z" * 9), [ContentBody]),  # shorter than announced
        (raw_frame(2, 1, b"z" * 10), [ContentHeader]),  # not a body frame
    ],
)
def test_a_remembered_pair_followed_by_the_wrong_body_frame_goes_frame_by_frame(
    body_frame: bytes, expected: list[type]
) -> None:
    buffer = fusing()
    first = publish(1, b"a" * 10)
    pair = first[: -len(marshal(ContentBody(b"a" * 10), 1))]
    frames: list[tuple[int, Any]] = []
    try:
        frames = buffer.feed(first + pair + body_frame)
    except FrameError:
        raise AssertionError("the good frames come first") from None
    assert [type(f) for _, f in frames][:3] == [Command, commands.Basic.Publish, ContentHeader]
    assert [type(f) for _, f in frames][3:] in ([], expected)


def test_a_remembered_pair_with_a_bad_body_frame_end_fails_at_the_body() -> None:
    buffer = fusing()
    good = publish(1, b"a" * 10)
    out = buffer.feed(good + good[:-1] + b"\x00")
    assert [type(f) for _, f in out] == [Command, commands.Basic.Publish, ContentHeader]
    with pytest.raises(FrameError, match="frame-end"):
        buffer.feed(b"")


def test_changing_frame_max_forgets_remembered_pairs() -> None:
    buffer = fusing(1 << 20)
    buffer.feed(publish(1, b"a" * 10))
    assert buffer._fused
    buffer.frame_max = FRAME_MIN_SIZE
    assert not buffer._fused
    out = buffer.feed(publish(1, b"b" * 10))
    assert [type(f) for _, f in out] == [Command]


# ------------------------------------------------------------------------------ Connection


def open_connection(*, fuse: bool, max_body_size: int | None = 64) -> Connection:
    conn = Connection(config=ConnectionConfig(heartbeat=0, max_body_size=max_body_size), peer=LOOPBACK)
    conn._frames.fuse_content = fuse
    client: list[tuple[int, Frame]] = [
        (0, commands.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0guest\0guest")),
        (0, commands.Connection.TuneOk(channel_max=16, frame_max=FRAME_MIN_SIZE, heartbeat=0)),
        (0, commands.Connection.Open(virtual_host="/")),
        (1, commands.Channel.Open()),
        (2, commands.Channel.Open()),
    ]
    conn.receive_data(PROTOCOL_HEADER + b"".join(marshal(f, ch) for ch, f in client))
    conn.data_to_send()
    events = conn.drain_events()
    assert isinstance(events[0], HandshakeCompleted)
    assert conn.state is State.OPEN
    return conn


def test_connection_reports_a_fused_publish_as_one_method_received() -> None:
    conn = open_connection(fuse=True)
    conn.receive_data(publish(1, b"hi") + marshal(commands.Basic.Nack(1), 1))
    events = conn.drain_events()
    assert [type(e) for e in events] == [MethodReceived, MethodReceived]
    first = events[0]
    assert isinstance(first, MethodReceived)
    assert isinstance(first.method, commands.Basic.Publish)
    assert first.header is not None
    assert first.header.body_size == 2
    assert first.body == b"hi"


def test_fused_publish_above_max_body_size_closes_the_channel_with_406() -> None:
    conn = open_connection(fuse=True, max_body_size=4)
    conn.receive_data(publish(1, b"too long"))
    reply = FrameBuffer(1 << 20, expect_header=False).feed(conn.data_to_send())
    assert len(reply) == 1
    channel, close = reply[0]
    assert channel == 1
    assert isinstance(close, commands.Channel.Close)
    assert close.reply_code == 406
    assert "larger than configured max size 4" in close.reply_text


def test_fused_publish_while_a_body_is_due_is_an_unexpected_frame() -> None:
    conn = open_connection(fuse=True)
    half = marshal(commands.Basic.Publish(routing_key="q"), 1) + marshal(ContentHeader(body_size=9), 1)
    conn.receive_data(half + publish(1, b"x"))
    reply = FrameBuffer(1 << 20, expect_header=False).feed(conn.data_to_send())
    assert [type(f) for _, f in reply] == [commands.Connection.Close]
    close = reply[0][1]
    assert isinstance(close, commands.Connection.Close)
    assert close.reply_code == 505


def _normal(event: Event) -> tuple[Any, ...]:
    """An event as plain values (decoded pamqp objects do not compare by value)."""
    if isinstance(event, MethodReceived):
        header = event.header
        return (
            "method",
            event.channel,
            type(event.method).__name__,
            sorted(vars(event.method).items()) if hasattr(event.method, "__dict__") else repr(event.method),
            None if header is None else (header.class_id, header.weight, header.body_size),
            None if header is None else header.properties.marshal(),
            event.body,
        )
    return (type(event).__name__, repr(event))


@st.composite
def client_chunk(draw: st.DrawFn) -> bytes:
    """Whole publishes (often), their pieces, acks and housekeeping, on two channels."""
    channel = draw(st.sampled_from([1, 1, 2, 3]))
    kind = draw(st.integers(0, 9))
    if kind <= 3:
        body = draw(st.one_of(st.binary(max_size=80), st.binary(min_size=4000, max_size=9000)))
        props = draw(st.sampled_from([PROPS, commands.Basic.Properties()]))
        return marshal_content(channel, commands.Basic.Publish(routing_key="q"), props, body, FRAME_MIN_SIZE)
    if kind == 4:
        return marshal(commands.Basic.Publish(routing_key="q"), channel)
    if kind == 5:
        return marshal(ContentHeader(body_size=draw(st.integers(0, 90)), properties=PROPS), channel)
    if kind == 6:
        return marshal(ContentBody(draw(st.binary(min_size=1, max_size=40))), channel)
    if kind == 7:
        method = draw(
            st.sampled_from(
                [
                    commands.Basic.Ack(delivery_tag=1, multiple=True),
                    commands.Basic.Nack(delivery_tag=2),
                    commands.Basic.Reject(delivery_tag=3),
                    commands.Channel.Close(200, "bye", 0, 0),
                    commands.Channel.Open(),
                ]
            )
        )
        return marshal(method, channel)
    if kind == 8:
        weight_or_class = draw(st.sampled_from([b"\x00\x3c\x00\x01", b"\x00\x32\x00\x00"]))
        return raw_frame(2, channel, weight_or_class + struct.pack(">QH", 1, 0))
    return draw(st.binary(max_size=12))


@FUZZ
@given(chunks=st.lists(client_chunk(), min_size=1, max_size=10), cuts=st.lists(st.integers(0, 20000)))
def test_fusing_never_changes_what_a_connection_does(chunks: list[bytes], cuts: list[int]) -> None:
    data = b"".join(chunks)
    bounds = sorted({c for c in cuts if 0 < c < len(data)})
    pieces = [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)], strict=True)]
    results = []
    for fuse in (True, False):
        conn = open_connection(fuse=fuse)
        events: list[tuple[Any, ...]] = []
        output = bytearray()
        for piece in pieces:
            conn.receive_data(piece)
            events += [_normal(e) for e in conn.drain_events()]
            output += conn.data_to_send()
        results.append((events, bytes(output), conn.state))
    assert results[0] == results[1]
