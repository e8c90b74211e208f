"""Replay throughput on a real RabbitMQ: 10,000 dead letters replayed with confirms, against a baseline
measured in the same run: a plain-pika replay written the fast way (see `baseline`).

    .venv/bin/python benchmarks/replay.py [--count 10000] [--window 1000] [--rounds 3] [--profile FILE]

Environment as the tests (``MQSTUDIO_RABBITMQ_HOST`` …). Creates and deletes a vhost of its own.
Both move the same 10,000 persistent dead letters from the DLQ back to their origin queue, taking
turns (`--rounds` times each: baseline, the messages die again, replay, die again); the median of
each is compared, since on a shared machine one run says little. The replay does more than the
baseline: it journals every batch (SQLite, synchronous=FULL) before publishing it, checks each
message (loop guard, origin) and stops at the messages present when it started. Both get the same
window `--window`: the baseline's prefetch (messages taken and not yet acked) and the replay's batch
size (copies published and not yet confirmed; it also takes up to a batch ahead).

Prints msg/s for both (median and each run), the ratio, the CPU time this process spent per message
(``time.process_time``: the client's own work, which other load on the machine disturbs much less
than the wall-clock rate), the machine's load average, and for both the messages lost and
duplicated, counted by message id when they die again (must be 0).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
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


def dead_letter(backend: RabbitMQBackend, n: int) -> list[str]:
    """Reject every message of queue work into the DLQ (through its dead-letter exchange); returns the
    message ids it saw in work (the checker: each id once)."""
    seen: list[str] = []
    while len(seen) < n:
        taken = backend.take_for_replay("work", 1000)
        if not taken:
            break
        backend.settle_many(taken, ack=False, requeue=False)
        seen += [str(m.properties.get("message_id")) for m in taken]
    while backend.message_count("dlq") < len(seen):
        time.sleep(0.05)
    return seen


def check(ids: set[str], seen: list[str]) -> tuple[int, int]:
    """(lost, duplicates) of a run that should have put every id of `ids` in work once (`seen`)."""
    return len(ids - set(seen)), len(seen) - len(set(seen))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and replay alternately (median)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="profile the replay runs with cProfile and write the stats to FILE (pstats format); "
        "the times then include the profiler's overhead",
    )
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
    n = args.count
    base_s: list[float] = []
    replay_s: list[float] = []
    lost = {"baseline": 0, "replay": 0}
    duplicates = {"baseline": 0, "replay": 0}
    not_replayed = 0
    loads: list[float] = []
    base_cpu: list[float] = []  # this process's CPU seconds per run (less disturbed by other load)
    replay_cpu: list[float] = []
    profiler = cProfile.Profile() if args.profile else None
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
        originals = [
            OutgoingMessage(
                "",
                b"payload %d " % i + b"x" * 200,
                key="work",
                properties={"message_id": f"m{i}", "delivery_mode": 2},
            )
            for i in range(n)
        ]
        ids = {str(m.properties["message_id"]) for m in originals}
        for start in range(0, n, 1000):
            assert all(r.routed for r in backend.publish_many(originals[start : start + 1000]))
        dead_letter(backend, n)
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            cpu = time.process_time()
            base_s.append(baseline(host, port, vhost, user, password, n, args.window))
            base_cpu.append(time.process_time() - cpu)
            got_lost, got_dups = check(ids, dead_letter(backend, n))  # back to the DLQ for the replay
            lost["baseline"] += got_lost
            duplicates["baseline"] += got_dups
            with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "j.sqlite3") as journal:
                job = ReplayJob(backend, "dlq", journal=journal, batch_size=args.window)
                began, cpu = time.perf_counter(), time.process_time()
                report = job.run() if profiler is None else profiler.runcall(job.run)
                replay_s.append(time.perf_counter() - began)
                replay_cpu.append(time.process_time() - cpu)
            not_replayed += n - report.replayed
            got_lost, got_dups = check(ids, dead_letter(backend, n))
            lost["replay"] += got_lost
            duplicates["replay"] += got_dups
        backend.close()
    finally:
        admin.delete_vhost(vhost)
        admin.close()
    if profiler is not None:
        profiler.dump_stats(args.profile)
    base, ours = statistics.median(base_s), statistics.median(replay_s)
    print(f"messages          {n} per run, {args.rounds} rounds (window {args.window})")
    print(f"load average      {' '.join(f'{x:.2f}' for x in loads)} (1 min, at the start of each round)")
    print(f"baseline pika     {n / base:9.0f} msg/s median  ({' '.join(f'{n / s:.0f}' for s in base_s)})")
    print(f"replay            {n / ours:9.0f} msg/s median  ({' '.join(f'{n / s:.0f}' for s in replay_s)})")
    print(f"ratio             {base / ours:9.2f}  (replay / baseline, medians)")
    for who, cpu_s in (("baseline CPU", base_cpu), ("replay CPU", replay_cpu)):
        per = [s / n * 1e6 for s in cpu_s]
        print(f"{who:17s} {statistics.median(per):9.1f} µs/msg median  ({' '.join(f'{x:.1f}' for x in per)})")
    for who in ("baseline", "replay"):
        print(f"{who:17s} lost {lost[who]}, duplicates {duplicates[who]}")
    print(f"replay            not replayed {not_replayed}")
    return 0 if not any(lost.values()) and not not_replayed else 1


if __name__ == "__main__":
    raise SystemExit(main())
