"""The Dead Letters dock's layout: it shrinks to a short bottom dock without clipping its controls, the
queue pane is as wide as its names, the status stays on one line, and a dragged splitter stays put."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from mqstudio.backends.base import BackendKind, Capabilities
from mqstudio.ops.deadletters import DlqInfo
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.panels.deadletters import DeadLettersPanel

LONG_NAME = "orders.payments.eu-west-1.dead"


def _panel(qtbot: QtBot, width: int = 1280, height: int = 220) -> DeadLettersPanel:
    panel = DeadLettersPanel(lambda: None, journal_path=None)
    qtbot.addWidget(panel)
    panel.resize(width, height)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _discover(panel: DeadLettersPanel, *names: str) -> None:
    panel._on_discovered((BackendKind.RABBITMQ, Capabilities.NONE, [DlqInfo(n) for n in names]))


def _inside(child: QWidget, panel: QWidget) -> bool:
    top_left = child.mapTo(panel, child.rect().topLeft())
    bottom_right = child.mapTo(panel, child.rect().bottomRight())
    return panel.rect().contains(top_left) and panel.rect().contains(bottom_right)


def test_minimum_height_is_that_of_a_short_dock(qtbot: QtBot) -> None:
    panel = _panel(qtbot)
    assert panel.minimumSizeHint().height() <= 140
    panel.peek_note.setText("Listing gets and requeues each message: they come back marked redelivered")
    panel.peek_note.show()  # RabbitMQ's note costs one line, not a wrapped paragraph
    assert panel.minimumSizeHint().height() <= 140 + panel.peek_note.sizeHint().height() + 6
    panel.view_tabs.setCurrentIndex(1)  # the Inflow chart fits as well
    assert panel.minimumSizeHint().height() <= 140


def test_at_its_minimum_the_list_and_every_button_still_show(qtbot: QtBot) -> None:
    panel = _panel(qtbot)
    panel.resize(1280, panel.minimumSizeHint().height())
    qtbot.waitUntil(lambda: panel.height() <= 140)
    for widget in (panel.queue_list, panel.view, panel.refresh_button, panel.replay_button,
                   panel.resubmit_button, panel.delete_button, panel.purge_button, panel.export_button,
                   panel.import_button, panel.filter_edit, panel.detail.tabs):
        assert widget.isVisible() and _inside(widget, panel), widget
    assert panel.view.viewport().height() >= panel.view.fontMetrics().height()  # a message row at least


def test_action_buttons_wrap_rather_than_widen_the_panel(qtbot: QtBot) -> None:
    panel = _panel(qtbot)
    buttons = (panel.replay_button, panel.resubmit_button, panel.delete_button, panel.purge_button,
               panel.export_button, panel.import_button)
    messages_page = panel.tabs.widget(0)
    assert messages_page is not None
    assert messages_page.minimumSizeHint().width() < sum(b.sizeHint().width() for b in buttons)
    assert len({b.y() for b in buttons}) == 1  # one row while they fit
    panel.resize(760, 300)
    qtbot.waitUntil(lambda: len({b.y() for b in buttons}) > 1)  # wrapped
    panel.resize(760, panel.minimumSizeHint().height())  # the wrapped row raises the minimum: nothing clipped
    qtbot.waitUntil(lambda: all(_inside(b, panel) for b in buttons))
    assert all(b.isVisible() for b in buttons)


def test_queue_pane_fits_the_longest_name_and_the_status_line(qtbot: QtBot) -> None:
    panel = _panel(qtbot)
    _discover(panel, "orders.dead", LONG_NAME)
    column = panel.queue_list.header().sectionSize(0)
    assert column >= panel.queue_list.fontMetrics().horizontalAdvance(LONG_NAME)
    assert panel.status.text() == "2 dead-letter queues" and not panel.status.is_elided()
    assert panel.splitter.sizes()[0] <= 1280 * 0.3 + 1  # … but never takes the panel


def test_status_stays_on_one_line_with_the_whole_text_in_its_tooltip(qtbot: QtBot) -> None:
    panel = _panel(qtbot)
    _discover(panel, "orders.dead")
    line = panel.status.height()
    text = "Deleted 12 of 12; 3 returned to orders.dead, which were marked redelivered by the broker"
    panel._say(text)
    assert panel.status.height() == line
    assert panel.status.is_elided() and panel.status.toolTip() == text


def test_a_dragged_splitter_is_kept(qtbot: QtBot) -> None:
    panel = _panel(qtbot)
    panel.splitter.moveSplitter(400, 1)  # as a drag does: splitterMoved
    sizes = panel.splitter.sizes()
    _discover(panel, LONG_NAME)
    assert panel.splitter.sizes() == sizes


def test_bottom_docks_leave_the_canvas_most_of_the_window(qtbot: Any, tmp_path: Path) -> None:
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        autosave_dir=tmp_path / "a")
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    try:
        qtbot.waitExposed(window)
        dock = window.dead_letters.parentWidget()
        assert dock is not None
        qtbot.wait(50)  # the layout requests of the first show
        # behind another tab the panel is laid out at any size; that must not raise its minimum
        assert window.dead_letters.minimumSizeHint().height() <= 140
        assert dock.minimumSizeHint().height() <= 140 + 30  # the panel and the dock's title bar
        bottom = window.height() - window.lint_dock.geometry().top()
        assert bottom <= window.height() * 0.35, bottom  # Throughput (ui.monitoring) sets the floor today
        assert window._stack.height() >= window.height() * 0.55  # the welcome page or the canvas
    finally:
        window.files.shutdown()


def test_the_detail_comes_back_after_the_inflow_chart(qtbot: QtBot) -> None:
    panel = _panel(qtbot)
    qtbot.waitUntil(lambda: panel.splitter.sizes()[0] >= 150)  # fitted once shown, before any queue
    before = panel.splitter.sizes()
    panel.view_tabs.setCurrentIndex(1)
    assert panel.tabs.currentWidget() is panel.chart and panel.detail.isHidden()
    qtbot.waitUntil(lambda: panel.splitter.sizes()[2] == 0)  # the chart takes the detail's room
    panel.resize(1100, 220)
    qtbot.waitUntil(lambda: sum(panel.splitter.sizes()) < sum(before))
    panel.view_tabs.setCurrentIndex(0)
    sizes = panel.splitter.sizes()
    assert panel.detail.isVisible() and sizes[2] > 0
    assert abs(sizes[2] / (sizes[1] + sizes[2]) - before[2] / (before[1] + before[2])) < 0.02
