"""AMQP 0-9-1 throughput and latency workloads with pika, against any broker.

Workloads (one fresh connection each, on a uniquely named queue deleted afterwards):
- publish:  N messages to the default exchange without confirms; the clock stops when the broker
            reports all N in the queue (passive queue.declare), so it measures the broker's intake,
            not just pika filling a socket buffer;
- consume:  the same N messages with manual ack (one basic.ack per message), prefetch 1000;
- confirms: N messages with publisher confirms, at most 1000 unconfirmed in flight, published
            asynchronously with pika's SelectConnection (BlockingConnection waits per message);
- latency:  end to end (publish → deliver), paced at 1,000 msg/s, p50 and p99 in milliseconds.

The client is pure-Python pika, so absolute figures are often client-bound; compare brokers with
benchmarks/bench_amqp.py, which runs these against the embedded broker and RabbitMQ in one run.

Usage: python benchmarks/amqp_throughput.py --url amqp://guest:guest@127.0.0.1:5672/%2F
       [--messages N] [--size BYTES] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import pika
import pika.channel
import pika.frame
import pika.spec

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
WINDOW = 1000  # unconfirmed publishes in flight
PREFETCH = 1000
LATENCY_RATE = 1000.0  # msg/s
_STAMP = struct.Struct(">d")


@dataclass(slots=True)
class Results:
    url: str
    messages: int
    size: int
    publish_msg_s: float
    consume_msg_s: float
    confirms_msg_s: float
    latency_messages: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_mean_ms: float


def parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = 0  # a benchmark run must not be cut by missed heartbeats
    params.blocked_connection_timeout = None
    params.connection_attempts = 1
    return params


def _queue_name(tag: str) -> str:
    return f"bench-{tag}-{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------------------------ asynchronous runs


class _AsyncRun:
    """One SelectConnection and channel; subclasses start work in `_begin` and call `_finish`.

    pika's BlockingConnection flushes the socket on every publish and ack, which caps it far
    below what a broker can take; the asynchronous connection batches writes, so these
    workloads measure the broker rather than the client.
    """

    def __init__(self, url: str, queue: str, n: int) -> None:
        self.url, self.queue, self.n = url, queue, n
        self.t0 = 0.0
        self.elapsed = 0.0
        self.error: str | None = None
        self._conn: pika.SelectConnection | None = None
        self.channel: pika.channel.Channel | None = None

    def run(self) -> float:
        self._conn = pika.SelectConnection(
            parameters(self.url),
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )
        self._conn.ioloop.start()
        if self.error:
            raise RuntimeError(self.error)
        if not self.elapsed:
            raise RuntimeError("the run ended before it finished")
        return self.n / self.elapsed

    def _on_closed(self, _conn: Any, reason: BaseException) -> None:
        if not self.elapsed and self.error is None:
            self.error = f"connection closed: {reason!r}"
        assert self._conn is not None
        self._conn.ioloop.stop()

    def _on_open_error(self, _conn: Any, err: BaseException) -> None:
        self.error = f"connection failed: {err!r}"
        assert self._conn is not None
        self._conn.ioloop.stop()

    def _on_open(self, conn: pika.SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: pika.channel.Channel) -> None:
        self.channel = channel
        self._begin()

    def _begin(self) -> None:
        raise NotImplementedError

    def call_later(self, delay: float, callback: Any) -> None:
        assert self._conn is not None
        self._conn.ioloop.call_later(delay, callback)

    def _finish(self) -> None:
        self.elapsed = time.perf_counter() - self.t0
        assert self._conn is not None
        self._conn.close()


class _Publisher(_AsyncRun):
    """Publishes N without confirms in batches, then polls until the queue holds all N."""

    BATCH = 500

    def __init__(self, url: str, queue: str, n: int, body: bytes) -> None:
        super().__init__(url, queue, n)
        self.body = body
        self.published = 0

    def _begin(self) -> None:
        self.t0 = time.perf_counter()
        self._batch()

    def _batch(self) -> None:
        assert self.channel is not None
        count = min(self.BATCH, self.n - self.published)
        publish = self.channel.basic_publish
        for _ in range(count):
            publish("", self.queue, self.body)
        self.published += count
        if self.published < self.n:
            self.call_later(0, self._batch)  # let the loop write between batches
        else:
            self._check()

    def _check(self) -> None:
        assert self.channel is not None
        self.channel.queue_declare(self.queue, passive=True, callback=self._on_count)

    def _on_count(self, frame: pika.frame.Method) -> None:
        if frame.method.message_count >= self.n:
            self._finish()
        else:
            self.call_later(0.002, self._check)


class _Consumer(_AsyncRun):
    """Consumes N with one basic.ack per message, prefetch 1000."""

    def __init__(self, url: str, queue: str, n: int) -> None:
        super().__init__(url, queue, n)
        self.received = 0

    def _begin(self) -> None:
        assert self.channel is not None
        self.channel.basic_qos(prefetch_count=PREFETCH, callback=self._on_qos)

    def _on_qos(self, _frame: pika.frame.Method) -> None:
        assert self.channel is not None
        self.t0 = time.perf_counter()
        self.channel.basic_consume(self.queue, self._on_message)

    def _on_message(
        self, channel: pika.channel.Channel, method: pika.spec.Basic.Deliver, _props: Any, _body: bytes
    ) -> None:
        channel.basic_ack(method.delivery_tag)
        self.received += 1
        if self.received == self.n:
            self._finish()


def bench_publish(url: str, queue: str, n: int, body: bytes) -> float:
    """Messages per second until the broker holds all N (no confirms)."""
    return _Publisher(url, queue, n, body).run()


def bench_consume(url: str, queue: str, n: int) -> float:
    """Messages per second consumed and acked one by one, prefetch 1000."""
    return _Consumer(url, queue, n).run()


# ------------------------------------------------------------------------------ confirms


class _ConfirmPublisher(_AsyncRun):
    """Keeps `window` publishes unconfirmed until N are confirmed."""

    def __init__(self, url: str, queue: str, n: int, body: bytes, window: int) -> None:
        super().__init__(url, queue, n)
        self.body, self.window = body, window
        self.published = 0
        self.confirmed = 0
        self.nacked = 0
        self._low = 1  # lowest delivery tag not yet confirmed
        self._single: set[int] = set()  # confirmed out of order, above _low

    def _begin(self) -> None:
        assert self.channel is not None
        self.channel.confirm_delivery(self._on_confirm, callback=self._on_select_ok)

    def _on_select_ok(self, _frame: pika.frame.Method) -> None:
        self.t0 = time.perf_counter()
        self._pump()

    def _pump(self) -> None:
        channel = self.channel
        assert channel is not None
        room = min(self.n - self.published, self.window - (self.published - self.confirmed))
        for _ in range(room):
            channel.basic_publish("", self.queue, self.body)
        self.published += max(room, 0)

    def _confirm(self, tag: int, multiple: bool) -> None:
        if multiple:
            for t in range(self._low, tag + 1):
                if t in self._single:
                    self._single.discard(t)
                else:
                    self.confirmed += 1
            self._low = max(self._low, tag + 1)
        elif tag >= self._low and tag not in self._single:
            self.confirmed += 1
            self._single.add(tag)
            while self._low in self._single:
                self._single.discard(self._low)
                self._low += 1

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        before = self.confirmed
        self._confirm(method.delivery_tag, method.multiple)
        if isinstance(method, pika.spec.Basic.Nack):
            self.nacked += self.confirmed - before
        if self.confirmed >= self.n:
            if self.nacked:
                self.error = f"{self.nacked} publishes were nacked"
            self._finish()
        else:
            self._pump()


def bench_confirms(url: str, queue: str, n: int, body: bytes, window: int = WINDOW) -> float:
    """Messages per second with publisher confirms, `window` unconfirmed in flight."""
    return _ConfirmPublisher(url, queue, n, body, window).run()


# ------------------------------------------------------------------------------ latency


def bench_latency(url: str, queue: str, n: int, size: int, rate: float = LATENCY_RATE) -> list[float]:
    """End-to-end latencies in seconds, publishing at `rate` msg/s to a waiting consumer."""
    latencies: list[float] = []
    ready = threading.Event()
    done = threading.Event()
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            conn = pika.BlockingConnection(parameters(url))
            try:
                ch = conn.channel()
                ch.basic_qos(prefetch_count=PREFETCH)

                def on_message(channel: Any, method: Any, _props: Any, body: bytes) -> None:
                    latencies.append(time.perf_counter() - _STAMP.unpack_from(body)[0])
                    channel.basic_ack(method.delivery_tag)
                    if len(latencies) >= n:
                        channel.stop_consuming()

                ch.basic_consume(queue, on_message)
                ready.set()
                ch.start_consuming()
            finally:
                conn.close()
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()
            done.set()

    consumer = threading.Thread(target=consume, name="latency-consumer", daemon=True)
    consumer.start()
    ready.wait(30)
    if failure:
        raise RuntimeError(f"latency consumer failed: {failure[0]!r}")
    pad = b"x" * max(0, size - _STAMP.size)
    conn = pika.BlockingConnection(parameters(url))
    try:
        ch = conn.channel()
        t0 = time.perf_counter()
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ch.basic_publish("", queue, _STAMP.pack(time.perf_counter()) + pad)
        if not done.wait(60):
            raise RuntimeError(f"latency consumer got {len(latencies)} of {n} messages")
    finally:
        conn.close()
    consumer.join(10)
    if failure:
        raise RuntimeError(f"latency consumer failed: {failure[0]!r}")
    return latencies


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


# ------------------------------------------------------------------------------ driver


def run_all(url: str, messages: int, size: int, latency_messages: int) -> Results:
    """Every workload against one broker; queues are deleted afterwards."""
    body = b"x" * size
    queue = _queue_name("tput")
    lat_queue = _queue_name("lat")
    setup = pika.BlockingConnection(parameters(url))
    try:
        ch = setup.channel()
        ch.queue_declare(queue)
        ch.queue_declare(lat_queue)
        try:
            publish = bench_publish(url, queue, messages, body)
            consume = bench_consume(url, queue, messages)
            confirms = bench_confirms(url, queue, messages, body)
            ch.queue_purge(queue)
            latencies = sorted(bench_latency(url, lat_queue, latency_messages, size))
        finally:
            if ch.is_open:
                ch.queue_delete(queue)
                ch.queue_delete(lat_queue)
    finally:
        if setup.is_open:
            setup.close()
    return Results(
        url=url,
        messages=messages,
        size=size,
        publish_msg_s=publish,
        consume_msg_s=consume,
        confirms_msg_s=confirms,
        latency_messages=latency_messages,
        latency_p50_ms=percentile(latencies, 0.50) * 1e3,
        latency_p99_ms=percentile(latencies, 0.99) * 1e3,
        latency_mean_ms=statistics.fmean(latencies) * 1e3,
    )


def format_table(results: Results) -> str:
    rows = [
        ("publish (no confirms)", f"{results.publish_msg_s:,.0f} msg/s"),
        (f"publish (confirms, window {WINDOW})", f"{results.confirms_msg_s:,.0f} msg/s"),
        (f"consume (manual ack, prefetch {PREFETCH})", f"{results.consume_msg_s:,.0f} msg/s"),
        (f"latency p50 @ {LATENCY_RATE:,.0f} msg/s", f"{results.latency_p50_ms:.3f} ms"),
        (f"latency p99 @ {LATENCY_RATE:,.0f} msg/s", f"{results.latency_p99_ms:.3f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{results.url}  ({results.messages:,} messages of {results.size} B)"]
    lines += [f"  {name:<{width}}  {value:>16}" for name, value in rows]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", "-n", type=int, default=None, help="messages per workload")
    parser.add_argument("--size", type=int, default=64, help="message body size in bytes")
    parser.add_argument("--quick", action="store_true", help="small run (smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def sizes(args: argparse.Namespace) -> tuple[int, int]:
    """(messages, latency messages) from --messages / --quick."""
    messages = args.messages or (2_000 if args.quick else 50_000)
    latency = 500 if args.quick else 3_000
    return messages, min(latency, max(messages, 100))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    add_arguments(parser)
    args = parser.parse_args(argv)
    messages, latency = sizes(args)
    results = run_all(args.url, messages, args.size, latency)
    print(json.dumps(asdict(results), indent=2) if args.json else format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
