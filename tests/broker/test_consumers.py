"""Consumers, prefetch, acknowledgements and sessions (https://www.rabbitmq.com/docs/consumers,
consumer-prefetch, confirms)."""

from __future__ import annotations

import pytest

from mqstudio.broker.errors import (
    AccessRefused,
    NotAllowed,
    NotImplementedFeature,
    PreconditionFailed,
    ResourceLocked,
)

from .enginekit import Kit


def test_round_robin_among_consumers() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    for tag in ("a", "b", "c"):
        s.basic_consume("q", tag)
    for i in range(6):
        k.publish("q", str(i).encode())
    assert [(d.consumer_tag, d.body) for d in s.poll()] == [
        ("a", b"0"),
        ("b", b"1"),
        ("c", b"2"),
        ("a", b"3"),
        ("b", b"4"),
        ("c", b"5"),
    ]


@pytest.mark.parametrize(
    ("prefetches", "published", "expected_per_consumer"),
    [
        # consumer-prefetch docs: a consumer with a full window is skipped.
        ((1, 3), 6, {"c0": 1, "c1": 3}),
        ((0, 1), 5, {"c0": 4, "c1": 1}),  # 0 = unlimited
        ((2, 2), 3, {"c0": 2, "c1": 1}),
    ],
)
def test_prefetch_windows(
    prefetches: tuple[int, int], published: int, expected_per_consumer: dict[str, int]
) -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    for i, p in enumerate(prefetches):
        s.basic_consume("q", f"c{i}", prefetch=p)
    for _ in range(published):
        k.publish("q")
    counts: dict[str, int] = {}
    for d in s.poll():
        counts[d.consumer_tag] = counts.get(d.consumer_tag, 0) + 1
    assert counts == expected_per_consumer
    st = k.stats("q")
    assert st.ready == published - sum(expected_per_consumer.values())


def test_ack_frees_the_window_and_next_message_flows() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    s.qos(1)
    s.basic_consume("q", "c")
    for i in range(3):
        k.publish("q", str(i).encode())
    bodies = []
    for _ in range(3):
        (d,) = s.poll()
        bodies.append(d.body)
        s.ack(d.delivery_tag)
    assert bodies == [b"0", b"1", b"2"]
    assert k.stats("q").acked == 3


def test_qos_per_consumer_applies_to_consumers_created_afterwards() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    s.basic_consume("q", "early")  # unlimited
    s.qos(1)
    s.basic_consume("q", "late")
    for _ in range(6):
        k.publish("q")
    tags = [d.consumer_tag for d in s.poll()]
    assert tags.count("late") == 1 and tags.count("early") == 5


def test_global_qos_is_shared_by_the_sessions_consumers() -> None:
    k = Kit()
    k.queue("q1")
    k.queue("q2")
    s = k.session()
    s.qos(3, global_=True)
    s.basic_consume("q1", "a")
    s.basic_consume("q2", "b")
    for _ in range(3):
        k.publish("q1")
        k.publish("q2")
    assert len(s.poll()) == 3
    s.ack(0, multiple=True)
    assert len(s.poll()) == 3


def test_no_ack_consumer_ignores_prefetch_and_leaves_nothing_unacked() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    s.qos(1)
    s.basic_consume("q", "c", no_ack=True)
    for _ in range(5):
        k.publish("q")
    assert len(s.poll()) == 5
    assert s.unacked == {} and k.stats("q").unacked == 0


@pytest.mark.parametrize(
    ("tag", "multiple", "remaining"),
    [
        (2, False, [1, 3, 4]),
        (3, True, [4]),
        (0, True, []),  # delivery tag 0 with multiple: everything outstanding
    ],
)
def test_ack_multiple(tag: int, multiple: bool, remaining: list[int]) -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    s.basic_consume("q", "c")
    for _ in range(4):
        k.publish("q")
    s.poll()
    s.ack(tag, multiple=multiple)
    assert list(s.unacked) == remaining


@pytest.mark.parametrize("op", ["ack", "nack", "reject", "double_ack"])
def test_unknown_delivery_tag_is_406(op: str) -> None:
    # RabbitMQ: PRECONDITION_FAILED - unknown delivery tag N (channel error).
    k = Kit()
    k.queue("q")
    k.publish("q")
    s = k.session()
    d = s.basic_get("q")
    assert d is not None
    with pytest.raises(PreconditionFailed) as exc:
        if op == "ack":
            s.ack(99)
        elif op == "nack":
            s.nack(99)
        elif op == "reject":
            s.reject(99)
        else:
            s.ack(1)
            s.ack(1)
    assert exc.value.code == 406 and exc.value.text.startswith("unknown delivery tag")


def test_delivery_tags_are_per_session() -> None:
    k = Kit()
    k.queue("q")
    s1, s2 = k.session(), k.session()
    s1.basic_consume("q", "a")
    s2.basic_consume("q", "b")
    for _ in range(4):
        k.publish("q")
    assert [d.delivery_tag for d in s1.poll()] == [1, 2]
    assert [d.delivery_tag for d in s2.poll()] == [1, 2]


def test_cancel_keeps_unacked_until_settled() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    s.basic_consume("q", "c")
    k.publish("q")
    (d,) = s.poll()
    assert s.basic_cancel("c") is True
    k.publish("q")
    assert s.poll() == []  # no more deliveries after cancel
    assert k.stats("q").unacked == 1
    s.ack(d.delivery_tag)
    assert k.stats("q").unacked == 0
    assert s.basic_cancel("unknown") is False


def test_session_close_requeues_to_other_consumer_redelivered() -> None:
    k = Kit()
    k.queue("q")
    s1 = k.session("c1")
    s2 = k.session("c2")
    s1.basic_consume("q", "a")
    k.publish("q", b"m")
    s1.poll()
    s2.basic_consume("q", "b")
    s1.close()
    (d,) = s2.poll()
    assert d.body == b"m" and d.redelivered and d.consumer_tag == "b"


def test_recover_requeue_false_is_not_implemented() -> None:
    # RabbitMQ answers basic.recover requeue=false with 540 NOT_IMPLEMENTED.
    s = Kit().session()
    with pytest.raises(NotImplementedFeature):
        s.recover(requeue=False)


def test_reusing_a_consumer_tag_is_530() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    s.basic_consume("q", "dup")
    with pytest.raises(NotAllowed) as exc:
        s.basic_consume("q", "dup")
    assert exc.value.code == 530 and exc.value.text == "attempt to reuse consumer tag 'dup'"


def test_server_generated_consumer_tag() -> None:
    k = Kit()
    k.queue("q")
    tag = k.session().basic_consume("q")
    assert tag.startswith("amq.ctag-") and len(tag) == len("amq.ctag-") + 22


@pytest.mark.parametrize(
    ("first_exclusive", "second_exclusive"), [(True, False), (False, True), (True, True)]
)
def test_exclusive_consumer_conflicts_are_403(first_exclusive: bool, second_exclusive: bool) -> None:
    # consumers docs "Exclusivity": ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use.
    k = Kit()
    k.queue("q")
    s = k.session()
    s.basic_consume("q", "a", exclusive=first_exclusive)
    with pytest.raises(AccessRefused) as exc:
        s.basic_consume("q", "b", exclusive=second_exclusive)
    assert exc.value.code == 403 and exc.value.text == "queue 'q' in vhost '/' in exclusive use"


def test_exclusive_queue_is_locked_to_its_connection() -> None:
    # queues docs "Exclusive Queues": other connections get 405 RESOURCE_LOCKED.
    k = Kit()
    k.broker.declare_queue("/", "mine", exclusive=True, owner="c1")
    k.session("c1").basic_consume("mine", "ok")
    other = k.session("c2")
    for attempt in (lambda: other.basic_consume("mine", "x"), lambda: other.basic_get("mine")):
        with pytest.raises(ResourceLocked) as exc:
            attempt()
        assert (
            exc.value.code == 405
            and "cannot obtain exclusive access to locked queue 'mine'" in exc.value.text
        )


def test_exclusive_queue_is_deleted_with_its_connection() -> None:
    k = Kit()
    k.broker.declare_queue("/", "mine", exclusive=True, owner="c1")
    k.broker.close_connection("c1")
    assert "mine" not in k.broker.vhost("/").queues


@pytest.mark.parametrize(
    ("how", "deleted"),
    [("cancel", True), ("close", True), ("never_consumed", False)],
)
def test_auto_delete_queue_goes_with_its_last_consumer(how: str, deleted: bool) -> None:
    # queues docs: an auto-delete queue is deleted when its last consumer is cancelled or gone;
    # one that never had a consumer is not.
    k = Kit()
    k.broker.declare_queue("/", "ad", auto_delete=True)
    s = k.session()
    if how != "never_consumed":
        s.basic_consume("ad", "a")
        s.basic_consume("ad", "b")
        s.basic_cancel("a")
        assert "ad" in k.broker.vhost("/").queues
        if how == "cancel":
            s.basic_cancel("b")
        else:
            s.close()
    else:
        s.basic_get("ad")
    assert ("ad" not in k.broker.vhost("/").queues) is deleted


def test_single_active_consumer_gets_everything_until_it_leaves() -> None:
    k = Kit()
    k.queue("q", x_single_active_consumer=True)
    s = k.session()
    s.basic_consume("q", "first")
    s.basic_consume("q", "second")
    for _ in range(3):
        k.publish("q")
    assert {d.consumer_tag for d in s.poll()} == {"first"}
    s.basic_cancel("first")
    s.recover()
    assert {d.consumer_tag for d in s.poll()} == {"second"}


def test_poll_max_count() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    s.basic_consume("q", "c", no_ack=True)
    for _ in range(5):
        k.publish("q")
    assert len(s.poll(2)) == 2 and s.pending == 3 and len(s.poll()) == 3
