"""The Qt-free Signal: order, weak references to bound methods, strong to functions, blocker."""

from __future__ import annotations

import gc
from typing import Any

from mqstudio.core.events import Signal


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_event(self, *args: Any) -> None:
        self.calls.append(args)


def test_listeners_are_called_in_connection_order_with_the_arguments() -> None:
    signal = Signal("changed")
    calls: list[tuple[str, Any]] = []
    signal.connect(lambda x: calls.append(("first", x)))
    signal.connect(lambda x: calls.append(("second", x)))
    signal.emit(42)
    assert calls == [("first", 42), ("second", 42)]


def test_connecting_the_same_listener_twice_calls_it_once() -> None:
    signal = Signal()
    listener = Listener()
    signal.connect(listener.on_event)
    signal.connect(listener.on_event)
    signal.emit("a")
    assert listener.calls == [("a",)]
    assert len(signal) == 1


def test_disconnect_stops_calls_and_unknown_listeners_are_ignored() -> None:
    signal = Signal()
    listener = Listener()
    signal.connect(listener.on_event)
    signal.disconnect(listener.on_event)
    signal.disconnect(print)
    signal.emit(1)
    assert listener.calls == []
    assert len(signal) == 0


def test_bound_methods_are_held_weakly() -> None:
    signal = Signal()
    listener = Listener()
    signal.connect(listener.on_event)
    assert len(signal) == 1
    del listener
    gc.collect()
    assert len(signal) == 0
    signal.emit("nobody hears this")  # dead references are skipped, not called


def test_dead_listeners_are_pruned_on_emit() -> None:
    signal = Signal()
    alive, dying = Listener(), Listener()
    signal.connect(dying.on_event)
    signal.connect(alive.on_event)
    del dying
    gc.collect()
    signal.emit(1)
    assert alive.calls == [(1,)]
    assert len(signal._listeners) == 1


def test_plain_functions_and_lambdas_are_held_strongly() -> None:
    signal = Signal()
    calls: list[int] = []

    def make_listener() -> Any:
        return lambda x: calls.append(x * 10)

    signal.connect(make_listener())  # nothing else keeps this lambda alive
    gc.collect()
    signal.emit(7)
    assert calls == [70]


def test_blocker_suppresses_emission_and_nests() -> None:
    signal = Signal()
    listener = Listener()
    signal.connect(listener.on_event)
    with signal.blocker():
        signal.emit(1)
        with signal.blocker():
            signal.emit(2)
        signal.emit(3)
    signal.emit(4)
    assert listener.calls == [(4,)]


def test_blocker_is_released_when_the_block_raises() -> None:
    signal = Signal()
    listener = Listener()
    signal.connect(listener.on_event)
    try:
        with signal.blocker():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    signal.emit("after")
    assert listener.calls == [("after",)]


def test_a_listener_may_disconnect_itself_while_being_called() -> None:
    signal = Signal()
    calls: list[str] = []

    def once(value: str) -> None:
        calls.append(value)
        signal.disconnect(once)

    signal.connect(once)
    signal.connect(lambda value: calls.append("other " + value))
    signal.emit("x")
    signal.emit("y")
    assert calls == ["x", "other x", "other y"]
