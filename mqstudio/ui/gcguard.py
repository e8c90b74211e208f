"""Python's cyclic garbage collector, run on the GUI thread only.

Owns: `GuiGarbageCollector` and `install` (called once, right after the QApplication exists).

Why: CPython runs its cyclic collector on whichever thread happens to cross an allocation threshold.
Widgets and pyqtgraph items often sit in reference cycles (a slot lambda or helper object pointing back
at its owner, pyqtgraph's menus, timers and parameter trees), so a dead cycle holding a Python-owned
QObject — a QTimer, a QMenu, a document editor — used to be reclaimed on a worker thread (a backend
session, the sampler, the embedded broker's loop), running its C++ destructor there while the GUI
thread used it: "Timers cannot be stopped from another thread", then a SIGSEGV a little later inside
``QApplication.processEvents``. `install` turns automatic collection off and collects from a QTimer on
the GUI thread instead, generation by generation with the interpreter's own thresholds (as pyqtgraph's
``GarbageCollector`` does), so Qt objects are only ever destroyed on the thread that owns them.

Imports PySide6 only.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

INTERVAL_MS = 250


class GuiGarbageCollector(QObject):
    """Collects cyclic garbage on the GUI thread every `interval_ms` (automatic collection is off
    while it is installed; `uninstall` turns it back on)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)

    def install(self) -> None:
        gc.disable()
        self.timer.start()

    def uninstall(self) -> None:
        self.timer.stop()
        gc.enable()

    def check(self) -> int:
        """Collect the generations whose counts passed their thresholds (what the interpreter would
        have done on its own); returns the number of objects found unreachable."""
        app = QCoreApplication.instance()
        if app is not None and QThread.currentThread() is not app.thread():
            return 0  # never from another thread: that is the whole point
        l0, l1, l2 = gc.get_count()
        t0, t1, t2 = self.threshold
        found = 0
        if l0 > t0:
            found = gc.collect(0)
            if l1 > t1:
                found += gc.collect(1)
                if l2 > t2:
                    found += gc.collect(2)
        return found


def install(app: QCoreApplication) -> GuiGarbageCollector:
    """Collect garbage on `app`'s thread only, from now on; idempotent (returns the installed one)."""
    existing = app.findChild(GuiGarbageCollector)
    if existing is not None:
        existing.install()
        return existing
    collector = GuiGarbageCollector(app)
    collector.install()
    return collector
