"""Property-based fuzzing of the AMQP byte layer: FrameBuffer and Connection.receive_data.

Whatever a peer sends, the decoder either yields frames or raises one of our protocol errors
(FrameError / ProtocolHeaderError / AmqpError) — never a pamqp, struct, unicode or recursion
error — and it never holds more than one frame's worth of octets (frame_max plus the 8 octets of
framing overhead). Through a completed handshake, `Connection.receive_data` never lets an
exception escape: bad input ends as a Channel.Close / Connection.Close or a terminal event.
"""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pamqp import commands
from pamqp import frame as pamqp_frame
from pamqp.base import Frame as Method
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat

from mqstudio.amqp.connection import (
    Connection,
    ConnectionClosed,
    ConnectionConfig,
    ConnectionTerminated,
    HandshakeCompleted,
    MethodReceived,
    State,
)
from mqstudio.amqp.framing import (
    FRAME_MIN_SIZE,
    FRAME_OVERHEAD,
    PROTOCOL_HEADER,
    AmqpError,
    Frame,
    FrameBuffer,
    FrameError,
    ProtocolHeaderError,
    ReplyCode,
    marshal,
    marshal_content,
)
from mqstudio.amqp.server import reject_unimplemented

# Decoding a deprecated method (basic.recover-async) makes pamqp warn; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pamqp.*")

OUR_ERRORS = (FrameError, ProtocolHeaderError, AmqpError)
LOOPBACK = ("127.0.0.1", 40000)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------ strategies

METHOD_INDEXES = sorted(commands.INDEX_MAPPING)


def raw_frame(frame_type: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes([end])


@st.composite
def frame_shaped(draw: st.DrawFn) -> bytes:
    """Bytes that get past the 7-octet header check, so pamqp's decoders get exercised."""
    kind = draw(st.sampled_from(["method", "header", "body", "heartbeat", "any-type"]))
    channel = draw(st.sampled_from([0, 1, 2, 65535]))
    tail = draw(st.binary(max_size=80))
    if kind == "method":
        payload = struct.pack(">I", draw(st.sampled_from(METHOD_INDEXES))) + tail
        return raw_frame(1, channel, payload)
    if kind == "header":
        flags = draw(st.integers(0, 0xFFFF))
        payload = struct.pack(">HHQH", 60, 0, draw(st.integers(0, 2**64 - 1)), flags) + tail
        return raw_frame(2, channel, payload)
    if kind == "body":
        return raw_frame(3, channel, tail)
    if kind == "heartbeat":
        return raw_frame(8, channel, tail[: draw(st.integers(0, 2))])
    end = draw(st.sampled_from([0xCE, 0x00, 0xFF]))
    return raw_frame(draw(st.integers(0, 255)), channel, tail, end)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_all(buffer: FrameBuffer, chunks: list[bytes]) -> None:
    """Feed chunk by chunk until an error; check the buffer bound after every call."""
    # A partial frame is at most the 7-octet header plus frame_max payload octets (frame-end
    # missing); anything more means bytes are held that can never become a frame.
    bound = buffer.frame_max + FRAME_OVERHEAD
    for chunk in chunks:
        try:
            frames = buffer.feed(chunk)
        except OUR_ERRORS:
            assert buffer.buffered <= bound
            return
        assert buffer.buffered <= bound, (buffer.buffered, bound)
        for channel, frame in frames:
            assert 0 <= channel <= 0xFFFF
            assert frame is not None


# ------------------------------------------------------------------------------ FrameBuffer


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_arbitrary_bytes_before_the_header_give_frames_or_our_errors(data: bytes, cuts: list[int]) -> None:
    feed_all(FrameBuffer(FRAME_MIN_SIZE), chunked(data, cuts))


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_arbitrary_bytes_after_a_valid_header_give_frames_or_our_errors(data: bytes, cuts: list[int]) -> None:
    feed_all(FrameBuffer(FRAME_MIN_SIZE), chunked(PROTOCOL_HEADER + data, cuts))


@FUZZ
@given(
    frames=st.lists(frame_shaped(), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 800), max_size=4),
    expect_header=st.booleans(),
)
def test_frame_shaped_garbage_gives_frames_or_our_errors(
    frames: list[bytes], cuts: list[int], expect_header: bool
) -> None:
    data = (PROTOCOL_HEADER if expect_header else b"") + b"".join(frames)
    feed_all(FrameBuffer(FRAME_MIN_SIZE, expect_header=expect_header), chunked(data, cuts))


@FUZZ
@given(
    frame_max=st.sampled_from([FRAME_MIN_SIZE, 8192]),
    junk=st.binary(min_size=1, max_size=64),
    extra=st.integers(0, 40_000),
    at_once=st.booleans(),
)
def test_buffered_octets_stay_within_one_frame_whatever_is_fed(
    frame_max: int, junk: bytes, extra: int, at_once: bool
) -> None:
    # A peer that announces a frame then floods bytes, in one write or many small ones.
    data = junk + b"\xab" * extra
    chunks = [data] if at_once else [data[i : i + 1500] for i in range(0, len(data), 1500)]
    feed_all(FrameBuffer(frame_max, expect_header=False), chunks)


def test_error_behind_good_frames_does_not_keep_the_rest_of_the_stream() -> None:
    good = marshal(Heartbeat(), 0)
    flood = raw_frame(0x41, 1, b"") + b"\x00" * 100_000  # unknown type 0x41, then junk
    buffer = FrameBuffer(FRAME_MIN_SIZE, expect_header=False)
    assert len(buffer.feed(good + flood)) == 1
    assert buffer.buffered <= FRAME_MIN_SIZE + FRAME_OVERHEAD


def test_error_on_the_first_frame_does_not_keep_the_rest_of_the_stream() -> None:
    buffer = FrameBuffer(FRAME_MIN_SIZE, expect_header=False)
    try:
        buffer.feed(raw_frame(1, 0, b"\x00\x0a", end=0x00) + b"\x00" * 100_000)
    except FrameError:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("a bad frame-end octet must raise FrameError")
    assert buffer.buffered <= FRAME_MIN_SIZE + FRAME_OVERHEAD


def _nested_table(levels: int) -> bytes:
    table = b""
    for _ in range(levels):
        table = b"\x01a" + b"F" + struct.pack(">I", len(table)) + table
    return struct.pack(">I", len(table)) + table


def _nested_array_table(levels: int) -> bytes:
    array = b""
    for _ in range(levels):
        array = b"A" + struct.pack(">I", len(array)) + array
    table = b"\x01a" + array
    return struct.pack(">I", len(table)) + table


def _start_ok_with_properties(table: bytes) -> bytes:
    credentials = b"\x00guest\x00guest"
    payload = (
        struct.pack(">HH", 10, 11)
        + table
        + b"\x05PLAIN"
        + struct.pack(">I", len(credentials))
        + credentials
        + b"\x05en_US"
    )
    return raw_frame(1, 0, payload)


def test_deeply_nested_field_table_is_a_frame_error_not_a_recursion_error() -> None:
    # 4 KiB is enough to nest ~570 tables, which blew Python's recursion limit inside pamqp.
    frame = _start_ok_with_properties(_nested_table(570))
    assert len(frame) <= FRAME_MIN_SIZE
    buffer = FrameBuffer(FRAME_MIN_SIZE, expect_header=False)
    try:
        buffer.feed(frame)
    except FrameError as exc:
        assert exc.reply_code == ReplyCode.FRAME_ERROR
    else:  # pragma: no cover
        raise AssertionError("a table nested beyond decoding must raise FrameError")


def test_pre_auth_start_ok_with_nested_arrays_closes_the_connection_cleanly() -> None:
    conn = Connection(config=ConnectionConfig(), peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER)
    conn.data_to_send()
    frame = _start_ok_with_properties(_nested_array_table(800))
    assert len(frame) <= FRAME_MIN_SIZE
    conn.receive_data(frame)  # must not raise
    assert conn.closed
    events = conn.drain_events()
    assert isinstance(events[-1], ConnectionClosed)
    assert events[-1].reply_code == ReplyCode.FRAME_ERROR
    out = FrameBuffer(1 << 20, expect_header=False).feed(conn.data_to_send())
    assert [type(f) for _, f in out] == [commands.Connection.Close]


# ------------------------------------------------------------------------------ Connection


def open_connection() -> Connection:
    """A Connection through Start-Ok / Tune-Ok / Open, with channel 1 open."""
    conn = Connection(config=ConnectionConfig(heartbeat=0), peer=LOOPBACK)
    client: list[tuple[int, Frame]] = [
        (0, commands.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0guest\0guest")),
        (0, commands.Connection.TuneOk(channel_max=16, frame_max=FRAME_MIN_SIZE, heartbeat=0)),
        (0, commands.Connection.Open(virtual_host="/")),
        (1, commands.Channel.Open()),
    ]
    conn.receive_data(PROTOCOL_HEADER + b"".join(marshal(f, ch) for ch, f in client))
    conn.data_to_send()
    events = conn.drain_events()
    assert isinstance(events[0], HandshakeCompleted)
    assert conn.state is State.OPEN
    assert conn.open_channels == {1}
    return conn


@st.composite
def client_frame(draw: st.DrawFn) -> bytes:
    """Well-formed frames in hostile orders, plus frame-shaped and raw garbage."""
    channel = draw(st.sampled_from([0, 1, 1, 1, 2, 17]))
    kind = draw(st.integers(0, 11))
    frame: Frame
    if kind == 0:
        frame = commands.Basic.Publish(exchange="", routing_key="q")
    elif kind == 1:
        frame = ContentHeader(body_size=draw(st.integers(0, 50)), properties=commands.Basic.Properties())
    elif kind == 2:
        frame = ContentBody(draw(st.binary(min_size=1, max_size=40)))
    elif kind == 3:
        frame = Heartbeat()
    elif kind == 4:
        frame = commands.Channel.Open()
    elif kind == 5:
        frame = commands.Channel.Close(200, "bye", 0, 0)
    elif kind == 6:
        frame = commands.Channel.CloseOk()
    elif kind == 7:
        frame = draw(
            st.sampled_from(
                [
                    commands.Connection.Close(200, "bye", 0, 0),
                    commands.Connection.CloseOk(),
                    commands.Connection.TuneOk(channel_max=1, frame_max=FRAME_MIN_SIZE, heartbeat=0),
                    commands.Channel.Flow(active=False),
                    commands.Basic.Ack(delivery_tag=1),
                    commands.Queue.Declare(queue="q"),
                ]
            )
        )
    elif kind == 8:
        return draw(frame_shaped())
    elif kind == 9:
        return draw(st.binary(max_size=30))
    else:
        frame = commands.Basic.Publish(exchange="x", routing_key="k")
    return marshal(frame, channel)


@FUZZ
@given(frames=st.lists(client_frame(), min_size=1, max_size=12), cuts=st.lists(st.integers(0, 1000)))
def test_connection_never_lets_an_unexpected_exception_escape(frames: list[bytes], cuts: list[int]) -> None:
    conn = open_connection()
    data = b"".join(frames)
    assume(data)
    terminated = False
    output = bytearray()
    for chunk in chunked(data, cuts):
        conn.receive_data(chunk)  # the property: this never raises
        for event in conn.drain_events():
            assert not terminated, "no event after the terminal one"
            if isinstance(event, ConnectionTerminated):
                terminated = True
            elif isinstance(event, MethodReceived):
                reject_unimplemented(conn, event)  # what the server does without a channel layer
        output += conn.data_to_send()
    if conn.closed:
        assert terminated
    # Everything we said is well-formed, and only channel/connection housekeeping or errors.
    allowed = (
        commands.Channel.OpenOk,
        commands.Channel.CloseOk,
        commands.Channel.Close,
        commands.Channel.FlowOk,
        commands.Connection.Close,
        commands.Connection.CloseOk,
    )
    reply = FrameBuffer(1 << 20, expect_header=False).feed(bytes(output))
    for _, frame in reply:
        assert isinstance(frame, allowed), frame
        if isinstance(frame, commands.Connection.Close | commands.Channel.Close):
            assert frame.reply_code in set(ReplyCode)


# ------------------------------------------------------------------------------ fast paths


def _pamqp_content(
    channel: int, method: Method, props: commands.Basic.Properties, body: bytes, fmax: int
) -> bytes:
    """The reference encoding: every frame through pamqp's own marshal."""
    step = fmax - FRAME_OVERHEAD
    frames: list[Frame] = [method, ContentHeader(body_size=len(body), properties=props)]
    frames += [ContentBody(body[i : i + step]) for i in range(0, len(body), step)]
    return b"".join(pamqp_frame.marshal(f, channel) for f in frames)


@FUZZ
@given(
    channel=st.integers(1, 0xFFFF),
    body=st.one_of(
        st.binary(max_size=64), st.binary(min_size=FRAME_MIN_SIZE - 16, max_size=3 * FRAME_MIN_SIZE)
    ),
    frame_max=st.sampled_from([FRAME_MIN_SIZE, FRAME_MIN_SIZE + 8, 131072]),
)
def test_hand_framed_content_matches_pamqp_and_decodes_back(
    channel: int, body: bytes, frame_max: int
) -> None:
    method = commands.Basic.Deliver(consumer_tag="c", delivery_tag=7, exchange="x", routing_key="k")
    props = commands.Basic.Properties(content_type="text/plain", headers={"n": 1})
    wire_bytes = marshal_content(channel, method, props, body, frame_max)
    assert wire_bytes == _pamqp_content(channel, method, props, body, frame_max)
    frames = FrameBuffer(frame_max, expect_header=False).feed(wire_bytes)
    assert {ch for ch, _ in frames} == {channel}
    decoded = [f for _, f in frames]
    assert isinstance(decoded[0], commands.Basic.Deliver)
    assert decoded[0].delivery_tag == 7
    assert isinstance(decoded[1], ContentHeader)
    assert decoded[1].body_size == len(body)
    assert b"".join(f.value for f in decoded[2:] if isinstance(f, ContentBody)) == body


@FUZZ
@given(frames=st.lists(frame_shaped(), min_size=1, max_size=4))
def test_decoder_agrees_with_pamqp_on_every_frame_pamqp_accepts(frames: list[bytes]) -> None:
    for data in frames:
        try:
            _, ref_channel, reference = pamqp_frame.unmarshal(data)
        except Exception:
            continue  # pamqp refuses it; the fuzz tests above cover what we do then
        try:
            ours = FrameBuffer(FRAME_MIN_SIZE, expect_header=False).feed(data)
        except OUR_ERRORS:
            continue  # stricter than pamqp (frame_max, heartbeat rules): allowed
        assert len(ours) == 1
        channel, frame = ours[0]
        assert channel == ref_channel
        assert type(frame) is type(reference)
        try:
            expected = pamqp_frame.marshal(reference, channel)
        except (ValueError, TypeError):  # pamqp decodes values it refuses to encode
            continue
        assert pamqp_frame.marshal(frame, channel) == expected
