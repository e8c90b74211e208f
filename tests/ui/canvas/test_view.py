"""TopologyView navigation (zoom around the cursor, keyboard zoom, fit) and the MiniMap."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from mqstudio.ui.canvas import MiniMap
from tests.ui.canvas.conftest import Canvas


def test_wheel_zooms_around_the_cursor(canvas: Canvas, qtbot: Any) -> None:
    view = canvas.view
    cursor = QPoint(700, 200)
    under = view.mapToScene(cursor)
    QTest.qWait(0)
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    event = QWheelEvent(
        QPointF(cursor),
        QPointF(view.viewport().mapToGlobal(cursor)),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), event)
    assert view.zoom > 1.2
    after = view.mapToScene(cursor)
    assert abs(after.x() - under.x()) < 2 and abs(after.y() - under.y()) < 2


def test_keyboard_zoom_and_reset(canvas: Canvas) -> None:
    view = canvas.view
    QTest.keyClick(view, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom > 1.0
    QTest.keyClick(view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom < 1.0
    QTest.keyClick(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom == 1.0
    view.zoom_in()
    view.zoom_out()
    assert abs(view.zoom - 1.0) < 1e-9


def test_fit_all_shows_every_node(canvas: Canvas) -> None:
    view = canvas.view
    view.set_zoom(3.0)
    view.fit_all()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    for item in canvas.scene.node_items():
        assert visible.contains(item.sceneBoundingRect())
    assert view.zoom <= 1.0


def test_minimap_shows_the_viewport_and_click_pans_the_view(canvas: Canvas, qtbot: Any) -> None:
    minimap = MiniMap(canvas.view)
    qtbot.addWidget(minimap)
    minimap.resize(240, 160)
    minimap.show()
    qtbot.waitExposed(minimap)
    minimap.fit()
    assert minimap.visible_rect() == canvas.view.mapToScene(canvas.view.viewport().rect()).boundingRect()
    target = QPointF(900, -100)
    QTest.mouseClick(
        minimap.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        minimap.mapFromScene(target),
    )
    center = canvas.view.mapToScene(canvas.view.viewport().rect().center())
    assert abs(center.x() - target.x()) < 40 and abs(center.y() - target.y()) < 40
