"""The management API client: paths and error mapping (mock transport), then against a real RabbitMQ."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from mqstudio.backends.base import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
)
from mqstudio.backends.rabbitmq_http import MANAGEMENT_HINT, ManagementClient, quote_part

Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(handler: Handler) -> ManagementClient:
    return ManagementClient(
        "broker.example", 15672, username="alice", password="s3cret", transport=httpx.MockTransport(handler)
    )


def answer(status: int, error: str, reason: str) -> Handler:
    return lambda request: httpx.Response(status, json={"error": error, "reason": reason})


# -- paths ------------------------------------------------------------------------------------------
def test_default_vhost_is_encoded_as_percent_2f() -> None:
    assert quote_part("/") == "%2F"
    assert quote_part("a b/c") == "a%20b%2Fc"


def test_requests_use_the_encoded_vhost_and_name() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json=[])

    client = mock_client(handler)
    client.queues("/")
    client.exchange_source_bindings("/", "orders/eu")
    assert seen == ["/api/queues/%2F", "/api/exchanges/%2F/orders%2Feu/bindings/source"]


def test_declare_queue_puts_durability_and_arguments() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(201)

    mock_client(handler).declare_queue("v", "q", durable=True, arguments={"x-max-length": 5})
    (request,) = requests
    assert request.method == "PUT"
    assert request.url.raw_path == b"/api/queues/v/q"
    assert json.loads(request.content) == {
        "durable": True,
        "auto_delete": False,
        "arguments": {"x-max-length": 5},
    }


def test_unbind_deletes_the_binding_by_its_properties_key() -> None:
    requests: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append((request.method, request.url.raw_path.decode()))
        if request.method == "GET":
            return httpx.Response(
                200,
                json=[
                    {"routing_key": "a", "arguments": {}, "properties_key": "a"},
                    {"routing_key": "a", "arguments": {"x": 1}, "properties_key": "a~xyz"},
                ],
            )
        return httpx.Response(204)

    mock_client(handler).unbind("/", "ex", "q", routing_key="a", arguments={"x": 1})
    assert requests[-1] == ("DELETE", "/api/bindings/%2F/e/ex/q/q/a~xyz")


def test_unbind_of_a_missing_binding_is_not_found() -> None:
    client = mock_client(lambda request: httpx.Response(200, json=[]))
    with pytest.raises(NotFoundError, match="binding from exchange 'ex' to queue 'q'"):
        client.unbind("/", "ex", "q", routing_key="k")


def test_description_and_repr_never_show_the_password() -> None:
    client = mock_client(lambda request: httpx.Response(200, json={}))
    assert "s3cret" not in client.description
    assert "s3cret" not in repr(client)
    assert "alice@http://broker.example:15672" in client.description


# -- error mapping ----------------------------------------------------------------------------------
def test_login_failure_is_an_authentication_error() -> None:
    client = mock_client(answer(401, "not_authorized", "Login failed"))
    with pytest.raises(AuthenticationError, match="refused the login of user 'alice'") as info:
        client.overview()
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "reason", ["User not authorised to access virtual host", "Not administrator user", "Not management user"]
)
def test_authenticated_but_not_allowed_is_permission_denied(reason: str) -> None:
    client = mock_client(answer(401, "not_authorised", reason))
    with pytest.raises(PermissionDeniedError, match="user 'alice' may not GET") as info:
        client.definitions("prod")
    assert reason in str(info.value)


def test_403_is_permission_denied() -> None:
    with pytest.raises(PermissionDeniedError):
        mock_client(answer(403, "access_refused", "nope")).queues("/")


def test_404_is_not_found_naming_the_object() -> None:
    with pytest.raises(NotFoundError, match="queue 'q' in vhost '/' does not exist"):
        mock_client(answer(404, "Object Not Found", "Not Found")).queue("/", "q")


@pytest.mark.parametrize("status", [400, 409])
def test_bad_request_and_conflict_carry_rabbitmqs_reason(status: int) -> None:
    reason = "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '6' but current is '5'"
    with pytest.raises(ConflictError, match="inequivalent arg 'x-max-length'"):
        mock_client(answer(status, "bad_request", reason)).declare_queue("/", "q")


def test_connect_error_is_unreachable_with_the_management_plugin_hint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(UnreachableError, match="cannot reach the RabbitMQ management API") as info:
        mock_client(handler).overview()
    assert info.value.hint == MANAGEMENT_HINT


def test_timeout_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(UnreachableError, match="did not answer in time"):
        mock_client(handler).overview()


# -- a real RabbitMQ --------------------------------------------------------------------------------
def test_overview_reports_version_cluster_and_exchange_types(rabbitmq_admin: ManagementClient) -> None:
    assert rabbitmq_admin.server_version()
    assert rabbitmq_admin.cluster_name()
    assert {"direct", "fanout", "topic", "headers"} <= set(rabbitmq_admin.exchange_types())


def test_vhost_list_includes_the_test_vhost(rabbitmq_admin: ManagementClient, rabbitmq_vhost: str) -> None:
    assert rabbitmq_vhost in rabbitmq_admin.vhost_names()


def test_declare_bind_list_unbind_and_delete(rabbitmq_admin: ManagementClient, rabbitmq_vhost: str) -> None:
    api, vh = rabbitmq_admin, rabbitmq_vhost
    api.declare_exchange(vh, "orders", "topic", arguments={"alternate-exchange": "unrouted"})
    api.declare_queue(vh, "audit", arguments={"x-max-length": 10})
    api.bind(vh, "orders", "audit", routing_key="order.#", arguments={"k": "v"})

    assert api.exchange(vh, "orders")["arguments"] == {"alternate-exchange": "unrouted"}
    assert {q["name"] for q in api.queues(vh)} == {"audit"}
    ours = [b for b in api.bindings(vh) if b["source"] == "orders"]
    assert [(b["destination"], b["routing_key"], b["arguments"]) for b in ours] == [
        ("audit", "order.#", {"k": "v"})
    ]
    definitions = api.definitions(vh)
    assert [q["name"] for q in definitions["queues"]] == ["audit"]

    api.unbind(vh, "orders", "audit", routing_key="order.#", arguments={"k": "v"})
    assert not [b for b in api.bindings(vh) if b["source"] == "orders"]
    api.delete_queue(vh, "audit")
    api.delete_exchange(vh, "orders")
    assert api.queues(vh) == []
    with pytest.raises(NotFoundError):
        api.exchange(vh, "orders")


def test_redeclaring_a_queue_with_other_arguments_is_a_conflict(
    rabbitmq_admin: ManagementClient, rabbitmq_vhost: str
) -> None:
    rabbitmq_admin.declare_queue(rabbitmq_vhost, "q", arguments={"x-max-length": 5})
    with pytest.raises(ConflictError, match="inequivalent arg 'x-max-length'"):
        rabbitmq_admin.declare_queue(rabbitmq_vhost, "q", arguments={"x-max-length": 6})
    assert rabbitmq_admin.queue(rabbitmq_vhost, "q")["arguments"] == {"x-max-length": 5}


def test_unknown_exchange_type_is_a_conflict_with_the_reason(
    rabbitmq_admin: ManagementClient, rabbitmq_vhost: str
) -> None:
    with pytest.raises(ConflictError, match="unknown exchange type 'x-nope'"):
        rabbitmq_admin.declare_exchange(rabbitmq_vhost, "e", "x-nope")


def test_missing_vhost_is_not_found(rabbitmq_admin: ManagementClient) -> None:
    with pytest.raises(NotFoundError, match="vhost 'mqs-test-no-such-vhost'"):
        rabbitmq_admin.vhost("mqs-test-no-such-vhost")


def test_default_queue_type_of_a_vhost(rabbitmq_admin: ManagementClient, rabbitmq_vhost: str) -> None:
    assert rabbitmq_admin.default_queue_type(rabbitmq_vhost) is None
    quorum_vhost = rabbitmq_vhost + "-quorum"
    rabbitmq_admin.create_vhost(quorum_vhost, default_queue_type="quorum")
    try:
        assert rabbitmq_admin.default_queue_type(quorum_vhost) == "quorum"
    finally:
        rabbitmq_admin.delete_vhost(quorum_vhost)


def test_prometheus_is_optional(rabbitmq_admin: ManagementClient) -> None:
    client = ManagementClient(
        rabbitmq_admin.host, rabbitmq_admin.port, prometheus_port=1, username="guest", password="guest"
    )
    with client:
        assert client.prometheus_metrics() is None
