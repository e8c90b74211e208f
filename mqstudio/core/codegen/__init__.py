"""Code generation: ready-to-run client snippets for one selected node of a design.

Owns the public entry points `generate(topology, node_id) → list[Snippet]` and `supports()`. A queue
gives a producer and a consumer for it; an exchange or AMQP producer a producer; an AMQP consumer a
consumer (pika blocking and aio-pika, plus a Spring Cloud Stream ``application.yml`` block); a Kafka
topic, consumer group, or a producer/consumer on one gives kafka-python scripts and the Kafka-binder
YAML. Generated scripts read the broker address from ``AMQP_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` and
take ``--count`` (or ``MESSAGE_COUNT``). Qt-free and stdlib only, like the rest of `mqstudio.core`.
"""

from __future__ import annotations

from mqstudio.core.codegen import aiopika, kafkapy, spring
from mqstudio.core.codegen import pika_blocking as pika
from mqstudio.core.codegen.common import Snippet, tidy
from mqstudio.core.codegen.errors import CodegenError
from mqstudio.core.codegen.selection import AmqpPlan, KafkaPlan, resolve
from mqstudio.core.model import Topology

__all__ = ["CodegenError", "Snippet", "generate", "supports"]


def supports(topology: Topology, node_id: str) -> bool:
    """True when `generate` has code for the node (a producer needs a target, a consumer a source …)."""
    try:
        resolve(topology, node_id)
    except CodegenError:
        return False
    return True


def generate(topology: Topology, node_id: str) -> list[Snippet]:
    """The snippets for the node `node_id`, in the order a dialog shows them; `CodegenError` with the
    reason when there is nothing to generate for it."""
    plan = resolve(topology, node_id)
    snippets = _kafka(plan) if isinstance(plan, KafkaPlan) else _amqp(plan)
    return [
        Snippet(s.title, s.language, s.filename, tidy(s.code)) if s.language == "python" else s
        for s in snippets
    ]


def _amqp(plan: AmqpPlan) -> list[Snippet]:
    out: list[Snippet] = []
    if plan.publish is not None:
        out.append(Snippet("pika producer", "python", pika.PRODUCER_FILE, pika.producer(plan)))
    if plan.consume is not None:
        out.append(Snippet("pika consumer", "python", pika.CONSUMER_FILE, pika.consumer(plan)))
    if plan.publish is not None:
        out.append(Snippet("aio-pika producer", "python", aiopika.PRODUCER_FILE, aiopika.producer(plan)))
    if plan.consume is not None:
        out.append(Snippet("aio-pika consumer", "python", aiopika.CONSUMER_FILE, aiopika.consumer(plan)))
    out.append(Snippet("Spring Cloud Stream", "yaml", "application.yml", spring.rabbit(plan)))
    return out


def _kafka(plan: KafkaPlan) -> list[Snippet]:
    out: list[Snippet] = []
    if plan.produce:
        out.append(Snippet("kafka-python producer", "python", kafkapy.PRODUCER_FILE, kafkapy.producer(plan)))
    if plan.consume:
        out.append(Snippet("kafka-python consumer", "python", kafkapy.CONSUMER_FILE, kafkapy.consumer(plan)))
    out.append(Snippet("Spring Cloud Stream", "yaml", "application.yml", spring.kafka(plan)))
    return out
