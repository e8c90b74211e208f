"""Help ▸ About: the versions mqstudio runs on and where the embedded broker listens (or that it does not)."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, qVersion
from PySide6.QtWidgets import QMessageBox

from mqstudio import __version__
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.ui.about import NOT_LISTENING, about_html, listener_address, versions
from mqstudio.ui.mainwindow import MainWindow


def test_versions_come_from_the_installed_distributions() -> None:
    found = dict(versions())
    assert found["mqstudio"] == __version__
    assert found["Qt"] == qVersion()
    assert found["PySide6"] == metadata.version("PySide6-Essentials")
    assert found["pika"] == metadata.version("pika")
    assert found["kafka-python"] == metadata.version("kafka-python")
    assert found["Python"].startswith(platform.python_version())


def test_the_listener_is_shown_only_while_the_broker_serves() -> None:
    broker = EmbeddedBrokerThread(port=0)
    assert listener_address(None) is None
    assert listener_address(broker) is None  # not started
    host, port = broker.start()
    try:
        assert listener_address(broker) == f"amqp://{host}:{port}"
        text = about_html(listener_address(broker))
        assert f"amqp://{host}:{port}" in text and NOT_LISTENING not in text
    finally:
        broker.stop()
    assert listener_address(broker) is None


def test_the_about_box_lists_every_version_and_says_when_the_broker_is_not_listening(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), autosave_dir=tmp_path)
    qtbot.addWidget(window)
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, title, text: shown.append((title, text)))
    window.action_set.about.trigger()
    window.files.shutdown()
    title, text = shown[0]
    assert title == "About mqstudio"
    for name in ("PySide6-Essentials", "pika", "kafka-python"):
        assert metadata.version(name) in text
    assert qVersion() in text and platform.python_version() in text
    assert f"Embedded broker</td><td>{NOT_LISTENING}" in text
