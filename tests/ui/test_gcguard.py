"""Qt objects in dead reference cycles are destroyed on the GUI thread, never on a worker thread
(a QTimer or QMenu destroyed on a backend session's or the sampler's thread crashed the UI tests)."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from mqstudio.ui import gcguard


class _Cyclic(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.me = self  # a reference cycle: only the cyclic collector can reclaim it


def _churn() -> None:
    """Allocate far past the generation-0 threshold (with automatic collection on, this collects)."""
    for _ in range(50):
        junk: list[object] = [[i] for i in range(10_000)]
        junk.append(junk)
        del junk


def test_a_dead_cycle_holding_a_qobject_is_reclaimed_on_the_gui_thread(
    qtbot: QtBot, qapp: QApplication
) -> None:
    collector = gcguard.install(qapp)
    assert not gc.isenabled()
    assert collector.timer.isActive()

    died_on: list[str] = []
    obj = _Cyclic()
    weakref.finalize(obj, lambda: died_on.append(threading.current_thread().name))
    del obj

    collections_off_main: list[str] = []

    def watch(phase: str, _info: dict[str, int]) -> None:
        if phase == "start" and threading.current_thread() is not threading.main_thread():
            collections_off_main.append(threading.current_thread().name)

    gc.callbacks.append(watch)
    try:
        worker = threading.Thread(target=_churn, name="test-churn")
        worker.start()
        worker.join(30)
        assert collections_off_main == []
        assert died_on == []
        qtbot.waitUntil(lambda: bool(died_on), timeout=5_000)  # the collector's timer, on this thread
    finally:
        gc.callbacks.remove(watch)
    assert died_on == [threading.main_thread().name]


def test_check_never_collects_off_the_gui_thread() -> None:
    collector = gcguard.GuiGarbageCollector()
    collector.threshold = (0, 0, 0)  # anything counted is due
    _Cyclic()  # something to find
    found: list[int] = []
    worker = threading.Thread(target=lambda: found.append(collector.check()), name="test-check")
    worker.start()
    worker.join(10)
    assert found == [0]
    assert collector.check() > 0
    collector.deleteLater()
