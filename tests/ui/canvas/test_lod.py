"""Level of detail: zoomed out, the edge layer draws every edge and edge items have no contents of their
own; selection, hover tooltips and edges following moved nodes keep working at every zoom."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsItem

from mqstudio.core.commands import MoveNodes
from mqstudio.ui.canvas.constants import LOD_SIMPLE
from mqstudio.ui.canvas.items.edge import BindingEdge, EdgeItem
from mqstudio.ui.canvas.layout import FAST_LAYOUT_NODES, compute_layout
from tests.ui.canvas.conftest import Canvas

NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents


def _edges(canvas: Canvas) -> list[EdgeItem]:
    return [*canvas.scene.binding_edges(), *canvas.scene.derived_edges()]


def test_zooming_out_hands_edges_to_the_layer_and_back(canvas: Canvas) -> None:
    assert not canvas.scene.edge_layer_active
    assert not any(e.flags() & NO_CONTENTS for e in _edges(canvas))
    canvas.view.set_zoom(LOD_SIMPLE / 2)
    assert canvas.scene.edge_layer_active
    assert all(e.flags() & NO_CONTENTS for e in _edges(canvas))
    assert set(canvas.scene.edge_layer.edges()) == set(_edges(canvas))
    canvas.view.reset_zoom()
    assert not canvas.scene.edge_layer_active
    assert not any(e.flags() & NO_CONTENTS for e in _edges(canvas))


def test_reset_transform_and_fit_all_switch_the_detail_too(canvas: Canvas) -> None:
    canvas.view.set_zoom(0.1)
    canvas.view.resetTransform()
    assert not canvas.scene.edge_layer_active
    canvas.view.set_zoom(0.1)
    canvas.view.fit_all()  # the sample fits at 100 %
    assert canvas.scene.edge_layer_active == (canvas.view.zoom < LOD_SIMPLE)


def test_selection_works_after_zooming_out_and_in(canvas: Canvas, qtbot: Any) -> None:
    canvas.view.set_zoom(LOD_SIMPLE / 2)
    canvas.view.centerOn(canvas.node_pos("q-billing"))
    canvas.click(canvas.node_pos("q-billing"))
    assert canvas.editor.selection == ["q-billing"]
    edge = canvas.scene.item_for("b-shipping")
    assert isinstance(edge, BindingEdge)
    canvas.editor.select(["b-shipping"])  # zoomed out, a selected edge is drawn by the layer
    assert edge.isSelected() and edge.line_color() == edge._selected_pen.color()
    canvas.view.reset_zoom()
    canvas.view.centerOn(canvas.node_pos("q-shipping"))
    canvas.click(canvas.node_pos("q-shipping"))
    assert canvas.editor.selection == ["q-shipping"]
    assert not edge.isSelected()
    node = canvas.scene.node_item("q-shipping")
    assert node is not None and node.zValue() > canvas.scene.node_item("q-billing").zValue()  # type: ignore[union-attr]


def test_edges_follow_a_moved_node_while_the_layer_draws_them(canvas: Canvas) -> None:
    canvas.view.set_zoom(LOD_SIMPLE / 2)
    edge = canvas.scene.item_for("b-shipping")
    assert isinstance(edge, BindingEdge)
    canvas.editor.execute(MoveNodes(canvas.doc, {"q-shipping": (300.0, 900.0)}))
    _, _, x2, y2 = edge.ends()
    assert y2 == 900.0
    assert canvas.scene.edge_layer.boundingRect().contains(edge.boundingRect())
    groups = canvas.scene.edge_layer._line_groups()
    assert any(line.p2() == QPointF(x2, y2) for _, lines in groups for line in lines)
    canvas.view.reset_zoom()
    assert edge.path().pointAtPercent(1).y() == 900.0


def test_tooltips_are_built_on_first_hover(canvas: Canvas, qtbot: Any) -> None:
    node = canvas.scene.node_item("q-billing")
    assert node is not None and node.toolTip() == ""
    assert "billing" in node.tooltip_text()
    canvas.view.centerOn(node.pos())
    from PySide6.QtTest import QTest

    QTest.mouseMove(canvas.view.viewport(), canvas.point(node.pos() + QPointF(0, 5)))
    qtbot.waitUntil(lambda: node.toolTip() != "", timeout=2000)
    assert node.toolTip() == node.tooltip_text()


def test_exports_draw_curves_even_when_zoomed_out(canvas: Canvas, tmp_path: Any) -> None:
    canvas.view.set_zoom(LOD_SIMPLE / 2)
    assert canvas.scene.render_to_image(tmp_path / "x.png")
    assert canvas.scene.edge_layer_active  # restored after the export


def test_fast_layout_keeps_kinds_in_columns_without_overlaps() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))
    from bench_canvas import generate

    doc = generate(n_nodes=400, n_bindings=600)
    assert len(doc.topology.nodes) > FAST_LAYOUT_NODES
    positions = compute_layout(doc.topology)
    assert set(positions) == {n.id for n in doc.topology.nodes}
    columns: dict[float, list[float]] = {}
    for x, y in positions.values():
        columns.setdefault(x, []).append(y)
    for ys in columns.values():
        ys.sort()
        assert all(b - a >= 100 for a, b in pairwise(ys))
    xs = {n.kind: positions[n.id][0] for n in doc.topology.nodes if n.id.startswith(("p-", "c-"))}
    assert len(set(xs.values())) == 2
