"""Widgets of the Dead Letters panel: the message detail view and the purge and resubmit dialogs.

Owns: `MessageDetailView` (why it died, properties, headers as a tree with nested tables, the body
as pretty JSON / text / hex, each capped at `BODY_CAP` bytes until "Load all"), `PurgeDialog` (the
queue name must be typed; "Export first…" asks the panel to export), `ResubmitDialog` (edit body,
headers, properties, exchange and routing key of a copy). Widgets only: no backend, no jobs.
Imports PySide6, mqstudio.backends.base, mqstudio.ops and mqstudio.ui only.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mqstudio.backends.base import BrokerMessage, OutgoingMessage
from mqstudio.ops.deadletters import DeathInfo, parse_death
from mqstudio.ops.jsonl import decode_value, encode_value
from mqstudio.ui.panels.deadletter_widgets import compact_view

#: Bytes of a body shown before "Load all".
BODY_CAP = 64 * 1024
#: The hex view never shows more than this, even after "Load all" (16 bytes per line).
HEX_CAP = 1024 * 1024


def _mono(widget: QWidget) -> None:
    widget.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))


def hex_dump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)


def value_text(value: Any) -> str:
    """One header or property value for display (type visible where it matters)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        preview = raw[:32].hex(" ")
        return f"bytes[{len(raw)}] {preview}{' …' if len(raw) > 32 else ''}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value} (decimal)"
    if isinstance(value, str):
        return value if len(value) <= 500 else value[:500] + "…"
    return repr(value)


def fill_tree(parent: QTreeWidget | QTreeWidgetItem, table: Any) -> None:
    """Add `table` (a dict, list or scalar) below `parent`: nested tables and arrays expand."""
    items = table.items() if isinstance(table, dict) else enumerate(table)
    for key, value in items:
        name = f"[{key}]" if isinstance(key, int) else str(key)
        if isinstance(value, dict | list | tuple):
            kind = "table" if isinstance(value, dict) else "array"
            item = QTreeWidgetItem(parent, [name, f"{kind} ({len(value)})"])
            fill_tree(item, value)
        else:
            item = QTreeWidgetItem(parent, [name, value_text(value)])
            item.setToolTip(1, type(value).__name__)


def death_summary(message: BrokerMessage, death: DeathInfo) -> str:
    if not death.dead:
        return f"No dead-letter headers · {len(message.body)} bytes from {message.source}"
    parts = [f"<b>{death.reason or 'dead-lettered'}</b> in <b>{death.origin or '?'}</b>"]
    if death.exchange or death.routing_keys:
        parts.append(f"via {death.exchange or '(default)'} / {', '.join(death.routing_keys)}")
    if death.count > 1:
        parts.append(f"{death.count} times")
    if death.last_death is not None:
        parts.append(death.last_death.astimezone().strftime("last %Y-%m-%d %H:%M:%S"))
    if death.origin_partition is not None:
        parts.append(f"partition {death.origin_partition} offset {death.origin_offset}")
    text = " · ".join(parts)
    if death.exception:
        text += f"<br>{death.exception}: {death.exception_message}"
    return text


class MessageDetailView(QWidget):
    """The selected message. Bodies over `BODY_CAP` show their first 64 KiB until "Load all"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message: BrokerMessage | None = None
        self.full = False
        self.summary = QLabel("Select a message to see it here", self)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.body_tabs = QTabWidget(self)
        self.body_tabs.setDocumentMode(True)
        self.json_view, self.text_view, self.hex_view = (QPlainTextEdit(self) for _ in range(3))
        for view, title in ((self.json_view, "JSON"), (self.text_view, "Text"), (self.hex_view, "Hex")):
            view.setReadOnly(True)
            view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            _mono(view)
            compact_view(view, rows=1)
            self.body_tabs.addTab(view, title)
        self.cap_label = QLabel(self)
        self.load_all = QPushButton("Load all", self)
        self.load_all.setToolTip("Show the whole body (large bodies take a moment to lay out)")
        self.load_all.clicked.connect(self.show_all)
        # The size beside the JSON / Text / Hex tabs; a row under the body only for a capped one
        self.size_label = QLabel(self)
        self.size_label.setContentsMargins(6, 0, 6, 4)
        self.body_tabs.setCornerWidget(self.size_label, Qt.Corner.TopRightCorner)
        self.cap_row = QWidget(self)
        cap_row = QHBoxLayout(self.cap_row)
        cap_row.setContentsMargins(0, 2, 0, 0)
        cap_row.addWidget(self.cap_label, 1)
        cap_row.addWidget(self.load_all)
        body = QWidget(self)
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.setSpacing(0)
        body_layout.addWidget(self.body_tabs, 1)
        body_layout.addWidget(self.cap_row)
        self.headers_tree = self._tree()
        self.properties_tree = self._tree()
        self.error_view = QPlainTextEdit(self)
        self.error_view.setReadOnly(True)
        self.error_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        _mono(self.error_view)
        for compact in (self.headers_tree, self.properties_tree, self.error_view):
            compact_view(compact, rows=1)
        self.tabs.addTab(body, "Body")
        self.tabs.addTab(self.headers_tree, "Headers")
        self.tabs.addTab(self.properties_tree, "Properties")
        self._error_tab = self.tabs.addTab(self.error_view, "Exception")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)
        self.show_message(None)

    def _tree(self) -> QTreeWidget:
        tree = QTreeWidget(self)
        tree.setHeaderLabels(["Name", "Value"])
        tree.setColumnWidth(0, 200)
        tree.setUniformRowHeights(True)
        return tree

    def show_message(self, message: BrokerMessage | None) -> None:
        self.message, self.full = message, False
        for tree in (self.headers_tree, self.properties_tree):
            tree.clear()
        if message is None:
            self.summary.setText("Select a message to see it here")
            for view in (self.json_view, self.text_view, self.hex_view):
                view.clear()
            self.cap_label.clear()
            self.size_label.clear()
            self.cap_row.hide()
            self.load_all.hide()
            self.error_view.clear()
            self.tabs.setTabVisible(self._error_tab, False)
            self.tabs.setEnabled(False)
            return
        self.tabs.setEnabled(True)
        death = parse_death(message)
        self.summary.setText(death_summary(message, death))
        self.error_view.setPlainText(
            f"{death.exception}: {death.exception_message}\n\n{death.stacktrace}" if death.exception else ""
        )
        self.tabs.setTabVisible(self._error_tab, bool(death.exception))
        fill_tree(self.headers_tree, message.headers)
        self.headers_tree.expandToDepth(1)
        meta = dict(message.properties)
        meta.update({"(exchange)": message.exchange, "(routing key)": message.routing_key,
                     "(redelivered)": message.redelivered, "(body size)": len(message.body)})
        if message.partition is not None:
            meta.update({"(partition)": message.partition, "(offset)": message.offset})
        fill_tree(self.properties_tree, meta)
        self._show_body()

    def show_all(self) -> None:
        self.full = True
        self._show_body()

    def _show_body(self) -> None:
        message = self.message
        if message is None:
            return
        body = message.body
        capped = not self.full and len(body) > BODY_CAP
        shown = body[:BODY_CAP] if capped else body
        text: str | None
        try:
            text = shown.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = shown[: exc.start].decode("utf-8") if capped and exc.start >= len(shown) - 3 else None
        pretty: str | None = None
        if text is not None and not capped:
            try:
                pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pretty = None
        self.text_view.setPlainText(text if text is not None else shown.decode("utf-8", "replace"))
        hex_part = shown[:HEX_CAP]
        self.hex_view.setPlainText(hex_dump(hex_part))
        if pretty is not None:
            self.json_view.setPlainText(pretty)
        elif capped and text is not None:
            self.json_view.setPlainText("(the body is larger than 64 KiB: Load all to parse it as JSON)")
        else:
            self.json_view.setPlainText("(not JSON)")
        self.body_tabs.setCurrentWidget(
            self.json_view if pretty is not None else self.text_view if text is not None else self.hex_view
        )
        if capped:
            self.cap_label.setText(f"Showing the first 64 KiB of {len(body):,} bytes")
        elif len(body) > HEX_CAP:
            self.cap_label.setText(f"{len(body):,} bytes (hex shows the first 1 MiB)")
        else:
            self.cap_label.setText(f"{len(body):,} bytes")
        self.size_label.setText(f"{len(body):,} bytes")
        self.cap_row.setVisible(capped or len(body) > HEX_CAP)
        self.load_all.setVisible(capped)


class PurgeDialog(QDialog):
    """Purge only after the queue name is typed. ``export_requested`` asks the panel to export first."""

    export_requested = Signal()

    def __init__(self, queue: str, count: int | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.setWindowTitle(f"Purge {queue}")
        how_many = f"all {count:,} messages" if count is not None else "every message"
        text = QLabel(
            f"Purging removes {how_many} of <b>{queue}</b> for good.<br>"
            f"Type the queue name to confirm:", self
        )
        text.setWordWrap(True)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText(queue)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.purge_button = self.buttons.addButton("Purge", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.purge_button.setEnabled(False)
        self.export_button = self.buttons.addButton("Export first…", QDialogButtonBox.ButtonRole.ActionRole)
        self.name_edit.textChanged.connect(lambda t: self.purge_button.setEnabled(t == queue))
        self.purge_button.clicked.connect(self.accept)
        self.export_button.clicked.connect(self.export_requested)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(self.name_edit)
        layout.addWidget(self.buttons)

    @property
    def typed(self) -> str:
        return self.name_edit.text()


def _json_text(table: dict[str, Any]) -> str:
    return json.dumps(encode_value(table), indent=2, ensure_ascii=False)


class ResubmitDialog(QDialog):
    """Edit a copy of a dead letter. Headers and properties are JSON in the export format (tagged
    values such as ``{"$bytes": …}`` keep their types); a binary body is edited as base64."""

    def __init__(self, message: BrokerMessage, *, kafka: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit and Resubmit")
        self.resize(640, 560)
        self.original = message
        self.kafka = kafka
        death = parse_death(message)
        self.target_edit = QLineEdit(death.origin if kafka else death.exchange or message.exchange, self)
        key = death.routing_keys[0] if death.routing_keys else message.routing_key
        self.key_edit = QLineEdit(key, self)
        self.headers_edit = QPlainTextEdit(_json_text(message.headers), self)
        self.properties_edit = QPlainTextEdit(_json_text(message.properties), self)
        self.base64_box = QCheckBox("Body is base64", self)
        try:
            body_text = message.body.decode("utf-8")
        except UnicodeDecodeError:
            body_text = base64.b64encode(message.body).decode("ascii")
            self.base64_box.setChecked(True)
        self.body_edit = QPlainTextEdit(body_text, self)
        for edit in (self.headers_edit, self.properties_edit, self.body_edit):
            _mono(edit)
        self.error = QLabel(self)
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Topic" if kafka else "Exchange", self.target_edit)
        form.addRow("Key" if kafka else "Routing key", self.key_edit)
        tabs = QTabWidget(self)
        tabs.addTab(self.body_edit, "Body")
        tabs.addTab(self.headers_edit, "Headers")
        if not kafka:
            tabs.addTab(self.properties_edit, "Properties")
        note = QLabel("The original is removed only after the broker confirms the new message.", self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        buttons.addButton("Publish", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(tabs, 1)
        layout.addWidget(self.base64_box)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def outgoing(self) -> OutgoingMessage:
        """The edited message; raises ValueError with a user-facing reason when a field is invalid."""
        tables = []
        for name, edit in (("headers", self.headers_edit), ("properties", self.properties_edit)):
            try:
                value = decode_value(json.loads(edit.toPlainText() or "{}"))
            except ValueError as exc:
                raise ValueError(f"{name}: not valid JSON ({exc})") from None
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a JSON object")
            tables.append(value)
        text = self.body_edit.toPlainText()
        if self.base64_box.isChecked():
            try:
                body = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("body: not valid base64") from None
        else:
            body = text.encode("utf-8")
        return OutgoingMessage(self.target_edit.text(), body, self.key_edit.text(), tables[0],
                               {} if self.kafka else tables[1])

    def accept(self) -> None:
        try:
            self.outgoing()
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        super().accept()
