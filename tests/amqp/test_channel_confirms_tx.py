"""Publisher confirms, mandatory returns and transactions through pika (blocking and select)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.select_connection import SelectConnection

from tests.amqp.conftest import RunningBroker, pika_params, wait_until

Connect = Callable[[], Any]


def test_confirmed_publish_to_a_queue_succeeds(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"x", pika.BasicProperties(delivery_mode=2), mandatory=True)
    assert ch.queue_declare(q, passive=True).method.message_count == 1


def test_unroutable_mandatory_publish_is_returned_before_its_confirm(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    # pika raises UnroutableError only when the basic.return arrived before the basic.ack.
    with pytest.raises(pika.exceptions.UnroutableError) as excinfo:
        ch.basic_publish("amq.direct", "nobody", b"lost", mandatory=True)
    (returned,) = excinfo.value.messages
    assert returned.method.reply_code == 312
    assert returned.method.reply_text == "NO_ROUTE"
    assert returned.method.exchange == "amq.direct"
    assert returned.method.routing_key == "nobody"
    assert returned.body == b"lost"
    ch.basic_publish("amq.direct", "nobody", b"dropped quietly")  # not mandatory: simply acked


def test_unroutable_mandatory_publish_without_confirms_is_returned(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    returns: list[bytes] = []
    ch.add_on_return_callback(lambda _ch, _m, _p, body: returns.append(body))
    ch.basic_publish("amq.topic", "x.y", b"back", mandatory=True)
    assert wait_until(conn, lambda: returns == [b"back"])


def test_reject_publish_overflow_is_nacked_under_confirms(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare(
        "", exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    ).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", q, b"refused")
    assert ch.queue_declare(q, passive=True).method.message_count == 1


def test_confirms_use_per_channel_sequence_numbers_from_one(broker_server: RunningBroker) -> None:
    """SelectConnection flow: confirm.select, three publishes, acks cover tags 1..3 exactly."""
    acks: list[tuple[int, bool]] = []
    state: dict[str, Any] = {}

    def on_open(conn: SelectConnection) -> None:
        conn.channel(on_open_callback=on_channel)

    def on_channel(ch: Any) -> None:
        state["ch"] = ch
        ch.confirm_delivery(on_confirm, callback=lambda _f: on_selected(ch))

    def on_selected(ch: Any) -> None:
        ch.queue_declare("", exclusive=True, callback=lambda f: publish(ch, f.method.queue))

    def publish(ch: Any, queue: str) -> None:
        for i in range(3):
            ch.basic_publish("", queue, str(i).encode())

    def on_confirm(frame: Any) -> None:
        method = frame.method
        assert isinstance(method, pika.spec.Basic.Ack)
        acks.append((method.delivery_tag, method.multiple))
        if method.delivery_tag == 3:
            state["conn"].close()

    conn = SelectConnection(pika_params(broker_server), on_open_callback=on_open)
    state["conn"] = conn
    conn.add_on_close_callback(lambda *_: conn.ioloop.stop())
    conn.ioloop.call_later(10, conn.ioloop.stop)  # safety net; the test asserts on outcomes only
    conn.ioloop.start()
    confirmed: set[int] = set()
    for tag, multiple in acks:
        confirmed |= set(range(1, tag + 1)) if multiple else {tag}
    assert confirmed == {1, 2, 3}
    assert acks[-1][0] == 3


def test_tx_commit_publishes_and_rollback_discards(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"rolled back")
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.tx_rollback()
    ch.basic_publish("", q, b"committed")
    ch.tx_commit()
    assert ch.queue_declare(q, passive=True).method.message_count == 1
    assert ch.basic_get(q, auto_ack=True)[2] == b"committed"


def test_tx_acks_apply_on_commit_only(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m")
    ch.tx_select()
    tag = ch.basic_get(q)[0].delivery_tag
    ch.basic_ack(tag)
    ch.tx_rollback()
    ch.basic_recover(requeue=True)  # the rolled-back ack left the message unacked
    method, _p, body = ch.basic_get(q)
    assert (body, method.redelivered) == (b"m", True)
    ch.basic_ack(method.delivery_tag)
    ch.tx_commit()
    ch.basic_recover(requeue=True)
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_tx_commit_without_select_is_406(connect: Connect) -> None:
    ch = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.tx_commit()
    assert excinfo.value.reply_code == 406
    assert "channel is not transactional" in excinfo.value.reply_text


def test_tx_and_confirm_modes_are_mutually_exclusive(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.tx_select()
    assert excinfo.value.reply_code == 406
    ch2 = conn.channel()
    ch2.tx_select()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo2:
        ch2.confirm_delivery()
    assert excinfo2.value.reply_code == 406


def test_confirms_wait_for_the_brokers_group_commit(broker_server: RunningBroker, connect: Connect) -> None:
    """With a persistence engine present, acks go out only after `Broker.commit()` ran."""
    calls: list[int] = []
    broker = broker_server.broker
    original = getattr(broker, "commit", None)

    def commit() -> None:
        q = broker.vhost("/").queues.get("durable-q")
        calls.append(0 if q is None else q.message_count)
        if original is not None:
            original()

    broker_server.call(lambda: setattr(broker, "commit", commit))
    ch = connect().channel()
    ch.queue_declare("durable-q", durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", "durable-q", b"p", pika.BasicProperties(delivery_mode=2))
    assert 1 in calls  # committed with the message enqueued, before the ack reached pika
