"""The embedded AMQP server's own cost per message, without sockets, client or other load.

A profiling aid beside benchmarks/bench_amqp.py (whose wall-clock rates depend on the client and on
whatever else the machine runs): client octets are encoded up front and fed to the real server
stack (AmqpServer's protocol, Connection, BrokerService, ChannelHandler, the in-memory Broker)
through an in-memory transport, in 64 KiB reads for publishes and 8 KiB reads for acks, on a
running asyncio loop so flushes are scheduled as in production.

Workloads: publish (64 B to the default exchange), confirms (the same in confirm mode),
consume (a queue of N messages consumed with manual ack, prefetch 1000; the queue is filled
through the engine first, outside the measurement).

Usage: python benchmarks/amqp_server_cpu.py [-n N] [--repeat R]   CPU µs per message, best of R
       python benchmarks/amqp_server_cpu.py --profile WORKLOAD     cProfile of the measured part
       valgrind --tool=callgrind python benchmarks/amqp_server_cpu.py --once WORKLOAD -n N
           instructions do not depend on the machine's load: run it for two N and divide the
           difference by the difference of N to get instructions per message.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pamqp import body as pamqp_body
from pamqp import commands
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.server import AmqpServer, _ClientProtocol
from mqstudio.amqp.service import BrokerService
from mqstudio.broker.broker import Broker
from mqstudio.broker.message import Properties

QUEUE = "bench"
WORKLOADS = ("publish", "confirms", "consume")
_ACK = struct.Struct(">BHIHHQBB")  # a whole basic.ack frame on the wire


class MemoryTransport(asyncio.Transport):
    """Collects what the server writes; never pushes back."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.writes = 0
        self._closing = False

    def write(self, data: Any) -> None:
        self.written += len(data)
        self.writes += 1

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5672) if name == "peername" else default

    def pause_reading(self) -> None:
        return

    def resume_reading(self) -> None:
        return


def frame(method: Any, channel: int = 0) -> bytes:
    return pamqp_frame.marshal(method, channel)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def measure(workload: str, n: int, profiler: cProfile.Profile | None = None) -> float:
    """CPU seconds the server spent on `n` messages of `workload`."""
    broker = Broker()
    service = BrokerService(broker)
    auth = InMemoryAuthenticator([User.create("guest", "guest", loopback_only=True)], vhosts=["/"])
    protocol = _ClientProtocol(AmqpServer(authenticator=auth, event_handler=service))
    protocol.connection_made(MemoryTransport())

    async def feed(data: bytes) -> None:
        protocol.data_received(data)
        await asyncio.sleep(0)  # the service's flush and the protocol's pump run here
        await asyncio.sleep(0)

    await feed(b"AMQP\x00\x00\x09\x01")
    await feed(frame(commands.Connection.StartOk({}, "PLAIN", "\0guest\0guest")))
    await feed(frame(commands.Connection.TuneOk(2047, 131072, 0)))
    await feed(frame(commands.Connection.Open("/")))
    await feed(frame(commands.Channel.Open(), 1))
    await feed(frame(commands.Queue.Declare(queue=QUEUE), 1))
    body = b"x" * 64
    if workload == "confirms":
        await feed(frame(commands.Confirm.Select(), 1))
    if workload == "consume":
        props = Properties()
        for _ in range(n):
            broker.publish("/", "", QUEUE, props, body)
        await feed(frame(commands.Basic.Qos(prefetch_count=1000), 1))
        reads = [frame(commands.Basic.Consume(queue=QUEUE), 1)]
        acks = b"".join([_ACK.pack(1, 1, 13, 60, 80, tag, 0, 0xCE) for tag in range(1, n + 1)])
        reads += pieces(acks, 8192)
    else:
        one = (
            frame(commands.Basic.Publish(exchange="", routing_key=QUEUE), 1)
            + frame(pamqp_header.ContentHeader(0, len(body), commands.Basic.Properties()), 1)
            + frame(pamqp_body.ContentBody(body), 1)
        )
        reads = pieces(one * n, 65536)
    t0 = time.process_time()
    if profiler is not None:
        profiler.enable()
    for data in reads:
        await feed(data)
    if profiler is not None:
        profiler.disable()
    elapsed = time.process_time() - t0
    queue = broker.queue("/", QUEUE)
    expected = 0 if workload == "consume" else n
    if queue.ready_count != expected or queue.unacked_count:
        left = f"{queue.ready_count} ready, {queue.unacked_count} unacked"
        raise RuntimeError(f"{workload}: the queue holds {left}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--once", choices=WORKLOADS, help="run one workload once (for callgrind)")
    parser.add_argument("--profile", choices=WORKLOADS, help="print a cProfile of one workload")
    args = parser.parse_args(argv)
    if args.once:
        asyncio.run(measure(args.once, args.messages))
        return 0
    if args.profile:
        profiler = cProfile.Profile()
        asyncio.run(measure(args.profile, args.messages, profiler))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return 0
    print(f"embedded AMQP server CPU per message, {args.messages:,} messages of 64 B, best of {args.repeat}")
    for workload in WORKLOADS:
        best = min(asyncio.run(measure(workload, args.messages)) for _ in range(args.repeat))
        print(f"  {workload:10} {best / args.messages * 1e6:6.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
