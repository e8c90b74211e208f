"""What a user sees when RabbitMQ is away, refuses them, or disagrees: one specific error type each, an
actionable message, and no half-done work (apply stops and reports exactly; replay loses nothing).

The fault test runs AMQP through a small TCP proxy that can cut every link at once
(`tests.fixtures.proxy.Proxy`).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mqstudio.backends.base import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    OutgoingMessage,
    PermissionDeniedError,
    UnreachableError,
)
from mqstudio.backends.rabbitmq import RabbitMQBackend
from mqstudio.backends.rabbitmq_http import MANAGEMENT_HINT, ManagementClient
from mqstudio.core.model import Binding, Exchange, Queue, Topology
from mqstudio.core.plan import StepKind
from tests.fixtures.proxy import Proxy
from tests.fixtures.rabbitmq import RabbitMQService


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(check: Callable[[], Any], what: str, deadline_s: float = 20.0) -> Any:
    end = time.monotonic() + deadline_s
    while not (value := check()):
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.2)
    return value


# -- unreachable ------------------------------------------------------------------------------------
def test_closed_amqp_port_is_unreachable_naming_host_and_port(rabbitmq_service: RabbitMQService) -> None:
    port = closed_port()
    backend = rabbitmq_service.backend("/", port=port)
    with pytest.raises(UnreachableError) as info:
        backend.connect()
    backend.close()
    assert f"cannot reach RabbitMQ at 127.0.0.1:{port}: Connection refused" in info.value.message
    assert "5672" in info.value.hint


def test_unresolvable_host_is_unreachable(rabbitmq_service: RabbitMQService) -> None:
    backend = rabbitmq_service.backend("/", management_host="127.0.0.1")
    backend.amqp.host = "no-such-host.invalid"
    backend.amqp._params.host = "no-such-host.invalid"
    with pytest.raises(UnreachableError, match=r"cannot reach RabbitMQ at no-such-host\.invalid"):
        backend.amqp.connection()
    backend.close()


def test_no_management_api_is_unreachable_with_the_plugin_hint(rabbitmq_service: RabbitMQService) -> None:
    port = closed_port()
    with (
        ManagementClient("127.0.0.1", port, prometheus_port=None) as client,
        pytest.raises(UnreachableError, match=f"management API at http://127.0.0.1:{port}") as info,
    ):
        client.overview()
    assert info.value.hint == MANAGEMENT_HINT
    backend = rabbitmq_service.backend("/", management_port=port)
    with pytest.raises(UnreachableError) as info:
        backend.connect()
    backend.close()
    assert "rabbitmq-plugins enable rabbitmq_management" in str(info.value)


# -- credentials and permissions --------------------------------------------------------------------
def test_wrong_password_is_an_authentication_error_without_the_password(
    rabbitmq_service: RabbitMQService, rabbitmq_vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = rabbitmq_service.backend(rabbitmq_vhost, password="wrong-secret")
    with pytest.raises(AuthenticationError, match="refused the login of user 'guest'") as http_info:
        backend.connect()
    with pytest.raises(AuthenticationError, match="refused the login of user 'guest'") as amqp_info:
        backend.amqp.connection()  # the AMQP side says the same
    backend.close()
    for info in (http_info, amqp_info):
        assert "wrong-secret" not in str(info.value)
        assert "password" in info.value.hint
    assert "wrong-secret" not in caplog.text  # pika and httpx log parameters, never the password


@pytest.fixture
def stranger(rabbitmq_admin: ManagementClient) -> Iterator[str]:
    """A user with the management tag and no permission on any vhost."""
    name = f"mqs-test-user-{uuid.uuid4().hex[:8]}"
    rabbitmq_admin.create_user(name, "pw", tags="management")
    yield name
    rabbitmq_admin.delete_user(name)


def test_vhost_without_permission_is_permission_denied_naming_vhost_and_user(
    rabbitmq_service: RabbitMQService, rabbitmq_vhost: str, stranger: str
) -> None:
    backend = rabbitmq_service.backend(rabbitmq_vhost, username=stranger, password="pw")
    with pytest.raises(PermissionDeniedError) as info:
        backend.connect()
    message = str(info.value)
    assert rabbitmq_vhost in message and stranger in message
    assert "set_permissions" in info.value.hint
    with pytest.raises(PermissionDeniedError, match="not authorised to access virtual host"):
        backend.fetch_topology()
    backend.close()


def test_missing_vhost_is_refused_by_name(rabbitmq_service: RabbitMQService) -> None:
    backend = rabbitmq_service.backend("mqs-test-no-such-vhost")
    with pytest.raises(PermissionDeniedError, match="vhost mqs-test-no-such-vhost not found"):
        backend.connect()
    backend.close()


def test_read_without_permission_is_permission_denied_and_the_connection_survives(
    rabbitmq_service: RabbitMQService, rabbitmq_admin: ManagementClient, rabbitmq_vhost: str, stranger: str
) -> None:
    rabbitmq_admin.set_permissions(rabbitmq_vhost, stranger, configure=".*", write=".*", read="^$")
    rabbitmq_admin.declare_queue(rabbitmq_vhost, "secret")
    with rabbitmq_service.backend(rabbitmq_vhost, username=stranger, password="pw") as backend:
        with pytest.raises(
            PermissionDeniedError, match=f"user '{stranger}' may not peek queue 'secret'"
        ) as info:
            backend.peek("secret")
        assert "ACCESS_REFUSED" in str(info.value)
        # only the channel was closed: the next operation works
        assert backend.publish(OutgoingMessage("", b"x", key="secret")).routed


# -- conflicts and partial state --------------------------------------------------------------------
def test_queue_with_other_arguments_is_a_conflict_with_rabbitmqs_text(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    rabbitmq_backend.http.declare_queue(rabbitmq_backend.vhost, "q", arguments={"x-max-length": 5})
    with (
        pytest.raises(ConflictError, match="PRECONDITION_FAILED - inequivalent arg 'x-max-length'"),
        rabbitmq_backend.amqp.errors("declare queue 'q'"),
    ):
        rabbitmq_backend.amqp.channel().queue_declare("q", durable=True, arguments={"x-max-length": 6})
    assert rabbitmq_backend.peek("q") == []  # a fresh channel serves the next call


def test_apply_stops_at_the_first_failure_and_reports_exactly(rabbitmq_backend: RabbitMQBackend) -> None:
    vh = rabbitmq_backend.vhost
    topology = Topology()
    orders = Exchange("orders", "direct", vhost=vh)
    jobs = Queue("jobs", vhost=vh, arguments={"x-max-length": 6})
    topology.add_node(orders)
    topology.add_node(jobs)
    topology.add_binding(Binding(orders.id, jobs.id, "job"))
    plan = rabbitmq_backend.plan(topology)
    assert [s.kind for s in plan.steps] == [StepKind.CREATE_EXCHANGE, StepKind.CREATE_QUEUE, StepKind.BIND]

    # someone declares the queue differently between plan and apply
    rabbitmq_backend.http.declare_queue(vh, "jobs", arguments={"x-max-length": 5})
    report = rabbitmq_backend.apply(plan)

    assert not report.ok
    assert report.applied == plan.steps[:1]
    assert report.failed == plan.steps[1]
    assert "inequivalent arg 'x-max-length'" in report.error
    assert report.not_applied == plan.steps[2:]
    assert report.skipped == [] and not report.cancelled
    assert rabbitmq_backend.http.bindings_between(vh, "orders", "jobs") == []
    assert rabbitmq_backend.http.queue(vh, "jobs")["arguments"] == {"x-max-length": 5}


def test_apply_refuses_steps_of_another_vhost(rabbitmq_backend: RabbitMQBackend) -> None:
    topology = Topology()
    topology.add_node(Queue("elsewhere", vhost="other"))
    from mqstudio.core.plan import plan as make_plan

    report = rabbitmq_backend.apply(make_plan(topology, Topology()))
    assert report.failed is not None and "vhost 'other'" in report.error
    assert rabbitmq_backend.http.queues(rabbitmq_backend.vhost) == []


def test_missing_queue_on_amqp_is_not_found(rabbitmq_backend: RabbitMQBackend) -> None:
    with pytest.raises(NotFoundError, match="no queue 'ghost'"):
        rabbitmq_backend.consume_for_replay("ghost", 5)


# -- a real network fault ---------------------------------------------------------------------------
def through_proxy(service: RabbitMQService, vhost: str, proxy: Proxy) -> RabbitMQBackend:
    backend = service.backend(vhost, port=proxy.port, heartbeat=0)
    backend.connect()
    return backend


def fill(backend: RabbitMQBackend, queue: str, count: int, size: int = 1) -> None:
    backend.http.declare_queue(backend.vhost, queue)
    for i in range(count):
        body = str(i).encode().ljust(size, b".")
        assert backend.publish(OutgoingMessage("", body, key=queue)).routed


def bodies_in(backend: RabbitMQBackend, queue: str) -> list[bytes]:
    return [m.body for m in backend.peek(queue, 200)]


def test_link_lost_before_settle_raises_unreachable_and_loses_nothing(
    rabbitmq_service: RabbitMQService, rabbitmq_backend: RabbitMQBackend
) -> None:
    fill(rabbitmq_backend, "dlq", 3)
    proxy = Proxy((rabbitmq_service.host, rabbitmq_service.port))
    replayer = through_proxy(rabbitmq_service, rabbitmq_backend.vhost, proxy)
    try:
        taken = replayer.consume_for_replay("dlq", 10)
        assert len(taken) == 3
        proxy.kill()
        with pytest.raises(UnreachableError, match=f"127.0.0.1:{proxy.port}"):
            replayer.settle(taken[0], ack=True)
        with pytest.raises(UnreachableError, match="put the message back in queue 'dlq'"):
            replayer.settle(taken[1], ack=True)  # never acks on a newer connection
    finally:
        replayer.close()
    eventually(lambda: sorted(bodies_in(rabbitmq_backend, "dlq")) == [b"0", b"1", b"2"], "all 3 back")


def test_link_lost_during_consume_for_replay_raises_unreachable_and_loses_nothing(
    rabbitmq_service: RabbitMQService, rabbitmq_backend: RabbitMQBackend
) -> None:
    count, size = 150, 4096
    fill(rabbitmq_backend, "dlq", count, size)
    proxy = Proxy((rabbitmq_service.host, rabbitmq_service.port))
    replayer = through_proxy(rabbitmq_service, rabbitmq_backend.vhost, proxy)
    try:
        proxy.kill_after_down = proxy.down + count * size // 3  # a third of the way through
        with pytest.raises(UnreachableError, match="cannot reach RabbitMQ"):
            replayer.consume_for_replay("dlq", count)
        assert proxy.killed.is_set()
    finally:
        replayer.close()
    expected = sorted(str(i).encode().ljust(size, b".") for i in range(count))

    def all_back() -> bool:
        return sorted(bodies_in(rabbitmq_backend, "dlq")) == expected

    eventually(all_back, f"all {count} messages back in the queue")


def test_connection_closed_by_the_broker_is_reopened_and_old_replay_handles_refused(
    rabbitmq_admin: ManagementClient, rabbitmq_backend: RabbitMQBackend
) -> None:
    fill(rabbitmq_backend, "dlq", 2)
    taken = rabbitmq_backend.consume_for_replay("dlq", 1)
    (ours,) = eventually(
        lambda: rabbitmq_admin.connections(rabbitmq_backend.vhost), "the connection is listed"
    )
    rabbitmq_admin.close_connection(ours["name"], "test: an operator closed it")

    with pytest.raises(UnreachableError, match="put the message back in queue 'dlq'"):
        rabbitmq_backend.settle(taken[0], ack=True)
    # the backend reconnected by itself: both messages are there, nothing was acked
    assert sorted(bodies_in(rabbitmq_backend, "dlq")) == [b"0", b"1"]


def test_link_lost_during_tail_ends_it_with_unreachable(
    rabbitmq_service: RabbitMQService, rabbitmq_backend: RabbitMQBackend
) -> None:
    rabbitmq_backend.http.declare_exchange(rabbitmq_backend.vhost, "events", "fanout")
    rabbitmq_backend.http.declare_queue(rabbitmq_backend.vhost, "sink")
    rabbitmq_backend.http.bind(rabbitmq_backend.vhost, "events", "sink")
    proxy = Proxy((rabbitmq_service.host, rabbitmq_service.port))
    tailer = through_proxy(rabbitmq_service, rabbitmq_backend.vhost, proxy)
    errors: list[BaseException] = []

    class Never:
        cancelled = False

    def run() -> None:
        try:
            tailer.tail("events", lambda m: None, Never())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    try:
        thread.start()
        eventually(
            lambda: any(
                b["destination"].startswith("amq.gen-")
                for b in rabbitmq_backend.http.bindings(rabbitmq_backend.vhost)
            ),
            "the tail queue is bound",
        )
        proxy.kill()
        thread.join(timeout=30)
    finally:
        tailer.close()
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], UnreachableError), errors
