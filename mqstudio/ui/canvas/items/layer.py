"""What the zoomed-out drawing layers share: membership, exclusion, the active switch and bounds.

Owns: `MemberLayer`, the base of `EdgeLayer` and `NodeLayer`. A layer keeps an insertion-ordered set of
member items; while active, every member carries `ItemHasNoContents` (Qt skips it when painting but still
hit-tests it) and the subclass draws them all in a few batched calls from a cached grouping
(`self._groups`, None when stale). Subclasses say where a member is in scene coordinates
(`_member_rect`) and how to draw. Imports PySide6.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QGraphicsItem

_NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents


class MemberLayer(QGraphicsItem):
    def __init__(self, z: float) -> None:
        super().__init__()
        self.active = False
        self._members: dict[Any, None] = {}  # insertion-ordered set
        self._excluded: set[Any] = set()
        self._groups: Any = None
        self._bounds = QRectF()
        self.setZValue(z)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)

    def _member_rect(self, member: Any) -> QRectF:
        raise NotImplementedError

    # -- membership --------------------------------------------------------------------------
    def add_member(self, member: Any) -> None:
        member.layer = self
        self._members[member] = None
        member.setFlag(_NO_CONTENTS, self.active)
        self.member_moved(member)

    def add_members(self, members: Iterable[Any]) -> None:
        """Add many members at once (opening a design): the bounds grow once, not once per member."""
        active = self.active
        bounds = QRectF(self._bounds)
        for member in members:
            member.layer = self
            self._members[member] = None
            member.setFlag(_NO_CONTENTS, active)
            rect = self._member_rect(member)
            bounds = bounds.united(rect) if not bounds.isNull() else QRectF(rect)
        self._groups = None
        if bounds != self._bounds:
            self.prepareGeometryChange()
            self._bounds = bounds
        if active:
            self.update()

    def remove_member(self, member: Any) -> None:
        if self._members.pop(member, 0) is None:
            if self.active:
                self.update(self._member_rect(member))
            self._groups = None
        self._excluded.discard(member)
        member.layer = None

    def clear(self) -> None:
        for member in self._members:
            member.layer = None
        self._members.clear()
        self._excluded.clear()
        self._groups = None
        self.prepareGeometryChange()
        self._bounds = QRectF()

    def members(self) -> list[Any]:
        return list(self._members)

    def set_excluded(self, members: Iterable[Any]) -> None:
        """Leave these members out of the layer's drawing (empty: draw them all again)."""
        excluded = set(members)
        if excluded != self._excluded:
            self._excluded = excluded
            self._groups = None
            if self.active:
                self.update()

    # -- mode --------------------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        """Draw all members here (True) or let each member draw itself (False)."""
        if active == self.active:
            return
        if not active:
            self.update()  # erase the batched drawing before the layer stops painting
        self.active = active
        self._groups = None
        no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        self.setFlag(no_contents, not active)
        for member in self._members:
            member.setFlag(no_contents, active)
        self.update()

    # -- change notifications from members ---------------------------------------------------
    def member_moved(self, member: Any, old: QRectF | None = None) -> None:
        self._groups = None
        rect = self._member_rect(member)
        if not self._bounds.contains(rect):
            # Grow only: shrinking (a full repaint of the layer) waits for `refresh_bounds`.
            self.prepareGeometryChange()
            self._bounds = self._bounds.united(rect) if not self._bounds.isNull() else QRectF(rect)
        if self.active:
            if old is not None:
                self.update(old)
            self.update(rect)

    def member_restyled(self, member: Any) -> None:
        self._groups = None
        if self.active:
            self.update(self._member_rect(member))

    def refresh_bounds(self) -> None:
        """Shrink the bounds to the members' union (after a layout or removals, not per drag step)."""
        bounds = QRectF()
        for member in self._members:
            bounds = bounds.united(self._member_rect(member))
        if bounds != self._bounds:
            self.prepareGeometryChange()
            self._bounds = bounds

    # -- QGraphicsItem -----------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds
