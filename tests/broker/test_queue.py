"""Queue storage: FIFO, requeue to the original position, purge, delete, basic.get counts."""

from __future__ import annotations

import pytest

from mqstudio.broker.errors import PreconditionFailed

from .enginekit import Kit


def test_fifo_order_through_basic_get() -> None:
    k = Kit()
    k.queue("q")
    for i in range(5):
        k.publish("q", str(i).encode())
    assert k.bodies("q") == [b"0", b"1", b"2", b"3", b"4"]


def test_basic_get_reports_remaining_message_count() -> None:
    k = Kit()
    k.queue("q")
    for i in range(3):
        k.publish("q", str(i).encode())
    s = k.session()
    d = s.basic_get("q")
    assert d is not None and d.message_count == 2 and d.consumer_tag == "" and d.delivery_tag == 1
    assert s.basic_get("q") is not None
    assert s.basic_get("q") is not None
    assert s.basic_get("q") is None


@pytest.mark.parametrize(
    ("settle", "expected"),
    [
        # RabbitMQ classic queues put a requeued message back at its original position.
        ("nack_requeue", [b"0", b"1", b"2", b"3", b"4"]),
        ("reject_requeue", [b"0", b"1", b"2", b"3", b"4"]),
        ("recover", [b"0", b"1", b"2", b"3", b"4"]),
        ("close", [b"0", b"1", b"2", b"3", b"4"]),
    ],
)
def test_requeue_returns_to_original_position(settle: str, expected: list[bytes]) -> None:
    k = Kit()
    k.queue("q")
    for i in range(5):
        k.publish("q", str(i).encode())
    s = k.session()
    taken = [s.basic_get("q"), s.basic_get("q"), s.basic_get("q")]  # 0, 1, 2
    assert all(d is not None for d in taken)
    # Settle out of order: 2 then 0 back, 1 acked... except for recover/close which return all.
    if settle == "nack_requeue":
        s.nack(3, requeue=True)
        s.nack(1, requeue=True)
        s.nack(2, requeue=True)
    elif settle == "reject_requeue":
        s.reject(3)
        s.reject(1)
        s.reject(2)
    elif settle == "recover":
        s.recover()
    else:
        s.close()
    got = k.get_all("q")
    assert [d.body for d in got] == expected
    assert [d.redelivered for d in got] == [True, True, True, False, False]


def test_requeued_message_interleaves_by_sequence_with_partial_acks() -> None:
    k = Kit()
    k.queue("q")
    for i in range(4):
        k.publish("q", str(i).encode())
    s = k.session()
    for _ in range(3):
        s.basic_get("q")
    s.ack(2)  # message 1 done
    s.nack(3, requeue=True)  # message 2 back
    s.nack(1, requeue=True)  # message 0 back
    assert k.bodies("q") == [b"0", b"2", b"3"]


def test_requeue_makes_a_fresh_delivery_and_keeps_the_old_one_unchanged() -> None:
    k = Kit()
    k.queue("q")
    k.publish("q")
    s = k.session()
    first = s.basic_get("q")
    assert first is not None
    s.reject(first.delivery_tag, requeue=True)
    second = s.basic_get("q")
    assert second is not None and second is not first
    assert (first.redelivered, second.redelivered) == (False, True)
    assert second.delivery_tag == 2


def test_purge_drops_ready_keeps_unacked() -> None:
    k = Kit()
    k.queue("q")
    for _ in range(4):
        k.publish("q")
    s = k.session()
    s.basic_get("q")
    assert k.broker.purge_queue("/", "q") == 3
    st = k.stats("q")
    assert (st.ready, st.unacked) == (0, 1)
    s.nack(1, requeue=True)
    assert k.stats("q").ready == 1


@pytest.mark.parametrize(
    ("if_unused", "if_empty", "consumer", "messages", "error"),
    [
        (False, False, True, 2, None),
        (True, False, True, 0, "queue 'q' in vhost '/' in use"),
        (False, True, False, 2, "queue 'q' in vhost '/' is not empty"),
        (True, True, False, 0, None),
    ],
)
def test_delete_queue_conditions(
    if_unused: bool, if_empty: bool, consumer: bool, messages: int, error: str | None
) -> None:
    k = Kit()
    k.queue("q")
    for _ in range(messages):
        k.publish("q")
    s = k.session()
    if consumer:
        s.qos(1)
        s.basic_consume("q", "c")
    if error:
        with pytest.raises(PreconditionFailed) as exc:
            k.broker.delete_queue("/", "q", if_unused=if_unused, if_empty=if_empty)
        assert exc.value.text == error and exc.value.code == 406
    else:
        # queue.delete-ok counts the ready messages deleted (one is unacked with the consumer).
        expected = messages - 1 if consumer and messages else messages
        assert k.broker.delete_queue("/", "q", if_unused=if_unused, if_empty=if_empty) == expected


def test_delete_queue_cancels_consumers_with_notification() -> None:
    k = Kit()
    k.queue("q")
    seen: list[str] = []
    s = k.broker.open_session("/", "c1", on_cancel=seen.append)
    s.basic_consume("q", "ctag")
    other = k.session("c2")
    other.basic_consume("q", "ctag2")
    k.broker.delete_queue("/", "q")
    assert seen == ["ctag"]
    assert other.cancelled == ["ctag2"]
    assert s.consumers == {} and other.consumers == {}


def test_delete_missing_queue_is_ok_with_zero() -> None:
    assert Kit().broker.delete_queue("/", "nope") == 0


def test_messages_of_deleted_queue_are_not_dead_lettered() -> None:
    k = Kit()
    k.queue("dlq")
    k.queue("q", x_dead_letter_exchange="", x_dead_letter_routing_key="dlq")
    k.publish("q")
    k.broker.delete_queue("/", "q")
    assert k.stats("dlq").ready == 0


def test_ack_of_message_from_deleted_queue_is_accepted() -> None:
    k = Kit()
    k.queue("q")
    k.publish("q")
    s = k.session()
    d = s.basic_get("q")
    assert d is not None
    k.broker.delete_queue("/", "q")
    s.ack(d.delivery_tag)
    assert s.unacked == {}
