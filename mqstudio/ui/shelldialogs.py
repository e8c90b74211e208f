"""Small dialogs of the window shell: a refused file's problems, the keyboard shortcuts, a yes/no/cancel.

Owns: `ProblemsDialog` (every problem of a refused file, with its path, copyable), `ShortcutsDialog`
(every action with a shortcut, grouped by menu, then the canvas gestures), `ask()` (a QMessageBox
whose answer tests can patch through ``QMessageBox.exec``). Imports PySide6 and mqstudio.core.errors only.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mqstudio.core.errors import Problem

Button = QMessageBox.StandardButton


def ask(
    parent: QWidget | None,
    title: str,
    text: str,
    informative: str,
    *,
    buttons: Sequence[Button],
    default: Button,
    icon: QMessageBox.Icon = QMessageBox.Icon.Question,
    button_texts: dict[Button, str] | None = None,
) -> Button:
    """Show a modal question; returns the standard button chosen (Escape answers the Cancel button)."""
    box = QMessageBox(parent)
    box.setIcon(icon)
    box.setWindowTitle(title)
    box.setText(text)
    box.setInformativeText(informative)
    flags = Button.NoButton
    for button in buttons:
        flags |= button
    box.setStandardButtons(flags)
    box.setDefaultButton(default)
    for button, label in (button_texts or {}).items():
        widget = box.button(button)
        if widget is not None:
            widget.setText(label)
    answer = box.exec()
    return answer if isinstance(answer, Button) else Button(answer)


class ProblemsDialog(QDialog):
    """Lists every problem of a refused file: where (the JSON path) and why. Nothing was loaded."""

    def __init__(self, parent: QWidget | None, title: str, summary: str, problems: Sequence[Problem]) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.problems = list(problems)
        self.setMinimumSize(620, 360)

        icon = QLabel(self)
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize)
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.summary = QLabel(summary, self)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head = QHBoxLayout()
        head.addWidget(icon)
        head.addWidget(self.summary, 1)

        self.list = QTreeWidget(self)
        self.list.setRootIsDecorated(False)
        self.list.setAlternatingRowColors(True)
        self.list.setHeaderLabels(["Where", "Problem"])
        self.list.setWordWrap(True)
        for problem in self.problems:
            item = QTreeWidgetItem([problem.path or "(file)", problem.message])
            item.setToolTip(0, problem.path)
            item.setToolTip(1, problem.message)
            self.list.addTopLevelItem(item)
        self.list.resizeColumnToContents(0)
        self.list.setColumnWidth(0, min(self.list.columnWidth(0) + 12, 280))

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok, self)
        copy = buttons.addButton("&Copy Details", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy_details)
        buttons.accepted.connect(self.accept)

        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)

    def details(self) -> str:
        return "\n".join([self.summary.text(), *(f"  {problem}" for problem in self.problems)])

    def copy_details(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.details())


#: Keys and gestures of the canvas and palette that are not menu actions (see canvas/scene.py, view.py,
#: interactions.py and panels/palette.py), listed after the menus.
CANVAS_GESTURES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Canvas", (
        ("Pan", "Space+drag, middle-button drag"),
        ("Zoom around the pointer", "Mouse wheel"),
        ("Bind two nodes", "Drag from a node's port to the other node"),
        ("Select what a rectangle touches", "Drag on empty canvas"),
        ("Add to the selection (or toggle a node)", "Shift or Ctrl with drag or click"),
        ("Rename in place", "Double-click a node, F2"),
        ("Finish / cancel renaming", "Enter / Escape"),
        ("Delete the selection", "Del, Backspace"),
        ("Cancel a gesture, else clear the selection", "Escape"),
    )),
    ("Palette", (
        ("Add the node in the middle of the canvas", "Double-click, Enter"),
        ("From the filter to the list", "Down"),
    )),
)

# Qt's standard keys also name dedicated keyboard keys ("New", "Copy", "Zoom In"): the sheet lists
# only combinations a user can type on an ordinary keyboard.
_MEDIA_KEYS_START = Qt.Key.Key_Back.value
_ROW_HEIGHT = 20


def shortcut_text(action: QAction) -> str:
    """The action's shortcuts in native text, without dedicated media/office keys."""
    typed = [
        s.toString(QKeySequence.SequenceFormat.NativeText)
        for s in action.shortcuts()
        if not s.isEmpty() and s[0].key().value < _MEDIA_KEYS_START  # type: ignore[index]
    ]
    return ", ".join(typed)


class ShortcutsDialog(QDialog):
    """Every action that has a shortcut, grouped by menu, with its native shortcut text; then the canvas
    and palette keys and gestures (`extra`)."""

    def __init__(
        self,
        parent: QWidget | None,
        groups: Sequence[tuple[str, Sequence[QAction]]],
        extra: Sequence[tuple[str, Sequence[tuple[str, str]]]] = CANVAS_GESTURES,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tree.setUniformRowHeights(True)
        for menu, actions in groups:
            rows = [(a.iconText().replace("&", ""), shortcut_text(a)) for a in actions]
            self._group(menu.replace("&", ""), [(name, keys) for name, keys in rows if keys])
        for title, pairs in extra:
            self._group(title, list(pairs))
        self.tree.expandAll()
        # Row heights come from size hints, so column widths are measured here, not by Qt.
        metrics = self.tree.fontMetrics()
        listed = [pair for pairs in self.rows().values() for pair in pairs]
        for column in (0, 1):
            widest = max((metrics.horizontalAdvance(pair[column]) for pair in listed), default=80)
            self.tree.setColumnWidth(column, widest + self.tree.indentation() + 32)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)
        width = self.tree.columnWidth(0) + self.tree.columnWidth(1) + 48
        count = sum(1 + len(pairs) for pairs in self.rows().values())
        height = count * _ROW_HEIGHT + self.tree.header().sizeHint().height() + 72
        self.resize(max(520, width), min(max(420, height), 820))

    def _group(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        if not rows:
            return
        header = QTreeWidgetItem(self.tree, [title])
        header.setSizeHint(0, QSize(0, _ROW_HEIGHT + 4))
        font = header.font(0)
        font.setBold(True)
        header.setFont(0, font)
        header.setFirstColumnSpanned(True)
        for name, keys in rows:
            QTreeWidgetItem(header, [name, keys]).setSizeHint(0, QSize(0, _ROW_HEIGHT))

    def rows(self) -> dict[str, list[tuple[str, str]]]:
        """{group: [(action, shortcut), ...]} as listed."""
        found: dict[str, list[tuple[str, str]]] = {}
        for i in range(self.tree.topLevelItemCount()):
            header = self.tree.topLevelItem(i)
            if header is None:
                continue
            children = (header.child(j) for j in range(header.childCount()))
            found[header.text(0)] = [(c.text(0), c.text(1)) for c in children if c is not None]
        return found
