"""The main window: opens every example, refuses bad files whole, guards unsaved changes, remembers its
layout, and launches from the command line (``mqstudio FILE``, ``--screenshot``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QEvent, QSettings
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from mqstudio import cli
from mqstudio.core.commands import AddNode
from mqstudio.core.model import Queue
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.shelldialogs import ProblemsDialog, ShortcutsDialog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
EXAMPLE = EXAMPLES / "topic-routing.mqs.json"
Button = QMessageBox.StandardButton


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot: Any, tmp_path: Path, settings: QSettings) -> Iterator[MainWindow]:
    win = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    win.show()
    yield win
    close_quietly(win)


def close_quietly(win: MainWindow) -> None:
    """Close without an unsaved-changes prompt (pytest-qt's own close would run while patches live)."""
    if not shiboken6.isValid(win):
        return
    win.editor.mark_saved()
    win.close()
    win.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def answer(monkeypatch: pytest.MonkeyPatch, *buttons: Button) -> list[str]:
    """Make every QMessageBox answer the next of `buttons`; returns the texts that were asked."""
    asked: list[str] = []
    queue = list(buttons)

    def fake_exec(box: QMessageBox) -> Button:
        asked.append(box.text())
        return queue.pop(0)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return asked


def make_dirty(window: MainWindow, name: str = "orders") -> None:
    assert window.editor.execute(AddNode(window.editor.document, Queue(name), (0.0, 0.0)))


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.mqs.json")), ids=lambda p: p.name)
def test_every_example_opens_with_its_name_and_counts(window: MainWindow, example: Path) -> None:
    assert window.open_path(example)
    assert window.path == example
    assert window.windowTitle() == f"{example.name}[*] — mqstudio"
    assert not window.isWindowModified()
    topology = window.editor.document.topology
    assert f"{len(topology.queues)} queue" in window._counts_label.text()
    assert f"{len(topology.exchanges)} exchange" in window._counts_label.text()
    assert window._broker_label.text() == "Embedded broker: not running"


def test_a_bad_file_lists_every_problem_and_keeps_the_open_document(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = EXAMPLES / "work-queue-dlx.mqs.json"
    assert window.open_path(good)
    document = window.editor.document
    shown: list[ProblemsDialog] = []
    monkeypatch.setattr(ProblemsDialog, "exec", lambda dialog: shown.append(dialog) or 0)
    bad = tmp_path / "bad.mqs.json"
    data = json.loads(good.read_text())
    data["topology"]["queues"][0]["arguments"] = {"x-message-ttl": -5, "x-max-priority": 999}
    data["topology"]["exchanges"][0]["type"] = ""  # any non-empty type is kept (plugin types)
    bad.write_text(json.dumps(data))

    assert not window.open_path(bad)

    assert window.editor.document is document
    assert window.path == good
    assert len(shown) == 1
    listed = [shown[0].list.topLevelItem(i) for i in range(shown[0].list.topLevelItemCount())]
    paths = [item.text(0) for item in listed if item is not None]
    assert len(paths) == len(shown[0].problems) >= 3
    assert any("x-message-ttl" in p for p in paths)
    assert any("x-max-priority" in p for p in paths)
    assert any(".type" in p for p in paths)
    assert "nothing was loaded" in shown[0].summary.text()


def test_a_file_that_is_not_json_is_refused_in_the_same_dialog(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[ProblemsDialog] = []
    monkeypatch.setattr(ProblemsDialog, "exec", lambda dialog: shown.append(dialog) or 0)
    bad = tmp_path / "broken.mqs.json"
    bad.write_text("{ not json")
    assert not window.open_path(bad)
    assert len(shown) == 1 and shown[0].problems


def test_title_and_modified_flag_follow_the_undo_stack(window: MainWindow) -> None:
    assert window.windowTitle() == "Untitled[*] — mqstudio"
    make_dirty(window)
    assert window.isWindowModified()
    assert "1 queue" in window._counts_label.text()
    undo_text = window.action_set.undo.text().replace("&", "")
    assert undo_text.startswith("Undo ") and undo_text != "Undo "  # names the command
    window.editor.undo_stack.undo()
    assert not window.isWindowModified()
    assert "0 queues" in window._counts_label.text()


def test_refused_edits_show_their_reason_in_the_status_bar(window: MainWindow) -> None:
    window.editor.refused.emit("x-message-ttl: must not be negative")
    assert window.statusBar().currentMessage() == "x-message-ttl: must not be negative"


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_the_window(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dirty(window)
    asked = answer(monkeypatch, Button.Cancel)
    assert not window.close()
    assert window.isVisible()
    assert len(asked) == 1 and "Untitled" in asked[0]


def test_closing_and_discarding_closes_without_writing(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_dirty(window)
    window.files.autosave_now()
    assert window.files.autosave_path.exists()
    answer(monkeypatch, Button.Discard)
    assert window.close()
    assert not window.files.autosave_path.exists()


def test_closing_and_saving_writes_the_file(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "saved.mqs.json"
    assert window.open_path(EXAMPLES / "topic-routing.mqs.json")
    window.editor.document.path = target
    make_dirty(window, "zz-fresh")
    answer(monkeypatch, Button.Save)
    assert window.close()
    assert "zz-fresh" in target.read_text()


def test_a_clean_document_closes_without_asking(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = answer(monkeypatch)
    assert window.close()
    assert asked == []


def test_geometry_and_dock_layout_are_remembered(
    qtbot: Any, window: MainWindow, settings: QSettings, tmp_path: Path
) -> None:
    window.resize(760, 520)
    size = (window.width(), window.height())
    window.history_dock.hide()
    assert window.close()
    again = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    again.show()
    try:
        assert (again.width(), again.height()) == size
        assert not again.history_dock.isVisible()
    finally:
        close_quietly(again)


def test_help_dialogs_list_shortcuts_and_versions(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    shortcuts: list[ShortcutsDialog] = []
    monkeypatch.setattr(ShortcutsDialog, "exec", lambda d: shortcuts.append(d) or QDialog.DialogCode.Accepted)
    window.action_set.shortcuts.trigger()
    tree = shortcuts[0].tree
    rows = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    assert [r.text(0) for r in rows if r is not None][:2] == ["File", "Edit"]
    about: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, _title, text: about.append(text))
    window.action_set.about.trigger()
    assert "PySide6" in about[0] and ">Qt<" in about[0]  # details: tests/ui/test_about.py


def test_every_menu_action_with_an_icon_has_a_tooltip_and_status_tip(window: MainWindow) -> None:
    for action in window.action_set.all():
        assert action.statusTip(), action.text()
        assert action.toolTip(), action.text()


# -- command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "rest", "file"),
    [
        (["orders.mqs.json"], [], "orders.mqs.json"),
        (["--screenshot", "out.png", "a.mqs.json"], ["--screenshot", "out.png"], "a.mqs.json"),
        (["--open", "a.mqs.json"], ["--open", "a.mqs.json"], None),
        (["validate", "a.mqs.json"], ["validate", "a.mqs.json"], None),
        (["--", "validate"], [], "validate"),
        ([], [], None),
    ],
)
def test_the_file_argument_is_told_apart_from_sub_commands(
    argv: list[str], rest: list[str], file: str | None
) -> None:
    assert cli.split_file_argument(argv, ["validate", "convert"]) == (rest, file)


def test_mqstudio_file_opens_the_gui_with_that_file(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(cli, "_run_gui", lambda args: seen.append((args.file, args.screenshot)) or 0)
    assert cli.main(["orders.mqs.json"]) == 0
    assert cli.main(["--open", "b.mqs.json"]) == 0
    assert cli.main(["--screenshot", "x.png", "c.mqs.json"]) == 0
    assert seen == [("orders.mqs.json", None), ("b.mqs.json", None), ("c.mqs.json", "x.png")]


def test_a_file_given_twice_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_run_gui", lambda args: 0)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--open", "a.mqs.json", "b.mqs.json"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshot_writes_a_1280x800_png_without_a_display(tmp_path: Path, theme: str) -> None:
    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["MQSTUDIO_THEME"] = theme
    result = subprocess.run(
        [sys.executable, "-m", "mqstudio", "--screenshot", str(out), str(EXAMPLE)],
        capture_output=True, text=True, env=env, timeout=90, check=False,
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)
    assert out.stat().st_size > 10_000
    corner = image.pixelColor(5, 790)  # the status bar follows the theme
    assert (corner.lightness() < 128) is (theme == "dark")


def test_screenshot_of_a_bad_file_fails_without_waiting_for_a_dialog(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mqs.json"
    bad.write_text('{"format": "mqstudio/1", "topology": {"queues": [{"name": ""}]}}')
    result = subprocess.run(
        [sys.executable, "-m", "mqstudio", "--screenshot", str(tmp_path / "x.png"), str(bad)],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert result.returncode == 1
    assert "cannot open" in result.stderr


def test_palette_double_click_creates_the_node_on_the_canvas(window: MainWindow) -> None:
    window.palette_panel.create_requested.emit({"kind": "queue", "type": "quorum"})
    queues = window.editor.document.topology.queues
    assert len(queues) == 1 and queues[0].queue_type.value == "quorum"
    assert window.editor.selection == [queues[0].id]
    assert window.scene.item_for(queues[0].id) is not None
    window.action_set.delete.trigger()
    assert not window.editor.document.topology.queues
    window.action_set.undo.trigger()
    assert len(window.editor.document.topology.queues) == 1


def test_export_image_writes_png_and_svg(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    assert window.open_path(EXAMPLE)
    for name, chosen in (("canvas.png", "PNG image (*.png)"), ("canvas", "SVG image (*.svg)")):
        answer_with = (str(tmp_path / name), chosen)
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, r=answer_with: r)
        window.action_set.export_image.trigger()
    assert QImage(str(tmp_path / "canvas.png")).width() > 100
    assert (tmp_path / "canvas.svg").read_text().lstrip().startswith("<?xml")
