"""The Throughput panel: live series from the embedded broker, scopes, window, pause, legend toggles,
hover read-out, export, and an event loop that never waits on a slow broker."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from mqstudio.backends.base import Capabilities, OutgoingMessage
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.core.document import TopologyDocument
from mqstudio.core.metrics import Snapshot
from mqstudio.core.model import Binding, Consumer, Exchange, Producer, Queue
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.jobs import BackendSession
from mqstudio.runtime.sampler import Sampler
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.monitoring.series import SeriesStore, object_key_for
from mqstudio.ui.monitoring.throughput import BROKER, Scope, ThroughputPanel
from tests.ui.monitoring.conftest import FedSampler, queue_stats

ORDERS = ("queue", "/", "orders")
WAIT_MS = 15_000


@pytest.fixture
def panel(qtbot: QtBot) -> ThroughputPanel:
    widget = ThroughputPanel(refresh_ms=20)
    qtbot.addWidget(widget)
    widget.resize(800, 360)
    widget.show()
    return widget


def _feed(panel: ThroughputPanel, count: int = 30, *, start: float = 1_000.0, dead_reasons: bool = False,
          fed: FedSampler | None = None) -> FedSampler:
    fed = fed if fed is not None else FedSampler()
    panel.set_sampler(fed)  # type: ignore[arg-type]
    for i in range(count):
        counters = {"published": 10 * i, "delivered": 8 * i, "acked": 8 * i, "dead_lettered": i}
        if dead_reasons:
            counters.update({"dead_lettered.rejected": i, "dead_lettered.expired": 0})
        q = queue_stats("orders", ready=2 * i, unacked=1, consumers=1, **counters)
        other = queue_stats("audit", ready=5, published=3 * i)
        fed.push(Snapshot(start + i, (q, other)))
    panel.refresh()
    return fed


# -- live data from the embedded broker -------------------------------------------------------------
@pytest.fixture
def broker() -> Iterator[EmbeddedBrokerThread]:
    with EmbeddedBrokerThread(port=0, name="test-monitoring-broker") as thread:
        thread.call(lambda b: b.declare_queue("/", "orders")).result(10)
        yield thread


def test_publishing_on_the_embedded_broker_makes_the_queues_series_non_zero(
    qtbot: QtBot, panel: ThroughputPanel, broker: EmbeddedBrokerThread
) -> None:
    session = BackendSession(lambda: EmbeddedBackend(broker), name="test-monitoring-session")
    sampler = Sampler(session, interval_s=0.05).start()
    stop = threading.Event()

    def publish() -> None:
        backend = EmbeddedBackend(broker)
        backend.connect()
        try:
            while not stop.is_set():
                backend.publish(OutgoingMessage("", b"{}", key="orders"))
                stop.wait(0.002)
        finally:
            backend.close()

    publisher = threading.Thread(target=publish, name="test-publisher")
    try:
        panel.set_sampler(sampler)
        panel.set_selection([ORDERS])
        publisher.start()
        published, ready = (*ORDERS, "published"), (*ORDERS, "ready")
        qtbot.waitUntil(lambda: panel.store.window(published)[1].max(initial=0) > 0, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: panel.store.last(ready) > 0, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: published in panel.shown_series() and ready in panel.shown_series(),
                        timeout=WAIT_MS)
        curve = panel.curve(published)
        assert curve is not None
        qtbot.waitUntil(lambda: curve.yData is not None and curve.yData.max() > 0, timeout=WAIT_MS)
        assert "orders" in panel.status_label.text()
    finally:
        stop.set()
        if publisher.is_alive():
            publisher.join(10)
        sampler.stop(10)
        session.close(10)


class _SlowBackend:
    """Fault injection: a backend whose stats() blocks until released (as a broker that hangs)."""

    kind = "embedded"
    capabilities = Capabilities.STATS
    description = "slow"

    def __init__(self, release: threading.Event, entered: threading.Event) -> None:
        self.release, self.entered = release, entered

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> Snapshot:
        self.entered.set()
        self.release.wait(30)
        return Snapshot(0.0, ())


def test_a_slow_broker_never_blocks_the_event_loop(qtbot: QtBot, panel: ThroughputPanel) -> None:
    release, entered = threading.Event(), threading.Event()
    session = BackendSession(lambda: _SlowBackend(release, entered), name="test-slow-session")  # type: ignore
    sampler = Sampler(session, interval_s=0.01).start()
    ticks: list[int] = []
    try:
        panel.set_sampler(sampler)
        qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start()
        qtbot.waitUntil(lambda: len(ticks) >= 20, timeout=WAIT_MS)
        timer.stop()
        assert not release.is_set() and sampler.sequence == 0  # stats() was still blocked throughout
        assert panel.timer.isActive()
        assert "waiting for the first samples" in panel.status_label.text()
    finally:
        release.set()
        sampler.stop(10)
        session.close(10)


def test_a_slow_stats_callable_never_blocks_the_event_loop(qtbot: QtBot, panel: ThroughputPanel) -> None:
    release, entered = threading.Event(), threading.Event()

    def slow() -> Snapshot:
        entered.set()
        release.wait(30)
        return Snapshot(0.0, ())

    sampler = Sampler(slow, interval_s=0.01).start()
    draws: list[int] = []
    try:
        panel.set_sampler(sampler)
        qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
        panel.timer.timeout.connect(lambda: draws.append(1))
        qtbot.waitUntil(lambda: len(draws) >= 10, timeout=WAIT_MS)  # the panel's own timer keeps firing
        assert not release.is_set()
    finally:
        release.set()
        sampler.stop(10)


# -- behaviour on fed snapshots ---------------------------------------------------------------------
def test_rates_and_depths_of_the_selected_queue_are_charted(panel: ThroughputPanel) -> None:
    _feed(panel)
    panel.set_selection([ORDERS])
    panel.refresh()
    shown = panel.shown_series()
    assert (*ORDERS, "published") in shown and (*ORDERS, "ready") in shown
    assert panel.store.last((*ORDERS, "published")) == pytest.approx(10.0)
    curve = panel.curve((*ORDERS, "published"))
    assert curve is not None and curve.yData is not None and curve.yData.max() == pytest.approx(10.0)


def test_dead_letters_are_charted_by_reason_when_the_broker_gives_reasons(panel: ThroughputPanel) -> None:
    _feed(panel, dead_reasons=True)
    panel.set_selection([ORDERS])
    panel.refresh()
    shown = panel.shown_series()
    assert (*ORDERS, "dead_lettered.rejected") in shown
    assert (*ORDERS, "dead_lettered") not in shown


def test_with_nothing_selected_the_whole_broker_is_charted(panel: ThroughputPanel) -> None:
    _feed(panel)
    assert panel.scope_objects() == [BROKER]
    assert ("broker", "", "", "published") in panel.shown_series()
    assert panel.store.last(("broker", "", "", "published")) == pytest.approx(13.0)  # 10 + 3 summed
    assert "Whole broker" in panel.status_label.text()


def test_pinned_objects_stay_charted_when_the_selection_changes(panel: ThroughputPanel) -> None:
    _feed(panel)
    panel.set_selection([ORDERS])
    panel.pin_selection()
    assert panel.scope is Scope.PINNED
    panel.set_selection([("queue", "/", "audit")])
    panel.refresh()
    assert all(key[:3] == ORDERS for key in panel.shown_series())
    panel.clear_pins()
    panel.refresh()
    assert panel.shown_series() == []
    assert "Nothing pinned" in panel.status_label.text()


def test_curves_are_created_once_per_series(panel: ThroughputPanel) -> None:
    fed = _feed(panel)
    panel.set_selection([ORDERS])
    panel.refresh()
    first = panel.curve((*ORDERS, "published"))
    for scope in (Scope.BROKER, Scope.SELECTION, Scope.BROKER, Scope.SELECTION):
        panel.set_scope(scope)
    _feed(panel, 5, start=2_000.0, fed=fed)
    assert panel.curve((*ORDERS, "published")) is first


def test_the_window_selector_limits_the_time_shown(panel: ThroughputPanel) -> None:
    _feed(panel, 200)
    panel.set_selection([ORDERS])
    panel.set_window(60)
    panel.refresh()
    t, _ = panel.series_data((*ORDERS, "published"))
    assert t[-1] - t[0] <= 60
    x_range = panel.rates_plot.getViewBox().viewRange()[0]
    assert x_range[1] - x_range[0] == pytest.approx(60, abs=1)
    assert panel.window_box.currentText() == "1 min"


def test_pausing_freezes_the_charts_while_recording_goes_on(panel: ThroughputPanel) -> None:
    fed = _feed(panel)
    panel.set_paused(True)
    draws = panel.draws
    _feed(panel, 5, start=3_000.0, fed=fed)
    assert panel.draws == draws
    assert panel.store.last_time == 3_004.0  # recorded meanwhile
    assert "paused" in panel.status_label.text()
    panel.set_paused(False)
    panel.refresh()
    assert panel.draws > draws and panel.pause_button.text() == "Pause"


def test_a_curve_hidden_from_the_legend_stays_hidden_when_the_scope_is_rebuilt(
    panel: ThroughputPanel,
) -> None:
    _feed(panel)
    panel.set_selection([ORDERS])
    panel.refresh()
    key = (*ORDERS, "acked")
    curve = panel.curve(key)
    assert curve is not None
    sample = next(s for s, _label in panel.rates_legend.items if s.item is curve)
    sample.item.setVisible(False)  # what a click on the legend sample does
    panel.set_scope(Scope.BROKER)
    panel.set_scope(Scope.SELECTION)
    assert not curve.isVisible()
    curve.setVisible(True)
    panel.set_scope(Scope.BROKER)
    panel.set_scope(Scope.SELECTION)
    assert curve.isVisible()


def test_the_hover_read_out_shows_every_visible_series_at_the_nearest_sample(panel: ThroughputPanel) -> None:
    _feed(panel)
    panel.set_selection([ORDERS])
    panel.refresh()
    text = panel.show_readout(1_010.2)
    assert "published: 10/s" in text and "ready: 20" in text
    assert panel.readout.isVisible()
    panel.hide_readout()
    assert not panel.readout.isVisible()


def test_export_writes_the_series_as_csv_and_the_chart_as_png(panel: ThroughputPanel, tmp_path: Path) -> None:
    _feed(panel)
    panel.set_selection([ORDERS])
    panel.refresh()
    rows = panel.export_csv(tmp_path / "series.csv")
    with (tmp_path / "series.csv").open(encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert rows == len(table) - 1 == 29
    assert table[0][:2] == ["time", "epoch_s"] and "orders published /s" in table[0]
    assert panel.export_png(tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 1000


def test_a_draining_queue_shows_its_trend_and_time_to_drain(panel: ThroughputPanel) -> None:
    fed = FedSampler()
    panel.set_sampler(fed)  # type: ignore[arg-type]
    for i in range(40):
        q = queue_stats("orders", ready=1000 - 20 * i, consumers=2, published=5 * i, acked=25 * i)
        fed.push(Snapshot(5_000.0 + i, (q,)))
    panel.set_selection([ORDERS])
    panel.refresh()
    text = panel.status_label.text()
    assert "orders: 220 ready" in text and "\u221220/s" in text and "drains in ~11 s" in text


def test_a_failing_sampler_is_reported(panel: ThroughputPanel) -> None:
    fed = FedSampler()
    fed.error = "broker unreachable"
    panel.set_sampler(fed)  # type: ignore[arg-type]
    panel.refresh()
    assert "Statistics unavailable: broker unreachable" in panel.status_label.text()


def test_the_canvas_selection_maps_to_broker_objects(qtbot: QtBot) -> None:
    doc = TopologyDocument()
    t = doc.topology
    ex, q = Exchange("orders", id="ex"), Queue("orders", id="q")
    for node in (ex, q, Producer("web", target="ex", id="p"), Consumer("biller", source="q", id="c")):
        t.add_node(node)
    t.add_binding(Binding("ex", "q", "k", id="b"))
    editor = DocumentEditor(doc)
    widget = ThroughputPanel(editor)
    qtbot.addWidget(widget)
    assert object_key_for(t.get("b"), t) == ("queue", "/", "orders")
    assert object_key_for(t.get("p"), t) == ("exchange", "/", "orders")
    editor.select(["c", "ex"])
    assert widget.scope_objects() == [("queue", "/", "orders"), ("exchange", "/", "orders")]


def test_a_new_sampler_starts_a_new_history(panel: ThroughputPanel) -> None:
    _feed(panel)
    assert len(panel.store)
    panel.set_sampler(FedSampler())  # type: ignore[arg-type]
    assert len(panel.store) == 0
    assert isinstance(panel.store, SeriesStore)



def test_publishing_on_rabbitmq_makes_the_queues_series_non_zero(
    qtbot: QtBot, panel: ThroughputPanel, rabbitmq_backend: Any, rabbitmq_service: Any
) -> None:
    """The same panel on a real RabbitMQ: statistics come from the management API (which refreshes
    them every few seconds), sampled off the GUI thread."""
    vhost = rabbitmq_backend.vhost
    rabbitmq_backend.http.declare_queue(vhost, "orders")
    for _ in range(50):
        rabbitmq_backend.publish(OutgoingMessage("", b"{}", key="orders"))
    session = BackendSession(lambda: rabbitmq_service.backend(vhost), name="test-monitoring-rabbit")
    sampler = Sampler(session, interval_s=0.5).start()
    orders = ("queue", vhost, "orders")
    try:
        panel.set_sampler(sampler)
        panel.set_selection([orders])
        ready = (*orders, "ready")
        qtbot.waitUntil(lambda: panel.store.last(ready) >= 50, timeout=30_000)
        qtbot.waitUntil(lambda: ready in panel.shown_series(), timeout=WAIT_MS)
        curve = panel.curve(ready)
        assert curve is not None
        qtbot.waitUntil(lambda: curve.yData is not None and curve.yData.max() >= 50, timeout=WAIT_MS)
    finally:
        sampler.stop(10)
        session.close(10)
