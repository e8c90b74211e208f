"""Throughput of persistent publishing with group commit, against the in-memory engine in the same run.

Publishes persistent messages (delivery_mode 2, 64-byte body, a small header table) to a durable
queue and calls `Broker.commit()` after every batch, as the AMQP layer does once per batch of socket
input before it sends publisher confirms. Batch sizes 1, 100 and 1000; stores: SqliteStore with
durability "power" (synchronous=FULL: fsync per commit) and "process" (synchronous=NORMAL), plus
NullStore (the journal's bookkeeping without I/O). The baseline is the same publishing on a broker
without a store. Ratios store/in-memory are what to watch; absolute rates depend on the disk (fsync
cost dominates batch size 1 with "power").

Usage: python benchmarks/bench_store.py [--quick] [--dir DIR]
(DIR: where the store files go; default a temporary directory, often tmpfs — pass a directory on a
real disk to see fsync costs.)
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import ManualClock
from mqstudio.broker.message import Properties
from mqstudio.broker.store import NullStore, SqliteStore, Store

BODY = b"x" * 64


def run(make_store: Callable[[], Store | None], n: int, batch: int) -> float:
    """Messages per second for publish + commit-per-batch of n persistent messages."""
    store = make_store()
    broker = Broker(ManualClock(), store=store)
    broker.declare_queue("/", "q")
    broker.commit()
    publish = broker.vhost("/").publish
    commit = broker.commit
    done = 0
    gc.collect()
    t0 = time.perf_counter()
    while done < n:
        for i in range(batch):
            publish("", "q", Properties(delivery_mode=2, headers={"seq": done + i}), BODY)
        commit()
        done += batch
    elapsed = time.perf_counter() - t0
    assert broker.queue("/", "q").message_count == done
    assert not broker.needs_commit
    broker.close()
    return done / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer messages (CI smoke)")
    parser.add_argument("--dir", default=None, help="directory for the store files")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    sizes = {1: int(2_000 * scale), 100: int(50_000 * scale), 1000: int(100_000 * scale)}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        counter = iter(range(1_000_000))

        def sqlite(durability: str) -> Callable[[], Store]:
            def make() -> Store:
                path = Path(tmp) / f"bench-{next(counter)}.sqlite3"
                return SqliteStore(path, durability=durability)  # type: ignore[arg-type]

            return make

        kinds: list[tuple[str, Callable[[], Store | None]]] = [
            ("in-memory (no store)", lambda: None),
            ("NullStore (bookkeeping)", NullStore),
            ("sqlite durability=process", sqlite("process")),
            ("sqlite durability=power", sqlite("power")),
        ]
        print(f"store files in {tmp}")
        print(f"{'batch':>6}  {'store':<28}{'msg/s':>12}  {'commits/s':>10}  {'vs in-memory':>12}")
        for batch, n in sizes.items():
            base = 0.0
            for name, make in kinds:
                rate = run(make, n, batch)
                if make is kinds[0][1]:
                    base = rate
                print(
                    f"{batch:>6}  {name:<28}{rate:>12,.0f}  {rate / batch:>10,.0f}  {rate / base:>12.3f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
