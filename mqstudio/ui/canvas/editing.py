"""Canvas editing operations that work on the selection: delete, copy and paste, plus gesture feedback.

Owns: `delete_selected`, `copy_selection` and `paste` (bound as `TopologyScene` methods of the same
names, so callers keep using ``scene.delete_selected()`` …), `release_clipboard` (also importable from
`scene`) and `Feedback`, the transient text item a refused gesture shows. Every edit is a core command
pushed with ``scene.editor.execute``; nothing here keeps state.

Must not import `mqstudio.ui.canvas.scene` at run time (it imports this module; the type is for
annotations only), and nothing outside PySide6, mqstudio.core and mqstudio.ui (no backends, ops or runtime).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QMimeData, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter
from PySide6.QtWidgets import QGraphicsSimpleTextItem

from mqstudio.core.commands import Command, Macro, RemoveNodes, Unbind
from mqstudio.core.errors import FileFormatError
from mqstudio.ui.canvas.constants import FRAGMENT_MIME_TYPE, PASTE_OFFSET, Z_FEEDBACK, Theme
from mqstudio.ui.canvas.items.edge import BindingEdge
from mqstudio.ui.canvas.nodefactory import fragment_for, paste_command

if TYPE_CHECKING:
    from mqstudio.ui.canvas.scene import TopologyScene


class Feedback(QGraphicsSimpleTextItem):
    """A transient message at a point of the canvas (why a gesture was refused)."""

    def __init__(self, text: str, pos: QPointF, ok: bool = False) -> None:
        super().__init__(text)
        theme = Theme.current()
        self.setFont(theme.label_font)
        self.setBrush(QColor("white"))
        self._fill = theme.valid if ok else theme.invalid
        self.setZValue(Z_FEEDBACK)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setPos(pos + QPointF(12, 10))

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-6, -4, 6, 4)

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._fill)
        painter.drawRoundedRect(self.boundingRect(), 5, 5)
        super().paint(painter, option, widget)


def delete_selected(scene: TopologyScene) -> bool:
    """Remove the selected nodes (with their bindings) and bindings as ONE undo step."""
    doc = scene.editor.document
    node_ids = [i.node_id for i in scene.selected_node_items()]
    gone = set(node_ids)
    binding_ids = [
        e.binding_id
        for e in scene.selectedItems()
        if isinstance(e, BindingEdge) and e.source.node_id not in gone and e.dest.node_id not in gone
    ]
    if not node_ids and not binding_ids:
        return False
    commands: list[Command] = [Unbind(doc, b) for b in binding_ids]
    if node_ids:
        commands.append(RemoveNodes(doc, node_ids))
    if len(commands) == 1:
        return scene.editor.execute(commands[0])
    count = len(node_ids) + len(binding_ids)
    return scene.editor.execute(Macro(f"Delete {count} items", commands))


def copy_selection(scene: TopologyScene) -> bool:
    """Copy the selected nodes and the bindings among them (released at quit: see release_clipboard)."""
    node_ids = [i.node_id for i in scene.selected_node_items()]
    if not node_ids:
        return False
    data = fragment_for(scene.editor.document, node_ids)
    mime = QMimeData()
    payload = json.dumps(data).encode("utf-8")
    mime.setData(FRAGMENT_MIME_TYPE, payload)
    mime.setText(payload.decode("utf-8"))
    QGuiApplication.clipboard().setMimeData(mime)
    return True


def paste(scene: TopologyScene) -> list[str]:
    mime = QGuiApplication.clipboard().mimeData()
    if mime is None or not mime.hasFormat(FRAGMENT_MIME_TYPE):
        return []
    try:
        data = json.loads(bytes(mime.data(FRAGMENT_MIME_TYPE).data()).decode("utf-8"))
        command, new_ids = paste_command(scene.editor.document, data, (PASTE_OFFSET, PASTE_OFFSET))
    except (ValueError, FileFormatError) as exc:
        scene.editor.refused.emit(f"cannot paste: {exc}")
        return []
    if not scene.editor.execute(command):
        return []
    scene.editor.select(new_ids)
    return new_ids


def release_clipboard() -> None:
    """Clear the clipboard if it holds our fragment. Call before the QApplication goes away.

    PySide6 (6.11, seen offscreen) crashes in QApplication's destructor when the clipboard still owns a
    QMimeData created from Python; the fragment is only useful to mqstudio itself, so dropping it at quit
    loses nothing another application could paste.
    """
    clipboard = QGuiApplication.clipboard()
    mime = clipboard.mimeData()
    if mime is not None and mime.hasFormat(FRAGMENT_MIME_TYPE):
        clipboard.clear()
