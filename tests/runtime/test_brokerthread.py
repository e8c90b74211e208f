"""The embedded broker thread: engine + AMQP listener on a private loop, reached through call()."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from mqstudio.broker.broker import Broker
from mqstudio.broker.errors import NotFound
from mqstudio.broker.message import Properties
from mqstudio.runtime.brokerthread import BrokerStoppedError, EmbeddedBrokerThread

WAIT = 10.0


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    baseline = threading.active_count()
    yield
    assert threading.active_count() == baseline, [t.name for t in threading.enumerate()]


@pytest.fixture
def broker_thread() -> Iterator[EmbeddedBrokerThread]:
    bt = EmbeddedBrokerThread(port=0)
    bt.start()
    yield bt
    assert bt.stop(WAIT)


def test_start_returns_the_bound_local_address(broker_thread: EmbeddedBrokerThread) -> None:
    host, port = broker_thread.address
    assert host == "127.0.0.1"
    assert port > 0
    assert broker_thread.running


def test_call_runs_on_the_broker_thread_and_returns_the_result(broker_thread: EmbeddedBrokerThread) -> None:
    names = broker_thread.call(lambda b: (threading.current_thread().name, b.vhost_names)).result(WAIT)
    assert names == ("mqstudio-broker", ["/"])


def test_call_exceptions_reach_the_future(broker_thread: EmbeddedBrokerThread) -> None:
    with pytest.raises(NotFound):
        broker_thread.call(lambda b: b.queue("/", "missing")).result(WAIT)


def test_engine_changes_made_through_call_reach_amqp_consumers(broker_thread: EmbeddedBrokerThread) -> None:
    host, port = broker_thread.address
    broker_thread.call(lambda b: b.declare_queue("/", "jobs")).result(WAIT)
    conn = pika.BlockingConnection(pika.ConnectionParameters(host, port))
    try:
        ch = conn.channel()
        got: list[bytes] = []
        ch.basic_consume("jobs", lambda c, m, p, body: (got.append(body), c.basic_ack(m.delivery_tag)))
        broker_thread.call(lambda b: b.publish("/", "", "jobs", Properties(), b"from engine")).result(WAIT)
        conn.process_data_events(time_limit=0)
        deadline = 50
        while not got and deadline:
            conn.process_data_events(time_limit=0.1)
            deadline -= 1
        assert got == [b"from engine"]
    finally:
        conn.close()


def test_amqp_publishes_are_visible_to_calls(broker_thread: EmbeddedBrokerThread) -> None:
    host, port = broker_thread.address
    broker_thread.call(lambda b: b.declare_queue("/", "inbox")).result(WAIT)
    conn = pika.BlockingConnection(pika.ConnectionParameters(host, port))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("", "inbox", b"hello")
    finally:
        conn.close()
    assert broker_thread.call(lambda b: b.queue("/", "inbox").message_count).result(WAIT) == 1


def test_calls_after_stop_fail_with_broker_stopped() -> None:
    bt = EmbeddedBrokerThread(port=0)
    bt.start()
    assert bt.stop(WAIT)
    assert not bt.running
    with pytest.raises(BrokerStoppedError):
        bt.call(lambda b: b.vhost_names).result(WAIT)
    assert bt.stop(WAIT)  # idempotent


def test_calls_before_start_fail_with_broker_stopped() -> None:
    with pytest.raises(BrokerStoppedError):
        EmbeddedBrokerThread(port=0).call(lambda b: None).result(WAIT)


def test_nested_call_on_the_loop_thread_runs_at_once(broker_thread: EmbeddedBrokerThread) -> None:
    def outer(b: Broker) -> list[str]:
        return broker_thread.call(lambda inner: inner.vhost_names).result(0)

    assert broker_thread.call(outer).result(WAIT) == ["/"]


def test_start_reports_a_port_that_cannot_be_bound(broker_thread: EmbeddedBrokerThread) -> None:
    _, port = broker_thread.address
    other = EmbeddedBrokerThread(port=port)
    with pytest.raises(OSError):
        other.start()
    assert other.stop(WAIT)


def test_persisted_broker_keeps_durable_queues_across_restarts(tmp_path: Path) -> None:
    with EmbeddedBrokerThread(tmp_path / "data", port=0) as bt:
        bt.call(lambda b: b.declare_queue("/", "kept", durable=True)).result(WAIT)
    with EmbeddedBrokerThread(tmp_path / "data", port=0) as bt:
        assert bt.call(lambda b: "kept" in b.vhost("/").queues).result(WAIT)
