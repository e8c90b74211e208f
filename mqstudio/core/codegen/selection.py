"""What the generated code for one selected node must declare, publish and consume.

Owns: `AmqpPlan` / `KafkaPlan` and `resolve(topology, node_id)`. A queue gives a publisher (through the
first exchange bound to it, else the default exchange) and a consumer; an exchange or an AMQP producer
gives a publisher; an AMQP consumer gives a consumer of its queue; a Kafka topic or consumer group (or a
producer/consumer attached to one) gives a kafka-python producer and consumer. The declarations are the
closure the messages need: the exchanges and bindings on the way, the queues, and each queue's
dead-letter exchange with the queues bound to it (so a rejected message has somewhere to go).
Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mqstudio.core.codegen.errors import CodegenError
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Producer,
    Queue,
    Topic,
    Topology,
)

DEFAULT_PREFETCH = 10


@dataclass(frozen=True, slots=True)
class BindingDecl:
    source: str
    destination: str
    to_exchange: bool
    routing_key: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class Publish:
    exchange: str  # "" = the default exchange
    routing_key: str
    headers: dict[str, Any] = field(default_factory=dict)
    payload: str = ""
    priority: int | None = None
    ttl_ms: int | None = None
    exchange_type: str = "direct"


@dataclass(slots=True)
class Consume:
    queue: Queue
    prefetch: int = DEFAULT_PREFETCH
    dead_letter_queues: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AmqpPlan:
    subject: str  # "queue 'tasks'" — for titles and comments
    vhost: str
    exchanges: list[Exchange] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)
    bindings: list[BindingDecl] = field(default_factory=list)
    publish: Publish | None = None
    consume: Consume | None = None
    dead_letter_exchange: Exchange | None = None

    def queue_declared_by_producer(self, queue: Queue) -> bool:
        # An exclusive queue belongs to the connection that declares it: only its consumer may.
        return not queue.exclusive


@dataclass(slots=True)
class KafkaPlan:
    subject: str
    topics: list[Topic]
    group: str
    producer_topic: Topic
    key: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    payload: str = ""
    produce: bool = True
    consume: bool = True


Plan = AmqpPlan | KafkaPlan


def _declarable(exchange: Exchange) -> bool:
    return exchange.name != "" and not exchange.name.startswith("amq.")


def sample_routing_key(pattern: str, exchange_type: str) -> str:
    """A concrete routing key that a binding key matches: ``*`` becomes a word, ``#`` no words."""
    if exchange_type != ExchangeType.TOPIC:
        return pattern
    words = [("any" if w == "*" else w) for w in pattern.split(".") if w != "#"]
    return ".".join(words)


class _Collector:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        self.bindings: dict[str, Binding] = {}

    def exchange_closure(self, exchange: Exchange) -> None:
        """`exchange`, everything it routes to (following exchange-to-exchange bindings) and the
        dead-letter closure of each queue reached."""
        if exchange.id in self.exchanges:
            return
        self.exchanges[exchange.id] = exchange
        for binding in self.topology.bindings_from(exchange.id):
            target = self.topology.get(binding.destination)
            self.bindings[binding.id] = binding
            if isinstance(target, Exchange):
                self.exchange_closure(target)
            elif isinstance(target, Queue):
                self.queue_closure(target)

    def queue_closure(self, queue: Queue) -> None:
        if queue.id in self.queues:
            return
        self.queues[queue.id] = queue
        dlx = self.dead_letter_exchange(queue)
        if dlx is not None:
            self.exchange_closure(dlx)

    def dead_letter_exchange(self, queue: Queue) -> Exchange | None:
        name = queue.dead_letter_exchange
        return self.topology.find_exchange(name, queue.vhost) if name else None

    def into(self, plan: AmqpPlan) -> AmqpPlan:
        plan.exchanges = [e for e in self.exchanges.values() if _declarable(e)]
        plan.queues = list(self.queues.values())
        for binding in self.bindings.values():
            source = self.topology.node(binding.source)
            target = self.topology.node(binding.destination)
            if not isinstance(source, Exchange) or not _declarable(source):
                continue
            if isinstance(target, Exchange) and not _declarable(target):
                continue
            plan.bindings.append(
                BindingDecl(source.name, target.name, isinstance(target, Exchange), binding.routing_key,
                            dict(binding.arguments))
            )
        return plan


def _route_to_queue(topology: Topology, queue: Queue) -> tuple[Exchange | None, Publish]:
    """How a publisher reaches `queue`: the first producer whose exchange binds it, else the first
    exchange binding, else the default exchange with the queue's name as key."""
    incoming = [b for b in topology.bindings_to(queue.id) if isinstance(topology.get(b.source), Exchange)]
    for binding in incoming:
        for producer in topology.producers_of(binding.source):
            exchange = topology.node(binding.source)
            assert isinstance(exchange, Exchange)
            return exchange, _publish_for(exchange, producer, binding)
    if incoming:
        exchange = topology.node(incoming[0].source)
        assert isinstance(exchange, Exchange)
        return exchange, _publish_for(exchange, None, incoming[0])
    return None, Publish(exchange="", routing_key=queue.name)


def _publish_for(exchange: Exchange, producer: Producer | None, binding: Binding | None) -> Publish:
    kind = str(exchange.type)
    headers: dict[str, Any] = {}
    if producer is not None and producer.routing_key:
        key = producer.routing_key
    elif binding is not None:
        key = sample_routing_key(binding.routing_key, kind)
    else:
        key = ""
    if binding is not None and exchange.type == ExchangeType.HEADERS:
        headers = {k: v for k, v in binding.arguments.items() if not k.startswith("x-")}
    publish = Publish(exchange=exchange.name, routing_key=key, headers=headers, exchange_type=kind)
    if producer is not None:
        publish.headers = {**headers, **producer.headers}
        publish.payload = producer.payload
        publish.priority = producer.priority
        publish.ttl_ms = producer.ttl_ms
    return publish


def _subject(kind: str, name: str) -> str:
    return f"{kind} {name!r}"


def _queue_plan(topology: Topology, queue: Queue, *, publish: bool, consumer: Consumer | None) -> AmqpPlan:
    collector = _Collector(topology)
    plan = AmqpPlan(subject=_subject("queue", queue.name), vhost=queue.vhost)
    if publish:
        exchange, plan.publish = _route_to_queue(topology, queue)
        if exchange is not None:
            collector.exchanges[exchange.id] = exchange
    # Every exchange binding into the queue: a redeclare is cheap, a missing binding loses messages.
    for binding in topology.bindings_to(queue.id):
        source = topology.get(binding.source)
        if isinstance(source, Exchange):
            collector.exchanges.setdefault(source.id, source)
            collector.bindings[binding.id] = binding
    collector.queue_closure(queue)
    consumers = topology.consumers_of(queue.id)
    prefetch = consumer.prefetch if consumer else (consumers[0].prefetch if consumers else DEFAULT_PREFETCH)
    plan.consume = Consume(queue=queue, prefetch=max(prefetch, 0))
    plan.dead_letter_exchange = collector.dead_letter_exchange(queue)
    if plan.dead_letter_exchange is not None:
        plan.consume.dead_letter_queues = _dead_letter_queues(topology, queue, plan.dead_letter_exchange)
    return collector.into(plan)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching, word by word: ``*`` is one word, ``#`` zero or more."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and (p[0] in ("*", k[0])) and match(p[1:], k[1:])

    return match(pattern.split("."), key.split("."))


def _dead_letter_queues(topology: Topology, queue: Queue, dlx: Exchange) -> list[str]:
    """Queues bound to `dlx` that a message dead-lettered from `queue` reaches (by the queue's
    dead-letter routing key when it has one; any binding's queue otherwise, since the key is then the
    message's own)."""
    key = queue.dead_letter_routing_key
    names: list[str] = []
    for binding in topology.bindings_from(dlx.id):
        target = topology.get(binding.destination)
        if not isinstance(target, Queue) or target.name in names:
            continue
        if key is not None and dlx.type == ExchangeType.DIRECT and binding.routing_key != key:
            continue
        if key is not None and dlx.type == ExchangeType.TOPIC and not topic_matches(binding.routing_key, key):
            continue
        names.append(target.name)
    return names


def _exchange_plan(topology: Topology, exchange: Exchange, producer: Producer | None) -> AmqpPlan:
    collector = _Collector(topology)
    collector.exchange_closure(exchange)
    bindings = topology.bindings_from(exchange.id)
    binding = bindings[0] if bindings else None
    if producer is None:
        producers = topology.producers_of(exchange.id)
        producer = producers[0] if producers else None
    subject = _subject("producer", producer.name) if producer else _subject("exchange", exchange.name)
    plan = AmqpPlan(subject=subject, vhost=exchange.vhost)
    plan.publish = _publish_for(exchange, producer, binding)
    return collector.into(plan)


def _kafka_plan(topology: Topology, subject: str, topics: list[Topic], group: ConsumerGroup | None,
                producer: Producer | None, *, produce: bool, consume: bool) -> KafkaPlan:
    first = topics[0]
    if producer is None:
        producers = topology.producers_of(first.id)
        producer = producers[0] if producers else None
    plan = KafkaPlan(
        subject=subject,
        topics=topics,
        group=group.name if group else f"{first.name}-consumers",
        producer_topic=first,
        produce=produce,
        consume=consume,
    )
    if producer is not None:
        plan.key = producer.routing_key
        plan.headers = dict(producer.headers)
        plan.payload = producer.payload
    return plan


def _group_topics(topology: Topology, group: ConsumerGroup) -> list[Topic]:
    topics = [t for t in (topology.get(i) for i in group.topics) if isinstance(t, Topic)]
    if not topics:
        raise CodegenError(f"consumer group {group.name!r} subscribes to no topic: connect it to one first")
    return topics


def resolve(topology: Topology, node_id: str) -> Plan:
    """The plan for the node `node_id`; `CodegenError` when there is nothing to generate for it."""
    node = topology.get(node_id)
    if node is None or isinstance(node, Binding):
        raise CodegenError("select one exchange, queue, producer, consumer, topic or consumer group")
    if isinstance(node, Queue):
        return _queue_plan(topology, node, publish=True, consumer=None)
    if isinstance(node, Exchange):
        return _exchange_plan(topology, node, None)
    if isinstance(node, Topic):
        groups = [g for g in topology.consumer_groups if node.id in g.topics]
        return _kafka_plan(topology, _subject("topic", node.name), [node], groups[0] if groups else None,
                           None, produce=True, consume=True)
    if isinstance(node, ConsumerGroup):
        return _kafka_plan(topology, _subject("consumer group", node.name), _group_topics(topology, node),
                           node, None, produce=True, consume=True)
    if isinstance(node, Producer):
        target = topology.get(node.target) if node.target else None
        if isinstance(target, Exchange):
            return _exchange_plan(topology, target, node)
        if isinstance(target, Topic):
            groups = [g for g in topology.consumer_groups if target.id in g.topics]
            return _kafka_plan(topology, _subject("producer", node.name), [target],
                               groups[0] if groups else None, node, produce=True, consume=False)
        raise CodegenError(f"producer {node.name!r} has no target: connect it to an exchange or a topic")
    source = topology.get(node.source) if node.source else None
    if isinstance(source, Queue):
        plan = _queue_plan(topology, source, publish=False, consumer=node)
        plan.subject = _subject("consumer", node.name)
        return plan
    if isinstance(source, ConsumerGroup):
        return _kafka_plan(topology, _subject("consumer", node.name), _group_topics(topology, source),
                           source, None, produce=False, consume=True)
    raise CodegenError(f"consumer {node.name!r} has no source: connect it to a queue or a consumer group")


__all__ = ["DEFAULT_VHOST", "AmqpPlan", "BindingDecl", "Consume", "KafkaPlan", "Plan", "Publish", "resolve"]
