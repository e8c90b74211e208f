"""The live message tail and the traffic generator under load.

Part 1 (tail model): 1,000,000 messages (200-byte JSON bodies) pushed through `TailBuffer` into
`MessageTailTableModel` in batches of 1,000 (what a 100 ms drain at 10,000 msg/s sees), with a
`QTableView` attached that scrolls to the end after each batch. Reports RSS before/after (the model
is capped at 10,000 rows, so growth must stay flat however many messages pass), the time per batch
and the scroll-to-end time. Baseline: the same batches appended to a plain Python list (unbounded).

Part 2 (generator + GUI lag): a `ProducerRunner` at 5,000 msg/s into the embedded broker, a
`ConsumerRunner` (prefetch 100) draining the queue, and the tail panel watching the exchange, for
`--seconds`. On the GUI thread a 10 ms `QTimer` measures its own lateness; reports the achieved
publish rate, messages consumed and tailed, and the lag p50/p99/max. Goal: ≥ 4,750 msg/s sustained
(95 %) and lag p99 < 50 ms.

Usage: QT_QPA_PLATFORM=offscreen python benchmarks/tail.py [--messages N] [--seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import QApplication, QTableView

from mqstudio.backends.base import BrokerMessage
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.core.model import Consumer, Producer
from mqstudio.ops.traffic import ConsumerRunner, EmbeddedBroker, ProducerRunner
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.ui.panels.message_models import DEFAULT_CAP, MessageTailTableModel, TailBuffer
from mqstudio.ui.panels.messages import MessageTailPanel

MIB = 1024 * 1024
RATE = 5000.0
LAG_GOAL_MS = 50.0


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def tail_model(app: QApplication, messages: int, batch: int = 1000) -> dict[str, float]:
    model = MessageTailTableModel()
    view = QTableView()
    view.setModel(model)
    view.resize(900, 400)
    view.show()
    app.processEvents()
    buffer = TailBuffer()
    body = json.dumps({"id": 0, "order": {"id": 42, "items": ["a" * 120]}}).encode()
    before = rss()
    batch_times: list[float] = []
    scroll_times: list[float] = []
    peak = before
    for start in range(0, messages, batch):
        for i in range(start, min(messages, start + batch)):
            buffer.push(BrokerMessage("q", body, "orders", f"order.{i % 7}", {"n": i}))
        t0 = time.perf_counter()
        model.append(buffer.drain())
        t1 = time.perf_counter()
        view.scrollToBottom()
        app.processEvents()
        t2 = time.perf_counter()
        batch_times.append(t1 - t0)
        scroll_times.append(t2 - t1)
        if start % (batch * 100) == 0:
            peak = max(peak, rss())
    after = rss()
    # baseline: the same messages in an unbounded list (what a naive tail would hold)
    base_before = rss()
    naive = [BrokerMessage("q", bytes(body), "orders", f"order.{i % 7}", {"n": i}) for i in range(messages)]
    base_after = rss()
    del naive
    view.close()
    return {
        "messages": messages,
        "cap_rows": DEFAULT_CAP,
        "rows_kept": model.rowCount(),
        "rss_before_mb": before / MIB,
        "rss_after_mb": after / MIB,
        "rss_peak_mb": max(peak, after) / MIB,
        "rss_growth_mb": (after - before) / MIB,
        "unbounded_list_growth_mb": (base_after - base_before) / MIB,
        "append_ms_per_1000": statistics.mean(batch_times) * 1000,
        "scroll_to_end_ms_mean": statistics.mean(scroll_times) * 1000,
        "scroll_to_end_ms_p99": pct(scroll_times, 0.99) * 1000,
        "total_s": sum(batch_times) + sum(scroll_times),
    }


def generator_lag(app: QApplication, seconds: float) -> dict[str, float]:
    bt = EmbeddedBrokerThread(port=0)
    bt.start()

    def setup(b):  # type: ignore[no-untyped-def]
        b.declare_exchange("/", "orders", "topic")
        b.declare_queue("/", "work")
        b.queue_bind("/", "work", "orders", "#")

    bt.call(setup).result(10)
    embedded = EmbeddedBroker(bt)
    consumer = ConsumerRunner(embedded, Consumer("worker", prefetch=100), source="work")
    load = Producer("load", routing_key="order.{rand}")
    producer = ProducerRunner(embedded, load, rate=RATE, target="orders")
    panel = MessageTailPanel(lambda: EmbeddedBackend(bt))
    panel.resize(1000, 400)
    panel.show()
    lateness: list[float] = []
    clock = QElapsedTimer()
    interval = 10
    timer = QTimer()
    timer.setInterval(interval)
    expected = [0.0]

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        lateness.append(max(0.0, now - expected[0]))
        expected[0] = now + interval

    timer.timeout.connect(tick)
    consumer.start()
    panel.start("orders")
    clock.start()
    expected[0] = interval
    timer.start()
    producer.start()
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)
    producer.stop()
    elapsed = time.monotonic() - started
    timer.stop()
    sent = producer.stats.sent
    t_end = time.monotonic() + 10
    while consumer.stats.acked < sent and time.monotonic() < t_end:
        app.processEvents()
        time.sleep(0.01)
    consumer.stop()
    panel.drain()
    tailed = panel.model.total_seen
    panel.shutdown()
    panel.close()
    bt.stop()
    lag = lateness[5:]  # skip start-up
    return {
        "target_rate": RATE,
        "seconds": elapsed,
        "published": sent,
        "publish_rate": sent / elapsed,
        "consumed": consumer.stats.acked,
        "tailed_rows_seen": tailed,
        "tail_skipped": panel.buffer.dropped,
        "lag_p50_ms": pct(lag, 0.50),
        "lag_p99_ms": pct(lag, 0.99),
        "lag_max_ms": max(lag) if lag else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    model = tail_model(app, args.messages)
    lag = generator_lag(app, args.seconds)
    if args.json:
        print(json.dumps({"tail_model": model, "generator": lag}, indent=2))
    else:
        print(f"tail model: {model['messages']:,} messages through a {model['cap_rows']:,}-row model "
              f"({model['rows_kept']:,} kept)")
        print(f"  RSS {model['rss_before_mb']:.1f} MB -> {model['rss_after_mb']:.1f} MB "
              f"(growth {model['rss_growth_mb']:.1f} MB, peak {model['rss_peak_mb']:.1f} MB); "
              f"the same messages in an unbounded list: +{model['unbounded_list_growth_mb']:.1f} MB")
        print(f"  append {model['append_ms_per_1000']:.2f} ms per 1,000; scroll to end mean "
              f"{model['scroll_to_end_ms_mean']:.2f} ms, p99 {model['scroll_to_end_ms_p99']:.2f} ms; "
              f"total {model['total_s']:.1f} s")
        print(f"generator: {lag['published']:,} published in {lag['seconds']:.1f} s = "
              f"{lag['publish_rate']:,.0f} msg/s (target {lag['target_rate']:,.0f}); consumed "
              f"{lag['consumed']:,}; tail saw {lag['tailed_rows_seen']:,} (skipped {lag['tail_skipped']:,})")
        ok = lag["lag_p99_ms"] < LAG_GOAL_MS and lag["publish_rate"] >= 0.95 * RATE
        print(f"  GUI event-loop lag p50 {lag['lag_p50_ms']:.1f} ms, p99 {lag['lag_p99_ms']:.1f} ms, "
              f"max {lag['lag_max_ms']:.1f} ms (goal p99 < {LAG_GOAL_MS:.0f} ms) -> "
              f"{'OK' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
