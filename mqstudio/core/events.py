"""A tiny Qt-free signal: listeners held by weak reference, and a blocker to silence feedback.

Owns: `Signal`. Must not import Qt or anything outside the stdlib.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Listener = Callable[..., Any]


class Signal:
    """Call every connected listener with the emitted arguments, in connection order.

    Bound methods are held weakly (a closed panel does not keep living because it listened);
    plain functions and lambdas are held strongly, because nothing else would keep them alive.
    """

    __slots__ = ("_blocked", "_listeners", "name")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._listeners: list[weakref.WeakMethod[Any] | Callable[[], Listener | None]] = []
        self._blocked = 0

    def connect(self, listener: Listener) -> None:
        if self._find(listener) is not None:
            return
        ref: weakref.WeakMethod[Any] | Callable[[], Listener | None]
        if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
            ref = weakref.WeakMethod(listener)
        else:
            ref = _Strong(listener)
        self._listeners.append(ref)

    def disconnect(self, listener: Listener) -> None:
        index = self._find(listener)
        if index is not None:
            del self._listeners[index]

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        dead = False
        for ref in list(self._listeners):
            listener = ref()
            if listener is None:
                dead = True
                continue
            listener(*args)
        if dead:
            self._listeners = [ref for ref in self._listeners if ref() is not None]

    @contextmanager
    def blocker(self) -> Iterator[None]:
        """Suppress emission inside the block (nested blocks allowed)."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    def __len__(self) -> int:
        return sum(1 for ref in self._listeners if ref() is not None)

    def _find(self, listener: Listener) -> int | None:
        for index, ref in enumerate(self._listeners):
            if ref() == listener:
                return index
        return None


class _Strong:
    __slots__ = ("_listener",)

    def __init__(self, listener: Listener) -> None:
        self._listener = listener

    def __call__(self) -> Listener:
        return self._listener
