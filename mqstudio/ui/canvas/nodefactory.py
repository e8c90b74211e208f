"""Commands that create nodes: from a palette spec (drop, double-click) and from a copied fragment (paste).

Owns: `create_node_command` (palette payload → one `AddNode` with a unique default name),
`fragment_for` (selected nodes and the bindings among them as a project-JSON fragment, the clipboard's
content) and `paste_command` (a fragment → one `Macro` of AddNode/Bind with new ids and ``-copy`` names).
Qt-free on purpose (it only builds core commands), so it is easy to test.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from typing import Any

from mqstudio.core import fileformat
from mqstudio.core.commands import AddNode, Bind, Command, Macro
from mqstudio.core.document import Position, TopologyDocument
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Consumer,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Node,
    NodeKind,
    Producer,
    Queue,
    Topic,
    Topology,
    new_id,
)

_EXCHANGE_TYPES = {t.value: t for t in ExchangeType}
_QUEUE_TYPES = ("classic", "quorum", "stream")
_ID_PREFIX = {
    NodeKind.EXCHANGE: "ex",
    NodeKind.QUEUE: "q",
    NodeKind.TOPIC: "t",
    NodeKind.CONSUMER_GROUP: "cg",
    NodeKind.PRODUCER: "p",
    NodeKind.CONSUMER: "c",
}
# Nodes that others refer to are added first, so that references resolve when the referrer arrives.
_ADD_ORDER = [
    NodeKind.EXCHANGE,
    NodeKind.QUEUE,
    NodeKind.TOPIC,
    NodeKind.CONSUMER_GROUP,
    NodeKind.PRODUCER,
    NodeKind.CONSUMER,
]


def _vhost(node: Node) -> str:
    return node.vhost if isinstance(node, Exchange | Queue) else DEFAULT_VHOST


def unique_name(
    topology: Topology,
    kind: NodeKind,
    base: str,
    vhost: str = DEFAULT_VHOST,
    taken: Iterable[str] = (),
    *,
    first: int | None = 1,
) -> str:
    """``base-1``, ``base-2`` … (or `base` itself, then ``base-2`` when ``first`` is None): the first
    name not used by a node of this kind in this vhost nor listed in `taken`."""
    used = set(taken)

    def free(name: str) -> bool:
        return name not in used and topology.find_node(kind, name, vhost) is None

    if first is None:
        if free(base):
            return base
        n = 2
    else:
        n = first
    while not free(f"{base}-{n}"):
        n += 1
    return f"{base}-{n}"


def create_node_command(document: TopologyDocument, spec: dict[str, Any], pos: Position) -> AddNode:
    """One `AddNode` for a palette `spec` ``{"kind": …, "type": …}`` at `pos`, with a unique default name.

    Delayed exchanges get ``x-delayed-type: direct``; quorum/stream queues their ``x-queue-type``. An
    optional ``name`` or ``vhost`` in the spec is honoured. Raises ValueError for an unknown kind/type.
    """
    kind_value = spec.get("kind")
    try:
        kind = NodeKind(str(kind_value))
    except ValueError:
        raise ValueError(f"cannot create a node of kind {kind_value!r}") from None
    topology = document.topology
    vhost = str(spec.get("vhost") or DEFAULT_VHOST)
    requested = spec.get("name")
    node: Node
    if kind is NodeKind.EXCHANGE:
        type_value = str(spec.get("type") or "direct")
        if type_value not in _EXCHANGE_TYPES:
            raise ValueError(f"unknown exchange type {type_value!r}")
        ex_type = _EXCHANGE_TYPES[type_value]
        short = "delayed" if ex_type is ExchangeType.DELAYED else ex_type.value
        args: dict[str, Any] = {"x-delayed-type": "direct"} if ex_type is ExchangeType.DELAYED else {}
        name = requested or unique_name(topology, kind, f"exchange.{short}", vhost)
        node = Exchange(name, ex_type, vhost=vhost, arguments=args)
    elif kind is NodeKind.QUEUE:
        type_value = str(spec.get("type") or "classic")
        if type_value not in _QUEUE_TYPES:
            raise ValueError(f"unknown queue type {type_value!r}")
        base = "queue" if type_value == "classic" else f"queue.{type_value}"
        name = requested or unique_name(topology, kind, base, vhost)
        qargs: dict[str, Any] = {} if type_value == "classic" else {"x-queue-type": type_value}
        node = Queue(name, vhost=vhost, arguments=qargs)
    elif kind is NodeKind.TOPIC:
        node = Topic(requested or unique_name(topology, kind, "topic"))
    elif kind is NodeKind.CONSUMER_GROUP:
        node = ConsumerGroup(requested or unique_name(topology, kind, "group"))
    elif kind is NodeKind.PRODUCER:
        node = Producer(requested or unique_name(topology, kind, "producer"))
    else:
        node = Consumer(requested or unique_name(topology, kind, "consumer"))
    return AddNode(document, node, (float(pos[0]), float(pos[1])))


# -- copy & paste ----------------------------------------------------------------------------------
def _references(node: Node) -> dict[str, list[str]]:
    if isinstance(node, Producer):
        return {"target": [node.target] if node.target else []}
    if isinstance(node, Consumer):
        return {"source": [node.source] if node.source else []}
    if isinstance(node, ConsumerGroup):
        return {"topics": list(node.topics)}
    return {}


def fragment_for(document: TopologyDocument, node_ids: Iterable[str]) -> dict[str, Any]:
    """The selected nodes and the bindings among them as project JSON. References to nodes outside the
    selection (producer target, consumer source, group topics) are kept aside in ``metadata.external``
    so that a paste into the same design can restore them."""
    topology = document.topology
    ids = [i for i in dict.fromkeys(node_ids) if topology.get(i) is not None and i in topology]
    chosen = set(ids)
    fragment = TopologyDocument()
    external: dict[str, dict[str, list[str]]] = {}
    for node_id in ids:
        node = copy.deepcopy(topology.node(node_id))
        refs = _references(node)
        outside = {f: [r for r in values if r not in chosen] for f, values in refs.items()}
        outside = {f: v for f, v in outside.items() if v}
        if outside:
            external[node.id] = outside
        if isinstance(node, Producer) and node.target not in chosen:
            node.target = ""
        elif isinstance(node, Consumer) and node.source not in chosen:
            node.source = ""
        elif isinstance(node, ConsumerGroup):
            node.topics = [t for t in node.topics if t in chosen]
        if isinstance(node, Exchange | Queue) and node.vhost not in fragment.topology.vhosts:
            fragment.topology.vhosts.append(node.vhost)
        fragment.topology.add_node(node)
        pos = document.position(node_id)
        if pos is not None:
            fragment.set_position(node.id, pos, notify=False)
    for binding in topology.bindings:
        if binding.source in chosen and binding.destination in chosen:
            fragment.topology.add_binding(copy.deepcopy(binding))
    data = fileformat.to_data(fragment)
    data["metadata"] = {"fragment": True, "external": external}
    return data


def paste_command(
    document: TopologyDocument, data: Any, offset: Position = (40.0, 40.0)
) -> tuple[Macro, list[str]]:
    """A fragment (see `fragment_for`) → one `Macro` adding copies with new ids, names suffixed
    ``-copy``, positions offset; plus the new node ids. Raises `FileFormatError` for a bad fragment."""
    fragment = fileformat.from_data(data, "<clipboard>")
    external = {}
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if isinstance(metadata, dict) and isinstance(metadata.get("external"), dict):
        external = metadata["external"]
    topology = document.topology
    source_nodes = sorted(fragment.topology.nodes, key=lambda n: _ADD_ORDER.index(n.kind))
    id_map = {node.id: new_id(_ID_PREFIX[node.kind]) for node in source_nodes}
    taken: dict[tuple[NodeKind, str], set[str]] = {}
    commands: list[Command] = []
    new_ids: list[str] = []
    for node in source_nodes:
        vhost = _vhost(node)
        names = taken.setdefault((node.kind, vhost), set())
        name = unique_name(topology, node.kind, f"{node.name}-copy", vhost, names, first=None)
        names.add(name)
        changes: dict[str, Any] = {"id": id_map[node.id], "name": name}
        outside = external.get(node.id, {}) if isinstance(external, dict) else {}
        if isinstance(node, Producer):
            ref = id_map.get(node.target) or next(iter(outside.get("target", [])), "")
            changes["target"] = ref if ref in id_map.values() or ref in topology else ""
        elif isinstance(node, Consumer):
            ref = id_map.get(node.source) or next(iter(outside.get("source", [])), "")
            changes["source"] = ref if ref in id_map.values() or ref in topology else ""
        elif isinstance(node, ConsumerGroup):
            inside = [id_map[t] for t in node.topics if t in id_map]
            kept = [t for t in outside.get("topics", []) if isinstance(topology.get(t), Topic)]
            changes["topics"] = inside + kept
        clone = dataclasses.replace(copy.deepcopy(node), **changes)
        pos = fragment.position(node.id) or (0.0, 0.0)
        commands.append(AddNode(document, clone, (pos[0] + offset[0], pos[1] + offset[1])))
        new_ids.append(clone.id)
    for binding in fragment.topology.bindings:
        commands.append(
            Bind(
                document,
                id_map[binding.source],
                id_map[binding.destination],
                binding.routing_key,
                binding.arguments,
            )
        )
    count = len(new_ids)
    text = f"Paste {count} node{'s' if count != 1 else ''}"
    return Macro(text, commands), new_ids
