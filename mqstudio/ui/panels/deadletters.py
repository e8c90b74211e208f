"""The Dead Letters dock: find dead-letter queues, see why messages died, and act on them.

Owns: `DeadLettersPanel` and `parse_filter`. Left: the dead-letter queues of the connected broker
(`ops.deadletters.find_dead_letter_queues` on the live topology) with their message counts and inflow
rates from `stats()`. Middle: the messages of the chosen queue (peeked, at most `MAX_ROWS`) grouped
by reason / origin / exception and filtered (text, ``header=value``, ``since:`` / ``until:``). Right:
the selected message (`MessageDetailView`). Actions: Edit and Resubmit, Delete selected
(`delete_from_middle`, its side effects spelled out first), Purge (type the name; "Export first…"),
Export/Import JSONL, an Inflow tab (`DeadLetterInflowChart`: dead letters per second by reason
or origin, from the monitoring ring buffers), and Replay Selected / Filtered / All (`ReplayDialog`:
dry run, then a journaled `ops.replay.ReplayJob` — chosen messages by `selection_fingerprint` — with
progress, Pause/Resume and Cancel; `deadletter_actions`). On the first session, unfinished journaled
replays are offered in a non-modal `ResumeBar` (Resume / Abandon / Later).

Every broker call runs on the active `BackendSession` (from `session_provider()`) as a job and comes
back through `ui.qtbridge.JobBridge`: the GUI thread never waits on the network. A 2 s timer polls
stats (one request in flight at most) and notices a new or closed session.
Imports PySide6, mqstudio.core, mqstudio.runtime, mqstudio.ops, backends.base and mqstudio.ui only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabBar,
    QTreeView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mqstudio.backends.base import Backend, BackendKind, BrokerMessage, Capabilities
from mqstudio.core.metrics import Snapshot
from mqstudio.ops import deadletters as dl
from mqstudio.ops import jsonl
from mqstudio.runtime.jobs import BackendSession, Job, SessionState
from mqstudio.ui.panels.deadletter_actions import ReplayActions
from mqstudio.ui.panels.deadletter_chart import DeadLetterInflowChart
from mqstudio.ui.panels.deadletter_dialogs import MessageDetailView, PurgeDialog, ResubmitDialog
from mqstudio.ui.panels.deadletter_models import (
    COLUMNS,
    MAX_ROWS,
    MESSAGE_ROLE,
    DeadLetterFilterProxy,
    DeadLetterGroupModel,
    DeadLetterTableModel,
    DeadRow,
)
from mqstudio.ui.panels.deadletter_replay import (
    JournalOpener,
    ReplayControl,
    ResumeBar,
)
from mqstudio.ui.panels.deadletter_widgets import ElidedLabel, FlowLayout, compact_view
from mqstudio.ui.qtbridge import JobBridge

SessionProvider = Callable[[], BackendSession | None]
POLL_MS = 2000
QUEUE_LIST_MIN = 170  # the queue pane's default width when the names are short (px)
QUEUE_LIST_SHARE = 0.3  # … and its widest default, as a share of the panel
GROUPS = (("No grouping", None), ("Reason", "reason"), ("Origin", "origin"), ("Exception", "exception"))
DELETE_EXPLANATION = (
    "A queue cannot delete from its middle: mqstudio takes messages in order, acknowledges the "
    "selected ones and returns (nack-requeues) the others.\n\n"
    "On RabbitMQ the returned messages are marked redelivered, may come back in another order, count "
    "towards a quorum queue's delivery limit, and are invisible to consumers while held."
)
FILTER_HELP = ("Words match the message text; header=value matches a header; since: and until: take a "
               "time (2024-05-01T12:00, local) or an age (30s, 15m, 2h, 7d)")
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _moment(text: str, now: datetime) -> datetime:
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.astimezone()  # local time as typed


def parse_filter(text: str, now: datetime | None = None) -> dict[str, Any]:
    """``error code=42 since:1h until:2024-05-01T12:00`` → matches() keywords: words with ``=`` are a
    header criterion, ``since:`` / ``until:`` take ISO times (local) or 30s / 15m / 2h / 7d ago, the
    rest is text. Raises ValueError for a time it cannot read."""
    now = now or datetime.now(UTC)
    words: list[str] = []
    criteria: dict[str, Any] = {}
    for word in text.split():
        lower = word.lower()
        if lower.startswith(("since:", "until:")):
            name, _, value = word.partition(":")
            try:
                criteria[name.lower()] = _moment(value, now)
            except ValueError:
                raise ValueError(
                    f"{name}: cannot read {value!r} as a time (2024-05-01T12:00 or 15m)"
                ) from None
        elif "=" in word and not word.startswith("="):
            criteria["header"] = word
        else:
            words.append(word)
    if words:
        criteria["text"] = " ".join(words)
    return criteria


class DeadLettersPanel(ReplayActions, QWidget):
    """Signals: ``message(str)`` for the status bar; ``busy_changed(bool)``."""

    message = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, session_provider: SessionProvider, editor: Any = None,
                 parent: QWidget | None = None, *, journal_path: str | Path | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DeadLettersPanel")
        self._session_provider = session_provider
        self._editor = editor
        self._session: BackendSession | None = None
        self._kind: BackendKind | None = None
        self._capabilities = Capabilities.NONE
        self.dlqs: dict[str, dl.DlqInfo] = {}
        self.counts: dict[str, float] = {}
        self._previous: tuple[float, dict[str, int]] | None = None
        self._jobs: set[JobBridge] = set()
        self._stats_job: JobBridge | None = None
        self._long_job: JobBridge | None = None
        self._journal = JournalOpener(journal_path)
        self._journal_checked = False
        self.replay_control: ReplayControl | None = None
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._timer.start()
        if editor is not None and hasattr(editor, "document_replaced"):
            editor.document_replaced.connect(lambda *_: self.refresh())
        QTimer.singleShot(0, self, self.poll)

    # -- construction ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.queue_list = QTreeWidget(self)
        self.queue_list.setHeaderLabels(["Queue", "Messages", "In/s"])
        self.queue_list.setRootIsDecorated(False)
        self.queue_list.setUniformRowHeights(True)
        header = self.queue_list.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.queue_list.currentItemChanged.connect(lambda *_: self.load_messages())
        compact_view(self.queue_list)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("Look for dead-letter queues again and reload the messages")
        self.refresh_button.clicked.connect(self.refresh)
        self.status = ElidedLabel("Not connected", self)  # one line: the whole text in its tooltip
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.queue_list, 1)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.refresh_button)
        left_layout.addLayout(row)

        self.model = DeadLetterTableModel(self)
        self.proxy = DeadLetterFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.groups = DeadLetterGroupModel(self.proxy, "reason", self)
        self.view = QTreeView(self)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        compact_view(self.view)
        self.group_combo = QComboBox(self)
        for label, key in GROUPS:
            self.group_combo.addItem(f"Group: {label}" if key else label, key)
        self.group_combo.currentIndexChanged.connect(self._on_group_changed)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter: text  header=value  since:1h")
        self.filter_edit.setToolTip(FILTER_HELP)
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMinimumWidth(90)
        self.filter_edit.textChanged.connect(self._on_filter_changed)
        self.count_label = QLabel(self)
        self.controls = QWidget(self)  # beside the Messages / Inflow tabs: one row less
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(6, 0, 0, 0)
        controls.addWidget(self.group_combo)
        controls.addWidget(self.filter_edit, 1)
        controls.addWidget(self.count_label)
        self.peek_note = ElidedLabel("", self)
        self.peek_note.setStyleSheet("color: palette(placeholder-text);")
        self.peek_note.hide()

        self.resubmit_button = QPushButton("Edit && Resubmit…", self)
        self.delete_button = QPushButton("Delete Selected…", self)
        self.purge_button = QPushButton("Purge…", self)
        self.export_button = QPushButton("Export…", self)
        self.import_button = QPushButton("Import…", self)
        self.resubmit_button.clicked.connect(self.edit_and_resubmit)
        self.delete_button.clicked.connect(self.delete_selected)
        self.purge_button.clicked.connect(self.purge_dialog)
        self.export_button.clicked.connect(self.export_dialog)
        self.import_button.clicked.connect(self.import_dialog)
        self.replay_button = QPushButton("Replay", self)
        self.replay_button.setToolTip("Send dead letters back where they died (or to a chosen target)")
        menu = QMenu(self.replay_button)
        self.replay_selected_action = menu.addAction("Replay Selected…")
        self.replay_filtered_action = menu.addAction("Replay Filtered…")
        self.replay_all_action = menu.addAction("Replay All…")
        self.replay_selected_action.triggered.connect(lambda: self.replay_dialog("selected"))
        self.replay_filtered_action.triggered.connect(lambda: self.replay_dialog("filtered"))
        self.replay_all_action.triggered.connect(lambda: self.replay_dialog("all"))
        self.replay_button.setMenu(menu)
        actions = FlowLayout()  # one row while it fits; wraps rather than widen the dock
        actions.setSpacing(4)
        for button in (self.replay_button, self.resubmit_button, self.delete_button, self.purge_button,
                       self.export_button, self.import_button):
            actions.addWidget(button)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_job)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

        middle = QWidget(self)
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(self.peek_note)
        middle_layout.addWidget(self.view, 1)
        middle_layout.addLayout(progress_row)
        middle_layout.addLayout(actions)

        self.chart = DeadLetterInflowChart(self)
        # Messages / Inflow: a tab bar in one row with the filter controls, over a stack of the two pages
        self.tabs = QStackedWidget(self)
        self.tabs.addWidget(middle)
        self.tabs.addWidget(self.chart)
        self.view_tabs = QTabBar(self)
        self.view_tabs.setDocumentMode(True)
        self.view_tabs.setExpanding(False)
        self.view_tabs.setDrawBase(False)
        self.view_tabs.setUsesScrollButtons(False)
        self.view_tabs.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # filter gives way
        self.view_tabs.addTab("Messages")
        self.view_tabs.addTab("Inflow")
        self.view_tabs.setTabToolTip(1, "Dead letters per second over time, by reason or by origin")
        self.view_tabs.currentChanged.connect(self.tabs.setCurrentIndex)
        center = QWidget(self)
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 0)
        center_layout.setSpacing(4)
        top_row = QHBoxLayout()
        top_row.setSpacing(0)
        top_row.addWidget(self.view_tabs, 0, Qt.AlignmentFlag.AlignLeft)  # left also without the filter
        top_row.addWidget(self.controls, 1)
        center_layout.addLayout(top_row)
        center_layout.addWidget(self.tabs, 1)
        self.detail = MessageDetailView(self)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        for widget in (left, center, self.detail):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([QUEUE_LIST_MIN, 760, 450])
        self.splitter.splitterMoved.connect(self._on_splitter_moved)
        self._user_sized = False
        self._message_sizes: list[int] = []
        self.resume_bar = ResumeBar(self)
        self.resume_bar.resume_requested.connect(self.resume_replay)
        self.resume_bar.abandon_requested.connect(self.abandon_replay)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.resume_bar)
        layout.addWidget(self.splitter, 1)
        self._set_view_model()
        self._update_actions()

    def _on_tab_changed(self, index: int) -> None:
        self.view_tabs.setCurrentIndex(index)
        messages = index == 0
        if not messages and self.detail.isVisible():
            self._message_sizes = self.splitter.sizes()
        self.controls.setVisible(messages)  # the filter is the message list's
        self.detail.setVisible(messages)  # the chart takes its room; given back on return
        if messages and self._message_sizes:
            left = self.splitter.sizes()[0]
            total = sum(self.splitter.sizes())
            _, middle, detail = self._message_sizes
            share = detail / (middle + detail) if middle + detail else 3 / 8
            detail = round((total - left) * share)
            self.splitter.setSizes([left, total - left - detail, detail])

    def _on_splitter_moved(self) -> None:
        self._user_sized = True  # a dragged splitter stays where the user put it

    def queue_list_width(self) -> int:
        """The queue pane's width that shows every queue name, its count and rate, and the status line
        beside Refresh, unelided."""
        tree = self.queue_list
        metrics = tree.fontMetrics()
        items = (tree.topLevelItem(i) for i in range(tree.topLevelItemCount()))
        names = [item.text(0) for item in items if item is not None]
        name = max((metrics.horizontalAdvance(n) for n in [*names, "Queue"]), default=0)
        header = tree.header()
        numbers = sum(max(header.sectionSizeHint(c), tree.sizeHintForColumn(c)) for c in (1, 2))
        chrome = 2 * tree.frameWidth() + tree.style().pixelMetric(
            tree.style().PixelMetric.PM_ScrollBarExtent) + 2 * metrics.horizontalAdvance("M")
        status = (metrics.horizontalAdvance(self.status.text()) + self.refresh_button.sizeHint().width()
                  + 2 * metrics.horizontalAdvance("M"))
        return max(QUEUE_LIST_MIN, name + numbers + chrome, status)

    def fit_queue_list(self) -> None:
        """Give the queue pane the width its names need (at most `QUEUE_LIST_SHARE` of the panel),
        unless the user has dragged the splitter."""
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if self._user_sized:
            return
        if total <= 0 or not self.splitter.isVisible():  # not laid out yet: once it is
            QTimer.singleShot(0, self, self._fit_when_shown)
            return
        left = min(self.queue_list_width(), int(total * QUEUE_LIST_SHARE))
        rest = total - left
        if sizes[2] > 0:  # message list and detail share the rest 5 : 3
            middle = rest * 5 // 8
            self.splitter.setSizes([left, middle, rest - middle])
        else:
            self.splitter.setSizes([left, rest, 0])

    def _fit_when_shown(self) -> None:
        if self.splitter.isVisible() and sum(self.splitter.sizes()) > 0:
            self.fit_queue_list()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self, self._fit_when_shown)  # a dock raised from behind another tab

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.fit_queue_list()

    def _set_view_model(self) -> None:
        grouped = self.group_combo.currentData() is not None
        self.view.setModel(self.groups if grouped else self.proxy)
        self.view.setRootIsDecorated(grouped)
        if grouped:
            self.view.expandAll()
            self.groups.modelReset.connect(self.view.expandAll, Qt.ConnectionType.UniqueConnection)
        header = self.view.header()
        widths = (142, 72, 90, 150, 44, 60)
        for column, width in enumerate(widths):
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        self._on_selection()

    # -- state -----------------------------------------------------------------------------------
    @property
    def session(self) -> BackendSession | None:
        return self._session

    @property
    def current_queue(self) -> str | None:
        item = self.queue_list.currentItem()
        return None if item is None else str(item.data(0, Qt.ItemDataRole.UserRole))

    def _connected(self) -> bool:
        return self._session is not None and self._session.state is SessionState.CONNECTED

    def poll(self) -> None:
        """Timer tick: notice a new or closed session, else refresh the counts."""
        session = self._session_provider()
        if session is self._session and not self.isVisible():
            return  # a hidden dock costs the broker nothing
        if session is not self._session:
            self._session = session
            self._kind, self._capabilities, self._previous = None, Capabilities.NONE, None
            self.dlqs, self.counts = {}, {}
            self.queue_list.clear()
            self.model.clear()
            self.chart.reset()
            self.refresh()
            self._check_journal()
            return
        if self._connected() and not self.dlqs:
            self.refresh()
        elif self._connected() and self._stats_job is None:
            self._poll_stats()

    def refresh(self) -> None:
        """Discover the dead-letter queues again, then reload the chosen queue's messages."""
        if self._session is None:
            self.status.setText("Not connected: Broker → Connect")
            self._update_actions()
            return

        def discover(backend: Backend) -> tuple[BackendKind, Capabilities, list[dl.DlqInfo]]:
            topology = backend.fetch_topology().topology
            return backend.kind, backend.capabilities, dl.find_dead_letter_queues(topology)

        self.status.setText("Looking for dead-letter queues…")
        bridge = self._call(discover, "Find dead-letter queues")
        if bridge is not None:
            bridge.finished.connect(self._on_discovered)

    def _on_discovered(self, result: object) -> None:
        assert isinstance(result, tuple)
        self._kind, self._capabilities, infos = result
        current = self.current_queue
        self.dlqs = {info.name: info for info in infos}
        self.chart.set_dead_letter_queues((info.kind, info.name) for info in infos)
        self.queue_list.blockSignals(True)
        self.queue_list.clear()
        for info in infos:
            item = QTreeWidgetItem(self.queue_list, [info.name, "", ""])
            item.setData(0, Qt.ItemDataRole.UserRole, info.name)
            item.setToolTip(0, info.why)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.queue_list.blockSignals(False)
        self.status.setText(f"{len(infos)} dead-letter queue{'s' if len(infos) != 1 else ''}"
                            if infos else "No dead-letter queues found")
        self.fit_queue_list()
        self._poll_stats()
        names = list(self.dlqs)
        if names:
            self.select_queue(current if current in self.dlqs else names[0])
        self._update_actions()

    def select_queue(self, name: str) -> None:
        for i in range(self.queue_list.topLevelItemCount()):
            item = self.queue_list.topLevelItem(i)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == name:
                if self.queue_list.currentItem() is item:
                    self.load_messages()
                else:
                    self.queue_list.setCurrentItem(item)
                return

    def _poll_stats(self) -> None:
        if not self._capabilities & Capabilities.STATS:
            return
        bridge = self._call(lambda backend: backend.stats(), "Dead-letter queue stats", track_stats=True)
        if bridge is not None:
            bridge.finished.connect(self._on_stats)

    def _on_stats(self, snapshot: object) -> None:
        assert isinstance(snapshot, Snapshot)
        self.chart.feed(snapshot)
        published: dict[str, int] = {}
        for i in range(self.queue_list.topLevelItemCount()):
            item = self.queue_list.topLevelItem(i)
            if item is None:
                continue
            name = str(item.data(0, Qt.ItemDataRole.UserRole))
            info = self.dlqs.get(name)
            obj = next((o for o in snapshot.objects if o.name == name and o.kind == (info.kind if info
                        else "queue")), None)
            if obj is None:
                continue
            count = obj.gauges.get("ready", obj.gauges.get("end_offset"))
            if count is not None:
                self.counts[name] = count
                item.setText(1, f"{int(count):,}")
            inflow = obj.counters.get("published", obj.counters.get("produced"))
            if inflow is not None:
                published[name] = inflow
                if self._previous is not None and name in self._previous[1]:
                    dt = snapshot.timestamp - self._previous[0]
                    rate = (inflow - self._previous[1][name]) / dt if dt > 0 else 0.0
                    item.setText(2, f"{rate:.1f}")
        self._previous = (snapshot.timestamp, published)

    # -- messages --------------------------------------------------------------------------------
    def load_messages(self) -> None:
        queue = self.current_queue
        self.detail.show_message(None)
        if queue is None:
            self.model.clear()
            self._update_actions()
            return
        def read(backend: Any) -> tuple[list[Any], str]:
            # Listing is a peek; a backend that can only peek with side effects (RabbitMQ: get +
            # requeue) says what they are, and the panel shows it next to the list.
            side_effects = getattr(backend, "peek_side_effects", None)
            note = side_effects(queue) if callable(side_effects) else ""
            return backend.peek(queue, MAX_ROWS + 1), note

        bridge = self._call(read, f"Read {queue}")
        if bridge is not None:
            bridge.finished.connect(lambda result, q=queue: self._on_messages(q, result))
            self.count_label.setText("loading…")

    def _on_messages(self, queue: str, result: object) -> None:
        if queue != self.current_queue:
            return  # another queue was chosen meanwhile
        assert isinstance(result, tuple)
        messages, note = result
        self.peek_note.setText(note)
        self.peek_note.setVisible(bool(note))
        self.model.set_messages(messages)
        self._update_count()
        self._update_actions()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        more = "+" if self.model.truncated else ""
        self.count_label.setText(f"{shown} of {total}{more}" if shown != total else f"{total}{more} messages")

    def _on_group_changed(self) -> None:
        key = self.group_combo.currentData()
        if key is not None:
            self.groups.set_key(key)
        self._set_view_model()

    def _on_filter_changed(self, text: str) -> None:
        try:
            criteria = parse_filter(text)
        except ValueError as exc:
            self.filter_edit.setToolTip(str(exc))
            self.filter_edit.setStyleSheet("QLineEdit { color: #c0392b; }")
            return
        self.filter_edit.setToolTip(FILTER_HELP)
        self.filter_edit.setStyleSheet("")
        self.proxy.set_criteria(**criteria)
        self._update_count()

    def _rows(self, indexes: list[QModelIndex]) -> list[DeadRow]:
        rows = [index.data(MESSAGE_ROLE) for index in indexes if index.column() == 0]
        return [row for row in rows if isinstance(row, DeadRow)]

    def selected_rows(self) -> list[DeadRow]:
        return self._rows(self.view.selectionModel().selectedRows())

    def filtered_rows(self) -> list[DeadRow]:
        return self.proxy.rows()

    def _on_selection(self) -> None:
        rows = self.selected_rows()
        self.detail.show_message(rows[0].message if len(rows) == 1 else None)
        self._update_actions()

    def _update_actions(self) -> None:
        queue, busy = self.current_queue, self._long_job is not None
        rabbit = self._kind is not None and self._kind is not BackendKind.KAFKA
        has_rows = self.model.rowCount() > 0
        selected = len(self.selected_rows())
        self.resubmit_button.setEnabled(not busy and selected == 1)
        self.delete_button.setEnabled(not busy and rabbit and selected > 0)
        self.purge_button.setEnabled(not busy and queue is not None
                                     and bool(self._capabilities & Capabilities.PURGE))
        self.export_button.setEnabled(not busy and queue is not None and has_rows)
        self.import_button.setEnabled(not busy and queue is not None)
        self.replay_button.setEnabled(not busy and queue is not None and has_rows)
        self.replay_selected_action.setEnabled(selected > 0)
        self.replay_filtered_action.setEnabled(self.proxy.rowCount() > 0)
        self.refresh_button.setEnabled(self._session is not None)

    # -- actions ---------------------------------------------------------------------------------
    def edit_and_resubmit(self) -> ResubmitDialog | None:
        rows, queue = self.selected_rows(), self.current_queue
        if len(rows) != 1 or queue is None:
            return None
        dialog = ResubmitDialog(rows[0].message, kafka=self._kind is BackendKind.KAFKA, parent=self)
        dialog.accepted.connect(lambda: self.resubmit(queue, rows[0].message, dialog))
        dialog.open()
        return dialog

    def resubmit(self, queue: str, original: BrokerMessage, dialog: ResubmitDialog) -> JobBridge | None:
        new = dialog.outgoing()
        bridge = self._long(lambda backend, job: dl.resubmit(backend, queue, original, new, cancel=job),
                            "Resubmit")
        if bridge is not None:
            bridge.finished.connect(self._on_resubmitted)
        return bridge

    def _on_resubmitted(self, result: object) -> None:
        assert isinstance(result, dl.ResubmitResult)
        if not result.found:
            self._say("The original message is no longer in the queue; nothing was published")
        elif result.published is not None and not (result.published.confirmed and result.published.routed):
            detail = result.published.detail or "not routed"
            self._say(f"Resubmitted message was not accepted ({detail}); the original was kept")
        else:
            self._say("Resubmitted; the original was removed" if result.removed
                      else "Published the edited copy")
        self.load_messages()

    def delete_selected(self, *, confirm: bool = True) -> JobBridge | None:
        rows, queue = self.selected_rows(), self.current_queue
        if not rows or queue is None:
            return None
        if confirm:
            answer = QMessageBox.question(
                self, "Delete Selected Messages",
                f"Delete {len(rows)} message{'s' if len(rows) != 1 else ''} from {queue}?\n\n"
                + DELETE_EXPLANATION,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
        messages = [row.message for row in rows]

        def delete(backend: Backend, job: Job[Any]) -> dl.DeleteResult:
            return dl.delete_from_middle(backend, queue, dl.selected(messages), len(messages),
                                         cancel=job, progress=job.progress)

        bridge = self._long(delete, f"Delete from {queue}")
        if bridge is not None:
            bridge.finished.connect(lambda r: self._done(
                f"Deleted {r.deleted} of {len(messages)}; {r.requeued} returned to {queue}"))
        return bridge

    def purge_dialog(self) -> PurgeDialog | None:
        queue = self.current_queue
        if queue is None:
            return None
        count = self.counts.get(queue)
        dialog = PurgeDialog(queue, int(count) if count is not None else None, self)
        dialog.export_requested.connect(self.export_dialog)
        dialog.accepted.connect(lambda: self.purge(queue, dialog.typed))
        dialog.open()
        return dialog

    def purge(self, queue: str, typed: str) -> JobBridge | None:
        bridge = self._long(lambda backend, _job: dl.purge(backend, queue, typed), f"Purge {queue}")
        if bridge is not None:
            bridge.finished.connect(lambda n: self._done(f"Purged {n} messages from {queue}"))
        return bridge

    def export_dialog(self) -> None:
        queue = self.current_queue
        if queue is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, f"Export {queue}", f"{queue}.jsonl",
                                              "JSON Lines (*.jsonl);;All files (*)")
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> JobBridge | None:
        queue = self.current_queue
        if queue is None:
            return None
        bridge = self._long(
            lambda backend, job: jsonl.export_messages(backend, queue, path, job.progress, job),
            f"Export {queue}",
        )
        if bridge is not None:
            bridge.finished.connect(lambda r: self._say(f"Exported {r.count} messages to {r.path}"))
        return bridge

    def import_dialog(self) -> None:
        queue = self.current_queue
        if queue is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Import messages", "", "JSON Lines (*.jsonl);;All files (*)"
        )
        if not path:
            return
        target, ok = QInputDialog.getText(self, "Import messages", "Publish the messages to queue/topic:",
                                          text=queue)
        if ok and target:
            self.import_from(path, target)

    def import_from(self, path: str, target: str) -> JobBridge | None:
        bridge = self._long(
            lambda backend, job: jsonl.import_messages(
                path, backend, target, progress=job.progress, cancel=job
            ),
            f"Import into {target}",
        )
        if bridge is not None:
            bridge.finished.connect(lambda r: self._done(
                f"Imported {r.published} messages into {target}"
                + (f"; {r.unconfirmed} not confirmed, {r.unroutable} unroutable"
                   if r.unconfirmed or r.unroutable else "")))
        return bridge

    def _done(self, text: str) -> None:
        self._say(text)
        self.reload()

    def reload(self) -> None:
        self.load_messages()
        self._poll_stats()

    # -- jobs ------------------------------------------------------------------------------------
    def _call(
        self, fn: Callable[[Backend], Any], title: str, *, track_stats: bool = False
    ) -> JobBridge | None:
        session = self._session
        if session is None:
            return None
        try:
            bridge = JobBridge(session.call(fn, title=title), self)
        except RuntimeError:  # the session closed meanwhile
            return None
        self._track(bridge)
        bridge.failed.connect(lambda msg: self._say(f"{title}: {msg}"))
        if track_stats:
            self._stats_job = bridge
            bridge.settled.connect(lambda: setattr(self, "_stats_job", None))
        return bridge

    def _long(self, fn: Callable[[Backend, Job[Any]], Any], title: str) -> JobBridge | None:
        """A job with the progress bar and Cancel; one at a time."""
        session = self._session
        if session is None or self._long_job is not None:
            return None
        bridge = JobBridge(session.call_job(fn, title=title), self)
        self._track(bridge)
        self._long_job = bridge
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"{title}…")
        self.progress.show()
        self.cancel_button.show()
        self.busy_changed.emit(True)
        bridge.progressed.connect(self._on_progress)
        bridge.failed.connect(lambda msg: self._say(f"{title} failed: {msg}", warn=True))
        bridge.cancelled.connect(lambda: self._say(f"{title} was cancelled"))
        bridge.settled.connect(self._on_long_settled)
        self._update_actions()
        return bridge

    def _on_progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(total, 0))
        if total > 0:
            self.progress.setValue(min(done, total))
        self.progress.setFormat(what or "%p%")

    def _on_long_settled(self) -> None:
        self._long_job = None
        self.progress.hide()
        self.cancel_button.hide()
        self.busy_changed.emit(False)
        self._update_actions()

    def cancel_job(self) -> None:
        if self._long_job is not None:
            self._long_job.cancel()

    def _track(self, bridge: JobBridge) -> None:
        self._jobs.add(bridge)
        bridge.settled.connect(lambda: self._jobs.discard(bridge))

    def _say(self, text: str, *, warn: bool = False) -> None:
        self.status.setText(text)
        self.message.emit(text)
        if warn:  # not exec(): a job's failure must not start a nested event loop
            box = QMessageBox(QMessageBox.Icon.Warning, "Dead Letters", text, parent=self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    @property
    def busy(self) -> bool:
        return self._long_job is not None

    @property
    def headers(self) -> tuple[str, ...]:
        return COLUMNS


def install(window: Any) -> DeadLettersPanel:
    """Add the Dead Letters dock to the main window (tabbed with Problems, listed under View → Panels);
    the panel follows the Broker menu's session (`window.broker.session`)."""
    panel = DeadLettersPanel(lambda: getattr(window.broker, "session", None), window.editor, window)
    dock = QDockWidget("Dead Letters", window)
    dock.setObjectName("DeadLettersDock")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    lint_dock = getattr(window, "lint_dock", None)
    if lint_dock is not None:
        window.tabifyDockWidget(lint_dock, dock)
        lint_dock.raise_()
    docks_menu = getattr(window, "docks_menu", None)
    if docks_menu is not None:
        docks_menu.addAction(dock.toggleViewAction())
    panel.message.connect(window.show_message)
    monitoring = getattr(window, "monitoring", None)
    if monitoring is not None:  # chart from the window's monitoring ring buffers (an hour of history)
        panel.chart.use_store(lambda: monitoring.panel.store)
    dock.visibilityChanged.connect(lambda visible: panel.poll() if visible else None)
    return panel
