"""Message TTL and queue TTL (https://www.rabbitmq.com/docs/ttl), driven by a ManualClock."""

from __future__ import annotations

import pytest

from mqstudio.broker.errors import PreconditionFailed

from .enginekit import Kit


@pytest.mark.parametrize(
    ("queue_ttl", "expiration", "expired_at"),
    [
        # ttl docs "Per-Queue Message TTL": x-message-ttl applies to every message.
        (100, None, 100),
        # ttl docs "Per-Message TTL in Publishers": the expiration property.
        (None, "50", 50),
        # "When both a per-queue and a per-message TTL are specified, the lower value is chosen."
        (100, "50", 50),
        (30, "50", 30),
    ],
)
def test_lower_of_queue_and_message_ttl_applies(
    queue_ttl: int | None, expiration: str | None, expired_at: int
) -> None:
    k = Kit()
    k.queue("q", **({"x_message_ttl": queue_ttl} if queue_ttl is not None else {}))
    k.publish("q", expiration=expiration)
    k.tick(expired_at - 1)
    assert k.stats("q").ready == 1
    k.tick(1)
    st = k.stats("q")
    assert (st.ready, st.expired) == (0, 1)


def test_expired_messages_are_never_delivered_even_without_tick() -> None:
    # ttl docs: "expired messages will never be delivered" (a get after expiry sees nothing).
    k = Kit()
    k.queue("q", x_message_ttl=10)
    k.publish("q")
    k.clock.advance(10)
    s = k.session()
    assert s.basic_get("q") is None
    assert k.stats("q").expired == 1


def test_expiry_happens_only_at_the_head() -> None:
    # ttl docs "Caveats": per-message TTL messages "only expire once they reach the head of the
    # queue"; a longer-lived message ahead blocks expiry behind it.
    k = Kit()
    k.queue("q")
    k.publish("q", b"long", expiration="1000")
    k.publish("q", b"short", expiration="10")
    k.tick(500)
    assert k.stats("q").ready == 2  # "short" is overdue but sits behind "long"
    assert k.broker.next_deadline_ms() == k.clock.now_ms() + 500
    k.tick(500)
    st = k.stats("q")
    assert (st.ready, st.expired) == (0, 2)  # both go once "long" leaves the head


def test_overdue_message_behind_head_expires_once_head_is_consumed() -> None:
    k = Kit()
    k.queue("q")
    k.publish("q", b"no-ttl")
    k.publish("q", b"short", expiration="10")
    k.tick(20)
    s = k.session()
    first = s.basic_get("q")
    assert first is not None and first.body == b"no-ttl"
    assert s.basic_get("q") is None
    assert k.stats("q").expired == 1


@pytest.mark.parametrize(
    ("has_consumer", "delivered", "expired"),
    [
        # ttl docs: TTL 0 "causes messages to be expired upon reaching a queue unless they can be
        # delivered to a consumer immediately".
        (True, 1, 0),
        (False, 0, 1),
    ],
)
def test_ttl_zero_expires_unless_a_consumer_takes_it_at_once(
    has_consumer: bool, delivered: int, expired: int
) -> None:
    k = Kit()
    k.queue("q", x_message_ttl=0)
    s = k.session()
    if has_consumer:
        s.basic_consume("q", "c")
    k.publish("q")
    st = k.stats("q")
    assert (st.delivered, st.expired, st.ready) == (delivered, expired, 0)


def test_ttl_zero_with_busy_consumer_expires() -> None:
    k = Kit()
    k.queue("q", x_message_ttl=0)
    s = k.session()
    s.qos(1)
    s.basic_consume("q", "c")
    k.publish("q", b"1")
    k.publish("q", b"2")  # prefetch full: cannot be delivered immediately
    st = k.stats("q")
    assert (st.delivered, st.expired) == (1, 1)


def test_requeued_message_keeps_its_original_expiry() -> None:
    # ttl docs: requeued messages retain their original expiry time.
    k = Kit()
    k.queue("q", x_message_ttl=100)
    k.publish("q")
    s = k.session()
    k.clock.advance(60)
    d = s.basic_get("q")
    assert d is not None
    k.clock.advance(60)
    s.nack(d.delivery_tag, requeue=True)
    assert k.stats("q").expired == 1


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("abc", "invalid expiration 'abc': no_integer"),
        ("-1", "invalid expiration '-1': negative_value"),
    ],
)
def test_invalid_expiration_is_406(value: str, error: str) -> None:
    k = Kit()
    k.queue("q")
    with pytest.raises(PreconditionFailed) as exc:
        k.publish("q", expiration=value)
    assert exc.value.text == error


def test_queue_expires_when_unused() -> None:
    # ttl docs "Queue TTL": x-expires deletes a queue unused (no consumers, no basic.get, no
    # redeclare) for the period; its messages are not dead-lettered.
    k = Kit()
    k.queue("dlq")
    k.queue("q", x_expires=1000, x_dead_letter_exchange="", x_dead_letter_routing_key="dlq")
    k.publish("q")
    k.tick(999)
    assert "q" in k.broker.vhost("/").queues
    k.tick(1)
    assert "q" not in k.broker.vhost("/").queues
    assert k.stats("dlq").ready == 0


@pytest.mark.parametrize("use", ["redeclare", "get", "consume"])
def test_queue_use_resets_x_expires(use: str) -> None:
    k = Kit()
    k.queue("q", x_expires=1000)
    k.tick(800)
    s = k.session()
    if use == "redeclare":
        k.queue("q", x_expires=1000)
    elif use == "get":
        s.basic_get("q")
    else:
        s.basic_consume("q", "c")
        k.tick(5000)
        assert "q" in k.broker.vhost("/").queues  # never expires while consumed
        s.basic_cancel("c")
    k.tick(800)
    assert "q" in k.broker.vhost("/").queues
    k.tick(200)
    assert "q" not in k.broker.vhost("/").queues


def test_next_deadline_covers_ttl_expires_and_nothing() -> None:
    k = Kit()
    assert k.broker.next_deadline_ms() is None
    now = k.clock.now_ms()
    k.queue("q", x_message_ttl=300)
    k.publish("q")
    k.queue("e", x_expires=200)
    assert k.broker.next_deadline_ms() == now + 200
    k.tick(200)
    assert k.broker.next_deadline_ms() == now + 300
    k.tick(100)
    assert k.broker.next_deadline_ms() is None


def test_expired_message_dead_letters_with_reason_expired() -> None:
    k = Kit()
    k.queue("dlq")
    k.queue("q", x_message_ttl=10, x_dead_letter_exchange="", x_dead_letter_routing_key="dlq")
    k.publish("q", expiration="5")
    k.tick(5)
    (d,) = k.get_all("dlq")
    death = d.message.headers["x-death"][0]
    assert death["reason"] == "expired" and death["original-expiration"] == "5"
    assert d.properties.expiration is None
