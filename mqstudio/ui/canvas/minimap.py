"""An overview of the canvas: the whole design in miniature with the main view's visible area as a
rectangle; click or drag to pan the main view there.

Owns: `MiniMap`. The main window docks it; it shares the main view's scene and draws items in their
simplified level of detail. Imports PySide6 only (and the canvas's own modules).
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QMouseEvent, QPainter, QPen, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsView, QWidget

from mqstudio.ui.canvas.constants import Theme
from mqstudio.ui.canvas.view import TopologyView


class MiniMap(QGraphicsView):
    def __init__(self, view: TopologyView, parent: QWidget | None = None) -> None:
        super().__init__(view.scene(), parent)
        self.main_view = view
        self.setInteractive(False)
        self.setRenderHints(QPainter.RenderHint.Antialiasing)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # Not per scene change (every drag step would repaint the whole overview): the scene's
        # `overview_changed`, coalesced to one per OVERVIEW_MS, refreshes it.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.NoViewportUpdate)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view")
        self.setMinimumSize(160, 110)
        self._dragging = False
        self._snapshot: QPixmap | None = None  # static edges while nodes are dragged (see the scene)
        self._snapshot_key: tuple[object, ...] = ()
        self._grabbing = False
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(120)
        self._refit.timeout.connect(self.fit)
        view.viewport_changed.connect(self.viewport().update)
        # Bound methods of this QObject (not lambdas): Qt drops the connections when the minimap dies.
        view.topology_scene.overview_changed.connect(self._schedule_fit)
        view.topology_scene.overview_changed.connect(self.viewport().update)

    def _schedule_fit(self, _rects: object = None) -> None:
        self._refit.start()

    def sizeHint(self) -> QSize:
        return QSize(240, 160)

    def fit(self) -> None:
        if self._snapshot is not None:
            self._refit.start()  # not mid-drag: the snapshot is for this transform
            return
        rect = self.scene().itemsBoundingRect()
        if rect.isNull():
            rect = QRectF(-200, -150, 400, 300)
        rect = rect.united(self.visible_rect()).adjusted(-30, -30, 30, 30)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.viewport().update()

    def visible_rect(self) -> QRectF:
        """The main view's visible scene rectangle."""
        return self.main_view.mapToScene(self.main_view.viewport().rect()).boundingRect()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit()

    # -- drag snapshot (see TopologyScene.begin_drag) ----------------------------------------
    def _view_key(self) -> tuple[object, ...]:
        t = self.transform()
        h, v = self.horizontalScrollBar().value(), self.verticalScrollBar().value()
        return (t.m11(), t.m22(), t.dx(), t.dy(), h, v, self.viewport().size().toTuple())

    def take_snapshot(self) -> None:
        self._snapshot = None
        self._grabbing = True
        try:
            self._snapshot = self.viewport().grab()
        finally:
            self._grabbing = False
        self._snapshot_key = self._view_key()

    def drop_snapshot(self) -> None:
        if self._snapshot is not None:
            self._snapshot = None
            self.viewport().update()

    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        if self._snapshot is not None and self._snapshot_key == self._view_key():
            painter.save()
            painter.resetTransform()
            painter.drawPixmap(0, 0, self._snapshot)
            painter.restore()
            return
        rect = QRectF(rect)
        painter.fillRect(rect, Theme.current().background)

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        if self._grabbing:
            return  # the visible rectangle is drawn live over the snapshot
        theme = Theme.current()
        visible = self.visible_rect()
        color = QColor(theme.selection)
        painter.setPen(QPen(color, 0))
        color.setAlphaF(0.12)
        painter.setBrush(QBrush(color))
        painter.drawRect(visible)

    def _pan_to(self, event: QMouseEvent) -> None:
        self.main_view.centerOn(self.mapToScene(event.position().toPoint()))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._dragging = True
            self._pan_to(event)
            event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging:
            self._pan_to(event)
            event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._dragging = False
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        event.ignore()
