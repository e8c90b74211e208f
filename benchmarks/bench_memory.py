"""Memory held by the embedded broker for queued messages: RSS against the raw body bytes.

Engine mode (default): a child process builds a `Broker`, declares one queue and publishes N
(default 100,000) distinct 1 KiB messages into it without consuming, then reports its own VmRSS
from /proc/self/status before and after. The baseline is the raw body size (N x 1 KiB); what the
engine adds per message is (RSS growth - raw bytes) / N.

Wire mode (--wire): the same N messages published with pika into the embedded AMQP server
(child process, see bench_amqp.py), whose VmRSS is read from /proc/<pid>/status; this includes
the frame decoding path (pamqp properties, joined bodies).

Goal: RSS < 300 MB with 100,000 queued 1 KiB messages.

Usage: python benchmarks/bench_memory.py [--messages N] [--size B] [--wire] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GOAL_MB = 300.0
MIB = 1024 * 1024


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def child(messages: int, size: int) -> dict[str, float]:
    """Runs in the child process: fill one queue, measure our own RSS."""
    import gc

    from mqstudio.broker.broker import Broker
    from mqstudio.broker.message import Properties

    broker = Broker()
    broker.declare_queue("/", "memory")
    publish = broker.vhost("/").publish
    props = Properties(delivery_mode=1, content_type="application/octet-stream")
    gc.collect()
    before = rss_bytes()
    for i in range(messages):
        # Distinct bodies, as off the wire: a shared body object would hide the real cost.
        body = i.to_bytes(8, "big") + os.urandom(size - 8)
        publish("", "memory", props, body)
    gc.collect()
    after = rss_bytes()
    ready = broker.snapshot().queue("memory").ready
    if ready != messages:
        raise RuntimeError(f"expected {messages} ready messages, the queue has {ready}")
    return {"rss_before": before, "rss_after": after}


def engine(messages: int, size: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", "-n", str(messages), "--size", str(size)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def wire(messages: int, size: int) -> dict[str, float]:
    import amqp_throughput as workloads
    import pika
    from bench_amqp import EmbeddedBroker

    broker = EmbeddedBroker()
    try:
        before = rss_bytes(broker.process.pid)
        conn = pika.BlockingConnection(workloads.parameters(broker.url))
        try:
            ch = conn.channel()
            ch.queue_declare("memory")
            body = os.urandom(size)  # the server builds its own body object per message
            workloads.bench_publish(broker.url, "memory", messages, body)
            after = rss_bytes(broker.process.pid)
            ch.queue_delete("memory")
        finally:
            conn.close()
    finally:
        broker.stop()
    return {"rss_before": before, "rss_after": after}


def report(mode: str, figures: dict[str, float], messages: int, size: int) -> dict[str, float | str | bool]:
    raw = messages * size
    growth = figures["rss_after"] - figures["rss_before"]
    return {
        "mode": mode,
        "messages": messages,
        "size": size,
        "raw_mib": raw / MIB,
        "rss_before_mib": figures["rss_before"] / MIB,
        "rss_after_mib": figures["rss_after"] / MIB,
        "rss_growth_mib": growth / MIB,
        "growth_over_raw": growth / raw,
        "overhead_bytes_per_message": (growth - raw) / messages,
        "goal_mb": GOAL_MB,
        "meets_goal": figures["rss_after"] / 1e6 < GOAL_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", "-n", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--wire", action="store_true", help="through the embedded AMQP server")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.messages, args.size)))
        return 0
    mode = "wire" if args.wire else "engine"
    figures = (wire if args.wire else engine)(args.messages, args.size)
    result = report(mode, figures, args.messages, args.size)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.messages:,} queued messages of {args.size} B ({mode})")
    print(f"  raw body bytes (baseline)  {result['raw_mib']:>9.1f} MiB")
    r = result
    print(f"  RSS before / after         {r['rss_before_mib']:>9.1f} / {r['rss_after_mib']:.1f} MiB")
    print(f"  RSS growth                 {r['rss_growth_mib']:>9.1f} MiB  ({r['growth_over_raw']:.2f}x raw)")
    print(f"  overhead per message       {result['overhead_bytes_per_message']:>9.0f} B")
    verdict = "ok" if result["meets_goal"] else "MISS"
    print(f"  goal: RSS < {GOAL_MB:.0f} MB       {result['rss_after_mib'] * MIB / 1e6:>9.1f} MB  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
