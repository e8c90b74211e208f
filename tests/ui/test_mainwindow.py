"""The minimal main window opens files, lists lint findings, refuses bad files and keeps the open one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from mqstudio.ui.mainwindow import MainWindow

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


@pytest.fixture
def window(qtbot):  # type: ignore[no-untyped-def]
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    return win


def test_opening_an_example_shows_its_summary(window: MainWindow) -> None:
    path = EXAMPLES / "retry-ttl-ladder.mqs.json"
    assert window.open_path(path)
    assert window.path == path
    assert "retry-ttl-ladder.mqs.json" in window.windowTitle()
    assert "queues" in window._summary.text()


def test_a_bad_file_is_refused_with_every_problem_and_the_open_document_kept(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = EXAMPLES / "work-queue-dlx.mqs.json"
    assert window.open_path(good)
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text: shown.append(text))
    bad = tmp_path / "bad.mqs.json"
    data = json.loads(good.read_text())
    data["topology"]["queues"][0]["arguments"] = {"x-message-ttl": -5, "x-max-priority": 999}
    bad.write_text(json.dumps(data))
    assert not window.open_path(bad)
    assert window.path == good
    assert len(shown) == 1
    assert "x-message-ttl" in shown[0] and "x-max-priority" in shown[0]
