"""Small widgets that keep the Dead Letters dock compact: one-line labels, short item views, wrapping rows.

Owns: `ElidedLabel` (one line, elided with "…", the whole text in its tooltip; it never widens or
heightens its pane), `compact_view()` (an item view whose minimum is a few rows, not Qt's 70 px
scroll-area minimum) and `FlowLayout` (buttons that wrap instead of widening the dock).
Imports PySide6 only.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QAbstractScrollArea, QLabel, QLayout, QLayoutItem, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """A one-line label that elides on the right when it is narrower than its text; the tooltip holds
    the whole text whenever it is cut."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._update_tip()

    def elided(self) -> str:
        """The text as painted at the current width."""
        width = self.contentsRect().width()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, max(width, 0))

    def is_elided(self) -> bool:
        return self.elided() != self.text()

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") * 4, super().minimumSizeHint().height())

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._update_tip()

    def _update_tip(self) -> None:
        self.setToolTip(self.text() if self.is_elided() else "")

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment() | Qt.AlignmentFlag.AlignVCenter),
                         self.elided())


def compact_view(view: QAbstractScrollArea, rows: int = 2) -> QAbstractScrollArea:
    """Let `view` shrink to a header and `rows` rows: its pane then sets no tall minimum for the dock."""
    row = view.fontMetrics().height() + 4
    view.setMinimumHeight(row * (rows + 1) + 2 * view.frameWidth())
    return view


class FlowLayout(QLayout):
    """Widgets left to right, wrapping to another row when the width runs out (Qt's flow layout
    example): a row of buttons that never sets a wide minimum."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._height = 0  # of the rows as last laid out
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        height = self._arrange(rect, move=True)
        owner = self.parentWidget()
        if owner is None or not owner.isVisible() or owner.visibleRegion().isEmpty():
            height = 0  # a hidden pane (a dock behind another tab) is laid out at any size: no say
        if height != self._height:  # wrapped or unwrapped: the minimum height changes with it
            self._height = height
            self.invalidate()

    def sizeHint(self) -> QSize:
        visible = [i for i in self._items if not i.isEmpty()]
        width = sum(i.sizeHint().width() for i in visible) + self._gap() * max(len(visible) - 1, 0)
        height = max((i.sizeHint().height() for i in visible), default=0)
        return QSize(width, height)

    def minimumSize(self) -> QSize:
        """As wide as the widest widget; as tall as the rows at the current width (so a pane never
        clips a wrapped row; its parent's minimum grows by that row)."""
        size = QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        return size.expandedTo(QSize(0, self._height))

    def _gap(self) -> int:
        spacing = self.spacing()
        return spacing if spacing >= 0 else 6

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        x, y, row_height, gap = rect.x(), rect.y(), 0, self._gap()
        for item in self._items:
            if item.isEmpty():
                continue
            hint = item.sizeHint()
            if x > rect.x() and x + hint.width() > rect.right() + 1:
                x, y, row_height = rect.x(), y + row_height + gap, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + gap
            row_height = max(row_height, hint.height())
        return y + row_height - rect.y()
