"""Dead-letter inflow over time, by reason or by origin: the Inflow tab of the Dead Letters panel.

Owns: `DeadLetterInflowChart`, `inflow_series` (what the chart draws, Qt-free) and `InflowMode`.

The data are the monitoring ring buffers (`ui.monitoring.series.SeriesStore`): per-second rates of the
cumulative counters every backend's ``stats()`` reports. The chart reads the Throughput panel's store
(the window's one sampler, an hour of history) when the panel is given it (`use_store`), otherwise a
store of its own fed with the snapshots the Dead Letters panel polls anyway (`feed`). Either way it
redraws from a timer, once a second and only when the store moved — never per message.

Where the breakdown comes from: the embedded broker counts dead letters per queue that dead-lettered
them (``dead_lettered``: by origin) and per reason (``dead_lettered.<reason>``: rejected, expired,
maxlen, delivery_limit). RabbitMQ's management API and Kafka count neither, so there the chart shows
what every broker has: the inflow of each dead-letter queue (its ``published``) or topic
(``produced``), and says so.
Imports PySide6, pyqtgraph, numpy, mqstudio.core and mqstudio.ui only.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from enum import StrEnum

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mqstudio.core.metrics import Snapshot
from mqstudio.ui.monitoring.series import SeriesStore, SnapshotRecorder

__all__ = ["DeadLetterInflowChart", "InflowMode", "Series", "inflow_series"]

REFRESH_MS = 1000
WINDOWS = (("5 min", 300), ("15 min", 900), ("1 h", 3600))
COLORS = ("#d64545", "#3d8fd8", "#e08a1c", "#27a35a", "#9a5fd0", "#17a2a2", "#c2469b", "#8d9440")
REASON_LABELS = {"rejected": "rejected", "expired": "expired (TTL)", "maxlen": "max length",
                 "delivery_limit": "delivery limit"}
Series = dict[str, tuple[np.ndarray, np.ndarray]]


class InflowMode(StrEnum):
    REASON = "reason"
    ORIGIN = "origin"


def inflow_series(store: SeriesStore, mode: InflowMode, seconds: float,
                  dead_letter_queues: Iterable[tuple[str, str]] = ()) -> tuple[Series, str]:
    """(label → (t, msg/s)) over the last `seconds`, and a note on what it shows.

    By reason: each ``dead_lettered.<reason>`` summed over the queues. By origin: each queue's
    ``dead_lettered``. Where the broker has neither counter: the inflow of each of
    `dead_letter_queues` (``(kind, name)``: queue → ``published``, topic → ``produced``)."""
    keys = store.keys()
    t = store.times(seconds)
    out: Series = {}
    if mode is InflowMode.REASON:
        reasons = sorted({k[3].split(".", 1)[1] for k in keys if k[0] == "queue" and
                          k[3].startswith("dead_lettered.")})
        for reason in reasons:
            total = np.zeros(len(t))
            for key in keys:
                if key[0] == "queue" and key[3] == f"dead_lettered.{reason}":
                    total += store.window(key, seconds)[1]
            out[REASON_LABELS.get(reason, reason)] = (t, total)
        note = "Dead letters per second by reason, all queues together"
    else:
        for key in keys:
            if key[0] == "queue" and key[3] == "dead_lettered":
                y = store.window(key, seconds)[1]
                if len(y) and y.max() > 0:  # every queue has the counter; origins are those that used it
                    out[key[2] or "(default)"] = (t, y)
        note = "Dead letters per second by the queue they died in"
    if any(k[3] == "dead_lettered" or k[3].startswith("dead_lettered.") for k in keys if k[0] == "queue"):
        return out, note
    out = {}
    for kind, name in dead_letter_queues:
        metric = "produced" if kind == "topic" else "published"
        found = next((k for k in keys if k[0] == kind and k[2] == name and k[3] == metric), None)
        if found is not None:
            out[name] = (t, store.window(found, seconds)[1])
    what = "reason" if mode is InflowMode.REASON else "origin"
    note = (f"This broker's statistics do not count dead letters by {what}: showing messages per second "
            "into each dead-letter queue")
    return out, note


class DeadLetterInflowChart(QWidget):
    """The chart, its By reason / By origin toggle and a history window. `use_store` to read the
    monitoring store; otherwise `feed` it snapshots."""

    def __init__(self, parent: QWidget | None = None, *, refresh_ms: int = REFRESH_MS) -> None:
        super().__init__(parent)
        self.setObjectName("DeadLetterInflowChart")
        self._recorder = SnapshotRecorder(SeriesStore())
        self._shared: Callable[[], SeriesStore | None] | None = None
        self._mode = InflowMode.REASON
        self._window_s = 900
        self._queues: list[tuple[str, str]] = []
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._drawn: tuple[int, int, str, int] | None = None
        self.series: Series = {}
        self.draws = 0
        self._build()
        self.apply_theme()
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def _build(self) -> None:
        self.reason_button = self._toggle("By reason", "Dead letters per second by why they died")
        self.origin_button = self._toggle("By origin", "Dead letters per second by the queue they died in")
        self.reason_button.setChecked(True)
        group = QButtonGroup(self)
        group.setExclusive(True)
        group.addButton(self.reason_button)
        group.addButton(self.origin_button)
        self.reason_button.toggled.connect(
            lambda on: self.set_mode(InflowMode.REASON if on else InflowMode.ORIGIN))
        self.window_box = QComboBox(self)
        for text, seconds in WINDOWS:
            self.window_box.addItem(text, seconds)
        self.window_box.setCurrentIndex(1)
        self.window_box.setToolTip("How much history to show")
        self.window_box.currentIndexChanged.connect(
            lambda _i: self.set_window(int(self.window_box.currentData())))
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.reason_button)
        bar.addWidget(self.origin_button)
        bar.addWidget(self.note, 1)
        bar.addWidget(self.window_box)
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setMinimumHeight(60)  # the dock may be short; the plot shrinks with it
        self.plot = self.graphics.addPlot(row=0, col=0, axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.12)
        self.plot.setLabel("left", "msg/s")
        self.plot.getAxis("left").setWidth(52)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getViewBox().setLimits(yMin=0)
        column = self.graphics.ci.addLayout(row=0, col=1)  # the legend beside the plot, never over it
        self.legend = pg.LegendItem(offset=None, verSpacing=-4, labelTextSize="9pt", frame=False)
        column.addItem(self.legend, row=0, col=0)
        column.addItem(pg.GraphicsWidget(), row=1, col=0)
        column.layout.setRowStretchFactor(1, 1)
        column.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        column.setMaximumWidth(170)
        self.graphics.ci.layout.setColumnStretchFactor(0, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.graphics, 1)

    def _toggle(self, text: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setCheckable(True)
        button.setAutoRaise(False)
        return button

    # -- data ------------------------------------------------------------------------------------
    @property
    def store(self) -> SeriesStore:
        shared = self._shared() if self._shared is not None else None
        return shared if shared is not None else self._recorder.store

    @property
    def mode(self) -> InflowMode:
        return self._mode

    def use_store(self, provider: Callable[[], SeriesStore | None] | None) -> None:
        """Read the monitoring store `provider()` returns (None: the chart's own, fed by `feed`)."""
        self._shared = provider
        self._drawn = None

    def feed(self, snapshot: Snapshot) -> None:
        """A snapshot for the chart's own store (ignored while a shared store is in use)."""
        if self._shared is None or self._shared() is None:
            self._recorder.feed(snapshot)

    def reset(self) -> None:
        """A new session: forget the own store's history (a shared store follows its sampler)."""
        self._recorder.previous = None
        self._recorder.store.clear()
        self._drawn = None

    def set_dead_letter_queues(self, queues: Iterable[tuple[str, str]]) -> None:
        """``(kind, name)`` of the dead-letter queues/topics (charted where there are no reasons)."""
        self._queues = list(queues)
        self._drawn = None

    def set_mode(self, mode: InflowMode | str) -> None:
        self._mode = InflowMode(mode)
        (self.reason_button if self._mode is InflowMode.REASON else self.origin_button).setChecked(True)
        self._drawn = None
        self.refresh(force=True)

    def set_window(self, seconds: int) -> None:
        self._window_s = seconds
        self._drawn = None
        self.refresh(force=True)

    # -- drawing ---------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Timer tick: redraw when the store moved (and the chart can be seen)."""
        if not force and not self.isVisible():
            return
        store = self.store
        state = (id(store), store.version, self._mode.value, self._window_s)
        if state == self._drawn:
            return
        self.series, text = inflow_series(store, self._mode, self._window_s, self._queues)
        if not len(store):
            text = "Waiting for statistics… (the chart fills from the broker's counters every second)"
        elif not self.series:
            text += " — none so far"
        self.note.setText(text)
        labels = list(self.series)
        for label, curve in self._curves.items():
            curve.setVisible(label in self.series)
        self.legend.clear()
        peak = 0.0
        for index, label in enumerate(labels):
            curve = self._curves.get(label)
            if curve is None:
                curve = pg.PlotDataItem(clipToView=True, autoDownsample=True, downsampleMethod="peak")
                self.plot.addItem(curve)
                self._curves[label] = curve
            curve.setPen(pg.mkPen(COLORS[index % len(COLORS)], width=2))
            t, y = self.series[label]
            curve.setData(t, y)
            curve.setVisible(True)
            self.legend.addItem(curve, html.escape(label))
            if len(y):
                peak = max(peak, float(y.max()))
        if len(store):  # the window, or less while the history is shorter (at least a minute)
            last = store.last_time
            first = float(store.times(self._window_s)[0])
            left = max(last - self._window_s, min(first, last - 60))
            self.plot.setXRange(left, last + (last - left) * 0.02, padding=0)  # the newest point shows
        self.plot.setYRange(0, max(peak * 1.15, 1.0), padding=0)
        self._drawn = state
        self.draws += 1

    def apply_theme(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        self.graphics.setBackground(palette.color(QPalette.ColorRole.Base))
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(muted))
            axis.setTextPen(pg.mkPen(text))
        self.legend.setLabelTextColor(text)
        self.note.setStyleSheet(f"color: {muted.name()};")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_theme()
        super().changeEvent(event)

    def showEvent(self, event: object) -> None:  # draw at once when the tab is opened
        super().showEvent(event)  # type: ignore[arg-type]
        QTimer.singleShot(0, self, lambda: self.refresh(force=True))

