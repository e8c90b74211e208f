"""Edit ▸ Generate Code…: enabled for one supported node, opens a dialog whose tabs hold the generated
scripts (with the queue's arguments), Copy puts the shown one on the clipboard, Save As… writes it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from mqstudio.core.codegen import generate
from mqstudio.core.commands import AddNode
from mqstudio.core.model import Producer
from mqstudio.ui.dialogs.codegen import CodegenDialog
from mqstudio.ui.mainwindow import MainWindow
from tests.ui.test_mainwindow import close_quietly

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


@pytest.fixture
def window(qtbot: Any, tmp_path: Path) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    win.show()
    assert win.open_path(EXAMPLES / "work-queue-dlx.mqs.json")
    yield win
    dialog = getattr(win, "codegen_dialog", None)
    if dialog is not None:
        dialog.close()
    close_quietly(win)


def _queue_arguments(code: str) -> dict[str, dict[str, Any]]:
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "queue_declare"]
    found = {}
    for call in calls:
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        found[keywords["queue"]] = keywords["arguments"]
    return found


def test_action_is_enabled_only_for_one_supported_node(window: MainWindow) -> None:
    action = window.action_set.generate_code
    assert action in window.edit_menu.actions()
    window.editor.select([])
    assert not action.isEnabled()
    window.editor.select(["q-tasks"])
    assert action.isEnabled()
    window.editor.select(["q-tasks", "ex-tasks"])
    assert not action.isEnabled()
    window.editor.select(["b-01"])  # a binding
    assert not action.isEnabled()
    loose = Producer("loose")
    assert window.editor.execute(AddNode(window.editor.document, loose, (0.0, 0.0)))
    window.editor.select([loose.id])
    assert not action.isEnabled()  # no target: nothing to generate
    window.editor.undo_stack.undo()  # the node goes, and with it the selection
    assert not action.isEnabled()


def test_generate_for_a_queue_shows_its_arguments_and_copy_fills_the_clipboard(
    window: MainWindow, qtbot: Any
) -> None:
    window.editor.select(["q-tasks"])
    window.action_set.generate_code.trigger()
    dialog = window.codegen_dialog
    assert isinstance(dialog, CodegenDialog)
    qtbot.waitExposed(dialog)
    assert dialog.windowTitle() == "Generate Code — queue 'tasks'"
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert titles == ["pika producer", "pika consumer", "aio-pika producer", "aio-pika consumer",
                      "Spring Cloud Stream"]
    dialog.show_snippet("pika consumer")
    text = dialog.editors[dialog.tabs.currentIndex()].toPlainText()
    assert _queue_arguments(text)["tasks"] == {
        "x-dead-letter-exchange": "tasks.dlx", "x-delivery-limit": 5, "x-queue-type": "quorum",
    }
    assert dialog.editors[1].isReadOnly()
    assert text == generate(window.editor.document.topology, "q-tasks")[1].code

    QGuiApplication.clipboard().clear()
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == text
    assert dialog.status.text() == "Copied pika consumer to the clipboard"

    dialog.show_snippet("Spring Cloud Stream")
    assert dialog.file_label.text() == "<b>application.yml</b>"
    assert "deadLetterQueueName: tasks.dead" in dialog.editors[4].toPlainText()


def test_save_as_writes_the_shown_snippet(window: MainWindow, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    window.editor.select(["p-api"])
    window.generate_code()
    dialog = window.codegen_dialog
    assert isinstance(dialog, CodegenDialog)
    offered: list[str] = []
    target = tmp_path / "out" / "producer.py"
    target.parent.mkdir()

    def fake_save(parent: Any, caption: str, directory: str, filters: str) -> tuple[str, str]:
        offered.append(directory)
        return str(target), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_save)
    dialog.save_button.click()
    assert offered == [str(Path.home() / "pika_producer.py")]
    assert target.read_text(encoding="utf-8") == dialog.snippets[0].code
    assert target.stat().st_mode & 0o100
    assert dialog.status.text() == "Saved producer.py"
    assert dialog.save_dir == target.parent


def test_a_failed_save_says_why(window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window.editor.select(["q-tasks"])
    window.generate_code()
    dialog = window.codegen_dialog
    assert isinstance(dialog, CodegenDialog)
    warnings: list[str] = []
    monkeypatch.setattr("PySide6.QtWidgets.QMessageBox.warning",
                        lambda parent, title, text: warnings.append(text))
    assert not dialog.save_to(tmp_path / "missing-dir" / "x.py")
    assert len(warnings) == 1 and "Could not save" in warnings[0] and "missing-dir" in warnings[0]


def test_unsupported_selection_explains_in_the_status_bar(window: MainWindow) -> None:
    window.editor.select(["b-01"])
    window.generate_code()
    assert window.statusBar().currentMessage() == "Select one node to generate code for it"
