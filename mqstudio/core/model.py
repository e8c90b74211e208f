"""The designer's topology: exchanges, queues, bindings, Kafka topics, consumer groups and clients.

Owns: the value types (`Exchange`, `Queue`, `Binding`, `Topic`, `ConsumerGroup`, and the simulated
clients `Producer` and `Consumer`), their enums, and
`Topology`, the container that emits past-tense events when it changes. Objects are identified by
stable string ids that never change on rename; bindings refer to nodes by id.

This is the designer's world, not broker state: `mqstudio.broker` does not import it, and it imports
nothing outside the stdlib. Validation of values lives in `validation.py`, undo in `commands.py`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mqstudio.core.errors import DuplicateNameError, UnknownObjectError
from mqstudio.core.events import Signal

DEFAULT_VHOST = "/"


class ExchangeType(StrEnum):
    """The exchange types whose routing mqstudio knows (and simulates).

    RabbitMQ has more: ``x-local-random`` is built into 4.x, and plugins add others
    (``x-consistent-hash``, ``x-modulus-hash``, ``x-random``, ``x-jms-topic``, ``x-recent-history`` …).
    To RabbitMQ a type is just a name it looks up in its registry, so `Exchange.type` holds any non-empty
    string: a member of this enum for a known type, the plain string otherwise (see `exchange_type`).
    """

    DIRECT = "direct"
    FANOUT = "fanout"
    TOPIC = "topic"
    HEADERS = "headers"
    DELAYED = "x-delayed-message"


_KNOWN_EXCHANGE_TYPES = {t.value: t for t in ExchangeType}


def is_known_type(value: object) -> bool:
    """True for the exchange types mqstudio simulates (`ExchangeType`), False for plugin/other types."""
    return isinstance(value, str) and value in _KNOWN_EXCHANGE_TYPES


def exchange_type(value: str) -> ExchangeType | str:
    """`value` as an `ExchangeType` member when it is a known type, else the string unchanged."""
    return _KNOWN_EXCHANGE_TYPES.get(value, value) if isinstance(value, str) else value


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"
    STREAM = "stream"


class Overflow(StrEnum):
    DROP_HEAD = "drop-head"
    REJECT_PUBLISH = "reject-publish"
    REJECT_PUBLISH_DLX = "reject-publish-dlx"


class NodeKind(StrEnum):
    EXCHANGE = "exchange"
    QUEUE = "queue"
    TOPIC = "topic"
    CONSUMER_GROUP = "consumer_group"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class DestinationType(StrEnum):
    """RabbitMQ's `destination_type` of a binding."""

    QUEUE = "queue"
    EXCHANGE = "exchange"


_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """A fresh stable id such as ``q-3f9a1c2e``; unique within a process and across saved files."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}{next(_counter):x}"


@dataclass(slots=True)
class Exchange:
    """An exchange. `type` is an `ExchangeType` for the known types and a plain string for others
    (plugin types such as ``x-consistent-hash``): compare with ``==``, print with ``str(ex.type)``."""

    name: str
    type: ExchangeType | str = ExchangeType.DIRECT
    vhost: str = DEFAULT_VHOST
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("ex"))

    kind = NodeKind.EXCHANGE

    def __post_init__(self) -> None:
        self.type = exchange_type(self.type)

    @property
    def type_known(self) -> bool:
        """False for exchange types whose routing mqstudio does not simulate (plugin types)."""
        return is_known_type(self.type)

    @property
    def alternate_exchange(self) -> str | None:
        value = self.arguments.get("alternate-exchange")
        return value if isinstance(value, str) else None

    @property
    def delayed_type(self) -> str | None:
        value = self.arguments.get("x-delayed-type")
        return value if isinstance(value, str) else None


@dataclass(slots=True)
class Queue:
    name: str
    vhost: str = DEFAULT_VHOST
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("q"))

    kind = NodeKind.QUEUE

    @property
    def queue_type(self) -> QueueType:
        value = self.arguments.get("x-queue-type", QueueType.CLASSIC.value)
        try:
            return QueueType(value)
        except ValueError:
            return QueueType.CLASSIC

    @property
    def dead_letter_exchange(self) -> str | None:
        value = self.arguments.get("x-dead-letter-exchange")
        return value if isinstance(value, str) else None

    @property
    def dead_letter_routing_key(self) -> str | None:
        value = self.arguments.get("x-dead-letter-routing-key")
        return value if isinstance(value, str) else None

    @property
    def message_ttl(self) -> int | None:
        value = self.arguments.get("x-message-ttl")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def overflow(self) -> Overflow:
        value = self.arguments.get("x-overflow", Overflow.DROP_HEAD.value)
        try:
            return Overflow(value)
        except ValueError:
            return Overflow.DROP_HEAD


@dataclass(slots=True)
class Binding:
    """source (an exchange id) → destination (a queue or exchange id), with routing key and arguments."""

    source: str
    destination: str
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("b"))

    def same_route(self, other: Binding) -> bool:
        """True when RabbitMQ would treat both as one binding (same ends, key and arguments)."""
        return (
            self.source == other.source
            and self.destination == other.destination
            and self.routing_key == other.routing_key
            and self.arguments == other.arguments
        )


@dataclass(slots=True)
class Topic:
    """A Kafka topic."""

    name: str
    partitions: int = 1
    replication_factor: int = 1
    configs: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("t"))

    kind = NodeKind.TOPIC


@dataclass(slots=True)
class ConsumerGroup:
    """A Kafka consumer group and the topics it subscribes to (topic ids)."""

    name: str
    topics: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: new_id("cg"))

    kind = NodeKind.CONSUMER_GROUP


@dataclass(slots=True)
class Producer:
    """A simulated publisher (run by the traffic generator), not a broker object.

    `target` is the id of an exchange node (RabbitMQ) or of a topic node (Kafka); "" when unset.
    `rate` is in messages per second. `payload` is the body template ("" = the traffic generator's
    default template); `priority` (0 to 255) and `ttl_ms` (per-message expiration) are None when unset,
    and the run's defaults then apply.
    """

    name: str
    target: str = ""
    routing_key: str = ""
    rate: float = 1.0
    headers: dict[str, Any] = field(default_factory=dict)
    payload: str = ""
    priority: int | None = None
    ttl_ms: int | None = None
    id: str = field(default_factory=lambda: new_id("p"))

    kind = NodeKind.PRODUCER


@dataclass(slots=True)
class Consumer:
    """A simulated consumer (run by the traffic generator), not a broker object.

    `source` is the id of a queue node (RabbitMQ) or of a consumer-group node (Kafka); "" when unset.
    `failure_rate` (0 to 1) is the share of deliveries it rejects without requeue; `requeue_rate` (0 to 1)
    the share it rejects with requeue. Together they are at most 1.
    """

    name: str
    source: str = ""
    prefetch: int = 10
    processing_ms: int = 0
    failure_rate: float = 0.0
    requeue_rate: float = 0.0
    id: str = field(default_factory=lambda: new_id("c"))

    kind = NodeKind.CONSUMER


Node = Exchange | Queue | Topic | ConsumerGroup | Producer | Consumer


class Topology:
    """All nodes and bindings of a design, keyed by id, with past-tense change events.

    Mutators here do no validation beyond referential integrity (ids exist, names unique per kind and
    vhost): commands validate first (see `validation.py`) so that the model never holds a half change.
    Events: ``node_added(node)``, ``node_removed(node)``, ``node_changed(node, field_name)``,
    ``binding_added(binding)``, ``binding_removed(binding)``, ``binding_changed(binding, field_name)``.
    """

    def __init__(self) -> None:
        self.vhosts: list[str] = [DEFAULT_VHOST]
        self._nodes: dict[str, Node] = {}
        self._bindings: dict[str, Binding] = {}
        self.node_added = Signal("node_added")
        self.node_removed = Signal("node_removed")
        self.node_changed = Signal("node_changed")
        self.binding_added = Signal("binding_added")
        self.binding_removed = Signal("binding_removed")
        self.binding_changed = Signal("binding_changed")

    # -- queries ------------------------------------------------------------------------------
    def __contains__(self, object_id: object) -> bool:
        return object_id in self._nodes or object_id in self._bindings

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise UnknownObjectError(f"no node with id {node_id!r}", node_id) from None

    def binding(self, binding_id: str) -> Binding:
        try:
            return self._bindings[binding_id]
        except KeyError:
            raise UnknownObjectError(f"no binding with id {binding_id!r}", binding_id) from None

    def get(self, object_id: str) -> Node | Binding | None:
        return self._nodes.get(object_id) or self._bindings.get(object_id)

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    @property
    def bindings(self) -> list[Binding]:
        return list(self._bindings.values())

    @property
    def exchanges(self) -> list[Exchange]:
        return [n for n in self._nodes.values() if isinstance(n, Exchange)]

    @property
    def queues(self) -> list[Queue]:
        return [n for n in self._nodes.values() if isinstance(n, Queue)]

    @property
    def topics(self) -> list[Topic]:
        return [n for n in self._nodes.values() if isinstance(n, Topic)]

    @property
    def consumer_groups(self) -> list[ConsumerGroup]:
        return [n for n in self._nodes.values() if isinstance(n, ConsumerGroup)]

    @property
    def producers(self) -> list[Producer]:
        return [n for n in self._nodes.values() if isinstance(n, Producer)]

    @property
    def consumers(self) -> list[Consumer]:
        return [n for n in self._nodes.values() if isinstance(n, Consumer)]

    def producers_of(self, node_id: str) -> list[Producer]:
        """Producers whose target is `node_id`, in insertion order."""
        return [p for p in self.producers if p.target == node_id]

    def consumers_of(self, node_id: str) -> list[Consumer]:
        """Consumers whose source is `node_id`, in insertion order."""
        return [c for c in self.consumers if c.source == node_id]

    def find_exchange(self, name: str, vhost: str = DEFAULT_VHOST) -> Exchange | None:
        return next((e for e in self.exchanges if e.name == name and e.vhost == vhost), None)

    def find_queue(self, name: str, vhost: str = DEFAULT_VHOST) -> Queue | None:
        return next((q for q in self.queues if q.name == name and q.vhost == vhost), None)

    def find_topic(self, name: str) -> Topic | None:
        return next((t for t in self.topics if t.name == name), None)

    def find_node(self, kind: NodeKind, name: str, vhost: str = DEFAULT_VHOST) -> Node | None:
        for node in self._nodes.values():
            if node.kind != kind or node.name != name:
                continue
            if isinstance(node, Exchange | Queue) and node.vhost != vhost:
                continue
            return node
        return None

    def bindings_of(self, node_id: str) -> list[Binding]:
        """Bindings that start or end at `node_id`, in insertion order."""
        return [b for b in self._bindings.values() if node_id in (b.source, b.destination)]

    def bindings_from(self, exchange_id: str) -> list[Binding]:
        return [b for b in self._bindings.values() if b.source == exchange_id]

    def bindings_to(self, node_id: str) -> list[Binding]:
        return [b for b in self._bindings.values() if b.destination == node_id]

    def binding_index(self, binding_id: str) -> int:
        """Position of a binding in insertion order (undo restores bindings where they were)."""
        for index, key in enumerate(self._bindings):
            if key == binding_id:
                return index
        raise UnknownObjectError(f"no binding with id {binding_id!r}", binding_id)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    # -- mutators (used by commands and builders) ---------------------------------------------
    def node_index(self, node_id: str) -> int:
        """Position of a node in insertion order (undo re-inserts removed nodes where they were)."""
        for index, key in enumerate(self._nodes):
            if key == node_id:
                return index
        raise UnknownObjectError(f"no node with id {node_id!r}", node_id)

    def add_node(self, node: Node, index: int | None = None) -> None:
        if node.id in self:
            raise DuplicateNameError(f"id {node.id!r} is already used", node.id)
        vhost = node.vhost if isinstance(node, Exchange | Queue) else DEFAULT_VHOST
        if self.find_node(node.kind, node.name, vhost) is not None:
            where = f" in vhost {vhost!r}" if isinstance(node, Exchange | Queue) else ""
            raise DuplicateNameError(
                f"a {node.kind.value.replace('_', ' ')} named {node.name!r} already exists{where}; "
                "choose another name",
                "name",
            )
        if isinstance(node, Exchange | Queue) and node.vhost not in self.vhosts:
            self.vhosts.append(node.vhost)
        if index is None or index >= len(self._nodes):
            self._nodes[node.id] = node
        else:
            items = list(self._nodes.items())
            items.insert(index, (node.id, node))
            self._nodes = dict(items)
        self.node_added.emit(node)

    def remove_node(self, node_id: str) -> Node:
        """Remove a node that has no bindings left (commands remove its bindings first)."""
        node = self.node(node_id)
        if self.bindings_of(node_id):
            raise UnknownObjectError(f"{node.name!r} still has bindings; remove them first", node_id)
        del self._nodes[node_id]
        self.node_removed.emit(node)
        return node

    def set_node_field(self, node_id: str, field_name: str, value: Any) -> Any:
        """Set one attribute of a node; returns the old value. ``arguments`` is replaced whole."""
        node = self.node(node_id)
        old = getattr(node, field_name)
        if field_name == "name" and value != old:
            vhost = node.vhost if isinstance(node, Exchange | Queue) else DEFAULT_VHOST
            clash = self.find_node(node.kind, value, vhost)
            if clash is not None and clash.id != node_id:
                raise DuplicateNameError(f"a {node.kind.value} named {value!r} already exists", "name")
        if field_name == "type" and isinstance(node, Exchange):
            value = exchange_type(value)
        setattr(node, field_name, value)
        self.node_changed.emit(node, field_name)
        return old

    def add_binding(self, binding: Binding, index: int | None = None) -> None:
        for end in (binding.source, binding.destination):
            if end not in self._nodes:
                raise UnknownObjectError(f"binding end {end!r} is not a node of this topology", end)
        if binding.id in self:
            raise DuplicateNameError(f"id {binding.id!r} is already used", binding.id)
        if index is None or index >= len(self._bindings):
            self._bindings[binding.id] = binding
        else:
            items = list(self._bindings.items())
            items.insert(index, (binding.id, binding))
            self._bindings = dict(items)
        self.binding_added.emit(binding)

    def remove_binding(self, binding_id: str) -> Binding:
        binding = self.binding(binding_id)
        del self._bindings[binding_id]
        self.binding_removed.emit(binding)
        return binding

    def set_binding_field(self, binding_id: str, field_name: str, value: Any) -> Any:
        binding = self.binding(binding_id)
        old = getattr(binding, field_name)
        setattr(binding, field_name, value)
        self.binding_changed.emit(binding, field_name)
        return old

    def label(self, object_id: str) -> str:
        """A human name for messages: ``queue 'orders'`` or ``binding orders → billing``."""
        obj = self.get(object_id)
        if obj is None:
            return repr(object_id)
        if isinstance(obj, Binding):
            src, dst = self.get(obj.source), self.get(obj.destination)
            src_name = getattr(src, "name", obj.source)
            dst_name = getattr(dst, "name", obj.destination)
            key = f" [{obj.routing_key}]" if obj.routing_key else ""
            return f"binding {src_name} → {dst_name}{key}"
        return f"{obj.kind.value.replace('_', ' ')} {obj.name!r}"
