"""Throughput panel cost at 10 Hz against a bare pyqtgraph loop drawing the same curves, offscreen.

For 20 and 100 series of 600 points each, runs for `--seconds` of wall time:

* panel: a `ThroughputPanel` (its own 100 ms QTimer) fed one new snapshot every 100 ms (timestamps one
  second apart, so every tick adds a 1 s sample and every curve scrolls), charting pinned queues with
  five counters each (published, delivered, acked, redelivered, dead-lettered → five rate series per
  queue). Its work per tick: pick up the snapshot, rates, append to the rings, ``setData`` on views.
  Snapshots are built before timing (building them is the sampler's and backend's work, elsewhere);
* baseline: a bare ``pg.PlotWidget`` of the same size with the same number of curves, a QTimer at
  100 ms calling ``setData(x, y)`` on 600-point views that advance by one sample per tick.

A last line measures the panel as it runs live: the same 100 ms timer, one new sample a second.

Reports CPU share (``time.process_time`` / wall, 1.0 = one core busy), frames painted, and the panel's
CPU relative to the baseline measured in the same run. Goals: ratio <= 1.0x, 20 series <= 20 % of a core.
Also reported: CPU milliseconds per update (a redraw with one more sample: the panel's redraws, the
baseline's timer ticks), and their ratio. On a shared, loaded machine the timers slip and either side
may do fewer updates than the 10 Hz asked for (which lowers its CPU share without making it cheaper);
the cost per update is the steadier comparison then. The load average is printed before and after.

Is the baseline the same plotting work? Both draw the same number of 600-point curves, one new sample
per tick, into a widget of the same size, with pyqtgraph's defaults (1 px cosmetic pens, no
antialiasing). The baseline additionally auto-ranges both axes every frame and checks its data for
non-finite values (a little more work); the panel additionally has what makes it a panel: a second
(depth) plot when depth series are charted, legends, a grid, a date axis, a status line, and the
snapshot → rate → ring-buffer pipeline. The ratio is what those cost on top of the curves.
One difference in the other direction, kept on purpose: the bare loop paints twice per tick (pyqtgraph
applies a range change to the view's transform lazily, at the start of the next paint, and moving every
item there schedules a second paint); the panel applies it before painting and paints once. That is
most of why its CPU share is below the baseline's, while its CPU per frame is about the same.

Usage: python benchmarks/monitoring.py [--seconds N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.ui.monitoring.series import SeriesStore
from mqstudio.ui.monitoring.throughput import Scope, ThroughputPanel

WIDTH, HEIGHT = 900, 420
POINTS = 600
TICK_MS = 100
METRICS = ("published", "delivered", "acked", "redelivered", "dead_lettered")
GOAL_RATIO = 1.0
GOAL_SHARE_20 = 0.20


class _PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.frames += 1
        return False


class _Feed:
    """Sampler stand-in: hands out prebuilt snapshots, one more every tick."""

    def __init__(self, snapshots: list[Snapshot], preloaded: int, every: int = 1) -> None:
        self._snapshots = snapshots
        self.sequence = preloaded
        self.error = ""
        self._every, self._ticks = every, 0

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % self._every == 0:
            self.sequence = min(self.sequence + 1, len(self._snapshots))

    def since(self, sequence: int) -> list[tuple[int, Snapshot]]:
        return [(n, self._snapshots[n - 1]) for n in range(sequence + 1, self.sequence + 1)]


def _snapshots(queues: int, count: int, rng: np.random.Generator) -> list[Snapshot]:
    totals = np.zeros((queues, len(METRICS)), dtype=np.int64)
    out = []
    for i in range(count):
        totals += rng.integers(0, 200, size=totals.shape)
        objects = tuple(
            ObjectStats("queue", f"q{q:03d}", "/", counters=dict(zip(METRICS, map(int, row), strict=True)))
            for q, row in enumerate(totals)
        )
        out.append(Snapshot(1_000_000.0 + i, objects))
    return out


class Result(NamedTuple):
    share: float  # CPU seconds per wall second
    frames: int  # paint events of the plots' viewport
    updates: int  # redraws with new data
    cpu_s: float

    @property
    def ms_per_update(self) -> float:
        return self.cpu_s * 1000 / max(self.updates, 1)


def _run(
    app: QApplication, seconds: float, tick: Callable[[], None], widget: QWidget, view: QWidget
) -> tuple[float, int, float]:
    counter = _PaintCounter()
    view.installEventFilter(counter)
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    loop = QEventLoop()
    for _ in range(5):
        app.processEvents()
    counter.frames = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    timer.start()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    timer.stop()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    view.removeEventFilter(counter)
    return cpu / wall, counter.frames, cpu


def bench_panel(app: QApplication, series: int, seconds: float, every: int = 1) -> Result:
    queues = series // len(METRICS)
    ticks = int(seconds * 1000 / TICK_MS) + 20
    snapshots = _snapshots(queues, POINTS + 1 + ticks, np.random.default_rng(1))
    panel = ThroughputPanel(store=SeriesStore(capacity=3600), refresh_ms=TICK_MS)
    panel.resize(WIDTH, HEIGHT)
    panel.set_window(POINTS)
    feed = _Feed(snapshots, POINTS + 1, every)
    panel.set_sampler(feed)  # type: ignore[arg-type]
    panel.pin([("queue", "/", f"q{q:03d}") for q in range(queues)])
    panel.set_scope(Scope.PINNED)
    panel.show()
    panel.refresh()
    assert len(panel.shown_series()) == series, len(panel.shown_series())
    draws = panel.draws
    share, frames, cpu = _run(app, seconds, feed.tick, panel, panel.graphics.viewport())
    updates = panel.draws - draws
    panel.timer.stop()
    panel.close()
    panel.deleteLater()
    app.processEvents()
    return Result(share, frames, updates, cpu)


def bench_bare(app: QApplication, series: int, seconds: float) -> Result:
    ticks = int(seconds * 1000 / TICK_MS) + 20
    rng = np.random.default_rng(1)
    t = 1_000_000.0 + np.arange(POINTS + ticks, dtype=float)
    ys = rng.integers(0, 200, size=(series, POINTS + ticks)).astype(float)
    widget = pg.PlotWidget()
    widget.resize(WIDTH, HEIGHT)
    curves = [widget.plot(pen=pg.intColor(i, series)) for i in range(series)]
    position = [0]

    def tick() -> None:
        k = position[0] = min(position[0] + 1, ticks)
        for curve, y in zip(curves, ys, strict=True):
            curve.setData(t[k:k + POINTS], y[k:k + POINTS])

    tick()
    widget.show()
    start = position[0]
    share, frames, cpu = _run(app, seconds, tick, widget, widget.viewport())
    updates = position[0] - start
    widget.close()
    widget.deleteLater()
    app.processEvents()
    return Result(share, frames, updates, cpu)


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wall time per measurement")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    print(f"Throughput panel vs bare pyqtgraph, {POINTS} points per series, {1000 // TICK_MS} Hz, "
          f"{args.seconds:g} s each, offscreen {WIDTH}x{HEIGHT}")
    print(f"load average before: {_load()}")
    print(f"{'series':>6}  {'bare CPU':>9}  {'panel CPU':>9}  {'ratio':>6}  {'frames bare/panel':>17}"
          f"  {'ms CPU/update bare/panel':>24}  {'ratio':>6}")
    ok = True
    for series in (20, 100):
        b = bench_bare(app, series, args.seconds)
        p = bench_panel(app, series, args.seconds)
        bare, panel = b.share, p.share
        ratio = panel / bare if bare else float("inf")
        bare_ms, panel_ms = b.ms_per_update, p.ms_per_update
        print(f"{series:>6}  {bare:>8.1%}  {panel:>8.1%}  {ratio:>5.2f}x  {b.frames:>8}/{p.frames:<8}"
              f"  {bare_ms:>12.1f}/{panel_ms:<11.1f}  {panel_ms / bare_ms:>5.2f}x")
        ok &= ratio <= GOAL_RATIO
        if series == 20:
            ok &= panel <= GOAL_SHARE_20
    production, frames, *_ = bench_panel(app, 20, args.seconds, every=10)
    print(f"panel, 20 series, one sample a second (the live sampler's rate): {production:.1%} CPU, "
          f"{frames} frames")
    print(f"goals: ratio <= {GOAL_RATIO:.1f}x, 20 series <= {GOAL_SHARE_20:.0%} of one core: "
          f"{'met' if ok else 'NOT met'}")
    print(f"load average after: {_load()} ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
