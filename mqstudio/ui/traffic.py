"""Canvas "run" mode and the first-run live demo.

Owns: `BrokerAccess` (what the traffic generator and the Messages panel need from the window's
`BrokerController`: the embedded engine's host, or a factory of fresh backends for the connected
profile), `TrafficUi` (Run / Stop on the selected producer and consumer nodes, Run All / Stop All, in
the toolbar, the Broker menu and the canvas context menu; a running node shows a green pill with its
count, polled every 500 ms — no per-message signal), `install` (adds both to a `MainWindow` plus the
Messages dock), `start_demo` (open the demo, start the embedded broker, plan + apply on the session
thread, then run every generator and tail ``orders``), `is_first_run` and `run_for` (``--wait``).

Runners live on their own threads (`mqstudio.ops.traffic`); the GUI thread only asks them to stop
(``timeout=0``) except at shutdown, where they are joined briefly.
Imports PySide6, mqstudio.core, mqstudio.ops, mqstudio.runtime, mqstudio.ui and backends.base only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QEventLoop, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QGraphicsView, QMenu, QWidget

from mqstudio.backends.base import Backend, BackendKind
from mqstudio.core.model import Consumer, Exchange, Producer, Queue, Topic
from mqstudio.ops.traffic import EmbeddedBroker, TrafficController, TrafficError
from mqstudio.runtime.connect import open_backend, snapshot
from mqstudio.runtime.jobs import SessionState, SessionStatus
from mqstudio.ui.qtbridge import JobBridge

POLL_MS = 500
DEMO_FILE = "demo.mqs.json"
DEMO_TAIL = "orders"
NO_DEMO_ENV = "MQSTUDIO_NO_DEMO"


class BrokerAccess:
    """Reads the window's `BrokerController` (its profile, password and embedded broker thread)."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    @property
    def connected(self) -> bool:
        return bool(getattr(self.controller, "connected", False))

    def _profile(self) -> Any:
        return getattr(self.controller, "profile", None) if self.connected else None

    def embedded(self) -> EmbeddedBroker | None:
        profile = self._profile()
        thread = getattr(self.controller, "_broker_thread", None)
        if profile is None or profile.kind is not BackendKind.EMBEDDED or thread is None:
            return None
        return EmbeddedBroker(thread, profile.vhost) if getattr(thread, "running", False) else None

    def backend_factory(self) -> Callable[[], Backend] | None:
        """Makes an unconnected backend for the connected profile (one per runner or tail)."""
        profile = self._profile()
        if profile is None:
            return None
        password = getattr(self.controller, "_password", None)
        thread = getattr(self.controller, "_broker_thread", None)
        return lambda: open_backend(profile, password, thread)


class TrafficUi(QObject):
    """Signals: ``message(str)`` for the status bar, ``running_changed()``."""

    message = Signal(str)
    running_changed = Signal()

    def __init__(
        self, editor: Any, scene: Any, view: QGraphicsView, access: BrokerAccess, parent: QObject
    ) -> None:
        super().__init__(parent)
        self.editor, self.scene, self.view, self.access = editor, scene, view, access
        self.controller: TrafficController | None = None
        self._shown: set[str] = set()

        def act(text: str, tip: str, slot: Callable[[], object], shortcut: str = "") -> QAction:
            action = QAction(text, self)
            action.setStatusTip(tip)
            action.setToolTip(f"{text} — {tip}")
            if shortcut:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
            return action

        self.run_action = act("Run", "Start the selected producers and consumers", self.run_selected, "F5")
        self.stop_action = act("Stop", "Stop the selected producers and consumers", self.stop_selected,
                               "Shift+F5")
        self.run_all_action = act("Run All", "Start every producer and consumer of the design", self.run_all,
                                  "Ctrl+F5")
        self.stop_all_action = act("Stop All", "Stop every producer and consumer", self.stop_all,
                                   "Ctrl+Shift+F5")
        self.extra_actions: list[list[QAction]] = []  # more context-menu groups, set by the window
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.refresh)
        editor.document_replaced.connect(self._on_document_replaced)
        editor.selection_changed.connect(lambda *_: self._update_actions())
        self._update_actions()

    @property
    def actions(self) -> list[QAction]:
        return [self.run_action, self.stop_action, self.run_all_action, self.stop_all_action]

    # -- control -----------------------------------------------------------------------------------
    def _controller(self) -> TrafficController | None:
        if self.controller is not None:
            return self.controller
        embedded = self.access.embedded()
        factory = None if embedded is not None else self.access.backend_factory()
        if embedded is None and factory is None:
            self.message.emit("Connect to a broker first: Broker → Connect to Embedded Broker")
            return None
        self.controller = TrafficController(
            self.editor.document.topology, embedded=embedded, backend_factory=factory
        )
        return self.controller

    def _selected_clients(self) -> list[str]:
        topology = self.editor.document.topology
        return [i for i in self.editor.selection if isinstance(topology.get(i), Producer | Consumer)]

    def run_nodes(self, node_ids: list[str]) -> int:
        controller = self._controller()
        if controller is None:
            return 0
        started = 0
        for node_id in node_ids:
            try:
                controller.start(node_id)
                started += 1
            except TrafficError as exc:
                self.message.emit(str(exc))
        self._after_change()
        return started

    def run_selected(self) -> int:
        ids = self._selected_clients()
        if not ids:
            self.message.emit("Select producers or consumers to run")
            return 0
        return self.run_nodes(ids)

    def stop_selected(self) -> None:
        if self.controller is not None:
            for node_id in self._selected_clients():
                self.controller.stop(node_id, timeout=0)
        self._after_change()

    def run_all(self) -> int:
        controller = self._controller()
        if controller is None:
            return 0
        problems = controller.start_all()
        for text in problems.values():
            self.message.emit(text)
        self._after_change()
        running = len(controller.running_ids())
        if running:
            self.message.emit(f"Running {running} producers and consumers on {self._where()}")
        return running

    def stop_all(self, timeout: float = 0) -> None:
        controller, self.controller = self.controller, None
        if controller is not None:
            controller.stop_all(timeout=timeout)
        self._after_change()
        self._clear_items()

    def shutdown(self) -> None:
        """The window closes: stop every runner and join them (briefly)."""
        self._timer.stop()
        self.stop_all(timeout=5.0)

    def _where(self) -> str:
        return "the embedded broker" if self.access.embedded() is not None else "the broker"

    # -- display -----------------------------------------------------------------------------------
    def _after_change(self) -> None:
        if self.controller is not None and self.controller.running_ids():
            self._timer.start()
        self.refresh()
        self._update_actions()
        self.running_changed.emit()

    def refresh(self) -> None:
        """Poll the runners: update each client item's pill, stop polling when nothing runs."""
        controller = self.controller
        running = set(controller.running_ids()) if controller is not None else set()
        for node_id in self._shown | running:
            item = self.scene.node_item(node_id)
            if item is not None and hasattr(item, "set_running"):
                text = controller.describe(node_id) if controller is not None else ""
                item.set_running(node_id in running, text)
        if controller is not None:
            for node_id, stats in controller.stats().items():
                if stats.error and node_id in self._shown and node_id not in running:
                    self.message.emit(f"{stats.name} stopped: {stats.error}")
        self._shown = running
        if not running:
            self._timer.stop()
        self._update_actions()

    def _clear_items(self) -> None:
        for item in self.scene.node_items():
            if hasattr(item, "set_running"):
                item.set_running(False)
        self._shown = set()

    def _update_actions(self) -> None:
        selected = self._selected_clients()
        running = set(self.controller.running_ids()) if self.controller is not None else set()
        self.run_action.setEnabled(any(i not in running for i in selected))
        self.stop_action.setEnabled(any(i in running for i in selected))
        self.run_all_action.setEnabled(bool(self.editor.document.topology.producers
                                            or self.editor.document.topology.consumers))
        self.stop_all_action.setEnabled(bool(running))

    def _on_document_replaced(self) -> None:
        self.stop_all()

    def _context_menu(self, pos: QPoint) -> None:
        self.select_at(pos)
        menu = self.context_menu()
        menu.exec(self.view.mapToGlobal(pos))
        menu.deleteLater()

    def select_at(self, pos: QPoint) -> None:
        """A right-click acts on the node under the pointer: select it unless it is selected already."""
        item = self.scene.node_item_at(self.view.mapToScene(pos))
        if item is not None and item.node_id not in self.editor.selection:
            self.editor.select([item.node_id])

    def context_menu(self) -> QMenu:
        """Run/Stop, then the window's edit actions for the selection (`extra_actions`, set by the window)."""
        menu = QMenu(self.view)
        menu.addActions(self.actions)
        groups = [[a for a in group if a.isEnabled()] for group in self.extra_actions]
        for group in (g for g in groups if g):
            menu.addSeparator()
            menu.addActions(group)
        return menu


# -- the window ---------------------------------------------------------------------------------------


def _design_names(topology: Any) -> list[str]:
    nodes = [n for n in topology.nodes if isinstance(n, Exchange | Queue | Topic)]
    return [n.name for n in sorted(nodes, key=lambda n: (not isinstance(n, Exchange), n.name))]


class _CloseWatcher(QObject):
    def __init__(self, window: QWidget, on_closed: Callable[[], None]) -> None:
        super().__init__(window)
        self._window, self._on_closed = window, on_closed
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._window and event.type() == QEvent.Type.Close:
            QTimer.singleShot(0, self, self._check)  # after closeEvent decided (unsaved changes)
        return False

    def _check(self) -> None:
        if not self._window.isVisible():
            self._on_closed()


def install(window: Any) -> TrafficUi:
    """Add run mode (toolbar, Broker menu, canvas context menu) and the Messages dock to `window`."""
    from mqstudio.ui.panels.messages import MessageTailPanel

    access = BrokerAccess(window.broker)
    traffic = TrafficUi(window.editor, window.scene, window.view, access, window)
    window.toolbar.addSeparator()
    window.toolbar.addActions([traffic.run_all_action, traffic.stop_all_action])
    menu = getattr(window, "broker_menu", None)
    if menu is not None:
        menu.addSeparator()
        menu.addActions(traffic.actions)
    traffic.message.connect(window.show_message)
    actions = getattr(window, "action_set", None)
    if actions is not None:
        traffic.extra_actions = [
            [actions.generate_code],
            [actions.rename, actions.copy, actions.paste, actions.delete],
        ]

    panel = MessageTailPanel(None, window)
    dock = QDockWidget("Messages", window)
    dock.setObjectName("MessagesDock")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    lint_dock = getattr(window, "lint_dock", None)
    if lint_dock is not None:
        window.tabifyDockWidget(lint_dock, dock)
    docks_menu = getattr(window, "docks_menu", None)
    if docks_menu is not None:
        docks_menu.addAction(dock.toggleViewAction())
    panel.message.connect(window.show_message)

    def on_state(status: object) -> None:
        ok = isinstance(status, SessionStatus) and status.state is SessionState.CONNECTED
        panel.set_backend_factory(access.backend_factory() if ok else None)
        if not ok:
            traffic.stop_all()
            if panel.tailing:
                panel.stop()

    def on_document() -> None:
        panel.set_targets(_design_names(window.editor.document.topology))

    window.broker.state_changed.connect(on_state)
    # Disconnect drops the session's bridge before any state is reported: stop on the action itself.
    window.broker.disconnect_action.triggered.connect(
        lambda: on_state(SessionStatus(SessionState.DISCONNECTED, "disconnected"))
    )
    window.editor.document_replaced.connect(on_document)
    on_document()

    def closed() -> None:
        traffic.shutdown()
        panel.shutdown()

    _CloseWatcher(window, closed)
    window.traffic_ui, window.tail_panel, window.messages_dock = traffic, panel, dock
    return traffic


# -- the demo -----------------------------------------------------------------------------------------


def is_first_run(window: Any) -> bool:
    """No previous session: no saved window layout and no recent files (and not switched off)."""
    if os.environ.get(NO_DEMO_ENV):
        return False
    settings = window.settings
    if settings.value("window/geometry") is not None or settings.value("demo/shown") is not None:
        return False
    return not window.files.recent_files()


def start_demo(window: Any, broker_thread: Any = None, on_running: Callable[[], None] | None = None) -> bool:
    """Open the demo on the embedded broker: connect (starting the broker on the session thread),
    apply the demo's topology there, then run every generator and tail ``orders``. `broker_thread`
    replaces the app's persistent broker (screenshots: in memory, port 0). False if the demo is missing."""
    from mqstudio.ui.resources import examples

    demo = next((e for e in examples() if e.path.name == DEMO_FILE), None)
    if demo is None or not window.files.open_example(demo):
        return False
    window.settings.setValue("demo/shown", True)
    traffic: TrafficUi = window.traffic_ui
    panel = window.tail_panel
    if broker_thread is not None:
        window.broker.set_embedded_broker(broker_thread, owned=True)
    topology = snapshot(window.editor.document.topology)
    jobs: list[JobBridge] = []

    def applied(_report: object) -> None:
        traffic.run_all()
        window.messages_dock.raise_()
        window.resizeDocks([window.messages_dock], [300], Qt.Orientation.Vertical)
        panel.start(DEMO_TAIL)
        window.show_message("Live demo: producers and consumers run on the embedded broker (Stop All stops)")
        if on_running is not None:
            on_running()

    def on_state(status: object) -> None:
        if not isinstance(status, SessionStatus) or status.state is not SessionState.CONNECTED:
            return
        with contextlib.suppress(RuntimeError, TypeError):
            window.broker.state_changed.disconnect(on_state)
        session = window.broker.session
        if session is None:
            return
        job = session.call(lambda b: b.apply(b.plan(topology)), title="Apply the demo")
        bridge = JobBridge(job, window)
        bridge.finished.connect(applied)
        bridge.failed.connect(lambda text: window.show_message(f"The demo could not start: {text}", 8000))
        jobs.append(bridge)

    window.broker.state_changed.connect(on_state)
    window.broker.connect_embedded()
    return True


def run_for(seconds: float) -> None:
    """Let the event loop run for `seconds` (``--screenshot --wait``)."""
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def live_screenshot(window: Any, seconds: float, demo: bool) -> None:
    """Before a ``--wait`` screenshot: an in-memory broker on a free port, the demo (or the open file's
    topology) applied, every generator running and the first exchange tailed, for `seconds`."""
    from mqstudio.runtime.brokerthread import EmbeddedBrokerThread

    broker_thread = EmbeddedBrokerThread(port=0)
    if demo:
        start_demo(window, broker_thread)
    else:
        window.broker.set_embedded_broker(broker_thread, owned=True)
        topology = snapshot(window.editor.document.topology)

        def on_state(status: object) -> None:
            if isinstance(status, SessionStatus) and status.state is SessionState.CONNECTED:
                with contextlib.suppress(RuntimeError, TypeError):
                    window.broker.state_changed.disconnect(on_state)
                bridge = JobBridge(window.broker.session.call(lambda b: b.apply(b.plan(topology))), window)
                names = _design_names(window.editor.document.topology)
                bridge.finished.connect(lambda _r: (window.traffic_ui.run_all(),
                                                    names and window.tail_panel.start(names[0])))

        window.broker.state_changed.connect(on_state)
        window.broker.connect_embedded()
    run_for(seconds)
    panel = window.tail_panel
    panel.drain()
    if panel.model.rowCount():  # show one message in full, as a user would after a click
        panel.table.selectRow(panel.model.rowCount() - 1)
    window.traffic_ui.refresh()


def stop_live(window: Any) -> None:
    """After a ``--wait`` screenshot: stop the generators and the tail, close the connection and the
    in-memory broker (all joined)."""
    window.traffic_ui.shutdown()
    window.tail_panel.shutdown()
    window.broker.shutdown()
