"""A small, blocking client for the RabbitMQ management HTTP API (and the optional Prometheus endpoint).

Owns: `ManagementClient` (overview, vhosts, users/permissions, connections, definitions, exchanges,
queues, bindings, declare/delete/bind/unbind/purge), the mapping of HTTP failures to `BackendError`s,
and the three things `RabbitMQBackend` does over HTTP only: `run_step` (one plan step),
`definitions_from_lists` and `snapshot` (statistics). This is the only module that imports httpx (see
ARCHITECTURE.md); it imports `mqstudio.backends.base` and `mqstudio.core`, never pika or Qt.

RabbitMQ specifics worth knowing:

* Every vhost in a path is URL-encoded, so the default vhost ``/`` is ``%2F`` (`quote(..., safe="")`).
* The management API answers 401 both for a failed login (``"Login failed"``) and for an
  authenticated user that may not do something (``"User not authorised to access virtual host"``,
  ``"Not administrator user"``, ``"Not management user"``): the reason text tells them apart.
* ``GET /api/definitions/{vhost}`` needs the *administrator* tag; the list endpoints need only
  vhost access, so callers fall back to them (see `RabbitMQBackend.fetch_topology`).
* A binding is deleted by its ``properties_key`` (a digest of routing key and arguments, computed by
  the server), so `unbind` reads the bindings between the two ends and deletes the one that matches.
* Queues declared over HTTP are never exclusive: an exclusive queue belongs to an AMQP connection.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from mqstudio.backends.base import (
    AuthenticationError,
    BackendError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
    UnsupportedError,
)
from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.core.model import Exchange, Queue
from mqstudio.core.plan import BindingRef, Step, StepKind

MANAGEMENT_HINT = "is the management plugin enabled? rabbitmq-plugins enable rabbitmq_management"
PROMETHEUS_HINT = "rabbitmq-plugins enable rabbitmq_prometheus"
DEFAULT_TIMEOUT = 10.0


def quote_part(value: str) -> str:
    """One path segment: vhost ``/`` → ``%2F``; names may contain any character."""
    return quote(value, safe="")


def _reason(response: httpx.Response) -> str:
    """RabbitMQ's own words: ``{"error": ..., "reason": ...}``, else the body's start."""
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        reason = body.get("reason") or body.get("error")
        if reason:
            return str(reason)
    return response.text.strip()[:300] or response.reason_phrase


class ManagementClient:
    """Blocking management API client for one user; thread-safe as httpx.Client is.

    The password is held only by httpx's auth object and never appears in `description`, `repr` or
    any error text.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 15672,
        *,
        username: str = "guest",
        password: str = "guest",
        scheme: str = "http",
        base_path: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | ssl.SSLContext = True,
        prometheus_port: int | None = 15692,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.scheme = scheme
        self.prometheus_port = prometheus_port
        self.base_url = f"{scheme}://{host}:{port}{base_path.rstrip('/')}"
        self._timeout = timeout
        self._verify = verify
        self._transport = transport
        self._auth = httpx.BasicAuth(username, password)
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        """The httpx client, opened on first use and again after `close` (close → connect works)."""
        if self._client is None or self._client.is_closed:
            self._client = httpx.Client(
                base_url=self.base_url,
                auth=self._auth,
                timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 5.0)),
                verify=self._verify,
                transport=self._transport,
                headers={"content-type": "application/json"},
            )
        return self._client

    def __repr__(self) -> str:
        return f"ManagementClient({self.username}@{self.base_url})"

    @property
    def description(self) -> str:
        return f"{self.username}@{self.base_url}"

    def close(self) -> None:
        """Close the connection pool; the next request opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str = "",
    ) -> Any:
        """Send one request; return the decoded JSON body (None when empty); map failures.

        `what` names the object for error messages, e.g. ``queue 'orders' in vhost '/'``.
        """
        content = None if body is None else json.dumps(body)
        try:
            response = self._http().request(method, path, content=content, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise UnreachableError(
                f"RabbitMQ management API at {self.base_url} did not answer in time ({type(exc).__name__})",
                MANAGEMENT_HINT,
            ) from None
        except httpx.TransportError as exc:
            raise UnreachableError(
                f"cannot reach the RabbitMQ management API at {self.base_url}: {exc or type(exc).__name__}",
                MANAGEMENT_HINT,
            ) from None
        if response.is_success:
            if not response.content:
                return None
            try:
                return response.json()
            except (json.JSONDecodeError, ValueError):
                return response.text
        raise self._error(response, method, what or path)

    def _error(self, response: httpx.Response, method: str, what: str) -> BackendError:
        status, reason = response.status_code, _reason(response)
        if status == 401:
            lowered = reason.lower()
            if "login failed" in lowered or not lowered or lowered == "unauthorized":
                return AuthenticationError(
                    f"RabbitMQ refused the login of user {self.username!r} at {self.base_url}: {reason}",
                    "check the user name and password",
                )
            return PermissionDeniedError(
                f"user {self.username!r} may not {method} {what}: {reason}",
                "grant the user access to the vhost (rabbitmqctl set_permissions) or the needed tag "
                "(management, policymaker, administrator)",
            )
        if status == 403:
            return PermissionDeniedError(
                f"user {self.username!r} may not {method} {what}: {reason}",
                "check the user's permissions on the vhost",
            )
        if status == 404:
            return NotFoundError(f"{what} does not exist: {reason}")
        if status in (400, 409):
            return ConflictError(f"RabbitMQ refused to {method} {what}: {reason}")
        if status == 405:
            return UnsupportedError(f"RabbitMQ does not allow {method} {what}: {reason}")
        return BackendError(f"RabbitMQ management API answered {status} to {method} {what}: {reason}")

    def get(self, path: str, what: str = "", params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, what=what, params=params)

    # -- broker -------------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        data = self.get("/api/overview", "the overview")
        return data if isinstance(data, dict) else {}

    def server_version(self) -> str:
        data = self.overview()
        return str(data.get("rabbitmq_version") or data.get("product_version") or "")

    def cluster_name(self) -> str:
        return str(self.overview().get("cluster_name") or "")

    def exchange_types(self) -> list[str]:
        types = self.overview().get("exchange_types")
        return [str(t["name"]) for t in types or () if isinstance(t, dict) and "name" in t]

    def whoami(self) -> dict[str, Any]:
        data = self.get("/api/whoami", "whoami")
        return data if isinstance(data, dict) else {}

    # -- vhosts, users, permissions ------------------------------------------------------------
    def vhosts(self) -> list[dict[str, Any]]:
        return _list(self.get("/api/vhosts", "the vhost list"))

    def vhost_names(self) -> list[str]:
        return [str(v["name"]) for v in self.vhosts() if "name" in v]

    def vhost(self, vhost: str) -> dict[str, Any]:
        data = self.get(f"/api/vhosts/{quote_part(vhost)}", f"vhost {vhost!r}")
        return data if isinstance(data, dict) else {}

    def default_queue_type(self, vhost: str) -> str | None:
        """The vhost's ``default_queue_type`` (top level in 3.11+, ``metadata`` in some versions);
        None when unset (3.10 reports ``"undefined"``) or not readable by this user."""
        try:
            info = self.vhost(vhost)
        except (PermissionDeniedError, NotFoundError):
            return None
        metadata = info.get("metadata")
        value = info.get("default_queue_type")
        if (not isinstance(value, str) or value == "undefined") and isinstance(metadata, dict):
            value = metadata.get("default_queue_type")
        return value if isinstance(value, str) and value in ("classic", "quorum", "stream") else None

    def create_vhost(
        self, vhost: str, *, default_queue_type: str | None = None, description: str = ""
    ) -> None:
        body: dict[str, Any] = {"description": description}
        if default_queue_type:
            # 3.10 reads "defaultqueuetype"; later versions also "default_queue_type".
            body["defaultqueuetype"] = body["default_queue_type"] = default_queue_type
        self.request("PUT", f"/api/vhosts/{quote_part(vhost)}", body=body, what=f"vhost {vhost!r}")

    def delete_vhost(self, vhost: str) -> None:
        self.request("DELETE", f"/api/vhosts/{quote_part(vhost)}", what=f"vhost {vhost!r}")

    def create_user(self, username: str, password: str, tags: str = "") -> None:
        self.request(
            "PUT",
            f"/api/users/{quote_part(username)}",
            body={"password": password, "tags": tags},
            what=f"user {username!r}",
        )

    def delete_user(self, username: str) -> None:
        self.request("DELETE", f"/api/users/{quote_part(username)}", what=f"user {username!r}")

    def set_permissions(
        self, vhost: str, username: str, configure: str = ".*", write: str = ".*", read: str = ".*"
    ) -> None:
        self.request(
            "PUT",
            f"/api/permissions/{quote_part(vhost)}/{quote_part(username)}",
            body={"configure": configure, "write": write, "read": read},
            what=f"permissions of {username!r} on vhost {vhost!r}",
        )

    def connections(self, vhost: str) -> list[dict[str, Any]]:
        """The AMQP connections to `vhost` (``name``, ``user``, ``client_properties`` …)."""
        path = f"/api/vhosts/{quote_part(vhost)}/connections"
        return _list(self.get(path, f"the connections of vhost {vhost!r}"))

    def close_connection(self, name: str, reason: str = "closed from mqstudio") -> None:
        """Close an AMQP connection by name; RabbitMQ tells its client `reason`."""
        self.request(
            "DELETE",
            f"/api/connections/{quote_part(name)}",
            headers={"X-Reason": reason},
            what=f"connection {name!r}",
        )

    # -- definitions and lists ------------------------------------------------------------------
    def definitions(self, vhost: str) -> dict[str, Any]:
        """The per-vhost definitions (objects carry no ``vhost``); needs the administrator tag."""
        data = self.get(f"/api/definitions/{quote_part(vhost)}", f"the definitions of vhost {vhost!r}")
        return data if isinstance(data, dict) else {}

    def exchanges(self, vhost: str) -> list[dict[str, Any]]:
        return _list(self.get(f"/api/exchanges/{quote_part(vhost)}", f"the exchanges of vhost {vhost!r}"))

    def queues(self, vhost: str) -> list[dict[str, Any]]:
        """Queues with ``messages_ready``, ``messages_unacknowledged``, ``consumers`` and
        ``message_stats`` (counters ``publish``, ``deliver_get``, ``ack``, ``redeliver`` with
        ``*_details.rate``) — counters appear only once the queue has seen traffic."""
        return _list(self.get(f"/api/queues/{quote_part(vhost)}", f"the queues of vhost {vhost!r}"))

    def bindings(self, vhost: str) -> list[dict[str, Any]]:
        return _list(self.get(f"/api/bindings/{quote_part(vhost)}", f"the bindings of vhost {vhost!r}"))

    def policies(self, vhost: str) -> list[dict[str, Any]]:
        return _list(self.get(f"/api/policies/{quote_part(vhost)}", f"the policies of vhost {vhost!r}"))

    def exchange(self, vhost: str, name: str) -> dict[str, Any]:
        data = self.get(_obj("exchanges", vhost, name), _exchange(vhost, name))
        return data if isinstance(data, dict) else {}

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        data = self.get(_obj("queues", vhost, name), _queue(vhost, name))
        return data if isinstance(data, dict) else {}

    def exchange_source_bindings(self, vhost: str, name: str) -> list[dict[str, Any]]:
        path = _obj("exchanges", vhost, name) + "/bindings/source"
        return _list(self.get(path, f"the bindings from {_exchange(vhost, name)}"))

    def queue_bindings(self, vhost: str, name: str) -> list[dict[str, Any]]:
        path = _obj("queues", vhost, name) + "/bindings"
        return _list(self.get(path, f"the bindings of {_queue(vhost, name)}"))

    # -- writes -------------------------------------------------------------------------------
    def declare_exchange(
        self,
        vhost: str,
        name: str,
        type: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        body = {
            "type": type,
            "durable": durable,
            "auto_delete": auto_delete,
            "internal": internal,
            "arguments": dict(arguments or {}),
        }
        self.request("PUT", _obj("exchanges", vhost, name), body=body, what=_exchange(vhost, name))

    def delete_exchange(self, vhost: str, name: str, *, if_unused: bool = False) -> None:
        params = {"if-unused": "true"} if if_unused else None
        self.request("DELETE", _obj("exchanges", vhost, name), params=params, what=_exchange(vhost, name))

    def declare_queue(
        self,
        vhost: str,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        body = {"durable": durable, "auto_delete": auto_delete, "arguments": dict(arguments or {})}
        self.request("PUT", _obj("queues", vhost, name), body=body, what=_queue(vhost, name))

    def delete_queue(self, vhost: str, name: str, *, if_empty: bool = False, if_unused: bool = False) -> None:
        params = {k: "true" for k, on in (("if-empty", if_empty), ("if-unused", if_unused)) if on}
        self.request("DELETE", _obj("queues", vhost, name), params=params or None, what=_queue(vhost, name))

    def purge_queue(self, vhost: str, name: str) -> None:
        """Empty the queue (the API does not say how many messages went; AMQP's queue.purge does)."""
        self.request("DELETE", _obj("queues", vhost, name) + "/contents", what=_queue(vhost, name))

    def bind(
        self,
        vhost: str,
        source: str,
        destination: str,
        *,
        destination_type: str = "queue",
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        path = _binding_path(vhost, source, destination, destination_type)
        body = {"routing_key": routing_key, "arguments": dict(arguments or {})}
        what = _binding(vhost, source, destination, destination_type, routing_key)
        self.request("POST", path, body=body, what=what)

    def bindings_between(
        self, vhost: str, source: str, destination: str, *, destination_type: str = "queue"
    ) -> list[dict[str, Any]]:
        path = _binding_path(vhost, source, destination, destination_type)
        what = f"the bindings from exchange {source!r} to {destination_type} {destination!r}"
        return _list(self.get(path, what))

    def unbind(
        self,
        vhost: str,
        source: str,
        destination: str,
        *,
        destination_type: str = "queue",
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete the binding with this key and arguments (by the server's ``properties_key``)."""
        wanted = dict(arguments or {})
        what = _binding(vhost, source, destination, destination_type, routing_key)
        for entry in self.bindings_between(vhost, source, destination, destination_type=destination_type):
            if entry.get("routing_key", "") == routing_key and (entry.get("arguments") or {}) == wanted:
                props = str(entry.get("properties_key", ""))
                path = _binding_path(vhost, source, destination, destination_type) + "/" + quote_part(props)
                self.request("DELETE", path, what=what)
                return
        raise NotFoundError(f"{what} does not exist")

    # -- Prometheus (optional) ------------------------------------------------------------------
    def prometheus_metrics(self, detailed_query: str = "") -> str | None:
        """``/metrics/detailed`` of the rabbitmq_prometheus plugin, or None when it does not answer
        (the plugin is optional; mqstudio's statistics come from the management API)."""
        if self.prometheus_port is None:
            return None
        url = f"{self.scheme}://{self.host}:{self.prometheus_port}/metrics/detailed{detailed_query}"
        try:
            response = (
                httpx.get(url, timeout=min(self._timeout, 3.0), verify=self._verify)
                if self._transport is None
                else self._http().get(url)
            )
        except httpx.HTTPError:
            return None
        return response.text if response.is_success else None


# -- helpers ----------------------------------------------------------------------------------------


def _list(data: Any) -> list[dict[str, Any]]:
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _obj(kind: str, vhost: str, name: str) -> str:
    return f"/api/{kind}/{quote_part(vhost)}/{quote_part(name)}"


def _binding_path(vhost: str, source: str, destination: str, destination_type: str) -> str:
    letter = "q" if destination_type == "queue" else "e"
    return f"/api/bindings/{quote_part(vhost)}/e/{quote_part(source)}/{letter}/{quote_part(destination)}"


def _exchange(vhost: str, name: str) -> str:
    return f"exchange {name!r} in vhost {vhost!r}"


def _queue(vhost: str, name: str) -> str:
    return f"queue {name!r} in vhost {vhost!r}"


def _binding(vhost: str, source: str, destination: str, destination_type: str, key: str) -> str:
    shown = f" with routing key {key!r}" if key else ""
    return f"binding from exchange {source!r} to {destination_type} {destination!r}{shown} in vhost {vhost!r}"


# -- mqstudio objects over the API --------------------------------------------------------------------


def definitions_from_lists(client: ManagementClient, vhost: str) -> dict[str, Any]:
    """Per-vhost definitions assembled from the list endpoints, for users without the administrator
    tag (``GET /api/definitions`` needs it). Exclusive queues are left out, as RabbitMQ's export does;
    policies only when this user may read them."""
    exchanges = [
        {k: e.get(k) for k in ("name", "type", "durable", "auto_delete", "internal", "arguments")}
        for e in client.exchanges(vhost)
        if e.get("name") and not str(e.get("name")).startswith("amq.")
    ]
    queues = [
        {k: q.get(k) for k in ("name", "durable", "auto_delete", "arguments")}
        for q in client.queues(vhost)
        if not q.get("exclusive") and q.get("owner_pid_details") is None
    ]
    names = {q["name"] for q in queues}
    bindings = [
        {k: b.get(k) for k in ("source", "destination", "destination_type", "routing_key", "arguments")}
        for b in client.bindings(vhost)
        if b.get("source") and (b.get("destination_type") != "queue" or b.get("destination") in names)
    ]
    data: dict[str, Any] = {"exchanges": exchanges, "queues": queues, "bindings": bindings}
    with contextlib.suppress(PermissionDeniedError):
        data["policies"] = [
            {k: p.get(k) for k in ("name", "pattern", "apply-to", "definition", "priority")}
            for p in client.policies(vhost)
        ]
    return data


def run_step(client: ManagementClient, vhost: str, step: Step) -> None:
    """Carry out one plan step in `vhost` (create/recreate/delete exchanges and queues, bind, unbind).

    A delete or unbind whose object is already gone counts as done; a recreate that deleted but
    could not declare again says so in its error."""
    obj, http = step.obj, client
    where = getattr(obj, "vhost", None)
    if where is None:
        raise UnsupportedError(f"RabbitMQ has no {step.kind.value.replace('_', ' ')} (a Kafka step)")
    if where != vhost:
        raise ConflictError(
            f"the step is for vhost {where!r}, but this connection is to vhost {vhost!r}",
            "connect to that vhost to apply it",
        )
    kind = step.kind
    if kind in (StepKind.CREATE_EXCHANGE, StepKind.RECREATE_EXCHANGE) and isinstance(obj, Exchange):
        if kind is StepKind.RECREATE_EXCHANGE:
            _gone_ok(lambda: http.delete_exchange(vhost, obj.name))
        _declared_again(
            kind,
            lambda: http.declare_exchange(
                vhost,
                obj.name,
                str(obj.type),
                durable=obj.durable,
                auto_delete=obj.auto_delete,
                internal=obj.internal,
                arguments=obj.arguments,
            ),
        )
    elif kind in (StepKind.CREATE_QUEUE, StepKind.RECREATE_QUEUE) and isinstance(obj, Queue):
        if obj.exclusive:
            raise UnsupportedError(
                f"queue {obj.name!r} is exclusive: such a queue belongs to the AMQP connection that "
                "declares it and goes with it",
                "declare it from the application, or make it non-exclusive in the design",
            )
        if kind is StepKind.RECREATE_QUEUE:
            _gone_ok(lambda: http.delete_queue(vhost, obj.name))
        _declared_again(
            kind,
            lambda: http.declare_queue(
                vhost, obj.name, durable=obj.durable, auto_delete=obj.auto_delete, arguments=obj.arguments
            ),
        )
    elif kind is StepKind.BIND and isinstance(obj, BindingRef):
        http.bind(
            vhost,
            obj.source,
            obj.destination,
            destination_type=obj.destination_type.value,
            routing_key=obj.routing_key,
            arguments=obj.arguments,
        )
    elif kind is StepKind.UNBIND and isinstance(obj, BindingRef):
        _gone_ok(
            lambda: http.unbind(
                vhost,
                obj.source,
                obj.destination,
                destination_type=obj.destination_type.value,
                routing_key=obj.routing_key,
                arguments=obj.arguments,
            )
        )
    elif kind is StepKind.DELETE_QUEUE and isinstance(obj, Queue):
        _gone_ok(lambda: http.delete_queue(vhost, obj.name))
    elif kind is StepKind.DELETE_EXCHANGE and isinstance(obj, Exchange):
        _gone_ok(lambda: http.delete_exchange(vhost, obj.name))
    else:
        raise UnsupportedError(f"RabbitMQ cannot {step.describe()}")


def _gone_ok(call: Callable[[], None]) -> None:
    with contextlib.suppress(NotFoundError):
        call()


def _declared_again(kind: StepKind, call: Callable[[], None]) -> None:
    try:
        call()
    except BackendError as exc:
        if kind in (StepKind.RECREATE_EXCHANGE, StepKind.RECREATE_QUEUE):
            exc.message = f"deleted, but declaring it again failed: {exc.message}"
            exc.args = (exc.message,)
        raise


def snapshot(client: ManagementClient, vhost: str) -> Snapshot:
    """Queue and exchange statistics of `vhost` (`mqstudio.core.metrics` names): queue counters from
    ``message_stats`` (publish, deliver_get, ack, redeliver; cumulative, 0 until the queue has seen
    traffic) and gauges ready/unacked/consumers; exchange counters publish_in/publish_out as
    published/routed."""
    objects: list[ObjectStats] = []
    for q in client.queues(vhost):
        ms = q.get("message_stats") or {}
        objects.append(
            ObjectStats(
                kind="queue",
                name=str(q.get("name", "")),
                vhost=vhost,
                counters={
                    "published": _int(ms.get("publish")),
                    "delivered": _int(ms.get("deliver_get")),
                    "acked": _int(ms.get("ack")),
                    "redelivered": _int(ms.get("redeliver")),
                },
                gauges={
                    "ready": float(q.get("messages_ready") or 0),
                    "unacked": float(q.get("messages_unacknowledged") or 0),
                    "consumers": float(q.get("consumers") or 0),
                },
            )
        )
    for e in client.exchanges(vhost):
        ms = e.get("message_stats") or {}
        objects.append(
            ObjectStats(
                kind="exchange",
                name=str(e.get("name", "")),
                vhost=vhost,
                counters={"published": _int(ms.get("publish_in")), "routed": _int(ms.get("publish_out"))},
            )
        )
    return Snapshot(timestamp=time.time(), objects=tuple(objects))


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
