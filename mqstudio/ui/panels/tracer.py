"""The route tracer dock: publish one imaginary message and see where it goes, hop by hop.

Owns: `TracerPanel`, `HeaderRows`. The form (exchange, routing key, headers, priority, per-message TTL,
outcome; left of the hops when the panel is wide, above them when narrow) feeds
`mqstudio.ops.trace.trace`, which runs the design on a fresh in-memory engine; the result is shown as a
tree (hop → objects, key, reason, x-death as pretty JSON), `path_traced(list[str])` hands the ordered
object ids to the canvas to highlight, and selecting a hop selects its object in the editor.
Imports PySide6, mqstudio.core, mqstudio.ops and mqstudio.ui only (never the broker engine itself).
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mqstudio.core.model import DEFAULT_VHOST, Binding
from mqstudio.ops.trace import Hop, HopKind, Outcome, TraceError, TraceResult, trace
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.panels.inspector_fields import (
    DURATION_UNITS,
    ERROR_COLOR,
    WARNING_COLOR,
    KeyValueTable,
    UnitSpinBox,
)

DEFAULT_EXCHANGE = '(default exchange "")'
FORM_WIDTH = 420  # the form's widest, beside the hops
SIDE_BY_SIDE_WIDTH = 720  # the panel's width from which the hops sit beside the form, not under it
HEADER_ROWS = 4  # header rows shown before the table scrolls
UNLIMITED = 16_777_215  # QWIDGETSIZE_MAX
_HOP_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_KIND_MARKS = {
    HopKind.ROUTED: "\u2192",
    HopKind.ALTERNATE_EXCHANGE: "\u21aa",
    HopKind.UNROUTABLE: "\u2717",
    HopKind.DEAD_LETTERED: "\u2620",
    HopKind.DROPPED: "\u2717",
    HopKind.DELIVERED: "\u2713",
}
_OUTCOME_TIPS = {
    Outcome.DELIVERED: "A consumer takes the message and acks it",
    Outcome.REJECTED: "A consumer rejects it without requeue (basic.reject requeue=false)",
    Outcome.EXPIRED: "Nobody consumes it before its TTL (queue or per-message) runs out",
    Outcome.OVERFLOW: "Its queue is full (x-max-length / x-max-length-bytes) when it arrives",
}


def _json(value: Any) -> str:
    # x-death `time` values are datetimes; show them as ISO text.
    return json.dumps(value, indent=2, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))


class HeaderRows(KeyValueTable):
    """The message headers: no table until a header is added (only the add and remove buttons), then
    a row for each header, up to `HEADER_ROWS` (it scrolls beyond)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        model = self.table.model()
        model.rowsInserted.connect(self._fit_height)
        model.rowsRemoved.connect(self._fit_height)
        self._fit_height()

    def _fit_height(self, *_: object) -> None:
        rows = self.table.rowCount()
        self.table.setVisible(rows > 0)
        self.remove_button.setEnabled(rows > 0)
        shown = min(max(rows, 1), HEADER_ROWS)
        height = self.table.horizontalHeader().sizeHint().height()
        height += shown * self.table.verticalHeader().defaultSectionSize() + 2 * self.table.frameWidth()
        self.table.setFixedHeight(height)


class TracerPanel(QWidget):
    """Signal ``path_traced(list[str])``: node and binding ids of the last trace, in order."""

    path_traced = Signal(list)

    def __init__(self, editor: DocumentEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TracerPanel")
        self._editor = editor
        self._topology = editor.document.topology
        self.result: TraceResult | None = None

        self.vhost = QComboBox()
        self.exchange = QComboBox()
        self.exchange.setToolTip("The exchange the message is published to")
        self.routing_key = QLineEdit()
        self.routing_key.setPlaceholderText("(empty)")
        self.routing_key.returnPressed.connect(self.run_trace)
        self.headers = HeaderRows(key_header="Header", add_tip="Add a message header")
        self.priority = QSpinBox()
        self.priority.setRange(-1, 255)
        self.priority.setSpecialValueText("none")
        self.priority.setValue(-1)
        self.ttl = UnitSpinBox(DURATION_UNITS, minimum=0)
        self.ttl.setToolTip("Per-message TTL (the expiration property)")
        self.outcome = QComboBox()
        for outcome in Outcome:
            self.outcome.addItem(outcome.value, outcome)
            self.outcome.setItemData(
                self.outcome.count() - 1, _OUTCOME_TIPS[outcome], Qt.ItemDataRole.ToolTipRole
            )
        self.trace_button = QPushButton("Trace")
        self.trace_button.setDefault(True)
        self.trace_button.clicked.connect(self.run_trace)

        form_widget = QWidget()
        form = QFormLayout(form_widget)
        form.setContentsMargins(8, 8, 8, 4)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Vhost", self.vhost)
        form.addRow("Exchange", self.exchange)
        form.addRow("Routing key", self.routing_key)
        form.addRow("Headers", self.headers)
        numbers = QHBoxLayout()
        numbers.addWidget(self.priority, 1)
        numbers.addWidget(QLabel("TTL"))
        numbers.addWidget(self.ttl, 2)
        form.addRow("Priority", numbers)
        run = QHBoxLayout()
        run.addWidget(self.outcome, 1)
        run.addWidget(self.trace_button)
        form.addRow("Outcome", run)
        self._vhost_label = form.labelForField(self.vhost)

        self.hops = QTreeWidget()
        self.hops.setHeaderLabels(["Hop", "What happened"])
        self.hops.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.hops.setWordWrap(True)
        self.hops.setUniformRowHeights(False)
        self.hops.setAlternatingRowColors(True)
        self.hops.itemSelectionChanged.connect(self._on_hop_selected)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setContentsMargins(8, 2, 8, 4)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.setSpacing(0)
        results_layout.addWidget(self.hops, 1)
        results_layout.addWidget(self.status)
        # Wide (the bottom dock): the form on the left, the hops beside it. Narrow (a side dock): stacked.
        self.form = form_widget
        self.results = results
        self.box = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(0)
        self.box.addWidget(form_widget, 0, Qt.AlignmentFlag.AlignTop)
        self.box.addWidget(results, 1)
        self._set_side_by_side(True)

        self.vhost.currentIndexChanged.connect(lambda _i: self._fill_exchanges())
        editor.document_replaced.connect(self._on_document_replaced)
        self._connect_topology()
        self._fill_choices()
        self._show_status(
            "Choose an exchange and a key, then Trace: a fresh in-memory broker runs the design."
        )

    # -- layout -----------------------------------------------------------------------------------
    @property
    def side_by_side(self) -> bool:
        return self.box.direction() is QBoxLayout.Direction.LeftToRight

    def _set_side_by_side(self, on: bool) -> None:
        self.box.setDirection(QBoxLayout.Direction.LeftToRight if on else QBoxLayout.Direction.TopToBottom)
        self.form.setMaximumWidth(FORM_WIDTH if on else UNLIMITED)
        self.box.setAlignment(self.form, Qt.AlignmentFlag.AlignTop if on else Qt.AlignmentFlag(0))
        self.results.setMinimumHeight(0 if on else self.hops.fontMetrics().height() * 6)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        wide = event.size().width() >= SIDE_BY_SIDE_WIDTH
        if wide != self.side_by_side:
            self._set_side_by_side(wide)
            self.box.activate()  # at this size, not at the next layout pass

    # -- choices mirror the model -----------------------------------------------------------------
    def _signals(self) -> tuple[Any, ...]:
        t = self._topology
        return (t.node_added, t.node_removed, t.node_changed)

    def _connect_topology(self) -> None:
        for signal in self._signals():
            signal.connect(self._on_model_event)

    def _on_document_replaced(self) -> None:
        for signal in self._signals():
            signal.disconnect(self._on_model_event)
        self._topology = self._editor.document.topology
        self._connect_topology()
        self.hops.clear()
        self.result = None
        self._fill_choices()

    def _on_model_event(self, *_args: Any) -> None:
        self._fill_choices()

    def _fill_choices(self) -> None:
        current = self.vhost.currentText() or DEFAULT_VHOST
        self.vhost.blockSignals(True)
        self.vhost.clear()
        self.vhost.addItems(list(self._topology.vhosts))
        self.vhost.setCurrentIndex(max(self.vhost.findText(current), 0))
        self.vhost.blockSignals(False)
        several = self.vhost.count() > 1
        self.vhost.setVisible(several)
        if self._vhost_label is not None:
            self._vhost_label.setVisible(several)
        self._fill_exchanges()

    def _fill_exchanges(self) -> None:
        chosen = self.exchange.currentData()
        vhost = self.vhost.currentText() or DEFAULT_VHOST
        self.exchange.blockSignals(True)
        self.exchange.clear()
        self.exchange.addItem(DEFAULT_EXCHANGE, "")
        for ex in self._topology.exchanges:
            if ex.vhost == vhost and ex.name:
                label = f"{ex.name}  ({ex.type})" + ("  internal" if ex.internal else "")
                self.exchange.addItem(label, ex.id)
        index = self.exchange.findData(chosen)
        self.exchange.setCurrentIndex(index if index >= 0 else min(1, self.exchange.count() - 1))
        self.exchange.blockSignals(False)

    def set_exchange(self, exchange_id: str) -> None:
        self.exchange.setCurrentIndex(max(self.exchange.findData(exchange_id), 0))

    # -- tracing ----------------------------------------------------------------------------------
    def run_trace(self) -> None:
        """Trace now. This runs on the GUI thread on purpose: it is pure in-memory computation on a
        private engine with a virtual clock, bounded by max_hops; it never touches the network or disk."""
        self.hops.clear()
        headers = self._headers()
        if headers is None:
            return
        priority = self.priority.value()
        try:
            result = trace(
                self._topology,
                self.vhost.currentText() or DEFAULT_VHOST,
                routing_key=self.routing_key.text(),
                headers=headers,
                priority=None if priority < 0 else priority,
                ttl_ms=self.ttl.value(),
                outcome=Outcome(self.outcome.currentData()),
                exchange_id=str(self.exchange.currentData() or ""),
            )
        except TraceError as exc:
            self.result = None
            self._show_status(str(exc), ERROR_COLOR)
            self.path_traced.emit([])
            return
        self.result = result
        for number, hop in enumerate(result.hops, 1):
            self._add_hop(number, hop)
        notes = list(result.notes)
        if not result.hops:
            notes.insert(0, "The message went nowhere.")
        self._show_status("\n".join(notes), WARNING_COLOR if notes else "")
        self.path_traced.emit(result.path)

    def _headers(self) -> dict[str, Any] | None:
        try:
            return self.headers.items()
        except ValueError as exc:
            self._show_status(f"header {exc}", ERROR_COLOR)
            return None

    def _add_hop(self, number: int, hop: Hop) -> None:
        item = QTreeWidgetItem(self.hops, [f"{number}. {_KIND_MARKS[hop.kind]} {hop.kind.value}", hop.text])
        item.setData(0, _HOP_ID_ROLE, list(hop.object_ids))
        item.setToolTip(1, hop.text)
        if hop.kind in (HopKind.DROPPED, HopKind.UNROUTABLE):
            item.setForeground(0, Qt.GlobalColor.red)
        labels = [self._topology.label(i) for i in hop.object_ids]
        details = [("Objects", " \u2192 ".join(labels) or "(not in the design)")]
        if hop.routing_key:
            details.append(("Routing key", hop.routing_key))
        if hop.reason:
            details.append(("Reason", hop.reason))
        for name, value in details:
            QTreeWidgetItem(item, [name, value])
        if hop.x_death:
            child = QTreeWidgetItem(item, ["x-death", _json(list(hop.x_death))])
            child.setFont(1, QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
            child.setTextAlignment(0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            counts = ", ".join(
                f"{d.get('queue')}/{d.get('reason')}\u00d7{d.get('count')}" for d in hop.x_death
            )
            item.setText(1, f"{hop.text}  [x-death: {counts}]")

    def _on_hop_selected(self) -> None:
        items = self.hops.selectedItems()
        if not items:
            return
        item = items[0]
        while (parent := item.parent()) is not None:
            item = parent
        ids = [i for i in item.data(0, _HOP_ID_ROLE) or [] if i in self._topology]
        if not ids:
            return
        binding = next((i for i in ids if isinstance(self._topology.get(i), Binding)), None)
        self._editor.select([binding or ids[0]])

    def _show_status(self, text: str, color: str = "") -> None:
        style = f"color: {color};" if color else "color: palette(placeholder-text);"
        self.status.setStyleSheet(style)
        self.status.setText(text)
        self.status.setVisible(bool(text))
