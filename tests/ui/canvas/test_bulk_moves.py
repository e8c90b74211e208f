"""Moving many nodes at once (auto-layout, a multi-node drag) re-routes each edge once, at the end, and
leaves every edge attached to its nodes' ports; lazily built parts (path, arrow, tooltips, title
elision) match the geometry they are built from."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from PySide6.QtCore import QPointF

from mqstudio.core.commands import RenameNode
from mqstudio.ui.canvas.constants import PORT_RADIUS
from mqstudio.ui.canvas.interactions import MoveInteraction
from mqstudio.ui.canvas.items.edge import EdgeItem
from tests.ui.canvas.conftest import Canvas


def _count_adjusts(monkeypatch: pytest.MonkeyPatch) -> Counter[EdgeItem]:
    calls: Counter[EdgeItem] = Counter()
    original = EdgeItem.adjust

    def counting(self: EdgeItem) -> None:
        calls[self] += 1
        original(self)

    monkeypatch.setattr(EdgeItem, "adjust", counting)
    return calls


def _assert_attached(edge: EdgeItem) -> None:
    """The edge starts at its source's output port and its arrow tip touches the input port."""
    source, dest = edge.source.pos(), edge.dest.pos()
    x1, y1, x2, y2 = edge.ends()
    assert (x1, y1) == pytest.approx((source.x() + edge.source.width / 2, source.y()))
    assert (x2, y2) == pytest.approx((dest.x() - edge.dest.width / 2 - PORT_RADIUS - 1, dest.y()))
    path = edge.path()
    assert path.pointAtPercent(0).x() == pytest.approx(x1) and path.pointAtPercent(1).y() == pytest.approx(y2)
    assert edge.arrow().boundingRect().right() == pytest.approx(x2)
    assert edge.boundingRect().contains(path.controlPointRect().center())


def _all_edges(canvas: Canvas) -> list[EdgeItem]:
    return [*canvas.scene.binding_edges(), *canvas.scene.derived_edges()]


def test_auto_layout_reroutes_each_edge_once(canvas: Canvas, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_adjusts(monkeypatch)
    assert canvas.scene.auto_layout()
    edges = _all_edges(canvas)
    moved = [e for e in edges if e in calls]
    assert moved, "the layout moved nodes, so some edges must have been re-routed"
    assert max(calls.values()) == 1, "an edge between two moved nodes was routed more than once"
    assert canvas.scene.pending_edges is None
    for edge in edges:
        _assert_attached(edge)


def test_undoing_the_layout_puts_every_edge_back(canvas: Canvas) -> None:
    before = {id(e): e.ends() for e in _all_edges(canvas)}
    canvas.scene.auto_layout()
    assert any(e.ends() != before[id(e)] for e in _all_edges(canvas))
    canvas.editor.undo_stack.undo()
    for edge in _all_edges(canvas):
        assert edge.ends() == pytest.approx(before[id(edge)])
        _assert_attached(edge)


def test_dragging_two_linked_nodes_routes_their_shared_edge_once_per_step(
    canvas: Canvas, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene = canvas.scene
    orders, billing = scene.node_item("ex-orders"), scene.node_item("q-billing")
    assert orders is not None and billing is not None
    shared = scene.item_for("b-billing")
    assert isinstance(shared, EdgeItem)
    scene.clearSelection()
    orders.setSelected(True)
    billing.setSelected(True)
    scene.snap_to_grid = False
    calls = _count_adjusts(monkeypatch)
    gesture = MoveInteraction(scene, orders, orders.pos(), QPointF())
    scene.begin_interaction(gesture)
    start = shared.ends()
    gesture.drag_to(orders.pos() + QPointF(30, 40))
    assert calls[shared] == 1
    assert shared.ends() == pytest.approx((start[0] + 30, start[1] + 40, start[2] + 30, start[3] + 40))
    gesture.cancel()
    assert calls[shared] == 2 and shared.ends() == pytest.approx(start)


def test_deferred_edges_nest_and_route_on_the_outer_exit(canvas: Canvas) -> None:
    scene = canvas.scene
    node = scene.node_item("q-shipping")
    edge = scene.item_for("b-shipping")
    assert node is not None and isinstance(edge, EdgeItem)
    before = edge.ends()
    with scene.deferred_edges():
        with scene.deferred_edges():
            node.setPos(node.pos() + QPointF(0, 100))
        assert edge.ends() == before  # still pending: the outer block routes it
    assert edge.ends()[3] == pytest.approx(before[3] + 100)
    _assert_attached(edge)


def test_tooltips_and_titles_are_built_on_demand_from_the_current_model(canvas: Canvas, qtbot: Any) -> None:
    node = canvas.scene.node_item("q-billing")
    edge = canvas.scene.item_for("b-billing")
    assert node is not None and isinstance(edge, EdgeItem)
    canvas.editor.execute(RenameNode(canvas.doc, "q-billing", "invoices-with-a-rather-long-queue-name"))
    assert "invoices-with-a-rather-long-queue-name" in node.tooltip_text()
    assert "x-message-ttl" in node.tooltip_text()
    assert "order.*.billing" in edge.tooltip_text()
    title, subtitle = node.elided_text()
    assert title != node.title and "…" in title  # elided to the text area
    assert subtitle.startswith("classic queue")
