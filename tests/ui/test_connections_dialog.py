"""The Connections dialog: profiles saved without secrets, passwords to the keyring, a connection test
on a worker that reports a specific result while the event loop keeps running."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from mqstudio.backends.base import BackendKind, Capabilities
from mqstudio.runtime.connect import ProbeResult
from mqstudio.runtime.jobs import Job, JobRunner
from mqstudio.runtime.profiles import ConnectionProfile, ProfileStore, parse_url
from mqstudio.ui.dialogs.connections import ConnectionsDialog
from tests.fixtures.services import port_open


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]
    viable = False  # never chosen by keyring's own discovery, only by set_keyring

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    pool = JobRunner(2, name="test-ui-job")
    yield pool
    pool.shutdown()


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "connections.json")


def _dialog(qtbot: QtBot, store: ProfileStore, runner: JobRunner, **kwargs: Any) -> ConnectionsDialog:
    dialog = ConnectionsDialog(store, runner, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _type(qtbot: QtBot, widget: Any, text: str) -> None:
    widget.clear()
    qtbot.keyClicks(widget, text)


def test_a_first_start_offers_a_new_profile(qtbot: QtBot, store: ProfileStore, runner: JobRunner) -> None:
    dialog = _dialog(qtbot, store, runner)
    assert dialog.list.count() == 1
    assert dialog.name.text() == "New connection"
    assert dialog.form_profile().kind is BackendKind.RABBITMQ


def test_saving_puts_the_password_in_the_keyring_and_never_in_the_file(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner, memory_keyring: MemoryKeyring
) -> None:
    dialog = _dialog(qtbot, store, runner)
    _type(qtbot, dialog.name, "staging")
    _type(qtbot, dialog.host, "mq.staging")
    _type(qtbot, dialog.user, "app")
    _type(qtbot, dialog.password, "hunter2")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    assert store.get("staging") == ConnectionProfile("staging", BackendKind.RABBITMQ, host="mq.staging",
                                                     user="app")
    assert memory_keyring.passwords == {("mqstudio", "staging:app"): "hunter2"}
    assert "hunter2" not in store.path.read_text(encoding="utf-8")
    assert dialog.password.text() == ""
    assert dialog.password.placeholderText() == "stored in keyring"
    assert not dialog.save_button.isEnabled()


def test_without_a_safe_keyring_the_password_is_kept_for_this_session_only(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner, no_keyring: None
) -> None:
    dialog = _dialog(qtbot, store, runner)
    _type(qtbot, dialog.name, "prod")
    _type(qtbot, dialog.password, "hunter2")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    assert "hunter2" not in store.path.read_text(encoding="utf-8")
    assert dialog.session_passwords == {"prod": "hunter2"}
    assert "not saved" in dialog.note.text()
    assert dialog.password.placeholderText() == "kept for this session"


def test_the_tls_group_verifies_by_default_and_saves_its_files(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner, memory_keyring: MemoryKeyring
) -> None:
    dialog = _dialog(qtbot, store, runner)
    _type(qtbot, dialog.name, "secure")
    dialog.tls.setChecked(True)
    assert dialog.verify.isChecked()
    assert dialog.port.specialValueText() == "default (5671)"
    assert dialog.management_url.placeholderText() == "https://127.0.0.1:15671"
    _type(qtbot, dialog.ca_file.edit, "/etc/ssl/ca.pem")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    saved = store.get("secure")
    assert saved is not None and saved.tls and saved.verify and saved.ca_file == "/etc/ssl/ca.pem"


def test_the_embedded_kind_needs_no_address(qtbot: QtBot, store: ProfileStore, runner: JobRunner) -> None:
    dialog = _dialog(qtbot, store, runner)
    dialog.kind.setCurrentIndex(dialog.kind.findData("embedded"))
    assert not dialog.host.isEnabled() and not dialog.password.isEnabled() and not dialog.tls.isEnabled()
    assert dialog.connect_button.isEnabled()


def test_kafka_has_no_vhost_or_management_api(qtbot: QtBot, store: ProfileStore, runner: JobRunner) -> None:
    dialog = _dialog(qtbot, store, runner)
    dialog.kind.setCurrentIndex(dialog.kind.findData("kafka"))
    assert not dialog.vhost.isEnabled() and not dialog.management_url.isEnabled()
    assert dialog.port.specialValueText() == "default (9092)"


def test_a_profile_without_a_name_cannot_be_tested_or_used(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner
) -> None:
    dialog = _dialog(qtbot, store, runner)
    dialog.name.clear()
    assert not dialog.test_button.isEnabled()
    assert not dialog.connect_button.isEnabled()
    assert "name" in dialog.name.toolTip()


def test_deleting_a_profile_asks_and_removes_it_with_its_password(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner, memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = parse_url("amqp://app@h/v", name="old").profile
    store.save(profile)
    store.secrets.set_password(profile, "pw")
    dialog = _dialog(qtbot, store, runner)
    asked: list[str] = []

    def yes(_parent: object, _title: str, text: str, *_: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", yes)
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    assert asked and "old" in asked[0]
    assert store.load() == []
    assert memory_keyring.passwords == {}


def test_connect_saves_the_edits_and_hands_over_profile_and_password(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner, memory_keyring: MemoryKeyring
) -> None:
    store.save(parse_url("amqp://app@h/v", name="dev").profile)
    dialog = _dialog(qtbot, store, runner, current="dev")
    _type(qtbot, dialog.password, "pw")
    with qtbot.waitSignal(dialog.connect_requested) as signal:
        qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    profile, password = signal.args
    assert profile.name == "dev" and password == "pw"
    assert dialog.result() == ConnectionsDialog.DialogCode.Accepted


def test_testing_an_unreachable_port_reports_it_while_the_event_loop_runs(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner
) -> None:
    port = _closed_port()
    store.save(parse_url(f"amqp://guest@127.0.0.1:{port}/?management=http://127.0.0.1:{port}",
                         name="nowhere").profile)
    dialog = _dialog(qtbot, store, runner)
    ticks: list[int] = []
    timer = QTimer(dialog)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(0)

    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert dialog.testing and dialog.progress.isVisible() and dialog.cancel_test_button.isVisible()
    bridge = dialog._test
    assert bridge is not None
    with qtbot.waitSignal(bridge.settled, timeout=20_000):
        pass
    timer.stop()
    assert ticks, "the event loop kept running while the test connected"
    assert "Cannot reach the broker" in dialog.result_text
    assert str(port) in dialog.result_text
    assert not dialog.testing and not dialog.progress.isVisible()
    assert dialog.test_button.isEnabled()


def test_the_ui_keeps_running_until_a_slow_test_answers(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner
) -> None:
    """The probe only returns once the GUI thread has run a timer: a blocked GUI would hang here."""
    released = threading.Event()

    def slow_probe(profile: ConnectionProfile, _password: str | None, _job: Job[Any]) -> ProbeResult:
        if not released.wait(20):
            raise AssertionError("the GUI thread never ran its timer")
        return ProbeResult("Connected to RabbitMQ 9.9", "rabbitmq slow", Capabilities.EXCHANGES)

    dialog = _dialog(qtbot, store, runner, probe_fn=slow_probe)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, released.set)
    qtbot.waitUntil(lambda: not dialog.testing, timeout=20_000)
    assert "Connected to RabbitMQ 9.9" in dialog.result_text
    assert "#1a7f37" in dialog.result_text or "#3fb950" in dialog.result_text  # green


def test_cancel_stops_waiting_at_once(qtbot: QtBot, store: ProfileStore, runner: JobRunner) -> None:
    released = threading.Event()

    def stuck_probe(profile: ConnectionProfile, _password: str | None, _job: Job[Any]) -> ProbeResult:
        released.wait(20)
        return ProbeResult("Connected", "", Capabilities.NONE)

    dialog = _dialog(qtbot, store, runner, probe_fn=stuck_probe)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    bridge = dialog._test
    assert bridge is not None and bridge.job is not None
    qtbot.mouseClick(dialog.cancel_test_button, Qt.MouseButton.LeftButton)
    assert not dialog.testing
    assert "cancelled" in dialog.result_text
    assert dialog.test_button.isEnabled()
    assert bridge.job.cancelled
    released.set()
    bridge.job.wait(20)
    qtbot.wait(10)  # the late result is dropped, not shown
    assert "cancelled" in dialog.result_text


def test_testing_against_rabbitmq_names_the_server_version(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner
) -> None:
    if not port_open("127.0.0.1", 5672) or not port_open("127.0.0.1", 15672):
        from tests.fixtures.services import service_missing

        service_missing("RabbitMQ", "nothing listens on 127.0.0.1:5672/15672")
    store.save(parse_url("amqp://guest@127.0.0.1/", name="local").profile)
    dialog = _dialog(qtbot, store, runner)
    _type(qtbot, dialog.password, "guest")
    bridge = dialog.test_connection()
    assert bridge is not None
    with qtbot.waitSignal(bridge.settled, timeout=20_000):
        pass
    assert "Connected to RabbitMQ " in dialog.result_text
    assert "#1a7f37" in dialog.result_text  # green


def test_the_profiles_file_stays_valid_json_after_edits(
    qtbot: QtBot, store: ProfileStore, runner: JobRunner, memory_keyring: MemoryKeyring
) -> None:
    dialog = _dialog(qtbot, store, runner)
    for name in ("a", "b"):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
        _type(qtbot, dialog.name, name)
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert [p["name"] for p in data["profiles"]] == ["a", "b"]
