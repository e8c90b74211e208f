"""The Throughput panel: live rates and depths of the selected objects, the pinned ones, or the broker.

Owns: `ThroughputPanel`, `Scope`. Two x-linked pyqtgraph plots share a clock axis:
rates (published, delivered, acked, redelivered, dead-lettered — by reason when the broker says —,
unroutable, Kafka produced) in msg/s, and depths (ready, unacked, Kafka group lag) in messages. Legends
sit in their own column, never over the data; a click on a legend entry hides or shows its curve.

Performance contract (ARCHITECTURE.md, "Live panels poll snapshots on a timer"): one QTimer (~100 ms)
picks up the sampler's new snapshots with `Sampler.since` (a lock held for microseconds, never a wait on
the broker), records them into a `SeriesStore`, and redraws only when the store moved. Curves are
created once per series and only ever updated with ``setData`` on views of the store's rings; clipping
to the view, automatic peak downsampling, no antialiasing and the skipped finite check are set once on
each curve (passing them to every ``setData`` would mark its style dirty and restyle it each frame).
A frame sets both ranges first (y from the peaks of the visible curves, with hysteresis, so the axes
relabel only when the scale really changes), holding the curves' own reaction to it, then calls
``setData`` once per visible curve: each curve is built once per frame; and it applies the ranges to
the view boxes' transforms at once (pyqtgraph would do it at the start of the next paint, and moving
every item there makes Qt paint the plots a second time). The grid is a `GridLines` item
(the axes' grid would repaint them with every curve update), and the depth plot is hidden while no
depth series is charted (the rates plot then shows the time labels).

Imports PySide6, pyqtgraph, numpy, mqstudio.core, mqstudio.runtime and mqstudio.ui.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mqstudio.runtime.sampler import Sampler
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.monitoring.plotparts import GridLines, LiveCurve, TimeAxis
from mqstudio.ui.monitoring.series import ObjectKey, SeriesKey, SeriesStore, SnapshotRecorder, object_key_for

BROKER: ObjectKey = ("broker", "", "")
REFRESH_MS = 100
LEGEND_WIDTH = 220
WINDOWS = (("1 min", 60), ("5 min", 300), ("15 min", 900), ("1 h", 3600))
RATE_METRICS = ("published", "delivered", "acked", "redelivered", "dead_lettered", "unroutable", "produced")
DEPTH_METRICS = ("ready", "unacked", "lag")
_LABELS = {"dead_lettered": "dead-lettered", "produced": "produced", "lag": "group lag"}
# Mid-saturation colours that read on white and on the dark theme's near-black alike.
METRIC_COLORS = {
    "published": "#3d8fd8", "delivered": "#27a35a", "acked": "#17a2a2", "redelivered": "#e08a1c",
    "dead_lettered": "#d64545", "unroutable": "#9a5fd0", "produced": "#3d8fd8",
    "ready": "#3d8fd8", "unacked": "#e08a1c", "lag": "#c2469b",
}
_REASON_COLORS = ("#d64545", "#f07167", "#b0303a", "#ff9f9f", "#8c1c24")
PALETTE = ("#3d8fd8", "#27a35a", "#e08a1c", "#d64545", "#9a5fd0", "#17a2a2", "#c2469b", "#8d9440",
           "#5b6ee1", "#d0743c")
_CURVE_OPTIONS: dict[str, Any] = {
    "clipToView": True, "autoDownsample": True, "downsampleMethod": "peak", "skipFiniteCheck": True,
    "antialias": False,
    # Rates and depths never reach the magnitudes this guards against (it exists for zooming into
    # huge values); left on, every y-range change would rebuild every curve once more.
    "dynamicRangeLimit": None,
}
_UNLIMITED = 16_777_215.0  # QWIDGETSIZE_MAX
GRID_STRENGTH = 0.12  # grid lines look like 12 % of the text colour over the background


class Scope(StrEnum):
    SELECTION = "selection"
    PINNED = "pinned"
    BROKER = "broker"


def _metric_label(metric: str) -> str:
    if metric.startswith("dead_lettered."):
        return f"dead-lettered ({metric.split('.', 1)[1]})"
    return _LABELS.get(metric, metric)


def _object_label(obj: ObjectKey) -> str:
    return "broker" if obj == BROKER else obj[2] or "(default)"


def _series_label(key: SeriesKey, many: bool) -> str:
    metric = _metric_label(key[3])
    return f"{_object_label(key[:3])} · {metric}" if many else metric


def _format_count(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _LeaveFilter(QObject):
    """Hides the hover read-out when the pointer leaves the plots."""

    def __init__(self, panel: ThroughputPanel) -> None:
        super().__init__(panel)
        self._panel = panel

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:
            self._panel.hide_readout()
        return False


class ThroughputPanel(QWidget):
    """Live charts. Feed it with `set_sampler`; it follows ``editor.selection_changed``.

    Signals: ``scope_changed(str)``. The refresh timer runs while the panel exists; `pause` freezes the
    charts (recording goes on, so resuming shows what happened meanwhile)."""

    scope_changed = Signal(str)

    def __init__(
        self,
        editor: DocumentEditor | None = None,
        parent: QWidget | None = None,
        *,
        store: SeriesStore | None = None,
        refresh_ms: int = REFRESH_MS,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ThroughputPanel")
        self.editor = editor
        self.recorder = SnapshotRecorder(store if store is not None else SeriesStore())
        self.sampler: Sampler | None = None
        self._seq = 0
        self._scope = Scope.SELECTION
        self._selection: list[ObjectKey] = []
        self._pinned: list[ObjectKey] = []
        self._window_s = 300
        self._paused = False
        self._curves: dict[SeriesKey, pg.PlotDataItem] = {}
        self._shown: list[SeriesKey] = []
        self._user_hidden: set[SeriesKey] = set()
        self._restyling = False
        self._drawn_version = -1
        self._keys_seen = -1
        self._layout_dirty = True
        self._status = ""
        self._y_tops: dict[int, float] = {}
        self.draws = 0  # redraws done (tests and the benchmark read it)
        self._build()
        self.apply_theme()
        if editor is not None:
            editor.selection_changed.connect(self.set_selection_ids)
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self._update_status(force=True)

    # -- construction --------------------------------------------------------------------------
    def _build(self) -> None:
        self.scope_box = QComboBox(self)
        for text, scope in (("Selection", Scope.SELECTION), ("Pinned", Scope.PINNED),
                            ("Whole broker", Scope.BROKER)):
            self.scope_box.addItem(text, scope.value)
        self.scope_box.setToolTip("Which objects to chart: the canvas selection, the pinned ones, or all")
        self.scope_box.currentIndexChanged.connect(
            lambda _i: self.set_scope(Scope(str(self.scope_box.currentData())))
        )
        self.pin_button = self._tool("Pin", "Pin the selected objects (Show: Pinned charts them)")
        self.pin_button.clicked.connect(self.pin_selection)
        self.unpin_button = self._tool("Unpin All", "Forget the pinned objects")
        self.unpin_button.clicked.connect(self.clear_pins)
        self.window_box = QComboBox(self)
        for text, seconds in WINDOWS:
            self.window_box.addItem(text, seconds)
        self.window_box.setCurrentIndex(1)
        self.window_box.setToolTip("How much history to show")
        self.window_box.currentIndexChanged.connect(
            lambda _i: self.set_window(int(self.window_box.currentData()))
        )
        self.pause_button = self._tool("Pause", "Freeze the charts (recording goes on)")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.export_button = self._tool("Export", "Save the charted series or the picture")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("Series as CSV…", self._export_csv_dialog)
        menu.addAction("Chart as PNG…", self._export_png_dialog)
        self.export_button.setMenu(menu)

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        bar.setSpacing(6)
        bar.addWidget(QLabel("Show", self))
        bar.addWidget(self.scope_box)
        bar.addWidget(self.pin_button)
        bar.addWidget(self.unpin_button)
        bar.addStretch(1)
        bar.addWidget(self.window_box)
        bar.addWidget(self.pause_button)
        bar.addWidget(self.export_button)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("ThroughputStatus")
        self.status_label.setContentsMargins(8, 0, 8, 0)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setMinimumHeight(90)  # the bottom dock row may shrink to ~150 px
        self.graphics.ci.setContentsMargins(4, 4, 4, 4)
        self.graphics.ci.setSpacing(2)
        self.rates_plot = self._plot(0, "msg/s")
        self.depth_plot = self._plot(1, "messages")
        self.depth_plot.setXLink(self.rates_plot)
        self._grids = [GridLines(self.rates_plot), GridLines(self.depth_plot)]
        self.rates_legend = self._legend(0)
        self.depth_legend = self._legend(1)
        self._depth_shown: bool | None = None
        self.graphics.ci.layout.setColumnStretchFactor(0, 1)
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)
        self._show_depth_plot(True)
        self._lines = [pg.InfiniteLine(angle=90, movable=False) for _ in range(2)]
        for plot, line in zip((self.rates_plot, self.depth_plot), self._lines, strict=True):
            line.setZValue(20)
            line.hide()
            plot.addItem(line, ignoreBounds=True)
        self.readout = pg.TextItem(anchor=(0, 0))
        self.readout.setZValue(30)
        self.readout.hide()
        self.rates_plot.addItem(self.readout, ignoreBounds=True)
        self._mouse_proxy = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )
        self._leave_filter = _LeaveFilter(self)
        self.graphics.installEventFilter(self._leave_filter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.graphics, 1)

    def _tool(self, text: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        return button

    def _plot(self, row: int, units: str) -> pg.PlotItem:
        plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": TimeAxis()})
        plot.setMenuEnabled(False)
        plot.hideButtons()
        # On the plot, not only on each curve: PlotItem.addItem overwrites a curve's own clip-to-view
        # and downsampling with the plot's settings (off by default).
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setLabel("left", units)
        plot.getAxis("left").setWidth(58)
        plot.setMouseEnabled(x=True, y=False)
        plot.enableAutoRange(x=False, y=False)  # both set in _draw: one pass per frame, no re-layout
        plot.getViewBox().setLimits(yMin=0)
        return plot

    def _legend(self, row: int) -> pg.LegendItem:
        """A legend in the column right of its plot, packed at the top (a grid cell would stretch
        its rows apart), so it never covers data."""
        column = self.graphics.ci.addLayout(row=row, col=1)
        column.setContentsMargins(0, 0, 0, 0)
        legend = pg.LegendItem(offset=None, verSpacing=-6, labelTextSize="8pt", frame=False)
        column.addItem(legend, row=0, col=0)
        spacer = pg.GraphicsWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Expanding)
        spacer.setPreferredWidth(0)
        column.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        column.setMaximumWidth(LEGEND_WIDTH)
        column.addItem(spacer, row=1, col=0)
        column.layout.setRowStretchFactor(1, 1)
        return legend

    # -- public API ----------------------------------------------------------------------------
    @property
    def store(self) -> SeriesStore:
        return self.recorder.store

    @property
    def scope(self) -> Scope:
        return self._scope

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def window_seconds(self) -> int:
        return self._window_s

    def set_sampler(self, sampler: Sampler | None) -> None:
        """Chart what `sampler` reads (None: keep the history on screen, stop reading). A new sampler
        starts a new history: the previous one may have been another broker."""
        if sampler is self.sampler:
            return
        self.sampler = sampler
        self._seq = 0
        if sampler is not None:
            self.recorder.previous = None
            self.store.clear()
            self._layout_dirty = True
        self._update_status(force=True)

    def set_scope(self, scope: Scope | str) -> None:
        scope = Scope(scope)
        if scope == self._scope:
            return
        self._scope = scope
        index = self.scope_box.findData(scope.value)
        if index != self.scope_box.currentIndex():
            self.scope_box.setCurrentIndex(index)
        self._layout_dirty = True
        self.scope_changed.emit(scope.value)
        self.refresh()

    def set_selection_ids(self, ids: Iterable[str]) -> None:
        """The canvas selection (model ids) → the objects charted under Show: Selection."""
        if self.editor is None:
            return
        topology = self.editor.document.topology
        keys = [object_key_for(topology.get(i), topology) for i in ids]
        self.set_selection([k for k in keys if k is not None])

    def set_selection(self, objects: Iterable[ObjectKey]) -> None:
        self._selection = list(dict.fromkeys(objects))
        if self._scope is Scope.SELECTION:
            self._layout_dirty = True

    def pin(self, objects: Iterable[ObjectKey]) -> None:
        self._pinned = list(dict.fromkeys([*self._pinned, *objects]))
        if self._scope is Scope.PINNED:
            self._layout_dirty = True

    def pin_selection(self) -> None:
        self.pin(self._selection)
        self.set_scope(Scope.PINNED)

    def clear_pins(self) -> None:
        self._pinned = []
        self._layout_dirty = True

    @property
    def pinned(self) -> list[ObjectKey]:
        return list(self._pinned)

    def set_window(self, seconds: int) -> None:
        self._window_s = int(seconds)
        index = self.window_box.findData(self._window_s)
        if index >= 0 and index != self.window_box.currentIndex():
            self.window_box.setCurrentIndex(index)
        self._drawn_version = -1
        self.refresh()

    def set_paused(self, paused: bool) -> None:
        self._paused = bool(paused)
        self.pause_button.setChecked(self._paused)
        self.pause_button.setText("Resume" if self._paused else "Pause")
        self._drawn_version = -1
        self._update_status(force=True)

    def scope_objects(self) -> list[ObjectKey]:
        """The objects charted now (Selection with nothing selected charts the whole broker)."""
        if self._scope is Scope.PINNED:
            return list(self._pinned)
        if self._scope is Scope.SELECTION and self._selection:
            return list(self._selection)
        return [BROKER]

    def shown_series(self) -> list[SeriesKey]:
        """The series with a curve in the charts now, rates first."""
        return list(self._shown)

    def series_data(self, key: SeriesKey) -> tuple[Any, Any]:
        """(t, y) of a series over the panel's window (views of the store)."""
        return self.store.window(key, self._window_s)

    def curve(self, key: SeriesKey) -> pg.PlotDataItem | None:
        return self._curves.get(key)

    # -- the timer -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Pick up new snapshots (never waits), then redraw if anything changed and not paused."""
        sampler = self.sampler
        if sampler is not None:
            items = sampler.since(self._seq)
            if items:
                self._seq = items[-1][0]
                self.recorder.feed_all(snapshot for _, snapshot in items)
        store = self.store
        changed = store.version != self._drawn_version
        if changed or sampler is not None:
            self._update_status()
        if self._paused:
            return
        if self._layout_dirty or store.key_count != self._keys_seen:
            self._rebuild_curves()
            changed = True
        if changed:
            self._draw()

    def _draw(self) -> None:
        store = self.store
        window = self._window_s
        peaks = {id(self.rates_plot): 0.0, id(self.depth_plot): 0.0}
        data: list[tuple[pg.PlotDataItem, Any, Any]] = []
        for key in self._shown:
            curve = self._curves[key]
            if curve.isVisible():
                t, y = store.window(key, window)
                data.append((curve, t, y))
                plot = self.depth_plot if key[3] in DEPTH_METRICS else self.rates_plot
                if len(y):
                    peaks[id(plot)] = max(peaks[id(plot)], float(y.max()))
        # Ranges first, with the curves' reaction held: setData then builds each curve once, for the
        # new ranges (else the range change would rebuild them all, and setData again).
        LiveCurve.holding = True
        try:
            if len(store):
                last = store.last_time
                self.rates_plot.setXRange(last - window, last, padding=0)
            for plot in (self.rates_plot, self.depth_plot):
                self._fit_y(plot, peaks[id(plot)])
                # Apply the new ranges to the view's transform now: pyqtgraph does it lazily at the
                # start of the next paint, and moving every item there makes Qt paint the plot twice.
                plot.getViewBox().prepareForPaint()
        finally:
            LiveCurve.holding = False
        for curve, t, y in data:
            curve.setData(t, y)
        self._drawn_version = store.version
        self.draws += 1

    def _fit_y(self, plot: pg.PlotItem, peak: float) -> None:
        """0 … a little above the peak; grows at once, shrinks only below half (no jitter per sample)."""
        top = self._y_tops.get(id(plot), 0.0)
        if peak > top or peak < top * 0.5 or top == 0.0:
            top = max(peak * 1.15, 1.0)
            self._y_tops[id(plot)] = top
            plot.setYRange(0, top, padding=0)

    # -- curves (created once per series) ------------------------------------------------------
    def _series_for(self, obj: ObjectKey, present: set[SeriesKey]) -> tuple[list[SeriesKey], list[SeriesKey]]:
        kind, vhost, name = obj
        reasons = sorted(k for k in present if k[:3] == obj and k[3].startswith("dead_lettered."))
        rates: list[SeriesKey] = []
        for metric in RATE_METRICS:
            if metric == "dead_lettered" and reasons:
                rates.extend(reasons)
            elif (kind, vhost, name, metric) in present:
                rates.append((kind, vhost, name, metric))
        depths = [(kind, vhost, name, m) for m in DEPTH_METRICS if (kind, vhost, name, m) in present]
        return rates, depths

    def _rebuild_curves(self) -> None:
        store = self.store
        present = set(store.keys())
        objects = self.scope_objects()
        rates: list[SeriesKey] = []
        depths: list[SeriesKey] = []
        for obj in objects:
            r, d = self._series_for(obj, present)
            rates += r
            depths += d
        wanted = rates + depths
        self._restyling = True
        try:
            for key in set(self._shown) - set(wanted):
                self._curves[key].hide()
            self.rates_legend.clear()
            self.depth_legend.clear()
            many = len(objects) > 1
            for index, key in enumerate(wanted):
                curve = self._curves.get(key)
                if curve is None:
                    curve = self._make_curve(key)
                curve.setPen(pg.mkPen(self._color(key, index, many), width=1))  # > 1 px leaves the fast path
                label = _series_label(key, many)
                legend = self.rates_legend if key in rates else self.depth_legend
                legend.addItem(curve, html.escape(label))
                curve.setVisible(key not in self._user_hidden)
        finally:
            self._restyling = False
        self._shown = wanted
        self._show_depth_plot(bool(depths))
        self._keys_seen = store.key_count
        self._layout_dirty = False
        self._update_status(force=True)

    def _show_depth_plot(self, shown: bool) -> None:
        """The depth plot only while depth series are charted; the time labels go under the lower plot."""
        if shown == self._depth_shown:
            return
        self._depth_shown = shown
        self.depth_plot.setVisible(shown)
        self.depth_legend.setVisible(shown)
        layout = self.graphics.ci.layout
        layout.setRowStretchFactor(1, 2 if shown else 0)
        layout.setRowMaximumHeight(1, _UNLIMITED if shown else 0)  # a hidden item keeps its row
        bottom = self.rates_plot.getAxis("bottom")
        bottom.setStyle(showValues=not shown)
        bottom.setHeight(6 if shown else None)

    def _make_curve(self, key: SeriesKey) -> pg.PlotDataItem:
        curve = LiveCurve(**_CURVE_OPTIONS)
        plot = self.depth_plot if key[3] in DEPTH_METRICS else self.rates_plot
        plot.addItem(curve)
        curve.visibleChanged.connect(lambda k=key, c=curve: self._on_curve_visibility(k, c))
        self._curves[key] = curve
        return curve

    def _on_curve_visibility(self, key: SeriesKey, curve: pg.PlotDataItem) -> None:
        if self._restyling or key not in self._shown:
            return
        if curve.isVisible():  # a legend click showed it: its data may be stale
            self._user_hidden.discard(key)
            self._drawn_version = -1
        else:
            self._user_hidden.add(key)

    def _color(self, key: SeriesKey, index: int, many: bool) -> str:
        metric = key[3]
        if many:
            return PALETTE[index % len(PALETTE)]
        if metric.startswith("dead_lettered."):
            reasons = sorted(k[3] for k in self._curves if k[:3] == key[:3] and k[3].startswith("dead_"))
            position = reasons.index(metric) if metric in reasons else 0
            return _REASON_COLORS[position % len(_REASON_COLORS)]
        return METRIC_COLORS.get(metric, PALETTE[index % len(PALETTE)])

    # -- status line ---------------------------------------------------------------------------
    def _update_status(self, force: bool = False) -> None:
        text = self._status_text()
        if force or text != self._status:
            self._status = text
            self.status_label.setText(text)

    def _status_text(self) -> str:
        sampler = self.sampler
        if sampler is None:
            return "Not connected: Broker ▸ Connect to chart live statistics"
        if sampler.error:
            return f"Statistics unavailable: {sampler.error}"
        objects = self.scope_objects()
        if self._scope is Scope.PINNED and not objects:
            return "Nothing pinned: select objects on the canvas, then Pin"
        parts: list[str] = []
        if self._scope is Scope.SELECTION and not self._selection:
            parts.append("Whole broker (select objects on the canvas to chart them)")
        elif len(objects) == 1:
            parts.append(self._describe_one(objects[0]))
        else:
            parts.append(f"{len(objects)} objects")
        if self._paused:
            parts.append("paused (recording goes on)")
        elif not len(self.store):
            parts.append("waiting for the first samples…")
        return " · ".join(p for p in parts if p)

    def _describe_one(self, obj: ObjectKey) -> str:
        store = self.store
        kind, vhost, name = obj
        label = _object_label(obj)
        if kind not in ("queue", "broker") or (*obj, "ready") not in store:
            lag_key: SeriesKey = (*obj, "lag")
            if lag_key in store:
                return f"{label}: lag {_format_count(store.last(lag_key))}"
            return label
        key: SeriesKey = (*obj, "ready")
        depth = store.last(key)
        text = f"{label}: {_format_count(depth)} ready"
        slope = store.trend(key, min(60, self._window_s))
        if abs(slope) >= 0.05:
            sign = "+" if slope > 0 else "\u2212"
            text += f" ({sign}{_format_count(abs(slope))}/s)"
        if depth > 0:
            drain = store.drain_estimate(kind, vhost, name, seconds=min(60, self._window_s))
            text += f" · drains in ~{_format_duration(drain)}" if drain is not None else " · not draining"
        return text

    # -- hover read-out ------------------------------------------------------------------------
    def _on_mouse_moved(self, event: tuple[Any, ...]) -> None:
        pos = event[0]
        plot = next((p for p in (self.rates_plot, self.depth_plot) if p.sceneBoundingRect().contains(pos)),
                    None)
        if plot is None or not len(self.store):
            self.hide_readout()
            return
        self.show_readout(plot.getViewBox().mapSceneToView(pos).x())

    def show_readout(self, x: float) -> str:
        """Show the value of every visible curve at time `x` (the nearest sample); returns the text."""
        t = self.store.times(self._window_s)
        if not len(t):
            return ""
        i = int(min(max(0, int(t.searchsorted(x))), len(t) - 1))
        if i > 0 and abs(t[i - 1] - x) < abs(t[i] - x):
            i -= 1
        at = float(t[i])
        stamp = dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")
        rows = [f"<b>{stamp}</b>"]
        many = len(self.scope_objects()) > 1
        for key in self._shown:
            curve = self._curves[key]
            if not curve.isVisible():
                continue
            _, y = self.store.window(key, self._window_s)
            unit = "" if key[3] in DEPTH_METRICS else "/s"
            label = _series_label(key, many)
            color = curve.opts["pen"].color().name() if hasattr(curve.opts["pen"], "color") else "#888"
            rows.append(f"<span style='color:{color}'>■</span> {html.escape(label)}: "
                        f"{_format_count(float(y[i]))}{unit}")
        text = "<br>".join(rows)
        self.readout.setHtml(f"<div style='font-size:8pt'>{text}</div>")
        x_range, y_range = self.rates_plot.getViewBox().viewRange()
        right_half = at > (x_range[0] + x_range[1]) / 2
        self.readout.setAnchor((1, 0) if right_half else (0, 0))
        self.readout.setPos(at, y_range[1])
        self.readout.show()
        for line in self._lines:
            line.setValue(at)
            line.show()
        return text

    def hide_readout(self) -> None:
        self.readout.hide()
        for line in self._lines:
            line.hide()

    # -- export --------------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> int:
        """Write the charted series over the window as CSV (one row per sample); returns the rows."""
        keys = list(self._shown)
        t = self.store.times(self._window_s)
        columns = [self.store.window(k, self._window_s)[1] for k in keys]
        with Path(path).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["time", "epoch_s", *(
                f"{_object_label(k[:3])} {_metric_label(k[3])}{'' if k[3] in DEPTH_METRICS else ' /s'}"
                for k in keys
            )])
            for i, stamp in enumerate(t):
                iso = dt.datetime.fromtimestamp(float(stamp), dt.UTC).isoformat(timespec="seconds")
                writer.writerow([iso, f"{stamp:.3f}", *(f"{float(c[i]):g}" for c in columns)])
        return len(t)

    def export_png(self, path: str | Path) -> bool:
        """Save the charts (both plots and their legends) as a PNG at the widget's size."""
        self.hide_readout()
        exporter = pyqtgraph.exporters.ImageExporter(self.graphics.ci)
        exporter.export(str(path))
        return Path(path).exists()

    def _export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export Series", "throughput.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def _export_png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export Chart", "throughput.png", "PNG images (*.png)")
        if path:
            self.export_png(path)

    # -- theme ---------------------------------------------------------------------------------
    def apply_theme(self) -> None:
        """Colours from the application palette (light or dark)."""
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        self.graphics.setBackground(base)
        axis_pen = pg.mkPen(muted)
        for plot in (self.rates_plot, self.depth_plot):
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(axis_pen)
                axis.setTextPen(pg.mkPen(text))
        for legend in (self.rates_legend, self.depth_legend):
            legend.setLabelTextColor(text)
        for grid in self._grids:
            grid.set_colors(base, text, GRID_STRENGTH)
        line_pen = pg.mkPen(muted, width=1, style=Qt.PenStyle.DashLine)
        for line in self._lines:
            line.setPen(line_pen)
        fill = QColor(base)
        fill.setAlpha(225)
        self.readout.fill = pg.mkBrush(fill)
        self.readout.border = pg.mkPen(muted)
        self.readout.setColor(text)
        self.status_label.setStyleSheet(f"color: {muted.name()};")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_theme()
        super().changeEvent(event)
