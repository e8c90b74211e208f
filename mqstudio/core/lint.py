"""The design linter: designs RabbitMQ (or the traffic generator) accepts but that lose messages.

Owns: `lint(topology, policies)` → `Finding`s (the documented DLX, TTL and overflow traps, dead-letter
cycles, dangling Kafka subscriptions, producers/consumers wired to nothing, exchange types it cannot
route), `LINT_RULES` (every code with its severity and message), `topic_matches` (word-by-word AMQP
topic matching used to follow routes), and `BUILTIN_EXCHANGES`. `validation.py` re-exports the public
names. Must not import Qt or anything outside the stdlib and `mqstudio.core` (`model`, `policies`).

Policies: RabbitMQ's DLX docs recommend setting dead-lettering, TTL and length limits by policy. With
``policies`` (definitions policy records, see `policies.document_policies`) the rules about those
settings use each queue's effective values (`policies.effective_queue`), so a DLX that comes from a
policy counts, and findings say which policy set a value.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mqstudio.core.model import (
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Overflow,
    Producer,
    Queue,
    QueueType,
    Topic,
    Topology,
    is_known_type,
)
from mqstudio.core.policies import PolicyRecord, effective_exchange, effective_queue

# Exchanges every vhost has: designs may show them (to bind from) although `amq.` is reserved.
BUILTIN_EXCHANGES = frozenset(
    {"amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace"}
)


# -- topic routing --------------------------------------------------------------------------------
def _words(key: str) -> list[str]:
    # RabbitMQ splits "" into zero words (so "#" matches it and "*" does not).
    return key.split(".") if key else []


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching word by word: ``*`` is exactly one word, ``#`` zero or more words."""
    pwords, kwords = _words(pattern), _words(key)
    # reachable[j]: the pattern prefix seen so far can consume exactly the first j words of the key
    reachable = [True] + [False] * len(kwords)
    for word in pwords:
        nxt = [False] * (len(kwords) + 1)
        if word == "#":
            seen = False
            for j in range(len(kwords) + 1):
                seen = seen or reachable[j]
                nxt[j] = seen
        else:
            for j in range(len(kwords)):
                if reachable[j] and (word == "*" or word == kwords[j]):
                    nxt[j + 1] = True
        reachable = nxt
    return reachable[len(kwords)]


# -- lint -----------------------------------------------------------------------------------------
class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    object_id: str
    code: str
    message: str


# Every lint code: its severity and a message saying why it matters and how to fix it.
LINT_RULES: dict[str, tuple[Severity, str]] = {
    "dlx-missing": (
        Severity.ERROR,
        "{label} dead-letters to exchange {name!r}{via}, which does not exist in vhost {vhost!r}: RabbitMQ "
        "silently drops rejected and expired messages. Add the exchange or fix the name.",
    ),
    "dead-letter-cycle": (
        Severity.ERROR,
        "dead-letter cycle {path}: every queue on it dead-letters by TTL or length limit, so messages go "
        "round without a consumer rejecting them and RabbitMQ drops them on the second visit. Break the "
        "cycle, or set a dead-letter routing key that leads out of it.",
    ),
    "delayed-type-missing": (
        Severity.ERROR,
        "{label} is an x-delayed-message exchange without x-delayed-type, so RabbitMQ refuses to declare "
        "it. Set x-delayed-type to direct, fanout, topic or headers.",
    ),
    "quorum-max-priority": (
        Severity.ERROR,
        "{label} is a quorum queue with x-max-priority, which RabbitMQ refuses to declare. Remove "
        "x-max-priority (quorum queues have two built-in priorities) or use a classic queue.",
    ),
    "quorum-reject-publish-dlx": (
        Severity.ERROR,
        "{label} is a quorum queue with x-overflow reject-publish-dlx, which quorum queues do not support. "
        "Use reject-publish (publishers get a nack) or drop-head with a DLX.",
    ),
    "group-topic-missing": (
        Severity.ERROR,
        "{label} subscribes to {name!r}, which is not a topic of this design; remove the subscription "
        "or add the topic.",
    ),
    "alternate-exchange-missing": (
        Severity.WARNING,
        "{label} names alternate-exchange {name!r}{via}, which does not exist in vhost {vhost!r}: unroutable "
        "messages are silently dropped. Add that exchange or fix the name.",
    ),
    "exchange-unbound": (
        Severity.WARNING,
        "{label} has no bindings, so every message published to it is dropped (or returned if published "
        "as mandatory). Bind a queue to it or set an alternate-exchange.",
    ),
    "dead-letter-strategy-fallback": (
        Severity.WARNING,
        "{label} asks for at-least-once dead-lettering, but its overflow is {overflow}{via}, not "
        "reject-publish, so RabbitMQ falls back to at-most-once and dead-lettered messages can be lost. "
        "Set overflow reject-publish on the queue (x-overflow) or in its policy.",
    ),
    "ttl-without-dlx": (
        Severity.WARNING,
        "{label} has a message TTL{via} but no dead-letter exchange: expired messages vanish without a "
        "trace. Set x-dead-letter-exchange (or dead-letter-exchange in a policy) to keep them.",
    ),
    "duplicate-binding": (
        Severity.WARNING,
        "{label} is declared twice; RabbitMQ keeps one, so the copy does nothing. Delete one of them.",
    ),
    "producer-target-missing": (
        Severity.WARNING,
        "{label} {reason}, so the traffic generator has nowhere to publish its messages. Connect it to an "
        "exchange (RabbitMQ) or a topic (Kafka).",
    ),
    "consumer-source-missing": (
        Severity.WARNING,
        "{label} {reason}, so the traffic generator has nothing for it to consume. Connect it to a queue "
        "(RabbitMQ) or a consumer group (Kafka).",
    ),
    "consumer-rejects-dropped": (
        Severity.INFO,
        "{label} rejects {percent} of its deliveries, but {queue} has no dead-letter exchange: RabbitMQ "
        "drops rejected messages without a trace. Set x-dead-letter-exchange on the queue to keep them.",
    ),
    "exchange-type-not-simulated": (
        Severity.INFO,
        "routing of exchange type {type!r} is not simulated ({label}): lint assumes it may reach every "
        "destination bound to it, and the embedded broker and tracer cannot run it. RabbitMQ declares it "
        "only if it knows the type (x-local-random is built into 4.x; others need their plugin "
        "enabled).{hint}",
    ),
    "queue-unbound": (
        Severity.INFO,
        "{label} has no bindings; only messages published to the default exchange with routing key "
        "{name!r} reach it. Bind it to an exchange if producers publish elsewhere.",
    ),
    "max-length-drops": (
        Severity.INFO,
        "{label} has a length limit{via} with overflow drop-head and no dead-letter exchange: the oldest "
        "messages are silently dropped when it is full. Set a DLX, or x-overflow reject-publish.",
    ),
}


def _finding(topology: Topology, code: str, object_id: str, **fields: str) -> Finding:
    severity, template = LINT_RULES[code]
    return Finding(severity, object_id, code, template.format(label=topology.label(object_id), **fields))


class _Effective:
    """Each queue's and exchange's settings with their policy applied (the objects themselves when
    there are no policies), and the policy that applied."""

    def __init__(self, topology: Topology, policies: Iterable[Any] | None) -> None:
        self.queues: dict[str, Queue] = {}
        self.exchanges: dict[str, Exchange] = {}
        self.policy: dict[str, PolicyRecord] = {}
        items = list(policies) if policies is not None else []
        for q in topology.queues:
            self.queues[q.id], q_policy = effective_queue(q, items)
            if q_policy is not None:
                self.policy[q.id] = q_policy
        for ex in topology.exchanges:
            self.exchanges[ex.id], ex_policy = effective_exchange(ex, items)
            if ex_policy is not None:
                self.policy[ex.id] = ex_policy

    def via(self, original: Queue | Exchange, key: str) -> str:
        """`` (set by policy 'p')`` when the value of argument `key` comes from (or is lowered by)
        the policy, else ""."""
        effective: Queue | Exchange | None = (
            self.queues.get(original.id) if isinstance(original, Queue) else self.exchanges.get(original.id)
        )
        policy = self.policy.get(original.id)
        if policy is None or effective is None or key not in effective.arguments:
            return ""
        if original.arguments.get(key) == effective.arguments[key]:
            return ""
        return f" (set by policy {policy.get('name', '?')!r})"


def lint(topology: Topology, policies: Iterable[PolicyRecord] | None = None) -> list[Finding]:
    """Designs RabbitMQ accepts but that lose messages or do nothing, in a deterministic order
    (severity, then topology order, then code).

    `policies` are RabbitMQ definitions policy records (``vhost``, ``name``, ``pattern``, ``apply-to``,
    ``definition``, ``priority``; see `policies.document_policies`): the DLX, TTL, length-limit and
    overflow rules then use the settings each queue really gets.
    """
    findings: list[Finding] = []
    eff = _Effective(topology, policies)
    for ex in topology.exchanges:
        findings.extend(_lint_exchange(topology, ex, eff))
    for q in topology.queues:
        findings.extend(_lint_queue(topology, q, eff))
    seen: list[Binding] = []
    for b in topology.bindings:
        if any(other.same_route(b) for other in seen):
            findings.append(_finding(topology, "duplicate-binding", b.id))
        seen.append(b)
    for g in topology.consumer_groups:
        for topic_id in g.topics:
            if not isinstance(topology.get(topic_id), Topic):
                findings.append(_finding(topology, "group-topic-missing", g.id, name=topic_id))
    for p in topology.producers:
        findings.extend(_lint_producer(topology, p))
    for c in topology.consumers:
        findings.extend(_lint_consumer(topology, c, eff))
    findings.extend(_lint_dead_letter_cycles(topology, eff))
    ids = [*(n.id for n in topology), *(b.id for b in topology.bindings)]
    order = {object_id: index for index, object_id in enumerate(ids)}
    findings.sort(
        key=lambda f: (_SEVERITY_RANK[f.severity], order.get(f.object_id, len(ids)), f.code, f.message)
    )
    return findings


def _exchange_exists(topology: Topology, name: str, vhost: str) -> bool:
    return name == "" or name in BUILTIN_EXCHANGES or topology.find_exchange(name, vhost) is not None


def _type_hint(kind: str) -> str:
    """`` Did you mean 'fanout'?`` for a type that differs from a known one only in case or dashes."""
    folded = kind.lower().replace("-", "").replace("_", "")
    for known in ExchangeType:
        if folded == known.value.replace("-", ""):
            return f" Did you mean {known.value!r}?"
    return ""


def _lint_exchange(topology: Topology, ex: Exchange, eff: _Effective) -> list[Finding]:
    out: list[Finding] = []
    ae = eff.exchanges[ex.id].alternate_exchange
    if ae is not None and not _exchange_exists(topology, ae, ex.vhost):
        via = eff.via(ex, "alternate-exchange")
        out.append(_finding(topology, "alternate-exchange-missing", ex.id, name=ae, vhost=ex.vhost, via=via))
    if ex.type == ExchangeType.DELAYED and ex.delayed_type is None:
        out.append(_finding(topology, "delayed-type-missing", ex.id))
    if not is_known_type(ex.type) and isinstance(ex.type, str):
        hint = _type_hint(ex.type)
        out.append(_finding(topology, "exchange-type-not-simulated", ex.id, type=ex.type, hint=hint))
    if ex.name != "" and not topology.bindings_from(ex.id) and ae is None:
        out.append(_finding(topology, "exchange-unbound", ex.id))
    return out


def _lint_queue(topology: Topology, q: Queue, eff: _Effective) -> list[Finding]:
    out: list[Finding] = []
    effective = eff.queues[q.id]
    dlx = effective.dead_letter_exchange
    if dlx is not None and not _exchange_exists(topology, dlx, q.vhost):
        via = eff.via(q, "x-dead-letter-exchange")
        out.append(_finding(topology, "dlx-missing", q.id, name=dlx, vhost=q.vhost, via=via))
    if not topology.bindings_to(q.id):
        out.append(_finding(topology, "queue-unbound", q.id, name=q.name))
    quorum = q.queue_type is QueueType.QUORUM
    if quorum and "x-max-priority" in q.arguments:
        out.append(_finding(topology, "quorum-max-priority", q.id))
    if quorum and q.arguments.get("x-overflow") == Overflow.REJECT_PUBLISH_DLX:
        out.append(_finding(topology, "quorum-reject-publish-dlx", q.id))
    args = effective.arguments
    if dlx is None and "x-message-ttl" in args:
        out.append(_finding(topology, "ttl-without-dlx", q.id, via=eff.via(q, "x-message-ttl")))
    # A stream's x-max-length-bytes is retention (old segments go), not a limit that drops messages.
    limits = [key for key in ("x-max-length", "x-max-length-bytes") if key in args]
    if (
        dlx is None
        and limits
        and effective.overflow is Overflow.DROP_HEAD
        and q.queue_type is not QueueType.STREAM
    ):
        out.append(_finding(topology, "max-length-drops", q.id, via=eff.via(q, limits[0])))
    if quorum and args.get("x-dead-letter-strategy") == "at-least-once" and dlx is not None:
        overflow = args.get("x-overflow", Overflow.DROP_HEAD.value)
        if overflow != Overflow.REJECT_PUBLISH:
            via = eff.via(q, "x-overflow") or eff.via(q, "x-dead-letter-strategy")
            out.append(
                _finding(topology, "dead-letter-strategy-fallback", q.id, overflow=str(overflow), via=via)
            )
    return out


# -- simulated clients ----------------------------------------------------------------------------
def _dangling(topology: Topology, ref: str, verb: str, wanted: str) -> str:
    """Why reference `ref` is of no use: unset, naming no node, or naming a node of the wrong kind."""
    if not ref:
        return f"has no {verb}"
    if ref not in topology:
        return f"{verb}s {ref!r}, which is not a node of this design"
    return f"{verb}s {topology.label(ref)}, which is not {wanted}"


def _lint_producer(topology: Topology, p: Producer) -> list[Finding]:
    if isinstance(topology.get(p.target), Exchange | Topic):
        return []
    reason = _dangling(topology, p.target, "target", "an exchange or a topic")
    return [_finding(topology, "producer-target-missing", p.id, reason=reason)]


def _lint_consumer(topology: Topology, c: Consumer, eff: _Effective) -> list[Finding]:
    source = topology.get(c.source)
    if not isinstance(source, Queue | ConsumerGroup):
        reason = _dangling(topology, c.source, "source", "a queue or a consumer group")
        return [_finding(topology, "consumer-source-missing", c.id, reason=reason)]
    failing = isinstance(c.failure_rate, int | float) and c.failure_rate > 0
    if isinstance(source, Queue) and failing and eff.queues[source.id].dead_letter_exchange is None:
        percent = f"{c.failure_rate:.0%}" if c.failure_rate >= 0.01 else f"{c.failure_rate:.2%}"
        return [
            _finding(
                topology, "consumer-rejects-dropped", c.id, percent=percent, queue=topology.label(source.id)
            )
        ]
    return []


# -- dead-letter cycles ---------------------------------------------------------------------------
# RabbitMQ (https://www.rabbitmq.com/docs/dlx, "Routing Dead-Lettered Messages") drops a dead-lettered
# message that would reach the same queue a second time *unless a client rejected it somewhere in the
# cycle*. A retry ladder (work queue --rejected--> DLX → wait queue --expired--> work exchange → work
# queue) is such a cycle but contains a rejection, so it works. The designer cannot know whether
# consumers reject, so we flag the trap we can see: a cycle in which every queue has a message TTL or a
# length limit, i.e. messages can go round by expiry/overflow alone — and are then dropped silently.
_ANY_KEY = None  # the routing key a message arrived with, when the design does not tell us


def _dead_letters_automatically(q: Queue) -> bool:
    args = q.arguments
    return q.dead_letter_exchange is not None and (
        "x-message-ttl" in args or "x-max-length" in args or "x-max-length-bytes" in args
    )


def _route(
    topology: Topology, exchange: Exchange | None, name: str, vhost: str, key: str | None
) -> set[tuple[str, str | None]]:
    """Queues (with the key they receive) that `key` (``None``: unknown) may reach from exchange `name`."""
    if name == "":
        # The default exchange delivers to the queue named by the routing key (AMQP 0-9-1 §3.1.3.1).
        target = topology.find_queue(key, vhost) if key is not None else None
        return {(target.id, key)} if target is not None else set()
    out: set[tuple[str, str | None]] = set()
    pending: deque[tuple[Exchange, str | None]] = deque()
    if exchange is not None:
        pending.append((exchange, key))
    visited: set[tuple[str, str | None]] = set()
    while pending:
        ex, k = pending.popleft()
        if (ex.id, k) in visited:
            continue
        visited.add((ex.id, k))
        kind = ex.delayed_type if ex.type == ExchangeType.DELAYED else ex.type
        for b in topology.bindings_from(ex.id):
            if kind in (ExchangeType.FANOUT, ExchangeType.HEADERS) or not is_known_type(kind):
                # fanout matches all; headers and types we do not simulate (x-consistent-hash …):
                # assume any binding may match and the key is kept
                routed: str | None = k
            elif kind == ExchangeType.TOPIC:
                if k is None:
                    has_wildcard = any(w in ("*", "#") for w in _words(b.routing_key))
                    routed = None if has_wildcard else b.routing_key
                elif topic_matches(b.routing_key, k):
                    routed = k
                else:
                    continue
            elif k is None or b.routing_key == k:  # direct: exact match
                routed = b.routing_key
            else:
                continue
            dest = topology.get(b.destination)
            if isinstance(dest, Queue):
                out.add((dest.id, routed))
            elif isinstance(dest, Exchange):
                pending.append((dest, routed))
    return out


def _dead_letter_targets(topology: Topology, q: Queue, key: str | None) -> set[tuple[str, str | None]]:
    dlx = q.dead_letter_exchange
    if dlx is None:
        return set()
    out_key = q.dead_letter_routing_key if q.dead_letter_routing_key is not None else key
    return _route(topology, topology.find_exchange(dlx, q.vhost), dlx, q.vhost, out_key)


def _arrival_keys(topology: Topology, q: Queue) -> set[str | None]:
    """Keys a message may carry in `q`: its name (default exchange) and the keys of its bindings."""
    keys: set[str | None] = {q.name}
    for b in topology.bindings_to(q.id):
        source = topology.get(b.source)
        kind = source.type if isinstance(source, Exchange) else None
        wildcard = any(w in ("*", "#") for w in _words(b.routing_key))
        if kind in (ExchangeType.DIRECT, ExchangeType.TOPIC) and not wildcard:
            keys.add(b.routing_key)
        else:
            keys.add(_ANY_KEY)
    return keys


def _lint_dead_letter_cycles(topology: Topology, eff: _Effective) -> list[Finding]:
    effective = (eff.queues[q.id] for q in topology.queues)
    candidates = {q.id: q for q in effective if _dead_letters_automatically(q)}
    reported: set[frozenset[str]] = set()
    findings: list[Finding] = []
    for start in candidates.values():
        parents: dict[tuple[str, str | None], tuple[str, str | None] | None] = {}
        queue: deque[tuple[str, str | None]] = deque()
        for key in sorted(_arrival_keys(topology, start), key=lambda k: (k is not None, k or "")):
            parents[(start.id, key)] = None
            queue.append((start.id, key))
        cycle: list[str] | None = None
        while queue and cycle is None:
            state = queue.popleft()
            for target in sorted(
                _dead_letter_targets(topology, candidates[state[0]], state[1]),
                key=lambda s: (s[0], s[1] is not None, s[1] or ""),
            ):
                if target[0] == start.id:
                    path = [state[0]]
                    step = parents[state]
                    while step is not None:
                        path.append(step[0])
                        step = parents[step]
                    cycle = list(reversed(path))
                    break
                if target[0] in candidates and target not in parents:
                    parents[target] = state
                    queue.append(target)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        names = " → ".join(topology.node(qid).name for qid in [*cycle, start.id])
        findings.append(_finding(topology, "dead-letter-cycle", start.id, path=names))
    return findings
