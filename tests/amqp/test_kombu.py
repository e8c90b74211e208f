"""kombu (celery's transport) works against the embedded broker: declare, publish, consume, ack,
priorities, and the SimpleQueue API many applications use."""

from __future__ import annotations

import kombu
import pytest
from kombu.simple import SimpleQueue

from tests.amqp.conftest import RunningBroker


def _url(running: RunningBroker) -> str:
    return f"amqp://guest:guest@{running.host}:{running.port}//"


def test_kombu_producer_and_consumer_round_trip_with_ack(broker_server: RunningBroker) -> None:
    exchange = kombu.Exchange("tasks", type="direct", durable=False)
    queue = kombu.Queue("tasks.q", exchange, routing_key="task", durable=False)
    received: list[dict[str, object]] = []
    with kombu.Connection(_url(broker_server), connect_timeout=5) as conn:
        producer = conn.Producer(serializer="json")
        producer.publish({"n": 1}, exchange=exchange, routing_key="task", declare=[queue])
        producer.publish({"n": 2}, exchange=exchange, routing_key="task", declare=[queue])

        def on_message(body: dict[str, object], message: kombu.Message) -> None:
            received.append(body)
            message.ack()

        with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
            while len(received) < 2:
                conn.drain_events(timeout=5)
    assert received == [{"n": 1}, {"n": 2}]
    assert broker_server.call(lambda: broker_server.broker.queue("/", "tasks.q").message_count) == 0


def test_kombu_simple_queue_honours_priority(broker_server: RunningBroker) -> None:
    with kombu.Connection(_url(broker_server), connect_timeout=5) as conn:
        jobs = kombu.Exchange("jobs", type="direct", durable=False)
        declared = kombu.Queue(
            "jobs", jobs, routing_key="jobs", queue_arguments={"x-max-priority": 10}, durable=False
        )
        queue = SimpleQueue(conn, declared, serializer="json")
        queue.put({"job": "low"}, priority=1)
        queue.put({"job": "high"}, priority=9)
        first = queue.get(timeout=5)
        first.ack()
        second = queue.get(timeout=5)
        second.ack()
        queue.close()
    assert [first.payload["job"], second.payload["job"]] == ["high", "low"]


def test_kombu_get_on_an_empty_queue_raises_empty(broker_server: RunningBroker) -> None:
    with kombu.Connection(_url(broker_server), connect_timeout=5) as conn:
        queue = SimpleQueue(conn, "empty", queue_opts={"durable": False}, exchange_opts={"durable": False})
        with pytest.raises(queue.Empty):
            queue.get(block=False)
        queue.close()
