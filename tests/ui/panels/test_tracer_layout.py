"""The route tracer's layout: the form beside the hops in the wide bottom dock, above them when narrow;
the headers table only as tall as its headers; every hop of the retry ladder visible at 1280x800."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Topology
from mqstudio.ops.trace import Outcome
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.panels.tracer import HEADER_ROWS, TracerPanel

RETRY = Path(__file__).resolve().parents[3] / "resources" / "examples" / "retry-ttl-ladder.mqs.json"


def _panel(qtbot: QtBot, width: int, height: int = 300) -> TracerPanel:
    panel = TracerPanel(DocumentEditor(TopologyDocument(Topology())))
    qtbot.addWidget(panel)
    panel.resize(width, height)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_wide_panel_puts_the_hops_beside_the_form(qtbot: QtBot) -> None:
    panel = _panel(qtbot, 1200)
    assert panel.side_by_side
    assert panel.results.geometry().left() >= panel.form.geometry().right()
    assert panel.results.width() > panel.width() // 2  # the hops get most of the width


def test_narrow_panel_stacks_the_hops_under_the_form_and_back(qtbot: QtBot) -> None:
    panel = _panel(qtbot, 420, 600)
    assert not panel.side_by_side
    assert panel.results.geometry().top() >= panel.form.geometry().bottom()
    panel.resize(1100, 300)
    qtbot.waitUntil(lambda: panel.side_by_side)


def test_headers_table_appears_with_the_first_header_and_grows_to_a_few_rows(qtbot: QtBot) -> None:
    panel = _panel(qtbot, 1200)
    table = panel.headers.table
    assert table.isHidden() and not panel.headers.add_button.isHidden()
    panel.headers.add_button.click()
    assert not table.isHidden()
    one = table.height()
    panel.headers.set_row(1, "b", "2")
    assert table.height() > one
    for row in range(2, HEADER_ROWS + 3):
        panel.headers.set_row(row, f"h{row}", "x")
    capped = table.height()
    panel.headers.set_row(HEADER_ROWS + 3, "more", "x")
    assert table.height() == capped  # beyond HEADER_ROWS the table scrolls instead of growing
    table.selectAll()
    panel.headers.remove_button.click()
    assert table.isHidden()


def test_retry_ladder_trace_shows_at_least_five_hops_at_1280x800(qtbot: Any, tmp_path: Path) -> None:
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        autosave_dir=tmp_path / "a")
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    try:
        qtbot.waitExposed(window)
        assert window.open_path(RETRY)
        window.tracer_dock.raise_()
        tracer = window.tracer
        tracer.set_exchange("ex-work")
        tracer.routing_key.setText("work")
        tracer.outcome.setCurrentIndex(tracer.outcome.findData(Outcome.REJECTED))
        tracer.run_trace()
        qtbot.waitUntil(lambda: tracer.hops.topLevelItemCount() >= 5)
        qtbot.wait(50)
        assert tracer.side_by_side
        viewport = tracer.hops.viewport()
        visible = viewport.visibleRegion().boundingRect()  # the part not hidden by the dock's scroll area
        items = [tracer.hops.topLevelItem(i) for i in range(tracer.hops.topLevelItemCount())]
        rects = [tracer.hops.visualItemRect(item) for item in items if item is not None]
        shown = [r for r in rects if viewport.rect().contains(r) and visible.contains(r)]
        assert len(shown) >= 5, (rects, visible)
        assert window.view.height() > window.height() // 2  # the canvas keeps most of the height
    finally:
        window.files.shutdown()
