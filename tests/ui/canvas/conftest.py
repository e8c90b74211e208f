"""Canvas test helpers: a shown view over an editor, real mouse gestures at scene points, model snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from mqstudio.core import fileformat
from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Binding, Consumer, Exchange, ExchangeType, Producer, Queue
from mqstudio.ui.canvas import TopologyScene, TopologyView
from mqstudio.ui.editor import DocumentEditor


class Canvas:
    def __init__(self, editor: DocumentEditor, scene: TopologyScene, view: TopologyView) -> None:
        self.editor, self.scene, self.view = editor, scene, view

    @property
    def doc(self) -> TopologyDocument:
        return self.editor.document

    def snapshot(self) -> str:
        """The whole document (topology and layout) as canonical JSON, to compare before/after undo."""
        return json.dumps(fileformat.to_data(self.doc), sort_keys=True)

    def point(self, scene_pos: QPointF) -> QPoint:
        return self.view.mapFromScene(scene_pos)

    def node_pos(self, node_id: str) -> QPointF:
        item = self.scene.item_for(node_id)
        assert item is not None
        return item.pos()

    def out_port(self, node_id: str) -> QPointF:
        item = self.scene.node_item(node_id)
        assert item is not None and item.output_port is not None
        return item.output_port.scenePos()

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        QTest.mousePress(self.view.viewport(), Qt.MouseButton.LeftButton, modifiers, self.point(pos))

    def click(self, pos: QPointF, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        QTest.mouseClick(self.view.viewport(), Qt.MouseButton.LeftButton, modifiers, self.point(pos))

    def drag(
        self,
        start: QPointF,
        end: QPointF,
        modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
        steps: int = 6,
    ) -> None:
        viewport = self.view.viewport()
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, modifiers, self.point(start))
        for i in range(1, steps + 1):
            t = i / steps
            QTest.mouseMove(viewport, self.point(start + (end - start) * t))
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, modifiers, self.point(end))

    def key(self, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        QTest.keyClick(self.view.viewport(), key, modifiers)


def make_canvas(qtbot: Any, document: TopologyDocument | None = None) -> Canvas:
    editor = DocumentEditor(document)
    scene = TopologyScene(editor)
    view = TopologyView(scene)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.reset_zoom()
    view.centerOn(QPointF(300, 100))
    view.setFocus()
    return Canvas(editor, scene, view)


def sample_document() -> TopologyDocument:
    """orders (topic) → billing, shipping; billing dead-letters to orders.dlx → orders.dead."""
    doc = TopologyDocument()
    t = doc.topology
    orders = Exchange("orders", ExchangeType.TOPIC, id="ex-orders")
    dlx = Exchange("orders.dlx", ExchangeType.FANOUT, id="ex-dlx")
    billing = Queue(
        "billing", arguments={"x-dead-letter-exchange": "orders.dlx", "x-message-ttl": 30000}, id="q-billing"
    )
    shipping = Queue("shipping", id="q-shipping")
    dead = Queue("orders.dead", id="q-dead")
    for node, pos in (
        (orders, (0.0, 0.0)),
        (billing, (300.0, -100.0)),
        (shipping, (300.0, 100.0)),
        (dlx, (600.0, -100.0)),
        (dead, (900.0, -100.0)),
    ):
        doc.set_position(node.id, pos, notify=False)
        t.add_node(node)
    t.add_binding(Binding("ex-orders", "q-billing", "order.*.billing", id="b-billing"))
    t.add_binding(Binding("ex-orders", "q-shipping", "order.#", id="b-shipping"))
    t.add_binding(Binding("ex-dlx", "q-dead", "", id="b-dead"))
    producer = Producer("web", target="ex-orders", routing_key="order.created", id="p-web")
    consumer = Consumer("biller", source="q-billing", id="c-biller")
    doc.set_position(producer.id, (-300.0, 0.0), notify=False)
    doc.set_position(consumer.id, (600.0, 100.0), notify=False)
    t.add_node(producer)
    t.add_node(consumer)
    doc.set_dirty(False)
    return doc


@pytest.fixture
def canvas(qtbot: Any) -> Iterator[Canvas]:
    yield make_canvas(qtbot, sample_document())
