"""apply_topology: every example design lands in the engine whole, with ids mapped to broker names."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqstudio.backends.translate import TranslationError, apply_topology
from mqstudio.broker.broker import Broker
from mqstudio.broker.exchanges import DestinationKind
from mqstudio.broker.message import Properties
from mqstudio.core.loading import load_any
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topology

EXAMPLES = sorted((Path(__file__).parents[2] / "resources" / "examples").glob("*.mqs.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_declared_whole(path: Path) -> None:
    topology = load_any(path).topology
    broker = Broker()
    mapping = apply_topology(broker, topology)
    vh = broker.vhost("/")
    for ex in topology.exchanges:
        assert mapping.exchanges[ex.id] == ex.name
        assert ex.name in vh.exchanges
        assert mapping.exchange_id(ex.name) == ex.id
    for q in topology.queues:
        assert mapping.queues[q.id] == q.name
        assert mapping.queue_id(q.name) == q.id
        declared = vh.queues[q.name]
        assert declared.args.dead_letter_exchange == q.dead_letter_exchange
        assert declared.args.message_ttl == q.message_ttl
    for b in topology.bindings:
        record = mapping.bindings[b.id]
        assert record.routing_key == b.routing_key
        assert record.destination.name == topology.node(b.destination).name
        assert b.id in mapping.binding_ids(record)
        assert record in vh.exchanges[topology.node(b.source).name].bindings


def test_exchange_to_exchange_binding_routes_through_both() -> None:
    t = Topology()
    front, back = Exchange("front", ExchangeType.FANOUT), Exchange("back", ExchangeType.DIRECT)
    q = Queue("q")
    for node in (front, back, q):
        t.add_node(node)
    e2e = Binding(front.id, back.id)
    t.add_binding(e2e)
    t.add_binding(Binding(back.id, q.id, "k"))
    broker = Broker()
    mapping = apply_topology(broker, t)
    assert mapping.bindings[e2e.id].destination.kind is DestinationKind.EXCHANGE
    assert broker.publish("/", "front", "k", Properties(), b"x").routed == ("q",)


def test_queue_arguments_reach_the_engine() -> None:
    t = Topology()
    t.add_node(Queue("limited", arguments={"x-max-length": 3, "x-overflow": "reject-publish"}))
    broker = Broker()
    apply_topology(broker, t)
    for _ in range(3):
        broker.publish("/", "", "limited", Properties(), b"x")
    assert broker.publish("/", "", "limited", Properties(), b"x").rejected_by_overflow == ("limited",)


def test_refused_declaration_names_the_object() -> None:
    t = Topology()
    q = Queue("q", arguments={"x-overflow": "explode"})
    t.add_node(q)
    with pytest.raises(TranslationError) as info:
        apply_topology(Broker(), t)
    assert info.value.object_id == q.id
    assert str(info.value).startswith("queue 'q':")


def test_only_the_chosen_vhost_is_declared() -> None:
    t = Topology()
    t.add_node(Queue("here", vhost="/"))
    t.add_node(Queue("there", vhost="other"))
    broker = Broker()
    mapping = apply_topology(broker, t, "other")
    assert list(mapping.queues.values()) == ["there"]
    assert "here" not in broker.vhost("other").queues
