"""plan(desired, live): what applying a design would do, in what order, and what it would destroy."""

from __future__ import annotations

import pytest

from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topic, Topology
from mqstudio.core.plan import BindingRef, StepKind, plan


def topo(*nodes: Exchange | Queue | Topic, bindings: tuple[tuple[str, str, str], ...] = ()) -> Topology:
    """A topology from nodes and (source name, destination name, routing key) bindings."""
    t = Topology()
    for node in nodes:
        t.add_node(node)
    by_name = {n.name: n.id for n in t.nodes}
    for source, destination, key in bindings:
        t.add_binding(Binding(by_name[source], by_name[destination], key))
    return t


def kinds(p: object) -> list[StepKind]:
    return [step.kind for step in p.steps]  # type: ignore[attr-defined]


def test_identical_topologies_give_an_empty_plan_even_with_different_ids() -> None:
    desired = topo(Exchange("orders", ExchangeType.TOPIC), Queue("q"), bindings=(("orders", "q", "a.#"),))
    live = topo(Exchange("orders", ExchangeType.TOPIC), Queue("q"), bindings=(("orders", "q", "a.#"),))
    result = plan(desired, live)
    assert result.is_empty
    assert result.warnings == []
    assert result.describe() == ["nothing to do: the broker already matches the design"]


def test_missing_objects_are_created_exchanges_then_queues_then_bindings() -> None:
    desired = topo(Queue("q"), Exchange("ex"), bindings=(("ex", "q", "k"),))
    result = plan(desired, Topology())
    assert kinds(result) == [StepKind.CREATE_EXCHANGE, StepKind.CREATE_QUEUE, StepKind.BIND]
    bind = result.steps[2].obj
    assert bind == BindingRef("/", "ex", "q", bind.destination_type, "k")  # type: ignore[union-attr]
    assert not any(step.destructive for step in result.steps)


def test_missing_binding_between_existing_objects_is_bound() -> None:
    desired = topo(Exchange("ex"), Queue("q"), bindings=(("ex", "q", "k"),))
    live = topo(Exchange("ex"), Queue("q"))
    assert kinds(plan(desired, live)) == [StepKind.BIND]


def test_binding_with_other_routing_key_is_bound_and_the_old_one_unbound() -> None:
    desired = topo(Exchange("ex"), Queue("q"), bindings=(("ex", "q", "new"),))
    live = topo(Exchange("ex"), Queue("q"), bindings=(("ex", "q", "old"),))
    result = plan(desired, live)
    assert kinds(result) == [StepKind.BIND, StepKind.UNBIND]
    assert result.steps[1].obj.routing_key == "old"  # type: ignore[union-attr]


def test_binding_arguments_are_part_of_its_identity() -> None:
    desired = topo(Exchange("h", ExchangeType.HEADERS), Queue("q"))
    live = topo(Exchange("h", ExchangeType.HEADERS), Queue("q"))
    desired.add_binding(
        Binding(desired.exchanges[0].id, desired.queues[0].id, "", {"x-match": "all", "a": 1})
    )
    live.add_binding(Binding(live.exchanges[0].id, live.queues[0].id, "", {"a": 1, "x-match": "all"}))
    assert plan(desired, live).is_empty
    live.set_binding_field(live.bindings[0].id, "arguments", {"x-match": "any", "a": 1})
    assert kinds(plan(desired, live)) == [StepKind.BIND, StepKind.UNBIND]


def test_queue_argument_change_is_a_destructive_recreate_needing_consent_with_a_warning() -> None:
    desired = topo(Queue("orders", arguments={"x-message-ttl": 10000}))
    live = topo(Queue("orders", arguments={"x-message-ttl": 5000}))
    result = plan(desired, live)
    assert kinds(result) == [StepKind.RECREATE_QUEUE]
    step = result.steps[0]
    assert step.destructive and step.needs_consent
    assert "x-message-ttl 5000 → 10000" in step.reason
    assert len(result.warnings) == 1
    assert "'orders'" in result.warnings[0] and "lost" in result.warnings[0]
    assert "x-message-ttl" in result.warnings[0]
    assert result.needs_consent


@pytest.mark.parametrize(
    ("desired_queue", "change"),
    [
        (Queue("q", durable=False), "durable"),
        (Queue("q", exclusive=True), "exclusive"),
        (Queue("q", auto_delete=True), "auto_delete"),
        (Queue("q", arguments={"x-queue-type": "quorum"}), "x-queue-type"),
    ],
)
def test_queue_changes_rabbitmq_cannot_apply_in_place_recreate_it(desired_queue: Queue, change: str) -> None:
    result = plan(topo(desired_queue), topo(Queue("q")))
    assert kinds(result) == [StepKind.RECREATE_QUEUE]
    assert change in result.steps[0].reason


def test_explicit_classic_queue_type_matches_a_queue_declared_without_one() -> None:
    desired = topo(Queue("q", arguments={"x-queue-type": "classic"}))
    assert plan(desired, topo(Queue("q"))).is_empty


def test_recreated_queue_gets_its_bindings_back_after_the_recreate() -> None:
    desired = topo(Exchange("ex"), Queue("q", durable=False), bindings=(("ex", "q", "k"),))
    live = topo(Exchange("ex"), Queue("q"), bindings=(("ex", "q", "k"),))
    result = plan(desired, live)
    assert kinds(result) == [StepKind.RECREATE_QUEUE, StepKind.BIND]
    assert "recreated" in result.steps[1].reason


def test_exchange_type_change_recreates_it_without_consent_and_rebinds_both_directions() -> None:
    desired = topo(
        Exchange("up"),
        Exchange("ex", ExchangeType.FANOUT),
        Queue("q"),
        bindings=(("up", "ex", "k"), ("ex", "q", "")),
    )
    live = topo(
        Exchange("up"),
        Exchange("ex", ExchangeType.DIRECT),
        Queue("q"),
        bindings=(("up", "ex", "k"), ("ex", "q", "")),
    )
    result = plan(desired, live)
    assert kinds(result) == [StepKind.RECREATE_EXCHANGE, StepKind.BIND, StepKind.BIND]
    recreate = result.steps[0]
    assert recreate.destructive and not recreate.needs_consent
    assert "type direct → fanout" in recreate.reason
    assert not result.needs_consent


@pytest.mark.parametrize(
    "desired_exchange",
    [
        Exchange("ex", durable=False),
        Exchange("ex", auto_delete=True),
        Exchange("ex", internal=True),
        Exchange("ex", arguments={"alternate-exchange": "ae"}),
    ],
)
def test_exchange_property_changes_recreate_it(desired_exchange: Exchange) -> None:
    assert kinds(plan(topo(desired_exchange), topo(Exchange("ex")))) == [StepKind.RECREATE_EXCHANGE]


def test_objects_only_live_are_reported_not_deleted_by_default() -> None:
    live = topo(Exchange("legacy"), Queue("old"), bindings=(("legacy", "old", "k"),))
    result = plan(Topology(), live)
    assert result.is_empty
    assert any("'old'" in item for item in result.unmanaged)
    assert any("'legacy'" in item for item in result.unmanaged)
    assert any(item.startswith("binding") for item in result.unmanaged)
    assert any("left alone" in line for line in result.describe())


def test_prune_deletes_live_only_objects_last_and_queue_deletes_need_consent() -> None:
    desired = topo(Exchange("new"))
    live = topo(Exchange("legacy"), Queue("old"), bindings=(("legacy", "old", "k"),))
    result = plan(desired, live, prune=True)
    assert kinds(result) == [
        StepKind.CREATE_EXCHANGE,
        StepKind.UNBIND,
        StepKind.DELETE_QUEUE,
        StepKind.DELETE_EXCHANGE,
    ]
    delete_queue = result.of_kind(StepKind.DELETE_QUEUE)[0]
    assert delete_queue.destructive and delete_queue.needs_consent
    assert result.unmanaged == []


def test_builtin_exchanges_are_never_created_or_deleted() -> None:
    desired = topo(
        Exchange("amq.topic", ExchangeType.TOPIC), Queue("mqtt"), bindings=(("amq.topic", "mqtt", "s.#"),)
    )
    live = topo(Exchange("amq.direct"), Exchange("amq.topic", ExchangeType.TOPIC), Queue("mqtt"))
    result = plan(desired, live, prune=True)
    assert kinds(result) == [StepKind.BIND]
    assert result.steps[0].obj.source == "amq.topic"  # type: ignore[union-attr]


def test_objects_are_matched_by_vhost_and_name() -> None:
    desired = topo(Queue("q", vhost="a"))
    live = topo(Queue("q", vhost="b"))
    result = plan(desired, live)
    assert kinds(result) == [StepKind.CREATE_QUEUE]
    assert result.steps[0].obj.vhost == "a"  # type: ignore[union-attr]
    assert any("vhost 'b'" in item for item in result.unmanaged)


def test_vhost_argument_limits_the_plan_to_that_vhost() -> None:
    desired = topo(Queue("q", vhost="a"), Queue("r", vhost="b"))
    result = plan(desired, Topology(), vhost="b")
    assert [step.obj.name for step in result.steps] == ["r"]  # type: ignore[union-attr]


def test_kafka_partitions_grow_with_an_alter_step() -> None:
    result = plan(topo(Topic("events", partitions=6)), topo(Topic("events", partitions=3)))
    assert kinds(result) == [StepKind.ALTER_TOPIC_PARTITIONS]
    assert "3 → 6" in result.steps[0].reason
    assert not result.steps[0].destructive


def test_kafka_partition_decrease_is_a_warning_and_no_step() -> None:
    result = plan(topo(Topic("events", partitions=2)), topo(Topic("events", partitions=3)))
    assert result.is_empty
    assert len(result.warnings) == 1 and "only add partitions" in result.warnings[0]


def test_kafka_replication_factor_change_is_a_warning_and_no_step() -> None:
    result = plan(topo(Topic("events", replication_factor=3)), topo(Topic("events", replication_factor=1)))
    assert result.is_empty
    assert "replication factor" in result.warnings[0]


def test_kafka_missing_topic_is_created_and_live_only_topic_deleted_only_with_prune() -> None:
    result = plan(topo(Topic("new", partitions=3)), topo(Topic("old")))
    assert kinds(result) == [StepKind.CREATE_TOPIC]
    assert result.unmanaged == ["topic 'old'"]
    pruned = plan(topo(Topic("new", partitions=3)), topo(Topic("old")), prune=True)
    assert kinds(pruned) == [StepKind.CREATE_TOPIC, StepKind.DELETE_TOPIC]
    assert pruned.steps[1].needs_consent


def test_describe_numbers_steps_and_marks_destructive_ones() -> None:
    desired = topo(Exchange("ex"), Queue("q", arguments={"x-max-length": 10}))
    live = topo(Queue("q"))
    lines = plan(desired, live).describe()
    assert lines[0].startswith("1. create exchange 'ex'")
    assert lines[1].startswith("2. recreate queue 'q'")
    assert lines[1].endswith("[destructive, needs consent]")
    assert lines[2].startswith("warning: ")


def test_prune_never_deletes_exclusive_queues_of_live_connections() -> None:
    result = plan(Topology(), topo(Queue("amq.gen-reply", exclusive=True, durable=False)), prune=True)
    assert result.is_empty
    assert result.unmanaged == ["queue 'amq.gen-reply' in vhost '/'"]


# -- live bindings outside the design that touch a recreated object -------------------------------
def _legacy_live(queue_args: dict[str, object]) -> Topology:
    return topo(
        Exchange("legacy", ExchangeType.FANOUT),
        Exchange("orders", ExchangeType.TOPIC),
        Queue("work", arguments=dict(queue_args)),
        bindings=(("legacy", "work", ""), ("orders", "work", "a.#")),
    )


def test_recreate_binds_live_only_bindings_again_and_lists_them_as_left_alone() -> None:
    desired = topo(
        Exchange("orders", ExchangeType.TOPIC),
        Queue("work", arguments={"x-max-length": 10}),
        bindings=(("orders", "work", "a.#"),),
    )
    result = plan(desired, _legacy_live({}))
    assert kinds(result) == [StepKind.RECREATE_QUEUE, StepKind.BIND, StepKind.BIND]
    legacy = next(s for s in result.steps if s.kind is StepKind.BIND and "legacy" in s.target)
    assert "left alone" in legacy.reason and "queue 'work'" in legacy.reason
    assert isinstance(legacy.obj, BindingRef) and legacy.obj.source == "legacy"
    assert any("binding 'legacy' → queue 'work'" in item for item in result.unmanaged)


def test_recreate_with_prune_unbinds_live_only_bindings_explicitly() -> None:
    desired = topo(Queue("work", arguments={"x-max-length": 10}))
    live = topo(Exchange("legacy", ExchangeType.FANOUT), Queue("work"), bindings=(("legacy", "work", ""),))
    result = plan(desired, live, prune=True)
    assert kinds(result) == [StepKind.RECREATE_QUEUE, StepKind.UNBIND, StepKind.DELETE_EXCHANGE]
    assert "recreate of queue 'work' removes it" in result.steps[1].reason
    assert not result.unmanaged


def test_recreated_exchange_rebinds_live_only_destinations() -> None:
    desired = topo(Exchange("orders", ExchangeType.FANOUT))
    live = topo(Exchange("orders", ExchangeType.TOPIC), Queue("audit"), bindings=(("orders", "audit", "#"),))
    result = plan(desired, live)
    assert kinds(result) == [StepKind.RECREATE_EXCHANGE, StepKind.BIND]
    assert "recreate of exchange 'orders'" in result.steps[1].reason


def test_binding_the_design_dropped_is_not_bound_again_after_a_recreate() -> None:
    desired = topo(Exchange("orders", ExchangeType.TOPIC), Queue("work", arguments={"x-max-length": 1}))
    live = topo(Exchange("orders", ExchangeType.TOPIC), Queue("work"), bindings=(("orders", "work", "a.#"),))
    assert kinds(plan(desired, live)) == [StepKind.RECREATE_QUEUE]


# -- default queue type ---------------------------------------------------------------------------
def test_quorum_default_vhost_does_not_recreate_queues_declared_without_a_type() -> None:
    desired = topo(Queue("work"))
    live = topo(Queue("work", arguments={"x-queue-type": "quorum"}))
    assert kinds(plan(desired, live)) == [StepKind.RECREATE_QUEUE]
    assert plan(desired, live, default_queue_type="quorum").is_empty
    assert plan(desired, live, default_queue_type={"/": "quorum"}).is_empty
    assert not plan(desired, live, default_queue_type={"other": "quorum"}).is_empty


def test_default_queue_type_only_applies_to_queues_that_type_accepts() -> None:
    # augment_declare_args: an exclusive or transient queue stays classic in a quorum-default vhost.
    desired = topo(Queue("tmp", durable=False))
    live = topo(Queue("tmp", durable=False, arguments={"x-queue-type": "classic"}))
    assert plan(desired, live, default_queue_type="quorum").is_empty


def test_exchange_type_change_to_a_plugin_type_names_both() -> None:
    result = plan(topo(Exchange("lb", "x-consistent-hash")), topo(Exchange("lb", ExchangeType.DIRECT)))
    assert result.steps[0].reason == "type direct → x-consistent-hash"
