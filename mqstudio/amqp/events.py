"""The events a sans-I/O AMQP `mqstudio.amqp.connection.Connection` reports through `next_event()`.

Owns: the `Event` base class and its kinds (handshake completed or refused, channel opened, closed or
flow-controlled, a whole channel-level method for the channel layer, a run of basic.acks, writing
resumed, and the two
terminal events `ConnectionClosed` / `ConnectionLost`). Plain frozen dataclasses, no behaviour; they
are re-exported by `mqstudio.amqp.connection`, which is where callers usually import them from.

Must not import: sockets, asyncio, Qt, `mqstudio.amqp.connection` (it imports this module), or any
mqstudio package other than mqstudio.broker and mqstudio.amqp.framing (stdlib and pamqp otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pamqp import common
from pamqp import header as pamqp_header

from mqstudio.amqp.framing import Method

__all__ = [
    "AcksReceived",
    "AuthenticationFailed",
    "ChannelClosed",
    "ChannelFlow",
    "ChannelOpened",
    "ConnectionClosed",
    "ConnectionLost",
    "ConnectionTerminated",
    "Event",
    "HandshakeCompleted",
    "Initiator",
    "MethodReceived",
    "WritingResumed",
]

Initiator = Literal["client", "server"]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of everything `next_event()` returns."""


@dataclass(frozen=True, slots=True)
class HandshakeCompleted(Event):
    username: str
    vhost: str
    client_properties: common.FieldTable
    channel_max: int
    frame_max: int
    heartbeat: int


@dataclass(frozen=True, slots=True)
class AuthenticationFailed(Event):
    username: str
    mechanism: str
    reason: str


@dataclass(frozen=True, slots=True)
class ChannelOpened(Event):
    channel: int


@dataclass(frozen=True, slots=True)
class ChannelClosed(Event):
    """The channel is no longer usable (emitted when either side sends Channel.Close)."""

    channel: int
    reply_code: int
    reply_text: str
    initiator: Initiator


@dataclass(frozen=True, slots=True)
class ChannelFlow(Event):
    """The client asked us to pause (active=False) or resume deliveries (spec channel.flow)."""

    channel: int
    active: bool


@dataclass(frozen=True, slots=True, init=False)
class MethodReceived(Event):
    """A whole channel-level command for the channel layer (exchange/queue/basic/confirm/tx)."""

    channel: int
    method: Method
    header: pamqp_header.ContentHeader | None = None
    body: bytes | None = None

    def __init__(
        self,
        channel: int,
        method: Method,
        header: pamqp_header.ContentHeader | None = None,
        body: bytes | None = None,
    ) -> None:
        # One of these per publish or ack: the slots are filled through their descriptors,
        # about twice as fast as the frozen dataclass's object.__setattr__ calls.
        _set_channel(self, channel)
        _set_method(self, method)
        _set_header(self, header)
        _set_body(self, body)


@dataclass(frozen=True, slots=True)
class AcksReceived(Event):
    """basic.ack with multiple=false for each of `delivery_tags`, in this order, on `channel`.

    A consumer acknowledging one message at a time sends long runs of these; the connection
    reports consecutive ones (nothing else reported in between, the event not yet taken) as one
    event instead of a `MethodReceived` per ack. Handling
    it must be exactly handling the acks one by one (an unknown tag fails there, and the rest of
    the run is dropped with the closed channel).
    """

    channel: int
    delivery_tags: list[int]


@dataclass(frozen=True, slots=True)
class WritingResumed(Event):
    """Output may be queued again after `Connection.writable` was found False (flow control)."""


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(Event):
    """Base of the two terminal events; exactly one is emitted per connection."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed(ConnectionTerminated):
    reply_code: int
    reply_text: str
    initiator: Initiator


@dataclass(frozen=True, slots=True)
class ConnectionLost(ConnectionTerminated):
    reason: str


_set_channel = MethodReceived.__dict__["channel"].__set__
_set_method = MethodReceived.__dict__["method"].__set__
_set_header = MethodReceived.__dict__["header"].__set__
_set_body = MethodReceived.__dict__["body"].__set__
