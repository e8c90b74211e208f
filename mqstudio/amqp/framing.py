"""AMQP 0-9-1 framing: whole frames in, whole frames out, content reassembly.

Owns the byte-level layer of the wire front-end: the protocol header check (spec §4.2.2), the
general frame format (spec §4.2.3: type octet, channel short, size long, payload, frame-end 0xCE),
frame_max enforcement, the reply codes of the spec's constants table, the error type every layer
above raises, and the method → content header → content body assembly of spec §4.2.6.

The codec is pamqp's, except for the hot frames (basic.publish/ack/nack/reject, content headers)
which `mqstudio.amqp.fastcodec` decodes by hand with pamqp's results; the frame header is read in
place and each whole frame decoded once; nothing here parses byte by byte.

Must not import: sockets, asyncio, Qt, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import TypeAlias

from pamqp import body as pamqp_body
from pamqp import commands
from pamqp import exceptions as pamqp_exceptions
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header
from pamqp import heartbeat as pamqp_heartbeat
from pamqp.base import Frame as Method

from mqstudio.amqp.fastcodec import METHOD_DECODERS, HeaderDecoder, PublishDecoder

__all__ = [
    "CONTENT_METHODS",
    "FRAME_END",
    "FRAME_HEADER_SIZE",
    "FRAME_MIN_SIZE",
    "FRAME_OVERHEAD",
    "PROTOCOL_HEADER",
    "AmqpError",
    "Command",
    "ContentAssembler",
    "Frame",
    "FrameBuffer",
    "FrameError",
    "FrameType",
    "Method",
    "ProtocolHeaderError",
    "ReplyCode",
    "marshal",
    "marshal_content",
    "method_ids",
    "method_name",
    "split_body",
]

#: Spec §4.2.2: "AMQP" 0 0 9 1 — the only protocol header this server speaks.
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
#: Type octet, channel short, size long (spec §4.2.3).
FRAME_HEADER_SIZE = 7
FRAME_END = 0xCE
_FRAME_END_OCTET = bytes([FRAME_END])
#: Header plus frame-end octet: the part of every frame that is not payload.
FRAME_OVERHEAD = FRAME_HEADER_SIZE + 1
#: Spec constant frame-min-size: the largest frame either peer must accept before Tune-Ok.
FRAME_MIN_SIZE = 4096

#: Everything FrameBuffer yields or `marshal` accepts.
Frame: TypeAlias = (
    Method
    | pamqp_header.ContentHeader
    | pamqp_body.ContentBody
    | pamqp_heartbeat.Heartbeat
    | pamqp_header.ProtocolHeader
)

#: Methods followed by a content header and body frames (spec §4.2.6, "content" in the XML).
CONTENT_METHODS: tuple[type[Method], ...] = (
    commands.Basic.Publish,
    commands.Basic.Return,
    commands.Basic.Deliver,
    commands.Basic.GetOk,
)


class FrameType(enum.IntEnum):
    """Frame type octets (spec §4.2.3, constants frame-method … frame-heartbeat)."""

    METHOD = 1
    HEADER = 2
    BODY = 3
    HEARTBEAT = 8


class ReplyCode(enum.IntEnum):
    """Reply codes from the spec's constants table; names are RabbitMQ's reply-text prefixes."""

    CONTENT_TOO_LARGE = 311
    NO_ROUTE = 312
    NO_CONSUMERS = 313
    CONNECTION_FORCED = 320
    INVALID_PATH = 402
    ACCESS_REFUSED = 403
    NOT_FOUND = 404
    RESOURCE_LOCKED = 405
    PRECONDITION_FAILED = 406
    FRAME_ERROR = 501
    SYNTAX_ERROR = 502
    COMMAND_INVALID = 503
    CHANNEL_ERROR = 504
    UNEXPECTED_FRAME = 505
    RESOURCE_ERROR = 506
    NOT_ALLOWED = 530
    NOT_IMPLEMENTED = 540
    INTERNAL_ERROR = 541


# Spec constants table: these are "soft-error" (channel) codes; every other code is a hard
# (connection) error. 403 is soft on a channel but fatal during the connection handshake.
_SOFT_CODES = frozenset({311, 312, 313, 403, 404, 405, 406})


class AmqpError(Exception):
    """A protocol exception to be reported to the peer with Channel.Close or Connection.Close.

    `reply_text` is what goes on the wire; like RabbitMQ it is prefixed with the code's name
    ("NOT_ALLOWED - vhost x not found") unless it already carries the prefix.
    """

    def __init__(self, reply_code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        self.reply_code = int(reply_code)
        self.text = text
        self.class_id = class_id
        self.method_id = method_id
        super().__init__(self.reply_text)

    @property
    def reply_text(self) -> str:
        return format_reply_text(self.reply_code, self.text)

    @property
    def hard(self) -> bool:
        """True when the spec makes this a connection exception rather than a channel one."""
        return self.reply_code not in _SOFT_CODES

    def for_method(self, method: Method | None) -> AmqpError:
        """Attach the failing method's class and method ids (Close carries them, spec §1.4.2.7)."""
        if method is not None and self.class_id == 0 and self.method_id == 0:
            self.class_id, self.method_id = method_ids(method)
        return self


class FrameError(AmqpError):
    """A framing-level failure: the byte stream cannot be trusted past this point."""

    def __init__(self, text: str, reply_code: int = ReplyCode.FRAME_ERROR) -> None:
        super().__init__(reply_code, text)


class ProtocolHeaderError(Exception):
    """The peer opened with something other than AMQP 0-9-1's header (spec §4.2.2).

    The server must answer with its own header and close the socket, without a Close method.
    """

    def __init__(self, received: bytes) -> None:
        self.received = received
        super().__init__(f"unsupported protocol header {received!r}, expected {PROTOCOL_HEADER!r}")


def format_reply_text(reply_code: int, text: str) -> str:
    """RabbitMQ's reply text shape: "<CODE_NAME> - <detail>", cut to a shortstr's 255 octets.

    Like rabbit_binary_generator, a longer text keeps its first 252 octets and ends in "...";
    unlike it, a character split by that cut is dropped rather than sent as broken UTF-8.
    """
    try:
        prefix = ReplyCode(reply_code).name
    except ValueError:
        prefix = ""
    full = text if not prefix or text.startswith(prefix) else f"{prefix} - {text}"
    encoded = full.encode("utf-8")
    if len(encoded) > 255:  # reply-text is a shortstr (spec domain reply-text)
        full = encoded[:252].decode("utf-8", errors="ignore") + "..."
    return full


def method_ids(method: Method) -> tuple[int, int]:
    """(class-id, method-id) of a method; pamqp packs them into `index` as class << 16 | method."""
    return method.index >> 16, method.index & 0xFFFF


def method_name(method: Method | type[Method]) -> str:
    """The spec's dotted lower-case name, e.g. "basic.publish", as RabbitMQ prints it."""
    return method.name.lower()


# --------------------------------------------------------------------------------------------
# Incoming frames
# --------------------------------------------------------------------------------------------

# RecursionError: pamqp decodes nested field tables and arrays recursively, so a 4 KiB
# Start-Ok nesting ~600 tables exhausts the stack before authentication. ArithmeticError:
# overflowing timestamps and decimals.
_DECODE_ERRORS = (
    pamqp_exceptions.PAMQPException,
    ValueError,
    struct.error,
    LookupError,
    TypeError,
    ArithmeticError,
    RecursionError,
)


class FrameBuffer:
    """Accumulates received bytes and yields whole frames as (channel, frame).

    The first thing a client sends is the protocol header; `feed` yields it as a
    `pamqp.header.ProtocolHeader` on channel 0, or raises `ProtocolHeaderError`.

    With `fuse_content`, a basic.publish whose content header and single body frame arrived
    in the same buffer is yielded as one `Command` (method, header, body) instead of three
    frames; only when all three frames are well formed, so anything unusual (a bad frame, a
    body split over several frames or reads, a header for another class or with a weight)
    still comes out frame by frame and fails exactly where it did. The caller must treat a
    fused command as the three frames in a row (`ContentAssembler` rules included).

    After an exception from `feed` the buffer is desynchronised: the caller must close the
    connection and stop feeding.
    """

    def __init__(
        self, frame_max: int = FRAME_MIN_SIZE, expect_header: bool = True, *, fuse_content: bool = False
    ) -> None:
        #: basic.publish method frame + content header frame octets (frame headers and ends
        #: included) → their decoded (method, header), for pairs that fused before.
        self._fused: dict[bytes, tuple[Method, pamqp_header.ContentHeader]] = {}
        self.frame_max = frame_max
        self.fuse_content = fuse_content
        self._expect_header = expect_header
        self._buffer = bytearray()
        self._error: FrameError | ProtocolHeaderError | None = None
        self._headers = HeaderDecoder()
        self._publishes = PublishDecoder()
        #: Octets the buffered partial frame needs before parsing is worth trying again.
        self._need = 0

    @property
    def frame_max(self) -> int:
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value: int) -> None:
        # Fused pairs were checked against the old limit.
        self._frame_max = value
        self._fused.clear()

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a whole frame."""
        return len(self._buffer)

    @property
    def error_pending(self) -> bool:
        """An error was found behind the frames the last `feed` returned; the next call raises it."""
        return self._error is not None

    def feed(self, data: bytes) -> list[tuple[int, Frame | Command]]:
        """Append `data`; return every whole frame now available, in order.

        If the stream turns bad after some good frames, those frames are returned first and the
        error is raised by the next call, so the result never depends on how the stream was split.
        """
        if self._error is not None:
            raise self._error
        buf = self._buffer
        if buf:
            buf += data
            if len(buf) < self._need:
                return []  # still inside the frame whose header was checked: nothing to parse
            src = bytes(buf)
        else:
            # The common case: the read ended on a frame boundary, so the frames are parsed out
            # of the received bytes themselves and each payload slice is its one and only copy.
            src = data if type(data) is bytes else bytes(data)
        frames: list[tuple[int, Frame | Command]] = []
        pos = 0
        try:
            if self._expect_header:
                received = src[: len(PROTOCOL_HEADER)]
                if not PROTOCOL_HEADER.startswith(received):
                    # Fail as soon as the prefix diverges (an HTTP request, TLS hello, AMQP 1.0 …).
                    raise ProtocolHeaderError(received)
                if len(received) < len(PROTOCOL_HEADER):
                    self._keep(src, 0, len(PROTOCOL_HEADER))
                    return frames
                self._expect_header = False
                frames.append((0, pamqp_header.ProtocolHeader()))
                pos = len(PROTOCOL_HEADER)
            pos = self._take_frames(src, pos, frames)
        except (FrameError, ProtocolHeaderError) as exc:
            self._error = exc
            # Nothing after a bad frame can be parsed; holding it would let a peer park an
            # unbounded amount of memory behind one bad header until the socket closes.
            self._buffer = bytearray()
            self._need = 0
            if not frames:
                raise
        return frames

    def _keep(self, src: bytes, pos: int, need: int) -> None:
        """Hold src[pos:] until `need` octets (counted from pos) have arrived."""
        if pos < len(src):
            self._buffer = bytearray(src[pos:])
        elif self._buffer:
            self._buffer = bytearray()
        self._need = need

    def _take_frames(self, src: bytes, pos: int, frames: list[tuple[int, Frame | Command]]) -> int:
        """Append every whole frame of src[pos:] to `frames`; keep the rest for the next feed."""
        n = len(src)
        frame_max = self.frame_max
        unpack_header = _FRAME_HEADER.unpack_from
        unpack_index = _METHOD_INDEX.unpack_from
        decoders = METHOD_DECODERS
        decode_publish = self._publishes.decode
        append = frames.append
        fuse = self.fuse_content
        fused = self._fused
        unpack_size = _SIZE.unpack_from
        while True:
            if n - pos < FRAME_HEADER_SIZE:
                self._keep(src, pos, FRAME_HEADER_SIZE)
                return pos
            # Read the header in place: pamqp's frame_parts/unmarshal would copy it out and
            # then parse it a second time, which showed up first in the server's profile.
            frame_type, channel, size = unpack_header(src, pos)
            if frame_type not in _KNOWN_FRAME_TYPES:
                raise FrameError(f"unknown frame type {frame_type} on channel {channel}")
            # Checked on the header, before a single payload octet is buffered, so a hostile size
            # cannot make us hold 4 GiB. Like RabbitMQ we tolerate payloads up to frame_max itself
            # (clients that forget the 8 octets of overhead); spec §4.2.3 counts the overhead in.
            if frame_max and size > frame_max:
                raise FrameError(
                    f"frame of {size + FRAME_OVERHEAD} octets on channel {channel} exceeds "
                    f"the negotiated frame_max of {frame_max} octets"
                )
            start = pos + FRAME_HEADER_SIZE
            end = start + size
            if end >= n:
                self._keep(src, pos, FRAME_HEADER_SIZE + size + 1)
                return pos
            if src[end] != FRAME_END:
                raise FrameError(
                    f"frame-end octet 0x{src[end]:02X} on channel {channel}, expected 0xCE"
                )
            frame: Frame
            if frame_type == 3:  # FrameType.BODY
                # No codec: a body frame is its payload.
                frame = _new(pamqp_body.ContentBody)
                frame.value = src[start:end]
            elif frame_type == 1:  # FrameType.METHOD
                fast = None
                if size >= 4:
                    index = unpack_index(src, start)[0]
                    if index == _PUBLISH_INDEX:
                        if fuse:
                            # A publisher repeats its method and header frames octet for octet
                            # (only the body varies): the pair is decoded once (_fuse_content).
                            pair = None
                            header_pos = end + 1
                            body_pos = 0
                            if n - header_pos >= FRAME_HEADER_SIZE:
                                # header frame: 7-octet frame header, payload, frame-end octet
                                body_pos = header_pos + FRAME_OVERHEAD + unpack_size(src, header_pos + 3)[0]
                                if body_pos + FRAME_HEADER_SIZE <= n:
                                    pair = fused.get(src[pos:body_pos])
                            if pair is not None:
                                body_type, body_channel, body_size = unpack_header(src, body_pos)
                                body_start = body_pos + FRAME_HEADER_SIZE
                                body_end = body_start + body_size
                                if (
                                    body_type == 3
                                    and body_channel == channel
                                    and body_size == pair[1].body_size
                                    and body_end < n
                                    and src[body_end] == FRAME_END
                                    and not (frame_max and body_size > frame_max)
                                ):
                                    append((channel, Command(pair[0], pair[1], src[body_start:body_end])))
                                    pos = body_end + 1
                                    continue
                        fast = decode_publish(src, start, end)
                        if fuse and fast is not None:
                            pos = self._fuse_content(src, pos, end + 1, channel, fast, frames)
                            continue
                    else:
                        decoder = decoders.get(index)
                        if decoder is not None:
                            fast = decoder(src, start + 4, end)
                # (not `fast or …`: pamqp frames define __len__, a call per frame)
                frame = fast if fast is not None else self._decode(frame_type, channel, src, start, end)
            elif frame_type == 2:  # FrameType.HEADER
                frame = self._decode(frame_type, channel, src, start, end)
            else:
                # Spec §4.2.7: heartbeat frames have channel 0 and an empty payload.
                if size:
                    raise FrameError(f"heartbeat frame with a {size}-octet payload")
                frame = pamqp_heartbeat.Heartbeat()
            append((channel, frame))
            pos = end + 1

    # Positional on purpose: called once per publish not found in the fused-pair cache.
    def _fuse_content(  # noqa: PLR0917
        self,
        src: bytes,
        method_pos: int,
        pos: int,
        channel: int,
        method: Method,
        frames: list[tuple[int, Frame | Command]],
    ) -> int:
        """Append the content method that ended at pos - 1 (its frame began at method_pos),
        fused with its header and body when both follow whole and well formed; return where
        parsing goes on.

        Anything else is left to the frame-by-frame loop (which raises its errors where they
        belong); a header already decoded here is appended as a frame so it is not decoded twice.
        A method and header frame pair that fused is remembered for `_take_frames`'s fast path.
        """
        n = len(src)
        frame_max = self.frame_max
        if n - pos < FRAME_HEADER_SIZE:
            frames.append((channel, method))
            return pos
        frame_type: int
        size: int
        frame_type, header_channel, size = _FRAME_HEADER.unpack_from(src, pos)
        start = pos + FRAME_HEADER_SIZE
        end = start + size
        if (
            frame_type != 2
            or header_channel != channel
            or (frame_max and size > frame_max)
            or end >= n
            or src[end] != FRAME_END
        ):
            frames.append((channel, method))
            return pos
        try:
            header = self._headers.decode(src, start, end)
        except _DECODE_ERRORS:
            frames.append((channel, method))
            return pos  # the loop decodes it again and raises FrameError there
        body_size = header.body_size
        if header.weight != 0 or header.class_id != _BASIC_CLASS_ID:
            frames += ((channel, method), (channel, header))  # the assembler's 505
            return end + 1
        if body_size == 0:
            frames.append((channel, Command(method, header, b"")))
            return end + 1
        header_end = end
        pos = end + 1
        if n - pos >= FRAME_HEADER_SIZE:
            frame_type, body_channel, size = _FRAME_HEADER.unpack_from(src, pos)
            start = pos + FRAME_HEADER_SIZE
            end = start + size
            if (
                frame_type == 3
                and body_channel == channel
                and size == body_size
                and not (frame_max and size > frame_max)
                and end < n
                and src[end] == FRAME_END
            ):
                frames.append((channel, Command(method, header, src[start:end])))
                cache = self._fused
                if len(cache) >= _FUSED_ENTRIES:
                    cache.clear()
                cache[src[method_pos : header_end + 1]] = (method, header)
                return end + 1
        frames += ((channel, method), (channel, header))
        return pos

    def _decode(self, frame_type: int, channel: int, src: bytes, start: int, end: int) -> Frame:
        try:
            if frame_type == FrameType.HEADER:
                return self._headers.decode(src, start, end)
            return _decode_payload(frame_type, src[start:end])
        except _DECODE_ERRORS as exc:
            if isinstance(exc, UnicodeDecodeError) and frame_type == FrameType.METHOD:
                # A shortstr field (queue or exchange name, routing key) that is not UTF-8: 501 in
                # RabbitMQ's words, which a client compares against RabbitMQ's.
                raise FrameError("Malformed UTF-8 in shortstr") from exc
            raise FrameError(
                f"cannot decode frame type {frame_type} on channel {channel}: {exc}"
            ) from exc


def _decode_payload(frame_type: int, payload: bytes) -> Frame:
    """A method or content header payload, decoded by pamqp's per-class `unmarshal`."""
    if frame_type == FrameType.METHOD:
        if len(payload) < 4:
            raise ValueError(f"method frame payload of {len(payload)} octets has no method id")
        (index,) = _METHOD_INDEX.unpack_from(payload)
        try:
            method_class = commands.INDEX_MAPPING[index]
        except KeyError:
            raise ValueError(f"unknown method {index >> 16}.{index & 0xFFFF}") from None
        method: Method = method_class()
        method.unmarshal(payload[4:])
        return method
    content_header = pamqp_header.ContentHeader()
    content_header.unmarshal(payload)
    return content_header


_new = object.__new__
_FRAME_HEADER = struct.Struct(">BHI")
_METHOD_INDEX = struct.Struct(">I")
_KNOWN_FRAME_TYPES = frozenset(int(t) for t in FrameType)
_SIZE = struct.Struct(">I")
_FUSED_ENTRIES = 256
_PUBLISH_INDEX = commands.Basic.Publish.index
_BASIC_CLASS_ID = commands.Basic.frame_id


# --------------------------------------------------------------------------------------------
# Outgoing frames
# --------------------------------------------------------------------------------------------


def marshal(frame: Frame, channel: int) -> bytes:
    """Encode one frame for `channel` (heartbeats and the protocol header ignore it)."""
    return pamqp_frame.marshal(frame, channel)


def split_body(body: bytes, frame_max: int) -> list[bytes]:
    """Cut a message body into content body payloads that fit frame_max (spec §4.2.6.2).

    An empty body is sent as no body frames at all; the header's body size of 0 says so.
    """
    if frame_max <= FRAME_OVERHEAD:
        raise ValueError(f"frame_max {frame_max} leaves no room for a payload")
    step = frame_max - FRAME_OVERHEAD
    view = memoryview(body)
    return [bytes(view[i : i + step]) for i in range(0, len(body), step)]


def marshal_content(
    channel: int,
    method: Method,
    properties: commands.Basic.Properties | None,
    body: bytes,
    frame_max: int,
) -> bytes:
    """Method frame, content header and as many body frames as frame_max requires."""
    header = pamqp_header.ContentHeader(body_size=len(body), properties=properties)
    parts = [marshal(method, channel), marshal(header, channel)]
    if len(body) <= frame_max - FRAME_OVERHEAD:
        # The common case, framed by hand: pamqp's body marshal adds two copies and no checks.
        if body:
            parts += (_FRAME_HEADER.pack(FrameType.BODY, channel, len(body)), body, _FRAME_END_OCTET)
    else:
        parts.extend(marshal(pamqp_body.ContentBody(chunk), channel) for chunk in split_body(body, frame_max))
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# Content assembly (spec §4.2.6: method, then header, then body frames, on one channel,
# with no other frame of that channel in between)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Command:
    """A whole command: a method and, for content-bearing methods, its header and body."""

    method: Method
    header: pamqp_header.ContentHeader | None = None
    body: bytes | None = None


@dataclass(slots=True)
class _Partial:
    method: Method
    header: pamqp_header.ContentHeader | None = None
    remaining: int = 0
    chunks: list[bytes] = field(default_factory=list)


class ContentAssembler:
    """Per-channel assembly of method + ContentHeader + ContentBody frames into `Command`s.

    Errors follow RabbitMQ's rabbit_command_assembler: 505 UNEXPECTED_FRAME, naming the method
    being assembled. Unlike RabbitMQ (which keeps counting below zero) a body frame that overruns
    the announced body size is refused with 505 too.
    """

    def __init__(self, max_body_size: int | None = None) -> None:
        self.max_body_size = max_body_size
        self._partial: dict[int, _Partial] = {}

    def pending(self, channel: int) -> bool:
        """True while `channel` is between a content method and its last body frame."""
        return channel in self._partial

    def discard(self, channel: int) -> None:
        """Forget a half-assembled command (the channel is closing)."""
        self._partial.pop(channel, None)

    def clear(self) -> None:
        self._partial.clear()

    def feed(self, channel: int, frame: Frame) -> Command | None:
        """Add one frame; returns the command once it is complete."""
        partial = self._partial.get(channel)
        if partial is None:
            if isinstance(frame, Method):
                if isinstance(frame, CONTENT_METHODS):
                    self._partial[channel] = _Partial(frame)
                    return None
                return Command(frame)
            raise AmqpError(
                ReplyCode.UNEXPECTED_FRAME, "expected method frame, got non method frame instead"
            )
        if partial.header is None:
            return self._on_header(channel, partial, frame)
        return self._on_body(channel, partial, frame)

    def _on_header(self, channel: int, partial: _Partial, frame: Frame) -> Command | None:
        class_id = method_ids(partial.method)[0]
        if not isinstance(frame, pamqp_header.ContentHeader) or frame.weight != 0:
            raise AmqpError(
                ReplyCode.UNEXPECTED_FRAME,
                f"expected content header for class {class_id}, got non content header frame instead",
            ).for_method(partial.method)
        # class_id is None only on a locally built header, which pamqp always marshals as basic.
        if frame.class_id is not None and frame.class_id != class_id:
            raise AmqpError(
                ReplyCode.UNEXPECTED_FRAME,
                f"expected content header for class {class_id}, "
                f"got one for class {frame.class_id} instead",
            ).for_method(partial.method)
        if self.max_body_size is not None and frame.body_size > self.max_body_size:
            del self._partial[channel]
            # RabbitMQ's max_message_size check: a soft error, the channel closes.
            raise AmqpError(
                ReplyCode.PRECONDITION_FAILED,
                f"message size {frame.body_size} is larger than configured max size "
                f"{self.max_body_size}",
            ).for_method(partial.method)
        if frame.body_size == 0:
            del self._partial[channel]
            return Command(partial.method, frame, b"")
        partial.header = frame
        partial.remaining = frame.body_size
        return None

    def _on_body(self, channel: int, partial: _Partial, frame: Frame) -> Command | None:
        if not isinstance(frame, pamqp_body.ContentBody):
            raise AmqpError(
                ReplyCode.UNEXPECTED_FRAME, "expected content body, got non content body frame instead"
            ).for_method(partial.method)
        size = len(frame.value)
        if size > partial.remaining:
            assert partial.header is not None
            raise AmqpError(
                ReplyCode.UNEXPECTED_FRAME,
                f"content body overruns the announced body size of {partial.header.body_size} "
                f"octets by {size - partial.remaining}",
            ).for_method(partial.method)
        partial.chunks.append(frame.value)
        partial.remaining -= size
        if partial.remaining:
            return None
        del self._partial[channel]
        return Command(partial.method, partial.header, b"".join(partial.chunks))
