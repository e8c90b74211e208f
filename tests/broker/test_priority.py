"""Priority queues (https://www.rabbitmq.com/docs/priority)."""

from __future__ import annotations

import pytest

from mqstudio.broker.errors import PreconditionFailed

from .enginekit import Kit


@pytest.mark.parametrize(
    ("max_priority", "published", "expected"),
    [
        # priority docs: higher priority first.
        (10, [(b"low", 1), (b"high", 9), (b"mid", 5)], [b"high", b"mid", b"low"]),
        # "Messages without a priority property are treated as if their priority were 0."
        (5, [(b"none", None), (b"one", 1)], [b"one", b"none"]),
        # "Messages with a priority which is higher than the queue's maximum are treated as if they
        # were published with the maximum priority" -> FIFO with the max-priority ones.
        (3, [(b"at-max", 3), (b"above", 200), (b"below", 2)], [b"at-max", b"above", b"below"]),
        # FIFO within one priority.
        (2, [(b"a", 1), (b"b", 1), (b"c", 2), (b"d", 1)], [b"c", b"a", b"b", b"d"]),
    ],
)
def test_priority_order(
    max_priority: int, published: list[tuple[bytes, int | None]], expected: list[bytes]
) -> None:
    k = Kit()
    k.queue("q", x_max_priority=max_priority)
    for body, prio in published:
        k.publish("q", body, priority=prio)
    assert k.bodies("q") == expected


def test_without_max_priority_the_property_is_ignored() -> None:
    k = Kit()
    k.queue("q")
    k.publish("q", b"a", priority=1)
    k.publish("q", b"b", priority=9)
    assert k.bodies("q") == [b"a", b"b"]


def test_requeue_returns_within_its_priority_level() -> None:
    k = Kit()
    k.queue("q", x_max_priority=5)
    k.publish("q", b"hi1", priority=5)
    k.publish("q", b"hi2", priority=5)
    k.publish("q", b"lo", priority=1)
    s = k.session()
    d = s.basic_get("q")
    assert d is not None and d.body == b"hi1"
    s.nack(d.delivery_tag, requeue=True)
    assert k.bodies("q") == [b"hi1", b"hi2", b"lo"]


def test_consumer_sees_priority_order_once_messages_queue_up() -> None:
    k = Kit()
    k.queue("q", x_max_priority=9)
    s = k.session()
    s.qos(1)
    s.basic_consume("q", "c")
    k.publish("q", b"first", priority=0)  # delivered at once: nothing to order against
    k.publish("q", b"low", priority=1)
    k.publish("q", b"high", priority=8)
    order = []
    for _ in range(3):
        (d,) = s.poll()
        order.append(d.body)
        s.ack(d.delivery_tag)
    assert order == [b"first", b"high", b"low"]


def test_each_priority_level_expires_at_its_own_head() -> None:
    k = Kit()
    k.queue("q", x_max_priority=2)
    k.publish("q", b"hi-long", priority=2, expiration="1000")
    k.publish("q", b"lo-short", priority=1, expiration="10")
    k.tick(10)
    assert k.bodies("q") == [b"hi-long"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (256, "invalid arg 'x-max-priority' for queue 'q' in vhost '/': {value_too_large,256,255}"),
        (-1, "invalid arg 'x-max-priority' for queue 'q' in vhost '/': {value_negative,-1}"),
        ("5", "invalid arg 'x-max-priority' for queue 'q' in vhost '/': {unacceptable_type,str}"),
    ],
)
def test_invalid_max_priority_is_406(value: object, text: str) -> None:
    k = Kit()
    with pytest.raises(PreconditionFailed) as exc:
        k.broker.declare_queue("/", "q", arguments={"x-max-priority": value})
    assert exc.value.text == text
