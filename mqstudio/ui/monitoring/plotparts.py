"""Cheap parts for live pyqtgraph plots: a background grid, a time axis it can follow, and a curve
that skips the redundant update when the panel moves the view and sets new data in one frame.

Owns: `GridLines`, `TimeAxis`, `LiveCurve`.

* pyqtgraph's own grid (``PlotItem.showGrid``) is drawn by the axes, so each axis covers the whole plot
  and every curve update repaints both axes (replaying their tick text) over the plot area: at 10 Hz that
  cost about as much as the curves themselves. `GridLines` is one item inside the view box that draws the
  axes' tick positions as aliased one-pixel lines in opaque colours (no alpha blending), in two
  ``drawLines`` calls; it recomputes them only when the view range changes, and asks the axis for tick
  spacing only when the span or the size changes (a scrolling time axis keeps its spacing).
* `TimeAxis` is pyqtgraph's `DateAxisItem` whose tick positions can be asked before its first paint.
* `LiveCurve` is a `PlotDataItem` whose reaction to a view-range change (recomputing its clipped,
  downsampled display data) can be held while its owner changes the range right before ``setData``:
  otherwise each frame would build every curve twice.

Imports PySide6, numpy and pyqtgraph.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen

__all__ = ["GridLines", "LiveCurve", "TimeAxis"]

Progression = tuple[float, float]  # (step, phase): values phase + k * step
MINOR_GAP_PX = 24.0  # minor grid lines only when at least this far apart


class TimeAxis(pg.DateAxisItem):  # type: ignore[misc]
    """A date/time axis; `tickValues` works before the first paint (the grid asks for it then): the
    base class measures its labels with font metrics it only takes from the painter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fontMetrics = QFontMetrics(self.style.get("tickFont") or QFont())


class LiveCurve(pg.PlotDataItem):  # type: ignore[misc]
    """A `PlotDataItem` for live data. While ``holding`` is True, view-range changes do not rebuild the
    display data: the owner sets the new range and then calls ``setData``, which builds it once for the
    new range."""

    holding = False

    def viewRangeChanged(self, vb: Any = None, ranges: Any = None, changed: Any = None) -> None:
        if self.holding:
            return
        super().viewRangeChanged(vb, ranges, changed)


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


def _cosmetic(color: QColor) -> QPen:
    pen = QPen(color, 1.0)
    pen.setCosmetic(True)  # one device pixel whatever the data scale
    return pen


def _progressions(levels: list[tuple[float, list[float]]]) -> list[Progression] | None:
    """The first two tick levels as progressions (step: the smallest gap between values; a minor level
    may skip the values of the major one), or None when a level does not fit one (month ticks have no
    single step) or has fewer than two values. The levels' own spacing is not used: `DateAxisItem`
    reports 1 there."""
    out: list[Progression] = []
    for _, values in levels[:2]:
        if len(values) < 2:
            return None
        ordered = sorted(float(v) for v in values)
        step = min(b - a for a, b in itertools.pairwise(ordered))
        if step <= 0:
            return None
        phase = math.fmod(ordered[0], step)
        for value in ordered:
            k = (value - phase) / step
            if abs(k - round(k)) > 1e-6:
                return None
        out.append((step, phase))
    return out


def _values(progression: Progression, lo: float, hi: float) -> list[float]:
    step, phase = progression
    first = math.ceil((lo - phase) / step)
    last = math.floor((hi - phase) / step)
    return [phase + k * step for k in range(first, last + 1)] if last - first < 1000 else []


def _min_gap(values: list[float]) -> float:
    ordered = sorted(values)
    return min((b - a for a, b in itertools.pairwise(ordered)), default=math.inf)


class _Ticks:
    """Tick positions of one axis over a range: asks the axis only when the span or size changed, and
    shifts the cached progressions otherwise."""

    def __init__(self) -> None:
        self._key: tuple[float, float] | None = None
        self._progressions: list[Progression] | None = None

    def levels(self, axis: Any, lo: float, hi: float, size: float) -> list[list[float]]:
        """Major tick values, then minor ones when they are at least MINOR_GAP_PX apart."""
        key = (round(hi - lo, 9), round(size, 3))
        if key != self._key or self._progressions is None:
            levels = axis.tickValues(lo, hi, size)
            self._key, self._progressions = key, _progressions(levels)
            out = [[float(v) for v in values if lo <= v <= hi] for _, values in levels[:2]]
        else:
            out = [_values(p, lo, hi) for p in self._progressions]
        if len(out) > 1 and _min_gap(out[1]) * size / (hi - lo) < MINOR_GAP_PX:
            out = out[:1]  # dense minor lines would only grey the plot
        return out


class GridLines(pg.GraphicsObject):  # type: ignore[misc]
    """Vertical lines at the bottom axis' ticks and horizontal ones at the left axis' ticks of `plot`,
    under the curves. `set_colors(background, foreground, strength)` picks opaque colours that look
    like `strength` of the foreground over the background (major lines; minor ones are fainter)."""

    def __init__(self, plot: pg.PlotItem, x: bool = True, y: bool = True) -> None:
        super().__init__()
        self._plot = plot
        self._x, self._y = x, y
        self._x_ticks, self._y_ticks = _Ticks(), _Ticks()
        self._rect = QRectF()
        self._major: list[QLineF] = []
        self._minor: list[QLineF] = []
        self._major_pen = _cosmetic(QColor(200, 200, 200))
        self._minor_pen = _cosmetic(QColor(230, 230, 230))
        self.setZValue(-100)  # under the curves
        plot.addItem(self, ignoreBounds=True)

    def set_colors(self, background: QColor, foreground: QColor, strength: float = 0.12) -> None:
        self._major_pen = _cosmetic(_mix(background, foreground, strength))
        self._minor_pen = _cosmetic(_mix(background, foreground, strength * 0.45))
        self.update()

    def lines(self) -> tuple[list[QLineF], list[QLineF]]:
        """(major, minor) lines in data coordinates, as drawn now."""
        return list(self._major), list(self._minor)

    # -- pyqtgraph hooks -----------------------------------------------------------------------
    def viewRangeChanged(self) -> None:
        view = self.getViewBox()
        if not isinstance(view, pg.ViewBox):  # while being added, the view may still be the widget
            return
        (x0, x1), (y0, y1) = view.viewRange()
        major: list[QLineF] = []
        minor: list[QLineF] = []
        if self._x and x1 > x0:
            axis = self._plot.getAxis("bottom")
            for level, values in enumerate(self._x_ticks.levels(axis, x0, x1, max(view.width(), 1.0))):
                (major if level == 0 else minor).extend(QLineF(v, y0, v, y1) for v in values)
        if self._y and y1 > y0:
            axis = self._plot.getAxis("left")
            for level, values in enumerate(self._y_ticks.levels(axis, y0, y1, max(view.height(), 1.0))):
                (major if level == 0 else minor).extend(QLineF(x0, v, x1, v) for v in values)
        self.prepareGeometryChange()
        self._rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        self._major, self._minor = major, minor
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, *args: Any) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        if self._minor:
            painter.setPen(self._minor_pen)
            painter.drawLines(self._minor)
        if self._major:
            painter.setPen(self._major_pen)
            painter.drawLines(self._major)
