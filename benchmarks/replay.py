"""Replay throughput on a real RabbitMQ: 10,000 dead letters replayed with confirms, against a baseline
measured in the same run: a plain-pika replay written the fast way (see `baseline`).

    .venv/bin/python benchmarks/replay.py [--count 10000] [--batch 200] [--window 512]

Environment as the tests (``MQSTUDIO_RABBITMQ_HOST`` …). Creates and deletes a vhost of its own.
Both move the same 10,000 dead letters from the DLQ back to their origin queue (the baseline first,
then the messages die again and the replay moves them). The replay does more than the baseline: it
journals every batch (SQLite, synchronous=FULL) before publishing, checks each message (loop guard,
origin, filter) and holds anything refused. Prints msg/s for both, the ratio, the machine's load
average and lost (must be 0 for both).
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
from pika.spec import Basic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mqstudio.backends.base import OutgoingMessage
from mqstudio.backends.rabbitmq import RabbitMQBackend
from mqstudio.backends.rabbitmq_http import ManagementClient
from mqstudio.ops.journal import Journal
from mqstudio.ops.replay import ReplayJob


def env(name: str, default: str) -> str:
    return os.environ.get(f"MQSTUDIO_RABBITMQ_{name}", default)


def baseline(host: str, port: int, vhost: str, user: str, password: str, n: int, window: int) -> float:
    """Plain pika, written the fast way: a consumer on the DLQ with prefetch `window`; each delivery
    republished at once to its origin (``x-death[0]`` exchange and routing key) with confirms +
    mandatory and the same provenance headers; the sources acked with ``multiple`` as the confirmed
    prefix grows. No journal, no filter, no budget. Seconds taken for `n` messages."""
    params = pika.ConnectionParameters(host, port, vhost, pika.PlainCredentials(user, password))
    conn = pika.BlockingConnection(params)
    take, put = conn.channel()._impl, conn.channel()._impl
    tags: dict[int, int] = {}  # publish sequence number -> source delivery tag
    done: set[int] = set()
    state = {"seq": 0, "acked": 0, "next": 1, "failed": 0, "ready": False}

    def on_message(_ch: object, method: Basic.Deliver, props: pika.BasicProperties, body: bytes) -> None:
        headers = dict(props.headers or {})
        death = headers.pop("x-death")[0]
        for name in [h for h in headers if h.startswith(("x-first-death-", "x-last-death-"))]:
            del headers[name]
        headers.update(
            {
                "mqstudio-replay-count": 1,
                "mqstudio-replayed-from": "dlq",
                "mqstudio-replay-job": "baseline",
                "mqstudio-original-death": {"reason": death["reason"], "queue": death["queue"]},
            }
        )
        props.headers = headers
        state["seq"] += 1
        tags[state["seq"]] = method.delivery_tag
        put.basic_publish(death["exchange"], death["routing-keys"][0], body, props, mandatory=True)

    def on_confirm(frame: pika.frame.Method) -> None:
        m = frame.method
        if not isinstance(m, Basic.Ack):
            state["failed"] += 1
        seqs = [s for s in tags if s <= m.delivery_tag and s not in done] if m.multiple else [m.delivery_tag]
        done.update(seqs)
        last = 0
        while state["next"] in done:  # the contiguous confirmed prefix
            done.discard(state["next"])
            last = tags.pop(state["next"])
            state["next"] += 1
        if last:
            take.basic_ack(last, multiple=True)
            state["acked"] = state["next"] - 1

    put.confirm_delivery(on_confirm, callback=lambda _f: state.update(ready=True))
    put.add_on_return_callback(lambda *_a: state.update(failed=state["failed"] + 1))
    while not state["ready"]:
        conn.process_data_events(0.05)
    start = time.perf_counter()
    take.basic_qos(prefetch_count=window)
    take.basic_consume("dlq", on_message)
    while state["acked"] < n:
        conn.process_data_events(0.05)
    took = time.perf_counter() - start
    conn.close()
    assert state["failed"] == 0, "the baseline lost messages"
    return took


def dead_letter(backend: RabbitMQBackend, n: int) -> None:
    """Reject every message of queue work into the DLQ (through its dead-letter exchange)."""
    rejected = 0
    while rejected < n:
        for m in (taken := backend.consume_for_replay("work", 1000)):
            backend.settle(m, ack=False, requeue=False)
        rejected += len(taken)
    while backend.message_count("dlq") < n:
        time.sleep(0.05)


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
        dead_letter(backend, n)
        base_s = baseline(host, port, vhost, user, password, n, args.window)
        while backend.message_count("work") < n:
            time.sleep(0.05)
        base_lost = n - backend.message_count("work") - backend.message_count("dlq")
        dead_letter(backend, n)  # the same messages die again: the replay gets the same shape

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
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"messages          {n}  (batch {args.batch}, window {args.window}; load average {load})")
    print(f"baseline pika     {n / base_s:9.0f} msg/s  ({base_s:.2f} s, consume + publish + confirm + ack)")
    print(f"replay            {n / replay_s:9.0f} msg/s  ({replay_s:.2f} s, the same + journal, checks)")
    print(f"ratio             {base_s / replay_s:9.2f}  (replay / baseline throughput)")
    print(f"baseline lost     {base_lost}")
    print(
        f"replayed {report.replayed}, failed {len(report.failed)}, in work {in_work}, in dlq {in_dlq}, "
        f"lost {lost}"
    )
    return 0 if lost == 0 and base_lost == 0 and report.replayed == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
