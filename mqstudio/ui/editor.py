"""The editing session shared by the canvas, the inspector and the panels.

Owns: `DocumentEditor`, which holds the open `TopologyDocument`, its `QUndoStack` and the selection, and is
the only way the UI changes the model: `execute(command)`. Views listen to the model's events (through
`document.topology`) and to this object's Qt signals; they never write the model themselves.
Imports PySide6 and mqstudio.core only.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from mqstudio.core.commands import Command
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import TopologyError
from mqstudio.ui.undo import push_command


class DocumentEditor(QObject):
    """Signals: ``document_replaced()`` after `set_document`; ``selection_changed(list[str])`` with the
    selected object ids; ``refused(str)`` with a user-facing reason when a command is refused."""

    document_replaced = Signal()
    selection_changed = Signal(list)
    refused = Signal(str)

    def __init__(self, document: TopologyDocument | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.undo_stack.indexChanged.connect(self._on_index_changed)
        self._document = document if document is not None else TopologyDocument()
        self._selection: list[str] = []

    # -- document ------------------------------------------------------------------------------
    @property
    def document(self) -> TopologyDocument:
        return self._document

    def set_document(self, document: TopologyDocument) -> None:
        """Replace the open document (after New/Open): history and selection start afresh."""
        self._selection = []
        self._document = document
        self.undo_stack.clear()
        self.undo_stack.setClean()
        document.set_dirty(False)
        self.document_replaced.emit()
        self.selection_changed.emit([])

    def mark_saved(self) -> None:
        self.undo_stack.setClean()
        self._document.mark_clean()

    def _on_clean_changed(self, clean: bool) -> None:
        self._document.set_dirty(not clean)

    # -- editing -------------------------------------------------------------------------------
    def execute(self, command: Command) -> bool:
        """Do and push `command`. When the model refuses it, emit ``refused`` and return False."""
        try:
            push_command(self.undo_stack, command)
        except TopologyError as exc:
            self.refused.emit(str(exc))
            return False
        return True

    # -- selection -----------------------------------------------------------------------------
    @property
    def selection(self) -> list[str]:
        return list(self._selection)

    def select(self, object_ids: Iterable[str]) -> None:
        ids = [i for i in dict.fromkeys(object_ids) if i in self._document.topology]
        if ids != self._selection:
            self._selection = ids
            self.selection_changed.emit(list(ids))

    def _on_index_changed(self, _index: int) -> None:
        # After do/undo/redo an object may be gone: never keep a selection of things that do not exist.
        self._drop_missing_from_selection()

    def _drop_missing_from_selection(self) -> None:
        topology = self._document.topology
        if any(i not in topology for i in self._selection):
            self.select(i for i in self._selection if i in topology)
