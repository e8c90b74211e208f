"""Throughput of the embedded broker engine's hot path against a bare dict+deque baseline.

Runs publish → deliver → ack through a direct exchange with one consumer (manual ack, prefetch
large enough never to block) for N messages and reports messages per second. Messages enter through
`Broker.publish`, the call the AMQP server makes for every basic.publish, and leave through
`Session.poll` and `Session.ack`. The baseline does the equivalent work with bare data structures:
route by dict lookup, append to a deque, popleft, insert into and delete from an unacked dict.

The engine runs on the wall clock (`SystemClock`) by default, the clock the embedded broker serves
with, and each batch is bracketed by `Broker.begin_batch()` / `end_batch()` as the AMQP server
brackets each event-loop iteration (mqstudio/amqp/service.py), so untimed publishes share one
clock read per batch. `--manual-clock` runs on a `ManualClock` instead (the engine's work without
any OS clock read); `--no-batch` leaves the batch brackets out (one clock read per publish, as an
in-process caller that does not bracket gets). The output names the clock and the batching used.

Within each round the two take turns every CHUNK messages (baseline, engine, baseline, ...), so a
load change on a shared machine hits both alike. The ratio engine/baseline is the median of the
rounds' ratios (their range and the ratio of the best rates are printed beside it); it is what to
watch: absolute rates depend on the machine and its load (the load average is printed with them).

Usage: python benchmarks/bench_engine.py [--quick] [-n N] [--manual-clock] [--no-batch]
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import Clock, ManualClock, SystemClock
from mqstudio.broker.message import Properties

BATCH = 1000  # messages published between two polls, like a server reading a socket buffer
CHUNK = 25_000  # messages per turn when the two alternate within a round

Runner = Callable[[int], float]  # runs N more messages, returns the seconds they took


def engine_runner(clock: Clock | None = None, *, batched: bool = True) -> Runner:
    broker = Broker(clock if clock is not None else SystemClock())
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
    begin = broker.begin_batch if batched else _nothing
    end = broker.end_batch if batched else _nothing
    total = 0

    def run(n: int) -> float:
        nonlocal total
        done = 0
        t0 = time.perf_counter()
        while done < n:
            begin()
            for _ in range(BATCH):
                publish("/", "bench", "k", props, body)
            for d in poll():
                ack(d.delivery_tag)
            end()
            done += BATCH
        elapsed = time.perf_counter() - t0
        total += done
        stats = broker.snapshot().queue("q")
        assert stats.acked == total and stats.ready == 0 and stats.unacked == 0, stats
        return elapsed

    return run


def _nothing() -> None:
    pass


def baseline_runner() -> Runner:
    routes = {("bench", "k"): "q"}
    queues: dict[str, deque[tuple[bytes, object]]] = {"q": deque()}
    unacked: dict[int, tuple[bytes, object]] = {}
    props = object()
    body = b"x" * 64
    tag = 0

    def run(n: int) -> float:
        nonlocal tag
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
        return time.perf_counter() - t0

    return run


def bench_engine(n: int) -> float:
    """Engine messages per second over one run of `n` (no baseline)."""
    return n / engine_runner()(n)


def bench_baseline(n: int) -> float:
    return n / baseline_runner()(n)


def interleaved(
    n: int, rounds: int, chunk: int = CHUNK, *, manual_clock: bool = False, batched: bool = True
) -> tuple[float, float, list[float]]:
    """Best baseline rate, best engine rate and each round's engine/baseline ratio.

    Within a round the two take turns every `chunk` messages, so both see the same machine load
    (a shared machine's load changes faster than one long run of either takes).
    """
    best_base = best_engine = 0.0
    ratios = []
    chunk = max(BATCH, min(chunk, n) // BATCH * BATCH)
    for _ in range(rounds):
        base_run = baseline_runner()
        engine_run = engine_runner(ManualClock() if manual_clock else SystemClock(), batched=batched)
        gc.collect()
        base_s = engine_s = 0.0
        done = 0
        while done < n:
            base_s += base_run(chunk)
            engine_s += engine_run(chunk)
            done += chunk
        base, engine = done / base_s, done / engine_s
        best_base = max(best_base, base)
        best_engine = max(best_engine, engine)
        ratios.append(engine / base)
    return best_base, best_engine, ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds (CI smoke)")
    parser.add_argument("-n", type=int, default=None, help="messages per round")
    clocks = parser.add_mutually_exclusive_group()
    clocks.add_argument(
        "--manual-clock",
        action="store_true",
        help="run the engine on a ManualClock (its own work, no OS clock read at all)",
    )
    clocks.add_argument(
        "--system-clock",
        action="store_true",
        help="run the engine on the wall clock, as a server does (the default)",
    )
    parser.add_argument(
        "--no-batch",
        action="store_true",
        help="no Broker.begin_batch()/end_batch() around each batch (a clock read per publish)",
    )
    args = parser.parse_args(argv)
    n = args.n or (50_000 if args.quick else 500_000)
    rounds = 3 if args.quick else 7
    load = os.getloadavg()
    batched = not args.no_batch
    base, engine, ratios = interleaved(n, rounds, manual_clock=args.manual_clock, batched=batched)
    ratio = engine / base
    print(f"messages per round: {n:,}, {rounds} rounds; baseline and engine alternate every {CHUNK:,}")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"baseline dict+deque: {base:12,.0f} msg/s")
    clock = "ManualClock" if args.manual_clock else "SystemClock (wall clock, as the server runs)"
    batching = (
        f"begin/end_batch every {BATCH:,} messages, as the AMQP server per loop iteration"
        if batched
        else "no batch brackets: a clock read per publish"
    )
    print(f"engine publish→deliver→ack: {engine:12,.0f} msg/s")
    print(f"engine clock: {clock}; {batching}")
    print(
        f"ratio engine/baseline: median of rounds {statistics.median(ratios):.3f} "
        f"(rounds {min(ratios):.3f}-{max(ratios):.3f}; best rates {ratio:.3f}); "
        "goal >= 0.15; engine goal >= 500,000 msg/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
