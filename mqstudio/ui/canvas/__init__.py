"""The topology canvas: a scene mirroring the document, its view, the minimap and the gestures.

Public API (used by the main window and panels): `TopologyScene`, `TopologyView`, `MiniMap`, `MIME_TYPE`.
Imports PySide6 and mqstudio.core only.
"""

from __future__ import annotations

from mqstudio.ui.canvas.constants import GRID, MIME_TYPE
from mqstudio.ui.canvas.minimap import MiniMap
from mqstudio.ui.canvas.scene import TopologyScene
from mqstudio.ui.canvas.view import TopologyView

__all__ = ["GRID", "MIME_TYPE", "MiniMap", "TopologyScene", "TopologyView"]
