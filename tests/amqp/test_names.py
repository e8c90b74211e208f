"""Queue, exchange and routing key names RabbitMQ accepts but pamqp's validation refuses.

RabbitMQ takes any UTF-8 name up to 255 octets; pamqp only ``[a-zA-Z0-9-_.:@#,/+ ]`` and 127
characters for an exchange. The same pika session (declare, bind, publish, return, get, consume,
unbind, delete, the reserved ``amq.`` prefix) runs against the embedded server and, in a fresh
vhost, against the real RabbitMQ; both must produce the transcript `expected` describes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pika.frame
import pika.spec
import pytest
from pamqp import commands

from mqstudio.amqp.framing import CONTENT_METHODS, PROTOCOL_HEADER, FrameBuffer, marshal
from mqstudio.amqp.names import BasicDeliver, BasicGetOk, BasicReturn, QueueDeclareOk
from tests.amqp.conftest import RunningBroker, wait_until
from tests.amqp.test_robustness import RawClient, wire
from tests.fixtures.rabbitmq import RabbitMQService

NAMES = [
    pytest.param('orders "eu"', id="quotes"),
    pytest.param("café.q", id="accent"),
    pytest.param("with spaces\tand\ttabs", id="whitespace"),
    pytest.param("emoji 📦 ключ 名前", id="unicode"),
    pytest.param("\u00e9" * 127 + "x", id="255-octets-unicode"),  # 127 characters would pass pamqp
    pytest.param("n" * 255, id="255-octets-ascii"),
]


def _reserved(name: str) -> str:
    """``amq.`` + as much of `name` as fits a shortstr, cut on a character boundary."""
    return ("amq." + name).encode()[:255].decode(errors="ignore")


def session(conn: pika.BlockingConnection, name: str) -> list[tuple[Any, ...]]:
    """What a client sees doing everything with `name` as queue, exchange and routing key."""
    seen: list[tuple[Any, ...]] = []
    ch = conn.channel()
    # Confirms: a publish returns once routed, so message counts do not race (RabbitMQ enqueues
    # asynchronously), and an unroutable mandatory one raises with its basic.return.
    ch.confirm_delivery()

    def returned(exchange: str, routing_key: str, body: bytes) -> tuple[Any, ...]:
        with pytest.raises(pika.exceptions.UnroutableError) as err:
            ch.basic_publish(exchange, routing_key, body, mandatory=True)
        [message] = err.value.messages
        return ("return", message.method.exchange, message.method.routing_key, message.body)

    ok = ch.queue_declare(name)
    seen.append(("declare-ok", ok.method.queue, ok.method.message_count, ok.method.consumer_count))
    ch.exchange_declare(name, "direct")
    seen.append(returned(name, name, b"unrouted"))

    ch.queue_bind(name, name, routing_key=name)
    ch.exchange_bind(destination=name, source="amq.direct", routing_key=name)
    ch.basic_publish(name, name, b"via exchange")
    ch.basic_publish("", name, b"via default")
    ch.basic_publish("amq.direct", name, b"via exchange binding")
    ok = ch.queue_declare(name, passive=True)
    seen.append(("passive-ok", ok.method.queue, ok.method.message_count))

    get_ok, _props, body = ch.basic_get(name, auto_ack=True)
    assert isinstance(get_ok, pika.spec.Basic.GetOk)
    seen.append(("get-ok", get_ok.exchange, get_ok.routing_key, get_ok.message_count, body))

    delivered: list[tuple[str, str, bytes]] = []
    ch.basic_consume(
        name, lambda _c, m, _p, body: delivered.append((m.exchange, m.routing_key, body)), auto_ack=True
    )
    assert wait_until(conn, lambda: len(delivered) == 2)
    seen.extend(("deliver", *d) for d in delivered)

    ch.exchange_unbind(destination=name, source="amq.direct", routing_key=name)
    ch.queue_unbind(name, name, routing_key=name)
    seen.append(returned(name, name, b"after unbind"))
    seen.append(("delete-ok", ch.queue_delete(name).method.message_count))
    ch.exchange_delete(name)

    for kind in ("queue", "exchange"):
        ch = conn.channel()  # each refusal closes its channel
        try:
            if kind == "queue":
                ch.queue_declare(_reserved(name))
            else:
                ch.exchange_declare(_reserved(name), "direct")
        except pika.exceptions.ChannelClosedByBroker as exc:
            seen.append(("closed", exc.reply_code, _octets(exc.reply_text)))
    return seen


def _octets(reply_text: str) -> bytes:
    """The reply text's octets: pika hands out str(bytes) for one that is not UTF-8."""
    if reply_text.startswith(("b'", 'b"')):
        octets = ast.literal_eval(reply_text)
        assert isinstance(octets, bytes)
        return octets
    return reply_text.encode()


def _reply_text(text: str, *, split_characters: bool) -> bytes:
    """RabbitMQ's cut of a reply text over 255 octets: 252 octets and "...".

    RabbitMQ may split a character there (and pika then cannot decode the text); the embedded
    server drops the split character instead.
    """
    octets = text.encode()
    if len(octets) <= 255:
        return octets
    kept = octets[:252] if split_characters else octets[:252].decode(errors="ignore").encode()
    return kept + b"..."


def expected(name: str, *, rabbitmq: bool = False) -> list[tuple[Any, ...]]:
    reserved = _reserved(name)
    refused = "ACCESS_REFUSED - {} name '" + reserved + "' contains reserved prefix 'amq.*'"
    return [
        ("declare-ok", name, 0, 0),
        ("return", name, name, b"unrouted"),
        ("passive-ok", name, 3),
        ("get-ok", name, name, 2, b"via exchange"),
        ("deliver", "", name, b"via default"),
        ("deliver", "amq.direct", name, b"via exchange binding"),
        ("return", name, name, b"after unbind"),
        ("delete-ok", 0),
        ("closed", 403, _reply_text(refused.format("queue"), split_characters=rabbitmq)),
        ("closed", 403, _reply_text(refused.format("exchange"), split_characters=rabbitmq)),
    ]


@pytest.mark.parametrize("name", NAMES)
def test_embedded_server_round_trips_any_name(
    connect: Callable[[], pika.BlockingConnection], name: str
) -> None:
    conn = connect()
    assert session(conn, name) == expected(name)
    assert conn.is_open  # the connection survived every reply that carried the name


@pytest.mark.parametrize("name", NAMES)
def test_rabbitmq_round_trips_the_same(
    rabbitmq_service: RabbitMQService, rabbitmq_vhost: str, name: str
) -> None:
    params = pika.ConnectionParameters(
        host=rabbitmq_service.host,
        port=rabbitmq_service.port,
        virtual_host=rabbitmq_vhost,
        credentials=pika.PlainCredentials(rabbitmq_service.username, rabbitmq_service.password),
        connection_attempts=1,
    )
    conn = pika.BlockingConnection(params)
    try:
        assert session(conn, name) == expected(name, rabbitmq=True)
    finally:
        conn.close()


@pytest.mark.parametrize("name", NAMES)
def test_client_methods_with_any_name_decode_as_sent(name: str) -> None:
    # Encoded by pika, an encoder independent of pamqp; basic.publish takes the hand decoder.
    sent = [
        pika.spec.Queue.Declare(queue=name),
        pika.spec.Exchange.Declare(exchange=name, type="direct"),
        pika.spec.Queue.Bind(queue=name, exchange=name, routing_key=name),
        pika.spec.Exchange.Bind(destination=name, source=name, routing_key=name),
        pika.spec.Basic.Publish(exchange=name, routing_key=name),
        pika.spec.Basic.Consume(queue=name, consumer_tag=name),
        pika.spec.Basic.Get(queue=name),
        pika.spec.Queue.Delete(queue=name),
    ]
    raw = b"".join(pika.frame.Method(1, m).marshal() for m in sent)
    frames = FrameBuffer(0, expect_header=False).feed(raw)
    assert [type(f).__name__ for _, f in frames] == [type(m).__name__ for m in sent]
    for (_, got), want in zip(frames, sent, strict=True):
        for field in ("queue", "exchange", "routing_key", "destination", "source", "consumer_tag"):
            if hasattr(want, field):
                assert getattr(got, field) == getattr(want, field), field
    publish = frames[4][1]
    assert isinstance(publish, commands.Basic.Publish)


# ------------------------------------------------------------------------------ the unvalidated methods


UNVALIDATED = [
    pytest.param(QueueDeclareOk, ("q.1", 5, 2), id="queue.declare-ok"),
    pytest.param(BasicDeliver, ("ctag", 7, True, "x", "k.1"), id="basic.deliver"),
    pytest.param(BasicGetOk, (7, False, "x", "k.1", 3), id="basic.get-ok"),
    pytest.param(BasicReturn, (312, "NO_ROUTE", "x", "k.1"), id="basic.return"),
]


@pytest.mark.parametrize(("cls", "args"), UNVALIDATED)
def test_unvalidated_method_is_pamqps_with_the_same_octets(cls: type[Any], args: tuple[Any, ...]) -> None:
    (parent,) = cls.__bases__
    ours, theirs = cls(*args), parent(*args)
    assert isinstance(ours, parent)
    assert (ours.index, ours.name, list(ours)) == (theirs.index, theirs.name, list(theirs))
    assert marshal(ours, 3) == marshal(theirs, 3)  # every field encoded, none dropped
    assert isinstance(ours, CONTENT_METHODS) == isinstance(theirs, CONTENT_METHODS)


@pytest.mark.parametrize(("cls", "args"), UNVALIDATED)
def test_unvalidated_method_still_refuses_what_a_shortstr_cannot_carry(
    cls: type[Any], args: tuple[Any, ...]
) -> None:
    too_long = tuple("\u00e9" * 128 if a in {"q.1", "x"} else a for a in args)
    with pytest.raises(TypeError, match="255"):
        marshal(cls(*too_long), 1)


# ------------------------------------------------------------------------------ names that are not UTF-8


@pytest.fixture(params=["embedded", "rabbitmq"])
def raw_target(request: pytest.FixtureRequest) -> tuple[tuple[str, int], str, str, str]:
    """(address, vhost, user, password) of the embedded server or a fresh RabbitMQ vhost."""
    if request.param == "embedded":
        broker: RunningBroker = request.getfixturevalue("broker_server")
        return (broker.host, broker.port), "/", "guest", "guest"
    service: RabbitMQService = request.getfixturevalue("rabbitmq_service")
    vhost: str = request.getfixturevalue("rabbitmq_vhost")
    return (service.host, service.port), vhost, service.username, service.password


def _not_utf8(method: Any) -> bytes:
    """`method` on channel 1 with the "Z" in its name replaced by 0xFF (pika and pamqp refuse to send it)."""
    raw = marshal(method, 1)
    assert raw.count(b"Z") == 1
    return raw.replace(b"Z", b"\xff")


@pytest.mark.parametrize(
    "method",
    [
        pytest.param(commands.Queue.Declare(queue="bad Z name"), id="queue.declare"),
        pytest.param(commands.Exchange.Declare(exchange="bad Z name"), id="exchange.declare"),
    ],
)
def test_name_that_is_not_utf8_is_a_frame_error_as_in_rabbitmq(
    raw_target: tuple[tuple[str, int], str, str, str], method: Any
) -> None:
    address, vhost, user, password = raw_target
    client = RawClient(address)
    try:
        client.send(PROTOCOL_HEADER)
        client.expect(commands.Connection.Start)
        start_ok = commands.Connection.StartOk(mechanism="PLAIN", response=f"\0{user}\0{password}")
        client.send(wire((0, start_ok)))
        client.expect(commands.Connection.Tune)
        tune_ok = commands.Connection.TuneOk(channel_max=16, frame_max=131072, heartbeat=0)
        client.send(wire((0, tune_ok), (0, commands.Connection.Open(virtual_host=vhost))))
        client.expect(commands.Connection.OpenOk)
        client.send(wire((1, commands.Channel.Open())))
        client.expect(commands.Channel.OpenOk, channel=1)
        client.send(_not_utf8(method))
        close = client.await_close()
    finally:
        client.close()
    assert close is not None
    assert (close.reply_code, close.reply_text) == (501, "FRAME_ERROR - Malformed UTF-8 in shortstr")
