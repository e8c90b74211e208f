"""The reviewer's reproducers (RabbitMQ 4.1 exports the core refused or misjudged), adapted.

Two differ from the originals on purpose:
* lint sees policies only when given them: callers pass ``document_policies(document)``;
* a stream with ``x-dead-letter-exchange`` stays refused: RabbitMQ 3.10+ (4.1 included) refuses it in
  ``rabbit_amqqueue:check_declare_arguments`` (not in the stream type's ``queue_arguments``); the
  reproducer followed the 3.9-era ``rabbit_stream_queue:check_invalid_arguments``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mqstudio.core.definitions import export_definitions, import_definitions
from mqstudio.core.errors import FileFormatError
from mqstudio.core.fileformat import dumps, loads
from mqstudio.core.lint import lint
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topology
from mqstudio.core.plan import StepKind, plan
from mqstudio.core.policies import document_policies

EXPORT_4X: dict[str, Any] = {
    "rabbit_version": "4.1.0",
    "rabbitmq_version": "4.1.0",
    "product_name": "RabbitMQ",
    "vhosts": [{"name": "/", "metadata": {"default_queue_type": "classic"}}],
    "policies": [
        {
            "vhost": "/",
            "name": "dlx",
            "pattern": "^work$",
            "apply-to": "queues",
            "priority": 0,
            "definition": {"dead-letter-exchange": "dlx", "message-ttl": 60000},
        }
    ],
    "exchanges": [
        {
            "name": "lb",
            "vhost": "/",
            "type": "x-local-random",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        },
    ],
    "queues": [
        {
            "name": "work",
            "vhost": "/",
            "durable": True,
            "auto_delete": False,
            "arguments": {"x-queue-type": "classic"},
        },
    ],
    "bindings": [
        {
            "source": "lb",
            "vhost": "/",
            "destination": "work",
            "destination_type": "queue",
            "routing_key": "",
            "arguments": {},
        },
    ],
}


def export(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXPORT_4X)
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "kind",
    ["x-local-random", "x-consistent-hash", "x-modulus-hash", "x-random", "x-jms-topic", "x-recent-history"],
)
def test_import_keeps_plugin_and_4x_exchange_types_through_every_format(kind: str) -> None:
    data = export()
    data["exchanges"][0]["type"] = kind
    document = import_definitions(data)
    ex = document.topology.find_exchange("lb")
    assert ex is not None and ex.type == kind and not ex.type_known
    assert export_definitions(document)["exchanges"][0]["type"] == kind
    reloaded = loads(dumps(document)).topology.find_exchange("lb")
    assert reloaded is not None and reloaded.type == kind
    # Same type live and designed: nothing to do; another type live: a recreate naming both.
    assert plan(document.topology, document.topology).is_empty
    live = import_definitions(export()).topology
    result = plan(document.topology, live)
    if kind != "x-local-random":
        assert result.of_kind(StepKind.RECREATE_EXCHANGE)[0].reason == f"type x-local-random → {kind}"


def test_import_accepts_x_max_priority_zero() -> None:
    data = export()
    data["queues"][0]["arguments"]["x-max-priority"] = 0
    import_definitions(data)


def test_lint_sees_dlx_set_by_policy() -> None:
    data = export()
    data["exchanges"][0]["type"] = "fanout"
    data["exchanges"].append({"name": "dlx", "vhost": "/", "type": "fanout", "arguments": {}})
    data["queues"][0]["arguments"]["x-max-length"] = 1000
    doc = import_definitions(data)
    codes = [f.code for f in lint(doc.topology, policies=document_policies(doc))]
    assert "max-length-drops" not in codes, codes
    assert "ttl-without-dlx" not in codes, codes
    # Without the policies the same design is a trap, as before.
    assert "max-length-drops" in [f.code for f in lint(doc.topology)]


def test_recreate_queue_rebinds_unmanaged_live_binding_and_says_so() -> None:
    def topo(args: dict[str, Any], with_legacy: bool) -> Topology:
        t = Topology()
        q = Queue("work", arguments=args)
        t.add_node(q)
        if with_legacy:
            x = Exchange("legacy", ExchangeType.FANOUT)
            t.add_node(x)
            t.add_binding(Binding(x.id, q.id))
        return t

    desired = topo({"x-max-length": 10}, False)
    live = topo({}, True)
    p = plan(desired, live)
    assert [(s.kind, s.target) for s in p.steps] == [
        (StepKind.RECREATE_QUEUE, "queue 'work' in vhost '/'"),
        (StepKind.BIND, "'legacy' → queue 'work' in vhost '/'"),
    ]
    assert any("binding" in line and "legacy" in line for line in p.describe())


def test_import_accepts_at_least_once_without_queue_level_overflow() -> None:
    data = export()
    data["exchanges"][0]["type"] = "fanout"
    data["queues"][0]["arguments"] = {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-dead-letter-exchange": "dlx",
    }
    data["policies"] = [
        {
            "vhost": "/",
            "name": "ovf",
            "pattern": ".*",
            "apply-to": "queues",
            "priority": 0,
            "definition": {"overflow": "reject-publish"},
        }
    ]
    doc = import_definitions(data)
    assert "dead-letter-strategy-fallback" not in [
        f.code for f in lint(doc.topology, policies=document_policies(doc))
    ]
    assert "dead-letter-strategy-fallback" in [f.code for f in lint(doc.topology)]


@pytest.mark.parametrize("key", ["x-dead-letter-exchange", "x-max-length", "x-message-ttl", "x-queue-mode"])
def test_import_refuses_stream_arguments_rabbitmq_4_refuses(key: str) -> None:
    data = export()
    data["exchanges"][0]["type"] = "fanout"
    value = {"x-queue-mode": "lazy", "x-dead-letter-exchange": "dlx"}.get(key, 10)
    data["queues"][0]["arguments"] = {"x-queue-type": "stream", key: value}
    with pytest.raises(FileFormatError) as info:
        import_definitions(data)
    assert [p.path for p in info.value.problems] == [f"queues[0].arguments.{key}"]


def test_import_accepts_stream_retention_arguments() -> None:
    data = export()
    data["queues"][0]["arguments"] = {
        "x-queue-type": "stream",
        "x-max-length-bytes": 10_000_000,
        "x-max-age": "7D",
        "x-stream-max-segment-size-bytes": 500_000,
        "x-initial-cluster-size": 3,
    }
    import_definitions(data)
