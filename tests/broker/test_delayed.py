"""x-delayed-message exchanges (rabbitmq-delayed-message-exchange plugin) on a ManualClock."""

from __future__ import annotations

import pytest

from .enginekit import Kit


def _delayed(k: Kit, name: str = "dx", inner: str = "direct") -> None:
    k.exchange(name, "x-delayed-message", arguments={"x-delayed-type": inner})


@pytest.mark.parametrize(
    ("delay", "held"),
    [
        (1000, True),
        ("250", True),  # integer strings are accepted by the plugin
        (0, False),  # no delay: routed at once
        (-5, False),
        (None, False),  # no x-delay header
    ],
)
def test_delay_header(delay: object, held: bool) -> None:
    k = Kit()
    _delayed(k)
    k.queue("q")
    k.bind("q", "dx", "k")
    headers = {} if delay is None else {"x-delay": delay}
    r = k.publish("k", exchange="dx", headers=headers)
    assert r.delayed is held and (r.routed == ()) is held
    assert k.stats("q").ready == (0 if held else 1)


def test_message_is_routed_when_the_delay_elapses() -> None:
    k = Kit()
    _delayed(k)
    k.queue("q")
    k.bind("q", "dx", "k")
    k.publish("k", b"late", exchange="dx", headers={"x-delay": 1000})
    k.publish("k", b"later", exchange="dx", headers={"x-delay": 2000})
    assert k.broker.next_deadline_ms() == k.clock.now_ms() + 1000
    k.tick(999)
    assert k.stats("q").ready == 0
    k.tick(1)
    assert k.bodies("q") == [b"late"]
    k.tick(1000)
    (d,) = k.get_all("q")
    assert d.body == b"later" and d.message.headers["x-delay"] == -2000  # the plugin negates it on release
    assert k.broker.next_deadline_ms() is None


def test_delayed_messages_leave_in_due_order_not_publish_order() -> None:
    k = Kit()
    _delayed(k, inner="fanout")
    k.queue("q")
    k.bind("q", "dx")
    for body, delay in ((b"c", 300), (b"a", 100), (b"b", 200), (b"a2", 100)):
        k.publish("", body, exchange="dx", headers={"x-delay": delay})
    k.tick(300)
    assert k.bodies("q") == [b"a", b"a2", b"b", b"c"]


def test_deleting_the_exchange_drops_held_messages() -> None:
    k = Kit()
    _delayed(k)
    k.queue("q")
    k.bind("q", "dx", "k")
    k.publish("k", exchange="dx", headers={"x-delay": 100})
    k.broker.delete_exchange("/", "dx")
    k.tick(100)
    assert k.stats("q").ready == 0


def test_released_message_does_not_delay_again_through_e2e() -> None:
    k = Kit()
    _delayed(k, "dx1", "fanout")
    _delayed(k, "dx2", "fanout")
    k.queue("q")
    k.broker.exchange_bind("/", "dx2", "dx1")
    k.bind("q", "dx2")
    k.publish("", exchange="dx1", headers={"x-delay": 100})
    k.tick(100)
    assert k.stats("q").ready == 1


def test_delayed_publish_counts_in_snapshot() -> None:
    k = Kit()
    _delayed(k)
    k.publish("k", exchange="dx", headers={"x-delay": 100})
    snap = k.broker.snapshot()
    assert snap.vhosts[0].delayed == 1 and snap.exchange("dx").published_in == 1
