"""The canvas view: zoom around the cursor, keyboard zoom, middle-button and space+drag panning, fit to
view and a cheap dotted grid drawn only over the exposed region.

Owns: `TopologyView`. Gestures on items belong to the scene's interactions; the view only navigates.
Imports PySide6 only (and the canvas's own modules).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
    QShortcut,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QGraphicsView, QWidget

from mqstudio.ui.canvas.constants import GRID, Theme
from mqstudio.ui.canvas.scene import TopologyScene

MIN_ZOOM = 0.05
MAX_ZOOM = 4.0
ZOOM_STEP = 1.25
VIEWPORT_UPDATE_MODE = QGraphicsView.ViewportUpdateMode.SmartViewportUpdate


class TopologyView(QGraphicsView):
    """Signals: ``viewport_changed()`` after a scroll, zoom or resize (the minimap follows it)."""

    viewport_changed = Signal()
    zoom_changed = Signal(float)

    def __init__(self, scene: TopologyScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.topology_scene = scene
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        # Measured with benchmarks/bench_canvas.py: see VIEWPORT_UPDATE_MODE.
        self.setViewportUpdateMode(VIEWPORT_UPDATE_MODE)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSceneRect(QRectF(-50_000, -50_000, 100_000, 100_000))
        self._panning = False
        self._pan_last = QPointF()
        self._space_down = False
        self._grid_pen = QPen()
        self._snapshot: QPixmap | None = None  # the static scene while nodes are dragged
        self._snapshot_key: tuple[object, ...] = ()
        self.horizontalScrollBar().valueChanged.connect(self.viewport_changed)
        self.verticalScrollBar().valueChanged.connect(self.viewport_changed)
        self.viewport_changed.connect(self._check_snapshot)
        bindings: list[tuple[list[QKeySequence], Callable[[], None]]] = [
            ([QKeySequence("Ctrl++"), QKeySequence("Ctrl+=")], self.zoom_in),
            ([QKeySequence("Ctrl+-")], self.zoom_out),
            ([QKeySequence("Ctrl+0")], self.reset_zoom),
        ]
        for keys, slot in bindings:
            for key in keys:
                shortcut = QShortcut(key, self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(slot)

    # -- zoom --------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to `zoom` (clamped), keeping the scene point under `anchor` (viewport coords) fixed."""
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        if abs(zoom - self.zoom) < 1e-9:
            return
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        before = self.mapToScene(anchor.toPoint())
        old_anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.resetTransform()
        self.scale(zoom, zoom)
        after = self.mapToScene(anchor.toPoint())
        delta = after - before
        self.translate(delta.x(), delta.y())
        self.setTransformationAnchor(old_anchor)
        self._sync_detail()
        self.zoom_changed.emit(self.zoom)
        self.viewport_changed.emit()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def reset_zoom(self) -> None:
        self.set_zoom(1.0)

    def fit_all(self) -> None:
        """Show the whole design (at most at 100 %)."""
        rect = self.topology_scene.itemsBoundingRect()
        if rect.isNull():
            self.reset_zoom()
            self.centerOn(0, 0)
            return
        rect = rect.adjusted(-40, -40, 40, 40)
        self.resetTransform()
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom > 1.0:
            self.resetTransform()
        self.centerOn(rect.center())
        self._sync_detail()
        self.zoom_changed.emit(self.zoom)
        self.viewport_changed.emit()

    def resetTransform(self) -> None:
        super().resetTransform()
        self._sync_detail()

    def setTransform(self, matrix: QTransform, combine: bool = False) -> None:
        super().setTransform(matrix, combine)
        self._sync_detail()

    def _sync_detail(self) -> None:
        """Tell the scene the zoom, so it switches edges to one layer item when zoomed out."""
        self.topology_scene.set_detail(self.transform().m11())

    def paintEvent(self, event: QPaintEvent) -> None:
        if abs(self.transform().m11() - self.topology_scene.detail_zoom) > 1e-9:
            self._sync_detail()  # the transform changed through a C++ path (scale, fitInView …)
        if self._snapshot is not None and self._snapshot_key != self._view_key():
            self.topology_scene.drag_snapshot_stale()  # scrolled or zoomed mid-drag: draw it all
        super().paintEvent(event)

    # -- drag snapshot (see TopologyScene.begin_drag) ----------------------------------------
    def _view_key(self) -> tuple[object, ...]:
        t = self.transform()
        size = self.viewport().size()
        return (
            t.m11(), t.m12(), t.m21(), t.m22(), t.dx(), t.dy(),
            self.horizontalScrollBar().value(), self.verticalScrollBar().value(),
            size.width(), size.height(),
        )  # fmt: skip

    def take_snapshot(self) -> None:
        """Render the viewport as it is now into a pixmap drawn as the background until dropped."""
        self._snapshot = None
        self._snapshot = self.viewport().grab()
        self._snapshot_key = self._view_key()

    def drop_snapshot(self) -> None:
        if self._snapshot is not None:
            self._snapshot = None
            self.viewport().update()

    @property
    def has_snapshot(self) -> bool:
        return self._snapshot is not None

    def _check_snapshot(self) -> None:
        if self._snapshot is not None and self._snapshot_key != self._view_key():
            self.topology_scene.drag_snapshot_stale()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0:
            event.ignore()
            return
        self.set_zoom(self.zoom * (1.0015**delta), event.position())
        event.accept()

    # -- panning -----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        middle = event.button() == Qt.MouseButton.MiddleButton
        if middle or (self._space_down and event.button() == Qt.MouseButton.LeftButton):
            self._panning = True
            self._pan_last = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._panning:
            delta = event.position() - self._pan_last
            self._pan_last = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning:
            self._panning = False
            cursor = Qt.CursorShape.OpenHandCursor if self._space_down else Qt.CursorShape.ArrowCursor
            self.viewport().setCursor(cursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        editing = self.topology_scene.focusItem() is not None
        if event.key() == Qt.Key.Key_Space and not editing:
            if not event.isAutoRepeat():
                self._space_down = True
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat() and self._space_down:
            self._space_down = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.viewport_changed.emit()

    # -- background --------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        if self._snapshot is not None and self._snapshot_key == self._view_key():
            painter.save()
            painter.resetTransform()  # viewport pixels
            painter.drawPixmap(0, 0, self._snapshot)
            painter.restore()
            return
        rect = QRectF(rect)
        theme = Theme.current()
        painter.fillRect(rect, theme.background)
        step = float(GRID)
        while step * self.zoom < 14:
            step *= 2
        if step * self.zoom > 400:
            return
        left = int(rect.left() // step) * step
        top = int(rect.top() // step) * step
        cols = int(rect.width() // step) + 2
        rows = int(rect.height() // step) + 2
        if cols * rows > 40_000:
            return
        points = QPolygonF()
        for i in range(cols):
            x = left + i * step
            for j in range(rows):
                points.append(QPointF(x, top + j * step))
        if self._grid_pen.color() != theme.grid_dot:
            self._grid_pen = QPen(theme.grid_dot, 2.0)
            self._grid_pen.setCosmetic(True)  # 2 device pixels at any zoom
            self._grid_pen.setCapStyle(Qt.PenCapStyle.SquareCap)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)  # aliased dots are 10x cheaper
        painter.setPen(self._grid_pen)
        painter.drawPoints(points)
        painter.restore()
