"""DocumentEditor: commands go through QUndoStack, refused commands leave no trace, dirty follows clean."""

from __future__ import annotations

from mqstudio.core.commands import AddNode, MoveNodes, SetArgument
from mqstudio.core.model import Queue
from mqstudio.ui.editor import DocumentEditor


def test_executed_command_is_undoable_and_redoable(qtbot) -> None:  # type: ignore[no-untyped-def]
    editor = DocumentEditor()
    queue = Queue("orders")
    assert editor.execute(AddNode(editor.document, queue, (10.0, 20.0)))
    assert editor.document.topology.find_queue("orders") is queue
    assert editor.document.dirty
    editor.undo_stack.undo()
    assert editor.document.topology.find_queue("orders") is None
    assert not editor.document.dirty
    editor.undo_stack.redo()
    assert editor.document.topology.find_queue("orders") is not None
    assert editor.document.position(queue.id) == (10.0, 20.0)


def test_refused_command_emits_reason_and_pushes_nothing(qtbot) -> None:  # type: ignore[no-untyped-def]
    editor = DocumentEditor()
    queue = Queue("orders")
    editor.execute(AddNode(editor.document, queue))
    reasons: list[str] = []
    editor.refused.connect(reasons.append)
    assert not editor.execute(SetArgument(editor.document, queue.id, "x-message-ttl", -1))
    assert "x-message-ttl" in reasons[0]
    assert "x-message-ttl" not in queue.arguments
    assert editor.undo_stack.count() == 1


def test_consecutive_moves_merge_into_one_undo_step(qtbot) -> None:  # type: ignore[no-untyped-def]
    editor = DocumentEditor()
    queue = Queue("orders")
    editor.execute(AddNode(editor.document, queue, (0.0, 0.0)))
    for x in (1.0, 2.0, 3.0):
        editor.execute(MoveNodes(editor.document, {queue.id: (x, 0.0)}))
    assert editor.undo_stack.count() == 2
    editor.undo_stack.undo()
    assert editor.document.position(queue.id) == (0.0, 0.0)


def test_selection_drops_objects_that_were_removed(qtbot) -> None:  # type: ignore[no-untyped-def]
    editor = DocumentEditor()
    queue = Queue("orders")
    editor.execute(AddNode(editor.document, queue))
    seen: list[list[str]] = []
    editor.selection_changed.connect(seen.append)
    editor.select([queue.id, "nope"])
    assert editor.selection == [queue.id]
    editor.undo_stack.undo()
    assert editor.selection == []
    assert seen[-1] == []
