"""Declare a designer `Topology` into the embedded broker engine, and map ids to broker names.

Owns: `apply_topology` (exchanges, queues with their arguments, exchange→queue and exchange→exchange
bindings of one vhost, declared into a `mqstudio.broker.Broker`), `TopologyMapping` (core ids ↔ broker
names and binding records, so engine results can be shown on the canvas), `TranslationError`, and the
single-object declarations `declare_exchange`/`declare_queue` (the embedded backend's plan steps use
them too, so a design declares the same way whether it is loaded or applied).

This is the one place where the designer's model meets the engine: `mqstudio.broker` does not know
`mqstudio.core` and vice versa. Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mqstudio.broker.broker import Broker
from mqstudio.broker.errors import BrokerError
from mqstudio.broker.exchanges import BindingRecord, DestinationKind
from mqstudio.core.model import DEFAULT_VHOST, Binding, Exchange, Queue, QueueType, Topology


class TranslationError(Exception):
    """The engine refused a declaration. `object_id` is the core object at fault; the message starts
    with its label (``queue 'orders': inequivalent arg …``) so it can be shown as is."""

    def __init__(self, message: str, object_id: str) -> None:
        super().__init__(message)
        self.object_id = object_id


@dataclass(slots=True)
class TopologyMapping:
    """Which broker object each core object became (one vhost)."""

    vhost: str = DEFAULT_VHOST
    exchanges: dict[str, str] = field(default_factory=dict)  # core id → exchange name
    queues: dict[str, str] = field(default_factory=dict)  # core id → queue name
    bindings: dict[str, BindingRecord] = field(default_factory=dict)  # core id → engine record
    warnings: list[str] = field(default_factory=list)  # what the engine runs differently from the design
    _exchange_ids: dict[str, str] = field(default_factory=dict)
    _queue_ids: dict[str, str] = field(default_factory=dict)
    _binding_ids: dict[BindingRecord, list[str]] = field(default_factory=dict)

    def add_exchange(self, object_id: str, name: str) -> None:
        self.exchanges[object_id] = name
        self._exchange_ids.setdefault(name, object_id)

    def add_queue(self, object_id: str, name: str) -> None:
        self.queues[object_id] = name
        self._queue_ids.setdefault(name, object_id)

    def add_binding(self, object_id: str, record: BindingRecord) -> None:
        self.bindings[object_id] = record
        self._binding_ids.setdefault(record, []).append(object_id)

    def exchange_id(self, name: str) -> str | None:
        """The core id of the exchange declared as `name` (None: not part of the design)."""
        return self._exchange_ids.get(name)

    def queue_id(self, name: str) -> str | None:
        return self._queue_ids.get(name)

    def binding_ids(self, record: BindingRecord) -> list[str]:
        """Core bindings that became `record` (two when the design repeats a binding RabbitMQ merges)."""
        return list(self._binding_ids.get(record, ()))


def _wrap(topology: Topology, object_id: str, exc: BrokerError) -> TranslationError:
    return TranslationError(f"{topology.label(object_id)}: {exc}", object_id)


def declare_exchange(broker: Broker, vhost: str, ex: Exchange) -> None:
    """Declare `ex` in `vhost`. An exchange of that name that exists already must be equivalent, or
    the engine refuses (as RabbitMQ does with 406 PRECONDITION_FAILED)."""
    broker.declare_exchange(
        vhost,
        ex.name,
        str(ex.type),
        durable=ex.durable,
        auto_delete=ex.auto_delete,
        internal=ex.internal,
        arguments=dict(ex.arguments),
    )


# Streams keep every message for every consumer and never expire, drop or dead-letter (validation refuses
# those arguments on streams), so for routing they behave as a plain queue; the engine has no stream type.
_STREAM_ONLY_ARGS = ("x-queue-type", "x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size")


def _engine_arguments(q: Queue, warnings: list[str] | None) -> dict[str, Any]:
    arguments = dict(q.arguments)
    if q.queue_type is QueueType.STREAM:
        for key in _STREAM_ONLY_ARGS:
            arguments.pop(key, None)
        if warnings is not None:
            warnings.append(
                f"queue {q.name!r} is a stream; the embedded broker runs it as a classic queue "
                "(routing is the same, retention and offsets are not modelled)"
            )
    return arguments


def declare_queue(broker: Broker, vhost: str, q: Queue, warnings: list[str] | None = None) -> None:
    """Declare `q` in `vhost` (an existing queue must be equivalent). What the engine runs differently
    from the design (a stream as a classic queue) is appended to `warnings`."""
    broker.declare_queue(
        vhost,
        q.name,
        durable=q.durable,
        # An exclusive queue belongs to the connection that declares it; the design has none, so a
        # pseudo-connection owns it (nothing here ever closes it).
        exclusive=q.exclusive,
        auto_delete=q.auto_delete,
        arguments=_engine_arguments(q, warnings),
        owner="mqstudio-translate" if q.exclusive else None,
    )


def _bind(broker: Broker, vhost: str, topology: Topology, b: Binding) -> BindingRecord | None:
    source = topology.node(b.source)
    destination = topology.node(b.destination)
    if not isinstance(source, Exchange) or not isinstance(destination, Exchange | Queue):
        return None
    arguments: Mapping[str, Any] = dict(b.arguments)
    engine_source = broker.vhost(vhost).exchanges[source.name]
    before = set(engine_source.bindings)
    if isinstance(destination, Queue):
        broker.queue_bind(vhost, destination.name, source.name, b.routing_key, arguments=arguments)
        kind = DestinationKind.QUEUE
    else:
        broker.exchange_bind(vhost, destination.name, source.name, b.routing_key, arguments=arguments)
        kind = DestinationKind.EXCHANGE
    added = [r for r in engine_source.bindings if r not in before]
    if added:
        return added[0]
    # RabbitMQ merges a repeated binding into the existing one: find that record.
    return next(
        (
            r
            for r in engine_source.bindings
            if r.destination.kind is kind
            and r.destination.name == destination.name
            and r.routing_key == b.routing_key
        ),
        None,
    )


def apply_topology(broker: Broker, topology: Topology, vhost: str = DEFAULT_VHOST) -> TopologyMapping:
    """Declare every exchange, queue and binding of `vhost` into `broker` (exchanges, then queues,
    then bindings, each in design order). Raises `TranslationError` naming the object the engine
    refused; objects declared before it stay declared (use a fresh broker to retry)."""
    if vhost not in broker.vhost_names:
        broker.add_vhost(vhost)
    mapping = TopologyMapping(vhost)
    for ex in topology.exchanges:
        if ex.vhost != vhost:
            continue
        # The default exchange and the built-in amq.* exchanges exist in every vhost already.
        if ex.name != "" and ex.name not in broker.vhost(vhost).exchanges:
            try:
                declare_exchange(broker, vhost, ex)
            except BrokerError as exc:
                raise _wrap(topology, ex.id, exc) from exc
        mapping.add_exchange(ex.id, ex.name)
    for q in topology.queues:
        if q.vhost != vhost:
            continue
        try:
            declare_queue(broker, vhost, q, mapping.warnings)
        except BrokerError as exc:
            raise _wrap(topology, q.id, exc) from exc
        mapping.add_queue(q.id, q.name)
    for b in topology.bindings:
        if b.source not in mapping.exchanges or not (
            b.destination in mapping.exchanges or b.destination in mapping.queues
        ):
            continue
        try:
            record = _bind(broker, vhost, topology, b)
        except BrokerError as exc:
            raise _wrap(topology, b.id, exc) from exc
        if record is not None:
            mapping.add_binding(b.id, record)
    return mapping
