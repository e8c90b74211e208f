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

from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from mqstudio.ui.canvas.constants import Z_DERIVED_EDGE

if TYPE_CHECKING:
    from mqstudio.ui.canvas.items.edge import EdgeItem


class EdgeLayer(QGraphicsItem):
    def __init__(self) -> None:
        super().__init__()
        self.active = False
        self._edges: dict[EdgeItem, None] = {}  # insertion-ordered set
        self._excluded: set[EdgeItem] = set()
        self._groups: list[tuple[QPen, list[QLineF]]] | None = None
        self._bounds = QRectF()
        self._bounds_stale = False
        self.setZValue(Z_DERIVED_EDGE - 0.5)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)

    # -- membership --------------------------------------------------------------------------
    def add_edge(self, edge: EdgeItem) -> None:
        edge.layer = self
        self._edges[edge] = None
        edge.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, self.active)
        self.edge_moved(edge)

    def remove_edge(self, edge: EdgeItem) -> None:
        if self._edges.pop(edge, 0) is None:
            if self.active:
                self.update(edge.boundingRect())
            self._groups = None
        self._excluded.discard(edge)
        edge.layer = None

    def clear(self) -> None:
        for edge in self._edges:
            edge.layer = None
        self._edges.clear()
        self._excluded.clear()
        self._groups = None
        self.prepareGeometryChange()
        self._bounds = QRectF()

    def edges(self) -> list[EdgeItem]:
        return list(self._edges)

    def set_excluded(self, edges: set[EdgeItem]) -> None:
        """Leave these edges out of the layer's drawing (empty: draw them all again)."""
        if edges != self._excluded:
            self._excluded = set(edges)
            self._groups = None
            if self.active:
                self.update()

    # -- mode --------------------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        """Draw all edges here (True) or let each edge draw itself (False)."""
        if active == self.active:
            return
        if not active:
            self.update()  # erase the lines before the layer stops painting
        self.active = active
        self._groups = None
        no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        self.setFlag(no_contents, not active)
        for edge in self._edges:
            edge.setFlag(no_contents, active)
        self.update()

    # -- change notifications from edges -----------------------------------------------------
    def edge_moved(self, edge: EdgeItem) -> None:
        self._groups = None
        rect = edge.boundingRect()
        if not self._bounds.contains(rect):
            # Grow only: shrinking (a full repaint of the layer) waits for `refresh_bounds`.
            self.prepareGeometryChange()
            self._bounds = self._bounds.united(rect) if not self._bounds.isNull() else QRectF(rect)
        if self.active:
            self.update(rect)

    def edge_restyled(self, edge: EdgeItem) -> None:
        self._groups = None
        if self.active:
            self.update(edge.boundingRect())

    def refresh_bounds(self) -> None:
        """Shrink the bounds to the edges' union (after a layout or removals, not per drag step)."""
        bounds = QRectF()
        for edge in self._edges:
            bounds = bounds.united(edge.boundingRect())
        if bounds != self._bounds:
            self.prepareGeometryChange()
            self._bounds = bounds

    # -- QGraphicsItem -----------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def _line_groups(self) -> list[tuple[QPen, list[QLineF]]]:
        if self._groups is None:
            by_color: dict[int, tuple[QColor, list[QLineF]]] = {}
            excluded = self._excluded
            for edge in self._edges:
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
