"""Value validation with RabbitMQ's and Kafka's own rules, bind checks, and the design linter.

Owns: ``validate_*`` (every problem of one object, as `Problem`s with dotted paths), `check_bind` and
`check_node` (raise the first problem as a typed error, for commands and canvas gestures). The design
linter lives in `lint.py`; `lint`, `Finding`, `Severity`, `LINT_RULES` and `topic_matches` are
re-exported here so existing imports keep working. Must not import Qt or anything outside the stdlib
and `mqstudio.core`.

The argument rules follow RabbitMQ's declare-time checks (``rabbit_amqqueue:declare_args`` and the
docs at https://www.rabbitmq.com/docs/ttl, /dlx, /maxlength, /priority, /quorum-queues, /consumers):
a value RabbitMQ would refuse with PRECONDITION_FAILED is a problem here. Unknown ``x-`` arguments
are not problems, because RabbitMQ accepts and ignores them (plugins define their own).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mqstudio.core.errors import (
    DuplicateBindingError,
    InvalidArgumentError,
    InvalidBindingError,
    Problem,
)
from mqstudio.core.lint import BUILTIN_EXCHANGES, LINT_RULES, Finding, Severity, lint, topic_matches
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Node,
    NodeKind,
    Overflow,
    Producer,
    Queue,
    QueueType,
    Topic,
    Topology,
)

# Public names; lint.py's are re-exported because they lived here before lint.py existed.
__all__ = [
    "BUILTIN_EXCHANGES",
    "CLEANUP_POLICIES",
    "DELAYED_TYPES",
    "LINT_RULES",
    "MAX_PREFETCH",
    "MAX_PRIORITY",
    "MAX_SHORTSTR_BYTES",
    "MAX_TOPIC_NAME",
    "X_MATCH_VALUES",
    "Finding",
    "Severity",
    "check_bind",
    "check_node",
    "join_path",
    "lint",
    "topic_matches",
    "validate_binding_args",
    "validate_consumer",
    "validate_consumer_group",
    "validate_exchange",
    "validate_name",
    "validate_node",
    "validate_producer",
    "validate_queue",
    "validate_topic",
]

MAX_SHORTSTR_BYTES = 255  # AMQP 0-9-1 shortstr: names of exchanges and queues
MAX_TOPIC_NAME = 249  # Kafka: 255 minus room for the partition suffix of log directories
MAX_PRIORITY = 255  # rabbit_amqqueue: ?MAX_SUPPORTED_PRIORITY
MAX_MESSAGE_PRIORITY = 255  # basic.properties priority is an octet
MAX_PREFETCH = 65535  # AMQP 0-9-1 basic.qos prefetch-count is a short (unsigned 16 bits)
_TOPIC_NAME_RE = re.compile(r"[a-zA-Z0-9._-]+")
_MAX_AGE_RE = re.compile(r"[0-9]+[YMDhms]")
# rabbit_amqqueue:check_declare_arguments (RabbitMQ 3.10 and later, 4.x included) refuses every argument
# that some queue type declares in its `queue_arguments` capability but the queue's own type does not.
# A stream's list is x-max-length-bytes, x-queue-type, x-max-age, x-stream-max-segment-size-bytes,
# x-stream-filter-size-bytes, x-initial-cluster-size and x-queue-leader-locator, so these classic and
# quorum arguments are refused on streams (x-max-priority, x-delivery-limit and x-dead-letter-strategy
# are refused by their own type checks below). The older rabbit_stream_queue:check_invalid_arguments of
# 3.9 refused fewer, but 3.9 is long out of support.
_NOT_FOR_STREAMS = frozenset(
    {
        "x-message-ttl",
        "x-expires",
        "x-max-length",
        "x-overflow",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-queue-mode",
        "x-single-active-consumer",
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-quorum-initial-group-size",
    }
)
_STREAM_RETENTION_HINT = frozenset({"x-message-ttl", "x-expires", "x-max-length", "x-overflow"})
X_MATCH_VALUES = ("all", "any", "all-with-x", "any-with-x")
DELAYED_TYPES = ("direct", "fanout", "topic", "headers")
CLEANUP_POLICIES = ("delete", "compact", "compact,delete", "delete,compact")


def join_path(path: str, *parts: str | int) -> str:
    """``join_path("queues[2]", "arguments", "x-expires")`` → ``queues[2].arguments.x-expires``."""
    out = path
    for part in parts:
        out = f"{out}[{part}]" if isinstance(part, int) else f"{out}.{part}" if out else part
    return out


_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),  # before int: JSON booleans are ints in Python
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    ((list, tuple), "a list"),
    (dict, "a table"),
)


def _type_name(value: Any) -> str:
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


def _is_int(value: Any) -> bool:
    # JSON booleans are ints in Python; RabbitMQ's tables keep them apart, so do we.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(problems: list[Problem], path: str, value: Any, minimum: int, what: str) -> bool:
    if not _is_int(value):
        problems.append(Problem(path, f"must be an integer ({what}), not {_type_name(value)} {value!r}"))
        return False
    if value < minimum:
        problems.append(Problem(path, f"must be at least {minimum} ({what}), not {value}"))
        return False
    return True


def _check_bool(problems: list[Problem], path: str, value: Any) -> None:
    if not isinstance(value, bool):
        problems.append(Problem(path, f"must be true or false, not {_type_name(value)} {value!r}"))


def _check_str(problems: list[Problem], path: str, value: Any, what: str) -> bool:
    if not isinstance(value, str):
        problems.append(Problem(path, f"must be a string ({what}), not {_type_name(value)} {value!r}"))
        return False
    return True


def _check_choice(problems: list[Problem], path: str, value: Any, choices: Iterable[str]) -> bool:
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        problems.append(Problem(path, f"must be one of {listed}, not {value!r}"))
        return False
    return True


# -- names ----------------------------------------------------------------------------------------
def validate_name(kind: NodeKind | str, name: Any, path: str = "") -> list[Problem]:
    """Problems with a node's name, by the rules of its broker.

    Exchanges and queues: AMQP shortstr (at most 255 bytes of UTF-8), not empty (except the default
    exchange ``""``), and not starting with ``amq.`` (RabbitMQ refuses to declare such names with
    ACCESS_REFUSED; the built-in ``amq.*`` exchanges are allowed since every vhost has them).
    Kafka topics: ``[a-zA-Z0-9._-]``, at most 249 characters, not ``.`` or ``..``.
    """
    kind = NodeKind(kind)
    label = kind.value.replace("_", " ")
    if not isinstance(name, str):
        return [Problem(path, f"the {label} name must be a string, not {_type_name(name)}")]
    if kind in (NodeKind.EXCHANGE, NodeKind.QUEUE):
        if name == "" and kind is NodeKind.QUEUE:
            return [Problem(path, "a queue needs a name; server-named queues cannot be designed")]
        size = len(name.encode("utf-8"))
        if size > MAX_SHORTSTR_BYTES:
            return [Problem(path, f"is {size} bytes long in UTF-8; AMQP allows at most 255, shorten it")]
        if name.startswith("amq.") and name not in BUILTIN_EXCHANGES:
            return [
                Problem(
                    path,
                    f"names starting with 'amq.' are reserved by RabbitMQ for its own {label}s; "
                    "choose a name without that prefix",
                )
            ]
        return []
    if kind is NodeKind.TOPIC:
        if name in ("", ".", ".."):
            return [Problem(path, f"{name!r} is not a valid Kafka topic name; choose another")]
        if len(name) > MAX_TOPIC_NAME:
            return [Problem(path, f"is {len(name)} characters long; Kafka allows at most {MAX_TOPIC_NAME}")]
        if not _TOPIC_NAME_RE.fullmatch(name):
            bad = "".join(sorted({c for c in name if not _TOPIC_NAME_RE.fullmatch(c)}))
            return [
                Problem(
                    path, f"Kafka topic names may use only letters, digits, '.', '_' and '-' (not {bad!r})"
                )
            ]
        return []
    if kind in (NodeKind.PRODUCER, NodeKind.CONSUMER):
        # Simulated clients follow the queue-name rules that matter outside a broker.
        if name == "":
            return [Problem(path, f"a {label} needs a name")]
        size = len(name.encode("utf-8"))
        if size > MAX_SHORTSTR_BYTES:
            return [Problem(path, f"is {size} bytes long in UTF-8; at most 255 are allowed, shorten it")]
        return []
    if name == "":
        return [Problem(path, f"a {label} needs a name")]
    return []


# -- exchanges ------------------------------------------------------------------------------------
def validate_exchange(ex: Exchange, path: str = "") -> list[Problem]:
    problems = validate_name(NodeKind.EXCHANGE, ex.name, join_path(path, "name"))
    # Any non-empty name is a type to RabbitMQ (rabbit_exchange:check_type looks it up in the registry,
    # which plugins extend), so types mqstudio does not know are kept; lint says it cannot route them.
    tpath = join_path(path, "type")
    if _check_str(problems, tpath, ex.type, "an exchange type such as direct or x-consistent-hash"):
        if not ex.type:
            problems.append(Problem(tpath, "an exchange needs a type (direct, fanout, topic, headers …)"))
        elif len(ex.type.encode("utf-8")) > MAX_SHORTSTR_BYTES:
            problems.append(Problem(tpath, "is longer than 255 bytes; AMQP refuses it"))
    for flag in ("durable", "auto_delete", "internal"):
        _check_bool(problems, join_path(path, flag), getattr(ex, flag))
    _check_vhost(problems, join_path(path, "vhost"), ex.vhost)
    args = ex.arguments
    if not isinstance(args, Mapping):
        return [*problems, Problem(join_path(path, "arguments"), "must be a table of arguments")]
    apath = join_path(path, "arguments")
    if "alternate-exchange" in args:
        _check_str(
            problems, join_path(apath, "alternate-exchange"), args["alternate-exchange"], "an exchange name"
        )
    if ex.type == ExchangeType.DELAYED:
        if "x-delayed-type" not in args:
            problems.append(
                Problem(
                    join_path(apath, "x-delayed-type"),
                    "an x-delayed-message exchange needs x-delayed-type (direct, fanout, topic or headers) "
                    "to know how to route once the delay is over",
                )
            )
        else:
            _check_choice(problems, join_path(apath, "x-delayed-type"), args["x-delayed-type"], DELAYED_TYPES)
    return problems


def _check_vhost(problems: list[Problem], path: str, vhost: Any) -> None:
    if not isinstance(vhost, str) or not vhost:
        problems.append(Problem(path, f"a vhost must be a non-empty string, not {vhost!r}"))


# -- queues ---------------------------------------------------------------------------------------
def validate_queue(q: Queue, path: str = "") -> list[Problem]:
    problems = validate_name(NodeKind.QUEUE, q.name, join_path(path, "name"))
    for flag in ("durable", "exclusive", "auto_delete"):
        _check_bool(problems, join_path(path, flag), getattr(q, flag))
    _check_vhost(problems, join_path(path, "vhost"), q.vhost)
    args = q.arguments
    apath = join_path(path, "arguments")
    if not isinstance(args, Mapping):
        return [*problems, Problem(apath, "must be a table of arguments")]

    def at(key: str) -> str:
        return join_path(apath, key)

    qtype = QueueType.CLASSIC
    types = [t.value for t in QueueType]
    if "x-queue-type" in args and _check_choice(problems, at("x-queue-type"), args["x-queue-type"], types):
        qtype = QueueType(args["x-queue-type"])
    replicated = qtype in (QueueType.QUORUM, QueueType.STREAM)
    if replicated:
        # Quorum queues and streams are replicated and durable by design (quorum-queues, streams docs).
        if q.durable is False:
            problems.append(
                Problem(join_path(path, "durable"), f"{qtype.value} queues are always durable; set durable")
            )
        if q.exclusive is True:
            problems.append(
                Problem(join_path(path, "exclusive"), f"{qtype.value} queues cannot be exclusive")
            )
        if q.auto_delete is True:
            problems.append(
                Problem(join_path(path, "auto_delete"), f"{qtype.value} queues cannot be auto-delete")
            )
    if "x-message-ttl" in args:
        _check_int(problems, at("x-message-ttl"), args["x-message-ttl"], 0, "milliseconds")
    if "x-expires" in args:
        _check_int(problems, at("x-expires"), args["x-expires"], 1, "milliseconds of disuse; 0 is refused")
    for key in ("x-max-length", "x-max-length-bytes"):
        if key in args:
            _check_int(problems, at(key), args[key], 0, "a limit")
    if (
        "x-overflow" in args
        and _check_choice(problems, at("x-overflow"), args["x-overflow"], [o.value for o in Overflow])
        and qtype is QueueType.QUORUM
        and args["x-overflow"] == Overflow.REJECT_PUBLISH_DLX
    ):
        problems.append(
            Problem(
                at("x-overflow"),
                "quorum queues do not support reject-publish-dlx; use reject-publish or drop-head",
            )
        )
    if "x-max-priority" in args:
        value = args["x-max-priority"]
        # check_max_priority_arg is check_non_neg_int_arg plus the upper bound: 0 is accepted.
        if _check_int(problems, at("x-max-priority"), value, 0, "priorities") and value > MAX_PRIORITY:
            problems.append(Problem(at("x-max-priority"), f"must be at most {MAX_PRIORITY}, not {value}"))
        if qtype is not QueueType.CLASSIC:
            problems.append(
                Problem(
                    at("x-max-priority"), f"{qtype.value} queues do not support x-max-priority; remove it"
                )
            )
    if "x-delivery-limit" in args:
        _check_int(problems, at("x-delivery-limit"), args["x-delivery-limit"], 0, "redeliveries")
        if qtype is not QueueType.QUORUM:
            problems.append(Problem(at("x-delivery-limit"), "only quorum queues have a delivery limit"))
    has_dlx = "x-dead-letter-exchange" in args
    if has_dlx:
        _check_str(problems, at("x-dead-letter-exchange"), args["x-dead-letter-exchange"], "an exchange name")
    if "x-dead-letter-routing-key" in args:
        _check_str(
            problems, at("x-dead-letter-routing-key"), args["x-dead-letter-routing-key"], "a routing key"
        )
        if not has_dlx:
            problems.append(
                Problem(
                    at("x-dead-letter-routing-key"),
                    "needs x-dead-letter-exchange (RabbitMQ refuses it alone); set a DLX or remove it",
                )
            )
    if "x-dead-letter-strategy" in args:
        key = at("x-dead-letter-strategy")
        # at-least-once without overflow reject-publish is declared fine: RabbitMQ falls back to
        # at-most-once. The overflow often comes from a policy, so that is lint's business
        # ("dead-letter-strategy-fallback"), not a refusal.
        strategies = ("at-most-once", "at-least-once")
        if _check_choice(problems, key, args["x-dead-letter-strategy"], strategies) and (
            qtype is not QueueType.QUORUM
        ):
            problems.append(Problem(key, "only quorum queues have a dead-letter strategy"))
    if "x-single-active-consumer" in args:
        _check_bool(problems, at("x-single-active-consumer"), args["x-single-active-consumer"])
    if "x-queue-mode" in args:
        _check_choice(problems, at("x-queue-mode"), args["x-queue-mode"], ("default", "lazy"))
        if qtype is QueueType.QUORUM:
            problems.append(Problem(at("x-queue-mode"), "only classic queues have a queue mode; remove it"))
    max_age = args.get("x-max-age", "1D")
    if not (isinstance(max_age, str) and _MAX_AGE_RE.fullmatch(max_age)):
        problems.append(
            Problem(at("x-max-age"), "must be a number and a unit (Y, M, D, h, m, s) such as '7D'")
        )
    if qtype is QueueType.STREAM:
        # A stream keeps messages for every consumer: it neither expires, drops nor dead-letters them.
        for key in sorted(_NOT_FOR_STREAMS.intersection(args)):
            message = "streams do not support this argument (RabbitMQ refuses it with PRECONDITION_FAILED)"
            if key in _STREAM_RETENTION_HINT:
                message += "; limit retention with x-max-age or x-max-length-bytes"
            problems.append(Problem(at(key), message))
    return problems


# -- Kafka ----------------------------------------------------------------------------------------
def validate_topic(t: Topic, path: str = "") -> list[Problem]:
    problems = validate_name(NodeKind.TOPIC, t.name, join_path(path, "name"))
    _check_int(problems, join_path(path, "partitions"), t.partitions, 1, "partitions")
    _check_int(problems, join_path(path, "replication_factor"), t.replication_factor, 1, "replicas")
    cpath = join_path(path, "configs")
    if not isinstance(t.configs, Mapping):
        return [*problems, Problem(cpath, "must be a table of string settings")]
    for key, value in t.configs.items():
        if not isinstance(value, str):
            problems.append(
                Problem(join_path(cpath, key), f"Kafka configs are strings, not {_type_name(value)}")
            )
            continue
        if key == "cleanup.policy":
            _check_choice(problems, join_path(cpath, key), value.replace(" ", ""), CLEANUP_POLICIES)
        elif key in ("retention.ms", "retention.bytes"):
            try:
                number = int(value)
            except ValueError:
                problems.append(
                    Problem(join_path(cpath, key), f"must be a whole number (as text), not {value!r}")
                )
                continue
            if number < -1:
                problems.append(
                    Problem(join_path(cpath, key), f"must be -1 (unlimited) or more, not {number}")
                )
        elif key == "min.insync.replicas":
            if not value.isdigit() or int(value) < 1:
                problems.append(
                    Problem(join_path(cpath, key), f"must be a whole number of at least 1, not {value!r}")
                )
            elif _is_int(t.replication_factor) and int(value) > t.replication_factor:
                problems.append(
                    Problem(
                        join_path(cpath, key),
                        f"{value} is more than the replication factor {t.replication_factor}; "
                        "every produce with acks=all would fail",
                    )
                )
    return problems


def validate_consumer_group(g: ConsumerGroup, path: str = "") -> list[Problem]:
    problems = validate_name(NodeKind.CONSUMER_GROUP, g.name, join_path(path, "name"))
    for index, topic_id in enumerate(g.topics):
        if not isinstance(topic_id, str) or not topic_id:
            problems.append(
                Problem(join_path(path, "topics", index), f"must be a topic id, not {topic_id!r}")
            )
    return problems


# -- simulated clients ----------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate_producer(p: Producer, path: str = "") -> list[Problem]:
    """`target` is an id ("" when unset; whether it exists is `lint`'s business), `rate` > 0 msg/s;
    `payload` a string (whether the template renders is the traffic generator's business), `priority`
    0 to 255 and `ttl_ms` >= 0 or None."""
    problems = validate_name(NodeKind.PRODUCER, p.name, join_path(path, "name"))
    _check_str(problems, join_path(path, "target"), p.target, "an exchange or topic id, or ''")
    kpath = join_path(path, "routing_key")
    if _check_str(problems, kpath, p.routing_key, "a routing key") and (
        len(p.routing_key.encode("utf-8")) > MAX_SHORTSTR_BYTES
    ):
        problems.append(Problem(kpath, "is longer than 255 bytes; AMQP refuses it"))
    rpath = join_path(path, "rate")
    if not _is_number(p.rate):
        problems.append(Problem(rpath, f"must be a number of messages per second, not {p.rate!r}"))
    elif p.rate <= 0:
        problems.append(Problem(rpath, f"must be more than 0 messages per second, not {p.rate}"))
    _check_str(problems, join_path(path, "payload"), p.payload, "a payload template; '' is the default")
    prpath = join_path(path, "priority")
    if (
        p.priority is not None
        and _check_int(problems, prpath, p.priority, 0, "a message priority")
        and p.priority > MAX_MESSAGE_PRIORITY
    ):
        problems.append(
            Problem(prpath, f"must be at most {MAX_MESSAGE_PRIORITY} (an AMQP octet), not {p.priority}")
        )
    if p.ttl_ms is not None:
        _check_int(problems, join_path(path, "ttl_ms"), p.ttl_ms, 0, "milliseconds")
    hpath = join_path(path, "headers")
    if not isinstance(p.headers, Mapping):
        return [*problems, Problem(hpath, "must be a table of headers")]
    for key, value in p.headers.items():
        if not isinstance(key, str):
            problems.append(Problem(hpath, f"header names must be strings, not {key!r}"))
            continue
        _check_table_value(problems, join_path(hpath, key), value)
    return problems


def validate_consumer(c: Consumer, path: str = "") -> list[Problem]:
    """`source` is an id ("" when unset), prefetch 0 to 65535 (0: unlimited), failure_rate and
    requeue_rate 0 to 1 each and at most 1 together."""
    problems = validate_name(NodeKind.CONSUMER, c.name, join_path(path, "name"))
    _check_str(problems, join_path(path, "source"), c.source, "a queue or consumer group id, or ''")
    ppath = join_path(path, "prefetch")
    if _check_int(problems, ppath, c.prefetch, 0, "messages in flight; 0 is unlimited") and (
        c.prefetch > MAX_PREFETCH
    ):
        problems.append(Problem(ppath, f"must be at most {MAX_PREFETCH} (AMQP basic.qos), not {c.prefetch}"))
    _check_int(problems, join_path(path, "processing_ms"), c.processing_ms, 0, "milliseconds")
    fpath = join_path(path, "failure_rate")
    if not _is_number(c.failure_rate):
        problems.append(Problem(fpath, f"must be a number from 0 to 1, not {c.failure_rate!r}"))
    elif not 0 <= c.failure_rate <= 1:
        problems.append(Problem(fpath, f"must be from 0 to 1 (a share of deliveries), not {c.failure_rate}"))
    qpath = join_path(path, "requeue_rate")
    if not _is_number(c.requeue_rate):
        problems.append(Problem(qpath, f"must be a number from 0 to 1, not {c.requeue_rate!r}"))
    elif not 0 <= c.requeue_rate <= 1:
        problems.append(Problem(qpath, f"must be from 0 to 1 (a share of deliveries), not {c.requeue_rate}"))
    elif _is_number(c.failure_rate) and 0 <= c.failure_rate <= 1 < c.failure_rate + c.requeue_rate - 1e-9:
        problems.append(
            Problem(
                qpath,
                f"failure rate plus requeue rate must be at most 1 (100 %), not "
                f"{c.failure_rate} + {c.requeue_rate}",
            )
        )
    return problems


def validate_node(node: Node, path: str = "") -> list[Problem]:
    if isinstance(node, Exchange):
        return validate_exchange(node, path)
    if isinstance(node, Queue):
        return validate_queue(node, path)
    if isinstance(node, Topic):
        return validate_topic(node, path)
    if isinstance(node, Producer):
        return validate_producer(node, path)
    if isinstance(node, Consumer):
        return validate_consumer(node, path)
    return validate_consumer_group(node, path)


def check_node(node: Node) -> None:
    """Raise the node's first problem as `InvalidArgumentError` (its path relative to the node)."""
    problems = validate_node(node)
    if problems:
        raise InvalidArgumentError(problems[0].message, problems[0].path)


# -- bindings -------------------------------------------------------------------------------------
_TABLE_SCALARS = (str, int, float, bool, type(None), bytes)


def _check_table_value(problems: list[Problem], path: str, value: Any) -> None:
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_table_value(problems, join_path(path, index), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(Problem(path, f"table keys must be strings, not {key!r}"))
            else:
                _check_table_value(problems, join_path(path, key), item)
    elif not isinstance(value, _TABLE_SCALARS):
        problems.append(Problem(path, f"an AMQP table cannot hold {_type_name(value)}"))


def validate_binding_args(binding: Binding, source: Exchange | None, path: str = "") -> list[Problem]:
    """Types of the binding's fields, and ``x-match`` of headers bindings (all/any/all-with-x/any-with-x)."""
    problems: list[Problem] = []
    _check_str(problems, join_path(path, "routing_key"), binding.routing_key, "a routing key")
    if isinstance(binding.routing_key, str) and len(binding.routing_key.encode("utf-8")) > MAX_SHORTSTR_BYTES:
        problems.append(Problem(join_path(path, "routing_key"), "is longer than 255 bytes; AMQP refuses it"))
    apath = join_path(path, "arguments")
    if not isinstance(binding.arguments, Mapping):
        return [*problems, Problem(apath, "must be a table of arguments")]
    for key, value in binding.arguments.items():
        if not isinstance(key, str):
            problems.append(Problem(apath, f"argument names must be strings, not {key!r}"))
            continue
        _check_table_value(problems, join_path(apath, key), value)
    routes_by_headers = source is not None and (
        source.type == ExchangeType.HEADERS
        or (source.type == ExchangeType.DELAYED and source.delayed_type == ExchangeType.HEADERS)
    )
    if "x-match" in binding.arguments and (routes_by_headers or source is None):
        _check_choice(problems, join_path(apath, "x-match"), binding.arguments["x-match"], X_MATCH_VALUES)
    return problems


def _vhost_of(node: Node) -> str:
    return node.vhost if isinstance(node, Exchange | Queue) else DEFAULT_VHOST


def check_bind(
    topology: Topology,
    source_id: str,
    destination_id: str,
    routing_key: str = "",
    arguments: Mapping[str, Any] | None = None,
    *,
    ignore: str | None = None,
) -> None:
    """Refuse a binding RabbitMQ would refuse, with a typed error a user can act on.

    `ignore` is the id of a binding being edited (it does not count as a duplicate of itself).
    Unknown ids raise `UnknownObjectError`.
    """
    source = topology.node(source_id)
    destination = topology.node(destination_id)
    for end, role in ((source, "source"), (destination, "destination")):
        if isinstance(end, Topic | ConsumerGroup):
            raise InvalidBindingError(
                f"Kafka {end.kind.value.replace('_', ' ')}s cannot be bound; bindings are a RabbitMQ "
                "concept (consumer groups subscribe to topics instead)",
                role,
            )
    if not isinstance(source, Exchange):
        raise InvalidBindingError(
            f"a binding starts at an exchange, not at {topology.label(source_id)}; "
            "draw it from the exchange to the queue",
            "source",
        )
    if source.name == "":
        # RabbitMQ: "operation not permitted on the default exchange" (ACCESS_REFUSED).
        raise InvalidBindingError(
            "the default exchange routes to every queue by name and cannot be bound explicitly; "
            "publish to it with the queue name as routing key, or bind from another exchange",
            "source",
        )
    if isinstance(destination, Exchange) and destination.name == "":
        raise InvalidBindingError("the default exchange cannot be a binding destination", "destination")
    if source.vhost != _vhost_of(destination):
        raise InvalidBindingError(
            f"{topology.label(source_id)} is in vhost {source.vhost!r} but {topology.label(destination_id)} "
            f"is in {_vhost_of(destination)!r}; bindings cannot cross vhosts",
            "destination",
        )
    args = dict(arguments or {})
    candidate = Binding(source_id, destination_id, routing_key, args, id="")
    problems = validate_binding_args(candidate, source)
    if problems:
        raise InvalidArgumentError(problems[0].message, problems[0].path)
    for existing in topology.bindings_from(source_id):
        if existing.id != ignore and existing.same_route(candidate):
            raise DuplicateBindingError(
                f"{topology.label(existing.id)} already exists with these arguments; RabbitMQ would keep "
                "only one, so change the routing key or arguments",
                "routing_key",
            )
