"""Manage connection profiles, test one, and choose the one to connect to.

Owns: `ConnectionsDialog` (profiles on the left, the selected one's form on the right: kind, host,
port, vhost, user, password, a TLS group and the management URL; Test Connection; Save, Delete,
Connect), `result_html` (the coloured one-line outcome of a test).

The password goes to the system keyring on Save and never into the profiles file. Without a safe
keyring (`SecretStoreUnavailable`) it is kept in memory for this session only and asked for again
next time. Test Connection runs `mqstudio.runtime.connect.probe` on a `JobRunner` worker and hears the
outcome through a `JobBridge`; Cancel stops waiting at once (the worker closes what it opened).
Imports PySide6, mqstudio.runtime and mqstudio.backends.base only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mqstudio.backends.base import BackendError, BackendKind
from mqstudio.runtime.connect import ProbeResult, probe
from mqstudio.runtime.jobs import Job, JobRunner
from mqstudio.runtime.profiles import (
    AMQP_PORT,
    AMQPS_PORT,
    KAFKA_PORT,
    ConnectionProfile,
    ProfileError,
    ProfileStore,
    SecretStoreUnavailable,
)
from mqstudio.ui.qtbridge import JobBridge, submit
from mqstudio.ui.resources import icon
from mqstudio.ui.theme import is_dark

ProbeFn = Callable[[ConnectionProfile, str | None, Job[Any]], ProbeResult]
_KINDS = (
    (BackendKind.RABBITMQ, "RabbitMQ"), (BackendKind.KAFKA, "Kafka"), (BackendKind.EMBEDDED, "Embedded"),
)
_KIND_ICONS = {BackendKind.RABBITMQ: "exchange-direct", BackendKind.KAFKA: "kafka-topic",
               BackendKind.EMBEDDED: "mqstudio"}
_NEW = "New connection"
_OK, _ERROR = ("#1a7f37", "#3fb950"), ("#cf222e", "#ff7b72")


def _default_probe(profile: ConnectionProfile, password: str | None, job: Job[Any]) -> ProbeResult:
    return probe(profile, password, cancel=job)


def result_html(ok: bool, text: str, dark: bool = False) -> str:
    colour = (_OK if ok else _ERROR)[1 if dark else 0]
    mark = "✔" if ok else "✖"
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<span style="color:{colour}; font-weight:600">{mark} {escaped}</span>'


def error_text(exc: BaseException | None, fallback: str) -> str:
    """A failed test in the user's terms: the error's kind, its message and the hint."""
    if isinstance(exc, BackendError):
        kinds = {
            "UnreachableError": "Cannot reach the broker",
            "AuthenticationError": "Login refused",
            "PermissionDeniedError": "Permission denied",
            "NotFoundError": "Not found",
            "UnsupportedError": "Not supported",
        }
        title = kinds.get(type(exc).__name__, "")
        return f"{title}: {exc}" if title else str(exc)
    return fallback or "The connection failed"


class _FileField(QWidget):
    """A path line edit with a browse button."""

    def __init__(self, title: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("none")
        browse = QToolButton(self)
        browse.setText("…")
        browse.setToolTip(f"Choose the {title.lower()}")
        browse.clicked.connect(lambda: self._browse(title))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)

    def _browse(self, title: str) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, title, self.edit.text(), "Certificates and keys (*.pem *.crt *.cer *.key);;All files (*)"
        )
        if name:
            self.edit.setText(name)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(text)


class ConnectionsDialog(QDialog):
    """Signal ``connect_requested(profile, password)`` when the user presses Connect (the dialog then
    accepts); `password` is None when none was typed or stored (the caller asks)."""

    connect_requested = Signal(object, object)

    def __init__(
        self,
        store: ProfileStore,
        runner: JobRunner,
        parent: QWidget | None = None,
        *,
        probe_fn: ProbeFn | None = None,
        session_passwords: dict[str, str] | None = None,
        current: str | None = None,
        kind: BackendKind | None = None,
    ) -> None:
        """With `kind` (and no `current`), the first saved profile of that kind is selected, or a new
        one of that kind is started (the welcome page's Connect to RabbitMQ / Kafka)."""
        super().__init__(parent)
        self.setObjectName("ConnectionsDialog")
        self.setWindowTitle("Connections")
        self.store = store
        self._runner = runner
        self._probe = probe_fn or _default_probe
        #: Passwords typed while no safe keyring was available: memory only, for this session.
        self.session_passwords = session_passwords if session_passwords is not None else {}
        self._test: JobBridge | None = None
        self._loading = False
        self._build()
        self._reload(select=current)
        if kind is not None and current is None:
            self.preselect_kind(kind)

    # -- construction --------------------------------------------------------------------------
    def _build(self) -> None:
        self.list = QListWidget(self)
        self.list.setObjectName("ProfileList")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setMinimumWidth(190)
        self.list.setMaximumWidth(240)
        self.list.setIconSize(QSize(18, 18))
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.connect_selected())
        self.add_button = QPushButton("&Add", self)
        self.add_button.clicked.connect(self.add_profile)
        self.delete_button = QPushButton("&Delete", self)
        self.delete_button.clicked.connect(self.delete_selected)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.setSpacing(6)
        left.addWidget(self.list, 1)
        left.addLayout(buttons)

        self.name = QLineEdit(self)
        self.kind = QComboBox(self)
        for kind, label in _KINDS:
            self.kind.addItem(label, kind.value)
        self.host = QLineEdit(self)
        self.host.setPlaceholderText("127.0.0.1")
        self.port = QSpinBox(self)
        self.port.setRange(0, 65535)
        self.port.setMinimumWidth(150)
        self.vhost = QLineEdit(self)
        self.user = QLineEdit(self)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        form.addRow("&Name:", self.name)
        form.addRow("&Kind:", self.kind)
        form.addRow("&Host:", self.host)
        form.addRow("&Port:", self.port)
        form.addRow("&Vhost:", self.vhost)
        form.addRow("&User:", self.user)
        form.addRow("Pass&word:", self.password)
        self.management_url = QLineEdit(self)
        form.addRow("&Management URL:", self.management_url)
        self._form = form

        self.tls = QGroupBox("Use &TLS", self)
        self.tls.setCheckable(True)
        self.tls.setChecked(False)
        self.ca_file = _FileField("CA certificate", self.tls)
        self.client_cert = _FileField("Client certificate", self.tls)
        self.client_key = _FileField("Client key", self.tls)
        self.verify = QCheckBox("&Verify the server certificate and host name", self.tls)
        self.verify.setChecked(True)
        tls_form = QFormLayout(self.tls)
        tls_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        tls_form.setHorizontalSpacing(12)
        tls_form.addRow("CA file:", self.ca_file)
        tls_form.addRow("Client cert:", self.client_cert)
        tls_form.addRow("Client key:", self.client_key)
        tls_form.addRow("", self.verify)

        self.test_button = QPushButton("&Test Connection", self)
        self.test_button.clicked.connect(self.test_connection)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(14)
        self.progress.setMaximumWidth(120)
        self.progress.hide()
        self.cancel_test_button = QPushButton("Cancel", self)
        self.cancel_test_button.clicked.connect(self.cancel_test)
        self.cancel_test_button.hide()
        self.result_label = QLabel(self)
        self.result_label.setObjectName("TestResult")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setMinimumHeight(36)
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        test_row = QHBoxLayout()
        test_row.setSpacing(8)
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.progress)
        test_row.addWidget(self.cancel_test_button)
        test_row.addStretch(1)

        self.note = QLabel(self)
        self.note.setObjectName("KeyringNote")
        self.note.setWordWrap(True)
        small = QFont(self.note.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.9))
        self.note.setFont(small)

        right = QVBoxLayout()
        right.setSpacing(10)
        right.addLayout(form)
        right.addWidget(self.tls)
        right.addLayout(test_row)
        right.addWidget(self.result_label)
        right.addStretch(1)
        right.addWidget(self.note)
        self._editor = QWidget(self)
        self._editor.setLayout(right)
        self._editor.setMinimumWidth(420)

        body = QHBoxLayout()
        body.setSpacing(14)
        body.addLayout(left)
        body.addWidget(self._editor, 1)

        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Save)
        self.save_button.clicked.connect(self.save_current)
        self.connect_button = self.buttons.addButton("&Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.connect_button.clicked.connect(self.connect_selected)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.reject)
        self.connect_button.setDefault(True)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 16, 16, 12)
        outer.setSpacing(12)
        outer.addLayout(body, 1)
        outer.addWidget(self.buttons)
        self.resize(760, 560)

        for widget in (self.name, self.host, self.vhost, self.user, self.management_url):
            widget.textChanged.connect(self._on_edited)
        self.password.textChanged.connect(self._on_edited)
        self.port.valueChanged.connect(self._on_edited)
        self.kind.currentIndexChanged.connect(self._on_kind_changed)
        self.tls.toggled.connect(self._on_kind_changed)
        self.verify.toggled.connect(self._on_edited)
        for field in (self.ca_file, self.client_cert, self.client_key):
            field.edit.textChanged.connect(self._on_edited)

    # -- profiles list -------------------------------------------------------------------------
    def _reload(self, select: str | None = None) -> None:
        try:
            profiles = self.store.load()
        except ProfileError as exc:
            profiles = []
            self._show_result(False, str(exc))
        self._loading = True
        self.list.clear()
        for profile in profiles:
            item = QListWidgetItem(icon(_KIND_ICONS[profile.kind]), profile.name, self.list)
            item.setData(Qt.ItemDataRole.UserRole, profile)
            item.setToolTip(profile.url)
            item.setSizeHint(QSize(0, 28))
        self._loading = False
        names = [p.name for p in profiles]
        row = names.index(select) if select in names else 0
        if profiles:
            self.list.setCurrentRow(row)
        else:
            self.add_profile()

    def profiles(self) -> list[ConnectionProfile]:
        found = []
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item is not None and isinstance(item.data(Qt.ItemDataRole.UserRole), ConnectionProfile):
                found.append(item.data(Qt.ItemDataRole.UserRole))
        return found

    def _stored(self) -> ConnectionProfile | None:
        item = self.list.currentItem()
        value = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return value if isinstance(value, ConnectionProfile) else None

    def select(self, name: str) -> bool:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item is not None and item.text() == name:
                self.list.setCurrentRow(row)
                return True
        return False

    def preselect_kind(self, kind: BackendKind) -> None:
        """Select the first saved profile of `kind`, else a new profile of that kind."""
        match = next((p for p in self.profiles() if p.kind is kind), None)
        if match is not None:
            self.select(match.name)
            return
        self.add_profile()
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind.value)))

    def add_profile(self) -> None:
        """Start a new, unsaved profile (listed in italics until saved)."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) is None:
                self.list.setCurrentItem(item)
                return
        item = QListWidgetItem(_NEW, self.list)
        item.setSizeHint(QSize(0, 28))
        font = item.font()
        font.setItalic(True)
        item.setFont(font)
        self.list.setCurrentItem(item)
        self.name.setFocus()
        self.name.selectAll()

    def delete_selected(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        profile = self._stored()
        if profile is not None:
            answer = QMessageBox.question(
                self, "Delete Connection",
                f"Delete the connection “{profile.name}” and its stored password?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.store.delete(profile.name)
            self.session_passwords.pop(profile.name, None)
        self.list.takeItem(self.list.row(item))
        if self.list.count() == 0:
            self.add_profile()

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        if self._loading:
            return
        self.cancel_test()
        self.result_label.clear()
        profile = current.data(Qt.ItemDataRole.UserRole) if current is not None else None
        self._load_form(profile if isinstance(profile, ConnectionProfile) else None)

    # -- the form ------------------------------------------------------------------------------
    def _load_form(self, profile: ConnectionProfile | None) -> None:
        self._loading = True
        p = profile or ConnectionProfile(_NEW, BackendKind.RABBITMQ, user="guest")
        self.name.setText(p.name)
        self.kind.setCurrentIndex(max(0, self.kind.findData(p.kind.value)))
        self.host.setText(p.host)
        self.port.setValue(p.port)
        self.vhost.setText(p.vhost)
        self.user.setText(p.user)
        self.password.clear()
        self.tls.setChecked(p.tls)
        self.ca_file.setText(p.ca_file)
        self.client_cert.setText(p.client_cert)
        self.client_key.setText(p.client_key)
        self.verify.setChecked(p.verify)
        self.management_url.setText(p.management_url)
        self._loading = False
        self._on_kind_changed()

    def form_profile(self) -> ConnectionProfile:
        """The profile as the form shows it (saved or not)."""
        return ConnectionProfile(
            name=self.name.text().strip(),
            kind=BackendKind(str(self.kind.currentData())),
            host=self.host.text().strip(),
            port=self.port.value(),
            vhost=self.vhost.text() or "/",
            user=self.user.text().strip(),
            tls=self.tls.isChecked(),
            ca_file=self.ca_file.text(),
            client_cert=self.client_cert.text(),
            client_key=self.client_key.text(),
            verify=self.verify.isChecked(),
            management_url=self.management_url.text().strip(),
        )

    def _on_kind_changed(self, *_: object) -> None:
        kind = BackendKind(str(self.kind.currentData()))
        remote = kind is not BackendKind.EMBEDDED
        rabbit = kind is BackendKind.RABBITMQ
        for widget in (self.host, self.port, self.user, self.password, self.tls):
            widget.setEnabled(remote)
        self.vhost.setEnabled(rabbit)
        self.management_url.setEnabled(rabbit)
        default = {BackendKind.KAFKA: KAFKA_PORT, BackendKind.RABBITMQ:
                   AMQPS_PORT if self.tls.isChecked() else AMQP_PORT}.get(kind)
        self.port.setSpecialValueText(f"default ({default})" if default else "default")
        self.management_url.setPlaceholderText(self.form_profile().effective_management_url if rabbit else "")
        self.user.setPlaceholderText("guest" if rabbit else "SASL user (optional)" if remote else "")
        if kind is BackendKind.KAFKA and self._stored() is None and self.user.text() == "guest":
            self.user.clear()  # a new profile's default is RabbitMQ's; a Kafka user turns on SASL
        self._on_edited()

    def _on_edited(self, *_: object) -> None:
        if self._loading:
            return
        self._update_password_hint()
        stored = self._stored()
        changed = stored is None or self.form_profile() != stored or bool(self.password.text())
        self.save_button.setEnabled(changed)
        self.delete_button.setEnabled(self.list.currentItem() is not None)
        problems = self.form_profile().validate()
        self.connect_button.setEnabled(not problems)
        self.test_button.setEnabled(not problems and self._test is None)
        self.name.setToolTip("\n".join(problems))

    def _update_password_hint(self) -> None:
        profile = self.form_profile()
        if profile.kind is BackendKind.EMBEDDED:
            self.password.setPlaceholderText("")
            self.note.setText("The embedded broker runs inside mqstudio: nothing to configure.")
            return
        try:
            stored = self.store.secrets.get_password(profile) if self._stored() is not None else None
        except SecretStoreUnavailable as exc:
            in_memory = profile.name in self.session_passwords
            hint = "kept for this session" if in_memory else "asked when connecting"
            self.password.setPlaceholderText(hint)
            self.note.setText(f"Passwords are not saved: {exc}. Nothing is written in plain text.")
            return
        self.password.setPlaceholderText("stored in keyring" if stored is not None else "not stored")
        self.note.setText("Passwords are kept in the system keyring, never in the profiles file.")

    # -- save ----------------------------------------------------------------------------------
    def save_current(self) -> bool:
        profile = self.form_profile()
        stored = self._stored()
        others = {p.name for p in self.profiles()} - ({stored.name} if stored else set())
        if profile.name in others:
            self._show_result(False, f"A connection named “{profile.name}” exists already.")
            return False
        try:
            self.store.save(profile, previous_name=stored.name if stored else None)
        except (ProfileError, OSError) as exc:
            self._show_result(False, f"Not saved: {exc}")
            return False
        typed = self.password.text()
        if stored is not None and stored.name != profile.name and stored.name in self.session_passwords:
            self.session_passwords[profile.name] = self.session_passwords.pop(stored.name)
        if typed:
            try:
                self.store.secrets.set_password(profile, typed)
            except SecretStoreUnavailable:
                self.session_passwords[profile.name] = typed
        self._reload(select=profile.name)
        return True

    def password_for(self, profile: ConnectionProfile) -> str | None:
        """The typed password, else this session's, else the keyring's; None when there is none."""
        if self.password.text():
            return self.password.text()
        if profile.name in self.session_passwords:
            return self.session_passwords[profile.name]
        try:
            return self.store.secrets.get_password(profile)
        except SecretStoreUnavailable:
            return None

    # -- connect -------------------------------------------------------------------------------
    def connect_selected(self) -> None:
        profile = self.form_profile()
        if profile.validate():
            return
        stored = self._stored()
        unsaved = stored is None or profile != stored or bool(self.password.text())
        if unsaved and not self.save_current():
            return
        self.connect_requested.emit(profile, self.password_for(profile))
        self.accept()

    # -- test ----------------------------------------------------------------------------------
    @property
    def testing(self) -> bool:
        return self._test is not None

    def test_connection(self) -> JobBridge | None:
        """Run the connection test on a worker; the result label says how it went."""
        if self._test is not None:
            return None
        profile = self.form_profile()
        password = self.password_for(profile)
        probe_fn = self._probe
        bridge = submit(
            self._runner, lambda job: probe_fn(profile, password, job),
            title=f"Test connection {profile.name}", parent=self,
        )
        self._test = bridge
        bridge.finished.connect(self._on_test_ok)
        bridge.failed.connect(lambda message: self._on_test_failed(bridge, message))
        bridge.cancelled.connect(lambda: self._show_result(False, "Test cancelled"))
        bridge.settled.connect(self._end_test)
        self._show_result(None, f"Connecting to {profile.url} …")
        self.progress.show()
        self.cancel_test_button.show()
        self.test_button.setEnabled(False)
        return bridge

    def cancel_test(self) -> None:
        """Stop waiting for the test (the worker closes whatever it opened when it gets there)."""
        bridge = self._test
        if bridge is None:
            return
        bridge.cancel()
        for signal in (bridge.finished, bridge.failed, bridge.cancelled, bridge.settled):
            signal.disconnect()
        self._end_test()
        self._show_result(False, "Test cancelled")

    def _on_test_ok(self, result: object) -> None:
        assert isinstance(result, ProbeResult)
        detail = f"\n{result.description}" if result.description else ""
        self._show_result(True, result.summary + detail)

    def _on_test_failed(self, bridge: JobBridge, message: str) -> None:
        self._show_result(False, error_text(bridge.exception, message))

    def _end_test(self) -> None:
        self._test = None
        self.progress.hide()
        self.cancel_test_button.hide()
        self._on_edited()

    def _show_result(self, ok: bool | None, text: str) -> None:
        if ok is None:
            self.result_label.setText(text)
            return
        html = result_html(ok, text, is_dark(self.palette())).replace("\n", "<br>")
        self.result_label.setText(html)

    @property
    def result_text(self) -> str:
        return self.result_label.text()

    # -- closing -------------------------------------------------------------------------------
    def done(self, code: int) -> None:
        self.cancel_test()
        super().done(code)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel_test()
        super().closeEvent(event)
