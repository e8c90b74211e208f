"""The RabbitMQ replay plumbing: multiple acks that never catch a held message, several confirm groups
outstanding at once, and taking ahead with quota-capped consumers (real RabbitMQ for the last two)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mqstudio.backends.base import PublishResult, UnreachableError
from mqstudio.backends.rabbitmq import RabbitMQBackend
from mqstudio.backends.rabbitmq_messages import Confirms, PublishGroup, Unacked
from tests.ops.replay_helpers import count, dead_letter, deploy, drain, eventually, ids_of


def test_unacked_settles_a_head_run_with_one_multiple_frame_and_never_covers_a_held_tag() -> None:
    unacked = Unacked().for_channel((1, 7))
    for tag in range(1, 9):
        unacked.add(tag)
    assert unacked.settle([3, 1, 2]) == [(3, True)]
    # 4 is held: a multiple on 6 would settle it too, so 5 and 6 go one by one
    assert unacked.settle([6, 5]) == [(5, False), (6, False)]
    assert 4 in unacked and 5 not in unacked
    assert unacked.settle([4]) == [(4, False)]
    assert unacked.settle([7, 8, 99]) == [(8, True), (99, False)]  # 99 unknown: never a multiple
    assert len(unacked) == 0
    unacked.add(10)
    assert unacked.for_channel((2, 8)) is unacked and len(unacked) == 0  # a new channel starts empty


def test_confirms_fill_several_outstanding_groups_and_match_a_return_to_the_oldest_copy() -> None:
    confirms = Confirms(1)
    first, second = PublishGroup(2), PublishGroup(2)
    confirms.sent(first, 0, ("", "a", b"1"))
    confirms.sent(first, 1, ("", "b", b"2"))
    confirms.sent(second, 0, ("", "b", b"2"))
    confirms.sent(second, 1, ("", "c", b"3"))
    returned = SimpleNamespace(exchange="", routing_key="b", reply_code=312, reply_text="NO_ROUTE")
    confirms.on_return(None, returned, None, b"2")
    confirms.confirmed(3, True, True)
    assert first.pending == 0 and [(r.confirmed, r.routed) for r in first.final()] == [
        (True, True),
        (True, False),
    ]
    assert second.pending == 1 and second.results[0] == PublishResult(True, True)
    confirms.fail_all("not confirmed: the channel closed")
    assert second.final()[1] == PublishResult(False, False, "not confirmed: the channel closed")


def consumers(backend: RabbitMQBackend, queue: str) -> int:
    """Consumers on `queue` now (AMQP queue.declare passive, not the management API's sampled view)."""
    frame = backend.amqp.channel("main").queue_declare(queue, passive=True)
    return int(frame.method.consumer_count)


def test_taking_ahead_takes_no_more_than_allowed_and_end_take_gives_it_back(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    ids = dead_letter(backend, 50)
    first = backend.take_for_replay("dlq", 10, ahead=20)
    assert len(first) == 10
    eventually(lambda: count(backend, "dlq") == 20, "20 more taken ahead")
    # no consumer is left on the DLQ, so nothing more can be taken than what was counted
    eventually(lambda: consumers(backend, "dlq") == 0, "the taking-ahead consumers cancelled")
    assert count(backend, "dlq") == 20, "nothing beyond the 20 allowed ahead"
    second = backend.take_for_replay("dlq", 10)  # returned from what was taken ahead
    assert len(second) == 10 and count(backend, "dlq") == 20
    backend.settle_many(first + second, ack=True)
    backend.end_take()  # the other 10 taken ahead go back
    eventually(lambda: count(backend, "dlq") == 30, "what was taken ahead back in the DLQ")
    assert ids_of(drain(backend, "dlq")) == sorted(set(ids) - set(ids_of(first + second)))


def test_a_held_message_between_acked_ones_stays_in_the_queue(rabbitmq_backend: RabbitMQBackend) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    dead_letter(backend, 5)
    taken = backend.take_for_replay("dlq", 5)
    held = taken[2]
    backend.settle_many([m for m in taken if m is not held], ack=True)
    backend.settle_many([held], ack=False, requeue=True)
    eventually(lambda: count(backend, "dlq") == 1, "the held message back in the DLQ")
    assert ids_of(drain(backend, "dlq")) == ids_of([held])


def test_a_replay_round_does_not_go_on_silently_on_a_new_connection(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    dead_letter(backend, 30)
    held = backend.take_for_replay("dlq", 10, ahead=10)
    assert len(held) == 10
    backend.amqp.close()  # the link is gone: RabbitMQ puts back all 30
    with pytest.raises(UnreachableError, match="during the replay"):
        backend.take_for_replay("dlq", 10)
    with pytest.raises(UnreachableError):
        backend.settle_many(held, ack=True)  # their handles name the lost connection
    backend.end_take()  # the caller gave up the round: a new one starts on the new connection
    eventually(lambda: count(backend, "dlq") == 30, "everything back in the DLQ")
    again = backend.take_for_replay("dlq", 30)
    backend.settle_many(again, ack=True)
    assert len(again) == 30 and set(ids_of(held)) <= set(ids_of(again))
    assert count(backend, "dlq") == 0
