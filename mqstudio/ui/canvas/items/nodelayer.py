"""One item that draws every node of the scene as a plain block when zoomed out.

Owns: `NodeLayer`. Zoomed out, a node is a few pixels wide and draws a block in its accent colour; as
items, a thousand of them cost a Python `boundingRect` and a cache blit each per repaint. While the layer
is active (the view's zoom is below `LOD_SIMPLE`, like `EdgeLayer`), every `NodeItem` carries
`ItemHasNoContents` (Qt skips it when painting without asking for its bounds, but still hit-tests its
shape: selection, hover, tooltips and drags keep working) and the layer draws all blocks with one aliased
`drawRects` per colour, selected ones outlined. Rect lists are cached and rebuilt only after a node moved
or changed style. Items listed in `set_excluded` are left out (a drag draws them itself). Draws the model
only. Imports PySide6.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from mqstudio.ui.canvas.constants import Z_NODE, Theme

if TYPE_CHECKING:
    from mqstudio.ui.canvas.items.node import NodeItem


class NodeLayer(QGraphicsItem):
    def __init__(self) -> None:
        super().__init__()
        self.active = False
        self._nodes: dict[NodeItem, None] = {}  # insertion-ordered set
        self._excluded: set[NodeItem] = set()
        self._groups: list[tuple[QColor, list[QRectF]]] | None = None
        self._selected: list[tuple[QColor, QRectF]] = []
        self._bounds = QRectF()
        self.setZValue(Z_NODE - 0.5)  # over every edge, under selected (raised) nodes' own paint
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)

    # -- membership --------------------------------------------------------------------------
    def add_node(self, node: NodeItem) -> None:
        node.layer = self
        self._nodes[node] = None
        node.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, self.active)
        self.node_moved(node)

    def remove_node(self, node: NodeItem) -> None:
        if self._nodes.pop(node, 0) is None:
            if self.active:
                self.update(node.sceneBoundingRect())
            self._groups = None
        self._excluded.discard(node)
        node.layer = None

    def clear(self) -> None:
        for node in self._nodes:
            node.layer = None
        self._nodes.clear()
        self._excluded.clear()
        self._groups = None
        self.prepareGeometryChange()
        self._bounds = QRectF()

    def nodes(self) -> list[NodeItem]:
        return list(self._nodes)

    def set_excluded(self, nodes: Iterable[NodeItem]) -> None:
        """Leave these nodes out of the layer's drawing (empty: draw them all again)."""
        excluded = set(nodes)
        if excluded != self._excluded:
            self._excluded = excluded
            self._groups = None
            if self.active:
                self.update()

    # -- mode --------------------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        """Draw all nodes here (True) or let each node draw itself (False)."""
        if active == self.active:
            return
        if not active:
            self.update()  # erase the blocks before the layer stops painting
        self.active = active
        self._groups = None
        no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        self.setFlag(no_contents, not active)
        for node in self._nodes:
            node.setFlag(no_contents, active)
        self.update()

    # -- change notifications from nodes -----------------------------------------------------
    def node_moved(self, node: NodeItem, old: QRectF | None = None) -> None:
        self._groups = None
        rect = node.sceneBoundingRect()
        if not self._bounds.contains(rect):
            # Grow only: shrinking (a full repaint of the layer) waits for `refresh_bounds`.
            self.prepareGeometryChange()
            self._bounds = self._bounds.united(rect) if not self._bounds.isNull() else QRectF(rect)
        if self.active:
            if old is not None:
                self.update(old)
            self.update(rect)

    def node_restyled(self, node: NodeItem) -> None:
        self._groups = None
        if self.active:
            self.update(node.sceneBoundingRect())

    def refresh_bounds(self) -> None:
        bounds = QRectF()
        for node in self._nodes:
            bounds = bounds.united(node.sceneBoundingRect())
        if bounds != self._bounds:
            self.prepareGeometryChange()
            self._bounds = bounds

    # -- QGraphicsItem -----------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def _rect_groups(self) -> list[tuple[QColor, list[QRectF]]]:
        if self._groups is None:
            by_color: dict[int, tuple[QColor, list[QRectF]]] = {}
            selected: list[tuple[QColor, QRectF]] = []
            excluded = self._excluded
            for node in self._nodes:
                if node in excluded:
                    continue
                color = node.block_color()
                rect = node.body_rect().translated(node.pos())
                if node.isSelected():
                    selected.append((color, rect))
                    continue
                entry = by_color.get(color.rgba())
                if entry is None:
                    entry = by_color[color.rgba()] = (color, [])
                entry[1].append(rect)
            self._groups = list(by_color.values())
            self._selected = selected
        return self._groups

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self.active:
            return
        theme = Theme.current()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(theme.no_pen)
        for color, rects in self._rect_groups():
            painter.setBrush(color)
            painter.drawRects(rects)
        if self._selected:
            painter.setPen(theme.selection_pen)
            for color, rect in self._selected:
                painter.setBrush(color)
                painter.drawRect(rect)
