"""The node palette: grouped entries with icons, the canvas MIME payload on drag, create on double-click."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QDrag

from mqstudio.ui.canvas.constants import MIME_TYPE
from mqstudio.ui.panels.palette import ENTRIES, GROUPS, PalettePanel


@pytest.fixture
def panel(qtbot: Any) -> PalettePanel:
    widget = PalettePanel()
    qtbot.addWidget(widget)
    widget.resize(240, 600)
    widget.show()
    return widget


def payload(mime: QMimeData | None) -> dict[str, str]:
    assert mime is not None and mime.hasFormat(MIME_TYPE)
    return json.loads(bytes(mime.data(MIME_TYPE).data()).decode("utf-8"))


def test_entries_are_grouped_rabbitmq_clients_kafka_with_icons(panel: PalettePanel) -> None:
    tree = panel.tree
    headers = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    assert [h.text(0) for h in headers if h is not None] == [g.upper() for g in GROUPS]
    labels = {g: [e.label for e in ENTRIES if e.group == g] for g in GROUPS}
    assert labels["RabbitMQ"] == [
        "Direct exchange", "Fanout exchange", "Topic exchange", "Headers exchange", "Delayed exchange",
        "Classic queue", "Quorum queue",
    ]
    assert labels["Clients"] == ["Producer", "Consumer"]
    assert labels["Kafka"] == ["Topic", "Consumer group"]
    for item in panel.items():
        assert not item.icon(0).isNull()
        assert item.toolTip(0)


@pytest.mark.parametrize(
    ("kind", "type_"),
    [
        ("exchange", "direct"), ("exchange", "fanout"), ("exchange", "topic"), ("exchange", "headers"),
        ("exchange", "x-delayed-message"), ("queue", "classic"), ("queue", "quorum"),
        ("producer", None), ("consumer", None), ("topic", None), ("consumer_group", None),
    ],
)
def test_each_entry_carries_the_canvas_payload(panel: PalettePanel, kind: str, type_: str | None) -> None:
    expected = {"kind": kind} if type_ is None else {"kind": kind, "type": type_}
    assert payload(panel.mime_data(panel.item_for(kind, type_))) == expected


def test_dragging_an_entry_starts_a_copy_drag_with_the_payload(
    panel: PalettePanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[dict[str, str], Qt.DropAction]] = []

    def fake_exec(drag: QDrag, *actions: Qt.DropAction) -> Qt.DropAction:
        started.append((payload(drag.mimeData()), actions[0]))
        assert not drag.pixmap().isNull()
        return Qt.DropAction.CopyAction

    monkeypatch.setattr(QDrag, "exec", fake_exec)
    panel.tree.setCurrentItem(panel.item_for("queue", "quorum"))
    panel.tree.startDrag(Qt.DropAction.CopyAction)
    assert started == [({"kind": "queue", "type": "quorum"}, Qt.DropAction.CopyAction)]


def test_group_headers_cannot_be_dragged(panel: PalettePanel) -> None:
    header = panel.tree.topLevelItem(0)
    assert header is not None
    assert panel.mime_data(header) is None
    assert not header.flags() & Qt.ItemFlag.ItemIsDragEnabled


def test_double_click_requests_a_node(qtbot: Any, panel: PalettePanel) -> None:
    item = panel.item_for("exchange", "fanout")
    rect = panel.tree.visualItemRect(item)
    with qtbot.waitSignal(panel.create_requested) as blocker:
        qtbot.mouseDClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [{"kind": "exchange", "type": "fanout"}]


def test_enter_on_an_entry_requests_a_node(qtbot: Any, panel: PalettePanel) -> None:
    panel.tree.setFocus()
    panel.tree.setCurrentItem(panel.item_for("consumer"))
    with qtbot.waitSignal(panel.create_requested) as blocker:
        qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    assert blocker.args == [{"kind": "consumer"}]


def test_filter_hides_entries_and_empty_groups(qtbot: Any, panel: PalettePanel) -> None:
    qtbot.keyClicks(panel._filter, "queue")
    visible = [i.text(0) for i in panel.items() if not i.isHidden()]
    assert visible == ["Classic queue", "Quorum queue"]
    kafka = panel.tree.topLevelItem(2)
    assert kafka is not None and kafka.isHidden()
    panel._filter.clear()
    assert all(not i.isHidden() for i in panel.items())
