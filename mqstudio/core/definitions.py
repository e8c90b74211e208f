"""RabbitMQ definitions JSON (``rabbitmqctl export_definitions``, ``GET /api/definitions[/{vhost}]``).

Owns: `import_definitions`, `export_definitions`, `detect_format`. Import follows the same discipline
as the project file: parse → records (type checks, paths such as ``queues[3].arguments``) → validate
(`validation.py`) → referential checks → build, and refuses the whole file with `FileFormatError`.

What is kept where (so that import → export gives back the same JSON):

* exchanges, queues and bindings become model objects; bindings are resolved by (vhost, name) to node
  ids, exchange→queue and exchange→exchange alike;
* everything else at the top level — users, vhosts, permissions, topic_permissions, policies,
  parameters, global_parameters, rabbit_version, rabbitmq_version, product_name … — is kept untouched in
  ``document.metadata["definitions"]`` and written back by the export;
* ``document.metadata["definitions_import"]`` remembers how the file was shaped: ``vhost`` (the vhost a
  per-vhost export was imported into, ``None`` for a cluster-wide one), ``builtin_exchanges`` (node ids,
  see below) and ``extra_fields`` (node or binding id → fields of that object mqstudio does not model,
  e.g. ones added by a newer RabbitMQ, written back as they were).

Built-in exchanges: RabbitMQ does not export the default exchange or the ``amq.*`` ones, and refuses to
declare them on import. Entries for them are skipped. When a binding refers to an ``amq.*`` exchange
(e.g. ``amq.topic`` → a queue, as the MQTT plugin uses) the exchange is imported as a node so that the
binding can exist in the model; its id is listed in ``builtin_exchanges``, and export (like `plan.py`)
never declares it. A binding whose source is the default exchange is refused: those are implicit.

Producers and consumers (the simulated clients of the traffic generator) are not RabbitMQ objects:
export drops them (as it drops Kafka topics and consumer groups), and import never creates any.

Stdlib only; must not import Qt, the broker, backends or anything outside `mqstudio.core`.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from mqstudio.core import validation
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import FileFormatError, Problem
from mqstudio.core.fileformat import RecordReader, check_references, join_path, parse_json
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
    Node,
    Queue,
    Topology,
)
from mqstudio.core.plan import is_builtin_exchange

METADATA_KEY = "definitions"
IMPORT_KEY = "definitions_import"

#: Exchanges every vhost has; they are never declared, exported, created or deleted.
BUILTIN_EXCHANGE_TYPES: dict[str, ExchangeType] = {
    "": ExchangeType.DIRECT,
    "amq.direct": ExchangeType.DIRECT,
    "amq.fanout": ExchangeType.FANOUT,
    "amq.topic": ExchangeType.TOPIC,
    "amq.headers": ExchangeType.HEADERS,
    "amq.match": ExchangeType.HEADERS,
    "amq.rabbitmq.trace": ExchangeType.TOPIC,
}

#: Top-level keys that only a cluster-wide export has; a per-vhost export drops them.
CLUSTER_ONLY_KEYS = ("users", "vhosts", "permissions", "topic_permissions", "global_parameters")
#: Top-level lists whose entries carry a ``vhost`` in the cluster-wide form and none per vhost.
VHOST_SCOPED_KEYS = ("policies", "parameters")

_MODELLED = ("exchanges", "queues", "bindings")
_DEFINITION_MARKERS = frozenset(
    {
        "rabbit_version",
        "rabbitmq_version",
        "product_name",
        "users",
        "vhosts",
        "permissions",
        "policies",
        "parameters",
        "global_parameters",
        *_MODELLED,
    }
)
_EXCHANGE_FIELDS = frozenset({"name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"})
_QUEUE_FIELDS = frozenset({"name", "vhost", "durable", "auto_delete", "exclusive", "arguments"})
_BINDING_FIELDS = frozenset(
    {"source", "vhost", "destination", "destination_type", "routing_key", "arguments"}
)


def detect_format(data: Any, source: str = "<data>") -> Literal["project", "definitions"]:
    """``"project"`` for an mqstudio project, ``"definitions"`` for RabbitMQ definitions JSON."""
    if isinstance(data, dict):
        if "format" in data:
            return "project"
        if _DEFINITION_MARKERS & data.keys():
            return "definitions"
    raise FileFormatError(
        source,
        [
            Problem(
                "",
                'neither an mqstudio project (no "format") nor RabbitMQ definitions '
                "(no rabbit_version, exchanges, queues or bindings)",
            )
        ],
    )


# -- import -------------------------------------------------------------------------------------


def _extras(record: dict[str, Any], modelled: frozenset[str]) -> dict[str, Any]:
    return {key: copy.deepcopy(value) for key, value in record.items() if key not in modelled}


def _vhost_of(r: RecordReader, record: dict[str, Any], path: str, vhost: str | None, default: str) -> str:
    """Cluster-wide exports name the vhost of every object; per-vhost ones never do."""
    if vhost is None:
        return r.text(record, "vhost", path, allow_empty=False) or default
    return default


def import_definitions(
    text_or_data: str | bytes | dict[str, Any],
    source: str = "<definitions>",
    vhost: str = DEFAULT_VHOST,
) -> TopologyDocument:
    """Build a document from definitions JSON (text, or an already parsed dict).

    A per-vhost export (its objects carry no ``vhost``) is imported into `vhost`. Raises
    `FileFormatError` listing every problem, with paths such as ``queues[3].arguments.x-max-priority``.
    """
    data = text_or_data if isinstance(text_or_data, dict) else parse_json(text_or_data, source)
    r = RecordReader()
    if r.obj(data, "") is None:
        raise FileFormatError(source, r.problems)
    lists = {key: r.items(data, key, "") for key in _MODELLED}
    per_vhost = (
        not any(isinstance(entry, dict) and "vhost" in entry for key in _MODELLED for entry in lists[key])
        and "vhosts" not in data
    )
    scope: str | None = vhost if per_vhost else None

    nodes: list[tuple[str, Node]] = []
    extra_fields: dict[str, dict[str, Any]] = {}
    by_name: dict[tuple[str, str, str], str] = {}  # (kind, vhost, name) → id

    for index, entry in enumerate(lists["exchanges"]):
        path = f"exchanges[{index}]"
        record = r.obj(entry, path)
        if record is None:
            continue
        before = len(r.problems)
        name = r.text(record, "name", path)
        if name is not None and is_builtin_exchange(name):
            continue  # RabbitMQ neither exports nor imports these
        ex = Exchange(
            name=name or "",
            vhost=_vhost_of(r, record, path, scope, vhost),
            type=r.exchange_type(record, path),
            durable=r.flag(record, "durable", path, True),
            auto_delete=r.flag(record, "auto_delete", path, False),
            internal=r.flag(record, "internal", path, False),
            arguments=r.mapping(record, "arguments", path),
        )
        if len(r.problems) == before:
            r.problems.extend(validation.validate_exchange(ex, path))
        nodes.append((path, ex))
        by_name.setdefault(("exchange", ex.vhost, ex.name), ex.id)
        if extra := _extras(record, _EXCHANGE_FIELDS):
            extra_fields[ex.id] = extra

    for index, entry in enumerate(lists["queues"]):
        path = f"queues[{index}]"
        record = r.obj(entry, path)
        if record is None:
            continue
        before = len(r.problems)
        q = Queue(
            name=r.text(record, "name", path) or "",
            vhost=_vhost_of(r, record, path, scope, vhost),
            durable=r.flag(record, "durable", path, True),
            exclusive=r.flag(record, "exclusive", path, False),
            auto_delete=r.flag(record, "auto_delete", path, False),
            arguments=r.mapping(record, "arguments", path),
        )
        if len(r.problems) == before:
            r.problems.extend(validation.validate_queue(q, path))
        nodes.append((path, q))
        by_name.setdefault(("queue", q.vhost, q.name), q.id)
        if extra := _extras(record, _QUEUE_FIELDS):
            extra_fields[q.id] = extra

    builtins: list[Exchange] = []
    bindings: list[tuple[str, Binding]] = []

    def resolve(kind: str, name: str, where: str, path: str) -> str:
        found = by_name.get((kind, where, name))
        if found is not None:
            return found
        if kind == "exchange" and name.startswith("amq."):
            ex = Exchange(name=name, vhost=where, type=BUILTIN_EXCHANGE_TYPES.get(name, ExchangeType.TOPIC))
            ex.internal = name == "amq.rabbitmq.trace"
            builtins.append(ex)
            by_name[(kind, where, name)] = ex.id
            return ex.id
        r.problem(path, f"no {kind} named {name!r} in vhost {where!r} in this file")
        return ""

    for index, entry in enumerate(lists["bindings"]):
        path = f"bindings[{index}]"
        record = r.obj(entry, path)
        if record is None:
            continue
        where = _vhost_of(r, record, path, scope, vhost)
        source_name = r.text(record, "source", path)
        destination_name = r.text(record, "destination", path)
        dest_type = r.choice(record, "destination_type", path, DestinationType, DestinationType.QUEUE)
        if "destination_type" not in record:
            r.problem(join_path(path, "destination_type"), 'is required ("queue" or "exchange")')
        binding = Binding(
            source="",
            destination="",
            routing_key=r.text(record, "routing_key", path, "") or "",
            arguments=r.mapping(record, "arguments", path),
        )
        if source_name == "":
            r.problem(join_path(path, "source"), "bindings from the default exchange are implicit; remove it")
        elif source_name is not None:
            binding.source = resolve("exchange", source_name, where, join_path(path, "source"))
        if destination_name is not None:
            binding.destination = resolve(
                dest_type.value, destination_name, where, join_path(path, "destination")
            )
        if binding.source and binding.destination:
            bindings.append((path, binding))
        if extra := _extras(record, _BINDING_FIELDS):
            extra_fields[binding.id] = extra

    nodes.extend(("(built-in exchange)", ex) for ex in builtins)
    names = {node.id: f"{node.name!r}" for _, node in nodes}
    check_references(r, nodes, bindings, name_of=lambda node_id: names.get(node_id, repr(node_id)))
    if r.problems:
        raise FileFormatError(source, r.problems)

    topology = Topology()
    declared_vhosts = data.get("vhosts") if scope is None else None
    if isinstance(declared_vhosts, list):
        for entry in declared_vhosts:
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and name and name not in topology.vhosts:
                topology.vhosts.append(name)
    if scope is not None and scope not in topology.vhosts:
        topology.vhosts.append(scope)
    for _, node in nodes:
        topology.add_node(node)
    for _, binding in bindings:
        topology.add_binding(binding)
    metadata: dict[str, Any] = {
        METADATA_KEY: {key: copy.deepcopy(value) for key, value in data.items() if key not in _MODELLED},
        IMPORT_KEY: {
            "vhost": scope,
            "builtin_exchanges": [ex.id for ex in builtins],
            "extra_fields": extra_fields,
        },
    }
    return TopologyDocument(topology=topology, layout={}, metadata=metadata, path=None)


# -- export -------------------------------------------------------------------------------------


def _import_info(document: TopologyDocument) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    base = document.metadata.get(METADATA_KEY)
    info = document.metadata.get(IMPORT_KEY)
    info = info if isinstance(info, dict) else {}
    source_vhost = info.get("vhost")
    extras = info.get("extra_fields")
    return (
        copy.deepcopy(base) if isinstance(base, dict) else {},
        source_vhost if isinstance(source_vhost, str) else None,
        extras if isinstance(extras, dict) else {},
    )


def _with_extras(record: dict[str, Any], object_id: str, extras: dict[str, Any]) -> dict[str, Any]:
    extra = extras.get(object_id)
    if isinstance(extra, dict):
        return {**copy.deepcopy(extra), **record}
    return record


def export_definitions(document: TopologyDocument, vhost: str | None = None) -> dict[str, Any]:
    """Definitions JSON for the document's RabbitMQ objects.

    Without `vhost`: the cluster-wide form (every object names its vhost, plus users, vhosts,
    permissions … kept from the import). With `vhost`: the per-vhost form of ``GET
    /api/definitions/{vhost}``: only that vhost's objects and policies/parameters, without ``vhost``
    fields and without the cluster-wide sections. Kafka topics, consumer groups, producers and
    consumers have no place here and are left out; built-in exchanges are never exported.
    """
    topology = document.topology
    out, source_vhost, extras = _import_info(document)

    def scoped(items: Any, belongs: str | None) -> list[Any]:
        """Policies/parameters in the requested form; entries without a vhost belong to `belongs`."""
        result: list[Any] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                result.append(item)
                continue
            owner = item.get("vhost", belongs)
            if vhost is None:
                result.append(item if "vhost" in item or owner is None else {**item, "vhost": owner})
            elif owner == vhost:
                result.append({k: v for k, v in item.items() if k != "vhost"})
        return result

    for key in VHOST_SCOPED_KEYS:
        if key in out:
            out[key] = scoped(out[key], source_vhost)
    if vhost is not None:
        for key in CLUSTER_ONLY_KEYS:
            out.pop(key, None)

    def keep(node_vhost: str) -> bool:
        return vhost is None or node_vhost == vhost

    def with_vhost(record: dict[str, Any], node_vhost: str) -> dict[str, Any]:
        return {"vhost": node_vhost, **record} if vhost is None else record

    exchanges = [
        _with_extras(
            with_vhost(
                {
                    "name": ex.name,
                    "type": str(ex.type),
                    "durable": ex.durable,
                    "auto_delete": ex.auto_delete,
                    "internal": ex.internal,
                    "arguments": copy.deepcopy(ex.arguments),
                },
                ex.vhost,
            ),
            ex.id,
            extras,
        )
        for ex in topology.exchanges
        if keep(ex.vhost) and not is_builtin_exchange(ex.name)
    ]
    queues = []
    for q in topology.queues:
        if not keep(q.vhost):
            continue
        record: dict[str, Any] = {"name": q.name, "durable": q.durable, "auto_delete": q.auto_delete}
        if q.exclusive:
            record["exclusive"] = True
        record["arguments"] = copy.deepcopy(q.arguments)
        queues.append(_with_extras(with_vhost(record, q.vhost), q.id, extras))
    bindings = []
    for b in topology.bindings:
        src, dst = topology.get(b.source), topology.get(b.destination)
        if not isinstance(src, Exchange) or not isinstance(dst, Exchange | Queue) or not keep(src.vhost):
            continue
        record = {
            "source": src.name,
            "destination": dst.name,
            "destination_type": (
                DestinationType.QUEUE if isinstance(dst, Queue) else DestinationType.EXCHANGE
            ).value,
            "routing_key": b.routing_key,
            "arguments": copy.deepcopy(b.arguments),
        }
        bindings.append(_with_extras(with_vhost(record, src.vhost), b.id, extras))

    if vhost is None:
        listed = out.get("vhosts")
        vhost_list: list[Any] = listed if isinstance(listed, list) else []
        known = {entry.get("name") for entry in vhost_list if isinstance(entry, dict)}
        used = [v for v in topology.vhosts if v != DEFAULT_VHOST or source_vhost == DEFAULT_VHOST]
        used += [ex.vhost for ex in topology.exchanges if not is_builtin_exchange(ex.name)]
        used += [q.vhost for q in topology.queues]
        for name in dict.fromkeys(used):
            if name not in known:
                vhost_list.append({"name": name})
                known.add(name)
        if vhost_list or "vhosts" in out:
            out["vhosts"] = vhost_list
    out["exchanges"] = exchanges
    out["queues"] = queues
    out["bindings"] = bindings
    return out
