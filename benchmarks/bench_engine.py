"""Throughput of the embedded broker engine's hot path against a bare dict+deque baseline.

Runs publish → deliver → ack through a direct exchange with one consumer (manual ack, prefetch
large enough never to block) for N messages and reports messages per second. Messages enter through
`Broker.publish`, the call the AMQP server makes for every basic.publish, and leave through
`Session.poll` and `Session.ack`. The baseline does the equivalent work with bare data structures:
route by dict lookup, append to a deque, popleft, insert into and delete from an unacked dict.

The two are measured in alternating rounds (baseline, engine, baseline, engine, ...), so a load
change on a shared machine hits both alike; the best round of each gives the rates and the ratio,
and the median of the per-round ratios is printed beside it as a check. The ratio engine/baseline
is what to watch; absolute rates depend on the machine (the load average is printed with them).

Usage: python benchmarks/bench_engine.py [--quick] [-n N]
Goals: >= 500,000 msg/s and ratio >= 0.15.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import ManualClock
from mqstudio.broker.message import Properties

BATCH = 1000  # messages published between two polls, like a server reading a socket buffer


def bench_engine(n: int) -> float:
    broker = Broker(ManualClock())
    broker.declare_exchange("/", "bench", "direct")
    broker.declare_queue("/", "q")
    broker.queue_bind("/", "q", "bench", "k")
    session = broker.open_session("/", "c1")
    session.qos(65535)
    session.basic_consume("q", "ctag")
    props = Properties(delivery_mode=1)
    body = b"x" * 64
    publish = broker.publish
    poll = session.poll
    ack = session.ack
    done = 0
    t0 = time.perf_counter()
    while done < n:
        for _ in range(BATCH):
            publish("/", "bench", "k", props, body)
        for d in poll():
            ack(d.delivery_tag)
        done += BATCH
    elapsed = time.perf_counter() - t0
    stats = broker.snapshot().queue("q")
    assert stats.acked == done and stats.ready == 0 and stats.unacked == 0, stats
    return done / elapsed


def bench_baseline(n: int) -> float:
    routes = {("bench", "k"): "q"}
    queues: dict[str, deque[tuple[bytes, object]]] = {"q": deque()}
    unacked: dict[int, tuple[bytes, object]] = {}
    props = object()
    body = b"x" * 64
    tag = 0
    done = 0
    t0 = time.perf_counter()
    while done < n:
        for _ in range(BATCH):
            queues[routes[("bench", "k")]].append((body, props))
        q = queues["q"]
        tags = []
        while q:
            tag += 1
            unacked[tag] = q.popleft()
            tags.append(tag)
        for t in tags:
            del unacked[t]
        done += BATCH
    return done / (time.perf_counter() - t0)


def interleaved(n: int, rounds: int) -> tuple[float, float, list[float]]:
    """Best baseline rate, best engine rate and each round's engine/baseline ratio."""
    best_base = best_engine = 0.0
    ratios = []
    for _ in range(rounds):
        gc.collect()
        base = bench_baseline(n)
        gc.collect()
        engine = bench_engine(n)
        best_base = max(best_base, base)
        best_engine = max(best_engine, engine)
        ratios.append(engine / base)
    return best_base, best_engine, ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds (CI smoke)")
    parser.add_argument("-n", type=int, default=None, help="messages per round")
    args = parser.parse_args(argv)
    n = args.n or (50_000 if args.quick else 500_000)
    rounds = 3 if args.quick else 7
    load = os.getloadavg()
    base, engine, ratios = interleaved(n, rounds)
    ratio = engine / base
    print(f"messages per round: {n:,} (best of {rounds}, rounds alternating)")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"baseline dict+deque: {base:12,.0f} msg/s")
    print(f"engine publish→deliver→ack: {engine:12,.0f} msg/s")
    print(
        f"ratio engine/baseline: {ratio:.3f}  (median of rounds {statistics.median(ratios):.3f}; "
        "goal >= 0.15; engine goal >= 500,000 msg/s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
