"""The welcome page's examples and recent files are links: one click opens, Enter opens, a double-click
opens once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.resources import examples
from mqstudio.ui.welcome import WelcomePage


def _item(widget: QListWidget, text: str) -> QListWidgetItem:
    return next(widget.item(i) for i in range(widget.count()) if widget.item(i).text() == text)


def _click(qtbot: Any, widget: QListWidget, item: QListWidgetItem) -> None:
    qtbot.mouseClick(widget.viewport(), Qt.MouseButton.LeftButton, pos=widget.visualItemRect(item).center())


def _page(qtbot: Any) -> tuple[WelcomePage, list[object], list[object]]:
    page = WelcomePage([], examples())
    qtbot.addWidget(page)
    page.resize(900, 700)
    page.show()
    qtbot.waitExposed(page)
    chosen: list[object] = []
    recent: list[object] = []
    page.example_chosen.connect(chosen.append)
    page.recent_chosen.connect(recent.append)
    return page, chosen, recent


def test_a_single_click_on_an_example_opens_it_in_the_window(qtbot: Any, tmp_path: Path) -> None:
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        autosave_dir=tmp_path / "a")
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    try:
        qtbot.waitExposed(window)
        examples_list = window.welcome.examples
        _click(qtbot, examples_list, _item(examples_list, "Topic routing"))
        assert window._stack.currentWidget() is window.view
        assert window.files.display_name.startswith("topic-routing")
        assert window.editor.document.topology.nodes
    finally:
        window.files.shutdown()


def test_a_click_picks_exactly_the_clicked_example(qtbot: Any) -> None:
    page, chosen, _recent = _page(qtbot)
    item = _item(page.examples, "Priority queue")
    _click(qtbot, page.examples, item)
    assert [getattr(e, "title", None) for e in chosen] == ["Priority queue"]


def test_enter_on_the_current_example_opens_it(qtbot: Any) -> None:
    page, chosen, _recent = _page(qtbot)
    page.examples.setFocus()
    page.examples.setCurrentItem(_item(page.examples, "Retry with a TTL ladder"))
    qtbot.keyClick(page.examples, Qt.Key.Key_Return)
    assert [getattr(e, "title", None) for e in chosen] == ["Retry with a TTL ladder"]


def test_a_double_click_opens_once(qtbot: Any) -> None:
    page, chosen, _recent = _page(qtbot)
    item = _item(page.examples, "Topic routing")
    _click(qtbot, page.examples, item)
    page.examples.itemActivated.emit(item)  # the second click of a double-click activates the item
    assert len(chosen) == 1
    other = _item(page.examples, "Priority queue")
    page.examples.itemActivated.emit(other)  # another item right after: a real choice (Enter)
    assert [getattr(e, "title", None) for e in chosen] == ["Topic routing", "Priority queue"]


def test_a_single_click_on_a_recent_file_opens_it(qtbot: Any, tmp_path: Path) -> None:
    page, _chosen, recent = _page(qtbot)
    path = tmp_path / "orders.mqs.json"
    page.set_recent([path])
    qtbot.waitUntil(page.recent.isVisible)
    _click(qtbot, page.recent, page.recent.item(0))
    assert recent == [path]
