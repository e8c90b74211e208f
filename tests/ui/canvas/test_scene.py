"""TopologyScene mirrors the model: items follow model events, undo and document replacement; selection
syncs both ways; findings, traced paths, auto-layout and exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPointF

from mqstudio.core.commands import AddNode, Bind, MoveNodes, RenameNode, SetArgument, SetNodeField
from mqstudio.core.document import TopologyDocument
from mqstudio.core.loading import load_any
from mqstudio.core.model import Exchange, ExchangeType, Queue
from mqstudio.core.validation import Finding, Severity, lint
from mqstudio.ui.canvas.items.edge import BindingEdge, binding_label
from mqstudio.ui.canvas.items.node import NodeItem, format_duration
from mqstudio.ui.canvas.items.queue import queue_badges
from tests.ui.canvas.conftest import Canvas, make_canvas, sample_document

EXAMPLES = sorted((Path(__file__).parents[3] / "resources" / "examples").glob("*.json"))


def _node_rects_overlap(items: list[NodeItem]) -> bool:
    rects = [item.mapRectToScene(item.body_rect()) for item in items]
    return any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_builds_an_item_for_every_node_and_binding(qtbot: Any, path: Path) -> None:
    canvas = make_canvas(qtbot, load_any(path))
    topology = canvas.doc.topology
    assert topology.nodes
    for node in topology.nodes:
        item = canvas.scene.item_for(node.id)
        assert isinstance(item, NodeItem) and item.title == node.name
        position = canvas.doc.position(node.id)
        if position is not None:
            assert (item.pos().x(), item.pos().y()) == position
    for binding in topology.bindings:
        assert isinstance(canvas.scene.item_for(binding.id), BindingEdge)
    assert len(canvas.scene.binding_edges()) == len(topology.bindings)


def test_model_events_add_change_move_and_remove_items(qtbot: Any) -> None:
    canvas = make_canvas(qtbot)
    queue = Queue("jobs")
    canvas.editor.execute(AddNode(canvas.doc, queue, (100.0, 60.0)))
    item = canvas.scene.node_item(queue.id)
    assert item is not None and item.pos() == QPointF(100, 60)
    canvas.editor.execute(RenameNode(canvas.doc, queue.id, "jobs.v2"))
    assert item.title == "jobs.v2"
    canvas.editor.execute(SetArgument(canvas.doc, queue.id, "x-message-ttl", 90_000))
    assert [b.text for b in item.badges] == ["TTL 1.5m"]
    canvas.editor.execute(MoveNodes(canvas.doc, {queue.id: (200.0, 0.0)}))
    assert item.pos() == QPointF(200, 0)
    for _ in range(4):
        canvas.editor.undo_stack.undo()
    assert canvas.scene.node_item(queue.id) is None
    canvas.editor.undo_stack.redo()
    assert canvas.scene.node_item(queue.id) is not None


def test_dead_letter_edge_follows_the_queue_argument(canvas: Canvas) -> None:
    keys = {e.key for e in canvas.scene.derived_edges()}
    assert ("dead-letter", "q-billing", "ex-dlx") in keys
    assert ("publishes", "p-web", "ex-orders") in keys
    assert ("consumes", "q-billing", "c-biller") in keys
    canvas.editor.execute(SetArgument(canvas.doc, "q-billing", "x-dead-letter-exchange", remove=True))
    assert ("dead-letter", "q-billing", "ex-dlx") not in {e.key for e in canvas.scene.derived_edges()}
    canvas.editor.undo_stack.undo()
    assert ("dead-letter", "q-billing", "ex-dlx") in {e.key for e in canvas.scene.derived_edges()}
    # renaming the DLX keeps the edge: the rename updates the reference in the same step
    canvas.editor.execute(RenameNode(canvas.doc, "ex-dlx", "orders.dead-letters"))
    assert ("dead-letter", "q-billing", "ex-dlx") in {e.key for e in canvas.scene.derived_edges()}


def test_alternate_exchange_and_producer_retarget_redraw_derived_edges(canvas: Canvas) -> None:
    canvas.editor.execute(SetArgument(canvas.doc, "ex-orders", "alternate-exchange", "orders.dlx"))
    assert ("alternate", "ex-orders", "ex-dlx") in {e.key for e in canvas.scene.derived_edges()}
    canvas.editor.execute(SetNodeField(canvas.doc, "p-web", "target", "ex-dlx"))
    keys = {e.key for e in canvas.scene.derived_edges()}
    assert ("publishes", "p-web", "ex-dlx") in keys and ("publishes", "p-web", "ex-orders") not in keys


def test_edges_follow_a_node_moved_by_the_model(canvas: Canvas) -> None:
    edge = canvas.scene.item_for("b-shipping")
    assert isinstance(edge, BindingEdge)
    end_before = edge.path().pointAtPercent(1)
    canvas.editor.execute(MoveNodes(canvas.doc, {"q-shipping": (300.0, 300.0)}))
    assert edge.path().pointAtPercent(1).y() == pytest.approx(end_before.y() + 200)


def test_binding_labels_show_keys_header_matches_and_nothing_for_fanout() -> None:
    direct = Exchange("d", ExchangeType.DIRECT)
    headers = Exchange("h", ExchangeType.HEADERS)
    fanout = Exchange("f", ExchangeType.FANOUT)
    from mqstudio.core.model import Binding

    assert binding_label(Binding("d", "q", "pay"), direct) == "pay"
    assert binding_label(Binding("h", "q", "", {"x-match": "all", "a": 1}), headers) == "x-match=all: a=1"
    assert binding_label(Binding("f", "q", "ignored"), fanout) == ""


def test_queue_badges_name_the_key_arguments_with_units() -> None:
    queue = Queue(
        "q",
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "dlx",
            "x-message-ttl": 30_000,
            "x-max-length": 50_000,
            "x-overflow": "reject-publish",
            "x-delivery-limit": 5,
        },
    )
    texts = [b.text for b in queue_badges(queue)]
    assert texts == ["DLX", "TTL 30s", "max 50k", "reject", "limit 5"]
    assert format_duration(250) == "250ms" and format_duration(3_600_000) == "1h"


def test_selection_syncs_both_ways_without_feedback(canvas: Canvas) -> None:
    emitted: list[list[str]] = []
    canvas.editor.selection_changed.connect(emitted.append)
    canvas.editor.select(["q-billing", "b-dead"])
    assert canvas.scene.node_item("q-billing").isSelected()  # type: ignore[union-attr]
    assert canvas.scene.item_for("b-dead").isSelected()  # type: ignore[union-attr]
    assert emitted == [["q-billing", "b-dead"]]
    canvas.scene.node_item("q-shipping").setSelected(True)  # type: ignore[union-attr]
    assert set(canvas.editor.selection) == {"q-billing", "b-dead", "q-shipping"}
    canvas.scene.clearSelection()
    assert canvas.editor.selection == []


def test_document_replaced_rebuilds_the_scene_and_drops_the_old_model(canvas: Canvas) -> None:
    old = canvas.doc
    fresh = TopologyDocument()
    queue = Queue("solo")
    fresh.topology.add_node(queue)
    canvas.editor.set_document(fresh)
    assert [i.node_id for i in canvas.scene.node_items()] == [queue.id]
    assert canvas.scene.binding_edges() == [] and canvas.scene.derived_edges() == []
    old.topology.add_node(Queue("ghost"))  # the old document is no longer mirrored
    assert len(canvas.scene.node_items()) == 1


def test_nodes_without_positions_are_shown_laid_out_without_touching_the_model(qtbot: Any) -> None:
    doc = sample_document()
    doc.layout.clear()
    canvas = make_canvas(qtbot, doc)
    assert not _node_rects_overlap(canvas.scene.node_items())
    assert canvas.doc.layout == {} and canvas.editor.undo_stack.count() == 0


def test_auto_layout_is_one_undo_step_without_overlapping_nodes(canvas: Canvas) -> None:
    before = canvas.snapshot()
    assert canvas.scene.auto_layout()
    assert canvas.editor.undo_stack.count() == 1
    assert not _node_rects_overlap(canvas.scene.node_items())
    pos = {n: canvas.doc.position(n) for n in ("p-web", "ex-orders", "q-billing", "c-biller", "ex-dlx")}
    assert pos["p-web"][0] < pos["ex-orders"][0] < pos["q-billing"][0] < pos["c-biller"][0]  # type: ignore[index]
    main_bottom = max(pos[n][1] for n in ("p-web", "ex-orders", "q-billing", "c-biller"))  # type: ignore[index]
    assert pos["ex-dlx"][1] > main_bottom  # type: ignore[index]  # dead-letter path below
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_auto_layout_of_examples_leaves_no_overlaps(qtbot: Any, path: Path) -> None:
    canvas = make_canvas(qtbot, load_any(path))
    canvas.scene.auto_layout()
    assert not _node_rects_overlap(canvas.scene.node_items())


def test_set_findings_marks_items_with_their_worst_severity(canvas: Canvas) -> None:
    findings = [
        Finding(Severity.INFO, "q-shipping", "queue-unbound", "info"),
        Finding(Severity.ERROR, "q-shipping", "dlx-missing", "bad DLX"),
        Finding(Severity.WARNING, "b-dead", "duplicate-binding", "twice"),
    ]
    canvas.scene.set_findings(findings)
    shipping = canvas.scene.node_item("q-shipping")
    assert shipping is not None and shipping.severity == "error" and "bad DLX" in shipping.tooltip_text()
    assert canvas.scene.item_for("b-dead").severity == "warning"  # type: ignore[union-attr]
    assert canvas.scene.node_item("q-billing").severity is None  # type: ignore[union-attr]
    canvas.scene.set_findings(lint(canvas.doc.topology))
    canvas.scene.set_findings([])
    assert all(item.severity is None for item in canvas.scene.node_items())


def test_highlight_path_numbers_nodes_and_lights_the_edges_between_them(canvas: Canvas) -> None:
    canvas.scene.highlight_path(["p-web", "ex-orders", "b-billing", "q-billing", "ex-dlx", "q-dead"])
    orders = [canvas.scene.node_item(i).highlight_order for i in ("p-web", "ex-orders", "q-billing")]  # type: ignore[union-attr]
    assert orders == [1, 2, 3]
    assert canvas.scene.item_for("b-billing").highlighted  # type: ignore[union-attr]
    assert canvas.scene.item_for("b-dead").highlighted  # type: ignore[union-attr]
    assert not canvas.scene.item_for("b-shipping").highlighted  # type: ignore[union-attr]
    derived = {e.key: e.highlighted for e in canvas.scene.derived_edges()}
    assert derived[("publishes", "p-web", "ex-orders")] and derived[("dead-letter", "q-billing", "ex-dlx")]
    canvas.scene.highlight_path([])
    assert all(i.highlight_order is None for i in canvas.scene.node_items())
    assert not any(e.highlighted for e in [*canvas.scene.binding_edges(), *canvas.scene.derived_edges()])


def test_create_at_center_adds_one_node_in_view_off_existing_nodes(canvas: Canvas) -> None:
    node_id = canvas.scene.create_at_center({"kind": "exchange", "type": "topic"})
    assert node_id is not None
    node = canvas.doc.topology.node(node_id)
    assert isinstance(node, Exchange) and node.name == "exchange.topic-1" and node.type == "topic"
    item = canvas.scene.node_item(node_id)
    assert item is not None
    others = [i for i in canvas.scene.node_items() if i is not item]
    assert not any(item.pos() == o.pos() for o in others)
    assert canvas.editor.undo_stack.count() == 1


def test_render_to_image_and_svg_write_files(canvas: Canvas, tmp_path: Path) -> None:
    canvas.editor.select(["q-billing"])
    assert canvas.scene.render_to_image(tmp_path / "design.png")
    assert canvas.scene.render_to_svg(tmp_path / "design.svg")
    assert (tmp_path / "design.png").stat().st_size > 1000
    assert "<svg" in (tmp_path / "design.svg").read_text()
    assert canvas.editor.selection == ["q-billing"]  # exports do not disturb the session


def test_refused_bind_through_model_leaves_no_edge(canvas: Canvas) -> None:
    assert not canvas.editor.execute(Bind(canvas.doc, "ex-orders", "q-billing", "order.*.billing"))
    assert len(canvas.scene.binding_edges()) == 3


def test_palette_change_restyles_items(canvas: Canvas) -> None:
    canvas.scene.refresh_theme()
    assert canvas.scene.node_item("q-billing").title == "billing"  # type: ignore[union-attr]
