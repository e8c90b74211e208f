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

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from mqstudio.ui.canvas.constants import Z_NODE, Theme
from mqstudio.ui.canvas.items.layer import MemberLayer

if TYPE_CHECKING:
    from mqstudio.ui.canvas.items.node import NodeItem


class NodeLayer(MemberLayer):
    def __init__(self) -> None:
        super().__init__(Z_NODE - 0.5)
        self._groups: list[tuple[QColor, list[QRectF]]] | None = None
        self._selected: list[tuple[QColor, QRectF]] = []

    def _member_rect(self, node: NodeItem) -> QRectF:
        return node.sceneBoundingRect()

    # The names the scene and the items use.
    def add_node(self, node: NodeItem) -> None:
        self.add_member(node)

    def remove_node(self, node: NodeItem) -> None:
        self.remove_member(node)

    def nodes(self) -> list[NodeItem]:
        return self.members()

    def node_moved(self, node: NodeItem, old: QRectF | None = None) -> None:
        self.member_moved(node, old)

    def node_restyled(self, node: NodeItem) -> None:
        self.member_restyled(node)

    def _rect_groups(self) -> list[tuple[QColor, list[QRectF]]]:
        if self._groups is None:
            by_color: dict[int, tuple[QColor, list[QRectF]]] = {}
            selected: list[tuple[QColor, QRectF]] = []
            excluded = self._excluded
            for node in self._members:
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
