"""The topology canvas scene: a mirror of the open document, plus the gestures that edit it.

Owns: `TopologyScene`. The scene listens to the model's past-tense events (``node_added`` …,
``document.node_moved``) and to the `DocumentEditor` (``document_replaced``, ``selection_changed``); it
never owns state: every edit is a core command pushed with ``editor.execute``. Gestures are interaction
objects (see `interactions.py`); this class only routes events to them. Imports PySide6 and mqstudio.core.
Selection editing (delete, copy, paste, `release_clipboard`) and gesture feedback are in `editing.py`,
image/SVG export in `export.py`; their public names are bound here as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QEvent, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsSceneDragDropEvent,
    QGraphicsSceneMouseEvent,
)

from mqstudio.core.commands import Command, MoveNodes
from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import (
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    Node,
    Producer,
    Queue,
    Topic,
)
from mqstudio.core.validation import Finding
from mqstudio.ui.canvas import editing, export
from mqstudio.ui.canvas import layout as layout_mod
from mqstudio.ui.canvas.constants import (
    GRID,
    LOD_SIMPLE,
    Theme,
)
from mqstudio.ui.canvas.editing import Feedback, release_clipboard
from mqstudio.ui.canvas.interactions import (
    DropNodeInteraction,
    Interaction,
    MoveInteraction,
    NameEditor,
    NewBindingInteraction,
    RubberBandSelection,
    snap,
)
from mqstudio.ui.canvas.items.client import ConsumerItem, ProducerItem
from mqstudio.ui.canvas.items.edge import BindingEdge, DerivedEdge, EdgeItem
from mqstudio.ui.canvas.items.edgelayer import EdgeLayer
from mqstudio.ui.canvas.items.exchange import ExchangeItem
from mqstudio.ui.canvas.items.kafka import GroupItem, TopicItem
from mqstudio.ui.canvas.items.node import NodeItem
from mqstudio.ui.canvas.items.nodelayer import NodeLayer
from mqstudio.ui.canvas.items.queue import QueueItem
from mqstudio.ui.editor import DocumentEditor

__all__ = ["BSP_DEPTH", "FEEDBACK_MS", "OVERVIEW_MS", "TopologyScene", "release_clipboard"]

_ITEM_TYPES: dict[type, type[NodeItem]] = {
    Exchange: ExchangeItem,
    Queue: QueueItem,
    Producer: ProducerItem,
    Consumer: ConsumerItem,
    Topic: TopicItem,
    ConsumerGroup: GroupItem,
}
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
FEEDBACK_MS = 4000
OVERVIEW_MS = 30  # coalesce overview (minimap) refreshes: at most one per this many ms
BSP_DEPTH = 0  # 0: Qt picks the BSP tree depth from the item count


class TopologyScene(QGraphicsScene):
    """Mirror of ``editor.document`` with selection kept in sync with ``editor.select`` both ways.

    Signals: ``overview_changed()`` at most every OVERVIEW_MS while nodes move, appear or disappear (the
    minimap refreshes on it instead of on ``changed``, which would slow every scene update down)."""

    overview_changed = Signal()

    def __init__(self, editor: DocumentEditor, parent: Any = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.snap_to_grid = True
        self.feedback_item: Feedback | None = None
        self._document: TopologyDocument | None = None
        self._nodes: dict[str, NodeItem] = {}
        self._bindings: dict[str, BindingEdge] = {}
        self._derived: dict[tuple[str, str, str], DerivedEdge] = {}
        self._interaction: Interaction | None = None
        self._drop = DropNodeInteraction(self)
        self._name_editor: NameEditor | None = None
        self._syncing = False
        self._findings: dict[str, list[Finding]] = {}
        self._highlighted: list[str] = []
        self._raised: set[QGraphicsItem] = set()
        self._bounds_refresh_pending = False
        self._detail_zoom = 1.0
        self.edge_layer = EdgeLayer()
        self.node_layer = NodeLayer()
        self._drag_nodes: list[NodeItem] | None = None  # nodes of a drag in progress (see begin_drag)
        self._drag_moving: tuple[list[NodeItem], set[EdgeItem]] | None = None  # set while frozen
        self._refreeze_pending = False
        # While not None, moved node items put their edges here instead of re-routing them (see
        # `deferred_edges`); an insertion-ordered set.
        self.pending_edges: dict[EdgeItem, None] | None = None
        self._overview_timer = QTimer(self)
        self._overview_timer.setSingleShot(True)
        self._overview_timer.setInterval(OVERVIEW_MS)
        self._overview_timer.timeout.connect(self.overview_changed)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setBackgroundBrush(Theme.current().background)
        editor.document_replaced.connect(self._on_document_replaced)
        editor.selection_changed.connect(self._on_editor_selection)
        self.selectionChanged.connect(self._restack_selection)
        self.selectionChanged.connect(self._on_scene_selection)
        self._attach(editor.document)

    # -- public API --------------------------------------------------------------------------
    def item_for(self, object_id: str) -> QGraphicsItem | None:
        """The node item or binding edge of a model id (None when not shown)."""
        return self._nodes.get(object_id) or self._bindings.get(object_id)

    def node_item(self, node_id: str) -> NodeItem | None:
        return self._nodes.get(node_id)

    def node_items(self) -> list[NodeItem]:
        return list(self._nodes.values())

    def binding_edges(self) -> list[BindingEdge]:
        return list(self._bindings.values())

    def derived_edges(self) -> list[DerivedEdge]:
        return list(self._derived.values())

    def set_detail(self, zoom: float) -> None:
        """The main view's zoom: below LOD_SIMPLE the edge and node layers draw every edge and node in a
        few calls."""
        self._detail_zoom = zoom
        active = zoom < LOD_SIMPLE
        if active != self.edge_layer.active or active != self.node_layer.active:
            self.drag_snapshot_stale()
            self.edge_layer.set_active(active)
            self.node_layer.set_active(active)
            self.update()

    @property
    def detail_zoom(self) -> float:
        return self._detail_zoom

    @property
    def edge_layer_active(self) -> bool:
        return self.edge_layer.active

    # -- drag snapshot -------------------------------------------------------------------------
    # While nodes are dragged, the edges that do not move are static: each view snapshots them once with
    # the background (a pixmap it then draws as its background), they get `ItemHasNoContents` (Qt skips
    # them without a Python call), and a drag step repaints the moving edges and the nodes (cached
    # pixmaps) in the dirty region over that blit, in their usual stacking order. Anything that changes
    # what the snapshot shows (a model event, zoom, scroll, selection, theme) thaws it at once and takes
    # a new snapshot on the next turn of the event loop.
    def begin_drag(self, nodes: Iterable[NodeItem]) -> None:
        """Nodes start moving under the mouse: freeze the rest of the scene into snapshots."""
        self.end_drag()
        self._drag_nodes = list(nodes)
        self._freeze()

    def end_drag(self) -> None:
        """The drag is over: every item draws itself again."""
        if self._drag_nodes is None:
            return
        self._thaw()
        self._drag_nodes = None

    @property
    def drag_frozen(self) -> bool:
        """True while views draw the static scene from a snapshot."""
        return self._drag_moving is not None

    def drag_snapshot_stale(self) -> None:
        """What the snapshot shows changed: draw normally now, snapshot again on the next event loop turn."""
        if self._drag_moving is None:
            return
        self._thaw()
        if not self._refreeze_pending:
            self._refreeze_pending = True
            QTimer.singleShot(0, self._refreeze)

    def _refreeze(self) -> None:
        self._refreeze_pending = False
        if self._drag_nodes is not None and self._drag_moving is None:
            self._freeze()

    def _freeze(self) -> None:
        nodes = [n for n in self._drag_nodes or [] if n.scene() is self]
        edges = {e for n in nodes for e in n.edges}
        no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        static_edges = [e for e in (*self._bindings.values(), *self._derived.values()) if e not in edges]
        # 1. Snapshot what lies under the nodes: the background and the edges that do not move.
        node_drawers: list[QGraphicsItem] = [*self._nodes.values(), self.node_layer, *edges]
        for item in node_drawers:
            item.setFlag(no_contents, True)
        self.edge_layer.set_excluded(edges)
        for view in self.views():
            take = getattr(view, "take_snapshot", None)
            if take is not None:
                take()
        # 2. From now on the static edges are that snapshot; nodes (cheap: cached pixmaps, or the node
        # layer's blocks) and the moving edges draw live, so stacking stays exact.
        for edge in static_edges:
            edge.setFlag(no_contents, True)
        self.edge_layer.setFlag(no_contents, True)
        layered = self.node_layer.active
        for node in self._nodes.values():
            node.setFlag(no_contents, layered)
        for node in nodes:
            node.setFlag(no_contents, False)  # drawn by itself, left out of the node layer
        self.node_layer.set_excluded(nodes)
        self.node_layer.setFlag(no_contents, not layered)
        for edge in edges:
            edge.setFlag(no_contents, False)
        self._drag_moving = (nodes, edges)

    def _thaw(self) -> None:
        if self._drag_moving is None:
            return
        nodes, _ = self._drag_moving
        self._drag_moving = None
        no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        edges_off = self.edge_layer.active
        for edge in (*self._bindings.values(), *self._derived.values()):
            edge.setFlag(no_contents, edges_off)
        self.edge_layer.setFlag(no_contents, not edges_off)
        self.edge_layer.set_excluded(set())
        for node in nodes:
            node.setFlag(no_contents, self.node_layer.active)
        self.node_layer.set_excluded(())
        for view in self.views():
            drop = getattr(view, "drop_snapshot", None)
            if drop is not None:
                drop()

    @contextmanager
    def deferred_edges(self) -> Iterator[None]:
        """Move many nodes inside: each edge between them is re-routed once, on exit, rather than once
        per end that moved (a layout moving every node would route every edge twice). Nests."""
        if self.pending_edges is not None:
            yield
            return
        self.pending_edges = {}
        try:
            yield
        finally:
            edges, self.pending_edges = self.pending_edges, None
            for edge in edges:
                if edge.scene() is self:
                    edge.adjust()

    def node_item_moved(self, item: NodeItem) -> None:
        """A node item moved (model event or a drag step): schedule one overview refresh."""
        if not self._overview_timer.isActive():
            self._overview_timer.start()

    def set_findings(self, findings: Iterable[Finding]) -> None:
        """Mark items with the worst severity of their findings (outline + badge, messages in tooltip)."""
        self.drag_snapshot_stale()
        self._findings = {}
        for finding in findings:
            self._findings.setdefault(finding.object_id, []).append(finding)
        for node_id, node_item in self._nodes.items():
            self._apply_findings(node_item, node_id)
        for binding_id, edge in self._bindings.items():
            items = self._findings.get(binding_id, [])
            edge.set_severity(self._worst(items))

    def highlight_path(self, object_ids: list[str]) -> None:
        """Highlight a traced route in order: numbered nodes and the edges between consecutive nodes (or
        the bindings listed). An empty list clears the highlight."""
        self.drag_snapshot_stale()
        for node_item in self._nodes.values():
            node_item.set_highlight_order(None)
        for edge in [*self._bindings.values(), *self._derived.values()]:
            edge.set_highlighted(False)
        self._highlighted = list(object_ids)
        order = 0
        previous: str | None = None
        for object_id in object_ids:
            if object_id in self._bindings:
                self._bindings[object_id].set_highlighted(True)
                continue
            step = self._nodes.get(object_id)
            if step is None:
                continue
            order += 1
            step.set_highlight_order(order)
            if previous is not None:
                for edge in self._nodes[previous].edges:
                    if edge.source.node_id == previous and edge.dest is step:
                        edge.set_highlighted(True)
            previous = object_id

    def auto_layout(self) -> bool:
        """Lay the design out (producers → exchanges → queues → consumers, dead-letter paths below) as
        ONE undo step. False when nothing moved or the move was refused."""
        doc = self.editor.document
        positions = layout_mod.compute_layout(doc.topology)
        changed = {k: v for k, v in positions.items() if doc.position(k) != v}
        if not changed:
            return False
        command = MoveNodes(doc, changed)
        command.text = "Auto-layout"
        with self.deferred_edges():
            return self.editor.execute(command)

    def create_at_center(self, spec: dict[str, Any]) -> str | None:
        """Create a node from a palette spec at the centre of the view, nudged off existing nodes."""
        views = self.views()
        if views:
            view = views[0]
            center = view.mapToScene(view.viewport().rect().center())
        else:
            center = self.itemsBoundingRect().center() if self._nodes else QPointF(0, 0)
        pos = QPointF(snap(center.x()), snap(center.y()))
        while any(item.sceneBoundingRect().contains(pos) for item in self._nodes.values()):
            pos += QPointF(0, GRID * 5)
        return self._drop.drop_spec(spec, pos)

    # Whole-design export (see export.py).
    render_to_image = export.render_to_image
    render_to_svg = export.render_to_svg

    # -- editing actions (also bound to keys; clipboard and delete are in editing.py) ---------------
    delete_selected = editing.delete_selected
    copy_selection = editing.copy_selection
    paste = editing.paste

    def rename_selected(self) -> bool:
        items = self.selected_node_items()
        if len(items) != 1:
            return False
        self.start_rename(items[0])
        return True

    def start_rename(self, item: NodeItem) -> NameEditor:
        if self._name_editor is not None:
            self._name_editor.close()
        node = self.editor.document.topology.node(item.node_id)
        self._name_editor = NameEditor(self, item, node.name)
        return self._name_editor

    @property
    def name_editor(self) -> NameEditor | None:
        return self._name_editor

    def name_editor_closed(self, editor: NameEditor) -> None:
        if self._name_editor is editor:
            self._name_editor = None

    # -- helpers for interactions ------------------------------------------------------------
    def execute_at(self, command: Command, pos: QPointF) -> bool:
        """Execute `command`; when refused, also show the reason at `pos`."""
        reasons: list[str] = []
        self.editor.refused.connect(reasons.append)
        try:
            ok = self.editor.execute(command)
        finally:
            self.editor.refused.disconnect(reasons.append)
        if not ok and reasons:
            self.show_feedback(reasons[-1], pos)
        return ok

    def show_feedback(self, text: str, pos: QPointF, ok: bool = False) -> None:
        self.clear_feedback()
        self.feedback_item = Feedback(text, pos, ok)
        self.addItem(self.feedback_item)
        item = self.feedback_item
        QTimer.singleShot(FEEDBACK_MS, lambda: self._expire_feedback(item))

    def clear_feedback(self) -> None:
        if self.feedback_item is not None and self.feedback_item.scene() is self:
            self.removeItem(self.feedback_item)
        self.feedback_item = None

    def _expire_feedback(self, item: Feedback) -> None:
        if self.feedback_item is item:
            self.clear_feedback()

    def selected_node_items(self) -> list[NodeItem]:
        return [i for i in self.selectedItems() if isinstance(i, NodeItem)]

    def node_item_at(self, pos: QPointF) -> NodeItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem):
                return item
        return None

    def set_selected_items(self, items: set[QGraphicsItem]) -> None:
        with self._batch_selection():
            for item in self.selectedItems():
                if item not in items:
                    item.setSelected(False)
            for item in items:
                item.setSelected(True)

    def click_node(self, item: NodeItem, modifiers: Qt.KeyboardModifier, released: bool = False) -> None:
        toggle = bool(modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier))
        if toggle:
            if not released:
                item.setSelected(not item.isSelected())
        elif not item.isSelected() or released:
            self.set_selected_items({item})

    def begin_interaction(self, interaction: Interaction) -> None:
        if self._interaction is not None:
            self._interaction.cancel()
        self._interaction = interaction

    def end_interaction(self, interaction: Interaction) -> None:
        if self._interaction is interaction:
            self._interaction = None

    @property
    def interaction(self) -> Interaction | None:
        return self._interaction

    # -- mouse, keys, drops ------------------------------------------------------------------
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._interaction is not None and self._interaction.mouse_press(event):
            event.accept()
            return
        if self._name_editor is not None:
            grabbed = self.itemAt(event.scenePos(), self._view_transform())
            if grabbed is self._name_editor:
                super().mousePressEvent(event)
                return
            self._name_editor.commit(keep_open_on_refusal=False)
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self.clear_feedback()
        item = self.itemAt(event.scenePos(), self._view_transform())
        port = item.port_at(event.scenePos()) if isinstance(item, NodeItem) else None
        if port is not None and port.role == "out":
            self.begin_interaction(NewBindingInteraction(self, port))
        elif isinstance(item, NodeItem):
            node_item = item
            self.click_node(node_item, event.modifiers())
            if node_item.isSelected():
                interaction = MoveInteraction(self, node_item, event.scenePos(), QPointF(event.screenPos()))
                self.begin_interaction(interaction)
        elif isinstance(item, EdgeItem) and item.flags() & QGraphicsItem.GraphicsItemFlag.ItemIsSelectable:
            toggle = event.modifiers() & (
                Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier
            )
            if toggle:
                item.setSelected(not item.isSelected())
            else:
                self.set_selected_items({item})
        else:
            self.begin_interaction(RubberBandSelection(self, event.scenePos(), event.modifiers()))
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._interaction is not None and self._interaction.mouse_move(event):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._interaction is not None and self._interaction.mouse_release(event):
            event.accept()
            return
        super().mouseReleaseEvent(event)
        event.accept()  # presses the scene handled itself have no grabber to accept their release

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        item = self.node_item_at(event.scenePos())
        if item is not None and event.button() == Qt.MouseButton.LeftButton:
            self.start_rename(item)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.focusItem() is not None:
            super().keyPressEvent(event)
            return
        if self._interaction is not None and self._interaction.key_press(event):
            return
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selected()
        elif event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
        elif event.matches(QKeySequence.StandardKey.Paste):
            self.paste()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.set_selected_items(set(self._nodes.values()) | set(self._bindings.values()))
        elif event.key() == Qt.Key.Key_F2:
            self.rename_selected()
        elif event.key() == Qt.Key.Key_Escape:
            self.clearSelection()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def dragEnterEvent(self, event: QGraphicsSceneDragDropEvent) -> None:
        if not self._drop.drag_enter(event):
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QGraphicsSceneDragDropEvent) -> None:
        if not self._drop.drag_enter(event):
            super().dragMoveEvent(event)

    def dropEvent(self, event: QGraphicsSceneDragDropEvent) -> None:
        if not self._drop.drop(event):
            super().dropEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.PaletteChange:
            self.refresh_theme()
        return super().event(event)

    def refresh_theme(self) -> None:
        """Rebuild colours from the application palette (light/dark switch) and restyle every item."""
        self.drag_snapshot_stale()
        theme = Theme.refresh()
        self.setBackgroundBrush(theme.background)
        topology = self.editor.document.topology
        for node_id, node_item in self._nodes.items():
            node_item.update_from(topology.node(node_id))
        for edge in [*self._bindings.values(), *self._derived.values()]:
            edge.set_label(edge.label)
            edge.update_style()

    def _view_transform(self) -> QTransform:
        views = self.views()
        return views[0].transform() if views else QTransform()

    # -- model → items -----------------------------------------------------------------------
    def _attach(self, document: TopologyDocument) -> None:
        self._document = document
        topology = document.topology
        topology.node_added.connect(self._on_node_added)
        topology.node_removed.connect(self._on_node_removed)
        topology.node_changed.connect(self._on_node_changed)
        topology.binding_added.connect(self._on_binding_added)
        topology.binding_removed.connect(self._on_binding_removed)
        topology.binding_changed.connect(self._on_binding_changed)
        document.node_moved.connect(self._on_node_moved)
        missing = [n for n in topology.nodes if document.position(n.id) is None]
        fallback = layout_mod.compute_layout(topology) if missing else {}
        # Bulk insertion without an index (each insert into a BSP tree costs), then index once. The
        # layers take their members in one go (bounds grown once), after every edge has its geometry.
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        if self.edge_layer.scene() is not self:
            self.addItem(self.edge_layer)
        if self.node_layer.scene() is not self:
            self.addItem(self.node_layer)
        nodes = [self._add_node_item(node, fallback.get(node.id), bulk=True) for node in topology.nodes]
        self.node_layer.add_members(nodes)
        edges = [self._add_binding_edge(binding, bulk=True) for binding in topology.bindings]
        self.edge_layer.add_members(e for e in edges if e is not None)
        self._refresh_derived()
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setBspTreeDepth(BSP_DEPTH)
        self._overview_timer.start()

    def _detach(self) -> None:
        document = self._document
        if document is None:
            return
        self.end_drag()
        topology = document.topology
        topology.node_added.disconnect(self._on_node_added)
        topology.node_removed.disconnect(self._on_node_removed)
        topology.node_changed.disconnect(self._on_node_changed)
        topology.binding_added.disconnect(self._on_binding_added)
        topology.binding_removed.disconnect(self._on_binding_removed)
        topology.binding_changed.disconnect(self._on_binding_changed)
        document.node_moved.disconnect(self._on_node_moved)
        if self._interaction is not None:
            self._interaction.cancel()
        if self._name_editor is not None:
            self._name_editor.close()
        self.clear_feedback()
        with self._batch_selection():
            self.edge_layer.clear()
            self.removeItem(self.edge_layer)  # kept (with its mode) for the next document
            self.node_layer.clear()
            self.removeItem(self.node_layer)
            self.clear()
        self._raised.clear()
        self._nodes.clear()
        self._bindings.clear()
        self._derived.clear()
        self._findings = {}
        self._highlighted = []
        self._document = None

    def _on_document_replaced(self) -> None:
        self._detach()
        self._attach(self.editor.document)

    def _add_node_item(
        self, node: Node, fallback: tuple[float, float] | None = None, bulk: bool = False
    ) -> NodeItem:
        """`bulk`: the caller adds the item to the node layer (with the others, in one go)."""
        item = _ITEM_TYPES[type(node)](node)
        pos = self.editor.document.position(node.id) or fallback or (0.0, 0.0)
        item.setPos(QPointF(pos[0], pos[1]))
        self._nodes[node.id] = item
        self.addItem(item)
        if not bulk:
            self.node_layer.add_node(item)
        self.node_item_moved(item)
        if node.id in self._findings:
            self._apply_findings(item, node.id)
        return item

    def _add_binding_edge(self, binding: Binding, bulk: bool = False) -> BindingEdge | None:
        """`bulk`: the caller adds the edge to the edge layer (with the others, in one go)."""
        source, dest = self._nodes.get(binding.source), self._nodes.get(binding.destination)
        if source is None or dest is None:
            return None
        edge = BindingEdge(binding, source, dest)
        topology = self.editor.document.topology
        edge.update_from(binding, topology.node(binding.source), topology.node(binding.destination))
        self._bindings[binding.id] = edge
        self.addItem(edge)
        if not bulk:
            self.edge_layer.add_edge(edge)
        return edge

    def _remove_edge(self, edge: EdgeItem) -> None:
        self._raised.discard(edge)
        edge.detach()
        if edge.scene() is self:
            self.removeItem(edge)

    def _on_node_added(self, node: Node) -> None:
        self.drag_snapshot_stale()
        self._add_node_item(node)
        self._refresh_derived()

    def _on_node_removed(self, node: Node) -> None:
        self.drag_snapshot_stale()
        item = self._nodes.pop(node.id, None)
        if item is None:
            return
        for edge in list(item.edges):
            if isinstance(edge, BindingEdge):
                self._bindings.pop(edge.binding_id, None)
            self._remove_edge(edge)
        self._refresh_derived()
        self._raised.discard(item)
        self.node_layer.remove_node(item)
        self.removeItem(item)
        self.node_item_moved(item)

    def _on_node_changed(self, node: Node, field: str) -> None:
        self.drag_snapshot_stale()
        item = self._nodes.get(node.id)
        if item is None:
            return
        item.update_from(node)
        self._apply_findings(item, node.id)
        topology = self.editor.document.topology
        for edge in item.edges:
            if isinstance(edge, BindingEdge):
                binding = topology.binding(edge.binding_id)
                edge.update_from(binding, topology.node(binding.source), topology.node(binding.destination))
        if field in ("name", "arguments", "target", "source", "topics", "vhost"):
            self._refresh_derived()

    def _on_node_moved(self, node_id: str, pos: tuple[float, float] | None) -> None:
        self.drag_snapshot_stale()
        item = self._nodes.get(node_id)
        if item is not None and pos is not None and (item.pos().x(), item.pos().y()) != pos:
            item.setPos(QPointF(pos[0], pos[1]))
            if not self._bounds_refresh_pending:
                # once per batch of model moves (a layout moves every node): shrink the layer's bounds
                self._bounds_refresh_pending = True
                QTimer.singleShot(0, self._refresh_layer_bounds)

    def _refresh_layer_bounds(self) -> None:
        self._bounds_refresh_pending = False
        self.edge_layer.refresh_bounds()
        self.node_layer.refresh_bounds()

    def _on_binding_added(self, binding: Binding) -> None:
        self.drag_snapshot_stale()
        self._add_binding_edge(binding)

    def _on_binding_removed(self, binding: Binding) -> None:
        self.drag_snapshot_stale()
        edge = self._bindings.pop(binding.id, None)
        if edge is not None:
            self._remove_edge(edge)

    def _on_binding_changed(self, binding: Binding, field: str) -> None:
        self.drag_snapshot_stale()
        edge = self._bindings.get(binding.id)
        if edge is not None:
            topology = self.editor.document.topology
            edge.update_from(binding, topology.node(binding.source), topology.node(binding.destination))

    def _refresh_derived(self) -> None:
        """Diff the edges implied by node fields (DLX, AE, clients, subscriptions) against the scene."""
        wanted = layout_mod.derived_links(self.editor.document.topology)
        for key in [k for k in self._derived if k not in wanted]:
            self._remove_edge(self._derived.pop(key))
        added: list[DerivedEdge] = []
        for key, label in wanted.items():
            edge = self._derived.get(key)
            if edge is not None:
                if edge.label != label:
                    edge.set_label(label)
                continue
            kind, source_id, dest_id = key
            source, dest = self._nodes.get(source_id), self._nodes.get(dest_id)
            if source is None or dest is None:
                continue
            edge = DerivedEdge(kind, source, dest, label)
            self._derived[key] = edge
            self.addItem(edge)
            added.append(edge)
        if added:
            self.edge_layer.add_members(added)
            if self._highlighted:
                self.highlight_path(self._highlighted)

    # -- findings ----------------------------------------------------------------------------
    @staticmethod
    def _worst(findings: list[Finding]) -> str | None:
        if not findings:
            return None
        return min((f.severity.value for f in findings), key=lambda s: _SEVERITY_RANK.get(s, 9))

    def _apply_findings(self, item: NodeItem, node_id: str) -> None:
        findings = self._findings.get(node_id, [])
        text = "<br>".join(f"<b>{f.severity.value}</b>: {f.message}" for f in findings)
        item.set_severity(self._worst(findings), text)

    # -- selection sync ----------------------------------------------------------------------
    @contextmanager
    def _batch_selection(self) -> Iterator[None]:
        was = self._syncing
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = was
        if not was:
            self._restack_selection()
            self._on_scene_selection()

    def _selected_ids(self) -> list[str]:
        ids: list[str] = []
        for item in self.selectedItems():
            if isinstance(item, NodeItem):
                ids.append(item.node_id)
            elif isinstance(item, BindingEdge):
                ids.append(item.binding_id)
        return ids

    def _restack_selection(self) -> None:
        """Raise selected nodes over the others; restyle edges whose selection changed (drawn by the
        layer when zoomed out). Once per batch, not per item of a large selection."""
        if self._syncing:
            return
        selected = set(self.selectedItems())
        if self._drag_moving is not None and selected != self._raised:
            self.drag_snapshot_stale()
        for item in self._raised - selected:
            self._restyle_selected(item, False)
        for item in selected - self._raised:
            self._restyle_selected(item, True)
        self._raised = {i for i in selected if isinstance(i, NodeItem | EdgeItem)}

    @staticmethod
    def _restyle_selected(item: QGraphicsItem, selected: bool) -> None:
        if isinstance(item, NodeItem):
            item.set_raised(selected)
        elif isinstance(item, EdgeItem):
            item.repaint()

    def _on_scene_selection(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.editor.select(self._selected_ids())
        finally:
            self._syncing = False

    def _on_editor_selection(self, ids: list[str]) -> None:
        if self._syncing:
            return
        wanted: set[QGraphicsItem] = set()
        for object_id in ids:
            found = self.item_for(object_id)
            if found is not None:
                wanted.add(found)
        self._syncing = True
        try:
            for item in self.selectedItems():
                if item not in wanted:
                    item.setSelected(False)
            for item in wanted:
                item.setSelected(True)
        finally:
            self._syncing = False
        self._restack_selection()
