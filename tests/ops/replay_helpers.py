"""Helpers of the replay tests: a dead-letter design, dead-lettering messages, counting and draining.

The design (one per test, in its own vhost on RabbitMQ): direct exchange ``orders`` → queue ``work``
(key ``job``) whose dead-letter exchange is the fanout ``dlx`` → queue ``dlq``; queue ``small``
(max-length `SMALL`, reject-publish) bound to ``orders`` with key ``small``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mqstudio.backends.base import Backend, BackendKind, BrokerMessage, OutgoingMessage
from mqstudio.core.model import Binding, Exchange, Queue, Topology

SMALL = 5


def vhost_of(backend: Backend) -> str:
    return str(getattr(backend, "vhost", "/"))


def deploy(backend: Backend, *, quorum: bool = False, small: int = SMALL) -> None:
    vh = vhost_of(backend)
    t = Topology()
    orders = Exchange("orders", "direct", vhost=vh)
    dlx = Exchange("dlx", "fanout", vhost=vh)
    args: dict[str, Any] = {"x-dead-letter-exchange": "dlx"}
    if quorum:
        args["x-queue-type"] = "quorum"
    work = Queue("work", vhost=vh, arguments=args)
    dlq = Queue("dlq", vhost=vh, arguments={"x-queue-type": "quorum"} if quorum else {})
    little = Queue("small", vhost=vh, arguments={"x-max-length": small, "x-overflow": "reject-publish"})
    for node in (orders, dlx, work, dlq, little):
        t.add_node(node)
    t.add_binding(Binding(orders.id, work.id, "job"))
    t.add_binding(Binding(orders.id, little.id, "small"))
    t.add_binding(Binding(dlx.id, dlq.id))
    report = backend.apply(backend.plan(t))
    assert report.ok, report.describe()


def count(backend: Backend, queue: str) -> int:
    counter = getattr(backend, "message_count", None)
    if callable(counter):
        return int(counter(queue))
    for obj in backend.stats().objects:
        if obj.kind == "queue" and obj.name == queue:
            return int(obj.gauges.get("ready", 0)) + int(obj.gauges.get("unacked", 0))
    raise AssertionError(f"no queue {queue!r}")


def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)
    return value


def dead_letter(backend: Backend, n: int, *, start: int = 0) -> list[str]:
    """Publish `n` messages to orders/job (ids m<i>) and reject them without requeue → dlq."""
    ids = [f"m{i}" for i in range(start, start + n)]
    many = getattr(backend, "publish_many", None)
    messages = [
        OutgoingMessage(
            "orders",
            f"body {i}".encode(),
            key="job",
            headers={"tenant": "acme" if int(i[1:]) % 2 == 0 else "other"},
            properties={"message_id": i, "delivery_mode": 2},
        )
        for i in ids
    ]
    results = many(messages) if callable(many) else [backend.publish(m) for m in messages]
    assert all(r.confirmed and r.routed for r in results)
    rejected = 0
    while rejected < n:
        taken = backend.consume_for_replay("work", min(500, n - rejected))
        assert taken, "the work queue ran dry"
        for message in taken:
            backend.settle(message, ack=False, requeue=False)
        rejected += len(taken)
    eventually(lambda: count(backend, "dlq") >= n, f"{n} messages in the DLQ")
    return ids


def drain(backend: Backend, queue: str) -> list[BrokerMessage]:
    """Take every message of `queue` (acknowledged: this empties it)."""
    out: list[BrokerMessage] = []
    while batch := backend.consume_for_replay(queue, 500):
        for message in batch:
            backend.settle(message, ack=True)
        out += batch
    return out


def ids_of(messages: list[BrokerMessage]) -> list[str]:
    return sorted(str(m.properties.get("message_id")) for m in messages)


def is_kafka(backend: Backend) -> bool:
    return backend.kind is BackendKind.KAFKA
