"""Property: whatever the names, keys, arguments and payload of a design, the generated scripts are
valid Python whose literals read back as exactly the design's values (nothing breaks out of a string)
and the Spring YAML quotes them so that they read back too."""

from __future__ import annotations

import ast
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mqstudio.core.codegen import generate
from mqstudio.core.model import (
    Binding,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Producer,
    Queue,
    Topic,
    Topology,
)
from tests.core.test_codegen_spring import parse_yaml

names = st.text(min_size=1, max_size=30)
scalars = st.one_of(st.integers(-(2**40), 2**40), st.booleans(), st.text(max_size=20), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False))
arguments = st.dictionaries(
    st.text(max_size=15), st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=4
)


def _keywords(code: str, call: str) -> list[dict[str, Any]]:
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == call:
            out.append({k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg})
    return out


def _constants(code: str) -> dict[str, Any]:
    values = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exchange=names, queue=names, key=st.text(max_size=30), args=arguments, payload=st.text(max_size=40),
       headers=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3), vhost=names)
def test_any_names_and_arguments_read_back_from_the_python(
    exchange: str, queue: str, key: str, args: dict[str, Any], payload: str, headers: dict[str, str],
    vhost: str,
) -> None:
    topology = Topology()
    ex = Exchange(exchange, ExchangeType.DIRECT, vhost=vhost, arguments=dict(args))
    q = Queue(queue, vhost=vhost, arguments=dict(args))
    producer = Producer("p", target=ex.id, routing_key=key, payload=payload, headers=headers)
    for node in (ex, q, producer):
        topology.add_node(node)
    topology.add_binding(Binding(ex.id, q.id, key, dict(args)))
    snippets = generate(topology, q.id)
    for snippet in snippets:
        if snippet.language == "python":
            compile(snippet.code, snippet.filename, "exec")
    pika_producer, pika_consumer = snippets[0].code, snippets[1].code
    constants = _constants(pika_producer)
    assert constants["EXCHANGE"] == exchange
    assert constants["ROUTING_KEY"] == key
    assert constants["PAYLOAD_TEMPLATE"] == (payload or constants["PAYLOAD_TEMPLATE"])
    assert constants["HEADERS"] == headers
    assert _keywords(pika_producer, "queue_declare") == [
        {"queue": queue, "durable": True, "exclusive": False, "auto_delete": False, "arguments": args}
    ]
    assert _keywords(pika_consumer, "exchange_declare")[0]["arguments"] == args
    assert _keywords(pika_consumer, "queue_bind") == [
        {"queue": queue, "exchange": exchange, "routing_key": key, "arguments": args}
    ]
    assert _constants(pika_consumer)["QUEUE"] == queue
    aio_consumer = snippets[3].code
    assert snippets[3].title == "aio-pika consumer"
    assert _constants(aio_consumer)["QUEUE"] == queue
    declared = [n for n in ast.walk(ast.parse(aio_consumer)) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute) and n.func.attr == "declare_queue"]
    assert [ast.literal_eval(c.args[0]) for c in declared] == [queue]
    keywords = [{k.arg: ast.literal_eval(k.value) for k in c.keywords} for c in declared]
    assert [k["arguments"] for k in keywords] == [args]
    spring = parse_yaml(snippets[-1].code)
    stream = spring["spring"]["cloud"]["stream"]
    assert stream["bindings"]["handle-in-0"]["group"] == queue
    assert stream["bindings"]["handle-in-0"]["destination"] == exchange
    assert spring["spring"]["rabbitmq"]["virtual-host"] == vhost


@settings(max_examples=40, deadline=None)
@given(topic=names, group=names, key=st.text(max_size=20))
def test_any_kafka_names_read_back(topic: str, group: str, key: str) -> None:
    topology = Topology()
    t = Topic(topic)
    topology.add_node(t)
    g = ConsumerGroup(group, topics=[t.id])
    topology.add_node(g)
    topology.add_node(Producer("p", target=t.id, routing_key=key))
    producer, consumer, spring = generate(topology, g.id)
    compile(producer.code, "p.py", "exec")
    compile(consumer.code, "c.py", "exec")
    assert _constants(producer.code)["TOPIC"] == topic
    assert _constants(producer.code)["ROUTING_KEY"] == key
    assert _constants(consumer.code)["GROUP"] == group
    bindings = parse_yaml(spring.code)["spring"]["cloud"]["stream"]["bindings"]
    assert bindings["handle-in-0"] == {"destination": topic, "group": group, "consumer": {"maxAttempts": 1}}
