"""Observe messages entering a queue without taking them (the embedded backend's `tail`).

Owns: `observe_queue(queue, callback) → remove`. While a queue has observers its class is swapped for
a slot-compatible subclass whose `publish` calls the observers after a message was accepted (client
publish, dead-letter arrival, delayed release, exchange-to-exchange hop: every way a message enters a
queue goes through `Queue.publish`). Unobserved queues keep the plain class, so the hot path costs
nothing when no one watches. Observers run on the engine's thread, synchronously: they must be quick
and must not call back into the engine.
Must not import anything outside the stdlib and this package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from mqstudio.broker.message import Message
from mqstudio.broker.queue import Queue

__all__ = ["QueueObserver", "observe_queue"]

QueueObserver = Callable[[Queue, Message], None]

# id(queue) -> (queue, observers). Queue has __slots__ without __weakref__, so the registry holds the
# queue itself until its last observer is removed.
_observers: dict[int, tuple[Queue, list[QueueObserver]]] = {}


class _ObservedQueue(Queue):
    """`Queue` with observers; no slots of its own, so `__class__` can be swapped both ways."""

    __slots__ = ()

    def publish(self, message: Message, *args: Any, **kwargs: Any) -> bool:
        accepted = super().publish(message, *args, **kwargs)
        if accepted:
            entry = _observers.get(id(self))
            if entry is not None:
                for observer in list(entry[1]):
                    observer(self, message)
        return accepted


def observe_queue(queue: Queue, observer: QueueObserver) -> Callable[[], None]:
    """Call `observer(queue, message)` for every message `queue` accepts from now on; returns the
    function that stops it (idempotent)."""
    entry = _observers.setdefault(id(queue), (queue, []))
    entry[1].append(observer)
    if type(queue) is Queue:
        queue.__class__ = _ObservedQueue

    def remove() -> None:
        current = _observers.get(id(queue))
        if current is None or observer not in current[1]:
            return
        current[1].remove(observer)
        if not current[1]:
            del _observers[id(queue)]
            if type(queue) is _ObservedQueue:
                cast(Any, queue).__class__ = Queue

    return remove
