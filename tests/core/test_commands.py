"""Undoable commands: validate before mutating, undo restores the document exactly, the stack behaves
like QUndoStack."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqstudio.core.commands import (
    AddNode,
    Bind,
    Command,
    EditBinding,
    Macro,
    MoveNodes,
    RemoveNodes,
    RenameNode,
    SetArgument,
    SetNodeField,
    Unbind,
    UndoStack,
)
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import (
    DuplicateBindingError,
    DuplicateNameError,
    InvalidArgumentError,
    InvalidBindingError,
    InvalidNameError,
    TopologyError,
    UnknownObjectError,
)
from mqstudio.core.model import Binding, ConsumerGroup, Exchange, ExchangeType, Queue, Topic


def snapshot(doc: TopologyDocument) -> Any:
    """Everything a command may touch, as plain values (order included)."""
    t = doc.topology
    return (
        [(type(n).__name__, dataclasses.asdict(n)) for n in t.nodes],
        [dataclasses.asdict(b) for b in t.bindings],
        dict(doc.layout),
        list(t.vhosts),
    )


@pytest.fixture
def doc() -> TopologyDocument:
    d = TopologyDocument()
    t = d.topology
    t.add_node(Exchange("orders", type=ExchangeType.TOPIC, id="ex"))
    t.add_node(Exchange("orders.dlx", id="dlx"))
    t.add_node(Queue("billing", id="q1", arguments={"x-dead-letter-exchange": "orders.dlx"}))
    t.add_node(Queue("shipping", id="q2"))
    t.add_node(Queue("parked", id="q3"))
    t.add_binding(Binding("ex", "q1", "order.*", id="b1"))
    t.add_binding(Binding("ex", "q2", "order.created", id="b2"))
    t.add_binding(Binding("dlx", "q3", "", id="b3"))
    t.add_binding(Binding("ex", "q1", "refund.#", id="b4"))
    t.add_binding(Binding("ex", "q2", "refund.#", id="b5"))
    t.add_binding(Binding("ex", "q1", "audit", id="b6"))
    d.layout.update({"ex": (0.0, 0.0), "q1": (100.0, 50.0), "q2": (100.0, 150.0)})
    d.set_dirty(False)
    return d


def assert_refused(doc: TopologyDocument, command: Command, error: type[Exception]) -> TopologyError:
    before = snapshot(doc)
    with pytest.raises(error) as caught:
        command.do()
    assert snapshot(doc) == before
    assert isinstance(caught.value, TopologyError)
    return caught.value


# -- remove -------------------------------------------------------------------------------------
def test_undo_of_removing_a_node_with_three_bindings_restores_them_in_order(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    cmd = RemoveNodes(doc, ["q1"])
    cmd.do()
    assert doc.topology.get("q1") is None
    assert [b.id for b in doc.topology.bindings] == ["b2", "b3", "b5"]
    assert "q1" not in doc.layout
    cmd.undo()
    assert [b.id for b in doc.topology.bindings] == ["b1", "b2", "b3", "b4", "b5", "b6"]
    assert snapshot(doc) == before


def test_removing_connected_nodes_together_removes_shared_bindings_once(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    cmd = RemoveNodes(doc, ["q2", "ex", "q2"])
    cmd.do()
    assert [n.id for n in doc.topology.nodes] == ["dlx", "q1", "q3"]
    assert [b.id for b in doc.topology.bindings] == ["b3"]
    cmd.undo()
    assert snapshot(doc) == before
    cmd.do()  # redo after undo gives the same result
    assert [b.id for b in doc.topology.bindings] == ["b3"]


def test_removing_an_unknown_node_is_refused_without_changes(doc: TopologyDocument) -> None:
    assert_refused(doc, RemoveNodes(doc, ["q1", "nope"]), UnknownObjectError)


def test_removing_a_topic_drops_and_restores_group_subscriptions(doc: TopologyDocument) -> None:
    doc.topology.add_node(Topic("events", id="t1"))
    doc.topology.add_node(Topic("audit", id="t2"))
    doc.topology.add_node(ConsumerGroup("g", topics=["t1", "t2"], id="g"))
    before = snapshot(doc)
    cmd = RemoveNodes(doc, ["t1"])
    cmd.do()
    group = doc.topology.node("g")
    assert isinstance(group, ConsumerGroup)
    assert group.topics == ["t2"]
    cmd.undo()
    assert snapshot(doc) == before


# -- add ----------------------------------------------------------------------------------------
def test_add_node_places_it_and_undo_takes_it_and_its_place_away(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    seen: list[tuple[str, Any]] = []
    doc.topology.node_added.connect(lambda node: seen.append((node.id, doc.position(node.id))))
    cmd = AddNode(doc, Queue("audit", id="q9"), (10, 20))
    cmd.do()
    assert seen == [("q9", (10.0, 20.0))]  # the position is known when the canvas hears node_added
    cmd.undo()
    assert snapshot(doc) == before


@pytest.mark.parametrize(
    ("node", "error"),
    [
        (Queue("billing"), DuplicateNameError),
        (Queue("amq.gen-1"), InvalidNameError),
        (Queue("q", arguments={"x-max-priority": 300}), InvalidArgumentError),
        (Queue("fresh", id="q1"), DuplicateNameError),
    ],
)
def test_add_node_refuses_invalid_nodes(doc: TopologyDocument, node: Any, error: type[Exception]) -> None:
    assert_refused(doc, AddNode(doc, node, (1, 1)), error)


def test_the_default_exchange_may_be_added_once_per_vhost(doc: TopologyDocument) -> None:
    AddNode(doc, Exchange("", id="default")).do()
    assert_refused(doc, AddNode(doc, Exchange("", id="default2")), DuplicateNameError)
    AddNode(doc, Exchange("", vhost="/eu", id="default-eu")).do()


def test_same_name_in_another_vhost_is_allowed(doc: TopologyDocument) -> None:
    AddNode(doc, Queue("billing", vhost="/eu")).do()
    assert doc.topology.find_queue("billing", "/eu") is not None


# -- rename -------------------------------------------------------------------------------------
def test_renaming_an_exchange_updates_dlx_and_alternate_exchange_references(doc: TopologyDocument) -> None:
    t = doc.topology
    t.add_node(Exchange("front", id="front", arguments={"alternate-exchange": "orders.dlx"}))
    t.add_node(Queue("elsewhere", vhost="/eu", id="q-eu", arguments={"x-dead-letter-exchange": "orders.dlx"}))
    before = snapshot(doc)
    cmd = RenameNode(doc, "dlx", "orders.dead")
    cmd.do()
    assert t.node("q1").arguments == {"x-dead-letter-exchange": "orders.dead"}  # type: ignore[union-attr]
    assert t.node("front").arguments == {"alternate-exchange": "orders.dead"}  # type: ignore[union-attr]
    assert t.node("q-eu").arguments == {"x-dead-letter-exchange": "orders.dlx"}  # type: ignore[union-attr]
    cmd.undo()
    assert snapshot(doc) == before


def test_rename_can_leave_references_alone(doc: TopologyDocument) -> None:
    RenameNode(doc, "dlx", "orders.dead", update_references=False).do()
    assert doc.topology.node("q1").arguments == {"x-dead-letter-exchange": "orders.dlx"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("node_id", "name", "error"),
    [
        ("q1", "shipping", DuplicateNameError),
        ("q1", "", InvalidNameError),
        ("q1", "amq.billing", InvalidNameError),
        ("ex", "", InvalidNameError),
        ("ex", "x" * 256, InvalidNameError),
        ("missing", "x", UnknownObjectError),
    ],
)
def test_rename_refuses_bad_names(
    doc: TopologyDocument, node_id: str, name: str, error: type[Exception]
) -> None:
    assert_refused(doc, RenameNode(doc, node_id, name), error)


def test_the_default_exchange_cannot_be_renamed(doc: TopologyDocument) -> None:
    doc.topology.add_node(Exchange("", id="default"))
    err = assert_refused(doc, RenameNode(doc, "default", "mine"), InvalidNameError)
    assert "default exchange" in err.message


# -- fields and arguments -----------------------------------------------------------------------
def test_refused_set_argument_leaves_the_model_unchanged(doc: TopologyDocument) -> None:
    err = assert_refused(doc, SetArgument(doc, "q1", "x-message-ttl", -5), InvalidArgumentError)
    assert err.path == "arguments.x-message-ttl"


def test_set_argument_sets_and_undo_restores(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    cmd = SetArgument(doc, "q1", "x-message-ttl", 30_000)
    cmd.do()
    assert doc.topology.node("q1").arguments["x-message-ttl"] == 30_000  # type: ignore[union-attr]
    cmd.undo()
    assert snapshot(doc) == before


def test_set_argument_can_remove_an_argument(doc: TopologyDocument) -> None:
    cmd = SetArgument(doc, "q1", "x-dead-letter-exchange", remove=True)
    cmd.do()
    assert doc.topology.node("q1").arguments == {}  # type: ignore[union-attr]
    cmd.undo()
    assert doc.topology.node("q1").arguments == {"x-dead-letter-exchange": "orders.dlx"}  # type: ignore[union-attr]


def test_removing_the_dlx_while_a_dead_letter_key_is_set_is_refused(doc: TopologyDocument) -> None:
    SetArgument(doc, "q1", "x-dead-letter-routing-key", "parked").do()
    assert_refused(doc, SetArgument(doc, "q1", "x-dead-letter-exchange", remove=True), InvalidArgumentError)


def test_an_existing_problem_does_not_block_unrelated_edits(doc: TopologyDocument) -> None:
    doc.topology.node("q2").arguments["x-expires"] = 0  # type: ignore[union-attr]  # e.g. imported as is
    SetArgument(doc, "q2", "x-message-ttl", 100).do()
    assert doc.topology.node("q2").arguments["x-message-ttl"] == 100  # type: ignore[union-attr]


def test_set_argument_on_a_topic_edits_its_configs(doc: TopologyDocument) -> None:
    doc.topology.add_node(Topic("events", id="t1"))
    SetArgument(doc, "t1", "cleanup.policy", "compact").do()
    assert doc.topology.node("t1").configs == {"cleanup.policy": "compact"}  # type: ignore[union-attr]
    assert_refused(doc, SetArgument(doc, "t1", "retention.ms", "forever"), InvalidArgumentError)


def test_set_argument_the_caller_mutates_later_does_not_leak_into_the_model(doc: TopologyDocument) -> None:
    value = {"a": 1}
    SetArgument(doc, "q2", "x-custom", value).do()
    value["a"] = 2
    assert doc.topology.node("q2").arguments["x-custom"] == {"a": 1}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("node_id", "field", "value", "error"),
    [
        ("q1", "durable", 1, InvalidArgumentError),
        ("q1", "id", "other", InvalidArgumentError),
        ("q1", "colour", "red", InvalidArgumentError),
        ("q1", "arguments", {"x-queue-type": "quorum", "x-max-priority": 2}, InvalidArgumentError),
        ("q1", "name", "shipping", DuplicateNameError),
        ("q1", "vhost", "/eu", InvalidBindingError),
        ("ex", "type", "", InvalidArgumentError),
    ],
)
def test_set_node_field_refuses_invalid_values(
    doc: TopologyDocument, node_id: str, field: str, value: Any, error: type[Exception]
) -> None:
    assert_refused(doc, SetNodeField(doc, node_id, field, value), error)


def test_set_exchange_type_accepts_plugin_types_and_normalises_known_ones(doc: TopologyDocument) -> None:
    cmd = SetNodeField(doc, "ex", "type", "x-consistent-hash")
    cmd.do()
    assert doc.topology.node("ex").type == "x-consistent-hash"  # type: ignore[union-attr]
    cmd.undo()
    assert doc.topology.node("ex").type is ExchangeType.TOPIC  # type: ignore[union-attr]
    SetNodeField(doc, "ex", "type", "fanout").do()
    assert doc.topology.node("ex").type is ExchangeType.FANOUT  # type: ignore[union-attr]


def test_set_node_field_sets_and_undo_restores(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    cmd = SetNodeField(doc, "q1", "durable", False)
    cmd.do()
    assert doc.topology.node("q1").durable is False  # type: ignore[union-attr]
    cmd.undo()
    assert snapshot(doc) == before


# -- bindings -----------------------------------------------------------------------------------
def test_bind_adds_and_undo_removes(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    cmd = Bind(doc, "ex", "q3", "order.#", binding_id="b9")
    cmd.do()
    assert doc.topology.binding("b9").routing_key == "order.#"
    cmd.undo()
    assert snapshot(doc) == before


@pytest.mark.parametrize(
    ("source", "destination", "key", "error"),
    [
        ("ex", "q1", "order.*", DuplicateBindingError),
        ("q1", "ex", "", InvalidBindingError),
        ("ex", "nowhere", "", UnknownObjectError),
    ],
)
def test_bind_refuses_what_check_bind_refuses(
    doc: TopologyDocument, source: str, destination: str, key: str, error: type[Exception]
) -> None:
    assert_refused(doc, Bind(doc, source, destination, key), error)


def test_unbind_restores_the_binding_at_its_index(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    cmd = Unbind(doc, "b2")
    cmd.do()
    assert "b2" not in doc.topology
    cmd.undo()
    assert snapshot(doc) == before


def test_edit_binding_changes_key_and_undo_restores(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    cmd = EditBinding(doc, "b1", routing_key="order.created.*", arguments={"note": "x"})
    cmd.do()
    b = doc.topology.binding("b1")
    assert (b.routing_key, b.arguments) == ("order.created.*", {"note": "x"})
    cmd.undo()
    assert snapshot(doc) == before


def test_edit_binding_into_a_duplicate_is_refused(doc: TopologyDocument) -> None:
    assert_refused(doc, EditBinding(doc, "b4", routing_key="order.*"), DuplicateBindingError)


def test_edit_binding_keeping_its_own_key_is_not_a_duplicate(doc: TopologyDocument) -> None:
    EditBinding(doc, "b4", routing_key="refund.#").do()


# -- moves, macros ------------------------------------------------------------------------------
def test_consecutive_moves_of_the_same_nodes_merge_into_one_step(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    stack.push(MoveNodes(doc, {"q1": (1, 1), "q2": (2, 2)}))
    stack.push(MoveNodes(doc, {"q1": (5, 5), "q2": (6, 6)}))
    assert len(stack) == 1
    assert doc.position("q1") == (5.0, 5.0)
    stack.undo()
    assert doc.position("q1") == (100.0, 50.0)
    assert doc.position("q2") == (100.0, 150.0)


def test_moves_of_different_nodes_stay_separate(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    stack.push(MoveNodes(doc, {"q1": (1, 1)}))
    stack.push(MoveNodes(doc, {"q2": (2, 2)}))
    assert len(stack) == 2


def test_moving_a_node_without_a_position_and_undoing_drops_it_again(doc: TopologyDocument) -> None:
    moved: list[tuple[str, Any]] = []
    doc.node_moved.connect(lambda node_id, pos: moved.append((node_id, pos)))
    cmd = MoveNodes(doc, {"q3": (7, 8)})
    cmd.do()
    cmd.undo()
    assert "q3" not in doc.layout
    assert moved == [("q3", (7.0, 8.0)), ("q3", None)]


def test_moving_an_unknown_node_is_refused(doc: TopologyDocument) -> None:
    assert_refused(doc, MoveNodes(doc, {"q1": (1, 1), "ghost": (2, 2)}), UnknownObjectError)


def test_a_refused_step_undoes_the_macro_steps_already_done(doc: TopologyDocument) -> None:
    macro = Macro(
        "Wire parking",
        [
            AddNode(doc, Queue("parking", id="q8")),
            Bind(doc, "dlx", "q8", "x"),
            SetArgument(doc, "q8", "x-max-length", -1),
        ],
    )
    assert_refused(doc, macro, InvalidArgumentError)


def test_macro_undoes_in_reverse_order(doc: TopologyDocument) -> None:
    before = snapshot(doc)
    macro = Macro("Wire parking", [AddNode(doc, Queue("parking", id="q8")), Bind(doc, "dlx", "q8", "x")])
    macro.do()
    assert doc.topology.bindings_to("q8")
    macro.undo()
    assert snapshot(doc) == before


# -- the stack ----------------------------------------------------------------------------------
def test_stack_undo_redo_texts_and_flags(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    assert (stack.can_undo(), stack.can_redo(), stack.undo_text()) == (False, False, "")
    stack.push(RenameNode(doc, "q2", "shipping.eu"))
    stack.push(SetArgument(doc, "q2", "x-message-ttl", 10))
    assert stack.undo_text() == "Set x-message-ttl"
    stack.undo()
    assert (stack.undo_text(), stack.redo_text()) == ("Rename to 'shipping.eu'", "Set x-message-ttl")
    stack.redo()
    assert doc.topology.node("q2").arguments == {"x-message-ttl": 10}  # type: ignore[union-attr]
    assert stack.index == 2 and not stack.can_redo()
    stack.undo()
    stack.undo()
    stack.undo()  # nothing left: no-op
    assert stack.index == 0


def test_refused_push_leaves_the_stack_and_model_unchanged(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    stack.push(RenameNode(doc, "q2", "shipping.eu"))
    stack.undo()
    before = snapshot(doc)
    with pytest.raises(InvalidArgumentError):
        stack.push(SetArgument(doc, "q1", "x-expires", 0))
    assert snapshot(doc) == before
    assert (len(stack), stack.index, stack.redo_text()) == (1, 0, "Rename to 'shipping.eu'")


def test_document_dirty_follows_the_clean_state(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    flips: list[bool] = []
    doc.dirty_changed.connect(flips.append)
    stack.push(SetArgument(doc, "q2", "x-message-ttl", 10))
    assert doc.dirty and not stack.is_clean()
    stack.undo()
    assert not doc.dirty and stack.is_clean()
    stack.redo()
    stack.set_clean()
    assert not doc.dirty
    assert flips == [True, False, True, False]


def test_pushing_over_the_clean_state_makes_it_unreachable(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    stack.push(MoveNodes(doc, {"q1": (1, 1)}))
    stack.set_clean()
    stack.undo()
    stack.push(MoveNodes(doc, {"q2": (1, 1)}))
    assert stack.clean_index == -1
    stack.undo()
    assert doc.dirty


def test_moves_do_not_merge_into_the_clean_state(doc: TopologyDocument) -> None:
    stack = UndoStack(doc)
    stack.push(MoveNodes(doc, {"q1": (1, 1)}))
    stack.set_clean()
    stack.push(MoveNodes(doc, {"q1": (2, 2)}))
    assert len(stack) == 2
    stack.undo()
    assert not doc.dirty and doc.position("q1") == (1.0, 1.0)


# -- property: any sequence of accepted commands undoes to the start and redoes to the end --------
OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "bind", "unbind", "ttl", "rename", "move"]),
        st.integers(0, 20),
        st.integers(-1, 3),
    ),
    max_size=25,
)


def make_command(doc: TopologyDocument, op: str, n: int, v: int) -> Command | None:
    t = doc.topology
    nodes, bindings = t.nodes, t.bindings
    pick = nodes[n % len(nodes)] if nodes else None
    if op == "add":
        return AddNode(doc, Queue(f"q{n}"), (float(n), float(v)))
    if pick is None:
        return None
    if op == "remove":
        return RemoveNodes(doc, [pick.id])
    if op == "bind":
        exchanges = t.exchanges
        return Bind(doc, exchanges[v % len(exchanges)].id, pick.id, str(v)) if exchanges else None
    if op == "unbind":
        return Unbind(doc, bindings[n % len(bindings)].id) if bindings else None
    if op == "ttl":
        return SetArgument(doc, pick.id, "x-message-ttl", v)
    if op == "rename":
        return RenameNode(doc, pick.id, f"n{v}")
    return MoveNodes(doc, {pick.id: (float(v), float(n))})


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_undo_all_restores_the_start_and_redo_all_the_end(ops: list[tuple[str, int, int]]) -> None:
    d = TopologyDocument()
    d.topology.add_node(Exchange("x", id="x"))
    d.topology.add_node(Queue("start", id="start"))
    d.mark_clean()
    stack = UndoStack(d)
    start = snapshot(d)
    for op, n, v in ops:
        command = make_command(d, op, n, v)
        if command is None:
            continue
        before = snapshot(d)
        try:
            stack.push(command)
        except TopologyError:
            assert snapshot(d) == before
    end = snapshot(d)
    while stack.can_undo():
        stack.undo()
    assert snapshot(d) == start
    assert not d.dirty
    while stack.can_redo():
        stack.redo()
    assert snapshot(d) == end
