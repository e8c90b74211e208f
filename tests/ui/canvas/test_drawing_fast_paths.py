"""Drawing fast paths: ports drawn and hit-tested by their node (no child items), the node layer when
zoomed out, and the static-edge snapshot while nodes are dragged (looks the same, restored after)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QGraphicsItem

from mqstudio.ui.canvas.constants import LOD_SIMPLE
from mqstudio.ui.canvas.interactions import MoveInteraction
from tests.ui.canvas.conftest import Canvas

NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents


def _flags(canvas: Canvas) -> list[bool]:
    items = [*canvas.scene.node_items(), *canvas.scene.binding_edges(), *canvas.scene.derived_edges()]
    items += [canvas.scene.node_layer, canvas.scene.edge_layer]
    return [bool(i.flags() & NO_CONTENTS) for i in items]


def test_ports_are_drawn_and_hit_by_their_node(canvas: Canvas) -> None:
    node = canvas.scene.node_item("ex-orders")
    assert node is not None and node.childItems() == []
    out = node.port_scene_pos("out")
    assert out is not None and out == node.output_port.scenePos()  # type: ignore[union-attr]
    assert node.port_at(out + QPointF(7, 0)) is node.output_port  # half outside the body still hits
    assert canvas.scene.node_item_at(out + QPointF(7, 0)) is node
    assert node.port_at(node.pos()) is None
    assert canvas.scene.node_item("p-web").port_scene_pos("in") is None  # type: ignore[union-attr]
    canvas.view.centerOn(node.pos())
    QTest.mouseMove(canvas.view.viewport(), canvas.point(out))
    assert node.output_port.hover and node.cursor().shape() == Qt.CursorShape.CrossCursor  # type: ignore[union-attr]
    QTest.mouseMove(canvas.view.viewport(), canvas.point(node.pos()))
    assert not node.output_port.hover  # type: ignore[union-attr]


def test_zoomed_out_the_node_layer_draws_every_node(canvas: Canvas) -> None:
    nodes = canvas.scene.node_items()
    canvas.view.set_zoom(LOD_SIMPLE / 2)
    assert canvas.scene.node_layer.active and set(canvas.scene.node_layer.nodes()) == set(nodes)
    assert all(n.flags() & NO_CONTENTS for n in nodes)
    canvas.click(canvas.node_pos("q-billing"))  # still hit-tested
    assert canvas.editor.selection == ["q-billing"]
    canvas.view.reset_zoom()
    assert not any(n.flags() & NO_CONTENTS for n in nodes)


def _drag_image(canvas: Canvas, qtbot: Any, zoom: float) -> None:
    canvas.view.set_zoom(zoom)
    node = canvas.scene.node_item("q-shipping")
    assert node is not None
    canvas.view.centerOn(node.pos())
    before = _flags(canvas)
    node.setSelected(True)
    gesture = MoveInteraction(canvas.scene, node, node.pos(), QPointF())
    canvas.scene.begin_interaction(gesture)
    start = node.pos()
    for i in range(1, 6):
        gesture.drag_to(start + QPointF(20 * i, 10 * i))
    assert canvas.scene.drag_frozen and canvas.view.has_snapshot
    canvas.view.viewport().repaint()
    frozen = canvas.view.viewport().grab().toImage()
    gesture.cancel_positions()
    gesture.drag_to(start + QPointF(100, 50))
    gesture.end()
    assert not canvas.scene.drag_frozen and not canvas.view.has_snapshot
    assert _flags(canvas) == before
    canvas.view.viewport().repaint()
    normal = canvas.view.viewport().grab().toImage()
    assert normal.size() == frozen.size()
    # Pixels may differ where a moving edge crosses a static one (antialiasing blends in another order).
    differ = [
        (x, y)
        for y in range(0, normal.height(), 3)
        for x in range(0, normal.width(), 3)
        if _far(normal.pixel(x, y), frozen.pixel(x, y))
    ]
    assert differ == []


def _far(a: int, b: int) -> bool:
    return any(abs(((a >> s) & 0xFF) - ((b >> s) & 0xFF)) > 24 for s in (0, 8, 16))


def test_a_drag_draws_the_static_edges_from_a_snapshot_that_looks_the_same(
    canvas: Canvas, qtbot: Any
) -> None:
    _drag_image(canvas, qtbot, 1.0)


def test_the_drag_snapshot_zoomed_out_looks_the_same(canvas: Canvas, qtbot: Any) -> None:
    _drag_image(canvas, qtbot, LOD_SIMPLE / 2)


def test_a_model_change_or_zoom_mid_drag_takes_a_new_snapshot(canvas: Canvas, qtbot: Any) -> None:
    start = canvas.node_pos("q-dead")
    canvas.press(start)
    QTest.mouseMove(canvas.view.viewport(), canvas.point(start + QPointF(30, 30)))
    QTest.mouseMove(canvas.view.viewport(), canvas.point(start + QPointF(60, 40)))
    assert canvas.scene.drag_frozen
    canvas.editor.document.topology.node("q-billing").name  # noqa: B018 - the model is readable
    canvas.scene.set_findings([])  # restyles: the snapshot is stale
    assert not canvas.scene.drag_frozen
    qtbot.waitUntil(lambda: canvas.scene.drag_frozen, timeout=2000)
    canvas.view.set_zoom(0.5)
    qtbot.waitUntil(lambda: canvas.scene.drag_frozen and canvas.view.has_snapshot, timeout=2000)
    QTest.mouseRelease(
        canvas.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
        canvas.point(start + QPointF(60, 40)),
    )  # fmt: skip
    assert not canvas.scene.drag_frozen and not canvas.view.has_snapshot
    assert not any(_flags(canvas)[:-2])
