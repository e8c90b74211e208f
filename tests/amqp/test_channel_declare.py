"""Exchange and queue class methods through pika, checked against RabbitMQ's replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest

from tests.amqp.conftest import RunningBroker

Connect = Callable[[], Any]


def _channel_error(excinfo: pytest.ExceptionInfo[pika.exceptions.ChannelClosedByBroker]) -> tuple[int, str]:
    return excinfo.value.reply_code, excinfo.value.reply_text


def test_exchange_declare_then_passive_declare_succeeds(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("orders", "topic", durable=True)
    ch.exchange_declare("orders", passive=True)
    ch.exchange_declare("orders", "topic", durable=True)  # equivalent redeclare


def test_passive_exchange_declare_of_missing_exchange_is_404(connect: Connect) -> None:
    ch = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.exchange_declare("nope", passive=True)
    assert _channel_error(excinfo) == (404, "NOT_FOUND - no exchange 'nope' in vhost '/'")


def test_inequivalent_exchange_redeclare_is_406(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("x1", "direct")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.exchange_declare("x1", "fanout")
    code, text = _channel_error(excinfo)
    assert code == 406
    assert "inequivalent arg 'type' for exchange 'x1' in vhost '/'" in text


def test_declaring_an_amq_prefixed_exchange_is_403(connect: Connect) -> None:
    ch = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.exchange_declare("amq.mine", "direct")
    assert _channel_error(excinfo)[0] == 403


def test_unknown_exchange_type_closes_the_connection_with_503(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
        ch.exchange_declare("weird", "no-such-type")
    assert excinfo.value.reply_code == 503
    assert "unknown exchange type 'no-such-type'" in excinfo.value.reply_text


def test_exchange_delete_if_unused_refuses_a_bound_exchange(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("src", "fanout")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "src")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.exchange_delete("src", if_unused=True)
    assert _channel_error(excinfo)[0] == 406


def test_exchange_delete_removes_the_exchange(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("gone", "fanout")
    ch.exchange_delete("gone")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.exchange_declare("gone", passive=True)
    assert _channel_error(excinfo)[0] == 404


def test_queue_declare_returns_server_name_and_counts(connect: Connect) -> None:
    ch = connect().channel()
    ok = ch.queue_declare("", exclusive=True).method
    assert ok.queue.startswith("amq.gen-")
    assert (ok.message_count, ok.consumer_count) == (0, 0)
    ch.basic_publish("", ok.queue, b"1")
    ch.basic_publish("", ok.queue, b"2")
    again = ch.queue_declare(ok.queue, passive=True).method
    assert (again.message_count, again.consumer_count) == (2, 0)


def test_passive_queue_declare_of_missing_queue_is_404(connect: Connect) -> None:
    ch = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("missing", passive=True)
    assert _channel_error(excinfo) == (404, "NOT_FOUND - no queue 'missing' in vhost '/'")


def test_exclusive_queue_is_locked_for_another_connection(connect: Connect) -> None:
    owner = connect().channel()
    owner.queue_declare("mine", exclusive=True)
    other = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        other.queue_declare("mine", passive=True)
    code, text = _channel_error(excinfo)
    assert code == 405
    assert text.startswith(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'"
    )
    other2 = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo2:
        other2.basic_consume("mine", lambda *a: None)
    assert _channel_error(excinfo2)[0] == 405


def test_exclusive_queue_is_deleted_with_its_connection(
    connect: Connect, broker_server: RunningBroker
) -> None:
    conn = connect()
    conn.channel().queue_declare("temp-excl", exclusive=True)
    conn.close()
    ch = connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("temp-excl", passive=True)
    assert _channel_error(excinfo)[0] == 404


def test_queue_bind_unbind_controls_routing(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("logs", "direct")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "logs", "info")
    ch.basic_publish("logs", "info", b"a")
    ch.queue_unbind(q, "logs", "info")
    ch.basic_publish("logs", "info", b"b")
    assert ch.queue_declare(q, passive=True).method.message_count == 1


def test_queue_bind_to_missing_exchange_is_404(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_bind(q, "nowhere")
    assert _channel_error(excinfo)[0] == 404


def test_queue_purge_reports_the_purged_count(connect: Connect) -> None:
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, str(i).encode())
    assert ch.queue_purge(q).method.message_count == 3
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_queue_delete_if_empty_and_if_unused(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.queue_declare("full")
    ch.basic_publish("", "full", b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_delete("full", if_empty=True)
    assert _channel_error(excinfo)[0] == 406
    ch = conn.channel()
    ch.basic_consume("full", lambda *a: None)
    ch2 = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo2:
        ch2.queue_delete("full", if_unused=True)
    assert _channel_error(excinfo2)[0] == 406
    ch3 = conn.channel()
    assert ch3.queue_delete("full").method.message_count == 0  # its one message is with the consumer


def test_queue_delete_returns_ready_message_count(connect: Connect) -> None:
    ch = connect().channel()
    ch.queue_declare("doomed")
    ch.basic_publish("", "doomed", b"1")
    ch.basic_publish("", "doomed", b"2")
    assert ch.queue_delete("doomed").method.message_count == 2


def test_inequivalent_queue_redeclare_is_406(connect: Connect) -> None:
    ch = connect().channel()
    ch.queue_declare("dur", durable=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("dur", durable=False)
    assert _channel_error(excinfo)[0] == 406


def test_exchange_to_exchange_binding_routes_and_unbinds(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("upstream", "topic")
    ch.exchange_declare("downstream", "fanout")
    ch.exchange_bind(destination="downstream", source="upstream", routing_key="a.#")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "downstream")
    ch.basic_publish("upstream", "a.b", b"routed")
    ch.basic_publish("upstream", "b.a", b"dropped")
    ch.exchange_unbind(destination="downstream", source="upstream", routing_key="a.#")
    ch.basic_publish("upstream", "a.c", b"after unbind")
    method, _props, body = ch.basic_get(q, auto_ack=True)
    assert body == b"routed"
    assert method.exchange == "upstream"
    assert ch.basic_get(q)[0] is None


def test_headers_exchange_routes_on_x_match(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("hx", "headers")
    all_q = ch.queue_declare("", exclusive=True).method.queue
    any_q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(all_q, "hx", arguments={"x-match": "all", "format": "pdf", "type": "report"})
    ch.queue_bind(any_q, "hx", arguments={"x-match": "any", "format": "pdf", "type": "log"})
    ch.basic_publish("hx", "", b"both", pika.BasicProperties(headers={"format": "pdf", "type": "report"}))
    ch.basic_publish("hx", "", b"log", pika.BasicProperties(headers={"format": "zip", "type": "log"}))
    assert ch.queue_declare(all_q, passive=True).method.message_count == 1
    assert ch.queue_declare(any_q, passive=True).method.message_count == 2


def test_publish_to_missing_exchange_closes_the_channel_with_404(connect: Connect) -> None:
    conn = connect()
    ch = conn.channel()
    ch.basic_publish("no-such-exchange", "k", b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("", exclusive=True)  # the close arrives before this answer
    assert _channel_error(excinfo) == (404, "NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'")
    assert conn.is_open  # a soft error: only the channel closed


def test_publish_to_internal_exchange_is_403(connect: Connect) -> None:
    ch = connect().channel()
    ch.exchange_declare("inner", "fanout", internal=True)
    ch.basic_publish("inner", "", b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
        ch.queue_declare("", exclusive=True)
    assert _channel_error(excinfo)[0] == 403
