"""RabbitMQ definitions JSON: import into the model, export back unchanged, refuse bad files whole."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mqstudio.core import fileformat
from mqstudio.core.definitions import (
    IMPORT_KEY,
    METADATA_KEY,
    detect_format,
    export_definitions,
    import_definitions,
)
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import FileFormatError
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topic, Topology

DATA = Path(__file__).resolve().parents[1] / "data"
CLUSTER = DATA / "rabbitmq_definitions_cluster.json"
VHOST = DATA / "rabbitmq_definitions_vhost.json"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def normalized(value: Any) -> Any:
    """The same JSON with every list sorted, so export order does not matter (RabbitMQ's does not)."""
    if isinstance(value, dict):
        return {key: normalized(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((normalized(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    return value


def refused(data: dict[str, Any] | str) -> FileFormatError:
    with pytest.raises(FileFormatError) as info:
        import_definitions(data if isinstance(data, str) else copy.deepcopy(data), source="defs.json")
    return info.value


def minimal(**parts: Any) -> dict[str, Any]:
    return {"rabbit_version": "3.13.7", "vhosts": [{"name": "/"}], **parts}


# -- import ---------------------------------------------------------------------------------------


def test_cluster_export_imports_exchanges_queues_and_bindings_of_every_vhost() -> None:
    topology = import_definitions(CLUSTER.read_text(), str(CLUSTER)).topology
    assert sorted(q.name for q in topology.queues if q.vhost == "/") == [
        "mqtt-subscription-sensor1qos1",
        "orders.archive",
        "orders.created",
        "orders.dead",
    ]
    assert [q.name for q in topology.queues if q.vhost == "billing"] == ["invoices", "invoices.eu"]
    assert topology.vhosts == ["/", "billing"]
    assert len(topology.bindings) == 8
    created = topology.find_queue("orders.created")
    assert created is not None and created.arguments["x-delivery-limit"] == 5
    delayed = topology.find_exchange("orders.scheduled")
    assert delayed is not None and delayed.type is ExchangeType.DELAYED and delayed.delayed_type == "topic"


def test_exchange_to_exchange_bindings_resolve_to_node_ids() -> None:
    topology = import_definitions(load(CLUSTER)).topology
    orders, audit = topology.find_exchange("orders"), topology.find_exchange("orders.audit")
    assert orders is not None and audit is not None
    assert [(b.destination, b.routing_key) for b in topology.bindings_from(orders.id)].count(
        (audit.id, "#")
    ) == 1


def test_headers_binding_arguments_are_kept() -> None:
    topology = import_definitions(load(CLUSTER)).topology
    billing = topology.find_exchange("billing.events", "billing")
    assert billing is not None
    assert {"x-match": "all", "kind": "invoice"} in [b.arguments for b in topology.bindings_from(billing.id)]


def test_builtin_exchange_referenced_by_a_binding_becomes_a_node_marked_builtin() -> None:
    document = import_definitions(load(CLUSTER))
    amq_topic = document.topology.find_exchange("amq.topic")
    assert amq_topic is not None and amq_topic.type is ExchangeType.TOPIC
    assert document.metadata[IMPORT_KEY]["builtin_exchanges"] == [amq_topic.id]
    mqtt = document.topology.find_queue("mqtt-subscription-sensor1qos1")
    assert mqtt is not None
    assert [b.source for b in document.topology.bindings_to(mqtt.id)] == [amq_topic.id]


def test_builtin_exchanges_listed_in_the_file_are_skipped() -> None:
    data = minimal(
        exchanges=[{"name": "amq.direct", "vhost": "/", "type": "direct"}, {"name": "", "vhost": "/"}]
    )
    assert import_definitions(data).topology.exchanges == []


def test_everything_that_is_not_a_queue_exchange_or_binding_is_kept_in_metadata() -> None:
    original = load(CLUSTER)
    kept = import_definitions(copy.deepcopy(original)).metadata[METADATA_KEY]
    assert set(kept) == set(original) - {"queues", "exchanges", "bindings"}
    for key in ("users", "permissions", "topic_permissions", "policies", "parameters", "global_parameters"):
        assert kept[key] == original[key]


def test_per_vhost_export_is_imported_into_the_given_vhost() -> None:
    document = import_definitions(VHOST.read_text(), str(VHOST), vhost="jobs")
    assert {n.vhost for n in document.topology.nodes} == {"jobs"}
    assert "jobs" in document.topology.vhosts
    assert document.metadata[IMPORT_KEY]["vhost"] == "jobs"
    retry = document.topology.find_queue("work.retry.2", "jobs")
    assert retry is not None and retry.message_ttl == 10000


def test_import_accepts_text_bytes_and_parsed_data_alike() -> None:
    text = VHOST.read_text()
    counts = {
        len(import_definitions(value).topology.nodes) for value in (text, text.encode(), json.loads(text))
    }
    assert counts == {7}


# -- round trip ----------------------------------------------------------------------------------


def test_cluster_export_round_trips_to_equal_json() -> None:
    original = load(CLUSTER)
    exported = export_definitions(import_definitions(copy.deepcopy(original)))
    assert normalized(exported) == normalized(original)


def test_per_vhost_export_round_trips_to_equal_json() -> None:
    original = load(VHOST)
    exported = export_definitions(import_definitions(copy.deepcopy(original), vhost="/"), vhost="/")
    assert normalized(exported) == normalized(original)


def test_round_trip_through_a_saved_project_file_gives_the_same_definitions(tmp_path: Path) -> None:
    original = load(CLUSTER)
    target = tmp_path / "cluster.mqs.json"
    fileformat.save(import_definitions(copy.deepcopy(original)), target)
    exported = export_definitions(fileformat.load(target))
    assert normalized(exported) == normalized(original)


def test_fields_mqstudio_does_not_model_are_written_back() -> None:
    data = minimal(
        queues=[
            {
                "name": "q",
                "vhost": "/",
                "durable": True,
                "auto_delete": False,
                "arguments": {},
                "type": "classic",
            }
        ],
        exchanges=[{"name": "e", "vhost": "/", "type": "fanout", "arguments": {}, "future": {"x": 1}}],
        bindings=[
            {
                "source": "e",
                "vhost": "/",
                "destination": "q",
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {},
                "properties_key": "~",
            }
        ],
    )
    exported = export_definitions(import_definitions(copy.deepcopy(data)))
    assert exported["queues"][0]["type"] == "classic"
    assert exported["exchanges"][0]["future"] == {"x": 1}
    assert exported["bindings"][0]["properties_key"] == "~"


def test_export_reflects_edits_made_after_import() -> None:
    document = import_definitions(load(VHOST), vhost="/")
    work = document.topology.find_queue("work")
    assert work is not None
    document.topology.set_node_field(work.id, "arguments", {**work.arguments, "x-max-length": 10})
    exported = export_definitions(document, vhost="/")
    assert next(q for q in exported["queues"] if q["name"] == "work")["arguments"]["x-max-length"] == 10


# -- export forms --------------------------------------------------------------------------------


def test_per_vhost_export_of_a_cluster_import_keeps_only_that_vhost_without_vhost_fields() -> None:
    exported = export_definitions(import_definitions(load(CLUSTER)), vhost="billing")
    for key in ("users", "vhosts", "permissions", "topic_permissions", "global_parameters"):
        assert key not in exported
    assert [q["name"] for q in exported["queues"]] == ["invoices", "invoices.eu"]
    assert [e["name"] for e in exported["exchanges"]] == ["billing.events"]
    assert len(exported["bindings"]) == 2
    assert [p["name"] for p in exported["policies"]] == ["billing-delivery-limit"]
    assert [p["component"] for p in exported["parameters"]] == ["vhost-limits"]
    for key in ("queues", "exchanges", "bindings", "policies", "parameters"):
        assert all("vhost" not in entry for entry in exported[key]), key
    assert exported["rabbitmq_version"] == "3.13.7"


def test_cluster_export_of_a_per_vhost_import_names_the_vhost_everywhere() -> None:
    exported = export_definitions(import_definitions(load(VHOST), vhost="jobs"))
    for key in ("queues", "exchanges", "bindings", "policies", "parameters"):
        assert {entry["vhost"] for entry in exported[key]} == {"jobs"}, key
    assert {"name": "jobs"} in exported["vhosts"]


def test_builtin_exchanges_are_not_exported_but_their_bindings_are() -> None:
    exported = export_definitions(import_definitions(load(CLUSTER)))
    assert not [e for e in exported["exchanges"] if e["name"].startswith("amq.")]
    assert [b["destination"] for b in exported["bindings"] if b["source"] == "amq.topic"] == [
        "mqtt-subscription-sensor1qos1"
    ]


def test_export_of_a_fresh_design_leaves_out_kafka_objects() -> None:
    topology = Topology()
    ex, q = Exchange("jobs", vhost="work"), Queue("jobs", vhost="work", exclusive=False)
    for node in (ex, q, Topic("events")):
        topology.add_node(node)
    topology.add_binding(Binding(ex.id, q.id, "jobs"))
    exported = export_definitions(TopologyDocument(topology))
    assert exported["vhosts"] == [{"name": "work"}]
    assert exported["queues"] == [
        {"name": "jobs", "vhost": "work", "durable": True, "auto_delete": False, "arguments": {}}
    ]
    assert exported["bindings"] == [
        {
            "source": "jobs",
            "vhost": "work",
            "destination": "jobs",
            "destination_type": "queue",
            "routing_key": "jobs",
            "arguments": {},
        }
    ]
    assert "topics" not in exported


# -- refusal -------------------------------------------------------------------------------------


def test_argument_problems_carry_the_definitions_path() -> None:
    data = load(CLUSTER)
    data["queues"][3]["arguments"]["x-max-priority"] = 300
    error = refused(data)
    assert [p.path for p in error.problems] == ["queues[3].arguments.x-max-priority"]


def test_every_problem_is_listed_and_nothing_is_built() -> None:
    data = minimal(
        exchanges=[
            {"name": "e", "vhost": "/", "type": ""},
            {"name": "d", "vhost": "/", "durable": "yes"},
        ],
        queues=[{"name": "q", "vhost": "/", "arguments": {"x-message-ttl": -1}}, "not an object"],
        bindings=[
            {"source": "e", "vhost": "/", "destination": "missing", "destination_type": "queue"},
            {"source": "", "vhost": "/", "destination": "q", "destination_type": "queue"},
            {"source": "e", "vhost": "/", "destination": "q"},
        ],
    )
    error = refused(data)
    assert [p.path for p in error.problems] == [
        "exchanges[0].type",
        "exchanges[1].durable",
        "queues[0].arguments.x-message-ttl",
        "queues[1]",
        "bindings[0].destination",
        "bindings[1].source",
        "bindings[2].destination_type",
    ]
    assert error.source == "defs.json"


def test_queue_names_are_unique_per_vhost() -> None:
    queue = {"name": "q", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}
    error = refused(minimal(queues=[queue, dict(queue)]))
    assert [p.path for p in error.problems] == ["queues[1].name"]


def test_bad_json_reports_line_and_column() -> None:
    error = refused('{"queues": [\n  {"name": "q",}\n]}')
    assert "line 2, column 16" in error.problems[0].message


def test_top_level_must_be_an_object() -> None:
    error = refused("[1, 2]")
    assert error.problems[0].message == "must be an object, not a list"


# -- detection -----------------------------------------------------------------------------------


def test_detect_format_tells_projects_from_definitions() -> None:
    assert detect_format(load(CLUSTER)) == "definitions"
    assert detect_format(load(VHOST)) == "definitions"
    assert detect_format({"format": "mqstudio/1"}) == "project"
    assert detect_format({"format": "mqstudio/9"}) == "project"


@pytest.mark.parametrize("data", [{"hello": 1}, [], "text", None])
def test_detect_format_refuses_anything_else(data: Any) -> None:
    with pytest.raises(FileFormatError, match="neither"):
        detect_format(data)
