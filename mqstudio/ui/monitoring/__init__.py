"""Live monitoring: the Throughput dock and the canvas overlays, fed by one statistics sampler.

Owns: `Monitoring` (the window's sampler follows the Broker menu's session: a new `Sampler` on each
session, stopped without waiting when it goes) and `install_monitoring(window)`, which adds the
"Throughput" dock (tabbed with Problems), its entry under View ▸ Panels, and View ▸ Live Overlays.

The sampler is the only thing that waits on the broker, on its own thread; the panel and the overlays
read its snapshots from timers. Imports PySide6, mqstudio.runtime and mqstudio.ui.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget

from mqstudio.runtime.sampler import Sampler
from mqstudio.ui.monitoring.overlays import OverlayController
from mqstudio.ui.monitoring.throughput import ThroughputPanel

__all__ = ["Monitoring", "install_monitoring"]

SAMPLE_INTERVAL_S = 1.0
WATCH_MS = 500


class Monitoring(QObject):
    """Keeps one `Sampler` on `broker.session` (a `BrokerController`) and hands it to the panel and
    the overlays. Checks the session on every ``state_changed`` and on a slow timer (Disconnect closes
    a session without a state signal)."""

    def __init__(self, broker: Any, panel: ThroughputPanel, overlays: OverlayController,
                 parent: QObject | None = None, *, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(parent)
        self.broker = broker
        self.panel = panel
        self.overlays = overlays
        self.interval_s = interval_s
        self.sampler: Sampler | None = None
        self.dock: QDockWidget | None = None
        self.overlays_action: QAction | None = None
        self._session: Any = None
        broker.state_changed.connect(lambda _status: self.follow())
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_MS)
        self._watch.timeout.connect(self.follow)
        self._watch.start()

    def follow(self) -> None:
        """Start a sampler for a new session, stop the one of a session that went."""
        session = getattr(self.broker, "session", None)
        if session is self._session:
            return
        old, self.sampler = self.sampler, None
        if old is not None:
            old.stop()  # no wait: it ends after its call in progress
        self._session = session
        if session is not None:
            self.sampler = Sampler(session, self.interval_s, name="mqstudio-stats").start()
        self.panel.set_sampler(self.sampler)
        self.overlays.set_sampler(self.sampler)

    def shutdown(self) -> None:
        """Stop following (a closed session also ends its sampler on its own)."""
        self._watch.stop()
        if self.sampler is not None:
            self.sampler.stop()


def install_monitoring(window: Any) -> Monitoring:
    """Add live monitoring to a `MainWindow` (needs its editor, scene, broker, menus and docks)."""
    panel = ThroughputPanel(window.editor, window)
    dock = QDockWidget("Throughput", window)
    dock.setObjectName("ThroughputDock")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    anchor = getattr(window, "lint_dock", None)
    if anchor is not None:
        window.tabifyDockWidget(anchor, dock)
        anchor.raise_()
    window.docks_menu.addAction(dock.toggleViewAction())

    overlays = OverlayController(window.scene, parent=window)
    action = QAction("Live &Overlays", window)
    action.setCheckable(True)
    action.setStatusTip("Show message rates on bindings and depth, consumers and dead-lettering on queues")
    action.toggled.connect(overlays.set_enabled)
    window.view_menu.insertAction(window.docks_menu.menuAction(), action)
    window.view_menu.insertSeparator(window.docks_menu.menuAction())

    monitoring = Monitoring(window.broker, panel, overlays, window)
    monitoring.dock, monitoring.overlays_action = dock, action
    return monitoring
