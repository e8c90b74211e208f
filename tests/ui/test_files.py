"""The file workflow: save/save-as round trip, recent files, examples, import/export, unsaved-changes
prompts, and autosave with crash recovery. Dialogs are patched to answer; nothing blocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QEvent, QSettings
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from mqstudio.core import fileformat
from mqstudio.core.commands import AddNode
from mqstudio.core.model import Exchange, Queue
from mqstudio.ui.files import ALL_VHOSTS, MAX_RECENT, FileController, project_name
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.resources import examples
from mqstudio.ui.shelldialogs import ProblemsDialog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
DEFINITIONS = ROOT / "tests" / "data" / "rabbitmq_definitions_cluster.json"
Button = QMessageBox.StandardButton


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def make_window(settings: QSettings, autosave: Path) -> MainWindow:
    win = MainWindow(settings=settings, autosave_dir=autosave)
    win.show()
    return win


def close_quietly(win: MainWindow) -> None:
    if not shiboken6.isValid(win):
        return
    win.editor.mark_saved()
    win.close()
    win.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def window(qtbot: object, tmp_path: Path, settings: QSettings) -> Iterator[MainWindow]:
    win = make_window(settings, tmp_path / "autosave")
    yield win
    close_quietly(win)


@pytest.fixture
def files(window: MainWindow) -> FileController:
    return window.files


def answer(monkeypatch: pytest.MonkeyPatch, *buttons: Button) -> list[str]:
    asked: list[str] = []
    queue = list(buttons)

    def fake_exec(box: QMessageBox) -> Button:
        asked.append(box.text())
        return queue.pop(0)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return asked


def save_dialog_returns(monkeypatch: pytest.MonkeyPatch, path: Path | None) -> list[str]:
    offered: list[str] = []

    def fake(_parent: object, _title: str, start: str, _filters: str) -> tuple[str, str]:
        offered.append(start)
        return (str(path) if path else "", "")

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake)
    return offered


def add_queue(window: MainWindow, name: str) -> None:
    assert window.editor.execute(AddNode(window.editor.document, Queue(name), (40.0, 20.0)))


# -- save ---------------------------------------------------------------------------------------


def test_save_as_round_trip_adds_the_suffix_and_marks_clean(
    window: MainWindow, files: FileController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_queue(window, "orders")
    save_dialog_returns(monkeypatch, tmp_path / "shop")
    assert files.save()  # no path yet: Save is Save As
    target = tmp_path / "shop.mqs.json"
    assert window.path == target
    assert not window.isWindowModified()
    assert window.windowTitle() == "shop.mqs.json[*] — mqstudio"
    reloaded = fileformat.load(target)
    assert reloaded.topology.find_queue("orders") is not None
    assert reloaded.layout == window.editor.document.layout

    add_queue(window, "payments")
    assert window.isWindowModified()
    assert files.save()  # has a path now: writes in place without asking
    assert fileformat.load(target).topology.find_queue("payments") is not None
    assert not list(tmp_path.glob(".shop.mqs.json.*.tmp"))  # atomic writes leave no temporary file


def test_cancelled_save_as_keeps_the_document_dirty(
    window: MainWindow, files: FileController, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_queue(window, "orders")
    save_dialog_returns(monkeypatch, None)
    assert not files.save_as()
    assert window.isWindowModified()


def test_save_failure_is_reported_and_the_document_stays_dirty(
    window: MainWindow, files: FileController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_queue(window, "orders")
    errors: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, _t, text: errors.append(text))
    assert not files.save_to(tmp_path / "missing-dir" / "x.mqs.json")
    assert errors and "missing-dir" in errors[0]
    assert window.isWindowModified()


# -- new / open ---------------------------------------------------------------------------------


def test_new_with_unsaved_changes_asks_and_cancel_keeps_everything(
    window: MainWindow, files: FileController, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_queue(window, "orders")
    document = window.editor.document
    asked = answer(monkeypatch, Button.Cancel, Button.Discard)
    assert not files.new_document()
    assert window.editor.document is document
    assert files.new_document()
    assert window.editor.document is not document
    assert not window.editor.document.topology.nodes
    assert len(asked) == 2


def test_open_asks_about_unsaved_changes_only_after_the_file_is_known_good(
    window: MainWindow, files: FileController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_queue(window, "orders")
    asked = answer(monkeypatch, Button.Discard)
    shown: list[ProblemsDialog] = []
    monkeypatch.setattr(ProblemsDialog, "exec", lambda d: shown.append(d) or 0)
    bad = tmp_path / "bad.mqs.json"
    bad.write_text('{"format": "mqstudio/1", "topology": {"queues": [{"name": ""}, {"name": 3}]}}')
    assert not files.open_path(bad)
    assert asked == [] and len(shown) == 1 and len(shown[0].problems) >= 2
    assert window.editor.document.topology.find_queue("orders") is not None
    assert files.open_path(EXAMPLES / "work-queue-dlx.mqs.json")
    assert len(asked) == 1


def test_an_example_opens_as_an_untitled_copy(
    window: MainWindow, files: FileController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = next(e for e in examples() if e.path.name == "retry-ttl-ladder.mqs.json")
    assert files.open_example(example)
    assert window.path is None
    assert window.windowTitle() == "retry-ttl-ladder.mqs.json[*] — mqstudio"
    assert window.editor.document.topology.queues
    offered = save_dialog_returns(monkeypatch, tmp_path / "mine.mqs.json")
    assert files.save()
    assert offered[0].endswith("retry-ttl-ladder.mqs.json")
    assert window.path == tmp_path / "mine.mqs.json"


def test_every_bundled_example_is_listed_with_its_title() -> None:
    titles = {e.path.name: e.title for e in examples()}
    assert set(titles) == {p.name for p in EXAMPLES.glob("*.mqs.json")}
    assert titles["work-queue-dlx.mqs.json"] == "Work queue with a dead-letter queue"


def test_opening_definitions_makes_an_untitled_project(window: MainWindow, files: FileController) -> None:
    assert files.open_path(DEFINITIONS)
    assert window.path is None
    assert files.display_name == project_name(DEFINITIONS.name)
    assert window.editor.document.topology.exchanges


# -- recent files -------------------------------------------------------------------------------


def test_recent_files_are_most_recent_first_unique_and_bounded(
    window: MainWindow, files: FileController, tmp_path: Path
) -> None:
    paths = []
    for index in range(MAX_RECENT + 2):
        path = tmp_path / f"p{index}.mqs.json"
        path.write_text('{"format": "mqstudio/1"}')
        paths.append(path)
        assert files.open_path(path)
    assert files.open_path(paths[3])
    recent = files.recent_files()
    assert len(recent) == MAX_RECENT
    assert recent[0] == paths[3].resolve()
    assert recent[1] == paths[-1].resolve()
    assert len(set(recent)) == len(recent)
    menu_texts = [a.text() for a in window.recent_menu.actions() if not a.isSeparator()]
    assert menu_texts[0] == "&1 p3.mqs.json" and menu_texts[-1] == "&Clear Menu"


def test_recent_files_survive_a_restart_and_clear(
    qtbot: object, window: MainWindow, files: FileController, settings: QSettings, tmp_path: Path
) -> None:
    assert files.open_path(EXAMPLES / "topic-routing.mqs.json")
    close_quietly(window)
    again = make_window(settings, tmp_path / "autosave")
    try:
        assert again.files.recent_files() == [(EXAMPLES / "topic-routing.mqs.json").resolve()]
        again.files.clear_recent()
        assert again.files.recent_files() == []
        assert not again.recent_menu.isEnabled()
    finally:
        close_quietly(again)


def test_a_missing_recent_file_is_reported_and_dropped(
    window: MainWindow, files: FileController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gone.mqs.json"
    path.write_text('{"format": "mqstudio/1"}')
    assert files.open_path(path)
    path.unlink()
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: warnings.append(text))
    assert not files.open_path(path)
    assert warnings and "gone.mqs.json" in warnings[0]
    assert files.recent_files() == []


# -- import / export ----------------------------------------------------------------------------


def test_export_definitions_cluster_wide_and_per_vhost(
    window: MainWindow, files: FileController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = window.editor.document
    assert window.editor.execute(AddNode(document, Exchange("orders")))
    assert window.editor.execute(AddNode(document, Queue("billing", vhost="shop")))
    assert files.vhosts() == ["/", "shop"]
    choices: list[list[str]] = []

    def pick(choice: str) -> None:
        def fake(_p: object, _t: str, _l: str, items: list[str], *_: object) -> tuple[str, bool]:
            choices.append(list(items))
            return choice, True

        monkeypatch.setattr(QInputDialog, "getItem", fake)

    pick(ALL_VHOSTS)
    save_dialog_returns(monkeypatch, tmp_path / "all.json")
    assert files.export_definitions_dialog()
    everything = json.loads((tmp_path / "all.json").read_text())
    assert {q["vhost"] for q in everything["queues"]} == {"shop"}
    assert choices[0] == [ALL_VHOSTS, "/", "shop"]

    pick("shop")
    save_dialog_returns(monkeypatch, tmp_path / "shop.json")
    assert files.export_definitions_dialog()
    shop = json.loads((tmp_path / "shop.json").read_text())
    assert [q["name"] for q in shop["queues"]] == ["billing"]
    assert "vhost" not in shop["queues"][0]
    assert shop["exchanges"] == []


def test_import_definitions_replaces_the_document_after_asking(
    window: MainWindow, files: FileController, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_queue(window, "orders")
    answer(monkeypatch, Button.Discard)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_: (str(DEFINITIONS), ""))
    assert files.import_definitions_dialog()
    assert window.editor.document.topology.find_queue("orders") is None
    assert window.editor.document.topology.queues
    assert not window.isWindowModified()


# -- autosave and recovery ----------------------------------------------------------------------


def test_autosave_is_written_only_while_dirty_and_removed_by_a_save(
    window: MainWindow, files: FileController, tmp_path: Path
) -> None:
    assert not files.autosave_now()
    assert not files.autosave_path.exists()
    add_queue(window, "orders")
    assert files.autosave_now()
    assert fileformat.load(files.autosave_path).topology.find_queue("orders") is not None
    assert files.save_to(tmp_path / "p.mqs.json")
    assert not files.autosave_path.exists()
    assert not list(files.autosave_dir.glob("*"))


def test_a_crashed_session_is_offered_for_recovery_on_the_next_start(
    qtbot: object, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    autosave = tmp_path / "autosave"
    crashed = make_window(settings, autosave)
    target = tmp_path / "orders.mqs.json"
    assert crashed.files.open_path(EXAMPLES / "work-queue-dlx.mqs.json")
    crashed.editor.document.path = target
    add_queue(crashed, "recover-me")
    assert crashed.files.autosave_now()
    # The "crash": the window goes away without a clean close, so the autosave stays behind.
    crashed.hide()
    crashed.deleteLater()

    fresh = make_window(settings, autosave)
    try:
        pending = fresh.files.pending_recoveries()
        assert [r.name for r in pending] == ["orders.mqs.json"]
        asked = answer(monkeypatch, Button.Yes)
        assert fresh.files.offer_recovery()
        assert "orders.mqs.json" in asked[0]
        document = fresh.editor.document
        assert document.topology.find_queue("recover-me") is not None
        assert document.path == target
        assert fresh.isWindowModified()  # recovered changes are not on disk yet
        assert fresh.files.pending_recoveries() == []
        add_queue(fresh, "more")
        fresh.editor.undo_stack.undo()
        assert fresh.isWindowModified()  # undoing back to the recovered state is not "saved" either
    finally:
        close_quietly(fresh)


def test_discarding_a_recovery_deletes_it(
    qtbot: object, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    autosave = tmp_path / "autosave"
    crashed = make_window(settings, autosave)
    add_queue(crashed, "lost")
    assert crashed.files.autosave_now()
    crashed.hide()
    crashed.deleteLater()
    fresh = make_window(settings, autosave)
    try:
        answer(monkeypatch, Button.Discard)
        assert not fresh.files.offer_recovery()
        assert fresh.files.pending_recoveries() == []
        assert not list(autosave.glob("*"))
        assert not fresh.editor.document.topology.nodes
    finally:
        close_quietly(fresh)
