"""Whole-design export of the canvas: render the scene to an image file (PNG …) or to SVG.

Owns: `render_to_image` and `render_to_svg` (bound as `TopologyScene` methods of the same names),
`export_rect` (what an export covers) and `export_state` (no selection, no feedback, every edge drawn
as a curve while rendering). It sets the scene's private ``_syncing`` flag for the duration so that
clearing the selection does not reach the editor.

Must not import `mqstudio.ui.canvas.scene` at run time (it imports this module; the type is for
annotations only), and nothing outside PySide6, mqstudio.core and mqstudio.ui.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QImage, QPainter

from mqstudio.ui.canvas.constants import Theme

if TYPE_CHECKING:
    from mqstudio.ui.canvas.scene import TopologyScene


def render_to_image(scene: TopologyScene, path: str | Path, scale: float = 2.0) -> bool:
    """Render the whole design to a PNG (or any format QImage writes), `scale` times scene units."""
    rect = export_rect(scene)
    size = QSize(max(1, int(rect.width() * scale)), max(1, int(rect.height() * scale)))
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Theme.current().background)
    painter = QPainter(image)
    painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
    with export_state(scene):
        scene.render(painter, QRectF(0, 0, size.width(), size.height()), rect)
    painter.end()
    return image.save(str(path))


def render_to_svg(scene: TopologyScene, path: str | Path) -> bool:
    """Render the whole design as SVG (QtSvg ships with PySide6-Essentials)."""
    from PySide6.QtSvg import QSvgGenerator

    rect = export_rect(scene)
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(int(rect.width()), int(rect.height())))
    generator.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
    generator.setTitle(scene.editor.document.title)
    painter = QPainter(generator)
    painter.fillRect(QRectF(0, 0, rect.width(), rect.height()), Theme.current().background)
    with export_state(scene):
        scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    return painter.end()


def export_rect(scene: TopologyScene) -> QRectF:
    """The scene rectangle an export covers: every node and edge, with a margin."""
    rect = QRectF()
    for item in [*scene.node_items(), *scene.binding_edges(), *scene.derived_edges()]:
        rect = rect.united(item.sceneBoundingRect())
    if rect.isNull():
        rect = QRectF(0, 0, 200, 120)
    return rect.adjusted(-40, -40, 40, 40)


@contextmanager
def export_state(scene: TopologyScene) -> Iterator[None]:
    """Exports show the design, not the session: no selection, no transient feedback."""
    selected = scene.selectedItems()
    was, scene._syncing = scene._syncing, True  # the editor's selection does not change
    for item in selected:
        item.setSelected(False)
    feedback = scene.feedback_item
    if feedback is not None:
        feedback.hide()
    layer_was = scene.edge_layer.active
    scene.edge_layer.set_active(False)  # exports draw every edge as a curve at their own scale
    scene.node_layer.set_active(False)
    try:
        yield
    finally:
        scene.edge_layer.set_active(layer_was)
        scene.node_layer.set_active(layer_was)
        for item in selected:
            item.setSelected(True)
        scene._syncing = was
        if feedback is not None:
            feedback.show()
