"""QUndoStack integration: one generic QUndoCommand wraps any core `Command`.

Owns: `CommandAdapter`, `push_command`. The core command is done once, before it is pushed, so a refused
command (a typed `TopologyError`) never reaches the stack and leaves the model untouched; the adapter then
skips the redo that ``QUndoStack.push`` performs. Imports PySide6 and mqstudio.core only.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand, QUndoStack

from mqstudio.core.commands import Command


class CommandAdapter(QUndoCommand):
    """A done core command on a QUndoStack; redo/undo delegate, mergeWith delegates to `merge_with`."""

    def __init__(self, command: Command) -> None:
        super().__init__(command.text)
        self.command = command
        self._skip_first_redo = True

    def redo(self) -> None:
        if self._skip_first_redo:
            self._skip_first_redo = False
            return
        self.command.do()

    def undo(self) -> None:
        self.command.undo()

    def id(self) -> int:
        return self.command.id

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, CommandAdapter) or other.command.id != self.command.id:
            return False
        if not self.command.merge_with(other.command):
            return False
        self.setText(self.command.text)
        return True


def push_command(stack: QUndoStack, command: Command) -> None:
    """Do `command` and push it. Raises the command's typed error (and pushes nothing) when refused."""
    command.do()
    stack.push(CommandAdapter(command))
