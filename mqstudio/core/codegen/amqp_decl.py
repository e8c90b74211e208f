"""The declaration statements a generated AMQP script runs before it publishes or consumes.

Owns: `pika_declare()` and `aio_pika_declare()`: the body of a ``declare(channel)`` function that
declares exchanges, then queues, then bindings (each with every argument of the design), for pika's
blocking channel and for aio-pika. A producer leaves out exclusive queues (only the connection that
declares one may use it). Stdlib only.
"""

from __future__ import annotations

from mqstudio.core.codegen.literals import py, py_block
from mqstudio.core.codegen.selection import AmqpPlan

_IN = " " * 4
_ARG = " " * 8


def _skipped(plan: AmqpPlan, for_producer: bool) -> set[str]:
    if not for_producer:
        return set()
    return {q.name for q in plan.queues if not plan.queue_declared_by_producer(q)}


def pika_declare(plan: AmqpPlan, *, for_producer: bool) -> str:
    skipped = _skipped(plan, for_producer)
    out = [
        "def declare(channel: BlockingChannel) -> None:",
        f'{_IN}"""Declare what this script needs. Idempotent: RabbitMQ accepts a redeclaration with the',
        f"{_IN}same arguments and refuses (406 PRECONDITION_FAILED) one with different arguments.\"\"\"",
    ]
    for ex in plan.exchanges:
        out += [
            f"{_IN}channel.exchange_declare(",
            f"{_ARG}exchange={py(ex.name)},",
            f"{_ARG}exchange_type={py(str(ex.type))},",
            f"{_ARG}durable={py(ex.durable)},",
            f"{_ARG}auto_delete={py(ex.auto_delete)},",
            f"{_ARG}internal={py(ex.internal)},",
            f"{_ARG}arguments={py_block(ex.arguments, 8)},",
            f"{_IN})",
        ]
    for q in plan.queues:
        if q.name in skipped:
            continue
        out += [
            f"{_IN}channel.queue_declare(",
            f"{_ARG}queue={py(q.name)},",
            f"{_ARG}durable={py(q.durable)},",
            f"{_ARG}exclusive={py(q.exclusive)},",
            f"{_ARG}auto_delete={py(q.auto_delete)},",
            f"{_ARG}arguments={py_block(q.arguments, 8)},",
            f"{_IN})",
        ]
    for b in plan.bindings:
        if b.to_exchange:
            out += [
                f"{_IN}channel.exchange_bind(",
                f"{_ARG}destination={py(b.destination)},",
                f"{_ARG}source={py(b.source)},",
            ]
        elif b.destination in skipped:
            continue
        else:
            out += [
                f"{_IN}channel.queue_bind(",
                f"{_ARG}queue={py(b.destination)},",
                f"{_ARG}exchange={py(b.source)},",
            ]
        out += [
            f"{_ARG}routing_key={py(b.routing_key)},",
            f"{_ARG}arguments={py_block(b.arguments, 8)},",
            f"{_IN})",
        ]
    return "\n".join(out) + "\n"


def aio_pika_declare(plan: AmqpPlan, *, for_producer: bool) -> str:
    skipped = _skipped(plan, for_producer)
    out = [
        "async def declare(channel: aio_pika.abc.AbstractChannel) -> None:",
        f'{_IN}"""Declare what this script needs. Idempotent: RabbitMQ accepts a redeclaration with the',
        f"{_IN}same arguments and refuses (406 PRECONDITION_FAILED) one with different arguments.\"\"\"",
    ]
    needs_exchanges = any(b.to_exchange for b in plan.bindings)
    needs_queues = any(not b.to_exchange and b.destination not in skipped for b in plan.bindings)
    if needs_exchanges:
        out.append(f"{_IN}exchanges: dict[str, aio_pika.abc.AbstractExchange] = {{}}")
    if needs_queues:
        out.append(f"{_IN}queues: dict[str, aio_pika.abc.AbstractQueue] = {{}}")
    for ex in plan.exchanges:
        target = f"exchanges[{py(ex.name)}] = " if needs_exchanges else ""
        out += [
            f"{_IN}{target}await channel.declare_exchange(",
            f"{_ARG}{py(ex.name)},",
            f"{_ARG}{py(str(ex.type))},",
            f"{_ARG}durable={py(ex.durable)},",
            f"{_ARG}auto_delete={py(ex.auto_delete)},",
            f"{_ARG}internal={py(ex.internal)},",
            f"{_ARG}arguments={py_block(ex.arguments, 8)},",
            f"{_IN})",
        ]
    for q in plan.queues:
        if q.name in skipped:
            continue
        target = f"queues[{py(q.name)}] = " if needs_queues else ""
        out += [
            f"{_IN}{target}await channel.declare_queue(",
            f"{_ARG}{py(q.name)},",
            f"{_ARG}durable={py(q.durable)},",
            f"{_ARG}exclusive={py(q.exclusive)},",
            f"{_ARG}auto_delete={py(q.auto_delete)},",
            f"{_ARG}arguments={py_block(q.arguments, 8)},",
            f"{_IN})",
        ]
    for b in plan.bindings:
        if b.to_exchange:
            owner = f"exchanges[{py(b.destination)}]"
        elif b.destination in skipped:
            continue
        else:
            owner = f"queues[{py(b.destination)}]"
        out += [
            f"{_IN}await {owner}.bind(",
            f"{_ARG}{py(b.source)},",
            f"{_ARG}routing_key={py(b.routing_key)},",
            f"{_ARG}arguments={py_block(b.arguments, 8)},",
            f"{_IN})",
        ]
    return "\n".join(out) + "\n"
