"""Generated pika and aio-pika scripts, run as subprocesses against the embedded broker (port 0):
the producer declares the design and publishes with confirms, the consumer acks what it handles and
a message its handler rejects is dead-lettered through the queue's DLX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika
import pytest

from mqstudio.core.codegen import generate
from mqstudio.core.fileformat import load
from mqstudio.core.model import Binding, Exchange, ExchangeType, Producer, Queue, Topology
from tests.amqp.conftest import RunningBroker
from tests.codegen.conftest import run_script, write_snippets

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
POISON = b"\xff\xfe not utf-8"

# Names RabbitMQ accepts that a careless generator would break on: quotes, backslashes, a line
# separator, emoji. Both brokers take them (the embedded one encodes them as RabbitMQ does, see
# mqstudio.amqp.names) and so does pika; aio-pika cannot send them (aiormq validates names with
# pamqp, which allows only [A-Za-z0-9-_.:@#,/+ ]), so its scripts get the tamer set.
NASTY = {
    "exchange": "or'ders \"ex\" \\ ü 😀",
    "queue": "q'ueue\"\\ \u2028 ∑ 😀",
    "dlx": "dl'x \"ü\"",
    "dlq": "dead ' \" letters",
}
TAME = {"exchange": "orders ex/@#+,:", "queue": "orders q.v1 @ work/a+b,c", "dlx": "dlx: orders",
        "dlq": "dead letters"}


def designed_topology(names: dict[str, str]) -> tuple[Topology, Queue]:
    """A topic exchange → queue with TTL, max-length, overflow, priority and a dead-letter exchange and
    routing key → a direct DLX → a dead-letter queue; a producer with priority, TTL, headers and a
    payload template with quotes."""
    topology = Topology()
    exchange = Exchange(names["exchange"], ExchangeType.TOPIC)
    dlx = Exchange(names["dlx"], ExchangeType.DIRECT)
    queue = Queue(
        names["queue"],
        arguments={
            "x-message-ttl": 60_000,
            "x-max-length": 1000,
            "x-overflow": "reject-publish-dlx",
            "x-max-priority": 5,
            "x-dead-letter-exchange": names["dlx"],
            "x-dead-letter-routing-key": "dead'key",
        },
    )
    dlq = Queue(names["dlq"])
    producer = Producer("api", target=exchange.id, routing_key="order.{n}.créé", priority=3, ttl_ms=30_000,
                        headers={"source": "tëst \"q\""}, payload='{"n": {{counter}}, "name": "x\'y"}')
    for node in (exchange, dlx, queue, dlq, producer):
        topology.add_node(node)
    topology.add_binding(Binding(exchange.id, queue.id, "order.*.#"))
    topology.add_binding(Binding(dlx.id, dlq.id, "dead'key"))
    return topology, queue


@pytest.fixture(params=["embedded", "rabbitmq"])
def amqp_url(request: pytest.FixtureRequest) -> str:
    """The embedded broker on port 0, or a fresh vhost on the real RabbitMQ."""
    if request.param == "embedded":
        broker: RunningBroker = request.getfixturevalue("broker_server")
        return f"amqp://guest:guest@{broker.host}:{broker.port}/%2F"
    service = request.getfixturevalue("rabbitmq_service")
    vhost = quote(request.getfixturevalue("rabbitmq_vhost"), safe="")
    return f"amqp://{service.username}:{service.password}@{service.host}:{service.port}/{vhost}"


def _get_all(url: str, queue: str) -> list[tuple[Any, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        got = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((properties, body))
    finally:
        connection.close()


def _publish_poison(url: str, exchange: str, key: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, key, POISON, mandatory=True)
    finally:
        connection.close()


def _flow(url: str, tmp_path: Path, topology: Topology, queue: Queue, library: str, exchange: str,
          key: str, dlq: str) -> tuple[list[str], list[tuple[Any, bytes]]]:
    """Producer (3 messages), one poison message, consumer (4): what it received and the DLQ."""
    scripts = write_snippets(tmp_path, generate(topology, queue.id))
    env = {"AMQP_URL": url}
    produced = run_script(scripts[f"{library} producer"], "--count", "3", env=env)
    assert produced.returncode == 0, produced.stderr
    assert produced.stdout.count("published ") == 3
    _publish_poison(url, exchange, key)
    consumed = run_script(scripts[f"{library} consumer"], "--count", "4", env=env)
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stderr.count("rejected: UnicodeDecodeError") == 1, consumed.stderr
    received = [line.removeprefix("received: ") for line in consumed.stdout.splitlines()]
    assert _get_all(url, queue.name) == []  # every message acked or dead-lettered
    return received, _get_all(url, dlq)


@pytest.mark.parametrize("library", ["pika", "aio-pika"])
def test_work_queue_example_flows_and_dead_letters(
    broker_server: RunningBroker, tmp_path: Path, library: str
) -> None:
    topology = load(EXAMPLES / "work-queue-dlx.mqs.json").topology
    queue = topology.find_queue("tasks")
    assert queue is not None
    url = f"amqp://guest:guest@{broker_server.host}:{broker_server.port}/%2F"
    received, dead = _flow(url, tmp_path, topology, queue, library, "tasks", "tasks", "tasks.dead")
    assert [json.loads(text)["id"] for text in received] == [1, 2, 3]
    assert len(dead) == 1
    properties, body = dead[0]
    assert body == POISON
    assert properties.headers["x-death"][0]["reason"] == "rejected"
    assert properties.headers["x-death"][0]["queue"] == "tasks"


@pytest.mark.parametrize("library", ["pika", "aio-pika"])
def test_names_and_every_argument_survive_a_real_run(
    amqp_url: str, tmp_path: Path, library: str
) -> None:
    url = amqp_url
    names = NASTY if library == "pika" else TAME
    topology, queue = designed_topology(names)
    received, dead = _flow(url, tmp_path, topology, queue, library, names["exchange"], "order.9.x",
                           names["dlq"])
    assert [json.loads(text) for text in received] == [{"n": i, "name": "x'y"} for i in (1, 2, 3)]
    assert [body for _, body in dead] == [POISON]
    death = dead[0][0].headers["x-death"][0]
    assert death["queue"] == names["queue"]
    assert death["routing-keys"] == ["order.9.x"]
    # The queue was declared with the design's arguments: redeclaring it with them is accepted.
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(names["queue"], durable=True, arguments=queue.arguments)
    finally:
        connection.close()


def test_producer_properties_reach_the_queue(amqp_url: str, tmp_path: Path) -> None:
    url = amqp_url
    names = NASTY  # the pika producer
    topology, _ = designed_topology(names)
    producer = topology.producers[0]
    scripts = write_snippets(tmp_path, generate(topology, producer.id))
    assert list(scripts) == ["pika producer", "aio-pika producer", "Spring Cloud Stream"]
    produced = run_script(scripts["pika producer"], "--count", "2", env={"AMQP_URL": url})
    assert produced.returncode == 0, produced.stderr
    messages = _get_all(url, names["queue"])
    assert [body for _, body in messages] == [b'{"n": 1, "name": "x\'y"}', b'{"n": 2, "name": "x\'y"}']
    properties = messages[0][0]
    assert properties.priority == 3
    assert properties.expiration == "30000"
    assert properties.delivery_mode == 2
    assert properties.headers == {"source": "tëst \"q\""}


def test_unroutable_publish_fails_the_producer(broker_server: RunningBroker, tmp_path: Path) -> None:
    topology = Topology()
    exchange = Exchange("lonely", ExchangeType.DIRECT)
    topology.add_node(exchange)
    scripts = write_snippets(tmp_path, generate(topology, exchange.id))
    url = f"amqp://guest:guest@{broker_server.host}:{broker_server.port}/%2F"
    produced = run_script(scripts["pika producer"], "--count", "1", env={"AMQP_URL": url})
    assert produced.returncode == 1
    assert "was returned" in produced.stderr
