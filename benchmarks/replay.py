"""Replay throughput on a real RabbitMQ: 10,000 dead letters replayed with confirms, against a baseline
measured in the same run — plain pika publishing the same messages with the same confirm window.

    .venv/bin/python benchmarks/replay.py [--count 10000] [--batch 200] [--window 512]

Environment as the tests (``MQSTUDIO_RABBITMQ_HOST`` …). Creates and deletes a vhost of its own.
The replay does more than the baseline: it takes each message (basic.get), journals every batch
(SQLite, synchronous=FULL, 3 commits per batch), publishes with confirms + mandatory and acks each
source after its confirm. Prints msg/s for both, the ratio, and lost (must be 0).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mqstudio.backends.base import OutgoingMessage
from mqstudio.backends.rabbitmq import RabbitMQBackend
from mqstudio.backends.rabbitmq_http import ManagementClient
from mqstudio.ops.journal import Journal
from mqstudio.ops.provenance import replay_headers
from mqstudio.ops.replay import ReplayJob


def env(name: str, default: str) -> str:
    return os.environ.get(f"MQSTUDIO_RABBITMQ_{name}", default)


def baseline(
    host: str, port: int, vhost: str, user: str, password: str, messages: list[OutgoingMessage], window: int
) -> float:
    """Plain pika: publish with confirms, `window` unconfirmed at a time; seconds taken."""
    params = pika.ConnectionParameters(host, port, vhost, pika.PlainCredentials(user, password))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    pending: set[int] = set()

    def on_confirm(frame: pika.frame.Method) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        if multiple:
            pending.difference_update([s for s in pending if s <= tag])
        else:
            pending.discard(tag)

    ready = []
    ch._impl.confirm_delivery(on_confirm, callback=lambda _f: ready.append(True))
    while not ready:
        conn.process_data_events(0.05)
    start = time.perf_counter()
    for seq, m in enumerate(messages, start=1):
        pending.add(seq)
        props = pika.BasicProperties(headers=m.headers, **m.properties)
        ch._impl.basic_publish(m.target, m.key, m.body, props, mandatory=True)
        while len(pending) >= window:
            conn.process_data_events(0.05)
    while pending:
        conn.process_data_events(0.05)
    took = time.perf_counter() - start
    conn.close()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--window", type=int, default=512)
    args = parser.parse_args()
    host, port = env("HOST", "127.0.0.1"), int(env("PORT", "5672"))
    mport, user, password = (
        int(env("MANAGEMENT_PORT", "15672")),
        env("USER", "guest"),
        env("PASSWORD", "guest"),
    )
    admin = ManagementClient(host, mport, username=user, password=password, prometheus_port=None)
    vhost = f"mqs-bench-{uuid.uuid4().hex[:8]}"
    admin.create_vhost(vhost, description="mqstudio replay benchmark; safe to delete")
    admin.set_permissions(vhost, user)
    try:
        backend = RabbitMQBackend(
            host,
            port,
            username=user,
            password=password,
            vhost=vhost,
            management_port=mport,
            prometheus_port=None,
        )
        backend.connect()
        admin.declare_exchange(vhost, "dlx", "fanout")
        admin.declare_queue(vhost, "work", arguments={"x-dead-letter-exchange": "dlx"})
        admin.declare_queue(vhost, "dlq")
        admin.declare_queue(vhost, "sink")
        admin.bind(vhost, "dlx", "dlq")
        n = args.count
        originals = [
            OutgoingMessage(
                "",
                b"payload %d " % i + b"x" * 200,
                key="work",
                properties={"message_id": f"m{i}", "delivery_mode": 2},
            )
            for i in range(n)
        ]
        for start in range(0, n, 1000):
            assert all(r.routed for r in backend.publish_many(originals[start : start + 1000]))
        rejected = 0
        while rejected < n:
            for m in (taken := backend.consume_for_replay("work", 1000)):
                backend.settle(m, ack=False, requeue=False)
            rejected += len(taken)
        while backend.message_count("dlq") < n:
            time.sleep(0.05)

        # the baseline publishes what the replay will publish (same bodies, properties, headers)
        sample = backend.consume_for_replay("dlq", 1)
        backend.settle(sample[0], ack=False, requeue=True)
        headers = replay_headers(sample[0], source="dlq", job_id="bench")
        copies = [
            OutgoingMessage("", m.body, key="sink", headers=headers, properties=m.properties)
            for m in originals
        ]
        base_s = baseline(host, port, vhost, user, password, copies, args.window)
        admin.purge_queue(vhost, "sink")

        with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "j.sqlite3") as journal:
            start = time.perf_counter()
            report = ReplayJob(backend, "dlq", journal=journal, batch_size=args.batch).run()
            replay_s = time.perf_counter() - start
        while backend.message_count("work") < report.replayed:
            time.sleep(0.05)
        in_work, in_dlq = backend.message_count("work"), backend.message_count("dlq")
        lost = n - in_work - in_dlq
        backend.close()
    finally:
        admin.delete_vhost(vhost)
        admin.close()
    print(f"messages          {n}  (batch {args.batch}, confirm window {args.window})")
    print(f"baseline pika     {n / base_s:9.0f} msg/s  ({base_s:.2f} s, publish + confirms only)")
    print(f"replay            {n / replay_s:9.0f} msg/s  ({replay_s:.2f} s, take + journal + publish + ack)")
    print(f"ratio             {base_s / replay_s:9.2f}  (replay / baseline throughput)")
    print(
        f"replayed {report.replayed}, failed {len(report.failed)}, in work {in_work}, in dlq {in_dlq}, "
        f"lost {lost}"
    )
    return 0 if lost == 0 and report.replayed == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
