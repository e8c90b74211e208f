"""Shared test configuration: offscreen Qt, isolated settings and data directories."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = ["tests.fixtures.rabbitmq", "tests.fixtures.kafka"]


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep QSettings, platformdirs data and config out of the real home directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests never run app.exec(), so aboutToQuit never fires: release the clipboard ourselves, or
    PySide6 crashes in QApplication's destructor after a copy (see ui.canvas.scene.release_clipboard)."""
    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is not None:
        from mqstudio.ui.canvas.scene import release_clipboard

        release_clipboard()
