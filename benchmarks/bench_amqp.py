"""The embedded AMQP broker against RabbitMQ, same pika workloads, same run, printed as ratios.

Starts the embedded broker (in-memory engine + BrokerService + AmqpServer) in a child process on
a free port, so the broker and the pika clients do not share a GIL, then runs
benchmarks/amqp_throughput.py's workloads against it and against RabbitMQ (--rabbitmq-url,
default 127.0.0.1:5672 guest/guest) and prints each figure with the ratio embedded ÷ RabbitMQ.

Fairness: both brokers get the same pika client, message size, queue kind (a non-durable classic
queue, transient messages), prefetch, ack mode and confirm window. Each broker is warmed up
first (a short pass of every workload, discarded). Then, for each of --rounds rounds, every
workload runs against the two brokers back to back, the order alternating from round to round,
so a change in the machine's load hits both sides of a pair alike. The figures printed are
medians over the rounds; a ratio is the median of the rounds' paired ratios.

The machine may be shared, so beside the rates (wall clock) each broker's CPU time per message
is read from /proc (the embedded child; RabbitMQ's beam.smp when it runs on this host): a figure
that hardly depends on what else is running.

Goals: publish and consume ratio >= 1.0, confirms >= 0.8, p99 latency <= 1.5x RabbitMQ's.

Usage: python benchmarks/bench_amqp.py [--quick] [--messages N] [--size B] [--rounds R] [--json]
                                       [--profile FILE.prof]   (cProfile of the embedded broker)
       python benchmarks/bench_amqp.py --serve [--profile FILE.prof]   (just the broker; prints
                                       "LISTENING host port", stops on SIGTERM/SIGINT)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import amqp_throughput as workloads
import pika

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

#: (field, label, goal, higher_is_better)
FIGURES = [
    ("publish_msg_s", "publish (no confirms) msg/s", 1.0, True),
    ("confirms_msg_s", "publish (confirms, window 1000) msg/s", 0.8, True),
    ("consume_msg_s", "consume (manual ack, prefetch 1000) msg/s", 1.0, True),
    ("latency_p50_ms", "latency p50 ms @ 1,000 msg/s", None, False),
    ("latency_p99_ms", "latency p99 ms @ 1,000 msg/s", 1.5, False),
]
THROUGHPUT = ("publish", "consume", "confirms")  # run in this order: consume drains what publish queued
WARMUP_MESSAGES = 5_000


# ------------------------------------------------------------------------------ the child broker


def serve(profile: str | None) -> int:
    """Run the embedded broker until SIGTERM/SIGINT; announce the port on stdout."""
    from mqstudio.amqp.auth import InMemoryAuthenticator, User
    from mqstudio.amqp.server import AmqpServer
    from mqstudio.amqp.service import BrokerService
    from mqstudio.broker.broker import Broker

    async def main() -> None:
        service = BrokerService(Broker())
        auth = InMemoryAuthenticator([User.create("guest", "guest", loopback_only=True)], vhosts=["/"])
        server = AmqpServer(authenticator=auth, event_handler=service)
        host, port = await server.start("127.0.0.1", 0)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"LISTENING {host} {port}", flush=True)
        await stop.wait()
        await server.stop(grace=0.2)
        service.close()

    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            asyncio.run(main())
        finally:
            profiler.disable()
            profiler.dump_stats(profile)
    else:
        asyncio.run(main())
    return 0


def cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system) process `pid` has used, all its threads included."""
    if pid is None:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def rabbitmq_pid(url: str) -> int | None:
    """RabbitMQ's Erlang VM (beam.smp) when `url` points at this host and exactly one runs."""
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if b"beam.smp" in cmdline and b"rabbit" in cmdline:
                    found.append(int(entry.name))
    return found[0] if len(found) == 1 else None


class EmbeddedBroker:
    """The child process running `serve`."""

    def __init__(self, profile: str | None = None) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve"]
        if profile:
            cmd += ["--profile", profile]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if len(line) != 3 or line[0] != "LISTENING":
            self.process.kill()
            raise RuntimeError(f"embedded broker did not start: {line!r}")
        self.host, self.port = line[1], int(line[2])

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/%2F"

    def rss_mib(self) -> float | None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return None

    def cpu_s(self) -> float | None:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ------------------------------------------------------------------------------ one broker's side


@dataclass
class Target:
    """One broker under test: its URL, its process (for CPU time), its queues, its figures."""

    name: str
    url: str
    pid: int | None
    queue: str = field(default_factory=lambda: workloads._queue_name("tput"))
    lat_queue: str = field(default_factory=lambda: workloads._queue_name("lat"))
    rates: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)

    def admin(self, action: Callable[[pika.adapters.blocking_connection.BlockingChannel], object]) -> None:
        conn = pika.BlockingConnection(workloads.parameters(self.url))
        try:
            action(conn.channel())
        finally:
            conn.close()

    def declare(self) -> None:
        def declare(ch: pika.adapters.blocking_connection.BlockingChannel) -> None:
            ch.queue_declare(self.queue)
            ch.queue_declare(self.lat_queue)

        self.admin(declare)

    def purge(self) -> None:
        self.admin(lambda ch: ch.queue_purge(self.queue))

    def delete(self) -> None:
        def delete(ch: pika.adapters.blocking_connection.BlockingChannel) -> None:
            ch.queue_delete(self.queue)
            ch.queue_delete(self.lat_queue)

        self.admin(delete)

    def run(self, workload: str, n: int, body: bytes, *, record: bool = True) -> float:
        cpu0 = cpu_seconds(self.pid)
        if workload == "publish":
            rate = workloads.bench_publish(self.url, self.queue, n, body)
        elif workload == "consume":
            rate = workloads.bench_consume(self.url, self.queue, n)
        else:
            rate = workloads.bench_confirms(self.url, self.queue, n, body)
        cpu1 = cpu_seconds(self.pid)
        if record:
            self.rates.setdefault(workload, []).append(rate)
            if cpu0 is not None and cpu1 is not None:
                self.cpu_us.setdefault(workload, []).append((cpu1 - cpu0) / n * 1e6)
        return rate

    def run_latency(self, n: int, size: int, *, record: bool = True) -> None:
        latencies = sorted(workloads.bench_latency(self.url, self.lat_queue, n, size))
        if record:
            self.latency.setdefault("p50", []).append(workloads.percentile(latencies, 0.50) * 1e3)
            self.latency.setdefault("p99", []).append(workloads.percentile(latencies, 0.99) * 1e3)

    def median(self, figure: str) -> float:
        if figure.endswith("_ms"):
            return statistics.median(self.latency[figure.split("_")[1]])
        return statistics.median(self.rates[figure.removesuffix("_msg_s")])

    def values(self, figure: str) -> list[float]:
        if figure.endswith("_ms"):
            return self.latency[figure.split("_")[1]]
        return self.rates[figure.removesuffix("_msg_s")]


def compare(
    embedded: Target, rabbit: Target, messages: int, size: int, latency: int, rounds: int
) -> None:
    """Warm both up, then `rounds` rounds of every workload, the two brokers back to back."""
    body = b"x" * size
    for target in (embedded, rabbit):
        target.declare()
        warm = min(WARMUP_MESSAGES, messages)
        for workload in THROUGHPUT:
            target.run(workload, warm, body, record=False)
        target.purge()
        target.run_latency(min(200, latency), size, record=False)
    for r in range(rounds):
        pair = (embedded, rabbit) if r % 2 == 0 else (rabbit, embedded)
        for workload in THROUGHPUT:
            for target in pair:
                target.run(workload, messages, body)
        for target in pair:
            target.purge()
        for target in pair:
            target.run_latency(latency, size)
        print(f"round {r + 1}/{rounds} done, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)


# ------------------------------------------------------------------------------ comparison


def paired_ratio(embedded: list[float], rabbit: list[float]) -> float:
    """Median over the rounds of embedded ÷ RabbitMQ (for latencies too: lower is better)."""
    ratios = [e / r for e, r in zip(embedded, rabbit, strict=True) if r]
    return statistics.median(ratios) if ratios else float("nan")


def meets(value: float, goal: float | None, higher_is_better: bool) -> str:
    if goal is None:
        return ""
    ok = value >= goal if higher_is_better else value <= goal
    return "ok" if ok else "MISS"


def summary(embedded: Target, rabbit: Target) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name, _label, goal, _higher in FIGURES:
        out[name] = {
            "embedded": embedded.median(name),
            "rabbitmq": rabbit.median(name),
            "ratio": paired_ratio(embedded.values(name), rabbit.values(name)),
            "goal": goal,
        }
    for workload in THROUGHPUT:
        e, r = embedded.cpu_us.get(workload), rabbit.cpu_us.get(workload)
        out[f"{workload}_cpu_us_per_msg"] = {
            "embedded": statistics.median(e) if e else None,
            "rabbitmq": statistics.median(r) if r else None,
            "ratio": None,
            "goal": None,
        }
    return out


def report(
    embedded: Target,
    rabbit: Target,
    args: argparse.Namespace,
    messages: int,
    latency: int,
    rss: float | None,
    loads: tuple[float, float],
) -> str:
    figures = summary(embedded, rabbit)
    lines = [
        f"{messages:,} messages of {args.size} B per workload, {args.rounds} rounds (medians; a ratio is "
        f"the median of the rounds' paired ratios); latency over {latency:,} messages",
        f"{'':44} {'embedded':>12} {'RabbitMQ':>12} {'ratio':>7}  goal",
    ]
    for name, label, goal, higher in FIGURES:
        f = figures[name]
        e, r, q = f["embedded"], f["rabbitmq"], f["ratio"]
        assert e is not None and r is not None and q is not None
        goal_text = "" if goal is None else (f">= {goal:.1f}" if higher else f"<= {goal:.1f}")
        fmt = "{:>12,.0f}" if higher else "{:>12.3f}"
        lines.append(
            f"{label:44} {fmt.format(e)} {fmt.format(r)} {q:>7.2f}  {goal_text:8} {meets(q, goal, higher)}"
        )
    lines.append("broker CPU µs per message (load-independent; RabbitMQ's when it runs on this host):")
    for workload in THROUGHPUT:
        f = figures[f"{workload}_cpu_us_per_msg"]
        e, r = f["embedded"], f["rabbitmq"]
        e_text = "n/a" if e is None else f"{e:.1f}"
        r_text = "n/a" if r is None else f"{r:.1f}"
        lines.append(f"  {workload:42} {e_text:>12} {r_text:>12}")
    if rss is not None:
        lines.append(f"embedded broker RSS after the run: {rss:,.1f} MiB")
    cpus = os.cpu_count()
    lines.append(f"load average (1 min) at start / end: {loads[0]:.2f} / {loads[1]:.2f} on {cpus} CPUs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="only run the embedded broker")
    parser.add_argument("--profile", help="write a cProfile of the embedded broker to this file")
    parser.add_argument("--rabbitmq-url", default=RABBITMQ_URL)
    parser.add_argument("--embedded-only", action="store_true", help="skip RabbitMQ (profiling)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    workloads.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.profile)

    messages, latency = workloads.sizes(args)
    rounds = 1 if args.quick else args.rounds
    args.rounds = rounds
    broker = EmbeddedBroker(args.profile)
    try:
        if args.embedded_only:
            t0, cpu0 = time.perf_counter(), broker.cpu_s()
            embedded = workloads.run_all(broker.url, messages, args.size, latency)
            cpu1 = broker.cpu_s()
            cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
            print(f"embedded done in {time.perf_counter() - t0:.1f}s, broker CPU {cpu}s", file=sys.stderr)
            print(json.dumps(asdict(embedded), indent=2) if args.json else workloads.format_table(embedded))
            return 0
        load0 = os.getloadavg()[0]
        ours = Target("embedded", broker.url, broker.process.pid)
        rabbit = Target("rabbitmq", args.rabbitmq_url, rabbitmq_pid(args.rabbitmq_url))
        try:
            compare(ours, rabbit, messages, args.size, latency, rounds)
        finally:
            for target in (ours, rabbit):
                with contextlib.suppress(Exception):
                    target.delete()
        rss = broker.rss_mib()
        loads = (load0, os.getloadavg()[0])
    finally:
        broker.stop()
    if args.json:
        out = {
            "messages": messages,
            "size": args.size,
            "rounds": rounds,
            "latency_messages": latency,
            "figures": summary(ours, rabbit),
            "raw": {
                t.name: {"rates": t.rates, "cpu_us_per_msg": t.cpu_us, "latency_ms": t.latency}
                for t in (ours, rabbit)
            },
            "embedded_rss_mib": rss,
            "load_average": loads,
        }
        print(json.dumps(out, indent=2))
    else:
        print(report(ours, rabbit, args, messages, latency, rss, loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
