"""Undoable edits of a `TopologyDocument`, and a plain undo stack for the CLI and tests.

Owns: `Command` and its concrete commands, `Macro`, `UndoStack`. Commands change only the document (the
model emits events; views mirror it) and validate before they mutate: a refused command raises a typed
error from `errors.py` and leaves the document exactly as it was. `ui/undo.py` wraps each command in one
generic ``QUndoCommand``; this module must not import Qt or anything outside the stdlib and
`mqstudio.core`.

A wrapper for ``QUndoStack`` can call `Command.do` in its first ``redo()`` and, when that raises, mark
itself obsolete and report the error; or run `do()` itself before pushing and skip the first redo.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mqstudio.core.document import Position, TopologyDocument
from mqstudio.core.errors import (
    DuplicateNameError,
    InvalidArgumentError,
    InvalidBindingError,
    InvalidNameError,
    UnknownObjectError,
)
from mqstudio.core.events import Signal
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    Node,
    Producer,
    Queue,
    Topic,
    Topology,
)
from mqstudio.core.validation import check_bind, validate_name, validate_node

MOVE_ID = 1


class Command(ABC):
    """One undoable change. `do` validates first and raises without mutating when refused; `undo`
    exactly reverses a successful `do`. Commands with the same `id` (≠ -1) may merge when pushed in a row."""

    text: str = ""
    id: int = -1

    @abstractmethod
    def do(self) -> None: ...

    @abstractmethod
    def undo(self) -> None: ...

    def merge_with(self, other: Command) -> bool:
        """Absorb `other` (already done) into this command; False when they stay separate."""
        return False


def _vhost(node: Node) -> str:
    return node.vhost if isinstance(node, Exchange | Queue) else DEFAULT_VHOST


def _check_name(topology: Topology, node: Node, name: Any, *, allow_default: bool = False) -> None:
    problems = validate_name(node.kind, name, "name")
    if problems:
        raise InvalidNameError(problems[0].message, "name")
    if isinstance(node, Exchange) and name == "" and not allow_default:
        raise InvalidNameError('the name "" belongs to the default exchange; choose another name', "name")
    clash = topology.find_node(node.kind, name, _vhost(node))
    if clash is not None and clash.id != node.id:
        where = f" in vhost {_vhost(node)!r}" if isinstance(node, Exchange | Queue) else ""
        raise DuplicateNameError(
            f"{topology.label(clash.id)} already exists{where}; choose another name", "name"
        )


# The field of a simulated client that refers to another node, and the kinds it may refer to.
_CLIENT_REFERENCES: dict[type, tuple[str, tuple[type, ...], str]] = {
    Producer: ("target", (Exchange, Topic), "an exchange or a topic"),
    Consumer: ("source", (Queue, ConsumerGroup), "a queue or a consumer group"),
}


def _check_reference(topology: Topology, node: Node, field: str, value: Any) -> None:
    """Refuse a producer target / consumer source that names no node or a node of the wrong kind."""
    spec = _CLIENT_REFERENCES.get(type(node))
    if spec is None or spec[0] != field or value == "" or not isinstance(value, str):
        return  # "" unsets the reference; wrong types are validate_node's business
    _, kinds, wanted = spec
    target = topology.get(value)
    if target is None:
        raise UnknownObjectError(f"no node with id {value!r}", field)
    if not isinstance(target, kinds):
        raise InvalidArgumentError(
            f"{topology.label(value)} cannot be the {field} of a {node.kind.value}; choose {wanted}", field
        )


def _check_change(before: Node, after: Node) -> None:
    """Refuse a change that introduces a problem (problems the node already had do not block edits)."""
    old = validate_node(before)
    new = [p for p in validate_node(after) if p not in old]
    if new:
        error = InvalidNameError if new[0].path == "name" else InvalidArgumentError
        raise error(new[0].message, new[0].path)


# -- nodes ----------------------------------------------------------------------------------------
class AddNode(Command):
    def __init__(self, doc: TopologyDocument, node: Node, pos: Position | None = None) -> None:
        self.doc, self.node, self.pos = doc, node, pos
        self.text = f"Add {node.kind.value.replace('_', ' ')} {node.name!r}"

    def do(self) -> None:
        topology = self.doc.topology
        if self.node.id in topology:
            raise DuplicateNameError(f"id {self.node.id!r} is already used", "id")
        _check_name(topology, self.node, self.node.name, allow_default=True)  # the default exchange
        problems = validate_node(self.node)
        if problems:
            raise InvalidArgumentError(problems[0].message, problems[0].path)
        if self.pos is not None:  # placed before the node appears, so the canvas finds it on node_added
            self.doc.set_position(self.node.id, self.pos, notify=False)
        topology.add_node(self.node)

    def undo(self) -> None:
        self.doc.topology.remove_node(self.node.id)


class RemoveNodes(Command):
    """Remove nodes with their bindings, consumer groups' subscriptions to removed topics, and the
    references of producers (``target``) and consumers (``source``) to removed nodes (set to "").

    Undo puts nodes, bindings and layout entries back at their original positions in insertion order:
    removal goes from the highest index down, so re-insertion from the lowest up lands every item where
    it was.
    """

    def __init__(self, doc: TopologyDocument, node_ids: Iterable[str]) -> None:
        self.doc = doc
        self.node_ids = list(dict.fromkeys(node_ids))
        self._nodes: list[tuple[int, Node, Position | None]] = []
        self._bindings: list[tuple[int, Binding]] = []
        self._groups: list[tuple[str, list[str]]] = []
        self._clients: list[tuple[str, str, str]] = []  # (client id, field, old reference)
        names = [repr(getattr(doc.topology.get(i), "name", i)) for i in self.node_ids]
        self.text = f"Remove {names[0]}" if len(names) == 1 else f"Remove {len(names)} nodes"

    def do(self) -> None:
        topology = self.doc.topology
        nodes = [topology.node(node_id) for node_id in self.node_ids]  # unknown ids refuse here
        gone = set(self.node_ids)
        bindings = sorted(
            {b.id: b for node_id in self.node_ids for b in topology.bindings_of(node_id)}.values(),
            key=lambda b: topology.binding_index(b.id),
        )
        removed_topics = {n.id for n in nodes if isinstance(n, Topic)}
        groups = [
            g for g in topology.consumer_groups if g.id not in gone and removed_topics.intersection(g.topics)
        ]
        self._groups = []
        for g in groups:
            old = topology.set_node_field(g.id, "topics", [t for t in g.topics if t not in removed_topics])
            self._groups.append((g.id, old))
        self._clients = []
        clients: list[Producer | Consumer] = [*topology.producers, *topology.consumers]
        for client in clients:
            field = "target" if isinstance(client, Producer) else "source"
            ref = getattr(client, field)
            if client.id not in gone and ref in gone:
                self._clients.append((client.id, field, topology.set_node_field(client.id, field, "")))
        self._bindings = []
        for b in reversed(bindings):
            self._bindings.append((topology.binding_index(b.id), b))
            topology.remove_binding(b.id)
        self._nodes = []
        for node in sorted(nodes, key=lambda n: topology.node_index(n.id), reverse=True):
            entry = (topology.node_index(node.id), node, self.doc.position(node.id))
            topology.remove_node(node.id)
            self._nodes.append(entry)

    def undo(self) -> None:
        topology = self.doc.topology
        for index, node, pos in reversed(self._nodes):
            if pos is not None:
                self.doc.set_position(node.id, pos, notify=False)
            topology.add_node(node, index=index)
        for index, binding in reversed(self._bindings):
            topology.add_binding(binding, index=index)
        for group_id, topics in reversed(self._groups):
            topology.set_node_field(group_id, "topics", topics)
        for client_id, field, ref in reversed(self._clients):
            topology.set_node_field(client_id, field, ref)


class RenameNode(Command):
    """Rename a node; for an exchange, optionally rename references to it in the same vhost as well
    (queues' ``x-dead-letter-exchange``, exchanges' ``alternate-exchange``), in the same undo step."""

    def __init__(
        self, doc: TopologyDocument, node_id: str, name: str, update_references: bool = True
    ) -> None:
        self.doc, self.node_id, self.name, self.update_references = doc, node_id, name, update_references
        self._old = ""
        self._refs: list[tuple[str, dict[str, Any]]] = []
        self.text = f"Rename to {name!r}"

    def _references(self, node: Node) -> list[tuple[str, dict[str, Any]]]:
        if not (self.update_references and isinstance(node, Exchange)):
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        for other in self.doc.topology.nodes:
            if not isinstance(other, Exchange | Queue) or other.vhost != node.vhost:
                continue
            key = "x-dead-letter-exchange" if isinstance(other, Queue) else "alternate-exchange"
            if other.arguments.get(key) == node.name and other.id != node.id:
                out.append((other.id, {**other.arguments, key: self.name}))
        return out

    def do(self) -> None:
        topology = self.doc.topology
        node = topology.node(self.node_id)
        if isinstance(node, Exchange) and node.name == "":
            raise InvalidNameError("the default exchange cannot be renamed", "name")
        _check_name(topology, node, self.name)
        refs = self._references(node)
        self._old = topology.set_node_field(self.node_id, "name", self.name)
        self._refs = [(ref_id, topology.set_node_field(ref_id, "arguments", args)) for ref_id, args in refs]

    def undo(self) -> None:
        topology = self.doc.topology
        for ref_id, args in reversed(self._refs):
            topology.set_node_field(ref_id, "arguments", args)
        topology.set_node_field(self.node_id, "name", self._old)


class SetNodeField(Command):
    """Set one field of a node (``durable``, ``type``, ``partitions``, ``arguments`` as a whole …)."""

    def __init__(self, doc: TopologyDocument, node_id: str, field: str, value: Any) -> None:
        self.doc, self.node_id, self.field = doc, node_id, field
        self.value = copy.deepcopy(value)
        self._old: Any = None
        self.text = f"Set {field.replace('_', ' ')}"

    def do(self) -> None:
        topology = self.doc.topology
        node = topology.node(self.node_id)
        names = {f.name for f in dataclasses.fields(node)}
        if self.field not in names or self.field == "id":
            raise InvalidArgumentError(
                f"{topology.label(node.id)} has no editable field {self.field!r}", self.field
            )
        after = copy.deepcopy(node)
        setattr(after, self.field, copy.deepcopy(self.value))
        if self.field == "name":
            _check_name(topology, node, self.value)
        if self.field == "vhost" and self.value != _vhost(node):
            if topology.bindings_of(node.id):
                raise InvalidBindingError(
                    f"{topology.label(node.id)} has bindings in vhost {_vhost(node)!r}; remove them before "
                    "moving it to another vhost",
                    "vhost",
                )
            _check_name(topology, after, node.name)
        if isinstance(node, ConsumerGroup) and self.field == "topics":
            for index, topic_id in enumerate(self.value):
                if not isinstance(topology.get(topic_id), Topic):
                    raise UnknownObjectError(f"no topic with id {topic_id!r}", f"topics[{index}]")
        _check_reference(topology, node, self.field, self.value)
        _check_change(node, after)
        self._old = topology.set_node_field(self.node_id, self.field, copy.deepcopy(self.value))

    def undo(self) -> None:
        self.doc.topology.set_node_field(self.node_id, self.field, self._old)


class SetArgument(Command):
    """Set (or, with ``remove=True``, remove) one argument: an x-argument of an exchange or queue, a
    config of a Kafka topic, or a header of a producer's messages. Refused with `InvalidArgumentError`
    when the node would become invalid."""

    def __init__(
        self, doc: TopologyDocument, node_id: str, key: str, value: Any = None, *, remove: bool = False
    ) -> None:
        self.doc, self.node_id, self.key, self.remove = doc, node_id, key, remove
        self.value = copy.deepcopy(value)
        self._old: dict[str, Any] = {}
        self.text = f"Remove {key}" if remove else f"Set {key}"

    def _field(self, node: Node) -> str:
        if isinstance(node, Topic):
            return "configs"
        if isinstance(node, Producer):
            return "headers"
        if isinstance(node, ConsumerGroup | Consumer):
            raise InvalidArgumentError(f"{node.kind.value.replace('_', ' ')}s have no arguments", "arguments")
        return "arguments"

    def do(self) -> None:
        topology = self.doc.topology
        node = topology.node(self.node_id)
        field = self._field(node)
        new = dict(getattr(node, field))
        if self.remove:
            new.pop(self.key, None)
        else:
            new[self.key] = copy.deepcopy(self.value)
        after = copy.deepcopy(node)
        setattr(after, field, new)
        _check_change(node, after)
        self._old = topology.set_node_field(self.node_id, field, new)

    def undo(self) -> None:
        node = self.doc.topology.node(self.node_id)
        self.doc.topology.set_node_field(self.node_id, self._field(node), self._old)


# -- bindings -------------------------------------------------------------------------------------
class Bind(Command):
    def __init__(
        self,
        doc: TopologyDocument,
        source_id: str,
        destination_id: str,
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
        *,
        binding_id: str | None = None,
    ) -> None:
        self.doc = doc
        binding = Binding(source_id, destination_id, routing_key, copy.deepcopy(dict(arguments or {})))
        if binding_id is not None:
            binding.id = binding_id
        self.binding = binding
        self.text = f"Bind {routing_key!r}" if routing_key else "Bind"

    def do(self) -> None:
        b = self.binding
        if b.id in self.doc.topology:
            raise DuplicateNameError(f"id {b.id!r} is already used", "id")
        check_bind(self.doc.topology, b.source, b.destination, b.routing_key, b.arguments)
        self.doc.topology.add_binding(b)

    def undo(self) -> None:
        self.doc.topology.remove_binding(self.binding.id)


class Unbind(Command):
    def __init__(self, doc: TopologyDocument, binding_id: str) -> None:
        self.doc, self.binding_id = doc, binding_id
        self._removed: tuple[int, Binding] | None = None
        self.text = "Remove binding"

    def do(self) -> None:
        index = self.doc.topology.binding_index(self.binding_id)
        self._removed = (index, self.doc.topology.remove_binding(self.binding_id))

    def undo(self) -> None:
        assert self._removed is not None, "undo() before do()"
        index, binding = self._removed
        self.doc.topology.add_binding(binding, index=index)


class EditBinding(Command):
    """Change a binding's routing key and/or arguments (``None`` keeps the current value)."""

    def __init__(
        self,
        doc: TopologyDocument,
        binding_id: str,
        routing_key: str | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.doc, self.binding_id = doc, binding_id
        self.routing_key = routing_key
        self.arguments = copy.deepcopy(dict(arguments)) if arguments is not None else None
        self._old: list[tuple[str, Any]] = []
        self.text = "Edit binding"

    def do(self) -> None:
        topology = self.doc.topology
        b = topology.binding(self.binding_id)
        key = b.routing_key if self.routing_key is None else self.routing_key
        args = b.arguments if self.arguments is None else self.arguments
        check_bind(topology, b.source, b.destination, key, args, ignore=b.id)
        changes = [("routing_key", self.routing_key), ("arguments", copy.deepcopy(self.arguments))]
        self._old = [
            (field, topology.set_binding_field(b.id, field, value))
            for field, value in changes
            if value is not None
        ]

    def undo(self) -> None:
        for field, value in reversed(self._old):
            self.doc.topology.set_binding_field(self.binding_id, field, value)


# -- layout ---------------------------------------------------------------------------------------
class MoveNodes(Command):
    """Place nodes at new positions; consecutive moves of the same nodes merge into one undo step."""

    id = MOVE_ID

    def __init__(
        self,
        doc: TopologyDocument,
        positions: Mapping[str, Position],
        old_positions: Mapping[str, Position | None] | None = None,
    ) -> None:
        self.doc = doc
        self.new: dict[str, Position] = {k: (float(x), float(y)) for k, (x, y) in positions.items()}
        if old_positions is None:
            self.old = {node_id: doc.position(node_id) for node_id in self.new}
        else:
            self.old = {node_id: old_positions.get(node_id) for node_id in self.new}
        names = [repr(getattr(doc.topology.get(i), "name", i)) for i in self.new]
        self.text = f"Move {names[0]}" if len(names) == 1 else f"Move {len(names)} nodes"

    def do(self) -> None:
        for node_id in self.new:
            self.doc.topology.node(node_id)  # refuse unknown ids before moving anything
        for node_id, pos in self.new.items():
            self.doc.set_position(node_id, pos)

    def undo(self) -> None:
        for node_id, pos in self.old.items():
            self.doc.set_position(node_id, pos)

    def merge_with(self, other: Command) -> bool:
        if (
            not isinstance(other, MoveNodes)
            or other.doc is not self.doc
            or other.new.keys() != self.new.keys()
        ):
            return False
        self.new = dict(other.new)
        return True


# -- composition ----------------------------------------------------------------------------------
class Macro(Command):
    """Several commands as one undo step. If one is refused, those already done are undone first."""

    def __init__(self, text: str, commands: Sequence[Command]) -> None:
        self.text = text
        self.commands = list(commands)

    def do(self) -> None:
        done: list[Command] = []
        try:
            for command in self.commands:
                command.do()
                done.append(command)
        except Exception:
            for command in reversed(done):
                command.undo()
            raise

    def undo(self) -> None:
        for command in reversed(self.commands):
            command.undo()


class UndoStack:
    """A Qt-free undo stack with QUndoStack's semantics (clean index, merging, redo tail dropped on push).

    With a `document`, the document's dirty flag follows the clean state: undoing back to the state at
    `set_clean()` makes the document clean again. Events: ``index_changed(int)``, ``clean_changed(bool)``.
    """

    def __init__(self, document: TopologyDocument | None = None) -> None:
        self.document = document
        self._commands: list[Command] = []
        self._index = 0
        self._clean_index = 0
        self.index_changed = Signal("index_changed")
        self.clean_changed = Signal("clean_changed")

    @property
    def index(self) -> int:
        return self._index

    @property
    def clean_index(self) -> int:
        """Index of the clean state, or -1 when it can no longer be reached (its commands were dropped)."""
        return self._clean_index

    def __len__(self) -> int:
        return len(self._commands)

    def command(self, index: int) -> Command:
        return self._commands[index]

    def is_clean(self) -> bool:
        return self._index == self._clean_index

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._commands)

    def undo_text(self) -> str:
        return self._commands[self._index - 1].text if self.can_undo() else ""

    def redo_text(self) -> str:
        return self._commands[self._index].text if self.can_redo() else ""

    def push(self, command: Command) -> None:
        """Do `command` and record it. A refused command raises and leaves the stack as it was."""

        def apply() -> None:
            command.do()
            del self._commands[self._index :]
            if self._clean_index > self._index:
                self._clean_index = -1
            top = self._commands[-1] if self._commands else None
            mergeable = top is not None and command.id != -1 and top.id == command.id
            # Like QUndoStack: never merge into the clean state, or undo could not return to it.
            if mergeable and self._index != self._clean_index and top is not None and top.merge_with(command):
                return
            self._commands.append(command)
            self._index += 1

        self._change(apply)

    def undo(self) -> None:
        if not self.can_undo():
            return

        def apply() -> None:
            self._index -= 1
            self._commands[self._index].undo()

        self._change(apply)

    def redo(self) -> None:
        if not self.can_redo():
            return

        def apply() -> None:
            self._commands[self._index].do()
            self._index += 1

        self._change(apply)

    def set_clean(self) -> None:
        self._change(lambda: setattr(self, "_clean_index", self._index))

    def clear(self) -> None:
        def apply() -> None:
            self._commands.clear()
            self._index = self._clean_index = 0

        self._change(apply)

    def _change(self, apply: Callable[[], None]) -> None:
        index, clean = self._index, self.is_clean()
        doc = self.document
        if doc is None:
            apply()
        else:
            was_dirty = doc.dirty
            # Model events mark the document dirty as they happen; the stack then decides, once.
            with doc.dirty_changed.blocker():
                try:
                    apply()
                finally:
                    doc.set_dirty(was_dirty)
            doc.set_dirty(not self.is_clean())
        if self._index != index:
            self.index_changed.emit(self._index)
        if self.is_clean() != clean:
            self.clean_changed.emit(self.is_clean())
