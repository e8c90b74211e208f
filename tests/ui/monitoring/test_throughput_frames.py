"""What one frame of the Throughput panel does: each visible curve is built once, the grid follows the
axes' ticks while the time axis scrolls, and the depth plot is shown only when depth series are."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QObject
from pytestqt.qtbot import QtBot

from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.ui.monitoring.plotparts import GridLines, LiveCurve, TimeAxis
from mqstudio.ui.monitoring.throughput import Scope, ThroughputPanel
from tests.ui.monitoring.conftest import FedSampler, queue_stats

ORDERS = ("queue", "/", "orders")


@pytest.fixture
def panel(qtbot: QtBot) -> ThroughputPanel:
    widget = ThroughputPanel(refresh_ms=10_000)  # the test drives refresh()
    qtbot.addWidget(widget)
    widget.resize(800, 360)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _push(fed: FedSampler, i: int, gauges: bool) -> None:
    counters = {"published": 10 * i, "delivered": 7 * i, "acked": 7 * i}
    if gauges:
        stats = queue_stats("orders", ready=3 * i, unacked=2, consumers=1, **counters)
    else:
        stats = ObjectStats("queue", "orders", "/", counters=counters)  # an exchange-like object: no depth
    fed.push(Snapshot(1_000_000.0 + i, (stats,)))


def _charted(panel: ThroughputPanel, gauges: bool, samples: int = 120) -> FedSampler:
    fed = FedSampler()
    panel.set_sampler(fed)  # type: ignore[arg-type]
    for i in range(samples):
        _push(fed, i, gauges)
    panel.pin([ORDERS])
    panel.set_scope(Scope.PINNED)
    panel.set_window(60)
    panel.refresh()
    return fed


def test_each_visible_curve_is_built_once_per_frame(
    panel: ThroughputPanel, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = _charted(panel, gauges=True)
    curves = {key: panel.curve(key) for key in panel.shown_series()}
    assert len(curves) >= 5 and all(isinstance(c, LiveCurve) for c in curves.values())
    hidden_key = next(iter(curves))
    curves[hidden_key].hide()  # a legend click
    builds: Counter[int] = Counter()
    original = pg.PlotCurveItem.setData

    def counting(self: pg.PlotCurveItem, *args: Any, **kwargs: Any) -> Any:
        builds[id(self)] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pg.PlotCurveItem, "setData", counting)
    x_before = panel.rates_plot.getViewBox().viewRange()[0]
    _push(fed, 120, gauges=True)
    panel.refresh()
    assert panel.rates_plot.getViewBox().viewRange()[0][1] == pytest.approx(x_before[1] + 1)  # scrolled
    visible = [c for k, c in curves.items() if k != hidden_key]
    assert [builds[id(c.curve)] for c in visible] == [1] * len(visible)
    assert builds[id(curves[hidden_key].curve)] == 0
    # the data handed over is the store's latest window
    t, y = curves[("queue", "/", "orders", "ready")].getData()
    assert t[-1] == 1_000_120.0 and y[-1] == 360.0
    assert not LiveCurve.holding  # released after the frame
    opts = visible[0].opts
    assert opts["clipToView"] and opts["autoDownsample"] and opts["downsampleMethod"] == "peak"
    assert opts["antialias"] is False and opts["skipFiniteCheck"] is True


def test_a_range_change_outside_a_frame_still_updates_clipped_curves(panel: ThroughputPanel) -> None:
    _charted(panel, gauges=True)
    curve = panel.curve(("queue", "/", "orders", "published"))
    assert curve is not None
    before = curve.curve.getData()[0]
    panel.rates_plot.setXRange(1_000_100.0, 1_000_110.0, padding=0)  # the user zooms in
    after = curve.curve.getData()[0]
    assert len(after) < len(before)  # clipped to the new view


def test_grid_lines_sit_on_the_axes_ticks_while_the_time_axis_scrolls(panel: ThroughputPanel) -> None:
    fed = _charted(panel, gauges=True)
    view_items = panel.rates_plot.getViewBox().childGroup.childItems()
    grid = next(item for item in view_items if isinstance(item, GridLines))
    for step in range(3):
        (x0, x1), (y0, y1) = panel.rates_plot.getViewBox().viewRange()
        width = panel.rates_plot.getViewBox().width()
        fresh = TimeAxis().tickValues(x0, x1, width)[0][1]
        major, _ = grid.lines()
        verticals = sorted(line.x1() for line in major if line.x1() == line.x2())
        assert verticals == pytest.approx(sorted(v for v in fresh if x0 <= v <= x1))
        assert all(line.y1() == pytest.approx(y0) and line.y2() == pytest.approx(y1)
                   for line in major if line.x1() == line.x2())
        horizontals = [line.y1() for line in major if line.y1() == line.y2()]
        assert horizontals and all(y0 <= y <= y1 for y in horizontals)
        _push(fed, 120 + step, gauges=True)
        panel.refresh()
    # pyqtgraph's own axis grid stays off: it would repaint the axes with every curve update
    assert panel.rates_plot.getAxis("left").grid is False and panel.rates_plot.getAxis("bottom").grid is False


def test_depth_plot_only_with_depth_series_and_the_time_labels_follow(panel: ThroughputPanel) -> None:
    _charted(panel, gauges=False)
    assert panel.shown_series() and all(k[3] not in ("ready", "unacked") for k in panel.shown_series())
    assert not panel.depth_plot.isVisible()
    assert panel.rates_plot.getAxis("bottom").style["showValues"]
    _charted(panel, gauges=True)  # a new sampler with queues that have depths
    assert any(k[3] == "ready" for k in panel.shown_series())
    assert panel.depth_plot.isVisible()
    assert not panel.rates_plot.getAxis("bottom").style["showValues"]
    assert panel.depth_plot.getAxis("bottom").style["showValues"]
    assert panel.depth_plot.sceneBoundingRect().height() > 50  # it got its row back


class _Paints(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def test_a_new_sample_repaints_the_charts_once(panel: ThroughputPanel, qtbot: QtBot) -> None:
    """pyqtgraph applies a range change to the view's transform lazily, at the start of the next paint;
    moving every item there would schedule a second paint of the plots. The panel applies it first."""
    fed = _charted(panel, gauges=True)
    qtbot.wait(100)
    paints = _Paints()
    panel.graphics.viewport().installEventFilter(paints)
    for i in range(3):
        _push(fed, 120 + i, gauges=True)
        panel.refresh()
        qtbot.wait(80)
    panel.graphics.viewport().removeEventFilter(paints)
    assert paints.count == 3
