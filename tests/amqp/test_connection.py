"""Sans-I/O Connection driven by hand-built client frames: handshake, auth, channels, errors, time."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from pamqp import commands
from pamqp.base import Frame as Method
from pamqp.body import ContentBody
from pamqp.common import FieldTable
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.connection import (
    SERVER_CAPABILITIES,
    AuthenticationFailed,
    ChannelClosed,
    ChannelFlow,
    ChannelOpened,
    Connection,
    ConnectionClosed,
    ConnectionConfig,
    ConnectionLost,
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    MethodReceived,
    State,
)
from mqstudio.amqp.framing import PROTOCOL_HEADER, Frame, FrameBuffer, marshal

from .test_framing import START_GOLDEN

LOOPBACK = ("127.0.0.1", 50000)
CAPS: FieldTable = {"authentication_failure_close": True, "connection.blocked": True}
M = TypeVar("M")


def wire(*frames: tuple[int, Frame]) -> bytes:
    return b"".join(marshal(f, ch) for ch, f in frames)


def sent(conn: Connection) -> list[tuple[int, Frame]]:
    """Decode everything the connection wants to send."""
    return FrameBuffer(frame_max=1 << 20, expect_header=False).feed(conn.data_to_send())


def only(conn: Connection, kind: type[M], channel: int = 0) -> M:
    frames = sent(conn)
    assert len(frames) == 1, frames
    got_channel, frame = frames[0]
    assert got_channel == channel
    assert isinstance(frame, kind), frame
    return frame


def state(conn: Connection) -> State:
    """Read the state through a call, so mypy does not narrow it across receive_data()."""
    return conn.state


def events(conn: Connection) -> list[Event]:
    return conn.drain_events()


def start_ok(
    user: str = "guest", password: str = "guest", caps: FieldTable | None = None, mechanism: str = "PLAIN"
) -> commands.Connection.StartOk:
    props: FieldTable = {"product": "test-client", "capabilities": dict(CAPS if caps is None else caps)}
    return commands.Connection.StartOk(
        client_properties=props, mechanism=mechanism, response=f"\0{user}\0{password}"
    )


def to_open_wait(conn: Connection, **start_ok_kwargs: Any) -> None:
    conn.receive_data(PROTOCOL_HEADER)
    only(conn, commands.Connection.Start)
    conn.receive_data(wire((0, start_ok(**start_ok_kwargs))))
    only(conn, commands.Connection.Tune)
    conn.receive_data(wire((0, commands.Connection.TuneOk(2047, 131072, 60))))
    assert state(conn) is State.AWAIT_OPEN


def opened(auth: InMemoryAuthenticator | None = None, **kwargs: Any) -> Connection:
    conn = Connection(auth, peer=LOOPBACK, **kwargs)
    to_open_wait(conn)
    conn.receive_data(wire((0, commands.Connection.Open("/"))))
    only(conn, commands.Connection.OpenOk)
    events(conn)
    return conn


def with_channel(channel: int = 1) -> Connection:
    conn = opened()
    conn.receive_data(wire((channel, commands.Channel.Open())))
    only(conn, commands.Channel.OpenOk, channel)
    assert events(conn) == [ChannelOpened(channel)]
    return conn


def assert_connection_close(
    conn: Connection, code: int, text: str | None = None
) -> commands.Connection.Close:
    close = only(conn, commands.Connection.Close)
    assert close.reply_code == code
    if text is not None:
        assert close.reply_text == text
    return close


# ------------------------------------------------------------------------------ handshake


def test_protocol_header_is_answered_with_start_golden_bytes() -> None:
    conn = Connection(config=ConnectionConfig(server_properties={"product": "mqstudio"}), peer=LOOPBACK)
    assert state(conn) is State.AWAIT_HEADER
    conn.receive_data(PROTOCOL_HEADER)
    assert conn.data_to_send() == START_GOLDEN
    assert state(conn) is State.AWAIT_START_OK


def test_start_announces_product_mechanisms_locales_and_capabilities() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER)
    start = only(conn, commands.Connection.Start)
    assert (start.version_major, start.version_minor) == (0, 9)
    assert start.mechanisms == "PLAIN AMQPLAIN"
    assert start.locales == "en_US"
    props = start.server_properties
    assert props["product"] == "mqstudio"
    assert isinstance(props["version"], str) and isinstance(props["platform"], str)
    caps = props["capabilities"]
    assert isinstance(caps, dict)
    assert set(caps) == set(SERVER_CAPABILITIES)
    assert all(value is True for value in caps.values())
    for name in ("publisher_confirms", "basic.nack", "direct_reply_to", "authentication_failure_close"):
        assert caps[name] is True


def test_whole_handshake_by_hand() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER)
    only(conn, commands.Connection.Start)

    conn.receive_data(wire((0, start_ok())))
    tune = only(conn, commands.Connection.Tune)
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)
    assert state(conn) is State.AWAIT_TUNE_OK

    conn.receive_data(wire((0, commands.Connection.TuneOk(100, 65536, 30))))
    assert conn.data_to_send() == b""
    assert state(conn) is State.AWAIT_OPEN

    conn.receive_data(wire((0, commands.Connection.Open("/"))))
    only(conn, commands.Connection.OpenOk)
    assert state(conn) is State.OPEN
    [done] = events(conn)
    assert isinstance(done, HandshakeCompleted)
    assert (done.username, done.vhost) == ("guest", "/")
    assert (done.channel_max, done.frame_max, done.heartbeat) == (100, 65536, 30)
    assert done.client_properties["product"] == "test-client"
    assert (conn.channel_max, conn.frame_max, conn.heartbeat) == (100, 65536, 30)


def test_whole_handshake_in_one_segment() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(
        PROTOCOL_HEADER
        + wire(
            (0, start_ok()),
            (0, commands.Connection.TuneOk(0, 0, 0)),
            (0, commands.Connection.Open("/")),
            (1, commands.Channel.Open()),
        )
    )
    kinds = [type(f) for _, f in sent(conn)]
    assert kinds == [
        commands.Connection.Start,
        commands.Connection.Tune,
        commands.Connection.OpenOk,
        commands.Channel.OpenOk,
    ]
    assert conn.open_channels == {1}


def test_tune_ok_zero_means_no_limit_so_the_server_values_stand() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER + wire((0, start_ok()), (0, commands.Connection.TuneOk(0, 0, 0))))
    assert (conn.channel_max, conn.frame_max) == (2047, 131072)
    assert conn.heartbeat == 0  # the client's heartbeat is final: 0 turns heartbeats off


@pytest.mark.parametrize(
    ("tune_ok", "text"),
    [
        (commands.Connection.TuneOk(4000, 0, 0), "higher than the maximum allowed value (2047)"),
        (commands.Connection.TuneOk(0, 1024, 0), "frame_max=1024 < 4096 min size"),
        (commands.Connection.TuneOk(0, 1 << 20, 0), "frame_max=1048576 > 131072 max size"),
    ],
)
def test_tune_ok_above_the_server_limits_is_not_allowed(
    tune_ok: commands.Connection.TuneOk, text: str
) -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER + wire((0, start_ok())))
    sent(conn)
    conn.receive_data(wire((0, tune_ok)))
    close = assert_connection_close(conn, 530)
    assert text in close.reply_text
    assert (close.class_id, close.method_id) == (10, 31)


def test_amqplain_login() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER)
    sent(conn)
    # AMQPLAIN's response is a field table without its 4-octet length prefix.
    table = b"\x05LOGINS\x00\x00\x00\x05guest\x08PASSWORDS\x00\x00\x00\x05guest"
    so = commands.Connection.StartOk(client_properties={}, mechanism="AMQPLAIN", response=table.decode())
    conn.receive_data(wire((0, so)))
    only(conn, commands.Connection.Tune)


def test_wrong_password_closes_with_403_as_rabbitmq() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER)
    sent(conn)
    conn.receive_data(wire((0, start_ok(password="wrong"))))
    assert_connection_close(
        conn,
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
        "For details see the broker logfile.",
    )
    assert state(conn) is State.CLOSING
    [failed] = events(conn)
    assert isinstance(failed, AuthenticationFailed)
    assert failed.username == "guest"
    assert "invalid credentials" in failed.reason

    conn.receive_data(wire((0, commands.Connection.CloseOk())))
    assert conn.closed
    [closed] = events(conn)
    assert isinstance(closed, ConnectionClosed)
    assert (closed.reply_code, closed.initiator) == (403, "server")


def test_wrong_password_without_failure_close_capability_just_drops_the_socket() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER)
    sent(conn)
    conn.receive_data(wire((0, start_ok(password="wrong", caps={}))))
    assert conn.data_to_send() == b""
    assert conn.closed
    assert [type(e) for e in events(conn)] == [AuthenticationFailed, ConnectionLost]


def test_unknown_user_is_refused_like_a_wrong_password() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER + wire((0, start_ok(user="nobody"))))
    frames = sent(conn)
    assert isinstance(frames[-1][1], commands.Connection.Close)
    assert frames[-1][1].reply_code == 403


def test_guest_is_refused_from_a_remote_peer_but_other_users_are_not() -> None:
    auth = InMemoryAuthenticator(
        [User.create("guest", "guest", loopback_only=True), User.create("alice", "s3cret")]
    )
    remote = Connection(auth, peer=("192.0.2.7", 40000))
    remote.receive_data(PROTOCOL_HEADER + wire((0, start_ok())))
    assert sent(remote)[-1][1].reply_code == 403  # type: ignore[union-attr]
    assert "localhost" in next(e for e in events(remote) if isinstance(e, AuthenticationFailed)).reason

    alice = Connection(auth, peer=("192.0.2.7", 40001))
    alice.receive_data(PROTOCOL_HEADER + wire((0, start_ok("alice", "s3cret"))))
    assert isinstance(sent(alice)[-1][1], commands.Connection.Tune)


def test_unparsable_plain_response_is_refused() -> None:
    conn = Connection(peer=LOOPBACK)
    so = commands.Connection.StartOk(client_properties={"capabilities": CAPS}, response="no-nuls")
    conn.receive_data(PROTOCOL_HEADER + wire((0, so)))
    assert sent(conn)[-1][1].reply_code == 403  # type: ignore[union-attr]


def test_unknown_mechanism_is_command_invalid() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER + wire((0, start_ok(mechanism="EXTERNAL"))))
    close = sent(conn)[-1][1]
    assert isinstance(close, commands.Connection.Close)
    assert close.reply_code == 503
    assert "unknown authentication mechanism 'EXTERNAL'" in close.reply_text


def test_unknown_vhost_is_not_allowed() -> None:
    conn = Connection(peer=LOOPBACK)
    to_open_wait(conn)
    conn.receive_data(wire((0, commands.Connection.Open("nope"))))
    close = assert_connection_close(conn, 530, "NOT_ALLOWED - vhost nope not found")
    assert (close.class_id, close.method_id) == (10, 40)
    assert state(conn) is State.CLOSING


def test_vhost_without_permission_is_not_allowed() -> None:
    auth = InMemoryAuthenticator([User.create("guest", "guest", vhosts=["/"])], vhosts=["/", "x"])
    conn = Connection(auth, peer=LOOPBACK)
    to_open_wait(conn)
    conn.receive_data(wire((0, commands.Connection.Open("x"))))
    assert_connection_close(conn, 530, "NOT_ALLOWED - access to vhost 'x' refused for user 'guest'")


def test_wrong_protocol_header_gets_our_header_and_a_closed_socket() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(b"AMQP\x01\x01\x00\x09")
    assert conn.data_to_send() == PROTOCOL_HEADER
    assert conn.closed
    [lost] = events(conn)
    assert isinstance(lost, ConnectionLost)
    assert "unsupported protocol header" in lost.reason


def test_method_out_of_handshake_order_is_a_channel_error() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(PROTOCOL_HEADER + wire((0, commands.Connection.Open("/"))))
    close = sent(conn)[-1][1]
    assert isinstance(close, commands.Connection.Close)
    assert close.reply_code == 504
    assert "unexpected method connection.open in connection state starting" in close.reply_text


def test_publish_before_open_is_unexpected_frame() -> None:
    conn = Connection(peer=LOOPBACK)
    to_open_wait(conn)
    conn.receive_data(wire((1, commands.Basic.Publish(routing_key="q"))))
    close = assert_connection_close(conn, 505)
    assert "before the connection is open" in close.reply_text


# ------------------------------------------------------------------------------ close


def test_client_close_is_answered_with_close_ok() -> None:
    conn = with_channel()
    conn.receive_data(wire((0, commands.Connection.Close(200, "Normal shutdown", 0, 0))))
    only(conn, commands.Connection.CloseOk)
    assert conn.closed
    assert events(conn) == [ConnectionClosed(200, "Normal shutdown", "client")]
    conn.receive_data(wire((1, commands.Channel.Open())))  # ignored once closed
    assert conn.data_to_send() == b""


def test_after_server_close_only_close_ok_matters() -> None:
    conn = with_channel()
    conn.close_connection(320, "broker forced connection closure with reason 'shutdown'")
    assert_connection_close(
        conn, 320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
    )
    conn.receive_data(
        wire(
            (1, commands.Basic.Publish(routing_key="q")),
            (1, ContentHeader(body_size=1)),
            (1, ContentBody(b"x")),
            (2, commands.Channel.Open()),
            (0, Heartbeat()),
        )
    )
    assert conn.data_to_send() == b""
    assert events(conn) == []
    conn.receive_data(wire((0, commands.Connection.Close(200, "bye", 0, 0))))
    only(conn, commands.Connection.CloseOk)  # simultaneous close: answer theirs too
    assert state(conn) is State.CLOSING
    conn.receive_data(wire((0, commands.Connection.CloseOk())))
    assert conn.closed
    [closed] = events(conn)
    assert isinstance(closed, ConnectionClosed)
    assert (closed.reply_code, closed.initiator) == (320, "server")


def test_transport_loss_emits_exactly_one_terminal_event() -> None:
    conn = with_channel()
    conn.connection_lost("client closed the socket")
    conn.connection_lost("again")
    assert events(conn) == [ConnectionLost("client closed the socket")]


def test_transport_loss_while_closing_finishes_our_close() -> None:
    conn = opened()
    conn.close_connection(540, "not implemented yet: basic.publish", 60, 40)
    sent(conn)
    conn.connection_lost()
    [closed] = events(conn)
    assert isinstance(closed, ConnectionClosed)
    assert closed.reply_code == 540


def test_oversized_frame_after_tune_is_a_501_connection_close() -> None:
    conn = with_channel()
    conn.receive_data(wire((1, ContentBody(b"x" * 140_000))))
    close = assert_connection_close(conn, 501)
    assert "frame_max of 131072" in close.reply_text
    assert conn.closed
    assert isinstance(events(conn)[-1], ConnectionTerminated)


def test_frames_larger_than_frame_min_size_are_refused_before_tune() -> None:
    conn = Connection(peer=LOOPBACK)
    props: FieldTable = {"capabilities": CAPS, "junk": "x" * 5000}
    conn.receive_data(PROTOCOL_HEADER + wire((0, commands.Connection.StartOk(client_properties=props))))
    frames = sent(conn)
    assert isinstance(frames[-1][1], commands.Connection.Close)
    assert frames[-1][1].reply_code == 501


# ------------------------------------------------------------------------------ channels


def test_channel_open_and_close_by_the_client() -> None:
    conn = with_channel(5)
    conn.receive_data(wire((5, commands.Channel.Close(200, "Normal shutdown", 0, 0))))
    only(conn, commands.Channel.CloseOk, 5)
    assert events(conn) == [ChannelClosed(5, 200, "Normal shutdown", "client")]
    assert conn.open_channels == frozenset()
    conn.receive_data(wire((5, commands.Channel.Open())))  # the id is free again
    only(conn, commands.Channel.OpenOk, 5)


def test_reopening_an_open_channel_is_a_channel_error() -> None:
    conn = with_channel(1)
    conn.receive_data(wire((1, commands.Channel.Open())))
    close = assert_connection_close(conn, 504)
    assert "second 'channel.open' seen" in close.reply_text
    assert (close.class_id, close.method_id) == (20, 10)


def test_channel_above_channel_max_is_a_channel_error() -> None:
    conn = opened()
    conn.receive_data(wire((2048, commands.Channel.Open())))
    close = assert_connection_close(conn, 504)
    assert "channel_max (2047)" in close.reply_text


def test_method_on_an_unopened_channel_is_a_channel_error() -> None:
    conn = opened()
    conn.receive_data(wire((3, commands.Queue.Declare(queue="q"))))
    close = assert_connection_close(conn, 504)
    assert "expected 'channel.open'" in close.reply_text


def test_content_header_without_a_method_is_unexpected_frame() -> None:
    conn = with_channel()
    conn.receive_data(wire((1, ContentHeader(body_size=1))))
    close = assert_connection_close(conn, 505)
    assert "expected method frame" in close.reply_text


def test_channel_method_on_channel_zero_is_a_channel_error() -> None:
    conn = opened()
    conn.receive_data(wire((0, commands.Channel.Open())))
    assert_connection_close(conn, 504)


def test_connection_method_on_a_channel_is_command_invalid() -> None:
    conn = with_channel()
    conn.receive_data(wire((1, commands.Connection.Close(200, "", 0, 0))))
    assert_connection_close(conn, 503)


def test_heartbeat_on_a_channel_is_a_frame_error() -> None:
    conn = with_channel()
    conn.receive_data(wire((1, Heartbeat())).replace(b"\x08\x00\x00", b"\x08\x00\x01", 1))
    assert_connection_close(conn, 501)


def test_channel_flow_is_acknowledged_and_reported() -> None:
    conn = with_channel()
    conn.receive_data(wire((1, commands.Channel.Flow(active=False))))
    flow_ok = only(conn, commands.Channel.FlowOk, 1)
    assert flow_ok.active is False
    assert events(conn) == [ChannelFlow(1, False)]
    assert not conn.channel_flow_active(1)


def test_other_methods_are_passed_up_with_their_content() -> None:
    conn = with_channel()
    props = commands.Basic.Properties(content_type="text/plain", delivery_mode=2)
    conn.receive_data(
        wire(
            (1, commands.Queue.Declare(queue="orders", durable=True)),
            (1, commands.Basic.Publish(exchange="", routing_key="orders")),
            (1, ContentHeader(body_size=11, properties=props)),
            (1, ContentBody(b"hello ")),
            (1, ContentBody(b"world")),
        )
    )
    assert conn.data_to_send() == b""
    declare, publish = events(conn)
    assert isinstance(declare, MethodReceived)
    assert isinstance(declare.method, commands.Queue.Declare)
    assert declare.method.queue == "orders"
    assert declare.header is None and declare.body is None
    assert isinstance(publish, MethodReceived)
    assert isinstance(publish.method, commands.Basic.Publish)
    assert publish.body == b"hello world"
    assert publish.header is not None
    assert publish.header.properties.delivery_mode == 2


def test_soft_error_closes_only_the_channel_and_ignores_it_until_close_ok() -> None:
    conn = with_channel(1)
    conn.receive_data(wire((2, commands.Channel.Open())))
    sent(conn)
    events(conn)
    conn.close_channel(1, 404, "no queue 'q' in vhost '/'", 50, 10)
    close = only(conn, commands.Channel.Close, 1)
    assert (close.reply_code, close.reply_text) == (404, "NOT_FOUND - no queue 'q' in vhost '/'")
    assert (close.class_id, close.method_id) == (50, 10)
    assert events(conn) == [ChannelClosed(1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", "server")]

    # Spec channel.close: everything but Close / Close-Ok on that channel is discarded.
    conn.receive_data(wire((1, commands.Basic.Publish(routing_key="q")), (1, ContentHeader(body_size=0))))
    assert conn.data_to_send() == b""
    assert events(conn) == []
    conn.receive_data(wire((2, commands.Queue.Declare(queue="still-works"))))
    assert isinstance(events(conn)[0], MethodReceived)

    conn.receive_data(wire((1, commands.Channel.CloseOk())))
    conn.receive_data(wire((1, commands.Channel.Open())))
    only(conn, commands.Channel.OpenOk, 1)
    assert state(conn) is State.OPEN


def test_handle_error_routes_soft_codes_to_the_channel_and_hard_ones_to_the_connection() -> None:
    from mqstudio.amqp.framing import AmqpError

    conn = with_channel()
    conn.handle_error(1, AmqpError(406, "inequivalent arg 'durable'"))
    only(conn, commands.Channel.Close, 1)
    conn.receive_data(wire((1, commands.Channel.CloseOk()), (1, commands.Channel.Open())))
    sent(conn)
    conn.handle_error(1, AmqpError(530, "nope"))
    assert_connection_close(conn, 530)


def test_send_content_splits_bodies_to_the_negotiated_frame_max() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(
        PROTOCOL_HEADER
        + wire(
            (0, start_ok()),
            (0, commands.Connection.TuneOk(0, 4096, 0)),
            (0, commands.Connection.Open("/")),
            (1, commands.Channel.Open()),
        )
    )
    sent(conn)
    deliver = commands.Basic.Deliver(consumer_tag="c", delivery_tag=1, routing_key="q")
    conn.send_content(1, deliver, None, b"z" * 10_000)
    frames = sent(conn)
    assert [type(f) for _, f in frames] == [commands.Basic.Deliver, ContentHeader] + [ContentBody] * 3
    assert all(len(marshal(f, 1)) <= 4096 for _, f in frames)
    conn.send_method(9, commands.Basic.QosOk())  # not an open channel: dropped
    assert conn.data_to_send() == b""


# ------------------------------------------------------------------------------ blocked


def test_blocked_and_unblocked_are_sent_to_clients_that_support_them() -> None:
    conn = opened()
    conn.block("low on memory")
    assert only(conn, commands.Connection.Blocked).reason == "low on memory"
    conn.block("still low")  # already told
    assert conn.data_to_send() == b""
    conn.unblock()
    only(conn, commands.Connection.Unblocked)
    assert not conn.blocked


def test_blocked_is_not_sent_without_the_capability() -> None:
    conn = Connection(peer=LOOPBACK)
    to_open_wait(conn, caps={})
    conn.receive_data(wire((0, commands.Connection.Open("/"))))
    sent(conn)
    conn.block("disk alarm")
    assert conn.data_to_send() == b""
    assert conn.blocked


def test_blocked_before_open_is_sent_after_open_ok() -> None:
    conn = Connection(peer=LOOPBACK)
    to_open_wait(conn)
    conn.block("memory alarm")
    assert conn.data_to_send() == b""
    conn.receive_data(wire((0, commands.Connection.Open("/"))))
    assert [type(f) for _, f in sent(conn)] == [commands.Connection.OpenOk, commands.Connection.Blocked]


# ------------------------------------------------------------------------------ time


def test_heartbeat_is_due_after_half_an_interval_of_silence() -> None:
    conn = opened()  # heartbeat 60 negotiated
    assert not conn.heartbeat_due(1000.0)
    assert not conn.heartbeat_due(1029.0)
    assert conn.heartbeat_due(1030.0)
    conn.send_heartbeat()
    assert conn.data_to_send() == marshal(Heartbeat(), 0)
    assert not conn.heartbeat_due(1031.0)  # the heartbeat itself counts as traffic


def test_missed_heartbeats_for_two_intervals_kill_the_connection() -> None:
    conn = with_channel()
    assert not conn.check_timeout(0.0)
    conn.receive_data(wire((0, Heartbeat())))
    assert not conn.check_timeout(100.0)  # traffic seen: the silence starts now
    assert not conn.check_timeout(219.0)
    assert conn.check_timeout(220.0)
    assert conn.closed
    [lost] = events(conn)
    assert isinstance(lost, ConnectionLost)
    assert "missed heartbeats from client, timeout: 60s" in lost.reason


def test_heartbeat_zero_disables_both_directions() -> None:
    conn = Connection(peer=LOOPBACK)
    conn.receive_data(
        PROTOCOL_HEADER
        + wire((0, start_ok()), (0, commands.Connection.TuneOk(0, 0, 0)), (0, commands.Connection.Open("/")))
    )
    assert not conn.heartbeat_due(0.0)
    assert not conn.heartbeat_due(1e9)
    assert not conn.check_timeout(0.0)
    assert not conn.check_timeout(1e9)


def test_stalled_handshake_times_out() -> None:
    conn = Connection(peer=LOOPBACK, config=ConnectionConfig(handshake_timeout=10))
    conn.receive_data(PROTOCOL_HEADER)
    assert not conn.check_timeout(5.0)
    assert conn.check_timeout(15.0)
    assert isinstance(events(conn)[-1], ConnectionLost)


def test_unanswered_close_times_out() -> None:
    conn = opened(config=ConnectionConfig(close_timeout=10))
    conn.close_connection(320, "shutdown")
    assert not conn.check_timeout(0.0)
    assert conn.check_timeout(10.0)
    [closed] = events(conn)
    assert isinstance(closed, ConnectionClosed)
    assert closed.reply_code == 320


def test_output_ready_fires_when_output_appears() -> None:
    conn = opened()
    calls: list[int] = []
    conn.output_ready = lambda: calls.append(1)
    conn.block("x")
    conn.unblock()
    assert calls == [1]  # once per empty → non-empty transition
    assert isinstance(sent(conn)[0][1], Method)


def _client_session() -> bytes:
    return PROTOCOL_HEADER + wire(
        (0, start_ok()),
        (0, commands.Connection.TuneOk(0, 0, 60)),
        (0, commands.Connection.Open("/")),
        (1, commands.Channel.Open()),
        (1, commands.Basic.Publish(routing_key="q")),
        (1, ContentHeader(body_size=3)),
        (1, ContentBody(b"abc")),
        (1, commands.Channel.Close(200, "bye", 0, 0)),
        (0, commands.Connection.Close(200, "bye", 0, 0)),
    )


def _comparable(event: Event) -> object:
    # pamqp methods compare by identity, so compare what goes on the wire instead.
    if isinstance(event, MethodReceived):
        header = marshal(event.header, event.channel) if event.header else None
        return (event.channel, marshal(event.method, event.channel), header, event.body)
    return event


def _run(chunks: list[bytes]) -> tuple[bytes, list[object]]:
    conn = Connection(config=ConnectionConfig(server_properties={"product": "mqstudio"}), peer=LOOPBACK)
    out = b""
    for chunk in chunks:
        conn.receive_data(chunk)
        out += conn.data_to_send()
    return out, [_comparable(e) for e in events(conn)]


def test_a_session_split_at_every_position_behaves_the_same() -> None:
    stream = _client_session()
    expected_out, expected_events = _run([stream])
    assert isinstance(expected_events[-1], ConnectionClosed)
    publish = commands.Basic.Publish(routing_key="q")
    assert expected_events[2] == (1, marshal(publish, 1), marshal(ContentHeader(body_size=3), 1), b"abc")
    for cut in range(1, len(stream)):
        assert _run([stream[:cut], stream[cut:]]) == (expected_out, expected_events), f"split at {cut}"
