"""The versioned project file (``*.mqs.json``): read it whole or refuse it whole, write it atomically.

Owns: the ``mqstudio/1`` JSON layout, `dumps`/`loads`/`load`/`save`, and `RecordReader`, the
field-by-field type checker that `definitions.py` shares. Loading is a pipeline that never builds a
half document: JSON parse (line and column on error) → records (type checks per field, each problem
with its path such as ``topology.queues[2].arguments``) → value validation (`validation.py`, paths
prefixed) → referential checks (binding ends exist, ids unique, names unique per vhost) → build.
Any problem raises `FileFormatError` listing every problem found, and nothing is built.

File shape::

    {"format": "mqstudio/1",
     "metadata": {...},
     "topology": {"vhosts": [...], "exchanges": [...], "queues": [...], "bindings": [...],
                  "topics": [...], "consumer_groups": [...], "producers": [...], "consumers": [...]},
     "layout": {"<node id>": [x, y]}}

``producers`` and ``consumers`` (simulated clients) are optional: files without them load, and they
are written only when the design has clients, so client-free files stay byte-identical to (and
readable by) earlier releases. A producer's ``target`` / consumer's ``source`` is a node id or "".

Stdlib only; must not import Qt, the broker, backends or anything outside `mqstudio.core`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mqstudio.core import validation
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import FileFormatError, Problem
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Node,
    Producer,
    Queue,
    Topic,
    Topology,
    exchange_type,
)

FORMAT = "mqstudio/1"
FORMAT_PREFIX = "mqstudio/"
SUPPORTED_VERSIONS = (1,)
PROJECT_SUFFIXES = (".mqs.json", ".mqstudio.json")

_E = TypeVar("_E")


# -- JSON ---------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str | bytes, source: str = "<string>") -> Any:
    """Parse JSON text, or raise `FileFormatError` with the line and column of the first error."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FileFormatError(source, [Problem("", f"not UTF-8 text (byte {exc.start})")]) from None
    text = text.removeprefix("\ufeff")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise FileFormatError(source, [Problem("", message)]) from None
    except ValueError as exc:  # NaN / Infinity
        raise FileFormatError(source, [Problem("", f"not valid JSON: {exc}")]) from None


# -- typed field access -------------------------------------------------------------------------

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    dict: "an object",
    list: "a list",
}


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def join_path(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


class RecordReader:
    """Reads fields out of untrusted JSON objects, collecting a `Problem` for every bad one.

    Each accessor returns the value when it has the right type, or the default (recording a problem
    when the field was required or had the wrong type), so one pass reports everything.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def _typed(self, value: Any, expected: type, path: str) -> bool:
        ok = isinstance(value, expected)
        if expected is int and isinstance(value, bool):
            ok = False
        if expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            self.problem(path, f"must be {_TYPE_NAMES[expected]}, not {json_type_name(value)}")
        return ok

    def obj(self, value: Any, path: str) -> dict[str, Any] | None:
        return value if self._typed(value, dict, path) else None

    def items(self, record: Mapping[str, Any], key: str, path: str, required: bool = False) -> list[Any]:
        if key not in record:
            if required:
                self.problem(join_path(path, key), "is required")
            return []
        value = record[key]
        return value if self._typed(value, list, join_path(path, key)) else []

    def text(
        self,
        record: Mapping[str, Any],
        key: str,
        path: str,
        default: str | None = None,
        allow_empty: bool = True,
    ) -> str | None:
        if key not in record:
            if default is None:
                self.problem(join_path(path, key), "is required")
            return default
        value = record[key]
        if not self._typed(value, str, join_path(path, key)):
            return None
        if not allow_empty and not value:
            self.problem(join_path(path, key), "must not be empty")
            return None
        return str(value)

    def flag(self, record: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        if key not in record:
            return default
        value = record[key]
        return bool(value) if self._typed(value, bool, join_path(path, key)) else default

    def integer(self, record: Mapping[str, Any], key: str, path: str, default: int) -> int:
        if key not in record:
            return default
        value = record[key]
        return int(value) if self._typed(value, int, join_path(path, key)) else default

    def number(self, record: Mapping[str, Any], key: str, path: str, default: float) -> float:
        """An optional JSON number (integer or not), as a float."""
        if key not in record:
            return default
        value = record[key]
        return float(value) if self._typed(value, float, join_path(path, key)) else default

    def mapping(self, record: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        """An optional JSON object field (``arguments``); ``null`` counts as empty, as RabbitMQ does."""
        if key not in record or record[key] is None:
            return {}
        value = record[key]
        return dict(value) if self._typed(value, dict, join_path(path, key)) else {}

    def choice(
        self, record: Mapping[str, Any], key: str, path: str, enum: Callable[[str], _E], default: _E
    ) -> _E:
        if key not in record:
            return default
        value = record[key]
        where = join_path(path, key)
        if not self._typed(value, str, where):
            return default
        try:
            return enum(value)
        except ValueError:
            choices = ", ".join(repr(str(member)) for member in enum)  # type: ignore[attr-defined]
            self.problem(where, f"unknown value {value!r}; expected one of {choices}")
            return default

    def exchange_type(self, record: Mapping[str, Any], path: str) -> ExchangeType | str:
        """``type`` of an exchange record: any non-empty string (plugin types are kept), direct if absent."""
        value = self.text(record, "type", path, ExchangeType.DIRECT.value, allow_empty=False)
        return exchange_type(value) if value is not None else ExchangeType.DIRECT

    def unknown_keys(self, record: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
        for key in record:
            if key not in allowed:
                self.problem(join_path(path, key), "unknown field (misspelt, or from a newer mqstudio?)")


def node_vhost(node: Node) -> str:
    return node.vhost if isinstance(node, Exchange | Queue) else DEFAULT_VHOST


def check_references(
    reader: RecordReader,
    nodes: list[tuple[str, Node]],
    bindings: list[tuple[str, Binding]],
    name_of: Callable[[str], str] | None = None,
) -> None:
    """Ids unique, names unique per kind and vhost, binding ends exist with the right kinds and in one
    vhost, and each binding's arguments valid for its source exchange. A binding declared twice is
    not refused: RabbitMQ keeps one, and `validation.lint` warns about it."""
    by_id: dict[str, Node] = {}
    seen_ids: dict[str, str] = {}
    seen_names: dict[tuple[str, str, str], str] = {}
    for path, node in nodes:
        if node.id in seen_ids:
            reader.problem(join_path(path, "id"), f"id {node.id!r} is already used by {seen_ids[node.id]}")
        else:
            seen_ids[node.id] = path
            by_id[node.id] = node
        key = (node.kind.value, node_vhost(node), node.name)
        if key in seen_names:
            where = f" in vhost {key[1]!r}" if isinstance(node, Exchange | Queue) else ""
            reader.problem(
                join_path(path, "name"),
                f"a {node.kind.value.replace('_', ' ')} named {node.name!r} already exists{where} "
                f"({seen_names[key]})",
            )
        else:
            seen_names[key] = path
    for path, node in nodes:
        if isinstance(node, ConsumerGroup):
            for index, topic_id in enumerate(node.topics):
                if not isinstance(by_id.get(topic_id), Topic):
                    reader.problem(
                        join_path(join_path(path, "topics"), index), f"no topic with id {topic_id!r}"
                    )
    for path, node in nodes:
        if isinstance(node, Producer | Consumer):
            _check_client_reference(reader, path, node, by_id)
    for path, binding in bindings:
        if binding.id in seen_ids:
            reader.problem(
                join_path(path, "id"), f"id {binding.id!r} is already used by {seen_ids[binding.id]}"
            )
        else:
            seen_ids[binding.id] = path
        source = by_id.get(binding.source)
        destination = by_id.get(binding.destination)
        label = name_of or repr
        if source is None:
            reader.problem(join_path(path, "source"), f"no exchange {label(binding.source)}")
        elif not isinstance(source, Exchange):
            reader.problem(
                join_path(path, "source"), f"the source must be an exchange, not a {source.kind.value}"
            )
        if destination is None:
            reader.problem(join_path(path, "destination"), f"nothing named {label(binding.destination)}")
        elif not isinstance(destination, Exchange | Queue):
            reader.problem(
                join_path(path, "destination"),
                f"the destination must be a queue or exchange, not a {destination.kind.value}",
            )
        if isinstance(source, Exchange) and isinstance(destination, Exchange | Queue):
            if source.vhost != destination.vhost:
                reader.problem(path, f"binds across vhosts ({source.vhost!r} → {destination.vhost!r})")
            reader.problems.extend(validation.validate_binding_args(binding, source, path))


def _check_client_reference(
    reader: RecordReader, path: str, node: Producer | Consumer, by_id: Mapping[str, Node]
) -> None:
    """A producer's target is an exchange or topic, a consumer's source a queue or group ("" is unset)."""
    kinds: tuple[type, ...]
    if isinstance(node, Producer):
        field, ref, kinds, wanted = "target", node.target, (Exchange, Topic), "an exchange or a topic"
    else:
        field, ref, kinds, wanted = (
            "source",
            node.source,
            (Queue, ConsumerGroup),
            "a queue or a consumer group",
        )
    if not ref:
        return
    other = by_id.get(ref)
    where = join_path(path, field)
    if other is None:
        reader.problem(where, f"no node with id {ref!r} (the {field} must be {wanted})")
    elif not isinstance(other, kinds):
        kind = other.kind.value.replace("_", " ")
        reader.problem(where, f"the {field} must be {wanted}, not {other.name!r} (a {kind})")


# -- records → objects --------------------------------------------------------------------------

_EXCHANGE_KEYS = frozenset({"id", "name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"})
_QUEUE_KEYS = frozenset({"id", "name", "vhost", "durable", "exclusive", "auto_delete", "arguments"})
_BINDING_KEYS = frozenset({"id", "source", "destination", "routing_key", "arguments"})
_TOPIC_KEYS = frozenset({"id", "name", "partitions", "replication_factor", "configs"})
_GROUP_KEYS = frozenset({"id", "name", "topics"})
_PRODUCER_KEYS = frozenset(
    {"id", "name", "target", "routing_key", "rate", "headers", "payload", "priority", "ttl_ms"}
)
_CONSUMER_KEYS = frozenset(
    {"id", "name", "source", "prefetch", "processing_ms", "failure_rate", "requeue_rate"}
)
_TOPOLOGY_KEYS = frozenset(
    {"vhosts", "exchanges", "queues", "bindings", "topics", "consumer_groups", "producers", "consumers"}
)
_TOP_KEYS = frozenset({"format", "metadata", "topology", "layout"})


def _read_exchange(r: RecordReader, rec: dict[str, Any], path: str) -> Exchange | None:
    before = len(r.problems)
    r.unknown_keys(rec, _EXCHANGE_KEYS, path)
    ex = Exchange(
        name=r.text(rec, "name", path) or "",
        type=r.exchange_type(rec, path),
        vhost=r.text(rec, "vhost", path, DEFAULT_VHOST, allow_empty=False) or DEFAULT_VHOST,
        durable=r.flag(rec, "durable", path, True),
        auto_delete=r.flag(rec, "auto_delete", path, False),
        internal=r.flag(rec, "internal", path, False),
        arguments=r.mapping(rec, "arguments", path),
        id=r.text(rec, "id", path, allow_empty=False) or "",
    )
    if len(r.problems) == before:
        r.problems.extend(validation.validate_exchange(ex, path))
    return ex


def _read_queue(r: RecordReader, rec: dict[str, Any], path: str) -> Queue | None:
    before = len(r.problems)
    r.unknown_keys(rec, _QUEUE_KEYS, path)
    q = Queue(
        name=r.text(rec, "name", path) or "",
        vhost=r.text(rec, "vhost", path, DEFAULT_VHOST, allow_empty=False) or DEFAULT_VHOST,
        durable=r.flag(rec, "durable", path, True),
        exclusive=r.flag(rec, "exclusive", path, False),
        auto_delete=r.flag(rec, "auto_delete", path, False),
        arguments=r.mapping(rec, "arguments", path),
        id=r.text(rec, "id", path, allow_empty=False) or "",
    )
    if len(r.problems) == before:
        r.problems.extend(validation.validate_queue(q, path))
    return q


def _read_topic(r: RecordReader, rec: dict[str, Any], path: str) -> Topic | None:
    before = len(r.problems)
    r.unknown_keys(rec, _TOPIC_KEYS, path)
    configs = r.mapping(rec, "configs", path)
    for key, value in configs.items():
        if not isinstance(value, str):
            r.problem(
                join_path(join_path(path, "configs"), key), f"must be a string, not {json_type_name(value)}"
            )
    t = Topic(
        name=r.text(rec, "name", path) or "",
        partitions=r.integer(rec, "partitions", path, 1),
        replication_factor=r.integer(rec, "replication_factor", path, 1),
        configs={k: v for k, v in configs.items() if isinstance(v, str)},
        id=r.text(rec, "id", path, allow_empty=False) or "",
    )
    if len(r.problems) == before:
        r.problems.extend(validation.validate_topic(t, path))
    return t


def _read_group(r: RecordReader, rec: dict[str, Any], path: str) -> ConsumerGroup | None:
    before = len(r.problems)
    r.unknown_keys(rec, _GROUP_KEYS, path)
    topics: list[str] = []
    for index, value in enumerate(r.items(rec, "topics", path)):
        if isinstance(value, str):
            topics.append(value)
        else:
            r.problem(
                join_path(join_path(path, "topics"), index),
                f"must be a topic id, not {json_type_name(value)}",
            )
    g = ConsumerGroup(
        name=r.text(rec, "name", path) or "",
        topics=topics,
        id=r.text(rec, "id", path, allow_empty=False) or "",
    )
    if len(r.problems) == before:
        r.problems.extend(validation.validate_consumer_group(g, path))
    return g


def _optional_int(r: RecordReader, rec: dict[str, Any], key: str, path: str) -> int | None:
    """An optional integer field; absent or ``null`` is None (unset)."""
    if rec.get(key) is None:
        return None
    return r.integer(rec, key, path, 0)


def _read_producer(r: RecordReader, rec: dict[str, Any], path: str) -> Producer | None:
    before = len(r.problems)
    r.unknown_keys(rec, _PRODUCER_KEYS, path)
    p = Producer(
        name=r.text(rec, "name", path) or "",
        target=r.text(rec, "target", path, "") or "",
        routing_key=r.text(rec, "routing_key", path, "") or "",
        rate=r.number(rec, "rate", path, 1.0),
        headers=r.mapping(rec, "headers", path),
        payload=r.text(rec, "payload", path, "") or "",
        priority=_optional_int(r, rec, "priority", path),
        ttl_ms=_optional_int(r, rec, "ttl_ms", path),
        id=r.text(rec, "id", path, allow_empty=False) or "",
    )
    if len(r.problems) == before:
        r.problems.extend(validation.validate_producer(p, path))
    return p


def _read_consumer(r: RecordReader, rec: dict[str, Any], path: str) -> Consumer | None:
    before = len(r.problems)
    r.unknown_keys(rec, _CONSUMER_KEYS, path)
    c = Consumer(
        name=r.text(rec, "name", path) or "",
        source=r.text(rec, "source", path, "") or "",
        prefetch=r.integer(rec, "prefetch", path, 10),
        processing_ms=r.integer(rec, "processing_ms", path, 0),
        failure_rate=r.number(rec, "failure_rate", path, 0.0),
        requeue_rate=r.number(rec, "requeue_rate", path, 0.0),
        id=r.text(rec, "id", path, allow_empty=False) or "",
    )
    if len(r.problems) == before:
        r.problems.extend(validation.validate_consumer(c, path))
    return c


def _read_binding(r: RecordReader, rec: dict[str, Any], path: str) -> Binding:
    r.unknown_keys(rec, _BINDING_KEYS, path)
    return Binding(
        source=r.text(rec, "source", path, allow_empty=False) or "",
        destination=r.text(rec, "destination", path, allow_empty=False) or "",
        routing_key=r.text(rec, "routing_key", path, "") or "",
        arguments=r.mapping(rec, "arguments", path),
        id=r.text(rec, "id", path, allow_empty=False) or "",
    )


def _read_layout(r: RecordReader, value: Any, node_ids: set[str]) -> dict[str, tuple[float, float]]:
    layout: dict[str, tuple[float, float]] = {}
    if value is None:
        return layout
    record = r.obj(value, "layout")
    if record is None:
        return layout
    for node_id, point in record.items():
        path = f"layout.{node_id}"
        if node_id not in node_ids:
            r.problem(path, f"no node with id {node_id!r}")
            continue
        ok = (
            isinstance(point, list)
            and len(point) == 2
            and all(
                isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in point
            )
        )
        if not ok:
            r.problem(path, f"must be a position [x, y] of two numbers, not {json.dumps(point)}")
            continue
        layout[node_id] = (float(point[0]), float(point[1]))
    return layout


def check_format(data: Any, source: str) -> None:
    """Refuse, with a useful message, anything that is not an ``mqstudio/<version we read>`` file."""
    if not isinstance(data, dict) or "format" not in data:
        raise FileFormatError(
            source,
            [Problem("format", 'missing: this is not an mqstudio project (expected "format": "mqstudio/1")')],
        )
    fmt = data["format"]
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise FileFormatError(source, [Problem("format", f"{fmt!r} is not an mqstudio project format")])
    version = fmt.removeprefix(FORMAT_PREFIX)
    if not version.isdigit():
        raise FileFormatError(source, [Problem("format", f"{fmt!r} is not an mqstudio project format")])
    if int(version) not in SUPPORTED_VERSIONS:
        newer = int(version) > max(SUPPORTED_VERSIONS)
        hint = "it was written by a newer mqstudio; upgrade mqstudio to open it" if newer else "unsupported"
        raise FileFormatError(source, [Problem("format", f"{fmt!r}: {hint} (this version reads {FORMAT})")])


def from_data(
    data: Any, source: str = "<string>", path: str | os.PathLike[str] | None = None
) -> TopologyDocument:
    """Build a document from parsed project JSON, or raise `FileFormatError` listing every problem."""
    check_format(data, source)
    r = RecordReader()
    r.unknown_keys(data, _TOP_KEYS, "")
    metadata: dict[str, Any] = {}
    if data.get("metadata") is not None:
        metadata = r.obj(data["metadata"], "metadata") or {}
    top = r.obj(data.get("topology", {}), "topology") or {}
    r.unknown_keys(top, _TOPOLOGY_KEYS, "topology")

    vhosts: list[str] = []
    for index, value in enumerate(r.items(top, "vhosts", "topology")):
        if isinstance(value, str) and value:
            if value not in vhosts:
                vhosts.append(value)
        else:
            r.problem(f"topology.vhosts[{index}]", "must be a non-empty vhost name")

    nodes: list[tuple[str, Node]] = []
    readers: list[tuple[str, Callable[[RecordReader, dict[str, Any], str], Node | None]]] = [
        ("exchanges", _read_exchange),
        ("queues", _read_queue),
        ("topics", _read_topic),
        ("consumer_groups", _read_group),
        ("producers", _read_producer),
        ("consumers", _read_consumer),
    ]
    for key, read in readers:
        for index, value in enumerate(r.items(top, key, "topology")):
            where = f"topology.{key}[{index}]"
            record = r.obj(value, where)
            if record is not None:
                node = read(r, record, where)
                if node is not None:
                    nodes.append((where, node))
    bindings: list[tuple[str, Binding]] = []
    for index, value in enumerate(r.items(top, "bindings", "topology")):
        where = f"topology.bindings[{index}]"
        record = r.obj(value, where)
        if record is not None:
            bindings.append((where, _read_binding(r, record, where)))
    check_references(r, nodes, bindings)
    layout = _read_layout(r, data.get("layout"), {node.id for _, node in nodes})
    if r.problems:
        raise FileFormatError(source, r.problems)

    topology = Topology()
    for vhost in vhosts:
        if vhost not in topology.vhosts:
            topology.vhosts.append(vhost)
    for _, node in nodes:
        topology.add_node(node)
    for _, binding in bindings:
        topology.add_binding(binding)
    return TopologyDocument(
        topology=topology,
        layout=layout,
        metadata=metadata,
        path=Path(path) if path is not None else None,
    )


def loads(text: str | bytes, source: str = "<string>") -> TopologyDocument:
    """Parse a project file's text into a document; `FileFormatError` lists every problem."""
    return from_data(parse_json(text, source), source)


def load(path: str | os.PathLike[str]) -> TopologyDocument:
    """Read a project file. `OSError` when it cannot be read; `FileFormatError` when it is refused."""
    file_path = Path(path)
    document = from_data(parse_json(file_path.read_bytes(), str(file_path)), str(file_path), file_path)
    return document


# -- objects → JSON -----------------------------------------------------------------------------


def _node_sort_key(node: Node) -> tuple[str, str, str]:
    return (node_vhost(node), node.name, node.id)


def _producer_record(p: Producer) -> dict[str, Any]:
    """A producer's record; the per-node message fields only when set, so older files stay byte-identical."""
    record: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "target": p.target,
        "routing_key": p.routing_key,
        "rate": float(p.rate),
        "headers": dict(p.headers),
    }
    if p.payload:
        record["payload"] = p.payload
    if p.priority is not None:
        record["priority"] = p.priority
    if p.ttl_ms is not None:
        record["ttl_ms"] = p.ttl_ms
    return record


def _consumer_record(c: Consumer) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": c.id,
        "name": c.name,
        "source": c.source,
        "prefetch": c.prefetch,
        "processing_ms": c.processing_ms,
        "failure_rate": float(c.failure_rate),
    }
    if c.requeue_rate:
        record["requeue_rate"] = float(c.requeue_rate)
    return record


def to_data(document: TopologyDocument) -> dict[str, Any]:
    """The project JSON value of a document (plain dicts and lists, ready for `json.dumps`)."""
    topology = document.topology
    exchanges = [
        {
            "id": ex.id,
            "name": ex.name,
            "vhost": ex.vhost,
            "type": str(ex.type),
            "durable": ex.durable,
            "auto_delete": ex.auto_delete,
            "internal": ex.internal,
            "arguments": dict(ex.arguments),
        }
        for ex in sorted(topology.exchanges, key=_node_sort_key)
    ]
    queues = [
        {
            "id": q.id,
            "name": q.name,
            "vhost": q.vhost,
            "durable": q.durable,
            "exclusive": q.exclusive,
            "auto_delete": q.auto_delete,
            "arguments": dict(q.arguments),
        }
        for q in sorted(topology.queues, key=_node_sort_key)
    ]
    bindings = [
        {
            "id": b.id,
            "source": b.source,
            "destination": b.destination,
            "routing_key": b.routing_key,
            "arguments": dict(b.arguments),
        }
        for b in topology.bindings
    ]
    topics = [
        {
            "id": t.id,
            "name": t.name,
            "partitions": t.partitions,
            "replication_factor": t.replication_factor,
            "configs": dict(t.configs),
        }
        for t in sorted(topology.topics, key=_node_sort_key)
    ]
    groups = [
        {"id": g.id, "name": g.name, "topics": list(g.topics)}
        for g in sorted(topology.consumer_groups, key=_node_sort_key)
    ]
    producers = [_producer_record(p) for p in sorted(topology.producers, key=_node_sort_key)]
    consumers = [_consumer_record(c) for c in sorted(topology.consumers, key=_node_sort_key)]
    clients: dict[str, Any] = {}
    if producers:  # omitted when empty: see the module docstring
        clients["producers"] = producers
    if consumers:
        clients["consumers"] = consumers
    node_ids = {node.id for node in topology.nodes}
    layout = {
        node_id: [float(x), float(y)]
        for node_id, (x, y) in sorted(document.layout.items())
        if node_id in node_ids
    }
    return {
        "format": FORMAT,
        "metadata": dict(document.metadata),
        "topology": {
            "vhosts": list(topology.vhosts),
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
            "topics": topics,
            "consumer_groups": groups,
            **clients,
        },
        "layout": layout,
    }


def dumps(document: TopologyDocument) -> str:
    """Stable text: sorted keys, nodes sorted by (vhost, name), indent 2, trailing newline."""
    return json.dumps(to_data(document), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then `os.replace` it into place,
    so a crash or a full disk leaves either the old file or the new one, never half of one."""
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def save(document: TopologyDocument, path: str | os.PathLike[str] | None = None) -> Path:
    """Write the document atomically to `path` (or its own `.path`); returns the path written.

    The document's path and dirty flag are left to the caller (``document.mark_clean(path)``, or the
    undo stack's clean state), which knows whether this was a Save, a Save As or an export copy.
    """
    target = Path(path) if path is not None else document.path
    if target is None:
        raise ValueError("the document has no path yet; pass one to save()")
    write_text_atomic(target, dumps(document))
    return Path(target)
