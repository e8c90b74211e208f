"""The Spring Cloud Stream ``application.yml`` blocks: binding destinations, groups and the queue's
dead-letter settings as binder properties. PyYAML is not a dependency, so `parse_yaml` reads the block
subset the generator writes (nested mappings, plain and double-quoted scalars, comments) and fails on
anything else; when PyYAML is installed the tests compare with it too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mqstudio.core.codegen import generate
from mqstudio.core.codegen.literals import yaml_quoted, yaml_scalar
from mqstudio.core.fileformat import load
from mqstudio.core.model import Binding, ConsumerGroup, Exchange, ExchangeType, Queue, Topic, Topology

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
_LINE = re.compile(r'(?P<indent> *)(?P<key>"(?:[^"\\]|\\.)*"|[^:"#\s][^:]*):(?: (?P<value>.+))?')
_ESCAPE = re.compile(r'\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|["\\nt])')


def _unquote(text: str) -> str:
    assert text.startswith('"') and text.endswith('"'), text
    simple = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
    return _ESCAPE.sub(lambda m: simple.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), text[1:-1])


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        return _unquote(text)
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(e[-+]?\d+)?", text):
        return float(text)
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-/]*", text), f"unexpected plain scalar {text!r}"
    return text


def parse_yaml(document: str) -> dict[str, Any]:
    """Block mappings with two-space indentation, as `literals.yaml_document` writes them."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for line in document.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        assert match, f"not a mapping line: {line!r}"
        indent = len(match["indent"])
        assert indent % 2 == 0, line
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        key = _scalar(match["key"]) if match["key"].startswith('"') else match["key"]
        assert key not in parent, f"duplicate key {key!r}"
        if match["value"] is None:
            parent[key] = {}
            stack.append((indent, parent[key]))
        else:
            parent[key] = _scalar(match["value"])
    return root


def _check_with_pyyaml(document: str, parsed: dict[str, Any]) -> None:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return
    assert yaml.safe_load(document) == parsed


def _rabbit(document: str) -> tuple[dict[str, Any], dict[str, Any]]:
    tree = parse_yaml(document)
    _check_with_pyyaml(document, tree)
    stream = tree["spring"]["cloud"]["stream"]
    return stream["bindings"], stream["rabbit"]["bindings"]


def test_work_queue_consumer_binding_uses_the_queue_and_its_dead_letter_settings() -> None:
    topology = load(EXAMPLES / "work-queue-dlx.mqs.json").topology
    spring = generate(topology, "q-tasks")[-1]
    assert (spring.filename, spring.language) == ("application.yml", "yaml")
    bindings, rabbit = _rabbit(spring.code)
    assert bindings["handle-in-0"] == {
        "destination": "tasks", "group": "tasks", "consumer": {"maxAttempts": 1}
    }
    assert bindings["send-out-0"] == {"destination": "tasks"}
    consumer = rabbit["handle-in-0"]["consumer"]
    assert consumer["queueNameGroupOnly"] is True
    assert consumer["bindingRoutingKey"] == "tasks"
    assert consumer["exchangeType"] == "direct"
    assert consumer["deadLetterExchange"] == "tasks.dlx"
    assert consumer["deadLetterExchangeType"] == "fanout"
    assert consumer["autoBindDlq"] is True
    assert consumer["deadLetterQueueName"] == "tasks.dead"
    assert consumer["quorum"] == {"enabled": True, "deliveryLimit": 5}
    assert consumer["dlqQuorum"] == {"enabled": True}
    assert consumer["requeueRejected"] is False
    assert consumer["republishToDlq"] is False
    assert rabbit["send-out-0"]["producer"]["routingKeyExpression"] == "'tasks'"


def test_ttl_length_overflow_priority_become_binder_properties() -> None:
    topology = Topology()
    exchange = Exchange("orders", ExchangeType.TOPIC)
    queue = Queue("o'rders", arguments={
        "x-message-ttl": 5000, "x-max-length": 10, "x-overflow": "reject-publish", "x-max-priority": 4,
        "x-dead-letter-exchange": "gone", "x-custom": "kept",
    })
    topology.add_node(exchange)
    topology.add_node(queue)
    topology.add_binding(Binding(exchange.id, queue.id, "o.#"))
    spring = generate(topology, queue.id)[-1].code
    bindings, rabbit = _rabbit(spring)
    consumer = rabbit["handle-in-0"]["consumer"]
    assert bindings["handle-in-0"]["group"] == "o'rders"
    assert consumer["ttl"] == 5000
    assert consumer["maxLength"] == 10
    assert consumer["overflowBehavior"] == "reject-publish"
    assert consumer["maxPriority"] == 4
    assert consumer["deadLetterExchange"] == "gone"
    assert consumer["declareDlx"] is True  # not in the design: the binder declares it
    assert "autoBindDlq" not in consumer
    assert "# Queue arguments the binder has no property for (set them by policy): 'x-custom'" in spring
    assert rabbit["send-out-0"]["producer"]["routingKeyExpression"] == "'o'"


def test_quotes_in_a_routing_key_are_doubled_in_the_spel_literal() -> None:
    topology = Topology()
    queue = Queue("it's")
    topology.add_node(queue)
    _, rabbit = _rabbit(generate(topology, queue.id)[-1].code)
    assert rabbit["send-out-0"]["producer"]["routingKeyExpression"] == "'it''s'"
    assert rabbit["send-out-0"]["producer"]["declareExchange"] is False
    assert rabbit["handle-in-0"]["consumer"]["bindQueue"] is False


def test_kafka_binder_block_has_destination_group_dlq_and_acks() -> None:
    topology = Topology()
    topic = Topic("orders", partitions=6, configs={"cleanup.policy": "compact"})
    topology.add_node(topic)
    group = ConsumerGroup("billing", topics=[topic.id])
    topology.add_node(group)
    tree = parse_yaml(generate(topology, group.id)[-1].code)
    stream = tree["spring"]["cloud"]["stream"]
    assert stream["bindings"]["handle-in-0"]["destination"] == "orders"
    assert stream["bindings"]["handle-in-0"]["group"] == "billing"
    assert stream["kafka"]["binder"]["requiredAcks"] == "all"
    assert stream["kafka"]["binder"]["minPartitionCount"] == 6
    assert stream["kafka"]["bindings"]["handle-in-0"]["consumer"]["enableDlq"] is True
    assert stream["kafka"]["bindings"]["send-out-0"]["producer"]["topic"]["properties"] == {
        "[cleanup.policy]": "compact"
    }


@pytest.mark.parametrize(
    "text",
    ["yes", "No", "null", "123", "a: b", "#x", "- x", "'q'", '"', "\\", "tab\there", "\u2028", "\ufeff",
     "\x85", "\x00", "😀", "ü", "\ud800", "${X:y}", ""],
)
def test_yaml_scalars_read_back_as_the_same_string(text: str) -> None:
    rendered = yaml_scalar(text)
    assert "\n" not in rendered and "\u2028" not in rendered and "\x85" not in rendered
    assert _scalar(rendered) == text
    assert yaml_quoted(text).startswith('"')
