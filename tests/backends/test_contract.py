"""The backend contract: the same cases against every backend, skipped by Capabilities only.

Backends come from fixtures by name: `embedded_backend` (tests/backends/conftest.py),
`rabbitmq_backend` and `kafka_backend` (tests/fixtures, which fail under CI and skip locally when
their service is missing). A fixture that is not registered skips its cases.

Documented per-capability semantics the cases check:
* publishing to a missing exchange (EXCHANGES) raises `NotFoundError`; a mandatory message no
  queue takes is ``routed=False``;
* `peek` does not consume: two peeks return the same messages;
* `tail` may be called on a second thread while the first one publishes through the same backend
  (a backend that needs a connection of its own for the tail opens one).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from mqstudio.backends.base import (
    Backend,
    BrokerMessage,
    Capabilities,
    NotFoundError,
    OutgoingMessage,
)
from mqstudio.core.metrics import Snapshot
from mqstudio.core.model import Queue, Topic
from mqstudio.core.plan import Plan, Step, StepKind
from tests.backends.contract import (
    WAIT,
    Design,
    Flag,
    bodies,
    cleanup,
    deploy,
    design,
    eventually,
    prefix,
    publish,
    require,
    vhost_of,
)

BACKENDS = ["embedded_backend", "rabbitmq_backend", "kafka_backend"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    try:
        value: Backend = request.getfixturevalue(request.param)
    except pytest.FixtureLookupError:
        pytest.skip(f"fixture {request.param} is not registered")
    return value


@pytest.fixture
def names(backend: Backend) -> Iterator[str]:
    p = prefix()
    yield p
    cleanup(backend, p)


@pytest.fixture
def deployed(backend: Backend, names: str) -> Design:
    require(backend, Capabilities.TOPOLOGY_WRITE)
    d = design(backend, names)
    deploy(backend, d)
    return d


# -- connection -------------------------------------------------------------------------------------


def test_connected_backend_describes_itself_without_secrets(backend: Backend) -> None:
    assert backend.description
    assert "password" not in backend.description.lower()


def test_close_then_connect_again_works(backend: Backend) -> None:
    backend.close()
    backend.connect()
    assert backend.fetch_topology() is not None


# -- topology ---------------------------------------------------------------------------------------


def test_applied_design_is_fetched_back_and_replans_to_nothing(backend: Backend, deployed: Design) -> None:
    live = backend.fetch_topology().topology
    if backend.capabilities & Capabilities.EXCHANGES:
        vhost = vhost_of(backend)
        q = live.find_queue(deployed.source, vhost)
        assert q is not None
        assert q.arguments["x-dead-letter-exchange"] == f"{deployed.names[1]}"
        assert q.arguments["x-message-ttl"] == 600_000
        x = live.find_exchange(deployed.target, vhost)
        assert x is not None and str(x.type) == "direct"
        routes = [
            (live.node(b.source).name, live.node(b.destination).name, b.routing_key) for b in live.bindings
        ]
        assert (deployed.target, deployed.source, "k") in routes
    else:
        assert live.find_topic(deployed.source) is not None
    replan = backend.plan(deployed.topology)
    assert replan.is_empty, replan.describe()


def test_apply_stops_at_a_refused_step_and_reports_exactly(backend: Backend, deployed: Design) -> None:
    if backend.capabilities & Capabilities.EXCHANGES:
        vhost = vhost_of(backend)
        fresh = Queue(f"{deployed.names[2]}-fresh", vhost=vhost)
        # Same name as the deployed queue, other arguments: every AMQP broker refuses (406).
        clash = Queue(deployed.source, vhost=vhost, arguments={"x-message-ttl": 5})
        after = Queue(f"{deployed.names[2]}-after", vhost=vhost)
        steps = [
            Step(StepKind.CREATE_QUEUE, fresh.name, fresh),
            Step(StepKind.CREATE_QUEUE, clash.name, clash),
            Step(StepKind.CREATE_QUEUE, after.name, after),
        ]
    else:
        fresh_t = Topic(f"{deployed.source}-fresh")
        clash_t = Topic(deployed.source)  # exists already
        after_t = Topic(f"{deployed.source}-after")
        steps = [
            Step(StepKind.CREATE_TOPIC, fresh_t.name, fresh_t),
            Step(StepKind.CREATE_TOPIC, clash_t.name, clash_t),
            Step(StepKind.CREATE_TOPIC, after_t.name, after_t),
        ]
    seen: list[tuple[int, int]] = []
    report = backend.apply(Plan(steps), progress=lambda done, total, what: seen.append((done, total)))
    assert report.applied == [steps[0]]
    assert report.failed == steps[1]
    assert report.error
    assert report.not_applied == [steps[2]]
    assert report.skipped == []
    assert not report.ok
    assert seen and all(total == 3 and 0 <= done <= 3 for done, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_steps_needing_consent_are_skipped_without_it(backend: Backend, names: str) -> None:
    require(backend, Capabilities.TOPOLOGY_WRITE)
    d = design(backend, names)
    plan = backend.plan(d.topology)
    gated = [Step(s.kind, s.target, s.obj, s.destructive, True, s.reason) for s in plan.steps]
    report = backend.apply(Plan(gated))
    assert report.skipped == gated
    assert report.applied == [] and report.failed is None and report.not_applied == []


def test_cancelled_apply_applies_nothing_and_lists_every_step(backend: Backend, names: str) -> None:
    require(backend, Capabilities.TOPOLOGY_WRITE)
    d = design(backend, names)
    plan = backend.plan(d.topology)
    flag = Flag()
    flag.cancel()
    report = backend.apply(plan, cancel=flag)
    assert report.cancelled
    assert report.applied == []
    assert report.not_applied == plan.steps


# -- messages ---------------------------------------------------------------------------------------


def test_peek_sees_a_published_message_and_leaves_it(backend: Backend, deployed: Design) -> None:
    require(backend, Capabilities.PEEK)
    amqp = bool(backend.capabilities & Capabilities.EXCHANGES)
    properties = {"content_type": "text/plain"} if amqp else {}
    publish(backend, deployed, b"peek me", headers={"h": "v"}, properties=properties)
    first = eventually(lambda: backend.peek(deployed.source, 10), lambda ms: len(ms) >= 1)
    second = backend.peek(deployed.source, 10)
    assert bodies(first) == [b"peek me"]
    assert bodies(second) == [b"peek me"]
    assert first[0].headers.get("h") == "v"
    if amqp:  # AMQP basic properties; Kafka records have headers only
        assert first[0].properties.get("content_type") == "text/plain"


def test_replay_ack_removes_and_nack_with_requeue_keeps(backend: Backend, deployed: Design) -> None:
    require(backend, Capabilities.REPLAY)
    publish(backend, deployed, b"one")
    taken = eventually(lambda: backend.consume_for_replay(deployed.source, 1), lambda ms: len(ms) == 1)
    assert bodies(taken) == [b"one"]
    backend.settle(taken[0], ack=False, requeue=True)
    again = eventually(lambda: backend.consume_for_replay(deployed.source, 1), lambda ms: len(ms) == 1)
    assert bodies(again) == [b"one"]
    backend.settle(again[0], ack=True)
    assert backend.consume_for_replay(deployed.source, 5) == []


def test_purge_returns_how_many_messages_it_dropped(backend: Backend, deployed: Design) -> None:
    require(backend, Capabilities.PURGE)
    for i in range(3):
        publish(backend, deployed, f"m{i}".encode())
    if backend.capabilities & Capabilities.PEEK:
        eventually(lambda: backend.peek(deployed.source, 10), lambda ms: len(ms) == 3)
    assert backend.purge(deployed.source) == 3
    if backend.capabilities & Capabilities.PEEK:
        assert backend.peek(deployed.source, 10) == []


def test_stats_list_the_source_with_its_ready_gauge(backend: Backend, deployed: Design) -> None:
    require(backend, Capabilities.STATS)
    publish(backend, deployed, b"counted")
    kind = "queue" if backend.capabilities & Capabilities.EXCHANGES else "topic"
    vhost = vhost_of(backend) if kind == "queue" else ""

    def has_one(snapshot: Snapshot) -> bool:
        obj = snapshot.get(kind, deployed.source, vhost)
        gauge = "ready" if kind == "queue" else "end_offset"
        return obj is not None and obj.gauges.get(gauge) == 1

    snapshot = eventually(backend.stats, has_one)
    assert has_one(snapshot), snapshot


def test_tail_receives_messages_published_after_it_started(backend: Backend, deployed: Design) -> None:
    require(backend, Capabilities.TAIL)
    got: list[BrokerMessage] = []
    arrived = threading.Event()
    flag = Flag()
    errors: list[BaseException] = []

    def sink(message: BrokerMessage) -> None:
        got.append(message)
        arrived.set()

    def run() -> None:
        try:
            backend.tail(deployed.target, sink, flag)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="contract-tail")
    thread.start()
    try:
        # The tail has no "ready" signal: publish until it sees one (each publish is after the start).
        for i in range(int(WAIT / 0.1)):
            publish(backend, deployed, f"tailed {i}".encode())
            if arrived.wait(0.1) or errors:
                break
    finally:
        flag.cancel()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert errors == []
    assert got and got[0].body.startswith(b"tailed ")


def test_publishing_to_a_missing_exchange_is_not_found(backend: Backend, names: str) -> None:
    require(backend, Capabilities.EXCHANGES)
    with pytest.raises(NotFoundError):
        backend.publish(OutgoingMessage(f"{names}.nowhere", b"x", key="k"))


def test_mandatory_message_no_queue_takes_is_not_routed(backend: Backend, deployed: Design) -> None:
    require(backend, Capabilities.EXCHANGES)
    result = backend.publish(OutgoingMessage(deployed.target, b"x", key="no-such-key", mandatory=True))
    assert result.routed is False
