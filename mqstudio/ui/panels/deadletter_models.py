"""Qt item models of the Dead Letters panel: the message table, its filter and its grouping.

Owns: `DeadLetterTableModel` (a `QAbstractTableModel` over a bounded list of `DeadRow`s: a message
and its parsed `DeathInfo`), `DeadLetterFilterProxy` (the `ops.deadletters.matches` filter) and
`DeadLetterGroupModel` (a two-level tree over the filtered rows: one parent per reason / origin /
exception, the messages below). Plain data in, nothing touches a backend. Imports PySide6,
mqstudio.backends.base and mqstudio.ops only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QFont

from mqstudio.backends.base import BrokerMessage
from mqstudio.ops.deadletters import DeathInfo, GroupKey, group_key, matches, message_time, parse_death

#: The most messages one table holds (the panel peeks at most this many).
MAX_ROWS = 2000
PREVIEW_CHARS = 120
COLUMNS = ("Time", "Reason", "Origin", "Exchange / key", "Count", "Size", "Body")
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True, slots=True)
class DeadRow:
    message: BrokerMessage
    death: DeathInfo
    time: datetime | None

    @classmethod
    def of(cls, message: BrokerMessage) -> DeadRow:
        death = parse_death(message)
        return cls(message, death, message_time(message, death))


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def body_preview(body: bytes, limit: int = PREVIEW_CHARS) -> str:
    """One line: the start of the body as text, or a hex excerpt when it is binary."""
    head = body[: limit * 4]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the excerpt
            return "binary: " + body[: limit // 3].hex(" ")
        text = head[: exc.start].decode("utf-8")
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit or len(body) > len(head) else "")


def _cell(row: DeadRow, column: int) -> str:
    m, d = row.message, row.death
    if column == 0:
        return row.time.astimezone().strftime("%Y-%m-%d %H:%M:%S") if row.time else ""
    if column == 1:
        return d.reason
    if column == 2:
        return d.origin or m.source
    if column == 3:
        exchange = d.exchange if d.exchange or d.reason else m.exchange
        keys = ", ".join(d.routing_keys) or m.routing_key
        return f"{exchange or '(default)'} / {keys}" if exchange or keys else ""
    if column == 4:
        return str(d.count) if d.count else ""
    if column == 5:
        return human_size(len(m.body))
    return body_preview(m.body)


class DeadLetterTableModel(QAbstractTableModel):
    """The messages of one dead-letter queue, at most `max_rows` (the oldest beyond are dropped)."""

    def __init__(self, parent: QObject | None = None, max_rows: int = MAX_ROWS) -> None:
        super().__init__(parent)
        self.max_rows = max_rows
        self._rows: list[DeadRow] = []
        self.truncated = False

    # -- data ------------------------------------------------------------------------------------
    def set_messages(self, messages: list[BrokerMessage]) -> None:
        self.beginResetModel()
        self.truncated = len(messages) > self.max_rows
        self._rows = [DeadRow.of(m) for m in messages[: self.max_rows]]
        self.endResetModel()

    def append_messages(self, messages: list[BrokerMessage]) -> None:
        """Batched insert; drops the oldest rows beyond `max_rows`."""
        room = self.max_rows - len(self._rows)
        if room <= 0 or not messages:
            self.truncated = self.truncated or bool(messages)
            return
        batch = [DeadRow.of(m) for m in messages[:room]]
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(batch) - 1)
        self._rows.extend(batch)
        self.endInsertRows()
        self.truncated = self.truncated or len(messages) > room

    def clear(self) -> None:
        self.set_messages([])

    def row(self, index: int) -> DeadRow:
        return self._rows[index]

    @property
    def rows(self) -> list[DeadRow]:
        return list(self._rows)

    # -- Qt --------------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell(row, index.column())
        if role == MESSAGE_ROLE:
            return row
        if role == Qt.ItemDataRole.ToolTipRole:
            d = row.death
            lines = [f"{d.reason or 'no dead-letter headers'} in {d.origin or row.message.source}"]
            if d.exception:
                lines.append(f"{d.exception}: {d.exception_message}")
            if d.count > 1:
                lines.append(f"dead-lettered {d.count} times")
            return "\n".join(lines)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class DeadLetterFilterProxy(QSortFilterProxyModel):
    """Rows passing `ops.deadletters.matches(text, header, since, until)`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.text: str | None = None
        self.header: str | None = None
        self.since: datetime | None = None
        self.until: datetime | None = None

    def set_criteria(self, text: str | None = None, header: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+: invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self.text, self.header, self.since, self.until = text or None, header or None, since, until
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - Qt 6.8/6.9
            self.text, self.header, self.since, self.until = text or None, header or None, since, until
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = cast(DeadLetterTableModel, self.sourceModel())
        if source_row >= model.rowCount():
            return False
        message = model.row(source_row).message
        return matches(message, self.text, self.header, self.since, self.until)

    def rows(self) -> list[DeadRow]:
        """The rows passing the filter, in order."""
        return [self.data(self.index(r, 0), MESSAGE_ROLE) for r in range(self.rowCount())]


class DeadLetterGroupModel(QAbstractItemModel):
    """Groups of the filter proxy's rows by reason, origin or exception: parents "rejected (12)" with
    the rows below them. Rebuilt (reset) whenever the proxy changes; the list is bounded."""

    def __init__(self, proxy: DeadLetterFilterProxy, key: GroupKey = "reason",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._proxy = proxy
        self.key: GroupKey = key
        self._groups: list[tuple[str, list[int]]] = []
        for signal in (proxy.modelReset, proxy.layoutChanged, proxy.rowsInserted, proxy.rowsRemoved):
            signal.connect(self.rebuild)
        self.rebuild()

    def set_key(self, key: GroupKey) -> None:
        self.key = key
        self.rebuild()

    def rebuild(self, *_: object) -> None:
        self.beginResetModel()
        groups: dict[str, list[int]] = {}
        for r in range(self._proxy.rowCount()):
            row: DeadRow = self._proxy.data(self._proxy.index(r, 0), MESSAGE_ROLE)
            groups.setdefault(group_key(row.death, self.key), []).append(r)
        self._groups = list(groups.items())
        self.endResetModel()

    def groups(self) -> list[tuple[str, int]]:
        return [(name, len(rows)) for name, rows in self._groups]

    def row_at(self, index: _Index) -> DeadRow | None:
        value = self.data(index, MESSAGE_ROLE)
        return value if isinstance(value, DeadRow) else None

    # -- Qt: internalId 0 marks a group row, n > 0 a message of group n - 1 ---------------------
    def index(self, row: int, column: int, parent: _Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if column < 0 or column >= len(COLUMNS) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row < len(self._groups) else QModelIndex()
        if parent.internalId() == 0 and row < len(self._groups[parent.row()][1]):
            return self.createIndex(row, column, parent.row() + 1)
        return QModelIndex()

    def parent(self, index: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._groups)
        if parent.internalId() == 0 and parent.column() == 0:
            return len(self._groups[parent.row()][1])
        return 0

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        return self._proxy.headerData(section, orientation, role)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if index.internalId() == 0:
            name, rows = self._groups[index.row()]
            if role == Qt.ItemDataRole.DisplayRole and index.column() == 0:
                return f"{name} ({len(rows)})"
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
            return None
        proxy_row = self._groups[index.internalId() - 1][1][index.row()]
        return self._proxy.data(self._proxy.index(proxy_row, index.column()), role)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if index.isValid() and index.internalId() == 0:
            return Qt.ItemFlag.ItemIsEnabled
        return super().flags(index)

    def firstColumnSpanned(self, index: _Index) -> bool:
        return index.isValid() and index.internalId() == 0
