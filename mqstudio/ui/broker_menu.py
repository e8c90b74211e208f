"""The Broker menu: connect to a broker, see the connection's state, load its topology, plan and apply.

Owns: `BrokerController` (the menu's actions, the connection — one `BackendSession` owning one
backend on its own thread — the status-bar label, the vhost picker and the palette greying).

Every network call runs on the session's thread (or a `JobRunner` worker) and comes back through
`ui.qtbridge` as a queued signal: the GUI thread never waits on a broker. Backends are made only by
`runtime.connect.open_backend`; this module never imports a backend other than `backends.base`.
"Load Topology from Broker" fetches first, then asks about unsaved changes through the window's
`FileController`, and opens the result as a new untitled document laid out like View → Auto Layout.
Imports PySide6, mqstudio.core, mqstudio.runtime, mqstudio.ui and backends.base only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QInputDialog, QLabel, QLineEdit, QMenu, QMessageBox, QWidget

from mqstudio.backends.base import Backend, BackendKind, Capabilities
from mqstudio.core.document import TopologyDocument
from mqstudio.runtime.connect import list_vhosts, node_kinds, open_backend
from mqstudio.runtime.jobs import BackendSession, JobRunner, SessionState, SessionStatus
from mqstudio.runtime.profiles import ConnectionProfile, ProfileStore
from mqstudio.ui.canvas.layout import compute_layout
from mqstudio.ui.dialogs.apply import PlanApplyDialog
from mqstudio.ui.dialogs.connections import ConnectionsDialog, error_text
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.qtbridge import JobBridge, SessionBridge

IDLE_TEXT = "Embedded broker: not running"
EMBEDDED = ConnectionProfile("Embedded broker", BackendKind.EMBEDDED, host="", port=0)
_PRODUCT = {BackendKind.EMBEDDED: "embedded broker", BackendKind.RABBITMQ: "RabbitMQ",
            BackendKind.KAFKA: "Kafka"}


class _Files(Protocol):
    def maybe_save(self) -> bool: ...


class _Palette(Protocol):
    def set_enabled_kinds(self, kinds: Any, reason: str = "") -> None: ...


class BrokerController(QObject):
    """Signals: ``state_changed(SessionStatus)`` (GUI thread), ``message(str)`` for the status bar,
    ``topology_loaded(TopologyDocument)`` after Load Topology replaced the open document."""

    state_changed = Signal(object)
    message = Signal(str)
    topology_loaded = Signal(object)

    def __init__(
        self,
        window: QWidget,
        editor: DocumentEditor,
        files: _Files,
        palette: _Palette | None = None,
        *,
        store: ProfileStore | None = None,
        runner: JobRunner | None = None,
        broker_thread: Any = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._editor = editor
        self._files = files
        self._palette = palette
        self.store = store if store is not None else ProfileStore()
        self.runner = runner if runner is not None else JobRunner(2, name="mqstudio-ui-job")
        self._own_runner = runner is None
        self._broker_thread = broker_thread
        self._own_broker = False
        self.session_passwords: dict[str, str] = {}
        self.session: BackendSession | None = None
        self.profile: ConnectionProfile | None = None
        self._password: str | None = None
        self._bridge: SessionBridge | None = None
        self.capabilities: Capabilities | None = None
        self.vhosts: list[str] = []
        self._jobs: set[JobBridge] = set()
        self.label = QLabel(window)
        self.label.setObjectName("BrokerStatus")
        self._show_idle()
        self._build_actions()
        self._update_actions()

    # -- actions and menu ----------------------------------------------------------------------
    def _build_actions(self) -> None:
        def act(text: str, tip: str, slot: Any) -> QAction:
            action = QAction(text, self)
            action.setStatusTip(tip)
            action.setToolTip(text.replace("&", "").removesuffix("…"))
            action.triggered.connect(slot)
            return action

        self.connect_embedded_action = act(
            "Connect to &Embedded Broker", "Use the broker that runs inside mqstudio", self.connect_embedded
        )
        self.connect_action = act(
            "&Connect…", "Choose a connection profile and connect", self.choose_and_connect
        )
        self.disconnect_action = act(
            "&Disconnect", "Close the connection to the broker", self.disconnect_broker
        )
        self.manage_action = act(
            "&Manage Connections…", "Add, edit, test or delete connection profiles", self.manage_connections
        )
        self.load_action = act(
            "&Load Topology from Broker",
            "Open the broker's exchanges, queues and bindings as a new document",
            self.load_topology,
        )
        self.apply_action = act(
            "&Plan and Apply…", "See what applying this design to the broker would change, then apply it",
            self.plan_and_apply,
        )
        self.vhost_menu = QMenu("&Virtual Host", self._window)
        self.vhost_group = QActionGroup(self)
        self.vhost_group.triggered.connect(lambda action: self.switch_vhost(str(action.data())))

    def build_menu(self, menu: QMenu) -> QMenu:
        menu.addActions([self.connect_embedded_action, self.connect_action, self.disconnect_action])
        menu.addSeparator()
        menu.addMenu(self.vhost_menu)
        menu.addAction(self.manage_action)
        menu.addSeparator()
        menu.addActions([self.load_action, self.apply_action])
        return menu

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.state is SessionState.CONNECTED

    def _update_actions(self) -> None:
        self.disconnect_action.setEnabled(self.session is not None)
        self.load_action.setEnabled(self.connected)
        self.apply_action.setEnabled(self.connected and self._can_write())
        self.vhost_menu.setEnabled(self.connected and len(self.vhosts) > 1)

    def _can_write(self) -> bool:
        return self.capabilities is None or Capabilities.TOPOLOGY_WRITE in self.capabilities

    # -- connecting ----------------------------------------------------------------------------
    def connect_embedded(self) -> None:
        self.connect_profile(EMBEDDED, None)

    def choose_and_connect(self) -> None:
        dialog = self._connections_dialog()
        dialog.setWindowTitle("Connect")
        dialog.connect_requested.connect(self.connect_profile)
        dialog.exec()

    def manage_connections(self) -> None:
        dialog = self._connections_dialog()
        dialog.connect_requested.connect(self.connect_profile)
        dialog.exec()

    def _connections_dialog(self) -> ConnectionsDialog:
        current = self.profile.name if self.profile is not None else None
        return ConnectionsDialog(
            self.store, self.runner, self._window, session_passwords=self.session_passwords, current=current
        )

    def connect_profile(self, profile: ConnectionProfile, password: str | None = None) -> bool:
        """Open a session for `profile` (closing the current one). Asks for a missing password."""
        if password is None and profile.needs_password:
            password = self.session_passwords.get(profile.name)
            if password is None:
                password = self._ask_password(profile)
                if password is None:
                    return False
        self._close_session()
        self.profile, self._password = profile, password
        self.capabilities = None
        self.vhosts = []
        bridge = SessionBridge(self)
        bridge.state_changed.connect(self._on_state)
        self._bridge = bridge
        broker_thread = self._embedded_broker() if profile.kind is BackendKind.EMBEDDED else None
        self.session = BackendSession(
            lambda: open_backend(profile, password, _running(broker_thread)),
            listener=bridge.report,
            name=f"mqstudio-session-{profile.name}",
        )
        self._show(SessionStatus(SessionState.CONNECTING))
        self.session.start()
        self._update_actions()
        return True

    def set_embedded_broker(self, broker_thread: Any, *, owned: bool = False) -> None:
        """Use `broker_thread` (an `EmbeddedBrokerThread`) for Connect to Embedded Broker; with `owned`,
        `shutdown` stops it."""
        self._broker_thread = broker_thread
        self._own_broker = owned

    def _embedded_broker(self) -> Any:
        """The app's embedded broker thread (created on first use, started by the session thread):
        durable state under the platformdirs user data directory, AMQP on 5672 or the next free port."""
        if self._broker_thread is None:
            import platformdirs

            from mqstudio.runtime.brokerthread import EmbeddedBrokerThread

            data = Path(platformdirs.user_data_dir("mqstudio", appauthor=False)) / "broker"
            data.mkdir(parents=True, exist_ok=True)
            self._broker_thread = EmbeddedBrokerThread(data)
            self._own_broker = True
        return self._broker_thread

    def _ask_password(self, profile: ConnectionProfile) -> str | None:
        text, ok = QInputDialog.getText(
            self._window, "Password", f"Password for {profile.user or 'the user'} at {profile.url}:",
            QLineEdit.EchoMode.Password,
        )
        return text if ok else None

    def disconnect_broker(self) -> None:
        self._close_session()
        self.profile = None
        self._show_idle()
        if self._palette is not None:
            self._palette.set_enabled_kinds(None)
        self._update_actions()
        self.message.emit("Disconnected")

    def _show_idle(self) -> None:
        self.label.setText(IDLE_TEXT)
        self.label.setToolTip("Not connected: Broker → Connect to Embedded Broker starts it")

    def switch_vhost(self, vhost: str) -> None:
        if self.profile is None or vhost == self.profile.vhost:
            return
        self.connect_profile(self.profile.copy(vhost=vhost), self._password)

    def _close_session(self) -> None:
        session, self.session = self.session, None
        if self._bridge is not None:
            self._bridge.state_changed.disconnect(self._on_state)
            self._bridge = None
        if session is not None:
            # Closing joins the session thread, which may be inside a connect: leave that to a worker.
            self.runner.submit(lambda _job: session.close(), title="Close the broker connection")
        self.capabilities = None
        self.vhosts = []

    # -- state ---------------------------------------------------------------------------------
    def _on_state(self, status: object) -> None:
        assert isinstance(status, SessionStatus)
        self._show(status)
        if status.state is SessionState.CONNECTED:
            self._query_backend()
        self._update_actions()
        self.state_changed.emit(status)

    def _show(self, status: SessionStatus) -> None:
        profile = self.profile
        if profile is None:
            return
        where = profile.name if profile.kind is BackendKind.EMBEDDED else profile.describe()
        state = {
            SessionState.CONNECTING: "connecting…",
            SessionState.CONNECTED: "connected",
            SessionState.RECONNECTING: "reconnecting…",
            SessionState.DISCONNECTED: "disconnected",
        }[status.state]
        if status.state is SessionState.RECONNECTING and status.retry_in is not None:
            state = f"reconnecting in {status.retry_in:.0f} s…"
        self.label.setText(f"{where}: {state}")
        self.label.setToolTip(status.reason or where)
        if status.state is SessionState.DISCONNECTED and status.reason:
            self.message.emit(f"Cannot connect to {profile.name}: {status.reason}")

    def _query_backend(self) -> None:
        session = self.session
        if session is None:
            return

        def query(backend: Backend) -> tuple[Capabilities, list[str], str]:
            return backend.capabilities, list_vhosts(backend), backend.description

        bridge = self._track(JobBridge(session.call(query, title="Capabilities"), self))
        bridge.finished.connect(self._on_capabilities)

    def _on_capabilities(self, result: object) -> None:
        assert isinstance(result, tuple)
        capabilities: Capabilities = result[0]
        vhosts: list[str] = result[1]
        description: str = result[2]
        self.capabilities = capabilities
        self.vhosts = list(vhosts)
        if self.profile is not None:
            self.label.setToolTip(str(description))
            if self.profile.kind is BackendKind.RABBITMQ and self.profile.vhost not in self.vhosts:
                self.vhosts.append(self.profile.vhost)
        self._fill_vhosts()
        if self._palette is not None and self.profile is not None:
            product = _PRODUCT[self.profile.kind]
            self._palette.set_enabled_kinds(node_kinds(capabilities), f"Not available on {product}")
        self._update_actions()

    def _fill_vhosts(self) -> None:
        self.vhost_menu.clear()
        for action in self.vhost_group.actions():
            self.vhost_group.removeAction(action)
        current = self.profile.vhost if self.profile is not None else ""
        for vhost in sorted(self.vhosts):
            action = self.vhost_menu.addAction(vhost)
            action.setCheckable(True)
            action.setChecked(vhost == current)
            action.setData(vhost)
            self.vhost_group.addAction(action)

    # -- topology ------------------------------------------------------------------------------
    def load_topology(self) -> JobBridge | None:
        """Fetch the live topology on the connection's thread; `_open_fetched` takes it from there."""
        session = self.session
        if session is None:
            return None
        bridge = self._track(JobBridge(session.call(lambda b: b.fetch_topology(), title="Fetch"), self))
        bridge.finished.connect(self._open_fetched)
        bridge.failed.connect(
            lambda msg: self._warn("Load Topology from Broker", error_text(bridge.exception, msg))
        )
        self.message.emit("Reading the broker's topology…")
        return bridge

    def _open_fetched(self, result: object) -> None:
        assert isinstance(result, TopologyDocument)
        if not self._files.maybe_save():
            self.message.emit("Load Topology cancelled: the open document was kept")
            return
        document = result
        for node_id, position in compute_layout(document.topology).items():
            document.set_position(node_id, position, notify=False)
        name = self.profile.name if self.profile is not None else "broker"
        opener = getattr(self._files, "_set_document", None)
        if callable(opener):  # the FileController's own open path: autosave, title, "opened" signal
            opener(document, suggested=f"{name}.mqs.json")
        else:
            self._editor.set_document(document)
        t = document.topology
        self.message.emit(
            f"Loaded {len(t.exchanges)} exchanges, {len(t.queues)} queues, {len(t.topics)} topics from {name}"
        )
        self.topology_loaded.emit(document)

    def plan_and_apply(self) -> PlanApplyDialog | None:
        session = self.session
        if session is None or self.profile is None:
            return None
        dialog = PlanApplyDialog(
            self._editor.document.topology, session.call_job, self.profile.describe(), self._window
        )
        dialog.applied.connect(lambda report: self.message.emit(
            "Applied the design" if report.ok and not report.skipped else "The apply did not finish"
        ))
        dialog.open()
        return dialog

    # -- plumbing ------------------------------------------------------------------------------
    def _track(self, bridge: JobBridge) -> JobBridge:
        self._jobs.add(bridge)
        bridge.settled.connect(lambda: self._jobs.discard(bridge))
        return bridge

    def _warn(self, title: str, text: str) -> None:
        self.message.emit(text)
        QMessageBox.warning(self._window, title, text)

    def shutdown(self, timeout: float = 5.0) -> None:
        """The window closes: close the connection and stop the workers (waits up to `timeout`)."""
        session, self.session = self.session, None
        if session is not None:
            session.close(timeout)
        if self._own_runner:
            self.runner.shutdown(timeout=timeout)
        if self._own_broker and self._broker_thread is not None:
            self._broker_thread.stop(timeout)


def _running(broker_thread: Any) -> Any:
    """The app's embedded broker, started on first use (on the session thread, never the GUI's)."""
    if broker_thread is None:
        return None
    if not getattr(broker_thread, "running", True):
        with contextlib.suppress(RuntimeError):
            broker_thread.start()
    return broker_thread
