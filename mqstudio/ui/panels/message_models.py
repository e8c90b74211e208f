"""The live message tail's data side: a thread-safe buffer, filters, body decoding and the table model.

Owns: `TailBuffer` (bounded, filled by a tail thread, drained by the GUI's timer), `MessageFilter`
(routing-key pattern with AMQP ``*``/``#``, ``header=value``, body text or a JSON path
``$.order.id=42``), `topic_matches`, `decode_body` / `body_preview` (safe for huge and binary bodies),
`MessageTailTableModel` (a `QAbstractTableModel` over a bounded deque, rows inserted in batches).

Bounds: the model keeps at most `cap` rows (default `DEFAULT_CAP` = 10,000) and at most `max_bytes`
of bodies (default 64 MiB); older rows go first. The buffer between the tail thread and the GUI keeps
at most `cap` messages too: when the GUI does not drain (paused), the oldest are dropped and counted.
No per-message Qt signal exists anywhere: one ``rowsInserted`` per drained batch.
Imports PySide6, the stdlib and `mqstudio.backends.base` only.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from mqstudio.backends.base import BrokerMessage

DEFAULT_CAP = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DETAIL_LIMIT = 64 * 1024
PREVIEW_BYTES = 160

COLUMNS = ("Time", "Exchange/topic", "Key/partition", "Properties", "Headers", "Body")
_Index = QModelIndex | QPersistentModelIndex


class FilterError(ValueError):
    """A filter the user typed cannot be understood; the text says why."""


# -- buffer -------------------------------------------------------------------------------------------


class TailBuffer:
    """Messages handed over from a tail thread (`push`, any thread) to the GUI (`drain`).

    Bounded: beyond `cap` waiting messages the oldest are dropped and counted in `dropped`."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._items: deque[tuple[float, BrokerMessage]] = deque()
        self.dropped = 0
        self.pushed = 0

    def push(self, message: BrokerMessage) -> None:
        with self._lock:
            self._items.append((time.time(), message))
            self.pushed += 1
            if len(self._items) > self.cap:
                self._items.popleft()
                self.dropped += 1

    def drain(self) -> list[tuple[float, BrokerMessage]]:
        with self._lock:
            items, self._items = self._items, deque()
        return list(items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# -- filters ------------------------------------------------------------------------------------------


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching, word by word: ``*`` is exactly one word, ``#`` zero or more."""
    words, keys = pattern.split("."), key.split(".")
    # positions in `keys` reachable after matching a prefix of `words`
    states = {0}
    for word in words:
        nxt: set[int] = set()
        for i in states:
            if word == "#":
                nxt.update(range(i, len(keys) + 1))
            elif i < len(keys) and (word in ("*", keys[i])):
                nxt.add(i + 1)
        states = nxt
        if not states:
            return False
    return len(keys) in states


_PATH = re.compile(r"^\$((?:\.[^.=\[\]]+|\[\d+\])+)\s*=\s*(.*)$")


def _json_path(path: str) -> list[str | int]:
    return [int(p[1:-1]) if p.startswith("[") else p[1:] for p in re.findall(r"\.[^.\[\]]+|\[\d+\]", path)]


_MISSING = object()


def _child(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else _MISSING
    return value[step] if isinstance(value, dict) and step in value else _MISSING


def _same(value: Any, wanted: str) -> bool:
    if isinstance(value, str):
        return value == wanted
    try:
        return bool(value == json.loads(wanted))
    except ValueError:
        return str(value) == wanted


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """All given parts must match. Empty parts match everything."""

    routing_key: str = ""
    header: str = ""
    body: str = ""

    def __post_init__(self) -> None:
        if self.header and "=" not in self.header:
            raise FilterError("a header filter is name=value, e.g. tenant=acme")
        if self.body.startswith("$") and not _PATH.match(self.body):
            raise FilterError("a JSON path filter looks like $.order.id=42")

    @property
    def active(self) -> bool:
        return bool(self.routing_key or self.header or self.body)

    def matches(self, message: BrokerMessage) -> bool:
        if self.routing_key:
            key = message.routing_key if message.partition is None else str(message.partition)
            if not topic_matches(self.routing_key, key):
                return False
        if self.header:
            name, _, wanted = self.header.partition("=")
            name = name.strip()
            if name not in message.headers or not _same(message.headers[name], wanted.strip()):
                return False
        if self.body:
            return self._body_matches(message.body)
        return True

    def _body_matches(self, body: bytes) -> bool:
        match = _PATH.match(self.body)
        if match is None:
            return self.body.encode() in body
        if len(body) > DETAIL_LIMIT * 16:  # not parsed for a filter: too big to do per message
            return False
        try:
            value: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return False
        for step in _json_path(match.group(1)):
            value = _child(value, step)
            if value is _MISSING:
                return False
        return _same(value, match.group(2).strip())


# -- bodies ---------------------------------------------------------------------------------------------


def _is_text(raw: bytes, cut: bool = False) -> str | None:
    """`raw` as text when it is UTF-8 without control characters; with `cut`, `raw` may end inside a
    multi-byte character (it was truncated), which is then dropped."""
    for trim in range(4 if cut else 1):
        try:
            text = raw[: len(raw) - trim].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if any(ord(c) < 32 and c not in "\t\n\r" for c in text[:4096]):
            return None
        return text
    return None


def hex_dump(raw: bytes) -> str:
    lines = []
    for offset in range(0, len(raw), 16):
        chunk = raw[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)


def decode_body(body: bytes, limit: int | None = DETAIL_LIMIT) -> tuple[str, str, bool]:
    """(kind, text, truncated): kind is ``json`` (pretty), ``text`` or ``binary`` (hex dump). With a
    `limit`, only the first `limit` bytes are decoded (truncated=True when there were more)."""
    truncated = limit is not None and len(body) > limit
    raw = body[:limit] if truncated and limit is not None else body
    text = _is_text(raw, cut=truncated)
    if text is None:
        return "binary", hex_dump(raw), truncated
    if not truncated and text.lstrip()[:1] in ("{", "["):
        try:
            return "json", json.dumps(json.loads(text), indent=2, ensure_ascii=False), False
        except ValueError:
            pass
    return "text", text, truncated


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def body_preview(body: bytes) -> str:
    """One line for the table: the start of a text body, or a size and hex start for a binary one."""
    head = body[:PREVIEW_BYTES]
    text = _is_text(head, cut=len(body) > PREVIEW_BYTES)
    if text is None:
        return f"⟨binary {human_size(len(body))}⟩ " + " ".join(f"{b:02x}" for b in head[:12])
    line = " ".join(text.split())
    return line + ("…" if len(body) > PREVIEW_BYTES else "")


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return f"⟨{len(value)} bytes⟩"
    if isinstance(value, list):
        return f"[{len(value)}]"
    if isinstance(value, dict):
        return "{…}"
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def properties_summary(message: BrokerMessage) -> str:
    p = message.properties
    parts = []
    for name, label in (("content_type", ""), ("delivery_mode", "mode "), ("priority", "prio "),
                        ("expiration", "ttl "), ("message_id", "id ")):
        if p.get(name) is not None:
            parts.append(f"{label}{_short(p[name])}")
    if message.redelivered:
        parts.append("redelivered")
    return ", ".join(parts)


def headers_summary(message: BrokerMessage) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in list(message.headers.items())[:6]) + (
        ", …" if len(message.headers) > 6 else ""
    )


# -- the table model --------------------------------------------------------------------------------------


@dataclass(slots=True)
class TailRow:
    seq: int
    received: float
    message: BrokerMessage


class MessageTailTableModel(QAbstractTableModel):
    """Rows of tailed messages, newest last. `append` takes a batch (one insert signal per batch);
    beyond `cap` rows or `max_bytes` of bodies the oldest are removed (one remove signal per batch).
    `set_filter` re-selects the visible rows among the kept ones."""

    def __init__(
        self, cap: int = DEFAULT_CAP, max_bytes: int = DEFAULT_MAX_BYTES, parent: Any = None
    ) -> None:
        super().__init__(parent)
        self.cap = max(1, cap)
        self.max_bytes = max_bytes
        self._all: deque[TailRow] = deque()
        self._visible: deque[TailRow] = deque()
        self._bytes = 0
        self._seq = 0
        self.filter = MessageFilter()
        self.total_seen = 0

    # -- Qt ----------------------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._visible)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        row = self._visible[index.row()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return None if index.column() != 5 else f"{human_size(len(row.message.body))} body"
        return self.cell(row, index.column())

    @staticmethod
    def cell(row: TailRow, column: int) -> str:
        m = row.message
        if column == 0:
            stamp = datetime.fromtimestamp(row.received)
            return stamp.strftime("%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"
        if column == 1:
            return m.exchange or (m.source if m.partition is not None else "(default)")
        if column == 2:
            return m.routing_key if m.partition is None else f"p{m.partition} @{m.offset}"
        if column == 3:
            return properties_summary(m)
        if column == 4:
            return headers_summary(m)
        return body_preview(m.body)

    # -- rows --------------------------------------------------------------------------------------------
    def append(self, batch: Iterable[tuple[float, BrokerMessage]]) -> int:
        """Add a batch (received time, message); returns how many became visible rows."""
        new = []
        for received, message in batch:
            self._seq += 1
            new.append(TailRow(self._seq, received, message))
        if not new:
            return 0
        self.total_seen += len(new)
        if len(new) > self.cap:
            new = new[-self.cap :]
        self._all.extend(new)
        self._bytes += sum(len(r.message.body) for r in new)
        self._evict()
        first_kept = self._all[0].seq if self._all else self._seq + 1
        shown = [r for r in new if r.seq >= first_kept and self.filter.matches(r.message)]
        if shown:
            start = len(self._visible)
            self.beginInsertRows(QModelIndex(), start, start + len(shown) - 1)
            self._visible.extend(shown)
            self.endInsertRows()
        return len(shown)

    def _evict(self) -> None:
        def over() -> bool:
            return len(self._all) > self.cap or (self._bytes > self.max_bytes and len(self._all) > 1)

        while self._all and over():
            row = self._all.popleft()
            self._bytes -= len(row.message.body)
        first_kept = self._all[0].seq if self._all else self._seq + 1
        gone = 0
        for row in self._visible:
            if row.seq >= first_kept:
                break
            gone += 1
        if gone:
            self.beginRemoveRows(QModelIndex(), 0, gone - 1)
            for _ in range(gone):
                self._visible.popleft()
            self.endRemoveRows()

    def set_filter(self, message_filter: MessageFilter) -> None:
        self.beginResetModel()
        self.filter = message_filter
        self._visible = deque(r for r in self._all if message_filter.matches(r.message))
        self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self._all.clear()
        self._visible.clear()
        self._bytes = 0
        self.endResetModel()

    def message(self, row: int) -> BrokerMessage:
        return self._visible[row].message

    def visible_messages(self) -> list[BrokerMessage]:
        return [r.message for r in self._visible]

    @property
    def kept(self) -> int:
        """Rows held (visible or filtered out)."""
        return len(self._all)

    @property
    def kept_bytes(self) -> int:
        return self._bytes
