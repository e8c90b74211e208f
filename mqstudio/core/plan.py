"""What applying a design to a live broker would do: `plan(desired, live) → Plan` of ordered steps.

Owns: `Plan`, `Step`, `StepKind`, `BindingRef`. Objects are matched by (vhost, name), never by id (a
live topology fetched from a broker has ids of its own). The rules follow what RabbitMQ and Kafka can
change in place:

* RabbitMQ refuses to redeclare a queue or exchange with other properties (``PRECONDITION_FAILED``), so
  a change of queue arguments (including ``x-queue-type``), durable, exclusive or auto_delete, or of an
  exchange's type, durability, internal flag or arguments becomes a *recreate* step: delete, then
  declare. Deleting a queue deletes its messages, so a queue recreate needs consent and is warned about
  by name; deleting either end of a binding deletes the binding, so bindings touching a recreated object
  are bound again after it.
* Kafka partitions can only grow; a decrease is a warning and no step. The replication factor cannot be
  changed by a topic alteration: a warning, no step.
* Objects only present live are reported in `Plan.unmanaged` and left alone unless ``prune=True``;
  even then exclusive queues are left alone (they belong to a live connection and go with it).
  Bindings between two objects of the design are the design's: one missing from it is unbound.
  A live binding from or to an object outside the design that touches a recreated object goes with
  the delete: it is bound again after the recreate (and listed as left alone), or, with ``prune``,
  listed as an unbind step.
* A queue without ``x-queue-type`` has the vhost's default queue type (``default_queue_type``), so a
  design that leaves the type out does not recreate the quorum queues of a quorum-default vhost.
* Built-in exchanges (``""`` and ``amq.*``) are never created or deleted.
* Producers and consumers are simulated clients, not broker objects: plans ignore them (the traffic
  generator runs them). Kafka consumer groups are likewise not planned.

Order: create exchanges, recreate exchanges, create/recreate queues, Kafka topics, bind; then unbind,
delete queues, delete exchanges, delete topics.

Stdlib only; must not import Qt, the broker, backends or anything outside `mqstudio.core`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from mqstudio.core.model import (
    Binding,
    DestinationType,
    Exchange,
    Queue,
    QueueType,
    Topic,
    Topology,
)


class StepKind(StrEnum):
    CREATE_EXCHANGE = "create_exchange"
    RECREATE_EXCHANGE = "recreate_exchange"
    CREATE_QUEUE = "create_queue"
    RECREATE_QUEUE = "recreate_queue"
    CREATE_TOPIC = "create_topic"
    ALTER_TOPIC_PARTITIONS = "alter_topic_partitions"
    BIND = "bind"
    UNBIND = "unbind"
    DELETE_QUEUE = "delete_queue"
    DELETE_EXCHANGE = "delete_exchange"
    DELETE_TOPIC = "delete_topic"


_ORDER = list(StepKind)
_VERBS = {
    StepKind.CREATE_EXCHANGE: "create",
    StepKind.RECREATE_EXCHANGE: "recreate",
    StepKind.CREATE_QUEUE: "create",
    StepKind.RECREATE_QUEUE: "recreate",
    StepKind.CREATE_TOPIC: "create",
    StepKind.ALTER_TOPIC_PARTITIONS: "add partitions to",
    StepKind.BIND: "bind",
    StepKind.UNBIND: "unbind",
    StepKind.DELETE_QUEUE: "delete",
    StepKind.DELETE_EXCHANGE: "delete",
    StepKind.DELETE_TOPIC: "delete",
}
_N = TypeVar("_N", Exchange, Queue)


def is_builtin_exchange(name: str) -> bool:
    """The default exchange and the ``amq.*`` ones exist in every vhost and cannot be declared."""
    return name == "" or name.startswith("amq.")


@dataclass(frozen=True, slots=True)
class BindingRef:
    """A binding by names, as a broker knows it (ids differ between a design and a live topology)."""

    vhost: str
    source: str
    destination: str
    destination_type: DestinationType
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        args = json.dumps(self.arguments, sort_keys=True, default=str)
        return (
            self.vhost,
            self.source,
            self.destination_type.value,
            self.destination,
            self.routing_key,
            args,
        )

    def __str__(self) -> str:
        key = f" [{self.routing_key}]" if self.routing_key else ""
        args = f" {json.dumps(self.arguments, sort_keys=True, default=str)}" if self.arguments else ""
        return (
            f"{self.source!r} → {self.destination_type.value} {self.destination!r}{key}{args} "
            f"in vhost {self.vhost!r}"
        )


PlanObject = Exchange | Queue | Topic | BindingRef


@dataclass(frozen=True, slots=True)
class Step:
    """One broker operation. `obj` is the desired object (the live one for deletes and unbinds)."""

    kind: StepKind
    target: str
    obj: PlanObject
    destructive: bool = False
    needs_consent: bool = False
    reason: str = ""

    def describe(self) -> str:
        flags = [
            f for f, on in (("destructive", self.destructive), ("needs consent", self.needs_consent)) if on
        ]
        suffix = f" [{', '.join(flags)}]" if flags else ""
        reason = f": {self.reason}" if self.reason else ""
        return f"{_VERBS[self.kind]} {self.target}{reason}{suffix}"


@dataclass(slots=True)
class Plan:
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Objects that exist live but not in the design, left alone because ``prune`` was off.
    unmanaged: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when applying the plan would change nothing."""
        return not self.steps

    @property
    def needs_consent(self) -> bool:
        return any(step.needs_consent for step in self.steps)

    def of_kind(self, kind: StepKind) -> list[Step]:
        return [step for step in self.steps if step.kind == kind]

    def describe(self) -> list[str]:
        """Human lines: each step in order, then warnings, then what was left alone."""
        if self.is_empty and not self.warnings and not self.unmanaged:
            return ["nothing to do: the broker already matches the design"]
        lines = [f"{index}. {step.describe()}" for index, step in enumerate(self.steps, 1)]
        lines += [f"warning: {warning}" for warning in self.warnings]
        lines += [f"not in the design (left alone; prune to delete): {item}" for item in self.unmanaged]
        return lines


# -- comparison helpers -------------------------------------------------------------------------


def _label(obj: Exchange | Queue) -> str:
    return f"{obj.kind.value} {obj.name!r} in vhost {obj.vhost!r}"


def _fmt(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


DefaultQueueType = str | Mapping[str, str]


def _default_type(default_queue_type: DefaultQueueType, vhost: str) -> str:
    if isinstance(default_queue_type, str):
        return default_queue_type
    return default_queue_type.get(vhost, QueueType.CLASSIC.value)


def _queue_arguments(
    queue: Queue, default_queue_type: DefaultQueueType = QueueType.CLASSIC.value
) -> dict[str, Any]:
    """Arguments as compared: a missing ``x-queue-type`` is the vhost's default queue type.

    RabbitMQ (``rabbit_amqqueue:augment_declare_args``) gives a queue declared without x-queue-type
    the vhost's ``default_queue_type`` — and writes it into the queue's arguments — only when that type
    accepts the queue (quorum queues and streams are durable, neither exclusive nor auto-delete);
    otherwise, and when the vhost sets none, it is classic.
    """
    args = dict(queue.arguments)
    default = _default_type(default_queue_type, queue.vhost)
    replicable = queue.durable and not queue.exclusive and not queue.auto_delete
    if default not in (QueueType.QUORUM.value, QueueType.STREAM.value) or not replicable:
        default = QueueType.CLASSIC.value
    args.setdefault("x-queue-type", default)
    return args


def _argument_changes(desired: dict[str, Any], live: dict[str, Any]) -> list[str]:
    changes = []
    for key in sorted(desired.keys() | live.keys()):
        if key not in live:
            changes.append(f"{key} added ({_fmt(desired[key])})")
        elif key not in desired:
            changes.append(f"{key} removed (was {_fmt(live[key])})")
        elif desired[key] != live[key]:
            changes.append(f"{key} {_fmt(live[key])} → {_fmt(desired[key])}")
    return changes


def _field_changes(desired: object, live: object, names: Iterable[str]) -> list[str]:
    return [
        f"{name} {_fmt(getattr(live, name))} → {_fmt(getattr(desired, name))}"
        for name in names
        if getattr(desired, name) != getattr(live, name)
    ]


def _queue_changes(desired: Queue, live: Queue, default_queue_type: DefaultQueueType) -> list[str]:
    changes = _field_changes(desired, live, ("durable", "exclusive", "auto_delete"))
    return changes + _argument_changes(
        _queue_arguments(desired, default_queue_type), _queue_arguments(live, default_queue_type)
    )


def _exchange_changes(desired: Exchange, live: Exchange) -> list[str]:
    changes = []
    if desired.type != live.type:
        changes.append(f"type {live.type} → {desired.type}")
    changes += _field_changes(desired, live, ("durable", "auto_delete", "internal"))
    return changes + _argument_changes(desired.arguments, live.arguments)


def _binding_refs(topology: Topology, vhost: str | None) -> dict[tuple[str, ...], BindingRef]:
    refs: dict[tuple[str, ...], BindingRef] = {}
    for binding in topology.bindings:
        ref = _binding_ref(topology, binding)
        if ref is not None and (vhost is None or ref.vhost == vhost):
            refs.setdefault(ref.key, ref)
    return refs


def _binding_ref(topology: Topology, binding: Binding) -> BindingRef | None:
    source, destination = topology.get(binding.source), topology.get(binding.destination)
    if not isinstance(source, Exchange) or not isinstance(destination, Exchange | Queue):
        return None
    kind = DestinationType.QUEUE if isinstance(destination, Queue) else DestinationType.EXCHANGE
    return BindingRef(
        source.vhost, source.name, destination.name, kind, binding.routing_key, dict(binding.arguments)
    )


def _by_name(nodes: Iterable[_N], vhost: str | None) -> dict[tuple[str, str], _N]:
    return {
        (node.vhost, node.name): node
        for node in sorted(nodes, key=lambda n: (n.vhost, n.name))
        if vhost is None or node.vhost == vhost
    }


# -- the planner --------------------------------------------------------------------------------


def plan(
    desired: Topology,
    live: Topology,
    vhost: str | None = None,
    prune: bool = False,
    default_queue_type: DefaultQueueType = QueueType.CLASSIC.value,
) -> Plan:
    """The steps that make `live` match `desired` (only `vhost` when given; Kafka topics always).

    With ``prune=True`` objects present only live are deleted (queues and topics with consent);
    otherwise they are listed in `Plan.unmanaged`. `default_queue_type` is the type RabbitMQ gives
    queues declared without ``x-queue-type``: one type for every vhost, or vhost → type (vhosts not
    listed: classic), e.g. `policies.document_default_queue_types` of an imported definitions file.
    """
    result = Plan()
    steps: list[Step] = []
    want_ex = {k: v for k, v in _by_name(desired.exchanges, vhost).items() if not is_builtin_exchange(k[1])}
    have_ex = {k: v for k, v in _by_name(live.exchanges, vhost).items() if not is_builtin_exchange(k[1])}
    want_q, have_q = _by_name(desired.queues, vhost), _by_name(live.queues, vhost)
    recreated: set[tuple[str, str, str]] = set()  # (kind, vhost, name) whose live bindings are gone

    for key, ex in want_ex.items():
        old = have_ex.get(key)
        if old is None:
            steps.append(Step(StepKind.CREATE_EXCHANGE, _label(ex), ex, reason="not on the broker"))
            continue
        changes = _exchange_changes(ex, old)
        if changes:
            recreated.add(("exchange", *key))
            what = ", ".join(changes)
            steps.append(Step(StepKind.RECREATE_EXCHANGE, _label(ex), ex, destructive=True, reason=what))
            result.warnings.append(
                f"{_label(ex)} will be deleted and declared again ({what}); its bindings are re-created, "
                "and messages published to it meanwhile are unroutable"
            )

    for key, q in want_q.items():
        old_q = have_q.get(key)
        if old_q is None:
            steps.append(Step(StepKind.CREATE_QUEUE, _label(q), q, reason="not on the broker"))
            continue
        changes = _queue_changes(q, old_q, default_queue_type)
        if changes:
            recreated.add(("queue", *key))
            what = ", ".join(changes)
            steps.append(
                Step(StepKind.RECREATE_QUEUE, _label(q), q, destructive=True, needs_consent=True, reason=what)
            )
            result.warnings.append(
                f"{_label(q)} must be deleted and declared again because RabbitMQ cannot change "
                f"{what} in place: every message in it is lost"
            )

    _plan_topics(desired, live, prune, steps, result)

    def touches_recreated(ref: BindingRef) -> bool:
        return ("exchange", ref.vhost, ref.source) in recreated or (
            ref.destination_type.value,
            ref.vhost,
            ref.destination,
        ) in recreated

    def recreated_label(ref: BindingRef) -> str:
        ends = [("exchange", ref.source), (ref.destination_type.value, ref.destination)]
        names = [f"{kind} {name!r}" for kind, name in ends if (kind, ref.vhost, name) in recreated]
        return " and ".join(names)

    want_b, have_b = _binding_refs(desired, vhost), _binding_refs(live, vhost)
    for ref_key, ref in want_b.items():
        if ref_key not in have_b:
            steps.append(Step(StepKind.BIND, str(ref), ref, reason="not on the broker"))
        elif touches_recreated(ref):
            steps.append(Step(StepKind.BIND, str(ref), ref, reason="re-created with its recreated end"))
    designed = {("exchange", *k) for k in want_ex} | {("queue", *k) for k in want_q}
    designed |= {
        ("exchange", v, n) for (v, n) in _by_name(desired.exchanges, vhost) if is_builtin_exchange(n)
    }
    for ref_key, ref in have_b.items():
        if ref_key in want_b:
            continue
        ends_designed = ("exchange", ref.vhost, ref.source) in designed and (
            ref.destination_type.value,
            ref.vhost,
            ref.destination,
        ) in designed
        if touches_recreated(ref):
            if ends_designed:
                continue  # the design dropped it, and deleting its recreated end deletes it
            # A binding to or from an object outside the design goes with the delete of its recreated
            # end. It is not the design's to drop: bind it again, unless pruning (then say it goes).
            gone = recreated_label(ref)
            if prune:
                reason = f"not in the design; the recreate of {gone} removes it"
                steps.append(Step(StepKind.UNBIND, str(ref), ref, reason=reason))
            else:
                reason = f"not in the design but left alone: bound again after the recreate of {gone}"
                steps.append(Step(StepKind.BIND, str(ref), ref, reason=reason))
                result.unmanaged.append(f"binding {ref} (bound again after the recreate of {gone})")
            continue
        if ends_designed or prune:
            steps.append(Step(StepKind.UNBIND, str(ref), ref, reason="not in the design"))
        else:
            result.unmanaged.append(f"binding {ref}")

    for name_key, old_q in have_q.items():
        if name_key in want_q:
            continue
        if prune and not old_q.exclusive:
            steps.append(
                Step(
                    StepKind.DELETE_QUEUE,
                    _label(old_q),
                    old_q,
                    destructive=True,
                    needs_consent=True,
                    reason="not in the design; its messages are lost",
                )
            )
        else:
            result.unmanaged.append(_label(old_q))
    for name_key, old in have_ex.items():
        if name_key in want_ex:
            continue
        if prune:
            steps.append(
                Step(StepKind.DELETE_EXCHANGE, _label(old), old, destructive=True, reason="not in the design")
            )
        else:
            result.unmanaged.append(_label(old))

    result.steps = sorted(steps, key=lambda step: _ORDER.index(step.kind))  # stable within a kind
    return result


def _plan_topics(desired: Topology, live: Topology, prune: bool, steps: list[Step], result: Plan) -> None:
    want = {t.name: t for t in sorted(desired.topics, key=lambda t: t.name)}
    have = {t.name: t for t in sorted(live.topics, key=lambda t: t.name)}
    for name, topic in want.items():
        label = f"topic {name!r}"
        old = have.get(name)
        if old is None:
            reason = (
                f"not on the broker ({topic.partitions} partitions, replication {topic.replication_factor})"
            )
            steps.append(Step(StepKind.CREATE_TOPIC, label, topic, reason=reason))
            continue
        if topic.partitions > old.partitions:
            steps.append(
                Step(
                    StepKind.ALTER_TOPIC_PARTITIONS,
                    label,
                    topic,
                    reason=f"partitions {old.partitions} → {topic.partitions}",
                )
            )
        elif topic.partitions < old.partitions:
            result.warnings.append(
                f"{label} has {old.partitions} partitions live and {topic.partitions} in the design: Kafka "
                "can only add partitions, so it is left at "
                f"{old.partitions} (delete and recreate the topic by hand to shrink it, losing its data)"
            )
        if topic.replication_factor != old.replication_factor:
            result.warnings.append(
                f"{label} has replication factor {old.replication_factor} live and "
                f"{topic.replication_factor} in the design: changing it needs a partition reassignment, "
                "which mqstudio does not do; left unchanged"
            )
        changed = sorted(
            k for k in topic.configs.keys() | old.configs.keys() if topic.configs.get(k) != old.configs.get(k)
        )
        if changed:
            result.warnings.append(f"{label}: config changes are not applied ({', '.join(changed)})")
    for name, old in have.items():
        if name in want:
            continue
        label = f"topic {name!r}"
        if prune:
            steps.append(
                Step(
                    StepKind.DELETE_TOPIC,
                    label,
                    old,
                    destructive=True,
                    needs_consent=True,
                    reason="not in the design; its records are lost",
                )
            )
        else:
            result.unmanaged.append(label)
