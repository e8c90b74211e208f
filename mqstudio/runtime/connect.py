"""The one place a connection profile becomes a backend: `open_backend(profile, password)`.

Owns: `open_backend` (profile → EmbeddedBackend / RabbitMQBackend / KafkaBackend, each imported lazily so
that pika, httpx and kafka load only when that broker is used), `probe` (connect, describe, close: the
Test Connection button), `list_vhosts`, `node_kinds` (what a backend can hold, for greying out the
palette), `design_for` (a design as planned against one vhost) and `apply_plan` (apply with the
user's approval of destructive steps), shared by the command line's
``fetch/plan/apply`` and the UI's Broker menu.

Callers: the command line (`mqstudio fetch/plan/apply`) and the UI (through `JobRunner` workers and
`BackendSession`s). Every function here blocks on the network: never call one on the GUI thread.
Qt-free; must not import `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.
"""

from __future__ import annotations

import contextlib
import copy as copy_module
import functools
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mqstudio.backends.base import (
    ApplyReport,
    Backend,
    BackendError,
    BackendKind,
    CancelledError,
    CancelToken,
    Capabilities,
    Progress,
)
from mqstudio.core.model import Exchange, Queue, Topology
from mqstudio.core.plan import Plan, Step
from mqstudio.runtime.profiles import ConnectionProfile

if TYPE_CHECKING:
    from mqstudio.runtime.brokerthread import EmbeddedBrokerThread

TIMEOUT = 10.0
BackendFactory = Callable[[ConnectionProfile, str | None], Backend]

_KIND_NAMES = {BackendKind.EMBEDDED: "the embedded broker", BackendKind.RABBITMQ: "RabbitMQ",
               BackendKind.KAFKA: "Kafka"}


def open_backend(
    profile: ConnectionProfile,
    password: str | None,
    broker_thread: EmbeddedBrokerThread | None = None,
) -> Backend:
    """A backend for `profile`, not yet connected (call ``connect()`` on the thread that will use it).

    `broker_thread` is the app's running embedded broker; without one an embedded profile gets a
    private in-memory broker (the command line's ``embedded://``).
    """
    if profile.kind is BackendKind.EMBEDDED:
        return _embedded(profile, broker_thread)
    if profile.kind is BackendKind.RABBITMQ:
        return _rabbitmq(profile, password)
    return _kafka(profile, password)


def _rabbitmq(profile: ConnectionProfile, password: str | None) -> Backend:
    from mqstudio.backends.rabbitmq import RabbitMQBackend
    from mqstudio.backends.rabbitmq_http import ManagementClient

    user = profile.user or "guest"
    secret = password if password is not None else ""
    context = ssl_context(profile) if profile.tls else None
    management = urlsplit(profile.effective_management_url)
    https = management.scheme == "https"
    verify: Any = ssl_context(profile) if https else True
    http = ManagementClient(
        management.hostname or profile.host,
        management.port or (443 if https else 80),
        username=user,
        password=secret,
        scheme=management.scheme or "http",
        base_path=management.path,
        verify=verify,
        timeout=TIMEOUT,
    )
    return RabbitMQBackend(
        profile.host,
        profile.effective_port,
        username=user,
        password=secret,
        vhost=profile.vhost,
        ssl_context=context,
        timeout=TIMEOUT,
        http=http,
    )


def ssl_context(profile: ConnectionProfile) -> ssl.SSLContext:
    """The TLS settings of `profile`: its CA file (else the system's), an optional client
    certificate, and verification of the server's certificate and name unless switched off."""
    try:
        context = ssl.create_default_context(cafile=profile.ca_file or None)
        if profile.client_cert:
            context.load_cert_chain(profile.client_cert, profile.client_key or None)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(f for f in (profile.ca_file, profile.client_cert, profile.client_key) if f)
        raise BackendError(
            f"cannot load the TLS files ({files}): {getattr(exc, 'strerror', None) or exc}",
            hint="check the CA file, client certificate and key paths in the connection profile",
        ) from None
    if not profile.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _embedded(profile: ConnectionProfile, broker_thread: EmbeddedBrokerThread | None) -> Backend:
    from mqstudio.backends.embedded import EmbeddedBackend

    if broker_thread is not None:
        return EmbeddedBackend(broker_thread, profile.vhost)
    backend: Backend = _private_embedded_class()(profile.vhost)
    return backend


@functools.cache
def _private_embedded_class() -> Any:
    """`EmbeddedBackend` with a broker of its own: in memory, on a free loopback port, started by
    `connect` and stopped by `close` (the command line's ``embedded://``)."""
    from mqstudio.backends.embedded import EmbeddedBackend
    from mqstudio.runtime.brokerthread import EmbeddedBrokerThread

    class PrivateEmbeddedBackend(EmbeddedBackend):
        def __init__(self, vhost: str) -> None:
            self._thread = EmbeddedBrokerThread(None, port=0, name="mqstudio-private-broker")
            super().__init__(self._thread, vhost)

        def connect(self) -> None:
            if not self._thread.running:
                self._thread.start()
            super().connect()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._thread.stop()

    return PrivateEmbeddedBackend


def _kafka(profile: ConnectionProfile, password: str | None) -> Backend:
    from mqstudio.backends.kafka import KafkaBackend, KafkaSecurity

    sasl = bool(profile.user)
    protocol = ("SASL_" if sasl else "") + ("SSL" if profile.tls else "PLAINTEXT")
    security = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism="PLAIN" if sasl else None,
        username=profile.user or None,
        password=password if sasl else None,
        ssl_cafile=profile.ca_file or None,
        ssl_certfile=profile.client_cert or None,
        ssl_keyfile=profile.client_key or None,
        ssl_check_hostname=profile.verify,
    )
    return KafkaBackend(profile.bootstrap, security=security)


# -- probing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A successful test connection: `summary` is the sentence to show (``Connected to RabbitMQ 3.10.8``)."""

    summary: str
    description: str
    capabilities: Capabilities
    vhosts: tuple[str, ...] = ()


def server_summary(backend: Backend) -> str:
    """``Connected to RabbitMQ 3.10.8`` when the backend knows its server's version."""
    product = _KIND_NAMES.get(backend.kind, str(backend.kind))
    version = ""
    for name in ("server_version", "broker_version"):
        value = getattr(backend, name, None)
        try:
            value = value() if callable(value) else value
        except BackendError:
            value = None
        if value:
            version = f" {value}"
            break
    return f"Connected to {product}{version}"


def probe(
    profile: ConnectionProfile,
    password: str | None,
    *,
    cancel: CancelToken | None = None,
    broker_thread: EmbeddedBrokerThread | None = None,
    factory: BackendFactory | None = None,
) -> ProbeResult:
    """Connect with `profile`, say what answered, and close. Raises the backend's specific
    `BackendError` (unreachable, authentication, permission …) or `CancelledError`."""
    if factory is not None:
        backend = factory(profile, password)
    else:
        backend = open_backend(profile, password, broker_thread)
    try:
        backend.connect()
        if cancel is not None and cancel.cancelled:
            raise CancelledError("the connection test was cancelled")
        return ProbeResult(
            server_summary(backend), backend.description, backend.capabilities, tuple(list_vhosts(backend))
        )
    finally:
        with contextlib.suppress(BackendError):
            backend.close()


def list_vhosts(backend: Backend) -> list[str]:
    """The vhosts the user can see (RabbitMQ), else ``[]``; the backend's own vhost when listing fails."""
    lister = getattr(backend, "vhosts", None) or getattr(backend, "list_vhosts", None)
    if not callable(lister):
        return []
    try:
        return sorted(str(name) for name in lister())
    except BackendError:
        own = getattr(backend, "vhost", None)
        return [str(own)] if own else []


# -- what a backend can hold -------------------------------------------------------------------

NODE_KINDS = ("exchange", "queue", "topic", "consumer_group", "producer", "consumer")


def node_kinds(capabilities: Capabilities) -> frozenset[str]:
    """The designer's node kinds a backend with `capabilities` can hold: RabbitMQ has no topics or
    consumer groups, Kafka no exchanges or queues; simulated clients work everywhere."""
    kinds = {"producer", "consumer"}
    if Capabilities.EXCHANGES in capabilities:
        kinds |= {"exchange", "queue"}
    if Capabilities.TOPICS in capabilities:
        kinds.add("topic")
    if Capabilities.CONSUMER_GROUPS in capabilities:
        kinds.add("consumer_group")
    return frozenset(kinds)


# -- designs and vhosts ------------------------------------------------------------------------


class DesignVhostError(BackendError):
    """The design has RabbitMQ objects, none of them in the connection's vhost, in several vhosts."""


def design_vhosts(topology: Topology) -> list[str]:
    """The vhosts the design's exchanges and queues live in."""
    return sorted({e.vhost for e in topology.exchanges} | {q.vhost for q in topology.queues})


def design_for(topology: Topology, kind: BackendKind, vhost: str) -> tuple[Topology, str]:
    """The design as planned against a connection to `vhost`, and a note when it was moved.

    A backend plans its own vhost only, so a design drawn in ``/`` would plan nothing (and, with
    prune, delete everything) against ``orders``. A design whose exchanges and queues are all in one
    other vhost is therefore planned as if drawn in `vhost` (the note says so); a design spread over
    several vhosts, none of them `vhost`, is refused with `DesignVhostError`.
    """
    if kind is BackendKind.KAFKA:
        return topology, ""
    found = design_vhosts(topology)
    if not found or vhost in found:
        return topology, ""
    if len(found) > 1:
        raise DesignVhostError(
            f"the design has no exchanges or queues in vhost {vhost!r}; it has them in "
            f"{', '.join(repr(v) for v in found)}",
            hint="connect to one of those vhosts",
        )
    return _moved(topology, found[0], vhost), (
        f"the design's objects are in vhost {found[0]!r}; they are planned for vhost {vhost!r}"
    )


def snapshot(topology: Topology) -> Topology:
    """A deep copy of `topology` (same ids) that a worker can read while the user edits the original."""
    return _moved(topology, None, None)


def _moved(topology: Topology, source: str | None, target: str | None) -> Topology:
    moved = Topology()
    moved.vhosts = list(topology.vhosts)
    if source is not None and target is not None:
        moved.vhosts = sorted({*(v for v in topology.vhosts if v != source), target})
    for node in topology.nodes:
        copy = copy_module.deepcopy(node)
        if isinstance(copy, Exchange | Queue) and target is not None and copy.vhost == source:
            copy.vhost = target
        moved.add_node(copy)
    for binding in topology.bindings:
        moved.add_binding(copy_module.deepcopy(binding))
    return moved


# -- applying with consent ---------------------------------------------------------------------


def needs_approval(step: Step) -> bool:
    """Steps that run only when the user agreed: those that lose messages (`needs_consent`) and the
    other destructive ones (recreating or deleting an exchange drops its bindings)."""
    return step.destructive or step.needs_consent


def apply_plan(
    backend: Backend,
    plan: Plan,
    approved: Iterable[Step] = (),
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> ApplyReport:
    """Apply `plan`, running the steps that need approval only when they are in `approved`.

    Unapproved destructive steps are taken out before the backend sees the plan, and unapproved
    consent steps are not consented to, so both end up in ``report.skipped`` (in plan order).
    The command line's ``apply`` and the UI's Plan and Apply dialog both come through here.
    """
    chosen = {id(step) for step in approved}
    withheld = {id(step) for step in plan.steps if needs_approval(step) and id(step) not in chosen}
    run = Plan(
        steps=[s for s in plan.steps if id(s) not in withheld or s.needs_consent],
        warnings=list(plan.warnings),
        unmanaged=list(plan.unmanaged),
    )
    consent = [s for s in plan.steps if s.needs_consent and id(s) in chosen]
    report = backend.apply(run, consent=consent, progress=progress, cancel=cancel)
    skipped = {id(step) for step in report.skipped} | withheld
    report.skipped = [step for step in plan.steps if id(step) in skipped]
    return report
