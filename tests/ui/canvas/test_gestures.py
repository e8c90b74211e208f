"""Canvas gestures driven with real mouse and key events; each asserts on the MODEL, then undoes and
checks the model is restored exactly."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mqstudio.core.model import Exchange, Queue
from mqstudio.ui.canvas.constants import GRID, MIME_TYPE
from tests.ui.canvas.conftest import Canvas, make_canvas

SHIFT = Qt.KeyboardModifier.ShiftModifier


def _drop(canvas: Canvas, spec: dict[str, Any], scene_pos: QPointF) -> None:
    mime = QMimeData()
    mime.setData(MIME_TYPE, json.dumps(spec).encode("utf-8"))
    point = canvas.point(scene_pos)
    viewport = canvas.view.viewport()
    actions = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(point, actions, mime, buttons, mods)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(point, actions, mime, buttons, mods)
    QApplication.sendEvent(viewport, move)
    drop = QDropEvent(QPointF(point), actions, mime, buttons, mods)
    QApplication.sendEvent(viewport, drop)


def test_dropping_a_palette_payload_creates_one_node_at_the_drop_point(canvas: Canvas) -> None:
    before = canvas.snapshot()
    _drop(canvas, {"kind": "queue", "type": "quorum"}, QPointF(401, 259))
    created = canvas.doc.topology.find_queue("queue.quorum-1")
    assert created is not None
    assert created.arguments == {"x-queue-type": "quorum"}
    x, y = canvas.doc.position(created.id) or (None, None)
    assert (x, y) == (400.0, 260.0)  # snapped to the grid
    assert x % GRID == 0 and y % GRID == 0
    assert canvas.scene.item_for(created.id) is not None
    assert canvas.editor.selection == [created.id]
    assert canvas.editor.undo_stack.count() == 1
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before
    assert canvas.scene.item_for(created.id) is None


def test_dropping_a_delayed_exchange_sets_its_delayed_type(canvas: Canvas) -> None:
    _drop(canvas, {"kind": "exchange", "type": "x-delayed-message"}, QPointF(400, 300))
    created = canvas.doc.topology.find_exchange("exchange.delayed-1")
    assert created is not None and created.arguments == {"x-delayed-type": "direct"}


def test_dragging_from_an_exchange_port_to_a_queue_creates_a_binding(qtbot: Any) -> None:
    canvas = make_canvas(qtbot)
    t = canvas.doc.topology
    for node, pos in ((Exchange("events", id="ex-e"), (0.0, 0.0)), (Queue("audit", id="q-a"), (300.0, 0.0))):
        canvas.doc.set_position(node.id, pos, notify=False)
        t.add_node(node)
    before = canvas.snapshot()
    canvas.drag(canvas.out_port("ex-e"), canvas.node_pos("q-a"))
    [binding] = t.bindings
    assert (binding.source, binding.destination, binding.routing_key) == ("ex-e", "q-a", "audit")
    assert canvas.scene.item_for(binding.id) is not None
    assert canvas.scene.interaction is None
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before
    assert canvas.scene.binding_edges() == []


def test_dragging_a_queue_onto_a_queue_is_refused_with_the_reason(canvas: Canvas) -> None:
    before = canvas.snapshot()
    reasons: list[str] = []
    canvas.editor.refused.connect(reasons.append)
    canvas.drag(canvas.out_port("q-shipping"), canvas.node_pos("q-dead"))
    assert canvas.snapshot() == before
    assert canvas.editor.undo_stack.count() == 0
    assert len(reasons) == 1 and "starts at an exchange" in reasons[0]
    feedback = canvas.scene.feedback_item
    assert feedback is not None and feedback.isVisible()
    assert "starts at an exchange" in feedback.text()
    assert all(item.drop_state is None for item in canvas.scene.node_items())


def test_hovering_a_binding_drag_marks_valid_and_invalid_targets(canvas: Canvas) -> None:
    viewport = canvas.view.viewport()
    QTest.mousePress(
        viewport,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        canvas.point(canvas.out_port("ex-dlx")),
    )
    QTest.mouseMove(viewport, canvas.point(canvas.node_pos("q-shipping") + QPointF(-40, 0)))
    assert canvas.scene.node_item("q-shipping").drop_state == "valid"  # type: ignore[union-attr]
    QTest.mouseMove(viewport, canvas.point(canvas.node_pos("p-web")))
    assert canvas.scene.node_item("p-web").drop_state == "invalid"  # type: ignore[union-attr]
    assert canvas.scene.node_item("q-shipping").drop_state is None  # type: ignore[union-attr]
    QTest.mouseRelease(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, canvas.point(QPointF(150, 400))
    )
    assert canvas.editor.undo_stack.count() == 0


def test_dragging_from_a_queue_to_a_consumer_sets_its_source(canvas: Canvas) -> None:
    before = canvas.snapshot()
    canvas.drag(canvas.out_port("q-shipping"), canvas.node_pos("c-biller"))
    assert canvas.doc.topology.node("c-biller").source == "q-shipping"  # type: ignore[union-attr]
    assert ("consumes", "q-shipping", "c-biller") in {e.key for e in canvas.scene.derived_edges()}
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before


def test_rubber_band_selects_the_nodes_it_touches(canvas: Canvas) -> None:
    canvas.drag(QPointF(200, -200), QPointF(420, 220))
    assert set(canvas.editor.selection) >= {"q-billing", "q-shipping"}
    assert "ex-orders" not in canvas.editor.selection
    canvas.drag(QPointF(-120, -60), QPointF(-60, 60), SHIFT)  # adds the exchange
    assert {"q-billing", "q-shipping", "ex-orders"} <= set(canvas.editor.selection)
    canvas.click(QPointF(200, 500))
    assert canvas.editor.selection == []


def test_click_and_shift_click_select_nodes(canvas: Canvas) -> None:
    canvas.click(canvas.node_pos("q-billing"))
    assert canvas.editor.selection == ["q-billing"]
    canvas.click(canvas.node_pos("q-shipping"), SHIFT)
    assert set(canvas.editor.selection) == {"q-billing", "q-shipping"}
    canvas.click(canvas.node_pos("q-billing"), SHIFT)
    assert canvas.editor.selection == ["q-shipping"]


def test_moving_a_node_is_one_snapped_undo_step(canvas: Canvas) -> None:
    before = canvas.snapshot()
    start = canvas.node_pos("q-shipping")
    canvas.drag(start, start + QPointF(133, 47), steps=10)
    assert canvas.doc.position("q-shipping") == (440.0, 140.0)
    assert canvas.editor.undo_stack.count() == 1
    edge = canvas.scene.item_for("b-shipping")
    assert edge is not None and edge.path().pointAtPercent(1).x() < 440.0 - 80  # follows the node
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before
    assert canvas.node_pos("q-shipping") == QPointF(300, 100)


def test_moving_a_selection_moves_every_selected_node_in_one_step(canvas: Canvas) -> None:
    canvas.click(canvas.node_pos("q-billing"))
    canvas.click(canvas.node_pos("q-shipping"), SHIFT)
    before = canvas.snapshot()
    canvas.drag(canvas.node_pos("q-billing"), canvas.node_pos("q-billing") + QPointF(0, 200))
    assert canvas.doc.position("q-billing") == (300.0, 100.0)
    assert canvas.doc.position("q-shipping") == (300.0, 300.0)
    assert canvas.editor.undo_stack.count() == 1
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before


def test_a_click_without_drag_moves_nothing(canvas: Canvas) -> None:
    canvas.click(canvas.node_pos("q-billing"))
    assert canvas.editor.undo_stack.count() == 0


def test_delete_removes_a_node_with_its_bindings_and_undo_restores_them(canvas: Canvas) -> None:
    before = canvas.snapshot()
    canvas.click(canvas.node_pos("ex-orders"))
    canvas.key(Qt.Key.Key_Delete)
    t = canvas.doc.topology
    assert "ex-orders" not in t and "b-billing" not in t and "b-shipping" not in t
    assert t.node("p-web").target == ""  # type: ignore[union-attr]
    assert canvas.scene.item_for("b-billing") is None
    assert canvas.editor.undo_stack.count() == 1
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before
    assert canvas.scene.item_for("b-billing") is not None
    assert ("publishes", "p-web", "ex-orders") in {e.key for e in canvas.scene.derived_edges()}


def test_backspace_deletes_a_selected_binding_and_nodes_in_one_macro(canvas: Canvas) -> None:
    before = canvas.snapshot()
    canvas.editor.select(["b-dead", "q-shipping"])
    canvas.key(Qt.Key.Key_Backspace)
    assert "b-dead" not in canvas.doc.topology and "q-shipping" not in canvas.doc.topology
    assert "q-dead" in canvas.doc.topology
    assert canvas.editor.undo_stack.count() == 1
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before


def test_copy_paste_duplicates_nodes_and_the_bindings_among_them(canvas: Canvas) -> None:
    canvas.editor.select(["ex-orders", "q-billing", "p-web"])
    canvas.key(Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    before = canvas.snapshot()
    canvas.key(Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    t = canvas.doc.topology
    ex = t.find_exchange("orders-copy")
    q = t.find_queue("billing-copy")
    assert ex is not None and q is not None and ex.id != "ex-orders"
    [binding] = t.bindings_from(ex.id)
    assert (binding.destination, binding.routing_key) == (q.id, "order.*.billing")
    producer = next(n for n in t.producers if n.name == "web-copy")
    assert producer.target == ex.id
    assert q.arguments == t.node("q-billing").arguments  # type: ignore[union-attr]
    assert canvas.doc.position(ex.id) == (40.0, 40.0)
    assert set(canvas.editor.selection) == {ex.id, q.id, producer.id}
    assert canvas.editor.undo_stack.count() == 1
    canvas.key(Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)  # again: unique names
    assert t.find_exchange("orders-copy-2") is not None
    canvas.editor.undo_stack.undo()
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before


def test_double_click_renames_in_place_and_enter_commits(canvas: Canvas) -> None:
    before = canvas.snapshot()
    QTest.mouseDClick(
        canvas.view.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        canvas.point(canvas.node_pos("q-shipping")),
    )
    editor = canvas.scene.name_editor
    assert editor is not None and editor.hasFocus()
    QTest.keyClicks(canvas.view.viewport(), "shipping.eu")
    QTest.keyClick(canvas.view.viewport(), Qt.Key.Key_Return)
    assert canvas.doc.topology.node("q-shipping").name == "shipping.eu"
    assert canvas.scene.name_editor is None
    assert canvas.scene.node_item("q-shipping").title == "shipping.eu"  # type: ignore[union-attr]
    canvas.editor.undo_stack.undo()
    assert canvas.snapshot() == before


def test_f2_then_escape_cancels_the_rename(canvas: Canvas) -> None:
    before = canvas.snapshot()
    canvas.click(canvas.node_pos("q-shipping"))
    canvas.key(Qt.Key.Key_F2)
    assert canvas.scene.name_editor is not None
    QTest.keyClicks(canvas.view.viewport(), "other")
    QTest.keyClick(canvas.view.viewport(), Qt.Key.Key_Escape)
    assert canvas.scene.name_editor is None
    assert canvas.snapshot() == before
    assert canvas.editor.undo_stack.count() == 0


def test_a_refused_name_keeps_the_editor_open_and_says_why(canvas: Canvas) -> None:
    before = canvas.snapshot()
    canvas.click(canvas.node_pos("q-shipping"))
    canvas.key(Qt.Key.Key_F2)
    QTest.keyClicks(canvas.view.viewport(), "billing")
    QTest.keyClick(canvas.view.viewport(), Qt.Key.Key_Return)
    assert canvas.snapshot() == before
    assert canvas.scene.name_editor is not None
    feedback = canvas.scene.feedback_item
    assert feedback is not None and "already exists" in feedback.text()
    QTest.keyClick(canvas.view.viewport(), Qt.Key.Key_Escape)
    assert canvas.scene.name_editor is None


def test_drag_point_outside_any_node_cancels_the_binding(canvas: Canvas) -> None:
    before = canvas.snapshot()
    canvas.drag(canvas.out_port("ex-orders"), QPointF(150, 600))
    assert canvas.snapshot() == before
    assert len([i for i in canvas.scene.items() if i.zValue() == 50]) == 0  # the drag line is gone


def test_middle_button_drag_pans_the_view_without_editing(canvas: Canvas) -> None:
    viewport = canvas.view.viewport()
    before = canvas.view.mapToScene(QPoint(10, 10))
    QTest.mousePress(viewport, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(500, 300))
    QTest.mouseMove(viewport, QPoint(400, 250))
    QTest.mouseRelease(
        viewport, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(400, 250)
    )
    after = canvas.view.mapToScene(QPoint(10, 10))
    assert after.x() > before.x() and after.y() > before.y()
    assert canvas.editor.undo_stack.count() == 0
