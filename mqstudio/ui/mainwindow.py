"""The main window. Until the canvas lands it shows the open document's summary and lint findings.

Owns: `MainWindow`. Imports PySide6 and mqstudio.core; never touches a backend directly.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from mqstudio import __version__
from mqstudio.core.errors import FileFormatError
from mqstudio.core.validation import lint

FILE_FILTER = "mqstudio projects (*.mqs.json);;RabbitMQ definitions (*.json);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("mqstudio")
        self.resize(1100, 720)
        self.path: Path | None = None

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(24, 24, 24, 24)
        self._title = QLabel("<h2>mqstudio</h2>", central)
        self._summary = QLabel(
            "Design, run, watch and fix RabbitMQ and Kafka topologies.<br>"
            "Open a project or a RabbitMQ definitions file (File ▸ Open, Ctrl+O).",
            central,
        )
        self._summary.setTextFormat(Qt.TextFormat.RichText)
        self._summary.setWordWrap(True)
        self._findings = QPlainTextEdit(central)
        self._findings.setReadOnly(True)
        self._findings.setPlaceholderText("Lint findings of the open document appear here.")
        layout.addWidget(self._title)
        layout.addWidget(self._summary)
        layout.addWidget(self._findings, 1)
        self.setCentralWidget(central)

        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._choose_file)
        file_menu.addAction(open_action)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about_action = QAction("&About mqstudio", self)
        about_action.triggered.connect(self._about)
        help_menu.addAction(about_action)
        self.statusBar().showMessage("No broker connected")

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open", "", FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Load a project or definitions file; on error show every problem and keep the current one."""
        from mqstudio.core.loading import load_any

        try:
            document = load_any(Path(path))
        except (OSError, FileFormatError) as exc:
            QMessageBox.warning(self, "Cannot open file", str(exc))
            return False
        self.path = Path(path)
        topology = document.topology
        self.setWindowTitle(f"{self.path.name} — mqstudio")
        self._summary.setText(
            f"<b>{self.path.name}</b>: {len(topology.exchanges)} exchanges, {len(topology.queues)} queues, "
            f"{len(topology.bindings)} bindings, {len(topology.topics)} topics"
        )
        findings = lint(topology)
        lines = [f"{f.severity.value:8} {topology.label(f.object_id)}: {f.message}" for f in findings]
        self._findings.setPlainText("\n".join(lines) or "No findings.")
        return True

    def _about(self) -> None:
        QMessageBox.about(self, "About mqstudio", f"mqstudio {__version__}")
