"""The Dead Letters panel's Inflow tab: dead letters per second by reason and by origin, drawn from the
monitoring ring buffers (the Throughput panel's store, fed by a real sampler on an embedded broker
session), and the fallback for brokers that do not break dead letters down (RabbitMQ, Kafka)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from mqstudio.backends.base import Backend, BackendKind, OutgoingMessage
from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topology
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.connect import open_backend
from mqstudio.runtime.jobs import BackendSession
from mqstudio.runtime.profiles import ConnectionProfile
from mqstudio.runtime.sampler import Sampler
from mqstudio.ui.monitoring.series import SeriesStore, SnapshotRecorder
from mqstudio.ui.monitoring.throughput import ThroughputPanel
from mqstudio.ui.panels.deadletter_chart import InflowMode, Series, inflow_series
from mqstudio.ui.panels.deadletters import DeadLettersPanel

WAIT = 30_000


def _design(backend: Backend) -> None:
    t = Topology()
    work, dlx = Exchange("work"), Exchange("dlx", ExchangeType.FANOUT)
    orders = Queue("orders", arguments={"x-dead-letter-exchange": "dlx"})
    payments = Queue("payments", arguments={"x-dead-letter-exchange": "dlx", "x-max-length": 1})
    parked = Queue("parked")
    for node in (work, dlx, orders, payments, parked):
        t.add_node(node)
    t.add_binding(Binding(work.id, orders.id, "order"))
    t.add_binding(Binding(work.id, payments.id, "payment"))
    t.add_binding(Binding(dlx.id, parked.id))
    assert backend.apply(backend.plan(t)).ok


def _dead_letter(backend: Backend, rejected: int, overflowed: int) -> None:
    """`rejected` messages die in orders (rejected), `overflowed` in payments (maxlen)."""
    for n in range(rejected):
        backend.publish(OutgoingMessage("work", b"order %d" % n, "order"))
    for message in backend.consume_for_replay("orders", rejected):
        backend.settle(message, ack=False, requeue=False)
    for n in range(overflowed + 1):  # max-length 1: all but the newest are pushed out
        backend.publish(OutgoingMessage("work", b"payment %d" % n, "payment"))


@pytest.fixture
def session() -> Iterator[BackendSession]:
    broker = EmbeddedBrokerThread(None, port=0, name="test-dlq-chart-broker")
    broker.start()
    profile = ConnectionProfile("Embedded broker", BackendKind.EMBEDDED, host="", port=0)
    s = BackendSession(lambda: open_backend(profile, None, broker), name="test-dlq-chart-session")
    s.call(_design).result(WAIT / 1000)
    yield s
    assert s.close(10.0)
    assert broker.stop(10.0)


def _shot(widget: object, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.png"
    assert widget.grab().save(str(path))  # type: ignore[attr-defined]
    if os.environ.get("MQSTUDIO_SCREENSHOTS"):
        widget.grab().save(os.environ["MQSTUDIO_SCREENSHOTS"] + f"/{name}.png")  # type: ignore[attr-defined]
    return path


def _peaks(series: Series) -> dict[str, float]:
    return {label: float(y.max()) if len(y) else 0.0 for label, (_t, y) in series.items()}


def test_the_inflow_chart_shows_both_reasons_and_both_origins_from_the_monitoring_store(
    qtbot: QtBot, session: BackendSession, tmp_path: Path
) -> None:
    throughput = ThroughputPanel()  # owns the monitoring ring buffers, as in the main window
    qtbot.addWidget(throughput)
    sampler = Sampler(session, 0.2, name="test-dlq-chart-stats").start()
    throughput.set_sampler(sampler)
    panel = DeadLettersPanel(lambda: session, journal_path=tmp_path / "journal.sqlite3")
    qtbot.addWidget(panel)
    panel.chart.use_store(lambda: throughput.store)
    panel.resize(1400, 460)
    panel.show()
    panel.tabs.setCurrentWidget(panel.chart)
    try:
        qtbot.waitUntil(lambda: len(throughput.store) >= 1, timeout=WAIT)

        def both(labels: tuple[str, str]) -> bool:
            panel.chart.refresh(force=True)
            peaks = _peaks(panel.chart.series)
            return all(peaks.get(label, 0.0) > 0 for label in labels)

        def generate_until(labels: tuple[str, str]) -> None:
            """Dead letters of both kinds, a round every 250 ms, until the chart has both series
            (the store keeps one sample per second: rates over several samples, not one spike)."""
            for _ in range(120):
                session.call(lambda b: _dead_letter(b, rejected=6, overflowed=3)).result(WAIT / 1000)
                qtbot.wait(250)
                if both(labels):
                    return
            raise AssertionError(f"the chart never showed {labels}: {_peaks(panel.chart.series)}")

        generate_until(("rejected", "max length"))
        assert set(_peaks(panel.chart.series)) == {"rejected", "max length"}
        assert "by reason" in panel.chart.note.text()
        _shot(panel.chart, "deadletters-inflow-by-reason", tmp_path)

        panel.chart.origin_button.click()
        assert panel.chart.mode is InflowMode.ORIGIN
        generate_until(("orders", "payments"))
        assert set(panel.chart.series) == {"orders", "payments"}  # parked dead-letters nothing
        _shot(panel, "deadletters-inflow-by-origin", tmp_path)
        draws = panel.chart.draws
        panel.chart.refresh()  # nothing new in the store: no redraw
        assert panel.chart.draws == draws or throughput.store.version != panel.chart._drawn[1]  # type: ignore[index]
    finally:
        sampler.stop()


def test_without_a_shared_store_the_chart_records_the_panels_own_snapshots(
    qtbot: QtBot, session: BackendSession, tmp_path: Path
) -> None:
    panel = DeadLettersPanel(lambda: None, journal_path=tmp_path / "journal.sqlite3")
    qtbot.addWidget(panel)
    chart = panel.chart
    chart.feed(session.call(lambda b: b.stats()).result(WAIT / 1000))
    session.call(lambda b: _dead_letter(b, rejected=4, overflowed=0)).result(WAIT / 1000)
    later = session.call(lambda b: b.stats()).result(WAIT / 1000)
    chart.feed(Snapshot(max(later.timestamp, chart.store.last_time) + 1.0, later.objects))
    chart.refresh(force=True)
    assert set(_peaks(chart.series)) == {"rejected"}
    assert _peaks(chart.series)["rejected"] > 0


def test_brokers_without_dead_letter_counters_chart_each_dead_letter_queues_inflow() -> None:
    recorder = SnapshotRecorder(SeriesStore())
    for t, published in ((100.0, 0), (101.0, 5), (102.0, 12)):  # a RabbitMQ-like queue snapshot
        recorder.feed(Snapshot(t, (ObjectStats("queue", "parked", "/", counters={"published": published}),
                                   ObjectStats("queue", "orders", "/", counters={"published": 99}))))
    series, note = inflow_series(recorder.store, InflowMode.REASON, 300, [("queue", "parked")])
    assert list(series) == ["parked"]
    assert list(series["parked"][1]) == [5.0, 7.0]
    assert "do not count dead letters by reason" in note
    _, note = inflow_series(recorder.store, InflowMode.ORIGIN, 300, [("queue", "parked")])
    assert "by origin" in note


def test_in_the_main_window_the_chart_reads_the_throughput_panels_store(qtbot: QtBot, tmp_path: Path) -> None:
    from PySide6.QtCore import QSettings

    from mqstudio.ui.mainwindow import MainWindow
    from tests.ui.test_mainwindow import close_quietly

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    try:
        assert window.dead_letters.chart.store is window.monitoring.panel.store
    finally:
        close_quietly(window)
