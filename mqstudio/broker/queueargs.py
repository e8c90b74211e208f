"""Queue arguments of the embedded broker engine, parsed and validated as RabbitMQ does at queue.declare.

Owns: `QueueArguments` (the x-arguments the engine acts on), `Overflow`, `QueueType`,
`EQUIVALENCE_ARGS` (what a redeclaration compares) and `DEFAULT_QUORUM_DELIVERY_LIMIT`. The rules
these arguments drive are `mqstudio.broker.queue`'s (see its docstring).
Must not import anything outside the stdlib and `mqstudio.broker.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mqstudio.broker.errors import PreconditionFailed

DEFAULT_QUORUM_DELIVERY_LIMIT = 20


class Overflow(StrEnum):
    DROP_HEAD = "drop-head"
    REJECT_PUBLISH = "reject-publish"
    REJECT_PUBLISH_DLX = "reject-publish-dlx"


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"


# The x-arguments RabbitMQ compares on redeclaration (`rabbit_amqqueue:declare_args/0`); any other
# argument is stored but ignored by the equivalence check.
EQUIVALENCE_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
    "x-delivery-limit",
)


def _arg_error(queue: str, vhost: str, key: str, detail: str) -> PreconditionFailed:
    return PreconditionFailed(f"invalid arg '{key}' for queue '{queue}' in vhost '{vhost}': {detail}")


def _int_arg(args: Mapping[str, Any], key: str, queue: str, vhost: str, minimum: int) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _arg_error(queue, vhost, key, f"{{unacceptable_type,{type(value).__name__}}}")
    if value < minimum:
        detail = "value_zero" if value == 0 else "value_negative"
        raise _arg_error(queue, vhost, key, f"{{{detail},{value}}}")
    return value


def _str_arg(args: Mapping[str, Any], key: str, queue: str, vhost: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        raise _arg_error(queue, vhost, key, f"{{unacceptable_type,{type(value).__name__}}}")
    return value


@dataclass(frozen=True, slots=True)
class QueueArguments:
    """The queue arguments the engine acts on, validated as at queue.declare."""

    queue_type: QueueType = QueueType.CLASSIC
    message_ttl: int | None = None
    expires: int | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: Overflow = Overflow.DROP_HEAD
    max_priority: int | None = None
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    delivery_limit: int | None = None
    single_active_consumer: bool = False

    @classmethod
    def parse(cls, arguments: Mapping[str, Any] | None, queue: str, vhost: str) -> QueueArguments:
        a = arguments or {}
        qtype_s = _str_arg(a, "x-queue-type", queue, vhost) or QueueType.CLASSIC.value
        try:
            qtype = QueueType(qtype_s)
        except ValueError:
            raise _arg_error(queue, vhost, "x-queue-type", f"{{unsupported_queue_type,{qtype_s}}}") from None
        overflow_s = _str_arg(a, "x-overflow", queue, vhost) or Overflow.DROP_HEAD.value
        try:
            overflow = Overflow(overflow_s)
        except ValueError:
            raise _arg_error(queue, vhost, "x-overflow", f"{{unacceptable_value,{overflow_s}}}") from None
        if qtype is QueueType.QUORUM and overflow is Overflow.REJECT_PUBLISH_DLX:
            # rabbit_quorum_queue logs "Invalid overflow strategy" and falls back to drop-head.
            overflow = Overflow.DROP_HEAD
        max_priority = _int_arg(a, "x-max-priority", queue, vhost, 0)
        if max_priority is not None and max_priority > 255:
            raise _arg_error(queue, vhost, "x-max-priority", f"{{value_too_large,{max_priority},255}}")
        if qtype is QueueType.QUORUM:
            max_priority = None  # classic-queue feature; not modelled for quorum queues
        delivery_limit: int | None = None
        if qtype is QueueType.QUORUM:
            raw = a.get("x-delivery-limit")
            if raw is None:
                delivery_limit = DEFAULT_QUORUM_DELIVERY_LIMIT
            elif isinstance(raw, bool) or not isinstance(raw, int):
                raise _arg_error(
                    queue, vhost, "x-delivery-limit", f"{{unacceptable_type,{type(raw).__name__}}}"
                )
            else:
                delivery_limit = None if raw < 0 else raw
        sac = a.get("x-single-active-consumer", False)
        if not isinstance(sac, bool):
            raise _arg_error(
                queue, vhost, "x-single-active-consumer", f"{{unacceptable_type,{type(sac).__name__}}}"
            )
        return cls(
            queue_type=qtype,
            message_ttl=_int_arg(a, "x-message-ttl", queue, vhost, 0),
            expires=_int_arg(a, "x-expires", queue, vhost, 1),
            max_length=_int_arg(a, "x-max-length", queue, vhost, 0),
            max_length_bytes=_int_arg(a, "x-max-length-bytes", queue, vhost, 0),
            overflow=overflow,
            max_priority=max_priority or None,
            dead_letter_exchange=_str_arg(a, "x-dead-letter-exchange", queue, vhost),
            dead_letter_routing_key=_str_arg(a, "x-dead-letter-routing-key", queue, vhost),
            delivery_limit=delivery_limit,
            single_active_consumer=sac,
        )
