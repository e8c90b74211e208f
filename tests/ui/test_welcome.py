"""The welcome page: every button triggers what it names (new topology, open, import, connect to RabbitMQ
or Kafka with a profile of that kind chosen, keyboard shortcuts, about), and an example opens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest
import shiboken6
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from mqstudio.backends.base import BackendKind
from mqstudio.runtime.profiles import ConnectionProfile, ProfileStore, parse_url
from mqstudio.ui.dialogs.connections import ConnectionsDialog
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.shelldialogs import ShortcutsDialog

Click = Qt.MouseButton.LeftButton


@pytest.fixture
def window(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MainWindow]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # never the user's keyring
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings, autosave_dir=tmp_path / "a")
    w.broker.store = ProfileStore(tmp_path / "connections.json")  # never the user's profiles
    qtbot.addWidget(w)
    w.show()
    opened: list[ConnectionsDialog] = []
    monkeypatch.setattr(ConnectionsDialog, "open", lambda d: opened.append(d))  # noqa: PLW0108 (binds d)
    w.opened_dialogs = opened  # type: ignore[attr-defined]
    yield w
    for dialog in opened:
        if shiboken6.isValid(dialog):
            dialog.reject()
    w.files.shutdown()
    keyring.set_keyring(previous)


def _click(qtbot: Any, window: MainWindow, text: str) -> None:
    matches = [b for b, _a in window.welcome.buttons() if b.text().startswith(text)]
    assert len(matches) == 1, [b.text() for b, _a in window.welcome.buttons()]
    assert matches[0].isVisible() and matches[0].isEnabled()
    qtbot.mouseClick(matches[0], Click)


def test_the_page_offers_start_connect_and_help_buttons(window: MainWindow) -> None:
    texts = [b.text() for b, _a in window.welcome.buttons()]
    for wanted in ("New Topology", "Open…", "Import Definitions…", "Connect to RabbitMQ", "Connect to Kafka",
                   "Keyboard Shortcuts", "About mqstudio"):
        assert any(t.startswith(wanted) for t in texts), (wanted, texts)
    assert window.welcome.examples.count() >= 8


def test_new_topology_shows_an_empty_canvas(qtbot: Any, window: MainWindow) -> None:
    assert window.centralWidget().currentWidget() is not window.view  # type: ignore[attr-defined]
    _click(qtbot, window, "New Topology")
    assert window.centralWidget().currentWidget() is window.view  # type: ignore[attr-defined]
    assert not window.editor.document.topology.nodes


def test_open_asks_for_a_file(qtbot: Any, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (asked.append("open"), ("", ""))[1])
    _click(qtbot, window, "Open…")
    assert asked == ["open"]


def test_connect_to_kafka_starts_a_kafka_profile(qtbot: Any, window: MainWindow) -> None:
    _click(qtbot, window, "Connect to Kafka")
    dialog = window.opened_dialogs[-1]  # type: ignore[attr-defined]
    assert dialog.windowTitle() == "Connect to Kafka"
    profile = dialog.form_profile()
    assert profile.kind is BackendKind.KAFKA
    assert profile.user == "" and not profile.needs_password  # no SASL unless a user is given
    assert not dialog.vhost.isEnabled() and dialog.host.isEnabled()


def test_connect_to_rabbitmq_chooses_a_saved_rabbitmq_profile_and_connects_with_it(
    qtbot: Any, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.broker.store.save(ConnectionProfile("cluster", BackendKind.KAFKA, host="k"))
    window.broker.store.save(parse_url("amqp://app@rabbit.example/prod", name="prod").profile)
    asked: list[tuple[str, object]] = []
    monkeypatch.setattr(window.broker, "connect_profile",
                        lambda profile, password=None: asked.append((profile.name, password)) or True)
    _click(qtbot, window, "Connect to RabbitMQ")
    dialog = window.opened_dialogs[-1]  # type: ignore[attr-defined]
    assert dialog.windowTitle() == "Connect to RabbitMQ"
    profile = dialog.form_profile()
    assert profile.name == "prod" and profile.kind is BackendKind.RABBITMQ and profile.vhost == "prod"
    qtbot.mouseClick(dialog.connect_button, Click)
    assert asked == [("prod", None)]


def test_the_shortcut_and_about_links_open_their_dialogs(
    qtbot: Any, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    sheets: list[ShortcutsDialog] = []
    monkeypatch.setattr(ShortcutsDialog, "exec", lambda d: sheets.append(d) or QDialog.DialogCode.Accepted)
    about: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, title, _text: about.append(title))
    _click(qtbot, window, "Keyboard Shortcuts")
    assert len(sheets) == 1 and sheets[0].tree.topLevelItemCount() > 0
    _click(qtbot, window, "About mqstudio")
    assert about == ["About mqstudio"]


def test_activating_an_example_opens_it(qtbot: Any, window: MainWindow) -> None:
    examples = window.welcome.examples
    item = next(examples.item(i) for i in range(examples.count())
                if examples.item(i).text() == "Topic routing")
    examples.itemActivated.emit(item)
    assert window.centralWidget().currentWidget() is window.view  # type: ignore[attr-defined]
    assert window.editor.document.topology.nodes
    assert not window.editor.document.dirty


def test_a_new_profile_switched_to_kafka_drops_the_rabbitmq_guest_user(
    qtbot: Any, window: MainWindow
) -> None:
    _click(qtbot, window, "Connect to RabbitMQ")
    dialog = window.opened_dialogs[-1]  # type: ignore[attr-defined]
    assert dialog.form_profile().user == "guest"
    dialog.kind.setCurrentIndex(dialog.kind.findData(BackendKind.KAFKA.value))
    assert dialog.form_profile().user == ""
    dialog.user.setText("alice")
    dialog.kind.setCurrentIndex(dialog.kind.findData(BackendKind.RABBITMQ.value))
    dialog.kind.setCurrentIndex(dialog.kind.findData(BackendKind.KAFKA.value))
    assert dialog.form_profile().user == "alice"  # a user someone typed stays
