"""Canvas gestures as objects: each owns its transient feedback and, on release, asks `core.validation`
and pushes ONE core command through `editor.execute` (or shows why it cannot).

Owns: `Interaction` (base), `MoveInteraction`, `RubberBandSelection`, `NewBindingInteraction`,
`DropNodeInteraction`, `connection_command` and `NameEditor` (rename in place). The scene routes mouse
and drag events to the active interaction (the orange-canvas pattern, without a god object). Imports
PySide6 and mqstudio.core.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QPainterPath, QPen, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSceneDragDropEvent,
    QGraphicsSceneMouseEvent,
    QGraphicsTextItem,
)

from mqstudio.core.commands import Bind, Command, MoveNodes, RenameNode, SetNodeField
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import DuplicateBindingError, InvalidBindingError, TopologyError
from mqstudio.core.model import Consumer, ConsumerGroup, Exchange, ExchangeType, Producer, Queue, Topic
from mqstudio.core.validation import check_bind
from mqstudio.ui.canvas.constants import GRID, MIME_TYPE, Z_DRAG_LINE, Z_EDITOR, Theme
from mqstudio.ui.canvas.items.node import NodeItem, Port
from mqstudio.ui.canvas.nodefactory import create_node_command

if TYPE_CHECKING:
    from mqstudio.ui.canvas.scene import TopologyScene


def snap(value: float, grid: float = GRID) -> float:
    return round(value / grid) * grid


# -- what a connection gesture means ---------------------------------------------------------------
def default_binding_key(source: Exchange, dest: Any) -> tuple[str, dict[str, Any]]:
    """A sensible first routing key: the destination's name for direct/topic, none for fanout, and an
    ``x-match=all`` table for headers. The inspector edits it afterwards."""
    kind = source.delayed_type if source.type == ExchangeType.DELAYED else source.type
    if kind == ExchangeType.FANOUT:
        return "", {}
    if kind == ExchangeType.HEADERS:
        return "", {"x-match": "all"}
    return str(getattr(dest, "name", "")), {}


def connection_command(document: TopologyDocument, source_id: str, dest_id: str) -> Command:
    """The command a drag from `source_id`'s output port onto `dest_id` means, validated; raises a typed
    `TopologyError` with a reason a user can act on when it means nothing valid."""
    topology = document.topology
    source, dest = topology.node(source_id), topology.node(dest_id)
    if isinstance(source, Producer):
        if not isinstance(dest, Exchange | Topic):
            raise InvalidBindingError(
                f"a producer publishes to an exchange or a Kafka topic, not to {topology.label(dest_id)}",
                "target",
            )
        if source.target == dest_id:
            raise DuplicateBindingError(f"{topology.label(source_id)} already publishes to it", "target")
        return SetNodeField(document, source_id, "target", dest_id)
    if isinstance(dest, Consumer):
        if not isinstance(source, Queue | ConsumerGroup):
            raise InvalidBindingError(
                f"a consumer consumes from a queue or a consumer group, not from {topology.label(source_id)}",
                "source",
            )
        if dest.source == source_id:
            raise DuplicateBindingError(f"{topology.label(dest_id)} already consumes from it", "source")
        return SetNodeField(document, dest_id, "source", source_id)
    if isinstance(source, Topic) and isinstance(dest, ConsumerGroup):
        if source_id in dest.topics:
            raise DuplicateBindingError(f"{topology.label(dest_id)} already subscribes to it", "topics")
        return SetNodeField(document, dest_id, "topics", [*dest.topics, source_id])
    if isinstance(source, Exchange) and not isinstance(dest, Exchange | Queue | Topic | ConsumerGroup):
        raise InvalidBindingError(
            f"{topology.label(dest_id)} is a simulated client, not a broker object: bind the exchange to a "
            "queue, and let the consumer consume from that queue",
            "destination",
        )
    key: str = ""
    args: dict[str, Any] = {}
    if isinstance(source, Exchange):
        key, args = default_binding_key(source, dest)
    check_bind(topology, source_id, dest_id, key, args)
    return Bind(document, source_id, dest_id, key, args)


# -- interactions --------------------------------------------------------------------------------
class Interaction:
    """A gesture in progress. Handlers return True when they consumed the event."""

    def __init__(self, scene: TopologyScene) -> None:
        self.scene = scene

    def mouse_press(self, event: QGraphicsSceneMouseEvent) -> bool:
        return False

    def mouse_move(self, event: QGraphicsSceneMouseEvent) -> bool:
        return False

    def mouse_release(self, event: QGraphicsSceneMouseEvent) -> bool:
        return False

    def key_press(self, event: QKeyEvent) -> bool:
        if event.key() == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return False

    def cancel(self) -> None:
        self.end()

    def end(self) -> None:
        self.scene.end_interaction(self)


class MoveInteraction(Interaction):
    """Drag the selected nodes; the model moves once, on release, as ONE `MoveNodes` (grid-snapped)."""

    def __init__(
        self, scene: TopologyScene, anchor: NodeItem, press_pos: QPointF, screen_pos: QPointF
    ) -> None:
        super().__init__(scene)
        self.anchor = anchor
        self.press_pos = QPointF(press_pos)
        self.press_screen = QPointF(screen_pos)
        items = [i for i in scene.selected_node_items() if i is not anchor]
        self.items = [anchor, *items]
        self.start = {item.node_id: QPointF(item.pos()) for item in self.items}
        self.dragging = False
        self._frozen = False

    def mouse_move(self, event: QGraphicsSceneMouseEvent) -> bool:
        if not self.dragging:
            distance = (QPointF(event.screenPos()) - self.press_screen).manhattanLength()
            if distance < QApplication.startDragDistance():
                return True
            self.dragging = True
        self.drag_to(event.scenePos())
        return True

    def drag_to(self, scene_pos: QPointF) -> None:
        """Move the dragged nodes as if the mouse were at `scene_pos` (grid-snapped)."""
        if not self._frozen:
            self._frozen = True
            self.scene.begin_drag(self.items)  # the rest of the scene is drawn from a snapshot
        self.dragging = True
        delta = scene_pos - self.press_pos
        anchor_start = self.start[self.anchor.node_id]
        target = anchor_start + delta
        if self.scene.snap_to_grid:
            target = QPointF(snap(target.x()), snap(target.y()))
        delta = target - anchor_start
        with self.scene.deferred_edges():  # an edge between two dragged nodes is re-routed once
            for item in self.items:
                item.setPos(self.start[item.node_id] + delta)

    def mouse_release(self, event: QGraphicsSceneMouseEvent) -> bool:
        moved = {
            item.node_id: (item.pos().x(), item.pos().y())
            for item in self.items
            if item.pos() != self.start[item.node_id]
        }
        self.end()
        if not self.dragging:
            self.scene.click_node(self.anchor, event.modifiers(), released=True)
            return True
        if moved:
            doc = self.scene.editor.document
            if not self.scene.editor.execute(MoveNodes(doc, moved)):
                self.cancel_positions()
        return True

    def cancel_positions(self) -> None:
        with self.scene.deferred_edges():
            for item in self.items:
                item.setPos(self.start[item.node_id])

    def cancel(self) -> None:
        self.cancel_positions()
        self.end()

    def end(self) -> None:
        if self._frozen:
            self._frozen = False
            self.scene.end_drag()
        super().end()


class RubberBandSelection(Interaction):
    """Drag on empty canvas to select the nodes and bindings the band touches (Shift/Ctrl add)."""

    def __init__(self, scene: TopologyScene, press_pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        super().__init__(scene)
        self.origin = QPointF(press_pos)
        additive = bool(modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier))
        self.initial = set(scene.selectedItems()) if additive else set()
        if not additive:
            scene.clearSelection()
        theme = Theme.current()
        self.band = QGraphicsRectItem()
        color = QColor(theme.selection)
        self.band.setPen(QPen(color, 0))
        color.setAlphaF(0.15)
        self.band.setBrush(QBrush(color))
        self.band.setZValue(Z_DRAG_LINE)
        self.band.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        scene.addItem(self.band)

    def rect(self, pos: QPointF) -> QRectF:
        return QRectF(self.origin, pos).normalized()

    def mouse_move(self, event: QGraphicsSceneMouseEvent) -> bool:
        rect = self.rect(event.scenePos())
        self.band.setRect(rect)
        path = QPainterPath()
        path.addRect(rect)
        touched = {
            item
            for item in self.scene.items(path, Qt.ItemSelectionMode.IntersectsItemShape)
            if item.flags() & QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
        }
        self.scene.set_selected_items(self.initial | touched)
        return True

    def mouse_release(self, event: QGraphicsSceneMouseEvent) -> bool:
        self.end()
        return True

    def end(self) -> None:
        if self.band.scene() is not None:
            self.scene.removeItem(self.band)
        super().end()


class NewBindingInteraction(Interaction):
    """Drag from a node's output port: a line follows the mouse, a valid target lights up green and an
    invalid one red; on release over a node the connection is validated and pushed, or refused with the
    reason at the drop point (and through ``editor.refused``)."""

    def __init__(self, scene: TopologyScene, port: Port) -> None:
        super().__init__(scene)
        self.source = port.node_item
        self.start = port.scenePos()
        self.target: NodeItem | None = None
        self.reason: str | None = None
        theme = Theme.current()
        self.line = QGraphicsPathItem()
        pen = QPen(theme.accent_for(self.source.accent_key), 2.0, Qt.PenStyle.DashLine)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.line.setPen(pen)
        self.line.setZValue(Z_DRAG_LINE)
        self.line.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        scene.addItem(self.line)

    def _update_line(self, end: QPointF) -> None:
        bend = max(abs(end.x() - self.start.x()) * 0.5, 40.0)
        path = QPainterPath(self.start)
        path.cubicTo(self.start + QPointF(bend, 0), end - QPointF(bend, 0), end)
        self.line.setPath(path)

    def _set_target(self, item: NodeItem | None) -> None:
        if item is self.target:
            return
        if self.target is not None:
            self.target.set_drop_state(None)
        self.target = item
        self.reason = None
        if item is not None:
            try:
                connection_command(self.scene.editor.document, self.source.node_id, item.node_id)
            except TopologyError as exc:
                self.reason = exc.message
            item.set_drop_state("invalid" if self.reason else "valid")

    def mouse_move(self, event: QGraphicsSceneMouseEvent) -> bool:
        pos = event.scenePos()
        target = self.scene.node_item_at(pos)
        self._set_target(target if target is not self.source else None)
        self._update_line(target.input_pos() if target is not None and target is not self.source else pos)
        return True

    def mouse_release(self, event: QGraphicsSceneMouseEvent) -> bool:
        pos = event.scenePos()
        target = self.scene.node_item_at(pos)
        self.end()
        if target is None or target is self.source:
            return True
        editor = self.scene.editor
        try:
            command = connection_command(editor.document, self.source.node_id, target.node_id)
        except TopologyError as exc:
            editor.refused.emit(str(exc.message))
            self.scene.show_feedback(exc.message, pos)
            return True
        self.scene.execute_at(command, pos)
        return True

    def end(self) -> None:
        self._set_target(None)
        if self.line.scene() is not None:
            self.scene.removeItem(self.line)
        super().end()


class DropNodeInteraction(Interaction):
    """A palette drag (MIME_TYPE, a JSON spec) over the canvas: accepted while over it; the drop creates
    the node there with one `AddNode`."""

    @staticmethod
    def spec_from(event: QGraphicsSceneDragDropEvent) -> dict[str, Any] | None:
        mime = event.mimeData()
        if mime is None or not mime.hasFormat(MIME_TYPE):
            return None
        try:
            spec = json.loads(bytes(mime.data(MIME_TYPE).data()).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        return spec if isinstance(spec, dict) else None

    def drag_enter(self, event: QGraphicsSceneDragDropEvent) -> bool:
        if self.spec_from(event) is None:
            return False
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        return True

    def drop(self, event: QGraphicsSceneDragDropEvent) -> bool:
        spec = self.spec_from(event)
        if spec is None:
            return False
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self.drop_spec(spec, event.scenePos())
        return True

    def drop_spec(self, spec: dict[str, Any], pos: QPointF) -> str | None:
        """Create the node described by `spec` at `pos`; its id, or None when refused."""
        if self.scene.snap_to_grid:
            pos = QPointF(snap(pos.x()), snap(pos.y()))
        try:
            command = create_node_command(self.scene.editor.document, spec, (pos.x(), pos.y()))
        except (TopologyError, ValueError) as exc:
            message = exc.message if isinstance(exc, TopologyError) else str(exc)
            self.scene.editor.refused.emit(message)
            self.scene.show_feedback(message, pos)
            return None
        if self.scene.execute_at(command, pos):
            node_id: str = command.node.id
            self.scene.editor.select([node_id])
            return node_id
        return None


class NameEditor(QGraphicsTextItem):
    """In-place rename: Enter commits a `RenameNode`, Esc cancels, focus loss commits. A refused name
    keeps the editor open with the reason shown under it."""

    def __init__(self, scene: TopologyScene, item: NodeItem, name: str) -> None:
        super().__init__()
        self.scene_ref = scene
        self.node_item = item
        self.original = name
        self._closing = False
        theme = Theme.current()
        self.setFont(theme.title_font)
        self.setDefaultTextColor(theme.text)
        self.setPlainText(name)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextEditorInteraction)
        self.setZValue(Z_EDITOR)
        self.setTextWidth(item.width - 24)
        rect = item.body_rect()
        self.setPos(item.pos() + QPointF(rect.left() + 12, -self.boundingRect().height() / 2))
        scene.addItem(self)
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        cursor = self.textCursor()
        cursor.select(QTextCursor.SelectionType.Document)
        self.setTextCursor(cursor)

    def paint(self, painter: Any, option: Any, widget: Any = None) -> None:
        theme = Theme.current()
        painter.setPen(theme.selection_pen)
        painter.setBrush(QBrush(theme.base))
        painter.drawRoundedRect(self.boundingRect().adjusted(-2, -2, 2, 2), 4, 4)
        super().paint(painter, option, widget)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.commit()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            event.accept()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event: Any) -> None:
        super().focusOutEvent(event)
        if not self._closing:
            self.commit(keep_open_on_refusal=False)

    def commit(self, keep_open_on_refusal: bool = True) -> bool:
        name = self.toPlainText().strip()
        if name == self.original:
            self.close()
            return True
        scene = self.scene_ref
        doc = scene.editor.document
        pos = self.node_item.pos() + QPointF(0, self.node_item.height / 2 + 14)
        if scene.execute_at(RenameNode(doc, self.node_item.node_id, name), pos):
            self.close()
            return True
        if not keep_open_on_refusal:
            self.close()
        return False

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.clearFocus()
        if self.scene() is not None:
            self.scene_ref.removeItem(self)
        self.scene_ref.name_editor_closed(self)
