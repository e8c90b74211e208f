"""TopologyDocument: layout as plain tuples, dirty tracking, node_moved, layout follows removals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mqstudio.core.commands import AddNode, RemoveNodes, UndoStack
from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Binding, Exchange, Queue, Topology


@pytest.fixture
def doc() -> TopologyDocument:
    t = Topology()
    t.add_node(Exchange("orders", id="ex"))
    t.add_node(Queue("billing", id="q"))
    t.add_binding(Binding("ex", "q", "k", id="b"))
    return TopologyDocument(t, layout={"ex": (0, 0), "q": (10, 20)}, metadata={"author": "me"})


def test_a_loaded_document_starts_clean_with_float_positions(doc: TopologyDocument) -> None:
    assert not doc.dirty
    assert doc.position("q") == (10.0, 20.0)
    assert all(isinstance(c, float) for pos in doc.layout.values() for c in pos)
    assert doc.metadata == {"author": "me"}


def test_a_new_document_has_an_empty_topology_and_no_path() -> None:
    doc = TopologyDocument()
    assert doc.topology.nodes == [] and doc.layout == {} and doc.path is None
    assert doc.title == "Untitled"


def test_constructor_copies_the_metadata_it_is_given() -> None:
    metadata: dict[str, Any] = {"a": 1}
    doc = TopologyDocument(metadata=metadata)
    metadata["a"] = 2
    assert doc.metadata == {"a": 1}


def test_set_position_emits_node_moved_and_marks_dirty(doc: TopologyDocument) -> None:
    moved: list[tuple[str, Any]] = []
    flips: list[bool] = []
    doc.node_moved.connect(lambda node_id, pos: moved.append((node_id, pos)))
    doc.dirty_changed.connect(flips.append)
    old = doc.set_position("q", (1, 2))
    assert old == (10.0, 20.0)
    assert moved == [("q", (1.0, 2.0))]
    assert doc.dirty and flips == [True]


def test_setting_the_same_position_is_not_a_change(doc: TopologyDocument) -> None:
    moved: list[Any] = []
    doc.node_moved.connect(lambda *args: moved.append(args))
    doc.set_position("q", (10.0, 20.0))
    assert moved == [] and not doc.dirty


def test_set_position_without_notify_is_silent_but_still_dirty(doc: TopologyDocument) -> None:
    moved: list[Any] = []
    doc.node_moved.connect(lambda *args: moved.append(args))
    doc.set_position("q", (5, 5), notify=False)
    assert moved == [] and doc.dirty and doc.position("q") == (5.0, 5.0)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.add_node(Queue("other")),
        lambda t: t.set_node_field("q", "durable", False),
        lambda t: t.remove_binding("b"),
        lambda t: t.set_binding_field("b", "routing_key", "x"),
        lambda t: t.add_binding(Binding("ex", "q", "other")),
    ],
)
def test_any_model_change_marks_the_document_dirty(doc: TopologyDocument, change: Any) -> None:
    change(doc.topology)
    assert doc.dirty


def test_mark_clean_clears_dirty_and_can_set_the_path(doc: TopologyDocument, tmp_path: Path) -> None:
    doc.set_position("q", (1, 1))
    assert doc.title == "Untitled*"
    doc.mark_clean(tmp_path / "shop.mqs.json")
    assert not doc.dirty
    assert doc.path == tmp_path / "shop.mqs.json"
    assert doc.title == "shop.mqs.json"


def test_removing_a_node_drops_its_layout_entry_and_undo_restores_it(doc: TopologyDocument) -> None:
    cmd = RemoveNodes(doc, ["q"])
    cmd.do()
    assert "q" not in doc.layout
    cmd.undo()
    assert doc.position("q") == (10.0, 20.0)


def test_restored_node_has_its_position_when_node_added_is_heard(doc: TopologyDocument) -> None:
    cmd = RemoveNodes(doc, ["q"])
    cmd.do()
    seen: list[Any] = []
    doc.topology.node_added.connect(lambda node: seen.append(doc.position(node.id)))
    moved: list[Any] = []
    doc.node_moved.connect(lambda *args: moved.append(args))
    cmd.undo()
    assert seen == [(10.0, 20.0)]
    assert moved == []  # nobody hears of a move of a node they have not been told exists


def test_undo_stack_keeps_dirty_in_step_with_saving(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    stack.push(AddNode(doc, Queue("audit", id="q2"), (3, 3)))
    assert doc.dirty
    stack.set_clean()  # saved
    stack.undo()
    assert doc.dirty and "q2" not in doc.layout
    stack.redo()
    assert not doc.dirty and doc.position("q2") == (3.0, 3.0)
