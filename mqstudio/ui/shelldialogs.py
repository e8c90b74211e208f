"""Small dialogs of the window shell: a refused file's problems, the keyboard shortcuts, a yes/no/cancel.

Owns: `ProblemsDialog` (every problem of a refused file, with its path, copyable), `ShortcutsDialog`
(every action with a shortcut, grouped by menu), `ask()` (a QMessageBox whose answer tests can patch
through ``QMessageBox.exec``). Imports PySide6 and mqstudio.core.errors only.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
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


class ShortcutsDialog(QDialog):
    """Every action that has a shortcut, grouped by menu, with its native shortcut text."""

    def __init__(self, parent: QWidget | None, groups: Sequence[tuple[str, Sequence[QAction]]]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.setMinimumSize(460, 520)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        for menu, actions in groups:
            rows = [a for a in actions if not a.shortcut().isEmpty()]
            if not rows:
                continue
            header = QTreeWidgetItem(self.tree, [menu.replace("&", "")])
            font = header.font(0)
            font.setBold(True)
            header.setFont(0, font)
            header.setFirstColumnSpanned(True)
            for action in rows:
                keys = ", ".join(
                    s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts()
                )
                QTreeWidgetItem(header, [action.iconText().replace("&", ""), keys])
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)
