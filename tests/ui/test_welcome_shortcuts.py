"""The keyboard shortcut sheet (Help ▸ Keyboard Shortcuts, also on the welcome page): complete, typed keys
only, canvas gestures included, nothing cut off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog

from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.shelldialogs import CANVAS_GESTURES, ShortcutsDialog, shortcut_text


@pytest.fixture
def sheet(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ShortcutsDialog:
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), autosave_dir=tmp_path)
    qtbot.addWidget(window)
    shown: list[ShortcutsDialog] = []
    monkeypatch.setattr(ShortcutsDialog, "exec", lambda d: shown.append(d) or QDialog.DialogCode.Accepted)
    window.action_set.shortcuts.trigger()
    window.files.shutdown()
    shown[0]._window = window  # type: ignore[attr-defined]
    return shown[0]


def test_every_menu_action_with_a_shortcut_is_listed(sheet: ShortcutsDialog) -> None:
    listed = {name for group in sheet.rows().values() for name, _keys in group}
    window = sheet._window  # type: ignore[attr-defined]
    in_menus = {a for _name, menu in window._menus for a in menu.actions() if not a.shortcut().isEmpty()}
    assert in_menus, "the window has actions with shortcuts"
    for action in in_menus:
        assert action.iconText().replace("&", "") in listed
    rows = sheet.rows()
    assert ("Rename", "F2") in rows["Edit"] and ("Run", "F5") in rows["Broker"]
    assert ("Keyboard Shortcuts", "Ctrl+/") in rows["Help"]


def test_only_keys_a_keyboard_has_are_shown(sheet: ShortcutsDialog) -> None:
    rows = dict(sheet.rows()["File"])
    assert rows["New"] == "Ctrl+N"  # not "Ctrl+N, New" (Qt's dedicated New key)
    action = QAction("Copy")
    action.setShortcuts(QKeySequence.StandardKey.Copy)
    assert "Copy" not in shortcut_text(action).split(", ")


def test_canvas_gestures_follow_the_menus(sheet: ShortcutsDialog) -> None:
    groups = list(sheet.rows())
    assert groups[:2] == ["File", "Edit"]
    assert groups[-len(CANVAS_GESTURES):] == [title for title, _rows in CANVAS_GESTURES]
    assert ("Pan", "Space+drag, middle-button drag") in sheet.rows()["Canvas"]


def test_no_text_is_cut_off(sheet: ShortcutsDialog) -> None:
    metrics = sheet.tree.fontMetrics()
    for group in sheet.rows().values():
        for name, keys in group:
            assert metrics.horizontalAdvance(name) + sheet.tree.indentation() < sheet.tree.columnWidth(0)
            assert metrics.horizontalAdvance(keys) < sheet.tree.columnWidth(1)
    assert sheet.width() >= sheet.tree.columnWidth(0) + sheet.tree.columnWidth(1)
