"""RabbitMQ policies, and the settings they give the queues and exchanges of a design.

Owns: `matching_policy` (which policy RabbitMQ applies to a queue or exchange), `effective_queue`
and `effective_exchange` (copies whose ``arguments`` hold what the broker will actually use),
`document_policies` (the policies of an imported definitions file, each with its vhost) and
`document_default_queue_types` (each vhost's ``default_queue_type`` from the same file). `lint` uses
these so that a DLX or TTL set by policy — the configuration the DLX docs recommend — counts.

Policies are definitions records: ``{"vhost", "name", "pattern", "apply-to", "definition",
"priority"}``. The rules follow RabbitMQ (``rabbit_policy``, ``rabbit_queue_type``,
``rabbit_amqqueue_process``, ``rabbit_quorum_queue``):

* a policy matches when its vhost is the object's, ``re:run(Name, Pattern)`` finds a match (unanchored;
  Python's `re` stands in for PCRE) and ``apply-to`` covers the object: ``all``, ``queues`` or
  ``exchanges``, and since 3.12 ``classic_queues``, ``quorum_queues`` and ``streams``;
* a policy with a key the queue's type does not support (its ``unsupported_policies`` capability) does
  not apply to that queue at all (``rabbit_queue_type:is_policy_applicable``);
* of the matching policies only the one with the highest priority applies (ties: the first listed);
* where a queue argument and the policy both set a key, classic queues take the smaller of the two
  numbers for expires, message-ttl, max-length and max-length-bytes and the argument for the rest;
  quorum queues likewise, except that the policy's overflow wins; streams take the policy's value;
  exchanges take the argument (``rabbit_policy:get_arg``).

Operator policies (a separate, cluster-operator mechanism) are not modelled. Stdlib only; must not
import Qt or anything outside `mqstudio.core`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import DEFAULT_VHOST, Exchange, Queue, QueueType

PolicyRecord = Mapping[str, Any]

_UNSUPPORTED: dict[QueueType, frozenset[str]] = {
    QueueType.CLASSIC: frozenset(
        {
            "max-age",
            "stream-max-segment-size-bytes",
            "initial-cluster-size",
            "delivery-limit",
            "dead-letter-strategy",
            "max-in-memory-length",
            "max-in-memory-bytes",
            "target-group-size",
            "filter-field-names",
        }
    ),
    QueueType.QUORUM: frozenset(
        {
            "max-priority",
            "queue-mode",
            "ha-mode",
            "ha-params",
            "ha-sync-mode",
            "ha-promote-on-shutdown",
            "ha-promote-on-failure",
            "queue-master-locator",
            "max-age",
            "stream-max-segment-size-bytes",
            "initial-cluster-size",
        }
    ),
    QueueType.STREAM: frozenset(
        {
            "expires",
            "message-ttl",
            "dead-letter-exchange",
            "dead-letter-routing-key",
            "max-length",
            "max-in-memory-length",
            "max-in-memory-bytes",
            "max-priority",
            "overflow",
            "queue-mode",
            "single-active-consumer",
            "delivery-limit",
            "ha-mode",
            "ha-params",
            "ha-sync-mode",
            "ha-promote-on-shutdown",
            "ha-promote-on-failure",
            "queue-master-locator",
            "dead-letter-strategy",
            "target-group-size",
        }
    ),
}
_APPLY_TO_QUEUE = {
    QueueType.CLASSIC: "classic_queues",
    QueueType.QUORUM: "quorum_queues",
    QueueType.STREAM: "streams",
}
_MIN_KEYS = frozenset({"expires", "message-ttl", "max-length", "max-length-bytes"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a pattern Python cannot read matches nothing here rather than failing lint


def _well_formed(policy: Any) -> bool:
    return (
        isinstance(policy, Mapping)
        and isinstance(policy.get("pattern"), str)
        and isinstance(policy.get("definition"), Mapping)
    )


def _priority(policy: PolicyRecord) -> int:
    value = policy.get("priority", 0)
    return value if _is_int(value) else 0


def _best(
    policies: Iterable[Any] | None, name: str, vhost: str, applies: Callable[[PolicyRecord], bool]
) -> PolicyRecord | None:
    best: PolicyRecord | None = None
    for policy in policies or ():
        if not _well_formed(policy) or policy.get("vhost", DEFAULT_VHOST) != vhost:
            continue
        compiled = _compiled(policy["pattern"])
        if compiled is None or compiled.search(name) is None or not applies(policy):
            continue
        if best is None or _priority(policy) > _priority(best):
            best = policy
    return best


def matching_policy(obj: Queue | Exchange, policies: Iterable[Any] | None) -> PolicyRecord | None:
    """The policy RabbitMQ applies to `obj`, or None."""
    if isinstance(obj, Exchange):
        return _best(
            policies, obj.name, obj.vhost, lambda p: p.get("apply-to", "all") in ("all", "exchanges")
        )
    qtype = obj.queue_type
    wanted = ("all", "queues", _APPLY_TO_QUEUE[qtype])

    def applies(policy: PolicyRecord) -> bool:
        return policy.get("apply-to", "all") in wanted and not (
            _UNSUPPORTED[qtype] & set(policy["definition"])
        )

    return _best(policies, obj.name, obj.vhost, applies)


def _resolve(qtype: QueueType, key: str, policy_value: Any, argument: Any) -> Any:
    if qtype is QueueType.STREAM:
        return policy_value
    if qtype is QueueType.QUORUM and key == "overflow":
        return policy_value
    if key in _MIN_KEYS and _is_int(policy_value) and _is_int(argument):
        return min(policy_value, argument)
    return argument


def effective_queue(queue: Queue, policies: Iterable[Any] | None) -> tuple[Queue, PolicyRecord | None]:
    """A copy of `queue` (same id) whose arguments are the ones in force, and the policy applied.

    Policy keys become ``x-`` arguments (``dead-letter-exchange`` → ``x-dead-letter-exchange``).
    Without a matching policy the queue itself is returned.
    """
    policy = matching_policy(queue, policies)
    if policy is None:
        return queue, None
    arguments = dict(queue.arguments)
    for key, value in policy["definition"].items():
        if not isinstance(key, str):
            continue
        name = f"x-{key}"
        arguments[name] = (
            _resolve(queue.queue_type, key, value, arguments[name]) if name in arguments else value
        )
    return dataclasses.replace(queue, arguments=arguments), policy


def effective_exchange(
    exchange: Exchange, policies: Iterable[Any] | None
) -> tuple[Exchange, PolicyRecord | None]:
    """A copy of `exchange` with the policy's ``alternate-exchange`` when it has no argument of its own."""
    policy = matching_policy(exchange, policies)
    if policy is None or "alternate-exchange" not in policy["definition"]:
        return exchange, policy
    arguments = dict(exchange.arguments)
    arguments.setdefault("alternate-exchange", policy["definition"]["alternate-exchange"])
    return dataclasses.replace(exchange, arguments=arguments), policy


# -- documents --------------------------------------------------------------------------------------
def _import_vhost(document: TopologyDocument) -> str:
    info = document.metadata.get("definitions_import")
    vhost = info.get("vhost") if isinstance(info, dict) else None
    return vhost if isinstance(vhost, str) and vhost else DEFAULT_VHOST


def _definitions(document: TopologyDocument) -> dict[str, Any]:
    data = document.metadata.get("definitions")
    return data if isinstance(data, dict) else {}


def document_policies(document: TopologyDocument) -> list[dict[str, Any]] | None:
    """The policies kept from an imported definitions file, each with its vhost, or None if there
    are none. A per-vhost export's policies name no vhost: they belong to the vhost it was imported
    into. Pass the result to ``lint(topology, policies=...)``."""
    policies = _definitions(document).get("policies")
    if not isinstance(policies, list):
        return None
    owner = _import_vhost(document)
    return [{"vhost": owner, **p} if "vhost" not in p else dict(p) for p in policies if isinstance(p, dict)]


def document_default_queue_types(document: TopologyDocument) -> dict[str, str]:
    """vhost → ``default_queue_type`` from an imported cluster-wide definitions file (``vhosts[]``
    entries carry it in ``metadata`` and, in newer exports, at the top level too). Pass the result to
    ``plan(..., default_queue_type=...)``; vhosts that do not set one default to classic."""
    out: dict[str, str] = {}
    vhosts = _definitions(document).get("vhosts")
    for entry in vhosts if isinstance(vhosts, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        metadata = entry.get("metadata")
        value = metadata.get("default_queue_type") if isinstance(metadata, dict) else None
        value = entry.get("default_queue_type", value)
        if isinstance(value, str) and value in {t.value for t in QueueType}:
            out[entry["name"]] = value
    return out
