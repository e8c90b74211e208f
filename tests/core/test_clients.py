"""Producer and consumer nodes: model, validation, lint, commands (removal clears references, undo
restores them), the project file, and their absence from definitions and plans."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mqstudio import cli
from mqstudio.core import fileformat
from mqstudio.core.commands import AddNode, RemoveNodes, SetArgument, SetNodeField, UndoStack
from mqstudio.core.definitions import export_definitions
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import (
    DuplicateNameError,
    FileFormatError,
    InvalidArgumentError,
    InvalidNameError,
    UnknownObjectError,
)
from mqstudio.core.model import (
    Consumer,
    ConsumerGroup,
    Exchange,
    Node,
    NodeKind,
    Producer,
    Queue,
    Topic,
    Topology,
)
from mqstudio.core.plan import plan
from mqstudio.core.validation import (
    Severity,
    check_node,
    lint,
    validate_consumer,
    validate_node,
    validate_producer,
)


def design() -> TopologyDocument:
    """orders (exchange) → jobs (queue, with DLX) / plain (queue); events (topic) ← analytics (group)."""
    t = Topology()
    nodes: list[Node] = [
        Exchange("orders", id="ex-orders"),
        Exchange("dlx", id="ex-dlx"),
        Queue("jobs", arguments={"x-dead-letter-exchange": "dlx"}, id="q-jobs"),
        Queue("plain", id="q-plain"),
        Topic("events", id="t-events"),
        ConsumerGroup("analytics", topics=["t-events"], id="cg-analytics"),
        Producer("web", target="ex-orders", routing_key="order.new", rate=5.0, headers={"a": 1}, id="p-web"),
        Producer("tracker", target="t-events", id="p-tracker"),
        Consumer("worker", source="q-jobs", prefetch=20, processing_ms=15, failure_rate=0.1, id="c-worker"),
        Consumer("reader", source="cg-analytics", id="c-reader"),
    ]
    for node in nodes:
        t.add_node(node)
    return TopologyDocument(topology=t, layout={"p-web": (1.0, 2.0)}, metadata={})


def state(doc: TopologyDocument) -> Any:
    t = doc.topology
    return copy.deepcopy(([(n.id, n) for n in t.nodes], t.bindings, dict(doc.layout)))


# -- model ----------------------------------------------------------------------------------------
def test_new_clients_have_kinds_defaults_and_prefixed_ids() -> None:
    p, c = Producer("p"), Consumer("c")
    assert (p.kind, c.kind) == (NodeKind.PRODUCER, NodeKind.CONSUMER)
    assert (NodeKind.PRODUCER.value, NodeKind.CONSUMER.value) == ("producer", "consumer")
    assert (p.target, p.routing_key, p.rate, p.headers) == ("", "", 1.0, {})
    assert (c.source, c.prefetch, c.processing_ms, c.failure_rate) == ("", 10, 0, 0.0)
    assert p.id.startswith("p-") and c.id.startswith("c-")
    assert Producer("x").headers is not Producer("y").headers


def test_topology_lists_and_finds_clients_by_kind() -> None:
    t = design().topology
    assert [p.id for p in t.producers] == ["p-web", "p-tracker"]
    assert [c.id for c in t.consumers] == ["c-worker", "c-reader"]
    assert t.find_node(NodeKind.PRODUCER, "web") is t.node("p-web")
    assert t.find_node(NodeKind.CONSUMER, "web") is None
    assert [p.id for p in t.producers_of("ex-orders")] == ["p-web"]
    assert [c.id for c in t.consumers_of("q-jobs")] == ["c-worker"]
    assert t.label("c-worker") == "consumer 'worker'"


def test_client_names_are_unique_per_kind_without_vhosts() -> None:
    t = design().topology
    t.add_node(Consumer("web"))  # a consumer may share a producer's name
    with pytest.raises(DuplicateNameError):
        t.add_node(Producer("web"))


# -- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({}, None),
        ({"rate": 0.001}, None),
        ({"rate": 7}, None),
        ({"name": ""}, "name"),
        ({"name": "é" * 128}, "name"),
        ({"rate": 0}, "rate"),
        ({"rate": -1.0}, "rate"),
        ({"rate": float("inf")}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"rate": True}, "rate"),
        ({"rate": "5"}, "rate"),
        ({"target": None}, "target"),
        ({"routing_key": 3}, "routing_key"),
        ({"routing_key": "k" * 256}, "routing_key"),
        ({"headers": []}, "headers"),
        ({"headers": {"when": object()}}, "headers.when"),
        ({"payload": '{"n": {{seq}}}', "priority": 0, "ttl_ms": 0}, None),
        ({"priority": 255, "ttl_ms": 60_000}, None),
        ({"payload": 3}, "payload"),
        ({"priority": -1}, "priority"),
        ({"priority": 256}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"priority": True}, "priority"),
        ({"ttl_ms": -1}, "ttl_ms"),
        ({"ttl_ms": "5"}, "ttl_ms"),
    ],
)
def test_validate_producer(changes: dict[str, Any], path: str | None) -> None:
    p = Producer(**{"name": "web", "target": "ex-1", **changes})
    problems = validate_producer(p, "producers[0]")
    if path is None:
        assert problems == []
    else:
        assert [pr.path for pr in problems] == [f"producers[0].{path}"]
        assert validate_node(p) != []


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({}, None),
        ({"prefetch": 0}, None),
        ({"prefetch": 65535}, None),
        ({"failure_rate": 1}, None),
        ({"failure_rate": 0.0}, None),
        ({"name": ""}, "name"),
        ({"prefetch": -1}, "prefetch"),
        ({"prefetch": 65536}, "prefetch"),
        ({"prefetch": 1.5}, "prefetch"),
        ({"processing_ms": -1}, "processing_ms"),
        ({"processing_ms": False}, "processing_ms"),
        ({"failure_rate": -0.1}, "failure_rate"),
        ({"failure_rate": 1.01}, "failure_rate"),
        ({"failure_rate": "0.5"}, "failure_rate"),
        ({"source": 3}, "source"),
        ({"requeue_rate": 1}, None),
        ({"requeue_rate": 0.3, "failure_rate": 0.7}, None),
        ({"requeue_rate": -0.1}, "requeue_rate"),
        ({"requeue_rate": 1.5}, "requeue_rate"),
        ({"requeue_rate": "0.1"}, "requeue_rate"),
        ({"requeue_rate": 0.5, "failure_rate": 0.6}, "requeue_rate"),
        ({"requeue_rate": 0.5, "failure_rate": 1.5}, "failure_rate"),
    ],
)
def test_validate_consumer(changes: dict[str, Any], path: str | None) -> None:
    c = Consumer(**{"name": "worker", "source": "q-1", **changes})
    problems = validate_consumer(c, "consumers[0]")
    if path is None:
        assert problems == []
        check_node(c)
    else:
        assert [pr.path for pr in problems] == [f"consumers[0].{path}"]
        with pytest.raises(InvalidArgumentError) as info:
            check_node(c)
        assert info.value.path == path


# -- lint -----------------------------------------------------------------------------------------
def codes(t: Topology, object_id: str) -> list[tuple[Severity, str]]:
    return [(f.severity, f.code) for f in lint(t) if f.object_id == object_id]


def test_a_wired_design_has_no_client_findings() -> None:
    t = design().topology
    for client in ("p-web", "p-tracker", "c-reader"):
        assert codes(t, client) == []
    t.set_node_field("c-worker", "failure_rate", 0.0)
    t.set_node_field("c-worker", "source", "q-plain")
    assert codes(t, "c-worker") == []


@pytest.mark.parametrize(
    ("target", "words"),
    [("", "has no target"), ("ex-gone", "'ex-gone', which is not a node"), ("q-jobs", "queue 'jobs'")],
)
def test_producer_without_a_usable_target_is_a_warning(target: str, words: str) -> None:
    t = design().topology
    t.set_node_field("p-web", "target", target)
    findings = [f for f in lint(t) if f.object_id == "p-web"]
    assert [(f.severity, f.code) for f in findings] == [(Severity.WARNING, "producer-target-missing")]
    assert words in findings[0].message


@pytest.mark.parametrize("source", ["", "q-gone", "ex-orders", "t-events"])
def test_consumer_without_a_usable_source_is_a_warning(source: str) -> None:
    t = design().topology
    t.set_node_field("c-reader", "source", source)
    assert codes(t, "c-reader") == [(Severity.WARNING, "consumer-source-missing")]


def test_failing_consumer_on_a_queue_without_dlx_is_info() -> None:
    t = design().topology
    t.set_node_field("c-worker", "source", "q-plain")
    findings = [f for f in lint(t) if f.object_id == "c-worker"]
    assert [(f.severity, f.code) for f in findings] == [(Severity.INFO, "consumer-rejects-dropped")]
    assert "10%" in findings[0].message and "queue 'plain'" in findings[0].message
    t.set_node_field("c-worker", "source", "q-jobs")  # has a DLX
    assert codes(t, "c-worker") == []
    t.set_node_field("c-reader", "failure_rate", 0.5)  # Kafka: no rejection, no dead-lettering
    assert codes(t, "c-reader") == []


# -- commands -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("removed", "cleared"),
    [
        (["ex-orders"], {"p-web": "target"}),
        (["t-events"], {"p-tracker": "target"}),
        (["q-jobs"], {"c-worker": "source"}),
        (["cg-analytics"], {"c-reader": "source"}),
        (
            ["ex-orders", "q-jobs", "cg-analytics", "t-events"],
            {"p-web": "target", "p-tracker": "target", "c-worker": "source", "c-reader": "source"},
        ),
    ],
)
def test_removing_a_referenced_node_clears_the_reference_and_undo_restores_it(
    removed: list[str], cleared: dict[str, str]
) -> None:
    doc = design()
    before = state(doc)
    stack = UndoStack(doc)
    changed: list[tuple[str, str]] = []
    doc.topology.node_changed.connect(lambda node, field: changed.append((node.id, field)))
    stack.push(RemoveNodes(doc, removed))
    t = doc.topology
    for client_id, field in cleared.items():
        assert getattr(t.node(client_id), field) == ""
        assert (client_id, field) in changed
    fresh = design().topology
    for client_id in ("p-web", "p-tracker", "c-worker", "c-reader"):
        if client_id not in cleared:
            assert t.node(client_id) == fresh.node(client_id)
    stack.undo()
    assert state(doc) == before
    stack.redo()
    assert all(getattr(t.node(cid), f) == "" for cid, f in cleared.items())
    stack.undo()
    assert state(doc) == before


def test_removing_a_client_with_its_target_restores_both() -> None:
    doc = design()
    before = state(doc)
    stack = UndoStack(doc)
    stack.push(RemoveNodes(doc, ["p-web", "ex-orders"]))
    assert "p-web" not in doc.topology and "ex-orders" not in doc.topology
    stack.undo()
    assert state(doc) == before
    assert doc.layout["p-web"] == (1.0, 2.0)


@pytest.mark.parametrize(
    ("node_id", "field", "value"),
    [
        ("p-web", "rate", 12.5),
        ("p-web", "routing_key", "order.old"),
        ("p-web", "target", "t-events"),
        ("p-web", "target", ""),
        ("p-web", "headers", {"b": [1, "x"]}),
        ("c-worker", "prefetch", 0),
        ("c-worker", "processing_ms", 250),
        ("c-worker", "failure_rate", 1.0),
        ("c-worker", "source", "cg-analytics"),
        ("c-worker", "source", ""),
    ],
)
def test_set_node_field_edits_client_fields_and_undoes(node_id: str, field: str, value: Any) -> None:
    doc = design()
    before = state(doc)
    stack = UndoStack(doc)
    stack.push(SetNodeField(doc, node_id, field, value))
    assert getattr(doc.topology.node(node_id), field) == value
    stack.undo()
    assert state(doc) == before


@pytest.mark.parametrize(
    ("node_id", "field", "value", "error"),
    [
        ("p-web", "rate", 0, InvalidArgumentError),
        ("p-web", "rate", "fast", InvalidArgumentError),
        ("p-web", "target", "q-jobs", InvalidArgumentError),
        ("p-web", "target", "nowhere", UnknownObjectError),
        ("p-web", "name", "", InvalidNameError),
        ("p-web", "name", "tracker", DuplicateNameError),
        ("c-worker", "prefetch", 65536, InvalidArgumentError),
        ("c-worker", "processing_ms", -5, InvalidArgumentError),
        ("c-worker", "failure_rate", 2, InvalidArgumentError),
        ("c-worker", "source", "ex-orders", InvalidArgumentError),
        ("c-worker", "source", "nowhere", UnknownObjectError),
        ("c-worker", "vhost", "other", InvalidArgumentError),
    ],
)
def test_set_node_field_refuses_bad_client_values(
    node_id: str, field: str, value: Any, error: type[Exception]
) -> None:
    doc = design()
    before = state(doc)
    with pytest.raises(error) as info:
        UndoStack(doc).push(SetNodeField(doc, node_id, field, value))
    assert getattr(info.value, "path", None) == field
    assert state(doc) == before


def test_set_argument_edits_producer_headers() -> None:
    doc = design()
    stack = UndoStack(doc)
    stack.push(SetArgument(doc, "p-web", "tenant", "acme"))
    assert doc.topology.node("p-web").headers == {"a": 1, "tenant": "acme"}  # type: ignore[union-attr]
    stack.undo()
    assert doc.topology.node("p-web").headers == {"a": 1}  # type: ignore[union-attr]
    with pytest.raises(InvalidArgumentError):
        stack.push(SetArgument(doc, "c-worker", "x", 1))


def test_add_node_refuses_an_invalid_client() -> None:
    doc = design()
    with pytest.raises(InvalidArgumentError) as info:
        UndoStack(doc).push(AddNode(doc, Consumer("slow", prefetch=-1)))
    assert info.value.path == "prefetch"
    assert doc.topology.find_node(NodeKind.CONSUMER, "slow") is None


# -- project file ---------------------------------------------------------------------------------
def test_project_file_round_trip_keeps_clients_ids_and_references() -> None:
    doc = design()
    text = fileformat.dumps(doc)
    loaded = fileformat.loads(text)
    assert {n.id: n for n in loaded.topology.nodes} == {n.id: n for n in doc.topology.nodes}
    assert fileformat.dumps(loaded) == text
    topology = json.loads(text)["topology"]
    assert [p["id"] for p in topology["producers"]] == ["p-tracker", "p-web"]  # sorted by name
    assert topology["consumers"][1] == {
        "id": "c-worker",
        "name": "worker",
        "source": "q-jobs",
        "prefetch": 20,
        "processing_ms": 15,
        "failure_rate": 0.1,
    }


def test_per_node_message_fields_round_trip_and_are_written_only_when_set() -> None:
    doc = design()
    t = doc.topology
    t.set_node_field("p-web", "payload", '{"order": {{seq}}}')
    t.set_node_field("p-web", "priority", 0)  # 0 is set, not the default
    t.set_node_field("p-web", "ttl_ms", 5000)
    t.set_node_field("c-worker", "requeue_rate", 0.25)
    text = fileformat.dumps(doc)
    loaded = fileformat.loads(text)
    assert {n.id: n for n in loaded.topology.nodes} == {n.id: n for n in t.nodes}
    assert fileformat.dumps(loaded) == text
    records = json.loads(text)["topology"]
    web = next(p for p in records["producers"] if p["id"] == "p-web")
    assert (web["payload"], web["priority"], web["ttl_ms"]) == ('{"order": {{seq}}}', 0, 5000)
    tracker = next(p for p in records["producers"] if p["id"] == "p-tracker")
    assert not {"payload", "priority", "ttl_ms"} & tracker.keys()
    assert records["consumers"][1]["requeue_rate"] == 0.25
    assert "requeue_rate" not in records["consumers"][0]


def test_null_priority_and_ttl_read_as_unset() -> None:
    data = {
        "format": "mqstudio/1",
        "topology": {"producers": [{"id": "p", "name": "p", "priority": None, "ttl_ms": None}]},
    }
    p = fileformat.loads(json.dumps(data)).topology.node("p")
    assert isinstance(p, Producer) and (p.priority, p.ttl_ms, p.payload) == (None, None, "")


def test_save_and_load_from_disk(tmp_path: Path) -> None:
    doc = design()
    fileformat.save(doc, tmp_path / "clients.mqs.json")
    loaded = fileformat.load(tmp_path / "clients.mqs.json")
    assert {n.id: n for n in loaded.topology.nodes} == {n.id: n for n in doc.topology.nodes}
    assert loaded.layout == doc.layout


def test_files_without_clients_neither_need_nor_get_the_keys() -> None:
    old = {"format": "mqstudio/1", "topology": {"queues": [{"id": "q", "name": "q"}]}}
    doc = fileformat.loads(json.dumps(old))
    assert doc.topology.producers == [] and doc.topology.consumers == []
    topology = json.loads(fileformat.dumps(doc))["topology"]
    assert "producers" not in topology and "consumers" not in topology


def test_minimal_client_records_take_defaults() -> None:
    data = {
        "format": "mqstudio/1",
        "topology": {
            "producers": [{"id": "p", "name": "p", "rate": 3}],
            "consumers": [{"id": "c", "name": "c"}],
        },
    }
    t = fileformat.loads(json.dumps(data)).topology
    assert t.node("p") == Producer("p", rate=3.0, id="p")
    assert isinstance(t.node("p").rate, float)  # type: ignore[union-attr]
    assert t.node("c") == Consumer("c", id="c")


@pytest.mark.parametrize(
    ("topology", "paths"),
    [
        ({"producers": [{"id": "p", "name": "p", "target": "gone"}]}, ["topology.producers[0].target"]),
        (
            {"queues": [{"id": "q", "name": "q"}], "producers": [{"id": "p", "name": "p", "target": "q"}]},
            ["topology.producers[0].target"],
        ),
        ({"consumers": [{"id": "c", "name": "c", "source": "gone"}]}, ["topology.consumers[0].source"]),
        (
            {"topics": [{"id": "t", "name": "t"}], "consumers": [{"id": "c", "name": "c", "source": "t"}]},
            ["topology.consumers[0].source"],
        ),
        ({"producers": [{"id": "p", "name": "p", "rate": 0}]}, ["topology.producers[0].rate"]),
        ({"producers": [{"id": "p", "name": "p", "rate": "1"}]}, ["topology.producers[0].rate"]),
        ({"producers": [{"id": "p", "name": "p", "colour": "red"}]}, ["topology.producers[0].colour"]),
        ({"producers": [{"name": "p"}]}, ["topology.producers[0].id"]),
        ({"consumers": [{"id": "c", "name": "c", "prefetch": 1.5}]}, ["topology.consumers[0].prefetch"]),
        (
            {"consumers": [{"id": "c", "name": "c", "failure_rate": 3}]},
            ["topology.consumers[0].failure_rate"],
        ),
        (
            {"consumers": [{"id": "c", "name": "c"}, {"id": "d", "name": "c"}]},
            ["topology.consumers[1].name"],
        ),
        ({"consumers": {"id": "c"}}, ["topology.consumers"]),
        ({"producers": [{"id": "p", "name": "p", "priority": 300}]}, ["topology.producers[0].priority"]),
        ({"producers": [{"id": "p", "name": "p", "ttl_ms": "1s"}]}, ["topology.producers[0].ttl_ms"]),
        ({"producers": [{"id": "p", "name": "p", "payload": {}}]}, ["topology.producers[0].payload"]),
        (
            {"consumers": [{"id": "c", "name": "c", "failure_rate": 0.8, "requeue_rate": 0.5}]},
            ["topology.consumers[0].requeue_rate"],
        ),
    ],
)
def test_bad_client_records_are_refused_with_their_paths(topology: dict[str, Any], paths: list[str]) -> None:
    with pytest.raises(FileFormatError) as info:
        fileformat.loads(json.dumps({"format": "mqstudio/1", "topology": topology}))
    assert [p.path for p in info.value.problems] == paths


# -- definitions, plan, cli -----------------------------------------------------------------------
def test_definitions_export_drops_clients() -> None:
    doc = design()
    exported = export_definitions(doc)
    text = json.dumps(exported)
    assert "web" not in text and "worker" not in text
    assert sorted(e["name"] for e in exported["exchanges"]) == ["dlx", "orders"]


def test_plan_ignores_clients() -> None:
    only_clients = Topology()
    only_clients.add_node(Producer("web"))
    only_clients.add_node(Consumer("worker"))
    assert plan(only_clients, Topology(), prune=True).is_empty
    assert plan(Topology(), only_clients, prune=True).is_empty


def test_cli_convert_notes_clients_left_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "clients.mqs.json"
    fileformat.save(design(), source)
    code = cli.main(["convert", str(source), str(tmp_path / "defs.json")])
    err = capsys.readouterr().err
    assert code == 0
    assert "2 Kafka objects and 4 clients left out" in err
