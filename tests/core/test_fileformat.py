"""The mqstudio/1 project file: lossless round trip, stable text, refusal with every problem listed."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mqstudio.core import fileformat
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import FileFormatError
from mqstudio.core.model import Binding, ConsumerGroup, Exchange, ExchangeType, Queue, Topic, Topology
from mqstudio.core.validation import Severity, lint

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def sample_document() -> TopologyDocument:
    topology = Topology()
    orders = Exchange(
        "orders", ExchangeType.TOPIC, arguments={"alternate-exchange": "unrouted"}, id="ex-orders"
    )
    unrouted = Exchange("unrouted", ExchangeType.FANOUT, id="ex-unrouted")
    billing = Exchange("orders", ExchangeType.DIRECT, vhost="billing", id="ex-billing-orders")
    created = Queue(
        "orders.created", arguments={"x-queue-type": "quorum", "x-delivery-limit": 5}, id="q-created"
    )
    lost = Queue("lost", durable=False, auto_delete=True, id="q-lost")
    events = Topic(
        "events", partitions=6, replication_factor=3, configs={"retention.ms": "86400000"}, id="t-ev"
    )
    group = ConsumerGroup("analytics", topics=["t-ev"], id="cg-analytics")
    for node in (orders, unrouted, billing, created, lost, events, group):
        topology.add_node(node)
    topology.add_binding(Binding("ex-orders", "q-created", "order.created.*", id="b-1"))
    topology.add_binding(Binding("ex-unrouted", "q-lost", "", {"note": "all"}, id="b-2"))
    topology.add_binding(Binding("ex-orders", "ex-unrouted", "#", id="b-3"))
    topology.vhosts.append("empty-vhost")
    return TopologyDocument(
        topology=topology,
        layout={"ex-orders": (10.0, 20.5), "q-created": (300.0, -40.0)},
        metadata={"title": "Orders", "author": "ops"},
    )


def snapshot(document: TopologyDocument) -> dict[str, Any]:
    """Everything a file must keep, in a comparable form (ids included)."""
    t = document.topology
    return {
        "vhosts": sorted(t.vhosts),
        "nodes": sorted(t.nodes, key=lambda n: n.id),
        "bindings": t.bindings,
        "layout": dict(document.layout),
        "metadata": document.metadata,
    }


def project(**topology: Any) -> dict[str, Any]:
    return {"format": "mqstudio/1", "metadata": {}, "topology": topology, "layout": {}}


def refused(data: dict[str, Any] | str) -> FileFormatError:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(FileFormatError) as info:
        fileformat.loads(text, source="test.mqs.json")
    assert info.value.source == "test.mqs.json"
    return info.value


def paths(error: FileFormatError) -> list[str]:
    return [p.path for p in error.problems]


def test_dumps_then_loads_keeps_every_object_id_binding_position_and_metadata() -> None:
    original = sample_document()
    loaded = fileformat.loads(fileformat.dumps(original))
    assert snapshot(loaded) == snapshot(original)


def test_dumps_is_byte_stable_and_loading_does_not_reorder() -> None:
    text = fileformat.dumps(sample_document())
    assert fileformat.dumps(sample_document()) == text
    assert fileformat.dumps(fileformat.loads(text)) == text
    assert text.endswith("}\n")
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert text.splitlines()[1].startswith('  "')  # indent 2


def test_dumps_lists_nodes_by_vhost_then_name_whatever_the_insertion_order() -> None:
    a, b = Topology(), Topology()
    for t, names in ((a, ["zeta", "alpha"]), (b, ["alpha", "zeta"])):
        for name in names:
            t.add_node(Queue(name, id=f"q-{name}"))
    dumped_a = fileformat.dumps(TopologyDocument(topology=a, layout={}, metadata={}))
    dumped_b = fileformat.dumps(TopologyDocument(topology=b, layout={}, metadata={}))
    assert dumped_a == dumped_b
    assert [q["name"] for q in json.loads(dumped_a)["topology"]["queues"]] == ["alpha", "zeta"]


def test_json_syntax_error_is_reported_with_line_and_column() -> None:
    error = refused('{\n  "format": "mqstudio/1",\n  "topology": {,}\n}')
    assert len(error.problems) == 1
    assert "line 3, column 16" in error.problems[0].message


def test_nan_is_not_accepted_as_json() -> None:
    error = refused('{"format": "mqstudio/1", "layout": {"x": [NaN, 1]}}')
    assert "not valid JSON" in error.problems[0].message


def test_missing_format_says_it_is_not_an_mqstudio_project() -> None:
    error = refused({"topology": {}})
    assert paths(error) == ["format"]
    assert "not an mqstudio project" in error.problems[0].message


def test_future_format_version_is_refused_with_a_request_to_upgrade() -> None:
    error = refused({"format": "mqstudio/2", "topology": {"whatever": 1}})
    assert "upgrade mqstudio" in error.problems[0].message


def test_foreign_format_string_is_refused() -> None:
    error = refused({"format": "draw.io/1"})
    assert "not an mqstudio project format" in error.problems[0].message


def test_every_problem_in_a_file_is_listed_and_nothing_is_built() -> None:
    data = project(
        queues=[
            {"id": "q-1", "name": "a", "durable": "yes"},
            {"id": "q-1", "name": "b", "arguments": {"x-message-ttl": "soon"}},
        ],
        exchanges=[{"id": "ex-1", "name": "e", "type": 7}],
        bindings=[{"id": "b-1", "source": "ex-1", "destination": "q-missing"}],
    )
    error = refused(data)
    assert paths(error) == [
        "topology.exchanges[0].type",
        "topology.queues[0].durable",
        "topology.queues[1].arguments.x-message-ttl",
        "topology.queues[1].id",
        "topology.bindings[0].destination",
    ]
    assert "4 problems" not in str(error) and "5 problems found; nothing was loaded" in str(error)


def test_field_type_errors_name_the_expected_type() -> None:
    error = refused(project(queues=[{"id": "q", "name": "a", "durable": "yes"}]))
    assert error.problems[0].message == "must be true or false, not a string"


def test_value_rules_from_validation_are_reported_with_the_file_path() -> None:
    queue = {"id": "q", "name": "a", "arguments": {"x-queue-type": "quorum", "x-max-priority": 5}}
    error = refused(project(queues=[queue]))
    assert paths(error) == ["topology.queues[0].arguments.x-max-priority"]


def test_required_fields_are_reported_missing() -> None:
    error = refused(project(queues=[{"name": "a"}], bindings=[{"id": "b"}]))
    assert "topology.queues[0].id" in paths(error)
    assert "topology.bindings[0].source" in paths(error)
    assert "topology.bindings[0].destination" in paths(error)


def test_unknown_fields_are_refused_so_typos_do_not_vanish() -> None:
    error = refused(project(queues=[{"id": "q", "name": "a", "durabel": False}]))
    assert paths(error) == ["topology.queues[0].durabel"]


def test_names_must_be_unique_per_kind_and_vhost() -> None:
    error = refused(project(queues=[{"id": "q1", "name": "a"}, {"id": "q2", "name": "a"}]))
    assert paths(error) == ["topology.queues[1].name"]
    ok = project(queues=[{"id": "q1", "name": "a"}, {"id": "q2", "name": "a", "vhost": "other"}])
    assert len(fileformat.from_data(ok).topology.queues) == 2


def test_ids_must_be_unique_across_kinds() -> None:
    error = refused(project(queues=[{"id": "x", "name": "a"}], exchanges=[{"id": "x", "name": "a"}]))
    assert paths(error) == ["topology.queues[0].id"]


def test_binding_from_a_queue_is_refused() -> None:
    error = refused(
        project(
            queues=[{"id": "q", "name": "a"}, {"id": "r", "name": "b"}],
            bindings=[{"id": "b", "source": "q", "destination": "r"}],
        )
    )
    assert paths(error) == ["topology.bindings[0].source"]


def test_binding_across_vhosts_is_refused() -> None:
    error = refused(
        project(
            exchanges=[{"id": "e", "name": "e", "vhost": "a"}],
            queues=[{"id": "q", "name": "q", "vhost": "b"}],
            bindings=[{"id": "b", "source": "e", "destination": "q"}],
        )
    )
    assert paths(error) == ["topology.bindings[0]"]


def test_a_binding_declared_twice_loads_and_is_left_to_lint() -> None:
    data = project(
        exchanges=[{"id": "e", "name": "e"}],
        queues=[{"id": "q", "name": "q"}],
        bindings=[
            {"id": "b1", "source": "e", "destination": "q"},
            {"id": "b2", "source": "e", "destination": "q"},
        ],
    )
    document = fileformat.from_data(data)
    assert [f.code for f in lint(document.topology)].count("duplicate-binding") == 1


def test_headers_binding_with_bad_x_match_is_refused() -> None:
    error = refused(
        project(
            exchanges=[{"id": "e", "name": "e", "type": "headers"}],
            queues=[{"id": "q", "name": "q"}],
            bindings=[{"id": "b", "source": "e", "destination": "q", "arguments": {"x-match": "some"}}],
        )
    )
    assert paths(error) == ["topology.bindings[0].arguments.x-match"]


def test_consumer_group_must_subscribe_to_topics_of_the_file() -> None:
    error = refused(project(consumer_groups=[{"id": "g", "name": "g", "topics": ["t-missing"]}]))
    assert paths(error) == ["topology.consumer_groups[0].topics[0]"]


def test_layout_must_name_existing_nodes_and_hold_two_numbers() -> None:
    data = project(queues=[{"id": "q", "name": "a"}])
    data["layout"] = {"q": [1, "2"], "ghost": [0, 0]}
    error = refused(data)
    assert paths(error) == ["layout.q", "layout.ghost"]


def test_defaults_fill_optional_fields() -> None:
    document = fileformat.from_data(
        project(queues=[{"id": "q", "name": "a"}], exchanges=[{"id": "e", "name": "e"}])
    )
    assert document.topology.node("q") == Queue("a", id="q")
    assert document.topology.node("e") == Exchange("e", id="e")


def test_save_writes_atomically_and_load_reads_it_back(tmp_path: Path) -> None:
    target = tmp_path / "design.mqs.json"
    document = sample_document()
    fileformat.save(document, target)
    assert os.listdir(tmp_path) == ["design.mqs.json"]
    loaded = fileformat.load(target)
    assert snapshot(loaded) == snapshot(document)
    assert loaded.path == target


def test_failed_save_leaves_the_previous_file_untouched_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "design.mqs.json"
    fileformat.save(sample_document(), target)
    before = target.read_text()
    broken = sample_document()
    broken.metadata["bad"] = float("nan")
    with pytest.raises(ValueError):
        fileformat.save(broken, target)
    assert target.read_text() == before
    assert os.listdir(tmp_path) == ["design.mqs.json"]


def test_load_of_a_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        fileformat.load(tmp_path / "missing.mqs.json")


def test_loads_does_not_mutate_anything_when_refused() -> None:
    data = project(queues=[{"id": "q", "name": "a", "durable": 1}])
    frozen = copy.deepcopy(data)
    with pytest.raises(FileFormatError):
        fileformat.from_data(data)
    assert data == frozen


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.mqs.json")), ids=lambda p: p.name)
def test_shipped_examples_load_without_lint_errors_and_save_identically(example: Path) -> None:
    document = fileformat.load(example)
    assert document.topology.queues and document.topology.bindings
    assert not [f for f in lint(document.topology) if f.severity is Severity.ERROR]
    assert fileformat.dumps(document) == example.read_text(encoding="utf-8")


def test_there_are_shipped_examples() -> None:
    assert len(list(EXAMPLES.glob("*.mqs.json"))) >= 3
