"""The node palette: what can be placed on the canvas, grouped, filterable, dragged or double-clicked.

Owns: `PaletteEntry`, `ENTRIES`, `PalettePanel`. A drag carries the canvas's `MIME_TYPE` with a JSON
payload ``{"kind": …, "type": …}`` (``type`` only for exchanges and queues); the canvas's drop
interaction creates the node. Double-click (or Enter) emits ``create_requested(dict)`` with the same
payload, which the window routes to the scene. `set_enabled_kinds` greys out what the connected broker
cannot hold. Imports PySide6 and mqstudio.ui only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QDrag, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mqstudio.ui.canvas.constants import MIME_TYPE
from mqstudio.ui.resources import icon

_PAYLOAD_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True, slots=True)
class PaletteEntry:
    group: str
    label: str
    icon: str
    kind: str
    type: str | None
    tip: str

    @property
    def payload(self) -> dict[str, str]:
        return {"kind": self.kind} if self.type is None else {"kind": self.kind, "type": self.type}


ENTRIES: tuple[PaletteEntry, ...] = (
    PaletteEntry(
        "RabbitMQ",
        "Direct exchange",
        "exchange-direct",
        "exchange",
        "direct",
        "Routes a message to the queues whose binding key equals its routing key",
    ),
    PaletteEntry(
        "RabbitMQ",
        "Fanout exchange",
        "exchange-fanout",
        "exchange",
        "fanout",
        "Copies every message to all bound queues, ignoring the routing key",
    ),
    PaletteEntry(
        "RabbitMQ",
        "Topic exchange",
        "exchange-topic",
        "exchange",
        "topic",
        "Routes by dotted routing-key patterns: * is one word, # is zero or more",
    ),
    PaletteEntry(
        "RabbitMQ",
        "Headers exchange",
        "exchange-headers",
        "exchange",
        "headers",
        "Routes by message headers (x-match all/any) instead of the routing key",
    ),
    PaletteEntry(
        "RabbitMQ",
        "Delayed exchange",
        "exchange-delayed",
        "exchange",
        "x-delayed-message",
        "Holds each message for its x-delay header in milliseconds, then routes it "
        "(rabbitmq_delayed_message_exchange plugin)",
    ),
    PaletteEntry(
        "RabbitMQ",
        "Classic queue",
        "queue-classic",
        "queue",
        "classic",
        "A single-node queue: TTL, max-length, priorities, exclusive/auto-delete",
    ),
    PaletteEntry(
        "RabbitMQ",
        "Quorum queue",
        "queue-quorum",
        "queue",
        "quorum",
        "A replicated Raft queue with a delivery limit: the safe default for durable work",
    ),
    PaletteEntry(
        "Clients",
        "Producer",
        "producer",
        "producer",
        None,
        "A simulated publisher that sends messages to an exchange or a Kafka topic",
    ),
    PaletteEntry(
        "Clients",
        "Consumer",
        "consumer",
        "consumer",
        None,
        "A simulated consumer that takes messages from a queue or a consumer group",
    ),
    PaletteEntry(
        "Kafka",
        "Topic",
        "kafka-topic",
        "topic",
        None,
        "A Kafka topic: partitions, replication factor and configs",
    ),
    PaletteEntry(
        "Kafka",
        "Consumer group",
        "kafka-group",
        "consumer_group",
        None,
        "A Kafka consumer group subscribed to one or more topics",
    ),
)
GROUPS = ("RabbitMQ", "Clients", "Kafka")


def encode_payload(payload: dict[str, str]) -> bytes:
    return json.dumps(payload, sort_keys=True).encode("utf-8")


class _PaletteTree(QTreeWidget):
    """A tree whose leaves start a drag with our payload (not Qt's internal item MIME type).

    Signal ``entry_activated(item)`` on double-click or Enter/Return (not on a single click, even where
    the platform activates items on single click: that would create a node at the start of every drag).
    """

    entry_activated = Signal(QTreeWidgetItem)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("PaletteTree")
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(8)
        self.setIconSize(QSize(24, 24))
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAnimated(True)

    def mime_for(self, item: QTreeWidgetItem) -> QMimeData | None:
        payload = item.data(0, _PAYLOAD_ROLE)
        if not isinstance(payload, dict):
            return None
        mime = QMimeData()
        mime.setData(MIME_TYPE, encode_payload(payload))
        mime.setText(item.text(0))
        return mime

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if item is not None and event.button() == Qt.MouseButton.LeftButton:
            self.entry_activated.emit(item)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and item is not None:
            self.entry_activated.emit(item)
            event.accept()
            return
        super().keyPressEvent(event)

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        item = self.currentItem()
        enabled = item is not None and bool(item.flags() & Qt.ItemFlag.ItemIsEnabled)
        mime = self.mime_for(item) if item is not None and enabled else None
        if item is None or mime is None:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        pixmap = item.icon(0).pixmap(QSize(32, 32), self.devicePixelRatioF())
        drag.setPixmap(pixmap)
        drag.setHotSpot(pixmap.rect().center() / max(1.0, pixmap.devicePixelRatio()))
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)


class PalettePanel(QWidget):
    """Signal ``create_requested(dict)``: the user asked for a node of this kind at the view's centre."""

    create_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PalettePanel")
        self._filter = QLineEdit(self)
        self._filter.setObjectName("FilterEdit")
        self._filter.setPlaceholderText("Filter…")
        self._filter.setClearButtonEnabled(True)
        self._filter.textChanged.connect(self._apply_filter)
        self.tree = _PaletteTree(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self._filter)
        layout.addWidget(self.tree, 1)
        self._groups: dict[str, QTreeWidgetItem] = {}
        self._populate()
        self.tree.entry_activated.connect(self._on_activated)

    def _populate(self) -> None:
        for group in GROUPS:
            header = QTreeWidgetItem(self.tree, [group.upper()])
            header.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = header.font(0)
            font.setBold(True)
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            header.setFont(0, font)
            header.setForeground(0, self.palette().placeholderText())
            header.setSizeHint(0, QSize(0, 24))
            self._groups[group] = header
        for entry in ENTRIES:
            item = QTreeWidgetItem(self._groups[entry.group], [entry.label])
            item.setIcon(0, icon(entry.icon))
            item.setSizeHint(0, QSize(0, 27))
            item.setToolTip(
                0,
                f"<b>{entry.label}</b><br>{entry.tip}<br><i>Drag onto the canvas or double-click to add</i>",
            )
            item.setStatusTip(0, entry.tip)
            item.setData(0, _PAYLOAD_ROLE, entry.payload)
            item.setData(0, Qt.ItemDataRole.UserRole, entry.icon)
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
            )
        self.tree.expandAll()

    # -- public --------------------------------------------------------------------------------
    def items(self) -> list[QTreeWidgetItem]:
        """Every entry's item, in palette order."""
        found: list[QTreeWidgetItem] = []
        for header in self._groups.values():
            found.extend(child for row in range(header.childCount()) if (child := header.child(row)))
        return found

    def item_for(self, kind: str, type_: str | None = None) -> QTreeWidgetItem:
        for item in self.items():
            payload: Any = item.data(0, _PAYLOAD_ROLE)
            if payload.get("kind") == kind and payload.get("type") == type_:
                return item
        raise KeyError((kind, type_))

    def mime_data(self, item: QTreeWidgetItem) -> QMimeData | None:
        return self.tree.mime_for(item)

    def set_enabled_kinds(self, kinds: Iterable[str] | None, reason: str = "") -> None:
        """Grey out the entries whose node kind is not in `kinds` (what the connected broker can hold),
        with `reason` in their tooltip; None enables every entry again."""
        allowed = None if kinds is None else set(kinds)
        for item in self.items():
            payload: Any = item.data(0, _PAYLOAD_ROLE)
            entry = self._entry(payload)
            on = allowed is None or payload.get("kind") in allowed
            flags = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
            item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled if on else Qt.ItemFlag.NoItemFlags)
            tip = f"<b>{entry.label}</b><br>{entry.tip}<br>"
            tip += "<i>Drag onto the canvas or double-click to add</i>" if on else f"<i>{reason}</i>"
            item.setToolTip(0, tip)

    @staticmethod
    def _entry(payload: dict[str, str]) -> PaletteEntry:
        return next(e for e in ENTRIES if e.payload == payload)

    def refresh_icons(self) -> None:
        """Redraw icons and headers after a theme change."""
        for header in self._groups.values():
            header.setForeground(0, self.palette().placeholderText())
        for item in self.items():
            item.setIcon(0, icon(str(item.data(0, Qt.ItemDataRole.UserRole))))

    # -- private -------------------------------------------------------------------------------
    def _on_activated(self, item: QTreeWidgetItem) -> None:
        if not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            return
        payload = item.data(0, _PAYLOAD_ROLE)
        if isinstance(payload, dict):
            self.create_requested.emit(dict(payload))

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for header in self._groups.values():
            visible = 0
            for item in (header.child(row) for row in range(header.childCount())):
                if item is None:
                    continue
                hidden = bool(needle) and needle not in f"{item.text(0)} {header.text(0)}".lower()
                item.setHidden(hidden)
                visible += not hidden
            header.setHidden(visible == 0)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Down and self._filter.hasFocus():
            self.tree.setFocus()
            first = next((i for i in self.items() if not i.isHidden()), None)
            if first is not None:
                self.tree.setCurrentItem(first)
            return
        super().keyPressEvent(event)
