"""The Messages panel: a live tail of an exchange, queue or topic of the connected broker.

Owns: `MessageTailPanel` (target picker, start/stop, pause, clear, filters, details pane, save to
JSONL). The tail runs ``backend.tail(target, sink, cancel)`` on its own `JobRunner` worker with its
own backend (made by the `backend_factory` the window gives: a backend is thread-confined and a tail
blocks until cancelled). The tail thread only pushes into a `TailBuffer`; a 100 ms `QTimer` drains it
into `MessageTailTableModel` in one batch, so the GUI thread never waits on the network and there is
no per-message signal. Rows are bounded (10,000 by default; see `message_models`). Saving writes JSON
Lines with `mqstudio.ops.jsonl` (bodies as UTF-8 text or base64, header types kept).
Imports PySide6, mqstudio.ops, mqstudio.runtime, mqstudio.ui and backends.base only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mqstudio.backends.base import Backend, BrokerMessage
from mqstudio.ops.jsonl import write_messages
from mqstudio.runtime.jobs import Job, JobRunner
from mqstudio.ui.panels.message_models import (
    DEFAULT_CAP,
    DETAIL_LIMIT,
    FilterError,
    MessageFilter,
    MessageTailTableModel,
    TailBuffer,
    decode_body,
    human_size,
)
from mqstudio.ui.qtbridge import JobBridge, submit

DRAIN_MS = 100
BackendFactory = Callable[[], Backend | None]


def _tail_job(factory: BackendFactory, target: str, buffer: TailBuffer) -> Callable[[Job[None]], None]:
    def run(job: Job[None]) -> None:
        backend = factory()
        if backend is None:
            raise RuntimeError("not connected to a broker")
        backend.connect()
        try:
            backend.tail(target, buffer.push, job)
        finally:
            with contextlib.suppress(Exception):
                backend.close()

    return run


class MessageTailPanel(QWidget):
    """Signals: ``message(str)`` for the status bar, ``tailing_changed(bool)``."""

    message = Signal(str)
    tailing_changed = Signal(bool)

    def __init__(
        self,
        backend_factory: BackendFactory | None = None,
        parent: QWidget | None = None,
        *,
        cap: int = DEFAULT_CAP,
        runner: JobRunner | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("MessageTailPanel")
        self.backend_factory = backend_factory
        self.runner = runner if runner is not None else JobRunner(1, name="mqstudio-tail")
        self._own_runner = runner is None
        self.buffer = TailBuffer(cap)
        self.model = MessageTailTableModel(cap, parent=self)
        self._bridge: JobBridge | None = None
        self._target = ""
        self._paused = False
        self._full_shown = False
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)
        self._update_controls()

    # -- construction ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.target_box = QComboBox(self)
        self.target_box.setEditable(True)
        self.target_box.setMinimumWidth(220)
        self.target_box.setToolTip("An exchange, queue or Kafka topic to watch")
        line = self.target_box.lineEdit()
        if line is not None:
            line.setPlaceholderText("exchange, queue or topic")
        self.start_button = QPushButton("Start", self)
        self.start_button.setToolTip("Watch the messages flowing through the target, without taking them")
        self.start_button.clicked.connect(self.toggle)
        self.pause_button = QToolButton(self)
        self.pause_button.setText("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Freeze the list; arriving messages wait (the newest 10,000)")
        self.pause_button.toggled.connect(self.set_paused)
        self.clear_button = QToolButton(self)
        self.clear_button.setText("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.save_button = QToolButton(self)
        self.save_button.setText("Save…")
        self.save_button.setToolTip("Save the listed messages as JSON Lines")
        self.save_button.clicked.connect(self.save_dialog)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("TailCount")

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Watch", self))
        top.addWidget(self.target_box)
        for widget in (self.start_button, self.pause_button, self.clear_button, self.save_button):
            top.addWidget(widget)
        top.addWidget(self.count_label, 1, Qt.AlignmentFlag.AlignRight)

        self.key_filter = self._filter_edit("routing key: order.* or #.eu", "AMQP pattern: * one word, # any")
        self.header_filter = self._filter_edit("header: name=value", "Only messages with this header value")
        self.body_filter = self._filter_edit("body: text or $.order.id=42", "Text in the body or a JSON path")
        self.filter_error = QLabel(self)
        self.filter_error.setObjectName("FilterError")
        self.filter_error.setStyleSheet("color: #d9534f;")
        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(QLabel("Filter", self))
        for edit in (self.key_filter, self.header_filter, self.body_filter):
            filters.addWidget(edit, 1)
        filters.addWidget(self.filter_error)

        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setMinimumHeight(48)  # the bottom dock row may be short: two rows still show
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        for column, width in enumerate((92, 100, 120, 190, 120)):
            self.table.setColumnWidth(column, width)
        selection = self.table.selectionModel()
        selection.selectionChanged.connect(self._on_selection)

        self.details_title = QLabel("Select a message to see it in full", self)
        self.details_title.setObjectName("TailDetailsTitle")
        self.show_all_button = QToolButton(self)
        self.show_all_button.setText("Show all")
        self.show_all_button.setToolTip(f"The body is longer than {human_size(DETAIL_LIMIT)}: show it whole")
        self.show_all_button.clicked.connect(self.show_all)
        self.show_all_button.hide()
        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.details.setFont(mono)
        self.details.setMinimumHeight(36)
        details = QWidget(self)
        details_layout = QVBoxLayout(details)
        details_layout.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.details_title, 1)
        head.addWidget(self.show_all_button)
        details_layout.addLayout(head)
        details_layout.addWidget(self.details)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.splitter, 1)

    def _filter_edit(self, placeholder: str, tip: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setPlaceholderText(placeholder)
        edit.setToolTip(tip)
        edit.setClearButtonEnabled(True)
        edit.editingFinished.connect(self.apply_filters)
        edit.textChanged.connect(lambda text: self.apply_filters() if not text else None)
        return edit

    # -- public ------------------------------------------------------------------------------------
    @property
    def tailing(self) -> bool:
        return self._bridge is not None

    @property
    def target(self) -> str:
        return self._target

    def set_targets(self, names: list[str]) -> None:
        """Offer these names in the picker (the design's exchanges, queues and topics)."""
        current = self.target_box.currentText()
        self.target_box.blockSignals(True)
        self.target_box.clear()
        self.target_box.addItems(names)
        self.target_box.setCurrentText(current or (names[0] if names else ""))
        self.target_box.blockSignals(False)

    def set_backend_factory(self, factory: BackendFactory | None) -> None:
        self.backend_factory = factory
        self._update_controls()

    def toggle(self) -> None:
        if self.tailing:
            self.stop()
        else:
            self.start()

    def start(self, target: str | None = None) -> bool:
        """Start tailing `target` (else the picker's text) on a worker; False when it cannot start."""
        name = (target if target is not None else self.target_box.currentText()).strip()
        if self.tailing:
            self.stop()
        if not name:
            self.message.emit("Choose an exchange, queue or topic to watch")
            return False
        if self.backend_factory is None:
            self.message.emit("Connect to a broker first (Broker menu)")
            return False
        self.target_box.setCurrentText(name)
        self._target = name
        bridge = submit(self.runner, _tail_job(self.backend_factory, name, self.buffer),
                        title=f"Tail {name}", parent=self)
        bridge.failed.connect(lambda text: self.message.emit(f"The tail of {name} stopped: {text}"))
        bridge.settled.connect(lambda: self._on_settled(bridge))
        self._bridge = bridge
        self._timer.start()
        self._update_controls()
        self.tailing_changed.emit(True)
        self.message.emit(f"Watching {name}")
        return True

    def stop(self) -> None:
        """Cancel the tail (it ends on its worker; the GUI does not wait)."""
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            bridge.cancel()
        self.drain()
        self._update_controls()
        self.tailing_changed.emit(False)

    def _on_settled(self, bridge: JobBridge) -> None:
        if self._bridge is bridge:
            self._bridge = None
            self.drain()
            self._update_controls()
            self.tailing_changed.emit(False)

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if self.pause_button.isChecked() != paused:
            self.pause_button.setChecked(paused)
        if not paused:
            self.drain()
        self._update_count()

    def clear(self) -> None:
        self.buffer.clear()
        self.model.clear()
        self.details.clear()
        self.details_title.setText("Select a message to see it in full")
        self.show_all_button.hide()
        self._update_count()

    def drain(self) -> int:
        """Move what the tail thread buffered into the table (the timer's slot); returns rows added."""
        if self._paused:
            self._update_count()
            return 0
        batch = self.buffer.drain()
        if not batch:
            self._update_count()
            return 0
        scrollbar = self.table.verticalScrollBar()
        at_end = scrollbar.value() >= scrollbar.maximum() - 2
        added = self.model.append(batch)
        if added and at_end:
            self.table.scrollToBottom()
        self._update_count()
        return added

    def apply_filters(self) -> bool:
        try:
            message_filter = MessageFilter(
                self.key_filter.text().strip(),
                self.header_filter.text().strip(),
                self.body_filter.text().strip(),
            )
        except FilterError as exc:
            self.filter_error.setText(str(exc))
            return False
        self.filter_error.setText("")
        if message_filter != self.model.filter:
            self.model.set_filter(message_filter)
            self._update_count()
        return True

    def save_dialog(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save Messages", f"{self._target or 'messages'}.jsonl",
            "JSON Lines (*.jsonl);;All files (*)",
        )
        return bool(path) and self.save(Path(path))

    def save(self, path: Path) -> bool:
        """Write the listed (filtered) messages as JSON Lines."""
        messages = self.model.visible_messages()
        try:
            write_messages(path, messages)
        except OSError as exc:
            self.message.emit(f"Cannot save {path.name}: {exc.strerror or exc}")
            return False
        self.message.emit(f"Saved {len(messages):,} messages to {path.name}")
        return True

    def show_all(self) -> None:
        self._full_shown = True
        self._show_selected(limit=None)

    def shutdown(self, timeout: float = 5.0) -> None:
        """The window closes: cancel the tail and join the worker."""
        self._timer.stop()
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            bridge.cancel()
        if self._own_runner:
            self.runner.shutdown(timeout=timeout)

    # -- details -----------------------------------------------------------------------------------
    def _on_selection(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._full_shown = False
        self._show_selected(limit=DETAIL_LIMIT)

    def selected_message(self) -> BrokerMessage | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].row()
        return self.model.message(row) if 0 <= row < self.model.rowCount() else None

    def _show_selected(self, limit: int | None) -> None:
        message = self.selected_message()
        if message is None:
            return
        kind, text, truncated = decode_body(message.body, limit)
        where = message.exchange or message.source
        key = message.routing_key if message.partition is None else f"partition {message.partition}"
        self.details_title.setText(
            f"{where} · {key or '(no key)'} · {kind} · {human_size(len(message.body))}"
            + (f" (first {human_size(DETAIL_LIMIT)} shown)" if truncated else "")
        )
        self.show_all_button.setVisible(truncated)
        lines = []
        for title, table in (("properties", message.properties), ("headers", message.headers)):
            if table:
                lines.append(f"# {title}")
                lines.extend(f"{k}: {_value_text(v, k)}" for k, v in table.items())
        if message.redelivered:
            lines.append("redelivered: true")
        lines.append("# body")
        self.details.setPlainText("\n".join(lines) + "\n" + text)

    # -- chrome ------------------------------------------------------------------------------------
    def _update_controls(self) -> None:
        self.start_button.setText("Stop" if self.tailing else "Start")
        self.start_button.setEnabled(self.tailing or self.backend_factory is not None)
        self.target_box.setEnabled(not self.tailing)
        self._update_count()

    def _update_count(self) -> None:
        shown, kept = self.model.rowCount(), self.model.kept
        text = f"{shown:,} shown" if self.model.filter.active else f"{kept:,} messages"
        if self.model.filter.active:
            text += f" of {kept:,}"
        waiting = len(self.buffer)
        if self._paused and waiting:
            text += f" · {waiting:,} waiting"
        if self.buffer.dropped:
            text += f" · {self.buffer.dropped:,} skipped"
        if self.model.total_seen > kept:
            text += f" · newest {self.model.cap:,} kept"
        self.count_label.setText(text)


def _value_text(value: Any, name: str = "") -> str:
    if name == "timestamp" and isinstance(value, int):
        return f"{value} ({datetime.fromtimestamp(value, UTC):%Y-%m-%d %H:%M:%S} UTC)"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes> {value[:32].hex()}"
    if isinstance(value, list) and value and isinstance(value[0], dict):  # x-death
        return "; ".join(", ".join(f"{k}={v}" for k, v in entry.items()) for entry in value)
    return str(value)
