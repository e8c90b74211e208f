"""basic.* through pika: consume/deliver, get, ack/nack/reject, qos, recover, cancel, flow, requeue."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from tests.amqp.conftest import RunningBroker, pika_params, wait_until

Connect = Callable[[], Any]
Received = list[tuple[Basic.Deliver, BasicProperties, bytes]]


def _collector(received: Received, ack: bool = False) -> Callable[..., None]:
    def on_message(ch: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes) -> None:
        received.append((method, props, body))
        if ack:
            ch.basic_ack(method.delivery_tag)

    return on_message


def _fill(ch: BlockingChannel, queue: str, n: int) -> None:
    for i in range(n):
        ch.basic_publish("", queue, str(i).encode())


def test_consumer_receives_messages_with_properties_in_order(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    props = pika.BasicProperties(
        content_type="application/json",
        headers={"n": 1, "s": "x", "nested": {"a": [1, 2]}},
        delivery_mode=2,
        priority=3,
        correlation_id="c-1",
        message_id="m-1",
        type="t",
        app_id="app",
        expiration="60000",
    )
    ch.basic_publish("", q, b"first", props)
    ch.basic_publish("", q, b"second")
    received: Received = []
    tag = ch.basic_consume(q, _collector(received, ack=True))
    assert tag.startswith("ctag") or tag.startswith("amq.ctag-")
    assert wait_until(conn, lambda: len(received) == 2)
    (m1, p1, b1), (m2, _p2, b2) = received
    assert (b1, b2) == (b"first", b"second")
    assert (m1.delivery_tag, m2.delivery_tag) == (1, 2)
    assert not m1.redelivered
    assert m1.routing_key == q
    assert p1.headers == {"n": 1, "s": "x", "nested": {"a": [1, 2]}}
    assert (p1.content_type, p1.delivery_mode, p1.priority, p1.correlation_id) == (
        "application/json",
        2,
        3,
        "c-1",
    )
    assert (p1.message_id, p1.type, p1.app_id, p1.expiration) == ("m-1", "t", "app", "60000")


def test_delivery_tags_are_per_channel(connect: Connect) -> None:
    conn = connect()
    a, b = conn.channel(), conn.channel()
    q = a.queue_declare("", exclusive=True).method.queue
    _fill(a, q, 2)
    ma = a.basic_get(q)[0]
    mb = b.basic_get(q)[0]
    assert (ma.delivery_tag, mb.delivery_tag) == (1, 1)


def test_basic_get_and_get_empty_report_message_count(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 3)
    method, _props, body = ch.basic_get(q, auto_ack=True)
    assert body == b"0"
    assert method.message_count == 2
    ch.queue_purge(q)
    assert ch.basic_get(q) == (None, None, None)


def test_ack_of_unknown_delivery_tag_closes_channel_with_406(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.basic_ack(5)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("", exclusive=True)
    assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - unknown delivery tag 5",
    )
    assert conn.is_open


def test_double_ack_is_406(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 1)
    tag = ch.basic_get(q)[0].delivery_tag
    ch.basic_ack(tag)
    ch.basic_ack(tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("", exclusive=True)
    assert excinfo.value.reply_code == 406


def test_ack_multiple_settles_every_tag_up_to_n(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 4)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(4)]
    ch.basic_ack(tags[2], multiple=True)
    ch.basic_recover(requeue=True)  # only the fourth is still unacked
    assert ch.queue_declare(q, passive=True).method.message_count == 1
    method, _p, body = ch.basic_get(q, auto_ack=True)
    assert (body, method.redelivered) == (b"3", True)


def test_nack_requeue_returns_message_to_its_original_position_redelivered(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 3)
    first = ch.basic_get(q)[0]
    second = ch.basic_get(q)[0]
    ch.basic_nack(second.delivery_tag, requeue=True)
    ch.basic_nack(first.delivery_tag, requeue=True)
    bodies = []
    flags = []
    for _ in range(3):
        method, _p, body = ch.basic_get(q, auto_ack=True)
        bodies.append(body)
        flags.append(method.redelivered)
    assert bodies == [b"0", b"1", b"2"]
    assert flags == [True, True, False]


def test_reject_without_requeue_drops_the_message(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 1)
    ch.basic_reject(ch.basic_get(q)[0].delivery_tag, requeue=False)
    ch.basic_recover(requeue=True)
    assert ch.basic_get(q) == (None, None, None)


def test_prefetch_limits_unacked_deliveries(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 10)
    ch.basic_qos(prefetch_count=3)
    received: Received = []
    ch.basic_consume(q, _collector(received))
    assert wait_until(conn, lambda: len(received) == 3)
    conn.process_data_events(time_limit=0.2)
    assert len(received) == 3  # nothing more until something is acked
    ch.basic_ack(received[-1][0].delivery_tag, multiple=True)
    assert wait_until(conn, lambda: len(received) == 6)
    conn.process_data_events(time_limit=0.2)
    assert len(received) == 6


def test_global_qos_is_shared_by_the_channels_consumers(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q1 = ch.queue_declare("", exclusive=True).method.queue
    q2 = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q1, 5)
    _fill(ch, q2, 5)
    ch.basic_qos(prefetch_count=4, global_qos=True)
    received: Received = []
    ch.basic_consume(q1, _collector(received))
    ch.basic_consume(q2, _collector(received))
    assert wait_until(conn, lambda: len(received) == 4)
    conn.process_data_events(time_limit=0.2)
    assert len(received) == 4


def test_no_ack_consumer_is_not_limited_by_prefetch(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 5)
    ch.basic_qos(prefetch_count=1)
    received: Received = []
    ch.basic_consume(q, _collector(received), auto_ack=True)
    assert wait_until(conn, lambda: len(received) == 5)


def test_closing_a_channel_requeues_its_unacked_messages(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 2)
    received: Received = []
    consumer = conn.channel()
    consumer.basic_consume(q, _collector(received))
    assert wait_until(conn, lambda: len(received) == 2)
    consumer.close()
    method, _p, body = ch.basic_get(q, auto_ack=True)
    assert (body, method.redelivered) == (b"0", True)


def test_connection_loss_requeues_unacked_messages(connect: Connect) -> None:
    producer = connect().channel()
    producer.queue_declare("shared")
    _fill(producer, "shared", 1)
    conn = connect()
    ch = conn.channel()
    received: Received = []
    ch.basic_consume("shared", _collector(received))
    assert wait_until(conn, lambda: len(received) == 1)
    # Drop the socket without a Close handshake, as a crashed client would.
    conn._impl._transport._sock.shutdown(socket.SHUT_RDWR)
    with pytest.raises(pika.exceptions.AMQPError):
        wait_until(conn, lambda: False, timeout=2)

    def requeued() -> bool:
        return producer.queue_declare("shared", passive=True).method.message_count == 1

    assert wait_until(producer.connection, requeued)
    method, _p, _b = producer.basic_get("shared", auto_ack=True)
    assert method.redelivered


def test_recover_requeue_redelivers_unacked_messages(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 1)
    received: Received = []
    ch.basic_consume(q, _collector(received))
    assert wait_until(conn, lambda: len(received) == 1)
    ch.basic_recover(requeue=True)
    assert wait_until(conn, lambda: len(received) == 2)
    assert received[1][0].redelivered
    assert received[1][0].delivery_tag == 2


def test_basic_cancel_stops_deliveries(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    received: Received = []
    tag = ch.basic_consume(q, _collector(received, ack=True))
    _fill(ch, q, 1)
    assert wait_until(conn, lambda: len(received) == 1)
    ch.basic_cancel(tag)
    _fill(ch, q, 1)
    conn.process_data_events(time_limit=0.1)
    assert len(received) == 1
    assert ch.queue_declare(q, passive=True).method.message_count == 1


def test_duplicate_consumer_tag_closes_connection_with_530(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None, consumer_tag="dup")
    # pika refuses a duplicate tag itself, so send the raw method.
    ch._impl._send_method(pika.spec.Basic.Consume(queue=q, consumer_tag="dup"))
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
        wait_until(conn, lambda: False, timeout=2)
    assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
        530,
        "NOT_ALLOWED - attempt to reuse consumer tag 'dup'",
    )


def test_exclusive_consumer_refuses_a_second_consumer_with_403(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    ch2 = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch2.basic_consume(q, lambda *a: None)
    assert excinfo.value.reply_code == 403
    assert "in exclusive use" in excinfo.value.reply_text


def test_consumer_is_cancelled_by_the_server_when_its_queue_is_deleted(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.queue_declare("short-lived")
    cancelled: list[str] = []
    ch.add_on_cancel_callback(lambda method_frame: cancelled.append(method_frame.method.consumer_tag))
    tag = ch.basic_consume("short-lived", lambda *a: None)
    other = connect().channel()
    other.queue_delete("short-lived")
    assert wait_until(conn, lambda: cancelled == [tag])


def test_channel_flow_pauses_and_resumes_deliveries(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    received: Received = []
    ch.basic_consume(q, _collector(received, ack=True))
    flow: list[bool] = []
    ch._impl.flow(False, flow.append)
    assert wait_until(conn, lambda: flow == [False])
    _fill(ch, q, 2)
    conn.process_data_events(time_limit=0.2)
    assert received == []
    ch._impl.flow(True, flow.append)
    assert wait_until(conn, lambda: len(received) == 2)


def test_consume_with_empty_queue_name_uses_last_declared_queue(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    _fill(ch, q, 1)
    method, _p, body = ch.basic_get("", auto_ack=True)
    assert body == b"0"
    assert method.routing_key == q


def test_body_over_the_size_limit_closes_the_channel_with_406(broker_server: RunningBroker) -> None:
    from mqstudio.amqp.connection import ConnectionConfig

    broker_server.server.config = ConnectionConfig(max_body_size=1024)
    conn = pika.BlockingConnection(
        pika.ConnectionParameters(broker_server.host, broker_server.port, connection_attempts=1)
    )
    try:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"x" * 1024)
        ch.basic_publish("", q, b"x" * 1025)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            ch.queue_declare("", exclusive=True)
        assert excinfo.value.reply_code == 406
        assert "larger than configured max size 1024" in excinfo.value.reply_text
        assert conn.channel().queue_declare(q, passive=True).method.message_count == 1
    finally:
        conn.close()


def test_large_body_spans_many_frames(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = bytes(range(256)) * 4096  # 1 MiB, split by frame_max both ways
    ch.basic_publish("", q, body)
    assert ch.basic_get(q, auto_ack=True)[2] == body


def test_empty_consumer_tag_gets_a_server_generated_amq_ctag(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    tags: list[str] = []
    # pika always invents its own tag, so ask with the raw method and an empty tag.
    ch._impl._rpc(
        pika.spec.Basic.Consume(queue=q, consumer_tag=""),
        lambda frame: tags.append(frame.method.consumer_tag),
        [pika.spec.Basic.ConsumeOk],
    )
    assert wait_until(conn, lambda: bool(tags))
    assert tags[0].startswith("amq.ctag-")


def test_heartbeat_timeout_requeues_the_silent_clients_messages(broker_server: RunningBroker) -> None:
    observer_conn = pika.BlockingConnection(pika_params(broker_server))
    observer = observer_conn.channel()
    observer.queue_declare("hb-q")
    observer.basic_publish("", "hb-q", b"held")
    params = pika_params(broker_server)
    params.heartbeat = 1  # the server drops a client silent for two intervals
    silent = pika.BlockingConnection(params)
    try:
        ch = silent.channel()
        received: Received = []
        ch.basic_consume("hb-q", _collector(received))
        assert wait_until(silent, lambda: len(received) == 1)
        # From here on the client processes nothing, so it sends no heartbeats.

        def requeued() -> bool:
            return observer.queue_declare("hb-q", passive=True).method.message_count == 1

        assert wait_until(observer_conn, requeued)
        method = observer.basic_get("hb-q", auto_ack=True)[0]
        assert method.redelivered
    finally:
        observer_conn.close()
        with contextlib.suppress(pika.exceptions.AMQPError):
            silent.close()
