"""Runs of basic.ack: one `AcksReceived` per run, handled exactly like the acks one by one.

Driven without sockets: a `Connection` fed client octets and a `BrokerService` (with a real
in-memory `Broker`) handling its events, as `AmqpServer` would (no event loop: the service
flushes deliveries and confirms as soon as an event is handled).
"""

from __future__ import annotations

from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.connection import (
    AcksReceived,
    Connection,
    ConnectionConfig,
    MethodReceived,
    State,
)
from mqstudio.amqp.framing import PROTOCOL_HEADER, Frame, FrameBuffer, marshal, marshal_content
from mqstudio.amqp.service import BrokerService
from mqstudio.broker.broker import Broker
from mqstudio.broker.message import Properties

LOOPBACK = ("127.0.0.1", 40000)


def handshake() -> list[tuple[int, Frame]]:
    return [
        (0, commands.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0guest\0guest")),
        (0, commands.Connection.TuneOk(channel_max=16, frame_max=131072, heartbeat=0)),
        (0, commands.Connection.Open(virtual_host="/")),
        (1, commands.Channel.Open()),
        (2, commands.Channel.Open()),
    ]


def encode(frames: list[tuple[int, Frame]]) -> bytes:
    return b"".join(marshal(f, ch) for ch, f in frames)


def ack(tag: int, multiple: bool = False) -> commands.Basic.Ack:
    return commands.Basic.Ack(delivery_tag=tag, multiple=multiple)


class Driven:
    """A Connection with a BrokerService on top, fed by hand."""

    def __init__(self) -> None:
        self.broker = Broker()
        self.service = BrokerService(self.broker)
        auth = InMemoryAuthenticator([User.create("guest", "guest", loopback_only=True)], vhosts=["/"])
        self.conn = Connection(auth, ConnectionConfig(heartbeat=0), LOOPBACK)
        self.feed(PROTOCOL_HEADER + encode(handshake()))
        assert self.conn.state is State.OPEN

    def feed(self, data: bytes) -> list[tuple[int, object]]:
        self.conn.receive_data(data)
        while self.conn.has_events:
            for event in self.conn.drain_events():
                self.service(self.conn, event)
        return list(FrameBuffer(1 << 20, expect_header=False).feed(self.conn.data_to_send()))

    def consume(self, queue: str, n: int) -> None:
        self.broker.declare_queue("/", queue)
        for i in range(n):
            self.broker.publish("/", "", queue, Properties(), b"m%d" % i)
        out = self.feed(encode([(1, commands.Basic.Consume(queue=queue, consumer_tag="c"))]))
        delivered = [f for _, f in out if isinstance(f, commands.Basic.Deliver)]
        assert [d.delivery_tag for d in delivered] == list(range(1, n + 1))


# ------------------------------------------------------------------------------ the connection


def open_connection() -> Connection:
    conn = Connection(config=ConnectionConfig(heartbeat=0), peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER + encode(handshake()))
    conn.data_to_send()
    conn.drain_events()
    return conn


def test_consecutive_single_acks_on_a_channel_are_one_event_in_order() -> None:
    conn = open_connection()
    conn.receive_data(encode([(1, ack(3)), (1, ack(1)), (1, ack(2))]))
    assert conn.drain_events() == [AcksReceived(1, [3, 1, 2])]


def test_a_run_ends_at_anything_else_reported_in_between() -> None:
    conn = open_connection()
    conn.receive_data(
        encode(
            [
                (1, ack(1)),
                (2, ack(2)),
                (1, ack(3)),
                (1, ack(4, multiple=True)),
                (1, ack(5)),
                (1, commands.Basic.Nack(6)),
                (1, ack(7)),
            ]
        )
    )
    events = conn.drain_events()
    assert [type(e) for e in events] == [
        AcksReceived,
        AcksReceived,
        AcksReceived,
        MethodReceived,
        AcksReceived,
        MethodReceived,
        AcksReceived,
    ]
    runs = [(e.channel, e.delivery_tags) for e in events if isinstance(e, AcksReceived)]
    assert runs == [(1, [1]), (2, [2]), (1, [3]), (1, [5]), (1, [7])]


def test_a_run_goes_on_across_reads_until_its_event_is_taken() -> None:
    conn = open_connection()
    conn.receive_data(marshal(ack(1), 1))
    conn.receive_data(marshal(ack(2), 1))
    assert conn.drain_events() == [AcksReceived(1, [1, 2])]
    conn.receive_data(marshal(ack(3), 1))
    assert conn.drain_events() == [AcksReceived(1, [3])]


def test_an_ack_while_content_is_due_is_still_an_unexpected_frame() -> None:
    conn = open_connection()
    conn.receive_data(
        marshal(commands.Basic.Publish(routing_key="q"), 1)
        + marshal(ContentHeader(body_size=4), 1)
        + marshal(ack(1), 1)
    )
    reply = FrameBuffer(1 << 20, expect_header=False).feed(conn.data_to_send())
    assert [type(f) for _, f in reply] == [commands.Connection.Close]
    close = reply[0][1]
    assert isinstance(close, commands.Connection.Close)
    assert close.reply_code == 505


# ------------------------------------------------------------------------------ the service


def test_a_run_of_acks_settles_each_message_and_frees_prefetch() -> None:
    d = Driven()
    d.feed(encode([(1, commands.Basic.Qos(prefetch_count=2))]))
    d.broker.declare_queue("/", "q")
    for i in range(5):
        d.broker.publish("/", "", "q", Properties(), b"%d" % i)
    out = d.feed(encode([(1, commands.Basic.Consume(queue="q", consumer_tag="c"))]))
    assert [f.delivery_tag for _, f in out if isinstance(f, commands.Basic.Deliver)] == [1, 2]
    out = d.feed(encode([(1, ack(1)), (1, ack(2))]))
    assert [f.delivery_tag for _, f in out if isinstance(f, commands.Basic.Deliver)] == [3, 4]
    queue = d.broker.queue("/", "q")
    assert (queue.ready_count, queue.unacked_count) == (1, 2)


def test_unknown_tag_inside_a_run_closes_the_channel_after_the_acks_before_it() -> None:
    d = Driven()
    d.consume("q", 4)
    out = d.feed(encode([(1, ack(1)), (1, ack(99)), (1, ack(2))]))
    closes = [(ch, f) for ch, f in out if isinstance(f, commands.Channel.Close)]
    assert len(closes) == 1
    channel, close = closes[0]
    assert channel == 1
    assert isinstance(close, commands.Channel.Close)
    assert close.reply_code == 406
    assert close.reply_text == "PRECONDITION_FAILED - unknown delivery tag 99"
    assert (close.class_id, close.method_id) == (60, 80)
    # Tag 1 was acked before the failure; 2, 3 and 4 went back to the queue with the channel.
    queue = d.broker.queue("/", "q")
    assert (queue.ready_count, queue.unacked_count) == (3, 0)


def test_acks_in_a_transaction_wait_for_commit() -> None:
    d = Driven()
    d.feed(encode([(1, commands.Tx.Select())]))
    d.consume("q", 3)
    d.feed(encode([(1, ack(1)), (1, ack(3))]))
    queue = d.broker.queue("/", "q")
    assert queue.unacked_count == 3
    out = d.feed(encode([(1, commands.Tx.Commit())]))
    assert any(isinstance(f, commands.Tx.CommitOk) for _, f in out)
    assert (queue.ready_count, queue.unacked_count) == (0, 1)


def test_publish_then_ack_run_in_one_read_keeps_their_order() -> None:
    d = Driven()
    d.consume("q", 2)
    publish = marshal_content(
        1, commands.Basic.Publish(routing_key="q"), commands.Basic.Properties(), b"new", 131072
    )
    out = d.feed(encode([(1, ack(1)), (1, ack(2))]) + publish)
    delivered = [f for _, f in out if isinstance(f, commands.Basic.Deliver)]
    bodies = [f.value for _, f in out if isinstance(f, ContentBody)]
    assert [m.delivery_tag for m in delivered] == [3]
    assert bodies == [b"new"]
