"""Generate Code: ready-to-run client snippets for the selected node, to read, copy or save.

Owns: `CodegenDialog` (one read-only, monospace tab per snippet from `mqstudio.core.codegen`; Copy puts
the shown tab on the clipboard, Save As… writes it to a file) and `CodeHighlighter` (a light
highlighter for the Python and YAML the generator writes). Generating is pure and fast (no I/O); the
only disk access is writing one small text file after the user picked it in a file dialog.
Imports PySide6, mqstudio.core and mqstudio.ui only.
"""

from __future__ import annotations

import contextlib
import html
import keyword
import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mqstudio.core.codegen import CodegenError, Snippet, generate
from mqstudio.core.model import Topology
from mqstudio.ui.theme import is_dark

# (light, dark) colours, GitHub-like.
_COLOURS = {
    "keyword": ("#cf222e", "#ff7b72"),
    "string": ("#0a3069", "#a5d6ff"),
    "comment": ("#6e7781", "#8b949e"),
    "number": ("#0550ae", "#79c0ff"),
    "key": ("#116329", "#7ee787"),
}
_PY_RULES = [
    ("keyword", re.compile(r"\b(?:" + "|".join(keyword.kwlist) + r")\b")),
    ("number", re.compile(r"\b\d+(?:\.\d+)?\b")),
    ("string", re.compile(r"""[rbf]*(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")),
    ("comment", re.compile(r"#[^\n]*$")),
]
_YAML_RULES = [
    ("key", re.compile(r"^\s*(?:\"(?:[^\"\\]|\\.)*\"|[^:#\s][^:]*)(?=:)")),
    ("number", re.compile(r"(?<=: )-?\d+$")),
    ("keyword", re.compile(r"(?<=: )(?:true|false)$")),
    ("string", re.compile(r"\"(?:[^\"\\]|\\.)*\"(?!\s*:)")),
    ("comment", re.compile(r"^\s*#.*$")),
]
_DOCSTRING = re.compile(r'"""')


class CodeHighlighter(QSyntaxHighlighter):
    """Keywords, strings, numbers and comments (Python), keys and scalars (YAML). Later rules win, so a
    quote inside a comment stays a comment. Triple-quoted docstrings span blocks (block state 1)."""

    def __init__(self, document: QTextDocument, language: str, dark: bool) -> None:
        super().__init__(document)
        self._rules = _PY_RULES if language == "python" else _YAML_RULES
        self._python = language == "python"
        self._formats: dict[str, QTextCharFormat] = {}
        for name, (light, dark_colour) in _COLOURS.items():
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(dark_colour if dark else light))
            if name == "comment":
                fmt.setFontItalic(True)
            self._formats[name] = fmt

    def highlightBlock(self, text: str) -> None:
        for name, pattern in self._rules:
            for match in pattern.finditer(text):
                self.setFormat(match.start(), match.end() - match.start(), self._formats[name])
        if self._python:
            self._docstrings(text)

    def _docstrings(self, text: str) -> None:
        inside = self.previousBlockState() == 1
        start = 0 if inside else -1
        for match in _DOCSTRING.finditer(text):
            if inside:
                self.setFormat(start, match.end() - start, self._formats["string"])
                inside = False
            else:
                start, inside = match.start(), True
        if inside:
            self.setFormat(max(start, 0), len(text) - max(start, 0), self._formats["string"])
        self.setCurrentBlockState(1 if inside else 0)


class CodegenDialog(QDialog):
    """One tab per snippet; Copy and Save As… act on the tab shown."""

    def __init__(self, snippets: list[Snippet], subject: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if not snippets:
            raise ValueError("CodegenDialog needs at least one snippet")
        self.setObjectName("CodegenDialog")
        self.setWindowTitle(f"Generate Code — {subject}")
        self.snippets = list(snippets)
        self.save_dir = Path.home()
        self._highlighters: list[CodeHighlighter] = []

        kafka = any(s.title.startswith("kafka") for s in snippets)
        address = "KAFKA_BOOTSTRAP_SERVERS" if kafka else "AMQP_URL"
        intro = QLabel(
            f"Ready-to-run clients for the {html.escape(subject)}. The scripts declare what they need, read "
            f"the broker address from <code>{address}</code> and stop after <code>--count</code> messages; "
            "the YAML is a Spring Cloud Stream binding block.",
            self,
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        dark = is_dark(self.palette())
        self.editors: list[QPlainTextEdit] = []
        for snippet in snippets:
            editor = QPlainTextEdit(self)
            editor.setObjectName("CodegenEditor")
            editor.setReadOnly(True)
            editor.setFont(mono)
            editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            editor.setTabStopDistance(4 * editor.fontMetrics().horizontalAdvance(" "))
            editor.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
            )
            editor.setPlainText(snippet.code)
            self._highlighters.append(CodeHighlighter(editor.document(), snippet.language, dark))
            self.editors.append(editor)
            self.tabs.addTab(editor, snippet.title)
            self.tabs.setTabToolTip(self.tabs.count() - 1, snippet.filename)

        self.file_label = QLabel(self)
        self.file_label.setObjectName("CodegenFile")
        self.status = QLabel(self)
        self.status.setObjectName("CodegenStatus")
        self.copy_button = QPushButton("&Copy", self)
        self.copy_button.setToolTip("Copy the shown snippet to the clipboard")
        self.save_button = QPushButton("Save &As…", self)
        self.save_button.setToolTip("Save the shown snippet to a file")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self.copy)
        self.save_button.clicked.connect(self.save_as)
        self.tabs.currentChanged.connect(self._on_tab_changed)

        footer = QHBoxLayout()
        footer.addWidget(self.file_label)
        footer.addStretch(1)
        footer.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(footer)
        layout.addWidget(buttons)
        self.resize(900, 640)
        self._on_tab_changed(0)

    # -- public --------------------------------------------------------------------------------
    @property
    def current(self) -> Snippet:
        return self.snippets[max(self.tabs.currentIndex(), 0)]

    def show_snippet(self, title: str) -> None:
        """Show the tab titled `title` (``KeyError`` when there is none)."""
        for index, snippet in enumerate(self.snippets):
            if snippet.title == title:
                self.tabs.setCurrentIndex(index)
                return
        raise KeyError(title)

    def copy(self) -> None:
        clipboard = QGuiApplication.clipboard()
        clipboard.setText(self.current.code)
        self.status.setText(f"Copied {self.current.title} to the clipboard")

    def save_as(self) -> None:
        snippet = self.current
        pattern = "Python (*.py)" if snippet.language == "python" else "YAML (*.yml *.yaml)"
        path, _ = QFileDialog.getSaveFileName(
            self, f"Save {snippet.title}", str(self.save_dir / snippet.filename), f"{pattern};;All files (*)"
        )
        if path:
            self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        """Write the shown snippet to `path` (a small file: written directly); report the outcome."""
        try:
            path.write_text(self.current.code, encoding="utf-8")
        except OSError as exc:
            QMessageBox.warning(self, "Save Snippet", f"Could not save {path}:\n{exc.strerror or exc}")
            return False
        if path.suffix == ".py":
            with contextlib.suppress(OSError):  # the script has a #! line: make it runnable
                path.chmod(path.stat().st_mode | 0o111)
        self.save_dir = path.parent
        self.status.setText(f"Saved {path.name}")
        return True

    # -- private -------------------------------------------------------------------------------
    def _on_tab_changed(self, _index: int) -> None:
        snippet = self.current
        self.file_label.setText(f"<b>{snippet.filename}</b>")
        self.status.clear()


def subject_of(topology: Topology, node_id: str) -> str:
    """``queue 'tasks'``: the node's kind and name, for titles."""
    node = topology.node(node_id)
    return f"{node.kind.value.replace('_', ' ')} {node.name!r}"


def open_codegen_dialog(parent: QWidget, topology: Topology, node_id: str) -> CodegenDialog | str:
    """Generate for `node_id` and open the dialog (window-modal, without blocking); the reason as a
    string when there is nothing to generate."""
    try:
        snippets = generate(topology, node_id)
    except CodegenError as exc:
        return str(exc)
    dialog = CodegenDialog(snippets, subject_of(topology, node_id), parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
