"""RabbitMQ features seen through pika: direct reply-to, dead-lettering, TTL, priorities, delays."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from tests.amqp.conftest import wait_until

Connect = Callable[[], Any]


def _count(ch: BlockingChannel, queue: str) -> int:
    return int(ch.queue_declare(queue, passive=True).method.message_count)


def test_direct_reply_to_rpc_round_trip(connect: Connect) -> None:
    server_conn = connect()
    server = server_conn.channel()
    server.queue_declare("rpc")

    def serve(ch: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes) -> None:
        assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
        ch.basic_publish(
            "", props.reply_to, body.upper(), pika.BasicProperties(correlation_id=props.correlation_id)
        )
        ch.basic_ack(method.delivery_tag)

    server.basic_consume("rpc", serve)

    client_conn = connect()
    client = client_conn.channel()
    replies: list[tuple[str, bytes, str]] = []
    client.basic_consume(
        "amq.rabbitmq.reply-to",
        lambda _ch, m, p, b: replies.append((p.correlation_id, b, m.routing_key)),
        auto_ack=True,
    )
    client.basic_publish(
        "", "rpc", b"ping", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="42")
    )

    def answered() -> bool:
        server_conn.process_data_events(time_limit=0.01)
        return bool(replies)

    assert wait_until(client_conn, answered)
    correlation_id, body, routing_key = replies[0]
    assert (correlation_id, body) == ("42", b"PING")
    assert routing_key.startswith("amq.rabbitmq.reply-to.")


def test_direct_reply_to_without_reply_consumer_is_406(connect: Connect) -> None:
    ch = connect().channel()
    ch.queue_declare("rpc2")
    ch.basic_publish("", "rpc2", b"x", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("", exclusive=True)
    assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - fast reply consumer does not exist",
    )


def test_direct_reply_to_consumer_must_be_no_ack(connect: Connect) -> None:
    ch = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=False)
    assert excinfo.value.reply_code == 406
    assert "reply consumer cannot acknowledge" in excinfo.value.reply_text


def test_rejected_message_is_dead_lettered_with_x_death(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("dlx", "fanout")
    ch.queue_declare("dead")
    ch.queue_bind("dead", "dlx")
    ch.queue_declare("work", arguments={"x-dead-letter-exchange": "dlx"})
    ch.basic_publish("", "work", b"bad", pika.BasicProperties(headers={"origin": "test"}))
    ch.basic_reject(ch.basic_get("work")[0].delivery_tag, requeue=False)
    method, props, body = ch.basic_get("dead", auto_ack=True)
    assert body == b"bad"
    assert method.exchange == "dlx"
    headers = props.headers
    assert headers["origin"] == "test"
    assert headers["x-first-death-reason"] == "rejected"
    assert headers["x-first-death-queue"] == "work"
    (death,) = headers["x-death"]
    assert death["count"] == 1
    assert death["reason"] == "rejected"
    assert death["queue"] == "work"
    assert death["exchange"] == ""
    assert death["routing-keys"] == ["work"]
    assert isinstance(death["time"], datetime.datetime)


def test_queue_ttl_expires_messages_into_the_dead_letter_queue(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.queue_declare("expired")
    ch.queue_declare(
        "short",
        arguments={
            "x-message-ttl": 50,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "expired",
        },
    )
    ch.basic_publish("", "short", b"soon gone")
    assert wait_until(conn, lambda: _count(ch, "expired") == 1)
    assert _count(ch, "short") == 0
    props = ch.basic_get("expired", auto_ack=True)[1]
    assert props.headers["x-death"][0]["reason"] == "expired"


def test_per_message_expiration_drops_the_message(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"brief", pika.BasicProperties(expiration="50"))
    ch.basic_publish("", q, b"kept", pika.BasicProperties(expiration="600000"))
    # TTL applies at the head: the first expires, the second stays.
    assert wait_until(conn, lambda: _count(ch, q) == 1)
    assert ch.basic_get(q, auto_ack=True)[2] == b"kept"


def test_invalid_expiration_is_406(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration="soon"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("", exclusive=True)
    assert excinfo.value.reply_code == 406


def test_priority_queue_delivers_highest_priority_first(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True, arguments={"x-max-priority": 10}).method.queue
    for priority in (1, 9, 5, 0):
        ch.basic_publish("", q, str(priority).encode(), pika.BasicProperties(priority=priority))
    bodies = [ch.basic_get(q, auto_ack=True)[2] for _ in range(4)]
    assert bodies == [b"9", b"5", b"1", b"0"]


def test_delayed_message_exchange_routes_after_the_delay(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.exchange_declare("later", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "later", "k")
    ch.basic_publish("later", "k", b"delayed", pika.BasicProperties(headers={"x-delay": 100}))
    assert wait_until(conn, lambda: _count(ch, q) == 1)
    method, props, body = ch.basic_get(q, auto_ack=True)
    assert body == b"delayed"
    assert method.exchange == "later"
    assert props.headers["x-delay"] == -100  # the plugin's mark of a message that was delayed


def test_max_length_drop_head_keeps_the_newest(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True, arguments={"x-max-length": 2}).method.queue
    for i in range(4):
        ch.basic_publish("", q, str(i).encode())
    assert [ch.basic_get(q, auto_ack=True)[2] for _ in range(2)] == [b"2", b"3"]


def test_alternate_exchange_takes_unroutable_messages(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("ae", "fanout")
    ch.queue_declare("unrouted")
    ch.queue_bind("unrouted", "ae")
    ch.exchange_declare("main", "direct", arguments={"alternate-exchange": "ae"})
    ch.confirm_delivery()
    ch.basic_publish("main", "nobody", b"to ae", mandatory=True)  # routed via AE: no return
    assert ch.basic_get("unrouted", auto_ack=True)[2] == b"to ae"


def test_user_id_must_match_the_authenticated_user(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"ok", pika.BasicProperties(user_id="guest"))
    ch.basic_publish("", q, b"forged", pika.BasicProperties(user_id="admin"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("", exclusive=True)
    assert excinfo.value.reply_code == 406
    assert "user_id property set to 'admin'" in excinfo.value.reply_text
