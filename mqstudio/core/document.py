"""An open design: the topology, where its nodes sit on the canvas, free-form metadata, file and dirty state.

Owns: `TopologyDocument`. Layout positions are plain ``(x, y)`` tuples of floats keyed by node id (no
Qt types: the canvas converts). Must not import Qt or anything outside the stdlib and `mqstudio.core`;
changes that should be undoable go through `commands.py`, which calls the methods here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mqstudio.core.events import Signal
from mqstudio.core.model import Binding, Node, Topology

Position = tuple[float, float]


class TopologyDocument:
    """Topology + layout + metadata + path + dirty flag.

    Events: ``node_moved(node_id, pos)`` when a position is set (``pos`` is ``None`` when it is dropped),
    ``dirty_changed(bool)`` when the dirty flag flips. Any change to the topology or layout marks the
    document dirty; an `UndoStack` attached to it (see `commands.py`) sets the flag from its clean state
    instead, so undoing back to the saved state makes the document clean again.
    """

    def __init__(
        self,
        topology: Topology | None = None,
        layout: dict[str, Position] | None = None,
        metadata: dict[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        self.topology = topology if topology is not None else Topology()
        self.layout: dict[str, Position] = {}
        for node_id, (x, y) in (layout or {}).items():
            self.layout[node_id] = (float(x), float(y))
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.path = path
        self._dirty = False
        self.node_moved = Signal("node_moved")
        self.dirty_changed = Signal("dirty_changed")
        for signal in (
            self.topology.node_added,
            self.topology.node_changed,
            self.topology.binding_added,
            self.topology.binding_removed,
            self.topology.binding_changed,
        ):
            signal.connect(self._on_model_changed)
        self.topology.node_removed.connect(self._on_node_removed)

    # -- dirty state ---------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._dirty

    def set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)

    def mark_clean(self, path: Path | None = None) -> None:
        """After a save (optionally to a new `path`): nothing unsaved."""
        if path is not None:
            self.path = path
        self.set_dirty(False)

    @property
    def title(self) -> str:
        """File name (or "Untitled") with a ``*`` when there are unsaved changes."""
        name = self.path.name if self.path is not None else "Untitled"
        return f"{name}*" if self._dirty else name

    # -- layout --------------------------------------------------------------------------------
    def position(self, node_id: str) -> Position | None:
        return self.layout.get(node_id)

    def set_position(self, node_id: str, pos: Position | None, *, notify: bool = True) -> Position | None:
        """Place a node (``None`` drops its entry); returns the old position.

        ``notify=False`` is for restoring a removed node's position before the node itself is re-added,
        so that nobody hears about a node that is not in the topology yet.
        """
        old = self.layout.get(node_id)
        if pos is None:
            self.layout.pop(node_id, None)
        else:
            self.layout[node_id] = (float(pos[0]), float(pos[1]))
        if old != self.layout.get(node_id):
            self.set_dirty(True)
            if notify:
                self.node_moved.emit(node_id, self.layout.get(node_id))
        return old

    # -- model events --------------------------------------------------------------------------
    def _on_model_changed(self, obj: Node | Binding, *_: Any) -> None:
        self.set_dirty(True)

    def _on_node_removed(self, node: Node) -> None:
        # A node that is gone has no place on the canvas; commands saved it beforehand to restore it.
        self.layout.pop(node.id, None)
        self.set_dirty(True)
