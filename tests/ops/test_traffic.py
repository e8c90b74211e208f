"""Traffic generator: producers and consumers against the embedded engine (and a fake backend).

Assertions are on counts — what the runners say they published against what the broker holds or
the consumers received — never on timing. Every runner is stopped and joined in the test."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mqstudio.backends.base import BrokerMessage, OutgoingMessage, PublishResult
from mqstudio.broker.broker import Broker
from mqstudio.core.model import Binding, Consumer, Exchange, ExchangeType, Producer, Queue, Topology
from mqstudio.ops.traffic import (
    ConsumerRunner,
    EmbeddedBroker,
    PayloadTemplate,
    ProducerRunner,
    RoutingKeys,
    TokenBucket,
    TrafficController,
    TrafficError,
    TrafficOptions,
)
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread


@pytest.fixture
def broker_thread() -> Iterator[EmbeddedBrokerThread]:
    baseline = threading.active_count()
    bt = EmbeddedBrokerThread(port=0)
    bt.start()
    yield bt
    assert bt.stop(10.0)
    assert threading.active_count() == baseline, [t.name for t in threading.enumerate()]


def _declare_work_queue(broker: Broker) -> None:
    broker.declare_exchange("/", "work", "direct")
    broker.declare_exchange("/", "work.dlx", "fanout")
    broker.declare_queue("/", "jobs", arguments={"x-dead-letter-exchange": "work.dlx"})
    broker.declare_queue("/", "jobs.dead")
    broker.queue_bind("/", "jobs", "work", "job")
    broker.queue_bind("/", "jobs.dead", "work.dlx", "")


def _counts(bt: EmbeddedBrokerThread, *queues: str) -> tuple[int, ...]:
    return bt.call(lambda b: tuple(b.queue("/", q).message_count for q in queues)).result(10)


def _wait_until(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# -- templates, keys, bucket ------------------------------------------------------------------------


def test_payload_template_fills_every_placeholder() -> None:
    template = PayloadTemplate('{"n": {{counter}}, "id": "{{uuid}}", "at": "{{now}}", "r": {{rand:1-3}}}',
                               random.Random(1))
    first, second = (json.loads(template.render(i)) for i in (1, 2))
    assert (first["n"], second["n"]) == (1, 2)
    assert first["id"] != second["id"] and len(first["id"]) == 36
    assert first["at"].startswith("20") and first["at"].endswith("+00:00")
    assert {json.loads(template.render(i))["r"] for i in range(200)} == {1, 2, 3}


def test_payload_template_without_placeholders_is_verbatim() -> None:
    assert PayloadTemplate("plain {{unknown}}").render(5) == b"plain {{unknown}}"


def test_routing_keys_list_is_round_robin_and_pattern_substitutes() -> None:
    assert [RoutingKeys(["a", "b"]).key(i) for i in (1, 2, 3)] == ["a", "b", "a"]
    assert RoutingKeys("order.{n}").key(7) == "order.7"
    assert {RoutingKeys("eu.{rand}", random.Random(0)).key(1)[:3] for _ in range(3)} == {"eu."}
    assert RoutingKeys("fixed").key(9) == "fixed"


def test_token_bucket_never_gives_more_than_rate_times_time_plus_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(100, burst=10, clock=lambda: now[0])
    taken = 0
    for _ in range(1000):
        now[0] += 0.003
        taken += bucket.take(1000)
    assert taken <= 100 * now[0] + 10
    assert taken >= 100 * now[0] - 1  # it does not lose tokens either
    now[0] += 60  # a long stall is not followed by a flood
    assert bucket.take(10_000) == 10


# -- embedded engine ---------------------------------------------------------------------------------


def test_producer_at_200_per_second_for_one_second_is_all_received(
    broker_thread: EmbeddedBrokerThread,
) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    embedded = EmbeddedBroker(broker_thread)
    producer = ProducerRunner(embedded, Producer("api", routing_key="job"), rate=200, target="work")
    producer.start()
    started = time.monotonic()
    time.sleep(1.0)
    assert producer.stop()
    elapsed = time.monotonic() - started
    sent = producer.stats.sent
    assert sent > 0 and producer.stats.failed == 0
    assert sent <= 200 * elapsed + 20 + 1  # the bucket's bound: rate x time + burst (+ first token)
    assert _counts(broker_thread, "jobs") == (sent,)  # published == held by the queue

    consumer = ConsumerRunner(embedded, Consumer("worker", prefetch=25), source="jobs")
    consumer.start()
    assert _wait_until(lambda: consumer.stats.acked == sent)
    assert consumer.stop()
    assert consumer.stats.received == sent and consumer.stats.failed == 0
    assert _counts(broker_thread, "jobs", "jobs.dead") == (0, 0)


def test_failure_rate_one_dead_letters_everything(broker_thread: EmbeddedBrokerThread) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    embedded = EmbeddedBroker(broker_thread)
    producer = ProducerRunner(embedded, Producer("api", routing_key="job"), rate=1000, target="work",
                              max_messages=300)
    consumer = ConsumerRunner(embedded, Consumer("worker", prefetch=10, failure_rate=1.0), source="jobs")
    consumer.start()
    producer.start()
    assert producer.join(30)
    assert _wait_until(lambda: consumer.stats.failed == 300)
    assert consumer.stop()
    assert producer.stats.sent == 300
    assert (consumer.stats.acked, consumer.stats.failed) == (0, 300)
    assert _counts(broker_thread, "jobs", "jobs.dead") == (0, 300)
    dead = broker_thread.call(lambda b: next(iter(b.queue("/", "jobs.dead").messages())).message).result(10)
    assert dead.deaths and dead.deaths[0].reason == "rejected"


def test_requeue_rate_redelivers_and_nothing_is_lost(broker_thread: EmbeddedBrokerThread) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    embedded = EmbeddedBroker(broker_thread)
    producer = ProducerRunner(embedded, Producer("api", routing_key="job"), rate=1000, target="work",
                              max_messages=200)
    producer.start()
    assert producer.join(30)
    consumer = ConsumerRunner(embedded, Consumer("worker", prefetch=20), source="jobs",
                              requeue_rate=0.5, seed=7)
    consumer.start()
    assert _wait_until(lambda: consumer.stats.acked == 200)
    assert consumer.stop()
    s = consumer.stats
    assert s.requeued > 0
    assert s.received == s.acked + s.requeued  # every requeue came back as another delivery
    assert _counts(broker_thread, "jobs", "jobs.dead") == (0, 0)


def test_stopping_a_slow_consumer_returns_unsettled_messages(broker_thread: EmbeddedBrokerThread) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    embedded = EmbeddedBroker(broker_thread)
    producer = ProducerRunner(embedded, Producer("api", routing_key="job"), rate=1000, target="work",
                              max_messages=50)
    producer.start()
    assert producer.join(30)
    consumer = ConsumerRunner(embedded, Consumer("slow", prefetch=10, processing_ms=20), source="jobs")
    consumer.start()
    assert _wait_until(lambda: consumer.stats.acked >= 2)
    assert consumer.stop()
    acked = consumer.stats.acked
    assert _counts(broker_thread, "jobs") == (50 - acked,)


def test_producer_to_a_missing_exchange_counts_failures(broker_thread: EmbeddedBrokerThread) -> None:
    producer = ProducerRunner(EmbeddedBroker(broker_thread), Producer("p"), rate=500, target="nope",
                              max_messages=5)
    producer.start()
    assert producer.join(30)
    assert producer.stats.sent == 0 and producer.stats.failed == 5
    assert "nope" in producer.stats.error


def test_producer_sets_priority_ttl_headers_and_message_ids(broker_thread: EmbeddedBrokerThread) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    producer = ProducerRunner(EmbeddedBroker(broker_thread), Producer("api", routing_key="job"), rate=100,
                              headers={"tenant": "acme"}, priority=3, ttl_ms=60000, target="work",
                              max_messages=1)
    producer.start()
    assert producer.join(30)
    msg = broker_thread.call(lambda b: next(iter(b.queue("/", "jobs").messages())).message).result(10)
    props = msg.properties
    assert (props.priority, props.expiration, props.headers) == (3, "60000", {"tenant": "acme"})
    assert props.message_id == "api-1" and json.loads(msg.body)["id"] == 1


def test_producer_node_priority_ttl_and_payload_are_used(broker_thread: EmbeddedBrokerThread) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    node = Producer("api", routing_key="job", payload='{"n": {{counter}}}', priority=7, ttl_ms=1500)
    producer = ProducerRunner(EmbeddedBroker(broker_thread), node, rate=100, target="work", max_messages=1)
    producer.start()
    assert producer.join(30)
    msg = broker_thread.call(lambda b: next(iter(b.queue("/", "jobs").messages())).message).result(10)
    assert (msg.properties.priority, msg.properties.expiration) == (7, "1500")
    assert json.loads(msg.body) == {"n": 1}


# -- controller ------------------------------------------------------------------------------------


def _design() -> Topology:
    t = Topology()
    work = Exchange("work", ExchangeType.DIRECT, id="ex-work")
    dlx = Exchange("work.dlx", ExchangeType.FANOUT, id="ex-dlx")
    jobs = Queue("jobs", arguments={"x-dead-letter-exchange": "work.dlx"}, id="q-jobs")
    dead = Queue("jobs.dead", id="q-dead")
    for node in (work, dlx, jobs, dead):
        t.add_node(node)
    t.add_binding(Binding("ex-work", "q-jobs", "job"))
    t.add_binding(Binding("ex-dlx", "q-dead", ""))
    t.add_node(Producer("api", target="ex-work", routing_key="job", rate=500, id="p-api"))
    t.add_node(Consumer("worker", source="q-jobs", prefetch=20, failure_rate=0.0, id="c-worker"))
    t.add_node(Producer("orphan", id="p-orphan"))
    return t


def test_controller_starts_and_stops_each_node_and_all(broker_thread: EmbeddedBrokerThread) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    changes: list[tuple[str, bool]] = []
    controller = TrafficController(
        _design(), embedded=EmbeddedBroker(broker_thread), on_change=lambda i, r: changes.append((i, r))
    )
    problems = controller.start_all()
    assert set(problems) == {"p-orphan"} and "connect it" in problems["p-orphan"]
    assert set(controller.running_ids()) == {"p-api", "c-worker"}
    assert _wait_until(lambda: controller.stats()["c-worker"].acked > 0)
    assert controller.stop("p-api")
    assert not controller.is_running("p-api") and controller.is_running("c-worker")
    sent = controller.stats()["p-api"].sent
    assert _wait_until(lambda: controller.stats()["c-worker"].acked == sent)
    assert controller.stop_all()
    assert controller.running_ids() == []
    assert controller.summary()[:2] == (sent, sent)
    assert ("c-worker", True) in changes and ("p-api", False) in changes
    assert "sent" in controller.describe("p-api") and "acked" in controller.describe("c-worker")


def test_controller_uses_the_nodes_own_message_settings_over_the_options(
    broker_thread: EmbeddedBrokerThread,
) -> None:
    broker_thread.call(_declare_work_queue).result(10)
    t = _design()
    t.set_node_field("p-api", "priority", 9)
    t.set_node_field("p-api", "ttl_ms", 60_000)
    t.set_node_field("c-worker", "requeue_rate", 0.25)
    options = TrafficOptions(priority=1, ttl_ms=5, requeue_rate=0.5, payload_template="fallback")
    controller = TrafficController(t, embedded=EmbeddedBroker(broker_thread), options=options)
    producer = controller._make("p-api")
    assert isinstance(producer, ProducerRunner) and producer.max_messages is None
    producer.max_messages = 1
    producer.start()
    assert producer.join(30)
    msg = broker_thread.call(lambda b: next(iter(b.queue("/", "jobs").messages())).message).result(10)
    assert (msg.properties.priority, msg.properties.expiration, msg.body) == (9, "60000", b"fallback")
    consumer = controller._make("c-worker")
    assert isinstance(consumer, ConsumerRunner) and consumer.requeue_rate == 0.25
    t.set_node_field("c-worker", "requeue_rate", 0.0)
    consumer = controller._make("c-worker")
    assert isinstance(consumer, ConsumerRunner) and consumer.requeue_rate == 0.5


def test_controller_refuses_nodes_that_are_not_clients(broker_thread: EmbeddedBrokerThread) -> None:
    controller = TrafficController(_design(), embedded=EmbeddedBroker(broker_thread))
    with pytest.raises(TrafficError):
        controller.start("q-jobs")


# -- other backends: publish per message, consume_for_replay + settle -----------------------------------


class FakeBackend:
    """Just enough of a `Backend` for the generic path: an in-memory queue with manual settle."""

    def __init__(self) -> None:
        self.published: list[OutgoingMessage] = []
        self.ready: list[BrokerMessage] = []
        self.settled: list[tuple[bool, bool]] = []
        self.connected = self.closed = False

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.closed = True

    def publish(self, message: OutgoingMessage) -> PublishResult:
        self.published.append(message)
        self.ready.append(BrokerMessage("q", message.body, message.target, message.key))
        return PublishResult(True, True)

    def consume_for_replay(self, source: str, limit: int) -> list[BrokerMessage]:
        out, self.ready = self.ready[:limit], self.ready[limit:]
        return out

    def settle(self, message: BrokerMessage, *, ack: bool, requeue: bool = True) -> None:
        self.settled.append((ack, requeue))


def test_generic_backend_path_publishes_and_settles_on_the_runner_thread() -> None:
    backend = FakeBackend()
    producer = ProducerRunner(backend, Producer("p"), rate=1000, target="x", routing_keys=["a", "b"],  # type: ignore[arg-type]
                              max_messages=40, own_backend=True)
    producer.start()
    assert producer.join(30)
    assert backend.connected and backend.closed
    assert [m.key for m in backend.published[:3]] == ["a", "b", "a"]
    consumer = ConsumerRunner(backend, Consumer("c", prefetch=8, failure_rate=0.25), source="q", seed=3)  # type: ignore[arg-type]
    consumer.start()
    assert _wait_until(lambda: consumer.stats.acked + consumer.stats.failed == 40)
    assert consumer.stop()
    assert len(backend.settled) == 40
    assert sum(1 for ack, requeue in backend.settled if not ack and not requeue) == consumer.stats.failed > 0


def test_publish_function_counts_unconfirmed_as_failed() -> None:
    results = iter([PublishResult(True, True), PublishResult(False), PublishResult(True, routed=False)])
    producer = ProducerRunner(lambda m: next(results), Producer("p"), rate=1000, target="x", max_messages=3)
    producer.start()
    assert producer.join(30)
    s = producer.stats
    assert (s.sent, s.failed, s.unroutable) == (2, 1, 1)


def test_generator_on_real_rabbitmq_publishes_consumes_and_dead_letters(
    rabbitmq_backend: Any, rabbitmq_service: Any
) -> None:
    """Producer and consumer runners against a live RabbitMQ, each on its own connection: every
    message is either acknowledged or (failed) dead-lettered, none lost."""
    vhost, api = rabbitmq_backend.vhost, rabbitmq_backend.http
    api.declare_exchange(vhost, "work", "direct")
    api.declare_exchange(vhost, "dlx", "fanout")
    api.declare_queue(vhost, "jobs", arguments={"x-dead-letter-exchange": "dlx"})
    api.declare_queue(vhost, "jobs.dead")
    api.bind(vhost, "work", "jobs", routing_key="job")
    api.bind(vhost, "dlx", "jobs.dead")
    producer = ProducerRunner(rabbitmq_service.backend(vhost), Producer("api", routing_key="job"), rate=500,
                              target="work", max_messages=100, own_backend=True)
    worker = Consumer("worker", prefetch=10, failure_rate=0.3)
    consumer = ConsumerRunner(rabbitmq_service.backend(vhost), worker, source="jobs", seed=11,
                              own_backend=True)  # connected and closed on its thread
    consumer.start()
    producer.start()
    assert producer.join(60)
    assert producer.stats.sent == 100 and producer.stats.failed == 0
    assert _wait_until(lambda: consumer.stats.acked + consumer.stats.failed == 100)
    assert consumer.stop()
    assert consumer.stats.failed > 0
    dead = rabbitmq_backend.message_count("jobs.dead")
    assert (rabbitmq_backend.message_count("jobs"), dead) == (0, consumer.stats.failed)
