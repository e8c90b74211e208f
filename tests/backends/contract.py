"""Helpers of the backend contract suite (`test_contract.py`): unique names, a small design per
backend kind, polling for eventually consistent reads, cleanup through the backend's own API.

Capabilities decide what a case needs, never the backend's name. The design is an exchange design
(direct exchange, fanout dead-letter exchange, a queue with DLX and TTL, bindings) when the backend
has EXCHANGES, else a topic design (TOPICS).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from mqstudio.backends.base import Backend, Capabilities, OutgoingMessage
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topic, Topology
from mqstudio.core.plan import Plan, Step, StepKind

T = TypeVar("T")
WAIT = 20.0


def require(backend: Backend, *needed: Capabilities) -> None:
    missing = [c for c in needed if not (backend.capabilities & c)]
    if missing:
        names = ", ".join(str(c.name) for c in missing)
        pytest.skip(f"{backend.kind} backend lacks {names}")


def eventually(read: Callable[[], T], ok: Callable[[T], bool], timeout: float = WAIT) -> T:
    """Poll `read()` until `ok(value)`: management APIs and consumer fetches lag behind writes."""
    deadline = time.monotonic() + timeout
    value = read()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


class Flag:
    """A `CancelToken` for tests."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()


@dataclass
class Design:
    """The designed topology and where messages go in and come out."""

    topology: Topology
    target: str  # publish target (exchange or topic)
    key: str  # routing key
    source: str  # where they land (queue or topic)
    names: list[str] = field(default_factory=list)


def vhost_of(backend: Backend) -> str:
    # Not part of the protocol: RabbitMQ tests run in a fresh vhost, the others have "/".
    return str(getattr(backend, "vhost", "/"))


def prefix() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}"


def design(backend: Backend, p: str) -> Design:
    topology = Topology()
    if backend.capabilities & Capabilities.EXCHANGES:
        vhost = vhost_of(backend)
        if vhost not in topology.vhosts:
            topology.vhosts.append(vhost)
        x = Exchange(f"{p}.x", ExchangeType.DIRECT, vhost=vhost)
        dlx = Exchange(f"{p}.dlx", ExchangeType.FANOUT, vhost=vhost)
        q = Queue(
            f"{p}.q",
            vhost=vhost,
            arguments={"x-dead-letter-exchange": dlx.name, "x-message-ttl": 600_000},
        )
        dead = Queue(f"{p}.dead", vhost=vhost)
        for node in (x, dlx, q, dead):
            topology.add_node(node)
        topology.add_binding(Binding(x.id, q.id, "k"))
        topology.add_binding(Binding(dlx.id, dead.id))
        return Design(topology, x.name, "k", q.name, [x.name, dlx.name, q.name, dead.name])
    require(backend, Capabilities.TOPICS)
    t = Topic(f"{p}.t", partitions=1)
    topology.add_node(t)
    return Design(topology, t.name, "", t.name, [t.name])


def deploy(backend: Backend, d: Design) -> None:
    plan = backend.plan(d.topology)
    report = backend.apply(plan, consent=plan.steps)
    assert report.ok, report.describe()


def cleanup(backend: Backend, p: str) -> None:
    """Delete everything named with prefix `p` through plan/apply steps (consented)."""
    try:
        live = backend.fetch_topology().topology
    except Exception:
        return
    steps: list[Step] = []
    for q in live.queues:
        if q.name.startswith(p):
            steps.append(Step(StepKind.DELETE_QUEUE, q.name, q, destructive=True, needs_consent=True))
    for x in live.exchanges:
        if x.name.startswith(p):
            steps.append(Step(StepKind.DELETE_EXCHANGE, x.name, x, destructive=True))
    for t in live.topics:
        if t.name.startswith(p):
            steps.append(Step(StepKind.DELETE_TOPIC, t.name, t, destructive=True, needs_consent=True))
    if steps:
        backend.apply(Plan(steps), consent=steps)


def publish(backend: Backend, d: Design, body: bytes, **kwargs: Any) -> None:
    result = backend.publish(OutgoingMessage(d.target, body, key=d.key, **kwargs))
    assert result.confirmed, result.detail
    assert result.routed, result.detail


def bodies(messages: list[Any]) -> list[bytes]:
    return [m.body for m in messages]
