"""SIGKILL a broker mid-stream and check that nothing it confirmed is lost.

Engine variant: a child process runs the broker engine on an SqliteStore and publishes 10,000
persistent messages to a durable queue in batches of random size, while also taking and acking
some of them. After each `commit()` returns it writes to its stdout what that commit made durable:
`C id` (confirmed publish), `A id` (ack), `U id` (taken but left unacked); before each commit it
writes `P id` for the acks that commit is about to make durable (the kill may land in between).
The parent SIGKILLs the child at a random point, reads everything the child managed to write, opens
the store itself and checks: confirmed and not (maybe) acked ⊆ recovered; acked ∩ recovered = ∅;
no duplicates; order kept; messages taken but unacked come back flagged redelivered.

AMQP variant: the child is `mqstudio broker --port 0 --data-dir …`; publisher threads here publish
persistent messages with pika in confirm mode, the parent SIGKILLs the broker after a random number
of confirms, and every confirmed message must be in the recovered queue (once, in publisher order).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mqstudio.broker.broker import Broker

REPO = Path(__file__).resolve().parents[2]
TOTAL = 10_000

CHILD = r"""
import random, sys
from mqstudio.broker.broker import Broker
from mqstudio.broker.message import Properties

path, durability, seed, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
b = Broker.open(path, durability=durability)
b.declare_queue("/", "jobs")
b.commit()
s = b.open_session("/", "taker")
out = sys.stdout
sent = 0
while sent < total:
    n = min(rng.randint(1, 200), total - sent)
    ids = range(sent, sent + n)
    for i in ids:
        props = Properties(delivery_mode=2, message_id=str(i), headers={"i": i})
        b.publish("/", "", "jobs", props, str(i).encode() + b"." * rng.randint(0, 2000))
    acked, unacked = [], []
    for _ in range(n // 3):
        d = s.basic_get("jobs")
        if d is None:
            break
        i = int(d.properties.message_id)
        if rng.random() < 0.1:
            unacked.append(i)
        else:
            s.ack(d.delivery_tag)
            acked.append(i)
    # Acks about to be committed: if the kill lands between the commit and the report below, the
    # parent knows these may be gone from the store without being reported as acked.
    out.write("".join(f"P {i}\n" for i in acked))
    out.flush()
    b.commit()
    # Only now is any of it durable: report it.
    out.write("".join(f"C {i}\n" for i in ids) + "".join(f"A {i}\n" for i in acked)
              + "".join(f"U {i}\n" for i in unacked))
    out.flush()
    sent += n
out.write("DONE\n")
out.flush()
sys.stdin.read()  # wait to be killed
"""


@pytest.mark.parametrize("durability", ["power", "process"])
def test_sigkill_loses_no_confirmed_message(tmp_path: Path, durability: str) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    kill_after = rng.randint(1_000, 6_000)  # confirmations read before the kill
    path = tmp_path / "broker.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), durability, str(seed), str(TOTAL)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    confirmed: list[int] = []
    acked: set[int] = set()
    pending: set[int] = set()  # acks sent to a commit that may or may not have finished
    unacked: set[int] = set()
    done = False

    def take(line: str) -> None:
        nonlocal done
        kind, _, value = line.strip().partition(" ")
        if kind == "C":
            confirmed.append(int(value))
        elif kind == "A":
            acked.add(int(value))
        elif kind == "P":
            pending.add(int(value))
        elif kind == "U":
            unacked.add(int(value))
        elif kind == "DONE":
            done = True

    try:
        for line in proc.stdout:
            take(line)
            if len(confirmed) >= kill_after or done:
                break
        os.kill(proc.pid, signal.SIGKILL)
        # What the child wrote before it died was committed before it was written: read it all.
        for line in proc.stdout:
            take(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        if proc.stdin is not None:
            proc.stdin.close()
    assert proc.returncode == -signal.SIGKILL, proc.returncode

    broker = Broker.open(path)
    try:
        qms = broker.queue("/", "jobs").messages()
        recovered = [int(qm.properties.message_id or "-1") for qm in qms]
        redelivered = {int(qm.properties.message_id or "-1") for qm in qms if qm.redelivered}
        bodies_ok = all(qm.body.startswith(str(i).encode() + b".") or qm.body == str(i).encode()
                        for qm, i in zip(qms, recovered, strict=True))
    finally:
        broker.close()
    rec = set(recovered)
    lost = sorted(set(confirmed) - acked - pending - rec)
    resurrected = sorted(acked & rec)
    duplicated = len(recovered) - len(rec)
    report = (
        f"seed={seed} durability={durability} killed after {len(confirmed)} confirmations "
        f"(mid-stream={not done}); acked={len(acked)} unacked={len(unacked)} "
        f"recovered={len(recovered)} duplicated={duplicated} lost={len(lost)} {lost[:10]} "
        f"resurrected={len(resurrected)} {resurrected[:10]}"
    )
    assert not lost, report
    assert not resurrected, report
    assert duplicated == 0, report
    assert recovered == sorted(recovered), report
    assert set(confirmed) <= set(range(TOTAL)) and rec <= set(range(TOTAL)), report
    assert (unacked & rec) <= redelivered, report
    assert bodies_ok, report


# -- through the AMQP server ------------------------------------------------------------------------

AMQP_TOTAL = 4_000
PUBLISHERS = 3


def _publisher(port: int, ids: range, confirmed: list[int], errors: list[BaseException]) -> None:
    import pika

    try:
        params = pika.ConnectionParameters("127.0.0.1", port, blocked_connection_timeout=30)
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("jobs", durable=True)
        for i in ids:
            props = pika.BasicProperties(delivery_mode=2, message_id=str(i), headers={"i": i})
            ch.basic_publish("", "jobs", str(i).encode(), props, mandatory=True)
            confirmed.append(i)  # basic_publish returned: the broker acked it
    except Exception as e:  # the broker was killed under us: expected
        errors.append(e)


@pytest.mark.slow
def test_sigkill_amqp_broker_loses_no_confirmed_publish(tmp_path: Path) -> None:
    """`mqstudio broker` in a child process, publishers with confirms in this one, SIGKILL mid-stream."""
    import threading

    seed = random.randrange(2**32)
    kill_after = random.Random(seed).randint(300, 1_500)
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mqstudio", "broker", "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    assert proc.stdout is not None
    confirmed: list[int] = []
    errors: list[BaseException] = []
    try:
        port = 0
        for line in proc.stdout:
            if "listening on amqp://" in line:
                port = int(line.split("amqp://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
                break
        assert port, "the broker did not start"
        threads = [
            threading.Thread(
                target=_publisher,
                args=(port, range(k, AMQP_TOTAL, PUBLISHERS), confirmed, errors),
                daemon=True,
            )
            for k in range(PUBLISHERS)
        ]
        for t in threads:
            t.start()
        while len(confirmed) < kill_after and any(t.is_alive() for t in threads):
            threading.Event().wait(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        for t in threads:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    done = list(confirmed)

    broker = Broker.open(data)
    try:
        recovered = [int(qm.properties.message_id or "-1") for qm in broker.queue("/", "jobs").messages()]
    finally:
        broker.close()
    rec = set(recovered)
    lost = sorted(set(done) - rec)
    duplicated = len(recovered) - len(rec)
    report = (
        f"seed={seed} killed after {len(done)} confirmations (target {kill_after}); "
        f"recovered={len(recovered)} duplicated={duplicated} lost={len(lost)} {lost[:10]}; "
        f"publisher errors: {[type(e).__name__ for e in errors]}"
    )
    assert not lost, report
    assert duplicated == 0, report
    assert rec <= set(range(AMQP_TOTAL)), report
    # Each publisher's messages keep their order in the queue.
    for k in range(PUBLISHERS):
        mine = [i for i in recovered if i % PUBLISHERS == k]
        assert mine == sorted(mine), report
