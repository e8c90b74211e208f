"""First run: a fresh profile (no settings, no recent files) opens the demo on the embedded broker with
its generators running, and live graphs and dead letters appear — what `make run` shows a new user. The
broker is the app's persistent kind (a data directory) on a free port.

The goal is "within 10 seconds"; the test prints the time it measured but waits up to `PATIENCE_S` so a
loaded machine does not fail it (speed is measured, not asserted)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.traffic import is_first_run, start_demo, stop_live

GOAL_S = 10.0
PATIENCE_S = 30.0


@pytest.fixture
def window(qtbot: Any, tmp_path: Path) -> Iterator[MainWindow]:
    baseline = {t.name for t in threading.enumerate()}
    settings = QSettings(str(tmp_path / "fresh-profile.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    yield w
    stop_live(w)
    w.monitoring.shutdown()
    w.files.shutdown()
    left = [t.name for t in threading.enumerate() if t.name not in baseline and "traffic" in t.name]
    assert not left


def test_a_fresh_profile_shows_live_graphs_and_dead_letters(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    assert is_first_run(window)
    started = time.monotonic()
    broker = EmbeddedBrokerThread(tmp_path / "broker", port=0)  # durable, as the app's own broker
    assert start_demo(window, broker)
    assert window.files.display_name.startswith("demo")

    def remaining_ms() -> int:
        return max(1, int((PATIENCE_S - (time.monotonic() - started)) * 1000))

    # Generators: every producer and consumer of the demo runs.
    qtbot.waitUntil(lambda: window.traffic_ui.controller is not None, timeout=remaining_ms())
    topology = window.editor.document.topology
    clients = {n.id for n in (*topology.producers, *topology.consumers)}
    assert set(window.traffic_ui.controller.running_ids()) == clients

    # Live graphs: the Throughput dock charts series with real samples (rates > 0).
    window.monitoring.dock.raise_()
    panel = window.monitoring.panel

    def graphs_live() -> bool:
        panel.refresh()
        return any(len(y) >= 2 and float(np.nanmax(y)) > 0
                   for y in (panel.series_data(k)[1] for k in panel.shown_series()))

    qtbot.waitUntil(graphs_live, timeout=remaining_ms())

    # Dead letters: the Dead Letters dock finds the demo's dead-letter queue and counts messages in it.
    dead_dock = window.dead_letters.parentWidget()
    dead_dock.raise_()
    dead = window.dead_letters

    def dead_letters_shown() -> bool:
        dead.poll()
        return dead.counts.get("orders.dead", 0) > 0  # the end of the line: failed twice

    qtbot.waitUntil(dead_letters_shown, timeout=remaining_ms())
    elapsed = time.monotonic() - started
    assert "orders.dead" in dead.dlqs
    print(f"first run: live graphs and dead letters after {elapsed:.1f} s (goal {GOAL_S:.0f} s)")
