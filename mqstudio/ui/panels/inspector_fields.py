"""Field widgets of the inspector: numbers with units, a row with its inline error, typed key/value tables.

Owns: `routing_key_warning` (live hints for binding keys), the signal-blocking loaders, `UnitSpinBox`
(an integer stored in a base unit — ms or bytes — edited with a unit combo, with a
"not set" state), `FieldRow` (an editor, its optional "unset" button and the red rule text under it),
`KeyValueTable` (argument/header/config rows with typed values) and the value helpers they share.
These widgets know nothing of the model or of commands: they emit `committed`/`edited` and the
inspector turns that into one core command. Imports PySide6 only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

DURATION_UNITS: tuple[tuple[str, int], ...] = (
    ("ms", 1),
    ("s", 1000),
    ("min", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
)
SIZE_UNITS: tuple[tuple[str, int], ...] = (("B", 1), ("KiB", 1024), ("MiB", 1024**2), ("GiB", 1024**3))
NOT_SET = "not set"
ERROR_COLOR = "#cf222e"
WARNING_COLOR = "#b7791f"
_SPIN_MAX = 2_147_483_647


class UnitSpinBox(QWidget):
    """An integer in a base unit (``value()``; None when not set) shown as a number and a unit.

    The lowest spin value (`sentinel`) reads "not set", so stepping below the range unsets the value.
    ``committed`` fires when editing finishes or the unit changes; loading a value emits nothing.
    """

    committed = Signal()

    def __init__(
        self,
        units: Sequence[tuple[str, int]],
        *,
        minimum: int = 0,
        maximum: int = _SPIN_MAX,
        optional: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._units = list(units)
        self._optional = optional
        self.spin = QSpinBox(self)
        self.spin.setRange(minimum - 1 if optional else minimum, maximum)
        if optional:
            self.spin.setSpecialValueText(NOT_SET)
            self.spin.setValue(self.spin.minimum())  # starts "not set", not at 0
        self.spin.setAccelerated(True)
        self.spin.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.unit = QComboBox(self)
        for label, _factor in self._units:
            self.unit.addItem(label)
        self.unit.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.spin, 1)
        layout.addWidget(self.unit)
        self.spin.editingFinished.connect(self.committed)
        self.unit.activated.connect(lambda _index: self.committed.emit())
        self.setFocusProxy(self.spin)

    def value(self) -> int | None:
        if self._optional and self.spin.value() == self.spin.minimum():
            return None
        return self.spin.value() * self._units[self.unit.currentIndex()][1]

    def set_value(self, value: int | None) -> None:
        """Show `value` in the largest unit that divides it exactly (5000 ms → 5 s)."""
        self.spin.blockSignals(True)
        self.unit.blockSignals(True)
        try:
            if value is None:
                self.spin.setValue(self.spin.minimum())
                return
            index = 0
            for i, (_label, factor) in enumerate(self._units):
                if value and value % factor == 0 and value // factor <= self.spin.maximum():
                    index = i
            self.unit.setCurrentIndex(index)
            self.spin.setValue(value // self._units[index][1])
        finally:
            self.spin.blockSignals(False)
            self.unit.blockSignals(False)


class TemplateEdit(QPlainTextEdit):
    """Multi-line text (a payload template); ``committed`` fires when it loses focus, not per keystroke."""

    committed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.committed.emit()

    def set_text(self, text: str) -> None:
        """Show `text` (a model value) unless it is what is shown already, keeping the cursor."""
        if self.toPlainText() != text:
            self.blockSignals(True)
            self.setPlainText(text)
            self.blockSignals(False)


class FieldRow(QWidget):
    """One editor, an optional unset button that unsets the value, and a message line under it (red for
    the rule a refused change broke, amber for a live warning)."""

    unset_clicked = Signal()

    def __init__(self, editor: QWidget, *, unset_tip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.setSpacing(4)
        line.addWidget(editor, 1)
        self.unset_button: QToolButton | None = None
        if unset_tip:
            button = QToolButton(self)
            button.setText("\u00d7")  # multiplication sign: the usual "clear" glyph
            button.setAutoRaise(True)
            button.setToolTip(unset_tip)
            button.setAccessibleName(unset_tip)
            button.clicked.connect(self.unset_clicked)
            line.addWidget(button)
            self.unset_button = button
        elif not isinstance(editor, QCheckBox | KeyValueTable):
            # Keep the right edge of every field in line with the fields that have an unset button.
            line.addSpacing(QToolButton().sizeHint().width() + line.spacing())
        outer.addLayout(line)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        self.has_error = False
        outer.addWidget(self.message)
        self.setFocusProxy(editor)

    def show_error(self, text: str) -> None:
        self._show(text, ERROR_COLOR)
        self.has_error = bool(text)

    def show_warning(self, text: str) -> None:
        self._show(text, WARNING_COLOR)
        self.has_error = False

    def _show(self, text: str, color: str) -> None:
        self.message.setStyleSheet(f"color: {color};")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def clear_message(self) -> None:
        self.message.clear()
        self.message.hide()
        self.has_error = False

    @property
    def message_text(self) -> str:
        return self.message.text()


# -- typed values ---------------------------------------------------------------------------------
VALUE_TYPES = ("string", "integer", "number", "boolean", "json")


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "json"


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, default=str)


def parse_value(text: str, kind: str) -> Any:
    """The typed value of `text`; raises ValueError with a user-facing reason."""
    text = text.strip() if kind != "string" else text
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError("AMQP tables cannot hold infinity or NaN")
        return number
    if kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg}") from None


class KeyValueTable(QWidget):
    """Rows of key, (type,) value. ``edited(dict)`` carries the whole table whenever a complete row
    changes or a row is removed; ``invalid(str)`` when a value does not parse as its type."""

    edited = Signal(dict)
    invalid = Signal(str)

    def __init__(
        self,
        *,
        typed: bool = True,
        key_header: str = "Key",
        add_tip: str = "Add a row",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._typed = typed
        self._loading = False
        columns = [key_header, "Type", "Value"] if typed else [key_header, "Value"]
        self.table = QTableWidget(0, len(columns), self)
        self.table.setHorizontalHeaderLabels(columns)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        if typed:
            header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(columns) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(96)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.table.itemChanged.connect(self._on_item_changed)
        self.add_button = QToolButton(self)
        self.add_button.setText("+")
        self.add_button.setToolTip(add_tip)
        self.add_button.clicked.connect(self.add_row)
        self.remove_button = QToolButton(self)
        self.remove_button.setText("\u2212")  # minus sign, as wide as "+"
        self.remove_button.setToolTip("Remove the selected row")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self._fit_height()

    # -- loading ----------------------------------------------------------------------------------
    def set_items(self, items: Mapping[str, Any]) -> None:
        self._loading = True
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(0)
            for key, value in items.items():
                self._append(key, value_type(value) if self._typed else "string", format_value(value))
        finally:
            self.table.blockSignals(False)
            self._loading = False
        self._fit_height()

    def _append(self, key: str, kind: str, text: str) -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(key))
        if self._typed:
            combo = QComboBox(self.table)
            combo.addItems(VALUE_TYPES)
            combo.setCurrentText(kind)
            combo.currentIndexChanged.connect(lambda _i: self._emit())
            self.table.setCellWidget(row, 1, combo)
        self.table.setItem(row, self.table.columnCount() - 1, QTableWidgetItem(text))
        return row

    def _fit_height(self) -> None:
        rows = max(self.table.rowCount(), 2)
        height = (
            self.table.horizontalHeader().height() + rows * self.table.verticalHeader().defaultSectionSize()
        )
        self.table.setFixedHeight(min(height + 4, 220))

    # -- editing ----------------------------------------------------------------------------------
    def add_row(self) -> None:
        self.table.blockSignals(True)
        row = self._append("", "string", "")
        self.table.blockSignals(False)
        self._fit_height()
        self.table.setCurrentCell(row, 0)
        item = self.table.item(row, 0)
        if item is not None:
            self.table.editItem(item)

    def remove_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        if not rows and self.table.currentRow() >= 0:
            rows = [self.table.currentRow()]
        for row in rows:
            self.table.removeRow(row)
        if rows:
            self._fit_height()
            self._emit()

    def set_row(self, row: int, key: str, text: str, kind: str = "string") -> None:
        """Fill a row as a user would (tests, paste): type first, then key and value."""
        while self.table.rowCount() <= row:
            self.table.blockSignals(True)
            self._append("", "string", "")
            self.table.blockSignals(False)
        if self._typed:
            combo = self.table.cellWidget(row, 1)
            assert isinstance(combo, QComboBox)
            combo.blockSignals(True)
            combo.setCurrentText(kind)
            combo.blockSignals(False)
        key_item = self.table.item(row, 0)
        value_item = self.table.item(row, self.table.columnCount() - 1)
        assert key_item is not None and value_item is not None
        self.table.blockSignals(True)
        key_item.setText(key)
        self.table.blockSignals(False)
        value_item.setText(text)

    def _on_item_changed(self, _item: QTableWidgetItem) -> None:
        self._emit()

    def items(self) -> dict[str, Any]:
        """The complete rows as typed values; raises ValueError naming the first row that does not parse."""
        out: dict[str, Any] = {}
        for row in range(self.table.rowCount()):
            key_item = self.table.item(row, 0)
            key = key_item.text().strip() if key_item is not None else ""
            if not key:
                continue  # a row being typed: nothing to commit yet
            value_item = self.table.item(row, self.table.columnCount() - 1)
            text = value_item.text() if value_item is not None else ""
            kind = "string"
            if self._typed:
                combo = self.table.cellWidget(row, 1)
                kind = combo.currentText() if isinstance(combo, QComboBox) else "string"
            try:
                out[key] = parse_value(text, kind)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return out

    def _emit(self) -> None:
        if self._loading:
            return
        try:
            items = self.items()
        except ValueError as exc:
            self.invalid.emit(str(exc))
            return
        self.edited.emit(items)


# -- binding keys -------------------------------------------------------------------------------
def routing_key_warning(key: str, exchange_type: str) -> str:
    """A live hint for a binding key that RabbitMQ accepts but that probably does not do what was meant."""
    if len(key.encode("utf-8")) > 255:
        return "longer than 255 bytes: AMQP refuses it"
    if exchange_type == "topic":
        words = key.split(".") if key else []
        if any(w == "" for w in words):
            return "empty word: a topic pattern never has two dots in a row or a dot at either end"
        mixed = [w for w in words if w not in ("*", "#") and ("*" in w or "#" in w)]
        if mixed:
            return f"{mixed[0]!r} is literal: * and # are wildcards only as whole words (e.g. 'a.*')"
        return ""
    if exchange_type == "direct" and ("*" in key or "#" in key):
        return "direct exchanges match keys exactly: * and # are literal here (use a topic exchange)"
    if exchange_type in ("fanout", "headers") and key:
        return f"{exchange_type} exchanges ignore the routing key"
    return ""


# -- loading helpers (signals blocked: loading is not editing) ------------------------------------
def html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def set_text(edit: QLineEdit, text: str) -> None:
    if edit.text() != text:
        edit.blockSignals(True)
        edit.setText(text)
        edit.blockSignals(False)


def set_checked(box: QCheckBox, checked: bool) -> None:
    box.blockSignals(True)
    box.setChecked(checked)
    box.blockSignals(False)


def set_spin(spin: QSpinBox | QDoubleSpinBox, value: Any) -> None:
    spin.blockSignals(True)
    spin.setValue(value)
    spin.blockSignals(False)


def set_combo_data(combo: QComboBox, data: Any) -> None:
    combo.blockSignals(True)
    combo.setCurrentIndex(max(combo.findData(data), 0))
    combo.blockSignals(False)
