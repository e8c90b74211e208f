"""What the embedded backend does beyond the shared contract (tests/backends/test_contract.py)."""

from __future__ import annotations

import threading

import pytest

from mqstudio.backends.base import (
    BrokerMessage,
    ConflictError,
    OutgoingMessage,
    UnreachableError,
)
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.broker.broker import Broker
from mqstudio.broker.queue import Queue as EngineQueue
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topic, Topology
from mqstudio.core.plan import Plan, Step, StepKind
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.jobs import BackendSession, SessionState
from tests.backends.contract import Flag

WAIT = 10.0


def _design(ttl: int = 60_000) -> Topology:
    t = Topology()
    x = Exchange("orders", ExchangeType.FANOUT)
    dlx = Exchange("orders.dlx", ExchangeType.FANOUT)
    q = Queue("orders.work", arguments={"x-dead-letter-exchange": "orders.dlx", "x-message-ttl": ttl})
    audit = Queue("orders.audit")
    dead = Queue("orders.dead")
    for node in (x, dlx, q, audit, dead):
        t.add_node(node)
    t.add_binding(Binding(x.id, q.id))
    t.add_binding(Binding(x.id, audit.id))
    t.add_binding(Binding(dlx.id, dead.id))
    return t


@pytest.fixture
def deployed(embedded_backend: EmbeddedBackend) -> EmbeddedBackend:
    report = embedded_backend.apply(embedded_backend.plan(_design()))
    assert report.ok, report.describe()
    return embedded_backend


def _publish(backend: EmbeddedBackend, body: bytes) -> None:
    assert backend.publish(OutgoingMessage("orders", body)).routed


def test_capabilities_have_no_kafka_features(embedded_backend: EmbeddedBackend) -> None:
    from mqstudio.backends.base import Capabilities

    caps = embedded_backend.capabilities
    assert caps & Capabilities.EXCHANGES and caps & Capabilities.TAIL and caps & Capabilities.PEEK
    assert not caps & Capabilities.TOPICS and not caps & Capabilities.CONSUMER_GROUPS


def test_fetch_topology_skips_builtin_exchanges(embedded_backend: EmbeddedBackend) -> None:
    live = embedded_backend.fetch_topology().topology
    assert live.exchanges == []
    assert live.queues == []


def test_peek_does_not_mark_messages_redelivered_or_count_deliveries(deployed: EmbeddedBackend) -> None:
    _publish(deployed, b"a")
    for _ in range(3):
        (m,) = deployed.peek("orders.work")
        assert m.redelivered is False
    stats = deployed.stats().get("queue", "orders.work", "/")
    assert stats is not None
    assert stats.counters["delivered"] == 0 and stats.counters["redelivered"] == 0
    assert stats.gauges["ready"] == 1


def test_peek_respects_the_limit_in_queue_order(deployed: EmbeddedBackend) -> None:
    for i in range(5):
        _publish(deployed, f"m{i}".encode())
    assert [m.body for m in deployed.peek("orders.work", 2)] == [b"m0", b"m1"]


def test_nack_without_requeue_dead_letters_and_stats_name_the_reason(deployed: EmbeddedBackend) -> None:
    _publish(deployed, b"bad")
    (m,) = deployed.consume_for_replay("orders.work", 1)
    deployed.settle(m, ack=False, requeue=False)
    (dead,) = deployed.peek("orders.dead")
    assert dead.body == b"bad"
    assert dead.headers["x-death"][0]["reason"] == "rejected"
    work = deployed.stats().get("queue", "orders.work", "/")
    assert work is not None and work.counters["dead_lettered.rejected"] == 1


def test_close_returns_unsettled_messages_and_settling_them_later_is_a_conflict(
    deployed: EmbeddedBackend,
) -> None:
    _publish(deployed, b"held")
    (m,) = deployed.consume_for_replay("orders.work", 1)
    assert deployed.peek("orders.work") == []
    deployed.close()
    (back,) = deployed.peek("orders.work")
    assert back.body == b"held" and back.redelivered
    with pytest.raises(ConflictError):
        deployed.settle(m, ack=True)


def test_tail_of_a_queue_observes_without_taking(deployed: EmbeddedBackend) -> None:
    got = _tail(deployed, "orders.audit", [b"x1"])
    assert [(m.source, m.body) for m in got] == [("orders.audit", b"x1")]
    assert [m.body for m in deployed.peek("orders.audit")] == [b"x1"]


def test_tail_of_an_exchange_shows_a_fanned_out_message_once(deployed: EmbeddedBackend) -> None:
    got = _tail(deployed, "orders", [b"once"])
    assert [(m.source, m.body, m.exchange) for m in got] == [("orders", b"once", "orders")]


def test_tail_of_a_dead_letter_exchange_shows_dead_letters(deployed: EmbeddedBackend) -> None:
    _publish(deployed, b"doomed")

    def reject() -> None:
        (m,) = deployed.consume_for_replay("orders.work", 1)
        deployed.settle(m, ack=False, requeue=False)

    got = _tail(deployed, "orders.dlx", [], action=reject)
    assert [m.body for m in got] == [b"doomed"]


def test_tail_removes_its_observers(deployed: EmbeddedBackend, broker_thread: EmbeddedBrokerThread) -> None:
    _tail(deployed, "orders", [b"m"])
    kinds = broker_thread.call(lambda b: {type(q) for q in b.vhost("/").queues.values()}).result(WAIT)
    assert kinds == {EngineQueue}


def test_tail_of_a_missing_target_is_not_found(embedded_backend: EmbeddedBackend) -> None:
    from mqstudio.backends.base import NotFoundError

    with pytest.raises(NotFoundError):
        embedded_backend.tail("nothing", lambda m: None, Flag())


def _tail(
    backend: EmbeddedBackend, target: str, bodies: list[bytes], action: object = None
) -> list[BrokerMessage]:
    """Run a tail on a thread; publish `bodies` (or run `action`) once it watches; stop it."""
    got: list[BrokerMessage] = []
    flag = Flag()
    errors: list[BaseException] = []
    expected = len(bodies) or 1
    enough = threading.Event()

    def sink(m: BrokerMessage) -> None:
        got.append(m)
        if len(got) >= expected:
            enough.set()

    def run() -> None:
        try:
            backend.tail(target, sink, flag)
        except BaseException as exc:
            errors.append(exc)

    # Observers are installed before the tail's first wait, so a marker publish proves it watches.
    thread = threading.Thread(target=run, name="tail-test")
    thread.start()
    try:
        _wait_watching(backend, target)
        for body in bodies:
            _publish(backend, body)
        if callable(action):
            action()
        enough.wait(WAIT)
    finally:
        flag.cancel()
        thread.join(WAIT)
    assert not thread.is_alive() and errors == []
    return got


def _wait_watching(backend: EmbeddedBackend, target: str) -> None:
    from mqstudio.broker.observe import _observers

    def watched(b: Broker) -> bool:
        vh = b.vhost("/")
        names = [target] if target in vh.queues else list(vh.queues)
        return all(id(vh.queues[n]) in _observers for n in names)

    host = backend._host
    for _ in range(int(WAIT / 0.01)):
        if host.call(watched).result(WAIT):
            return
        threading.Event().wait(0.01)
    raise AssertionError("the tail never started watching")


def test_cancel_during_apply_reports_the_rest_not_applied(embedded_backend: EmbeddedBackend) -> None:
    plan = embedded_backend.plan(_design())
    flag = Flag()
    report = embedded_backend.apply(plan, progress=lambda done, total, what: flag.cancel(), cancel=flag)
    assert report.cancelled
    assert report.applied == plan.steps[:1]
    assert report.not_applied == plan.steps[1:]


def test_recreate_queue_runs_only_with_consent(deployed: EmbeddedBackend) -> None:
    changed = _design(ttl=5_000)
    plan = deployed.plan(changed)
    recreate = plan.of_kind(StepKind.RECREATE_QUEUE)
    assert len(recreate) == 1
    assert deployed.apply(plan).skipped == recreate
    report = deployed.apply(plan, consent=recreate)
    assert report.ok
    assert deployed.plan(changed).is_empty


def test_prune_deletes_what_the_design_left_out(deployed: EmbeddedBackend) -> None:
    plan = deployed.plan(Topology(), prune=True)
    report = deployed.apply(plan, consent=plan.steps)
    assert report.ok, report.describe()
    live = deployed.fetch_topology().topology
    assert live.queues == [] and live.exchanges == []


def test_kafka_steps_fail_as_unsupported(embedded_backend: EmbeddedBackend) -> None:
    topic = Topic("events")
    step = Step(StepKind.CREATE_TOPIC, "topic 'events'", topic)
    report = embedded_backend.apply(Plan([step]))
    assert report.failed == step and "cannot" in report.error


def test_overflow_refusal_is_not_confirmed(embedded_backend: EmbeddedBackend) -> None:
    t = Topology()
    t.add_node(Queue("tiny", arguments={"x-max-length": 1, "x-overflow": "reject-publish"}))
    assert embedded_backend.apply(embedded_backend.plan(t)).ok
    assert embedded_backend.publish(OutgoingMessage("", b"1", key="tiny")).confirmed
    refused = embedded_backend.publish(OutgoingMessage("", b"2", key="tiny"))
    assert not refused.confirmed and "overflow" in refused.detail


def test_properties_round_trip_with_pika_names(deployed: EmbeddedBackend) -> None:
    props = {"content_type": "application/json", "priority": 3, "message_id": "m-1"}
    props["timestamp"] = 1_700_000_000
    deployed.publish(OutgoingMessage("orders", b"{}", properties=props))
    (m,) = deployed.peek("orders.audit")
    assert m.properties == props
    assert m.timestamp_ms == 1_700_000_000_000


def test_stopped_broker_is_unreachable() -> None:
    bt = EmbeddedBrokerThread(port=0)
    bt.start()
    backend = EmbeddedBackend(bt)
    backend.connect()
    assert bt.stop(WAIT)
    with pytest.raises(UnreachableError):
        backend.fetch_topology()


def test_backend_session_runs_the_embedded_backend_on_its_thread(broker_thread: EmbeddedBrokerThread) -> None:
    session = BackendSession(lambda: EmbeddedBackend(broker_thread))
    try:
        doc = session.call(lambda b: b.fetch_topology()).result(WAIT)
        assert doc.topology.queues == []
        assert session.state is SessionState.CONNECTED
    finally:
        assert session.close(WAIT)
