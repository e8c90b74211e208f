"""The publish hot path builds messages and envelopes field by field (NewMessage, NewQueuedMessage):
every way it can go must leave complete objects that read exactly like the slow path's."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mqstudio.broker.errors import NotAllowed, PreconditionFailed
from mqstudio.broker.message import Message, Properties, QueuedMessage
from mqstudio.broker.session import Session
from tests.broker.enginekit import Kit


def _slots(obj: object) -> dict[str, Any]:
    names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    return {n: getattr(obj, n) for n in names}  # AttributeError = a slot the hot path forgot


def _fields(qm: QueuedMessage) -> dict[str, Any]:
    fields = _slots(qm)
    fields["message"] = _slots(qm.message)
    fields["queue"] = qm.queue.name
    fields["consumer"] = None if qm.consumer is None else qm.consumer.tag
    return fields


def _kit(consumers: int, no_ack: bool, prefetch: int) -> tuple[Kit, list[Session]]:
    kit = Kit()
    kit.exchange("x")
    kit.queue("q")
    kit.bind("q", "x", "k")
    sessions = []
    for i in range(consumers):
        s = kit.session()
        s.qos(prefetch)
        s.basic_consume("q", f"c{i}", no_ack=no_ack)
        sessions.append(s)
    return kit, sessions


@pytest.mark.parametrize(
    ("consumers", "no_ack", "prefetch"),
    [
        (0, False, 0),  # no consumer: ready
        (1, False, 0),  # one consumer, unlimited: delivered at once, unacked
        (1, True, 0),  # no-ack: delivered, nothing unacked
        (1, False, 1),  # second message finds the window full: ready
        (2, False, 0),  # round-robin branch
    ],
)
def test_hot_path_envelopes_are_complete_and_match_the_full_path(
    consumers: int, no_ack: bool, prefetch: int
) -> None:
    fast, fast_sessions = _kit(consumers, no_ack, prefetch)
    # The same traffic through the full path: a per-message TTL far in the future bypasses the
    # cached-route hot path and the queue's inlined publish without changing any outcome.
    slow, slow_sessions = _kit(consumers, no_ack, prefetch)
    for i in range(3):
        fast.publish("k", f"m{i}".encode(), exchange="x", delivery_mode=2)
        slow.publish("k", f"m{i}".encode(), exchange="x", delivery_mode=2, expiration="999999999")
    fast_out = [_fields(d) for s in fast_sessions for d in s.poll()]
    slow_out = [_fields(d) for s in slow_sessions for d in s.poll()]
    fast_ready = [_fields(qm) for qm in fast.broker.queue("/", "q").messages()]
    slow_ready = [_fields(qm) for qm in slow.broker.queue("/", "q").messages()]
    for out in (*slow_out, *slow_ready):
        assert out["expires_ms"] is not None
        out["expires_ms"] = None
        out["message"]["properties"] = _delivery_mode(out)
    for out in (*fast_out, *fast_ready):
        out["message"]["properties"] = _delivery_mode(out)
    assert fast_out == slow_out
    assert fast_ready == slow_ready
    assert len(fast_out) + len(fast_ready) == 3
    assert fast.stats("q") == slow.stats("q")


def _delivery_mode(out: dict[str, Any]) -> Any:
    # Properties differ only in `expiration`, which the slow twin needed to take the full path.
    return out["message"]["properties"].delivery_mode


def test_hot_path_objects_are_messages_and_envelopes() -> None:
    kit, (s,) = _kit(1, False, 0)
    kit.publish("k", b"body", exchange="x")
    (d,) = s.poll()
    assert isinstance(d, QueuedMessage)
    assert isinstance(d.message, Message)
    assert (d.body, d.exchange, d.routing_key, d.message.size, d.message.deaths) == (b"body", "x", "k", 4, ())
    assert (d.consumer_tag, d.delivery_tag, d.redelivered, d.delivery_count) == ("c0", 1, False, 0)
    # A requeue makes a regular envelope from the hot path's one.
    s.nack(d.delivery_tag)
    (again,) = s.poll()
    assert again.redelivered and again.message is d.message and again.delivery_count == 1


def test_fast_path_follows_consumers_coming_and_going() -> None:
    kit, (a, b) = _kit(2, False, 0)
    kit.publish("k", b"1", exchange="x")
    kit.publish("k", b"2", exchange="x")
    assert ([d.body for d in a.poll()], [d.body for d in b.poll()]) == ([b"1"], [b"2"])
    a.basic_cancel("c0")  # b is now the only consumer: the single-consumer branch serves it
    kit.publish("k", b"3", exchange="x")
    assert ([d.body for d in a.poll()], [d.body for d in b.poll()]) == ([], [b"3"])
    b.basic_cancel("c1")  # none left: the message waits
    kit.publish("k", b"4", exchange="x")
    assert b.poll() == [] and kit.stats("q").ready == 1
    b.basic_consume("q", "c2")
    assert [d.body for d in b.poll()] == [b"4"]
    kit.broker.delete_queue("/", "q")
    assert b.cancelled == ["c2"]


def test_exchange_counters_include_fast_path_publishes_across_cache_resets() -> None:
    kit, _ = _kit(0, False, 0)
    vhost = kit.broker.vhost("/")
    for _ in range(3):
        kit.publish("k", exchange="x")  # cached single-queue route: counted per route
    assert (vhost.exchange_counters("x").published_in, vhost.exchange_counters("x").published_out) == (3, 3)
    kit.publish("k", exchange="x")
    kit.queue("other")  # a declaration clears the route cache: pending hits must not be lost
    kit.publish("k", exchange="x")
    kit.publish("nowhere", exchange="x")
    x = kit.broker.snapshot().exchange("x")
    assert (x.published_in, x.published_out, x.unroutable) == (6, 5, 1)
    assert kit.stats("q").published == 5


@pytest.mark.parametrize("settle", ["ack", "ack-multiple", "nack", "reject", "recover"])
def test_global_prefetch_counts_consumer_deliveries_only(settle: str) -> None:
    # basic.get deliveries share the session's unacked map but not the global window.
    kit = Kit()
    kit.queue("q")
    kit.queue("g")
    for body in (b"g1", b"g2"):
        kit.publish("g", body)
    s = kit.session()
    s.qos(2, global_=True)
    got = [s.basic_get("g"), s.basic_get("g")]
    assert all(d is not None for d in got)
    s.basic_consume("q", "c")
    for i in range(4):
        kit.publish("q", f"m{i}".encode())
    first = s.poll()
    assert [d.body for d in first] == [b"m0", b"m1"]  # the two gets do not use the window
    assert (len(s.unacked), s.consumer_unacked, s.get_unacked) == (4, 2, 2)
    tag = first[0].delivery_tag
    if settle == "ack":
        s.ack(tag)
    elif settle == "ack-multiple":
        s.ack(tag, multiple=True)  # also settles both gets (lower tags)
    elif settle == "nack":
        s.nack(tag, requeue=False)
    elif settle == "reject":
        s.reject(tag, requeue=False)
    else:
        s.recover()  # everything returns, gets included
    gets_left = 0 if settle in ("ack-multiple", "recover") else 2
    assert s.get_unacked == gets_left
    delivered = [d.body for d in s.poll()]
    assert delivered == ([b"m0", b"m1"] if settle == "recover" else [b"m2"])
    assert s.consumer_unacked == 2 and len(s.unacked) == 2 + gets_left
    s.ack(0, multiple=True)  # frees the window: what is left flows and is counted again
    assert (s.consumer_unacked, s.get_unacked) == (len(s.poll()), 0)
    assert s.consumer_unacked > 0


@pytest.mark.parametrize("seed", range(6))
def test_derived_unacked_count_matches_the_sessions_unacked_maps(seed: int) -> None:
    """`Queue.unacked_count` is derived from counters; it must always equal what the sessions hold."""
    rng = random.Random(seed)
    kit = Kit()
    kit.queue("q", x_queue_type="quorum", x_delivery_limit=2)
    kit.queue("dlq")
    kit.queue("r", x_dead_letter_exchange="", x_dead_letter_routing_key="dlq")
    sessions = [kit.session(f"c{i}") for i in range(3)]
    for i, s in enumerate(sessions):
        s.qos(rng.choice([0, 1, 3]), global_=rng.random() < 0.3)
        for name in ("q", "r"):
            s.basic_consume(name, f"{name}{i}", no_ack=rng.random() < 0.2)

    def check() -> None:
        for name in ("q", "r"):
            held = sum(1 for s in sessions for qm in s.unacked.values() if qm.queue.name == name)
            assert kit.broker.queue("/", name).unacked_count == held == kit.stats(name).unacked

    for _ in range(300):
        op = rng.random()
        s = rng.choice(sessions)
        s.poll()
        tags = list(s.unacked)
        if op < 0.35:
            kit.publish(rng.choice(["q", "r"]))
        elif op < 0.5 and tags:
            s.ack(rng.choice(tags), multiple=rng.random() < 0.3)
        elif op < 0.6 and tags:
            s.nack(rng.choice(tags), multiple=rng.random() < 0.3, requeue=rng.random() < 0.5)
        elif op < 0.7 and tags:
            s.reject(rng.choice(tags), requeue=rng.random() < 0.5)
        elif op < 0.75:
            s.recover()
        elif op < 0.85:
            s.basic_get(rng.choice(["q", "r", "dlq"]), no_ack=rng.random() < 0.5)
        elif op < 0.9:
            tag = rng.choice([*s.consumers, "none"])
            s.basic_cancel(tag)
        elif op < 0.95:
            name = rng.choice(["q", "r"])
            s.basic_consume(name, f"{name}-{rng.randrange(10**6)}", no_ack=rng.random() < 0.2)
        check()
    for s in sessions:
        s.close()
    check()
    assert kit.stats("q").unacked == kit.stats("r").unacked == 0


def test_publish_to_an_unknown_vhost_is_530_and_acking_an_unknown_tag_is_406() -> None:
    kit, (s,) = _kit(1, False, 0)
    with pytest.raises(NotAllowed, match="vhost nowhere not found"):
        kit.broker.publish("nowhere", "x", "k", Properties(), b"")
    kit.publish("k", exchange="x")
    (d,) = s.poll()
    s.ack(d.delivery_tag)
    with pytest.raises(PreconditionFailed, match=f"unknown delivery tag {d.delivery_tag}"):
        s.ack(d.delivery_tag)


def test_sole_consumer_dispatch_takes_returns_first_then_arrivals_within_its_window() -> None:
    kit, (s,) = _kit(1, False, 2)
    for i in range(5):
        kit.publish("k", f"m{i}".encode(), exchange="x")
    d0, d1 = s.poll()
    assert (d0.body, d1.body) == (b"m0", b"m1")
    s.nack(d1.delivery_tag, requeue=True)  # back to the head, then straight out again
    (again,) = s.poll()
    assert (again.body, again.redelivered) == (b"m1", True)
    s.ack(d0.delivery_tag)
    assert [(d.body, d.redelivered) for d in s.poll()] == [(b"m2", False)]
    q = kit.broker.queue("/", "q")
    assert (q.ready_count, q.ready_bytes, [m.body for m in q.messages()]) == (2, 4, [b"m3", b"m4"])
    s.ack(0, multiple=True)
    assert [d.body for d in s.poll()] == [b"m3", b"m4"]
    assert (q.ready_count, q.ready_bytes, q.unacked_count) == (0, 0, 2)


@pytest.mark.parametrize("newest", [True, False])
def test_multiple_ack_settles_across_queues_and_refills_each_window(newest: bool) -> None:
    kit = Kit()
    kit.queue("a")
    kit.queue("b")
    s = kit.session()
    s.qos(2)
    s.basic_consume("a", "ca")
    s.basic_consume("b", "cb")
    for i in range(3):
        kit.publish("a", f"a{i}".encode())
        kit.publish("b", f"b{i}".encode())
    first = s.poll()
    assert [d.body for d in first] == [b"a0", b"b0", b"a1", b"b1"]
    tag = first[-1].delivery_tag if newest else first[0].delivery_tag
    s.ack(tag, multiple=True)
    refilled = [d.body for d in s.poll()]
    a, b = kit.stats("a"), kit.stats("b")
    if newest:  # everything: both windows refill
        assert refilled == [b"a2", b"b2"] and (a.acked, b.acked, a.unacked, b.unacked) == (2, 2, 1, 1)
    else:  # a0 only
        assert refilled == [b"a2"] and (a.acked, b.acked, a.unacked, b.unacked) == (1, 0, 2, 2)
