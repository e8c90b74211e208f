"""Code generation without a broker: what each selection yields, the declarations and settings the
scripts carry, and that every script generated from the bundled examples compiles and passes ruff."""

from __future__ import annotations

import ast
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mqstudio.core.codegen import CodegenError, Snippet, generate, supports
from mqstudio.core.codegen.literals import py
from mqstudio.core.codegen.selection import sample_routing_key, topic_matches
from mqstudio.core.fileformat import load
from mqstudio.core.model import (
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Producer,
    Queue,
    Topic,
    Topology,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def _work_queue() -> Topology:
    return load(EXAMPLES / "work-queue-dlx.mqs.json").topology


def _titles(snippets: list[Snippet]) -> list[str]:
    return [s.title for s in snippets]


def _calls(code: str, name: str) -> list[dict[str, Any]]:
    """The keyword arguments (as values) of every call to ``<anything>.<name>(…)`` in `code`."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
            found.append({k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg})
    return found


def _constants(code: str) -> dict[str, Any]:
    values = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


# -- what a selection yields ------------------------------------------------------------------------


def test_queue_gives_producer_and_consumer_in_both_libraries_and_spring() -> None:
    topology = _work_queue()
    assert _titles(generate(topology, "q-tasks")) == [
        "pika producer", "pika consumer", "aio-pika producer", "aio-pika consumer", "Spring Cloud Stream",
    ]


def test_exchange_and_producer_give_only_producers() -> None:
    topology = _work_queue()
    producers = ["pika producer", "aio-pika producer", "Spring Cloud Stream"]
    assert _titles(generate(topology, "ex-tasks")) == producers
    assert _titles(generate(topology, "p-api")) == producers


def test_consumer_gives_only_consumers_with_its_prefetch() -> None:
    topology = _work_queue()
    consumer = topology.node("c-worker-1")
    assert isinstance(consumer, Consumer)
    consumer.prefetch = 37
    snippets = generate(topology, consumer.id)
    assert _titles(snippets) == ["pika consumer", "aio-pika consumer", "Spring Cloud Stream"]
    assert _constants(snippets[0].code)["PREFETCH"] == 37
    assert "prefetch: 37" in snippets[2].code


def test_kafka_topic_gives_kafka_python_and_the_kafka_binder() -> None:
    topology = Topology()
    topic = Topic("orders", partitions=3, configs={"retention.ms": "60000"})
    topology.add_node(topic)
    snippets = generate(topology, topic.id)
    assert _titles(snippets) == ["kafka-python producer", "kafka-python consumer", "Spring Cloud Stream"]
    producer = _constants(snippets[0].code)
    assert (producer["TOPIC"], producer["PARTITIONS"], producer["TOPIC_CONFIGS"]) == (
        "orders", 3, {"retention.ms": "60000"},
    )
    assert _constants(snippets[1].code)["GROUP"] == "orders-consumers"
    assert 'acks="all"' in snippets[0].code
    assert "enable_auto_commit=False" in snippets[1].code
    assert "consumer.commit()" in snippets[1].code
    assert "KAFKA_MAX_POLL_INTERVAL_MS" in snippets[1].code


def test_consumer_group_consumes_every_topic_it_subscribes_to() -> None:
    topology = Topology()
    a, b = Topic("a"), Topic("b")
    topology.add_node(a)
    topology.add_node(b)
    group = ConsumerGroup("g", topics=[a.id, b.id])
    topology.add_node(group)
    consumer = Consumer("reader", source=group.id)
    topology.add_node(consumer)
    assert _constants(generate(topology, group.id)[1].code)["TOPICS"] == ["a", "b"]
    only = generate(topology, consumer.id)
    assert _titles(only) == ["kafka-python consumer", "Spring Cloud Stream"]
    assert _constants(only[0].code)["GROUP"] == "g"


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        (Producer("loose"), "producer 'loose' has no target"),
        (Consumer("idle"), "consumer 'idle' has no source"),
        (ConsumerGroup("lonely"), "consumer group 'lonely' subscribes to no topic"),
    ],
)
def test_unconnected_clients_are_refused_with_the_reason(node: Any, reason: str) -> None:
    topology = Topology()
    topology.add_node(node)
    assert not supports(topology, node.id)
    with pytest.raises(CodegenError, match=reason):
        generate(topology, node.id)


def test_a_binding_or_unknown_id_is_not_supported() -> None:
    topology = _work_queue()
    assert not supports(topology, "b-01")
    assert not supports(topology, "nope")
    with pytest.raises(CodegenError, match="select one exchange, queue"):
        generate(topology, "b-01")


# -- declarations and settings ----------------------------------------------------------------------


def test_queue_scripts_declare_queue_with_every_argument_and_its_dead_letter_route() -> None:
    topology = _work_queue()
    for snippet in generate(topology, "q-tasks")[:2]:
        queues = {c["queue"]: c["arguments"] for c in _calls(snippet.code, "queue_declare")}
        assert queues == {
            "tasks": {"x-dead-letter-exchange": "tasks.dlx", "x-delivery-limit": 5, "x-queue-type": "quorum"},
            "tasks.dead": {"x-queue-type": "quorum"},
        }
        exchanges = {c["exchange"]: c["exchange_type"] for c in _calls(snippet.code, "exchange_declare")}
        assert exchanges == {"tasks": "direct", "tasks.dlx": "fanout"}
        binds = {(c["exchange"], c["queue"], c["routing_key"]) for c in _calls(snippet.code, "queue_bind")}
        assert binds == {("tasks", "tasks", "tasks"), ("tasks.dlx", "tasks.dead", "")}


def test_producer_confirms_and_publishes_mandatory_with_its_settings() -> None:
    topology = _work_queue()
    producer = topology.node("p-api")
    assert isinstance(producer, Producer)
    producer.priority, producer.ttl_ms, producer.headers = 7, 1500, {"tenant": "acme"}
    producer.payload = "plain {{counter}}"
    code = generate(topology, producer.id)[0].code
    assert "channel.confirm_delivery()" in code
    assert "mandatory=True" in code
    constants = _constants(code)
    assert constants["EXCHANGE"] == "tasks"
    assert constants["ROUTING_KEY"] == "tasks"
    assert constants["PRIORITY"] == 7
    assert constants["EXPIRATION_MS"] == 1500
    assert constants["HEADERS"] == {"tenant": "acme"}
    assert constants["CONTENT_TYPE"] == "text/plain"
    assert constants["PAYLOAD_TEMPLATE"] == "plain {{counter}}"


def test_consumer_acks_manually_and_nacks_without_requeue() -> None:
    pika_code, aio_code = (s.code for s in generate(_work_queue(), "c-worker-1")[:2])
    assert "basic_qos(prefetch_count=PREFETCH)" in pika_code
    assert "basic_nack(delivery_tag=method.delivery_tag, requeue=False)" in pika_code
    assert "basic_ack(delivery_tag=method.delivery_tag)" in pika_code
    assert "auto_ack" not in pika_code
    assert "await message.nack(requeue=False)" in aio_code
    assert "set_qos(prefetch_count=PREFETCH)" in aio_code
    assert _constants(pika_code)["DEAD_LETTER_QUEUES"] == ["tasks.dead"]


def test_queue_without_bindings_is_reached_through_the_default_exchange() -> None:
    topology = Topology()
    queue = Queue("solo", vhost="prod/eu")
    topology.add_node(queue)
    code = generate(topology, queue.id)[0].code
    constants = _constants(code)
    assert (constants["EXCHANGE"], constants["ROUTING_KEY"]) == ("", "solo")
    assert _calls(code, "exchange_declare") == []
    assert "amqp://guest:guest@localhost:5672/prod%2Feu" in code


def test_topic_binding_key_becomes_a_key_it_matches_and_headers_exchange_gets_headers() -> None:
    topology = Topology()
    topic_ex, headers_ex = Exchange("t", ExchangeType.TOPIC), Exchange("h", ExchangeType.HEADERS)
    q1, q2 = Queue("q1"), Queue("q2")
    for node in (topic_ex, headers_ex, q1, q2):
        topology.add_node(node)
    topology.add_binding(Binding(topic_ex.id, q1.id, "orders.*.eu.#"))
    topology.add_binding(Binding(headers_ex.id, q2.id, "", {"x-match": "all", "kind": "invoice"}))
    assert _constants(generate(topology, q1.id)[0].code)["ROUTING_KEY"] == "orders.any.eu"
    constants = _constants(generate(topology, q2.id)[0].code)
    assert constants["HEADERS"] == {"kind": "invoice"}


def test_exchange_to_exchange_route_is_declared_to_the_end() -> None:
    topology = Topology()
    front, back, queue = Exchange("front", ExchangeType.FANOUT), Exchange("back"), Queue("end")
    for node in (front, back, queue):
        topology.add_node(node)
    topology.add_binding(Binding(front.id, back.id, "k"))
    topology.add_binding(Binding(back.id, queue.id, "k"))
    code = generate(topology, front.id)[0].code
    assert _calls(code, "exchange_bind") == [
        {"destination": "back", "source": "front", "routing_key": "k", "arguments": {}}
    ]
    assert [c["queue"] for c in _calls(code, "queue_declare")] == ["end"]


def test_exclusive_queue_is_declared_by_the_consumer_only() -> None:
    topology = Topology()
    exchange, queue = Exchange("ex"), Queue("mine", exclusive=True, durable=False)
    topology.add_node(exchange)
    topology.add_node(queue)
    topology.add_binding(Binding(exchange.id, queue.id, "k"))
    producer, consumer = (s.code for s in generate(topology, queue.id)[:2])
    assert _calls(producer, "queue_declare") == [] and _calls(producer, "queue_bind") == []
    assert [c["queue"] for c in _calls(consumer, "queue_declare")] == ["mine"]


@pytest.mark.parametrize(
    ("pattern", "kind", "key"),
    [("a.*.c", "topic", "a.any.c"), ("#", "topic", ""), ("#.err", "topic", "err"), ("a.#", "topic", "a"),
     ("a.*", "direct", "a.*")],
)
def test_sample_routing_key(pattern: str, kind: str, key: str) -> None:
    assert sample_routing_key(pattern, kind) == key
    if kind == "topic":
        assert topic_matches(pattern, key)


def test_dead_letter_queue_follows_the_dead_letter_routing_key() -> None:
    topology = load(EXAMPLES / "retry-ttl-ladder.mqs.json").topology
    queue = topology.find_queue("work")
    assert queue is not None
    assert _constants(generate(topology, queue.id)[1].code)["DEAD_LETTER_QUEUES"] == ["work.retry.1s"]


def test_literals_refuse_what_python_cannot_spell() -> None:
    assert py(math.inf) == "float('inf')"
    assert eval(py({"a": [1, 2.5, None, True, "x'\"\n"]})) == {"a": [1, 2.5, None, True, "x'\"\n"]}
    with pytest.raises(CodegenError, match="cannot write a object value"):
        py(object())
    with pytest.raises(CodegenError, match="argument names must be strings"):
        py({1: "x"})


# -- every example: compile() and ruff ----------------------------------------------------------------


def _ruff() -> str:
    local = Path(sys.executable).with_name("ruff")
    found = str(local) if local.exists() else shutil.which("ruff")
    assert found, "ruff is a test dependency (pip install -e '.[test]')"
    return found


def test_every_example_node_generates_code_that_compiles_and_passes_ruff(tmp_path: Path) -> None:
    count = 0
    for example in sorted(EXAMPLES.glob("*.mqs.json")):
        topology = load(example).topology
        for node in topology.nodes:
            if not supports(topology, node.id):
                continue
            for snippet in generate(topology, node.id):
                if snippet.language != "python":
                    continue
                compile(snippet.code, snippet.filename, "exec")
                path = tmp_path / f"{example.name.split('.')[0]}_{node.id}_{snippet.filename}"
                path.write_text(snippet.code, encoding="utf-8")
                count += 1
    assert count > 100
    result = subprocess.run(
        [_ruff(), "check", "--isolated", "--no-cache", "--select", "E,F,W,I,B,UP,SIM,E3", "--preview",
         "--line-length", "110", "--target-version", "py39", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
