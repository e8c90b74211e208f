"""Node creation from palette specs and copy/paste fragments (Qt-free command builders)."""

from __future__ import annotations

import pytest

from mqstudio.core.commands import UndoStack
from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Exchange, Queue
from mqstudio.ui.canvas.nodefactory import create_node_command, fragment_for, paste_command
from tests.ui.canvas.conftest import sample_document


@pytest.mark.parametrize(
    ("spec", "name", "arguments"),
    [
        ({"kind": "exchange", "type": "topic"}, "exchange.topic-1", {}),
        (
            {"kind": "exchange", "type": "x-delayed-message"},
            "exchange.delayed-1",
            {"x-delayed-type": "direct"},
        ),
        ({"kind": "queue", "type": "classic"}, "queue-1", {}),
        ({"kind": "queue", "type": "quorum"}, "queue.quorum-1", {"x-queue-type": "quorum"}),
        ({"kind": "producer"}, "producer-1", None),
        ({"kind": "consumer"}, "consumer-1", None),
        ({"kind": "topic"}, "topic-1", None),
        ({"kind": "consumer_group"}, "group-1", None),
    ],
)
def test_palette_specs_create_nodes_with_unique_default_names(
    spec: dict, name: str, arguments: dict | None
) -> None:
    doc = TopologyDocument()
    stack = UndoStack(doc)
    first = create_node_command(doc, spec, (20.0, 40.0))
    stack.push(first)
    assert first.node.name == name
    if arguments is not None:
        assert isinstance(first.node, Exchange | Queue) and first.node.arguments == arguments
    second = create_node_command(doc, spec, (20.0, 40.0))
    stack.push(second)
    assert second.node.name == name[:-1] + "2"
    assert doc.position(first.node.id) == (20.0, 40.0)


def test_unknown_kinds_and_types_are_refused() -> None:
    doc = TopologyDocument()
    with pytest.raises(ValueError, match="kind"):
        create_node_command(doc, {"kind": "router"}, (0.0, 0.0))
    with pytest.raises(ValueError, match="exchange type"):
        create_node_command(doc, {"kind": "exchange", "type": "nope"}, (0.0, 0.0))


def test_paste_keeps_references_outside_the_selection_when_they_still_exist() -> None:
    doc = sample_document()
    data = fragment_for(doc, ["p-web", "c-biller"])
    macro, new_ids = paste_command(doc, data)
    UndoStack(doc).push(macro)
    producer, consumer = (doc.topology.node(i) for i in new_ids)
    assert producer.target == "ex-orders"  # type: ignore[union-attr]
    assert consumer.source == "q-billing"  # type: ignore[union-attr]
    assert doc.position(new_ids[0]) == (-260.0, 40.0)
