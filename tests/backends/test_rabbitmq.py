"""RabbitMQBackend against a real RabbitMQ: topology, plan/apply, publish, peek, replay, tail, purge, stats.

Every test runs in its own vhost (`rabbitmq_vhost`), deleted afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mqstudio.backends.base import (
    Backend,
    BackendKind,
    BrokerMessage,
    Capabilities,
    NotFoundError,
    OutgoingMessage,
    UnsupportedError,
)
from mqstudio.backends.rabbitmq import MAX_PEEK, RabbitMQBackend
from mqstudio.backends.rabbitmq_http import ManagementClient
from mqstudio.core.metrics import ObjectStats
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topology
from mqstudio.core.plan import StepKind
from mqstudio.core.policies import document_default_queue_types
from tests.fixtures.rabbitmq import RabbitMQService


def eventually(check: Callable[[], Any], what: str, deadline_s: float = 20.0) -> Any:
    """Poll until `check()` is truthy (the management API's statistics lag by seconds)."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.2)


class Flag:
    def __init__(self) -> None:
        self.cancelled = False


def design(vhost: str) -> tuple[Topology, Exchange, Queue, Queue]:
    """orders (topic) → audit [order.#], → created [order.created]."""
    t = Topology()
    orders = Exchange("orders", ExchangeType.TOPIC, vhost=vhost)
    audit = Queue("audit", vhost=vhost, arguments={"x-queue-type": "quorum"})
    created = Queue("created", vhost=vhost, arguments={"x-max-length": 100})
    for node in (orders, audit, created):
        t.add_node(node)
    t.add_binding(Binding(orders.id, audit.id, "order.#"))
    t.add_binding(Binding(orders.id, created.id, "order.created"))
    return t, orders, audit, created


def applied(backend: RabbitMQBackend, topology: Topology) -> None:
    report = backend.apply(backend.plan(topology))
    assert report.ok, report.describe()


def publish(backend: RabbitMQBackend, key: str, body: bytes = b"x", **kw: Any) -> None:
    result = backend.publish(OutgoingMessage("orders", body, key=key, **kw))
    assert result.confirmed and result.routed, result


# -- identity ---------------------------------------------------------------------------------------
def test_backend_satisfies_the_protocol_and_describes_itself_without_password(
    rabbitmq_backend: RabbitMQBackend, rabbitmq_vhost: str
) -> None:
    backend: Backend = rabbitmq_backend
    assert backend.kind is BackendKind.RABBITMQ
    assert backend.description == f"rabbitmq guest@127.0.0.1:5672 vhost {rabbitmq_vhost}"
    assert "guest@" in repr(rabbitmq_backend) and ":guest" not in repr(rabbitmq_backend)
    assert rabbitmq_backend.server_version


def test_capabilities_cover_what_rabbitmq_can_do(rabbitmq_backend: RabbitMQBackend) -> None:
    caps = rabbitmq_backend.capabilities
    for flag in (
        Capabilities.EXCHANGES,
        Capabilities.HEADERS_EXCHANGE,
        Capabilities.DEAD_LETTERING,
        Capabilities.PEEK,
        Capabilities.REPLAY,
        Capabilities.TOPOLOGY_WRITE,
        Capabilities.STATS,
        Capabilities.TAIL,
        Capabilities.PURGE,
    ):
        assert flag in caps
    assert Capabilities.TOPICS not in caps
    delayed = "x-delayed-message" in rabbitmq_backend.http.exchange_types()
    assert (Capabilities.DELAYED_EXCHANGE in caps) == delayed


def test_vhost_list_includes_the_backends_vhost(rabbitmq_backend: RabbitMQBackend) -> None:
    assert rabbitmq_backend.vhost in rabbitmq_backend.list_vhosts()


# -- topology ---------------------------------------------------------------------------------------
def test_apply_creates_the_design_and_a_second_plan_is_empty(rabbitmq_backend: RabbitMQBackend) -> None:
    topology, *_ = design(rabbitmq_backend.vhost)
    plan = rabbitmq_backend.plan(topology)
    assert [s.kind for s in plan.steps] == [
        StepKind.CREATE_EXCHANGE,
        StepKind.CREATE_QUEUE,
        StepKind.CREATE_QUEUE,
        StepKind.BIND,
        StepKind.BIND,
    ]
    progress: list[tuple[int, int]] = []
    report = rabbitmq_backend.apply(plan, progress=lambda done, total, what: progress.append((done, total)))
    assert report.ok and report.applied == plan.steps
    assert progress[-1] == (5, 5)
    assert rabbitmq_backend.plan(topology).is_empty


def test_fetch_topology_returns_the_live_objects(rabbitmq_backend: RabbitMQBackend) -> None:
    topology, *_ = design(rabbitmq_backend.vhost)
    applied(rabbitmq_backend, topology)
    document = rabbitmq_backend.fetch_topology()
    live = document.topology
    assert sorted(n.name for n in live.exchanges) == ["orders"]
    assert {q.name: q.arguments for q in live.queues} == {
        "audit": {"x-queue-type": "quorum"},
        "created": {"x-max-length": 100},
    }
    routes = {(live.node(b.source).name, live.node(b.destination).name, b.routing_key) for b in live.bindings}
    assert routes == {("orders", "audit", "order.#"), ("orders", "created", "order.created")}
    assert not document.dirty
    assert document.metadata["rabbitmq"]["vhost"] == rabbitmq_backend.vhost


def test_fetch_topology_without_administrator_tag_uses_the_lists(
    rabbitmq_service: RabbitMQService, rabbitmq_admin: ManagementClient, rabbitmq_backend: RabbitMQBackend
) -> None:
    topology, *_ = design(rabbitmq_backend.vhost)
    applied(rabbitmq_backend, topology)
    user = f"{rabbitmq_backend.vhost}-mgmt"
    rabbitmq_admin.create_user(user, "pw", tags="management")
    try:
        rabbitmq_admin.set_permissions(rabbitmq_backend.vhost, user)
        with rabbitmq_service.backend(rabbitmq_backend.vhost, username=user, password="pw") as other:
            live = other.fetch_topology().topology
            assert sorted(q.name for q in live.queues) == ["audit", "created"]
            assert len(live.bindings) == 2
            assert other.plan(topology).is_empty
    finally:
        rabbitmq_admin.delete_user(user)


def test_changed_queue_arguments_need_consent_and_are_skipped_without_it(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    topology, _, _, created = design(rabbitmq_backend.vhost)
    applied(rabbitmq_backend, topology)
    publish(rabbitmq_backend, "order.created")
    topology.node(created.id).arguments["x-max-length"] = 50  # type: ignore[union-attr]

    plan = rabbitmq_backend.plan(topology)
    recreate = plan.of_kind(StepKind.RECREATE_QUEUE)
    assert len(recreate) == 1 and recreate[0].needs_consent
    report = rabbitmq_backend.apply(plan)
    assert report.skipped == recreate
    assert rabbitmq_backend.http.queue(rabbitmq_backend.vhost, "created")["arguments"] == {
        "x-max-length": 100
    }


def test_recreate_with_consent_changes_the_queue_and_keeps_its_bindings(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    topology, _, _, created = design(rabbitmq_backend.vhost)
    applied(rabbitmq_backend, topology)
    topology.node(created.id).arguments["x-max-length"] = 50  # type: ignore[union-attr]

    plan = rabbitmq_backend.plan(topology)
    report = rabbitmq_backend.apply(plan, consent=plan.of_kind(StepKind.RECREATE_QUEUE))
    assert report.ok, report.describe()
    assert rabbitmq_backend.http.queue(rabbitmq_backend.vhost, "created")["arguments"] == {"x-max-length": 50}
    assert rabbitmq_backend.plan(topology).is_empty
    publish(rabbitmq_backend, "order.created")  # still bound


def test_recreate_exchange_rebinds_it(rabbitmq_backend: RabbitMQBackend) -> None:
    topology, orders, *_ = design(rabbitmq_backend.vhost)
    applied(rabbitmq_backend, topology)
    topology.node(orders.id).arguments["alternate-exchange"] = "unrouted"  # type: ignore[union-attr]
    applied(rabbitmq_backend, topology)
    assert rabbitmq_backend.http.exchange(rabbitmq_backend.vhost, "orders")["arguments"] == {
        "alternate-exchange": "unrouted"
    }
    assert rabbitmq_backend.plan(topology).is_empty


def test_prune_removes_what_the_design_dropped(rabbitmq_backend: RabbitMQBackend) -> None:
    topology, _, _, created = design(rabbitmq_backend.vhost)
    applied(rabbitmq_backend, topology)
    for binding in topology.bindings_of(created.id):
        topology.remove_binding(binding.id)
    topology.remove_node(created.id)
    plan = rabbitmq_backend.plan(topology, prune=True)
    report = rabbitmq_backend.apply(plan, consent=plan.steps)
    assert report.ok, report.describe()
    assert [q["name"] for q in rabbitmq_backend.http.queues(rabbitmq_backend.vhost)] == ["audit"]


def test_cancel_between_steps_reports_what_was_not_applied(rabbitmq_backend: RabbitMQBackend) -> None:
    topology, *_ = design(rabbitmq_backend.vhost)
    plan = rabbitmq_backend.plan(topology)
    flag = Flag()

    def progress(done: int, total: int, what: str) -> None:
        if done == 2:
            flag.cancelled = True

    report = rabbitmq_backend.apply(plan, progress=progress, cancel=flag)
    assert report.cancelled and not report.ok
    assert report.applied == plan.steps[:3]
    assert report.not_applied == plan.steps[3:]
    assert {q["name"] for q in rabbitmq_backend.http.queues(rabbitmq_backend.vhost)} == {"audit", "created"}
    assert rabbitmq_backend.http.bindings_between(rabbitmq_backend.vhost, "orders", "audit") == []


def test_quorum_default_vhost_does_not_recreate_untyped_queues(
    rabbitmq_service: RabbitMQService, rabbitmq_admin: ManagementClient, rabbitmq_vhost: str
) -> None:
    vhost = rabbitmq_vhost + "-quorum"
    rabbitmq_admin.create_vhost(vhost, default_queue_type="quorum")
    try:
        rabbitmq_admin.set_permissions(vhost, rabbitmq_service.username)
        with rabbitmq_service.backend(vhost) as backend:
            topology = Topology()
            topology.add_node(Queue("jobs", vhost=vhost))
            applied(backend, topology)
            assert backend.http.queue(vhost, "jobs")["type"] == "quorum"
            assert backend.plan(topology).is_empty
            assert document_default_queue_types(backend.fetch_topology()) == {vhost: "quorum"}
    finally:
        rabbitmq_admin.delete_vhost(vhost)


# -- publish ----------------------------------------------------------------------------------------
def test_publish_reports_routed_and_unroutable(rabbitmq_backend: RabbitMQBackend) -> None:
    applied(rabbitmq_backend, design(rabbitmq_backend.vhost)[0])
    routed = rabbitmq_backend.publish(OutgoingMessage("orders", b"a", key="order.created"))
    unrouted = rabbitmq_backend.publish(OutgoingMessage("orders", b"b", key="nobody.listens"))
    assert routed.confirmed and routed.routed
    assert unrouted.confirmed and not unrouted.routed and "NO_ROUTE" in unrouted.detail
    again = rabbitmq_backend.publish(OutgoingMessage("orders", b"c", key="order.created"))
    assert again.routed  # the channel survives a return


def test_publish_to_a_missing_exchange_is_not_found_and_the_next_publish_works(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    with pytest.raises(NotFoundError, match="no exchange 'nope'"):
        rabbitmq_backend.publish(OutgoingMessage("nope", b"x"))
    rabbitmq_backend.http.declare_queue(rabbitmq_backend.vhost, "direct")
    assert rabbitmq_backend.publish(OutgoingMessage("", b"x", key="direct")).routed


def test_unknown_property_is_refused(rabbitmq_backend: RabbitMQBackend) -> None:
    with pytest.raises(UnsupportedError, match="'colour' is not an AMQP basic property"):
        rabbitmq_backend.publish(OutgoingMessage("", b"x", properties={"colour": "red"}))


# -- peek, replay, purge ----------------------------------------------------------------------------
def test_peek_returns_messages_and_leaves_them_marked_redelivered(rabbitmq_backend: RabbitMQBackend) -> None:
    applied(rabbitmq_backend, design(rabbitmq_backend.vhost)[0])
    for i in range(3):
        publish(
            rabbitmq_backend,
            "order.created",
            f"m{i}".encode(),
            headers={"n": i},
            properties={"message_id": f"id{i}", "content_type": "text/plain", "timestamp": 1_700_000_000},
        )
    first = rabbitmq_backend.peek("created", 10)
    assert [m.body for m in first] == [b"m0", b"m1", b"m2"]
    assert [m.headers["n"] for m in first] == [0, 1, 2]
    assert first[0].properties["message_id"] == "id0"
    assert first[0].properties["content_type"] == "text/plain"
    assert first[0].timestamp_ms == 1_700_000_000_000
    assert first[0].exchange == "orders" and first[0].routing_key == "order.created"
    assert not any(m.redelivered for m in first)

    second = rabbitmq_backend.peek("created", 2)
    assert [m.body for m in second] == [b"m0", b"m1"]
    assert all(m.redelivered for m in second)
    assert len(rabbitmq_backend.peek("created", 10)) == 3  # nothing was taken


def test_peek_is_capped(rabbitmq_backend: RabbitMQBackend) -> None:
    rabbitmq_backend.http.declare_queue(rabbitmq_backend.vhost, "many")
    for i in range(MAX_PEEK + 5):
        rabbitmq_backend.publish(OutgoingMessage("", str(i).encode(), key="many"))
    assert len(rabbitmq_backend.peek("many", MAX_PEEK * 10)) == MAX_PEEK


def test_peek_of_a_missing_queue_is_not_found(rabbitmq_backend: RabbitMQBackend) -> None:
    with pytest.raises(NotFoundError, match="queue 'ghost'"):
        rabbitmq_backend.peek("ghost")


def test_peek_side_effects_explain_redelivery_and_the_delivery_limit(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    vh = rabbitmq_backend.vhost
    rabbitmq_backend.http.declare_queue(vh, "classic")
    rabbitmq_backend.http.declare_queue(vh, "q", arguments={"x-queue-type": "quorum", "x-delivery-limit": 3})
    rabbitmq_backend.http.declare_queue(vh, "s", arguments={"x-queue-type": "stream"})
    classic = rabbitmq_backend.peek_side_effects("classic")
    quorum = rabbitmq_backend.peek_side_effects("q")
    assert "redelivered" in classic and "delivery limit" not in classic
    assert "delivery limit (3)" in quorum
    assert "changes nothing" in rabbitmq_backend.peek_side_effects("s")


def test_peek_of_a_stream_reads_from_the_first_offset_without_consuming(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    rabbitmq_backend.http.declare_queue(rabbitmq_backend.vhost, "log", arguments={"x-queue-type": "stream"})
    for i in range(4):
        assert rabbitmq_backend.publish(OutgoingMessage("", f"e{i}".encode(), key="log")).routed
    assert [m.body for m in rabbitmq_backend.peek("log", 3)] == [b"e0", b"e1", b"e2"]
    assert [m.offset for m in rabbitmq_backend.peek("log", 10, offset=2)] == [2, 3]


def test_peek_counts_toward_a_quorum_queues_delivery_limit(rabbitmq_backend: RabbitMQBackend) -> None:
    vh = rabbitmq_backend.vhost
    rabbitmq_backend.http.declare_queue(
        vh, "limited", arguments={"x-queue-type": "quorum", "x-delivery-limit": 1}
    )
    rabbitmq_backend.publish(OutgoingMessage("", b"fragile", key="limited"))
    peeks = [len(rabbitmq_backend.peek("limited")) for _ in range(3)]
    assert peeks[0] == 1 and peeks[-1] == 0  # peeked past the limit: dropped (no dead-letter exchange)


def test_replay_messages_stay_taken_until_settled(rabbitmq_backend: RabbitMQBackend) -> None:
    applied(rabbitmq_backend, design(rabbitmq_backend.vhost)[0])
    for i in range(3):
        publish(rabbitmq_backend, "order.created", f"r{i}".encode())
    taken = rabbitmq_backend.consume_for_replay("created", 2)
    assert [m.body for m in taken] == [b"r0", b"r1"]
    assert [m.body for m in rabbitmq_backend.peek("created")] == [b"r2"]  # the two are held

    rabbitmq_backend.settle(taken[0], ack=True)
    rabbitmq_backend.settle(taken[1], ack=False, requeue=True)
    assert sorted(m.body for m in rabbitmq_backend.peek("created")) == [b"r1", b"r2"]


def test_settle_of_a_foreign_message_is_refused(rabbitmq_backend: RabbitMQBackend) -> None:
    with pytest.raises(Exception, match="not taken with consume_for_replay"):
        rabbitmq_backend.settle(BrokerMessage(source="q", body=b""), ack=True)


def test_purge_returns_the_number_of_messages(rabbitmq_backend: RabbitMQBackend) -> None:
    applied(rabbitmq_backend, design(rabbitmq_backend.vhost)[0])
    for _ in range(4):
        publish(rabbitmq_backend, "order.created")
    assert rabbitmq_backend.purge("created") == 4
    assert rabbitmq_backend.peek("created") == []
    with pytest.raises(NotFoundError):
        rabbitmq_backend.purge("ghost")


# -- tail -------------------------------------------------------------------------------------------
def run_tail(backend: RabbitMQBackend, target: str) -> tuple[list[BrokerMessage], Flag, threading.Thread]:
    seen: list[BrokerMessage] = []
    flag = Flag()
    thread = threading.Thread(target=backend.tail, args=(target, seen.append, flag), daemon=True)
    thread.start()
    return seen, flag, thread


def tail_queue_bound(backend: RabbitMQBackend) -> bool:
    return any(b["destination"].startswith("amq.gen-") for b in backend.http.bindings(backend.vhost))


def test_tail_sees_routed_messages_without_taking_them(
    rabbitmq_service: RabbitMQService, rabbitmq_backend: RabbitMQBackend
) -> None:
    applied(rabbitmq_backend, design(rabbitmq_backend.vhost)[0])
    with rabbitmq_service.backend(rabbitmq_backend.vhost) as tailer:
        seen, flag, thread = run_tail(tailer, "orders")
        try:
            eventually(lambda: tail_queue_bound(rabbitmq_backend), "the tail queue is bound")
            publish(rabbitmq_backend, "order.created", b"one")
            unrouted = rabbitmq_backend.publish(OutgoingMessage("orders", b"two", key="other"))
            assert not unrouted.routed  # the tail does not make unroutable messages routable
            eventually(lambda: seen, "the tail saw the message")
        finally:
            flag.cancelled = True
            thread.join(timeout=30)
    assert not thread.is_alive()
    assert [(m.body, m.routing_key, m.source) for m in seen] == [(b"one", "order.created", "orders")]
    assert [m.body for m in rabbitmq_backend.peek("created")] == [b"one"]
    eventually(lambda: not tail_queue_bound(rabbitmq_backend), "the tail queue is gone")


def test_tail_of_a_queue_is_refused_naming_the_exchanges_to_tail(rabbitmq_backend: RabbitMQBackend) -> None:
    applied(rabbitmq_backend, design(rabbitmq_backend.vhost)[0])
    with pytest.raises(UnsupportedError, match="cannot observe queue 'audit'") as info:
        rabbitmq_backend.tail("audit", lambda m: None, Flag())
    assert "tail exchange 'orders' instead" in info.value.hint


def test_tail_of_nothing_is_not_found(rabbitmq_backend: RabbitMQBackend) -> None:
    with pytest.raises(NotFoundError, match="no exchange or queue named 'ghost'"):
        rabbitmq_backend.tail("ghost", lambda m: None, Flag())


# -- stats ------------------------------------------------------------------------------------------
def test_stats_report_queue_gauges_and_counters(rabbitmq_backend: RabbitMQBackend) -> None:
    applied(rabbitmq_backend, design(rabbitmq_backend.vhost)[0])
    for _ in range(3):
        publish(rabbitmq_backend, "order.created")
    taken = rabbitmq_backend.consume_for_replay("created", 1)

    def created_stats() -> ObjectStats | None:
        stats = rabbitmq_backend.stats().get("queue", "created", rabbitmq_backend.vhost)
        # The management API updates message_stats counters and the queue gauges at different
        # moments; wait until all of them show the publish and the take.
        if stats is None or stats.counters["published"] != 3 or stats.counters.get("delivered") != 1:
            return None
        return stats if stats.gauges["ready"] == 2 and stats.gauges["unacked"] == 1 else None

    stats: ObjectStats = eventually(created_stats, "queue statistics reach the management API")
    assert stats.gauges["consumers"] == 0
    rabbitmq_backend.settle(taken[0], ack=True)
    snapshot = rabbitmq_backend.stats()
    orders = snapshot.get("exchange", "orders", rabbitmq_backend.vhost)
    assert orders is not None and set(orders.counters) == {"published", "routed"}


def test_tail_of_a_headers_exchange_copies_its_bindings(
    rabbitmq_service: RabbitMQService, rabbitmq_backend: RabbitMQBackend
) -> None:
    vh, api = rabbitmq_backend.vhost, rabbitmq_backend.http
    api.declare_exchange(vh, "by-region", "headers")
    api.declare_queue(vh, "eu")
    api.bind(vh, "by-region", "eu", arguments={"x-match": "all", "region": "eu"})
    with rabbitmq_service.backend(vh) as tailer:
        seen, flag, thread = run_tail(tailer, "by-region")
        try:
            eventually(lambda: tail_queue_bound(rabbitmq_backend), "the tail queue is bound")
            us = rabbitmq_backend.publish(OutgoingMessage("by-region", b"us", headers={"region": "us"}))
            eu = rabbitmq_backend.publish(OutgoingMessage("by-region", b"eu", headers={"region": "eu"}))
            assert not us.routed and eu.routed
            eventually(lambda: seen, "the tail saw the message")
        finally:
            flag.cancelled = True
            thread.join(timeout=30)
    assert [m.body for m in seen] == [b"eu"]
