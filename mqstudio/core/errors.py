"""Typed errors of the designer model; each names the path of the bad field and says how to fix it.

Owns: `TopologyError` and its subclasses, `Problem` (one entry of a refused file or batch).
Must not import anything outside the stdlib.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (`path`, e.g. ``queues[3].arguments.x-message-ttl``) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class TopologyError(Exception):
    """Base of every model error. `path` points at the bad field ("" when the whole object is at fault)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_problem(self) -> Problem:
        return Problem(self.path, self.message)


class InvalidArgumentError(TopologyError):
    """A property or x-argument has a value RabbitMQ/Kafka would refuse."""


class InvalidNameError(TopologyError):
    """A name is empty, too long, or reserved (``amq.`` prefix)."""


class DuplicateNameError(TopologyError):
    """Another object of the same kind already has this name in this vhost."""


class DuplicateBindingError(TopologyError):
    """The same source, destination, routing key and arguments are already bound."""


class InvalidBindingError(TopologyError):
    """A binding that cannot exist (e.g. to a missing node, or from a queue)."""


class UnknownObjectError(TopologyError):
    """An id or name that refers to nothing in the topology."""


class FileFormatError(TopologyError):
    """A file was refused whole. `problems` lists every problem found, each with its path."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        summary = f"{source}: {count} problem{'s' if count != 1 else ''} found; nothing was loaded"
        super().__init__(summary)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {problem}" for problem in self.problems)])
