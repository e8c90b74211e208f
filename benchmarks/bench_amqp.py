"""The embedded AMQP broker against RabbitMQ, same pika workloads, same run, printed as ratios.

Starts the embedded broker (in-memory engine + BrokerService + AmqpServer) in a child process on
a free port, so the broker and the pika clients do not share a GIL, then runs
benchmarks/amqp_throughput.py's workloads against it and against RabbitMQ (--rabbitmq-url,
default 127.0.0.1:5672 guest/guest) and prints each figure with the ratio embedded ÷ RabbitMQ.

Goals: publish and consume ratio >= 1.0, confirms >= 0.8, p99 latency <= 1.5x RabbitMQ's.

Usage: python benchmarks/bench_amqp.py [--quick] [--messages N] [--size B] [--json]
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
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import amqp_throughput as workloads

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

#: (field, label, goal, higher_is_better)
FIGURES = [
    ("publish_msg_s", "publish (no confirms) msg/s", 1.0, True),
    ("confirms_msg_s", "publish (confirms, window 1000) msg/s", 0.8, True),
    ("consume_msg_s", "consume (manual ack, prefetch 1000) msg/s", 1.0, True),
    ("latency_p50_ms", "latency p50 ms @ 1,000 msg/s", None, False),
    ("latency_p99_ms", "latency p99 ms @ 1,000 msg/s", 1.5, False),
]


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
        """CPU seconds (user + system) the broker process has used: a figure that, unlike the
        rates, hardly depends on what else the machine is running."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return None

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ------------------------------------------------------------------------------ comparison


def ratio(embedded: float, rabbit: float, higher_is_better: bool) -> float:
    """embedded ÷ RabbitMQ for rates; for latencies the same quotient (lower is better)."""
    del higher_is_better
    return embedded / rabbit if rabbit else float("nan")


def meets(value: float, goal: float | None, higher_is_better: bool) -> str:
    if goal is None:
        return ""
    ok = value >= goal if higher_is_better else value <= goal
    return "ok" if ok else "MISS"


def report(
    embedded: workloads.Results, rabbit: workloads.Results, rss: float | None, cpu: float | None = None
) -> str:
    lines = [
        f"{embedded.messages:,} messages of {embedded.size} B per workload; latency over "
        f"{embedded.latency_messages:,} messages",
        f"{'':44} {'embedded':>12} {'RabbitMQ':>12} {'ratio':>7}  goal",
    ]
    for field, label, goal, higher in FIGURES:
        e, r = getattr(embedded, field), getattr(rabbit, field)
        q = ratio(e, r, higher)
        goal_text = "" if goal is None else (f">= {goal:.1f}" if higher else f"<= {goal:.1f}")
        fmt = "{:>12,.0f}" if higher else "{:>12.3f}"
        lines.append(
            f"{label:44} {fmt.format(e)} {fmt.format(r)} {q:>7.2f}  {goal_text:8} {meets(q, goal, higher)}"
        )
    if rss is not None:
        lines.append(f"embedded broker RSS after the run: {rss:,.1f} MiB")
    if cpu is not None:
        total = 3 * embedded.messages + embedded.latency_messages
        lines.append(f"embedded broker CPU for the run: {cpu:.2f} s ({cpu / total * 1e6:.0f} µs per message)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="only run the embedded broker")
    parser.add_argument("--profile", help="write a cProfile of the embedded broker to this file")
    parser.add_argument("--rabbitmq-url", default=RABBITMQ_URL)
    parser.add_argument("--embedded-only", action="store_true", help="skip RabbitMQ (profiling)")
    workloads.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.profile)

    messages, latency = workloads.sizes(args)
    broker = EmbeddedBroker(args.profile)
    try:
        t0 = time.perf_counter()
        cpu0 = broker.cpu_s()
        embedded = workloads.run_all(broker.url, messages, args.size, latency)
        rss = broker.rss_mib()
        cpu1 = broker.cpu_s()
        cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        print(f"embedded done in {time.perf_counter() - t0:.1f}s, broker CPU {cpu}s", file=sys.stderr)
    finally:
        broker.stop()
    if args.embedded_only:
        print(json.dumps(asdict(embedded), indent=2) if args.json else workloads.format_table(embedded))
        return 0
    rabbit = workloads.run_all(args.rabbitmq_url, messages, args.size, latency)
    if args.json:
        out = {
            "embedded": asdict(embedded),
            "rabbitmq": asdict(rabbit),
            "ratios": {
                field: ratio(getattr(embedded, field), getattr(rabbit, field), higher)
                for field, _label, _goal, higher in FIGURES
            },
            "goals": {field: goal for field, _label, goal, _higher in FIGURES if goal is not None},
            "embedded_rss_mib": rss,
            "embedded_cpu_s": cpu,
        }
        print(json.dumps(out, indent=2))
    else:
        print(report(embedded, rabbit, rss, cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
