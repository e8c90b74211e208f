"""One item that draws every edge of the scene as a straight line when zoomed out.

Owns: `EdgeLayer`. At fit-all a thousand-node design shows thousands of edges a few pixels long; painting
them as items costs one Python `paint` call each (and antialiased curves). While the layer is active
(the view's zoom is below `LOD_SIMPLE`), every `EdgeItem` carries `ItemHasNoContents` (Qt skips it when
painting but still hit-tests its shape, so selection, hover and tooltips keep working) and the layer
draws all edges with one aliased `drawLines` per colour. Line lists are cached and rebuilt only after an
edge moved or changed style. Edges listed in `set_excluded` are left out (a drag draws them itself). Draws
the model only. Imports PySide6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from mqstudio.ui.canvas.constants import Z_DERIVED_EDGE
from mqstudio.ui.canvas.items.layer import MemberLayer

if TYPE_CHECKING:
    from mqstudio.ui.canvas.items.edge import EdgeItem


class EdgeLayer(MemberLayer):
    def __init__(self) -> None:
        super().__init__(Z_DERIVED_EDGE - 0.5)
        self._groups: list[tuple[QPen, list[QLineF]]] | None = None

    def _member_rect(self, edge: EdgeItem) -> QRectF:
        return edge.boundingRect()

    # The names the scene and the items use.
    def add_edge(self, edge: EdgeItem) -> None:
        self.add_member(edge)

    def remove_edge(self, edge: EdgeItem) -> None:
        self.remove_member(edge)

    def edges(self) -> list[EdgeItem]:
        return self.members()

    def edge_moved(self, edge: EdgeItem, old: QRectF | None = None) -> None:
        self.member_moved(edge, old)

    def edge_restyled(self, edge: EdgeItem) -> None:
        self.member_restyled(edge)

    def _line_groups(self) -> list[tuple[QPen, list[QLineF]]]:
        if self._groups is None:
            by_color: dict[int, tuple[QColor, list[QLineF]]] = {}
            excluded = self._excluded
            for edge in self._members:
                if edge in excluded:
                    continue
                color = edge.line_color()
                entry = by_color.get(color.rgba())
                if entry is None:
                    entry = by_color[color.rgba()] = (color, [])
                x1, y1, x2, y2 = edge.ends()
                entry[1].append(QLineF(x1, y1, x2, y2))
            groups = []
            for color, lines in by_color.values():
                pen = QPen(color, 1.0)
                pen.setCosmetic(True)  # one device pixel at any zoom: the fast aliased line path
                groups.append((pen, lines))
            self._groups = groups
        return self._groups

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self.active:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, lines in self._line_groups():
            painter.setPen(pen)
            painter.drawLines(lines)
