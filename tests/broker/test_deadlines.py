"""The vhost's deadline heap: `tick()` and `next_deadline_ms()` visit only queues with something due,
and still expire everything on time (ManualClock) through requeue, purge, delete and consumer changes."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mqstudio.broker.queue import Queue
from mqstudio.broker.vhost import VHost

from .enginekit import Kit

T0 = 1_700_000_000_000


def _vh(k: Kit) -> VHost:
    return k.broker.vhost("/")


def _reference_deadline(k: Kit) -> int | None:
    """Brute force: the earliest level-head expiry or x-expires lease of any queue, or delayed release."""
    vh = _vh(k)
    times: list[int] = [d.due for d in vh._delayed]
    times.extend(t for q in vh.queues.values() if (t := _queue_deadline(q)) is not None)
    return min(times, default=None)


def _queue_deadline(q: Queue) -> int | None:
    times = []
    for level in q._levels:
        head = min(level.returns) if level.returns else (level.ready[0] if level.ready else None)
        if head is not None and head.expires_ms is not None:
            times.append(head.expires_ms)
    if q.args.expires is not None and not q.consumers:
        times.append(q.last_used_ms + q.args.expires)
    return min(times, default=None)


def _assert_wakes_in_time(k: Kit) -> None:
    """Every queue with a deadline has a live heap entry at or before it (what tick() relies on)."""
    vh = _vh(k)
    live = {(t, id(q)) for t, _, q in vh._deadlines}
    for q in vh.queues.values():
        due = _queue_deadline(q)
        if due is not None:
            assert q.wake_ms is not None and q.wake_ms <= due, (q, q.wake_ms, due)
            assert (q.wake_ms, id(q)) in live, q


def _no_expired_heads(q: Queue, now: int) -> bool:
    for level in q._levels:
        head = min(level.returns) if level.returns else (level.ready[0] if level.ready else None)
        if head is not None and head.expires_ms is not None and head.expires_ms <= now:
            return False
    return True


def test_idle_queues_without_ttl_have_no_deadline() -> None:
    k = Kit()
    for i in range(200):
        k.queue(f"q{i}")
        k.publish(f"q{i}")
    k.queue("p", x_max_priority=255)
    k.publish("p", priority=7)
    assert k.broker.next_deadline_ms() is None
    assert k.tick(10_000) == 0
    assert _vh(k)._deadlines == []


def test_next_deadline_is_the_head_expiry() -> None:
    k = Kit()
    k.queue("q", x_message_ttl=100)
    k.publish("q")
    k.tick(40)
    k.publish("q")
    assert k.broker.next_deadline_ms() == T0 + 100
    assert k.tick(59) == 0 and k.stats("q").ready == 2
    assert k.tick(1) == 1
    assert k.broker.next_deadline_ms() == T0 + 140
    assert k.tick(40) == 1 and k.stats("q").expired == 2
    assert k.broker.next_deadline_ms() is None


def test_shorter_ttl_behind_a_longer_head_expires_when_the_head_goes() -> None:
    # [ttl] only heads expire: the 10 ms message waits behind the 1000 ms one.
    k = Kit()
    k.queue("q")
    k.publish("q", b"long", expiration="1000")
    k.publish("q", b"short", expiration="10")
    assert k.broker.next_deadline_ms() == T0 + 1000
    assert k.tick(999) == 0
    assert k.tick(1) == 2


def test_taking_the_head_brings_an_earlier_deadline_forward() -> None:
    k = Kit()
    k.queue("q")
    k.publish("q", b"long", expiration="1000")
    k.publish("q", b"short", expiration="10")
    k.clock.advance(5)
    s = k.session()
    d = s.basic_get("q", no_ack=True)
    assert d is not None and d.body == b"long"
    assert k.tick(5) == 1 and k.stats("q").expired == 1  # without asking next_deadline_ms first


def test_requeued_message_keeps_its_expiry_and_wakes_the_queue() -> None:
    k = Kit()
    k.exchange("dlx", "fanout")
    k.queue("q", x_message_ttl=100, x_dead_letter_exchange="dlx")
    k.queue("dead")
    k.bind("dead", "dlx")
    k.publish("q")
    s = k.session()
    d = s.basic_get("q")
    assert d is not None
    assert k.broker.next_deadline_ms() is None  # nothing ready
    k.clock.advance(50)
    s.nack(d.delivery_tag, requeue=True)
    assert k.broker.next_deadline_ms() == T0 + 100
    assert k.tick(50) == 1
    assert k.stats("dead").ready == 1 and k.stats("q").ready == 0


def test_requeue_after_the_expiry_expires_at_once_and_is_not_redelivered() -> None:
    k = Kit()
    k.queue("q", x_message_ttl=100)
    s = k.session()
    s.basic_consume("q", "c")
    k.publish("q")
    (d,) = s.poll()
    k.clock.advance(150)
    s.nack(d.delivery_tag, requeue=True)
    assert s.poll() == []
    assert k.stats("q").expired == 1 and k.broker.next_deadline_ms() is None


def test_requeue_into_a_priority_level_below_the_head() -> None:
    k = Kit()
    k.queue("p", x_max_priority=10)
    k.publish("p", b"hi", priority=9)
    k.publish("p", b"lo", priority=1, expiration="100")
    s = k.session()
    lo_first = [s.basic_get("p"), s.basic_get("p")]
    assert [d.body for d in lo_first if d is not None] == [b"hi", b"lo"]
    lo = lo_first[1]
    assert lo is not None
    s.nack(lo.delivery_tag, requeue=True)
    assert k.broker.next_deadline_ms() == T0 + 100
    assert k.tick(100) == 1 and k.stats("p").expired == 1


def test_purge_and_delete_leave_no_deadline_and_new_messages_get_theirs() -> None:
    k = Kit()
    k.queue("q", x_message_ttl=100)
    k.publish("q")
    k.broker.purge_queue("/", "q")
    assert k.broker.next_deadline_ms() is None
    k.tick(10)
    k.publish("q")
    assert k.broker.next_deadline_ms() == T0 + 110
    k.broker.delete_queue("/", "q")
    assert k.broker.next_deadline_ms() is None
    k.queue("q", x_message_ttl=30)  # same name, new queue: the old wake-up must not touch it
    k.publish("q")
    assert k.broker.next_deadline_ms() == T0 + 40
    assert k.tick(29) == 0 and k.stats("q").ready == 1
    assert k.tick(1) == 1


def test_x_expires_lease_follows_consumers_and_use() -> None:
    # [ttl] "Queue TTL": unused = no consumers, no basic.get, no redeclare, for x-expires ms.
    k = Kit()
    k.queue("q", x_expires=1000)
    assert k.broker.next_deadline_ms() == T0 + 1000
    k.clock.advance(500)
    s = k.session()
    s.basic_consume("q", "c")
    assert k.broker.next_deadline_ms() is None
    k.tick(5000)
    assert "q" in _vh(k).queues
    s.basic_cancel("c")  # at T0 + 5500: the lease starts again
    assert k.broker.next_deadline_ms() == T0 + 6500
    k.clock.advance(900)
    assert s.basic_get("q") is None  # basic.get is use: lease renewed
    assert k.broker.next_deadline_ms() == T0 + 7400
    k.tick(999)
    assert "q" in _vh(k).queues
    assert k.tick(1) == 1
    assert "q" not in _vh(k).queues and k.broker.next_deadline_ms() is None


def test_session_close_starts_the_lease() -> None:
    k = Kit()
    k.queue("q", x_expires=100)
    s = k.session()
    s.basic_consume("q", "c")
    k.tick(1000)
    s.close()
    assert k.broker.next_deadline_ms() == T0 + 1100
    assert k.tick(100) == 1 and "q" not in _vh(k).queues


def test_each_priority_level_expires_at_its_own_head() -> None:
    k = Kit()
    k.queue("p", x_max_priority=255, x_message_ttl=100)
    k.publish("p", b"a", priority=200)
    k.tick(50)
    k.publish("p", b"b", priority=5)
    k.publish("p", b"c", priority=255)
    assert k.broker.next_deadline_ms() == T0 + 100
    assert k.tick(50) == 1
    assert [qm.body for qm in k.broker.queue("/", "p").messages()] == [b"c", b"b"]
    assert k.broker.next_deadline_ms() == T0 + 150
    assert k.tick(50) == 2


def test_priority_dispatch_skips_an_expired_message_behind_the_head() -> None:
    k = Kit()
    k.queue("p", x_max_priority=10)
    k.publish("p", b"a", priority=9, expiration="1000")
    k.publish("p", b"b", priority=9, expiration="10")
    k.publish("p", b"c", priority=1)
    k.clock.advance(20)
    s = k.session()
    s.basic_consume("p", "c", no_ack=True)
    assert [d.body for d in s.poll()] == [b"a", b"c"]
    assert k.stats("p").expired == 1


def test_ttl_expiry_is_dispatched_to_waiting_consumers_in_priority_order() -> None:
    k = Kit()
    k.queue("p", x_max_priority=3, x_message_ttl=100)
    s = k.session()
    s.qos(1)
    s.basic_consume("p", "c")
    for body, prio in ((b"x", 0), (b"y", 3), (b"z", 1)):
        k.publish("p", body, priority=prio)
    (d,) = s.poll()
    assert d.body == b"x"
    k.tick(100)  # y and z expire while the consumer is full
    s.ack(d.delivery_tag)
    assert s.poll() == [] and k.stats("p").expired == 2


def test_delayed_and_queue_deadlines_combine() -> None:
    k = Kit()
    k.exchange("dx", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    k.queue("q", x_message_ttl=500)
    k.bind("q", "dx", "k")
    k.publish("k", exchange="dx", headers={"x-delay": 200})
    assert k.broker.next_deadline_ms() == T0 + 200
    assert k.tick(200) == 1
    assert k.broker.next_deadline_ms() == T0 + 700
    assert k.tick(500) == 1


def test_superseded_wake_ups_do_not_pile_up() -> None:
    k = Kit()
    k.queue("q")
    s = k.session()
    for i in range(5000):
        # Decreasing TTLs: each new head is due earlier than the last, a new wake-up each time.
        k.publish("q", expiration=str(100_000 - i))
        k.publish("q", expiration=str(50_000 - i))
        d = s.basic_get("q", no_ack=True)
        assert d is not None
        _assert_wakes_in_time(k)
    assert len(_vh(k)._deadlines) <= 2 * len(_vh(k).queues) + 64
    assert k.broker.next_deadline_ms() == _reference_deadline(k)


_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("publish"),
            st.integers(0, 2),
            st.one_of(st.none(), st.integers(0, 300)),
            st.integers(0, 5),
        ),
        st.tuples(st.just("advance"), st.integers(0, 150)),
        st.tuples(st.just("get"), st.integers(0, 2), st.booleans()),
        st.tuples(st.just("settle"), st.sampled_from(["ack", "requeue", "reject"])),
        st.tuples(st.just("consume"), st.integers(0, 2)),
        st.tuples(st.just("cancel"), st.integers(0, 2)),
        st.tuples(st.just("purge"), st.integers(0, 2)),
        st.tuples(st.just("recover")),
        # Open or close an engine batch (Broker.begin_batch): time rules must not notice.
        st.tuples(st.just("batch"), st.booleans()),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
# A cached route to a TTL queue, published to in a batch after time moved: its TTL runs from the clock.
@example([("batch", True), ("publish", 1, None, 0), ("advance", 10), ("publish", 1, None, 0)])
def test_heap_matches_a_full_scan(ops: list[tuple[Any, ...]]) -> None:
    # After every step the heap's answer equals a scan of every queue, and after every tick no queue
    # has an expired message at the head of any level.
    k = Kit()
    names = ["plain", "ttl", "prio"]
    k.queue("plain", x_expires=400)
    k.queue("ttl", x_message_ttl=200, x_dead_letter_exchange="", x_dead_letter_routing_key="plain")
    k.queue("prio", x_max_priority=5, x_message_ttl=250)
    s = k.session()
    s.qos(2)
    consumer = k.session("consumer")
    consumer.qos(1)
    queue_ttl = {"ttl": 200, "prio": 250}
    due: dict[bytes, int] = {}  # body -> the expiry its publish time and TTLs give
    for op in ops:
        kind = op[0]
        if kind == "publish":
            _, qi, ttl, prio = op
            if names[qi] in _vh(k).queues:
                body = b"%d" % len(due)
                ttls = [t for t in (ttl, queue_ttl.get(names[qi])) if t is not None]
                if ttls:
                    due[body] = k.clock.now_ms() + min(ttls)
                k.publish(names[qi], body, expiration=None if ttl is None else str(ttl), priority=prio)
        elif kind == "batch":
            if op[1]:
                k.broker.begin_batch()
            else:
                k.broker.end_batch()
        elif kind == "advance":
            k.tick(op[1])
            now = k.clock.now_ms()
            for q in _vh(k).queues.values():
                assert _no_expired_heads(q, now), q
                assert q.args.expires is None or q.consumers or now < q.last_used_ms + q.args.expires
        elif kind == "get" and names[op[1]] in _vh(k).queues:
            s.basic_get(names[op[1]], no_ack=op[2])
        elif kind == "settle" and s.unacked:
            tag = next(iter(s.unacked))
            if op[1] == "ack":
                s.ack(tag)
            else:
                s.nack(tag, requeue=op[1] == "requeue")
        elif kind == "consume" and names[op[1]] in _vh(k).queues and f"c{op[1]}" not in consumer.consumers:
            consumer.basic_consume(names[op[1]], f"c{op[1]}")
        elif kind == "cancel":
            consumer.basic_cancel(f"c{op[1]}")
        elif kind == "purge" and names[op[1]] in _vh(k).queues:
            k.broker.purge_queue("/", names[op[1]])
        elif kind == "recover":
            consumer.recover()
        _assert_wakes_in_time(k)
        assert k.broker.next_deadline_ms() == _reference_deadline(k)
        for name in queue_ttl:
            q = _vh(k).queues[name]
            assert all(qm.expires_ms == due[qm.message.body] for qm in q.messages()), q
