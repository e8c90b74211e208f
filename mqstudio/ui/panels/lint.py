"""The problems dock: the design linter's findings, kept current as the model changes.

Owns: `LintPanel` and `FindingsTableModel`. Lint runs on the GUI thread, debounced by a single-shot
QTimer (~150 ms after the last model change), because `core.validation.lint` is pure and fast (it walks
the design once). Clicking a finding selects its object through the editor; `findings_changed(list)`
feeds the canvas marks and `title_changed(str)` the dock title ("Problems (3)").
Imports PySide6, mqstudio.core and mqstudio.ui only; never writes the model.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHeaderView,
    QLabel,
    QStyle,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from mqstudio.core.model import Topology
from mqstudio.core.policies import document_policies
from mqstudio.core.validation import Finding, Severity, lint
from mqstudio.ui.editor import DocumentEditor

LINT_DELAY_MS = 150
_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_ICONS = {
    Severity.ERROR: QStyle.StandardPixmap.SP_MessageBoxCritical,
    Severity.WARNING: QStyle.StandardPixmap.SP_MessageBoxWarning,
    Severity.INFO: QStyle.StandardPixmap.SP_MessageBoxInformation,
}
_Index = QModelIndex | QPersistentModelIndex


class FindingsTableModel(QAbstractTableModel):
    """Findings as rows: severity (icon), object, message, code. Sorted by severity, then design order."""

    COLUMNS = ("Severity", "Object", "Message", "Code")
    OBJECT_ID_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._findings: list[Finding] = []
        self._labels: list[str] = []
        self._icons: dict[Severity, QIcon] = {}

    def set_findings(self, findings: list[Finding], topology: Topology) -> None:
        self.beginResetModel()
        order = sorted(range(len(findings)), key=lambda i: (_RANK[findings[i].severity], i))
        self._findings = [findings[i] for i in order]
        self._labels = [topology.label(f.object_id) for f in self._findings]
        self.endResetModel()

    def finding(self, row: int) -> Finding:
        return self._findings[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's default argument
        return 0 if parent.isValid() else len(self._findings)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def _icon(self, severity: Severity) -> QIcon:
        icon = self._icons.get(severity)
        if icon is None:
            from PySide6.QtWidgets import QApplication

            icon = QApplication.style().standardIcon(_ICONS[severity])
            self._icons[severity] = icon
        return icon

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        f = self._findings[index.row()]
        column = index.column()
        if role == self.OBJECT_ID_ROLE:
            return f.object_id
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.severity.value, self._labels[index.row()], f.message, f.code)[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return self._icon(f.severity)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{self._labels[index.row()]}\n\n{f.message}\n\n[{f.code}]"
        return None


class LintPanel(QWidget):
    """Signals: ``findings_changed(list[Finding])`` after each lint run, ``title_changed(str)``."""

    findings_changed = Signal(list)
    title_changed = Signal(str)

    def __init__(self, editor: DocumentEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LintPanel")
        self._editor = editor
        self._topology = editor.document.topology
        self.findings: list[Finding] = []
        self.model = FindingsTableModel(self)
        self.view = QTreeView(self)
        self.view.setModel(self.model)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(1, 200)
        self.view.clicked.connect(self._on_clicked)
        self.view.activated.connect(self._on_clicked)
        self.empty = QLabel("No problems found in this design.", self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: palette(placeholder-text); padding: 16px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty, 1)

        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(LINT_DELAY_MS)
        self.timer.timeout.connect(self.run_lint)
        editor.document_replaced.connect(self._on_document_replaced)
        self._connect_topology()
        self.run_lint()

    # -- model subscription -----------------------------------------------------------------------
    def _signals(self) -> tuple[Any, ...]:
        t = self._topology
        return (
            t.node_added,
            t.node_removed,
            t.node_changed,
            t.binding_added,
            t.binding_removed,
            t.binding_changed,
        )

    def _connect_topology(self) -> None:
        for signal in self._signals():
            signal.connect(self.schedule)

    def _on_document_replaced(self) -> None:
        for signal in self._signals():
            signal.disconnect(self.schedule)
        self._topology = self._editor.document.topology
        self._connect_topology()
        self.run_lint()

    def schedule(self, *_args: Any) -> None:
        """Lint again once changes pause (a drag or a macro emits many events)."""
        self.timer.start()

    # -- lint -------------------------------------------------------------------------------------
    def run_lint(self) -> None:
        self.timer.stop()
        # Policies from an imported definitions file change what a queue does (DLX, TTL, limits).
        self.findings = lint(self._topology, policies=document_policies(self._editor.document))
        self.model.set_findings(self.findings, self._topology)
        has = bool(self.findings)
        self.view.setVisible(has)
        self.empty.setVisible(not has)
        title = self.title()
        self.setWindowTitle(title)
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.setWindowTitle(title)
        self.title_changed.emit(title)
        self.findings_changed.emit(list(self.findings))

    def title(self) -> str:
        return f"Problems ({len(self.findings)})" if self.findings else "Problems"

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self._editor.select([self.model.finding(index.row()).object_id])
