"""Queue length limits and overflow behaviour (https://www.rabbitmq.com/docs/maxlength)."""

from __future__ import annotations

import pytest

from .enginekit import Kit


@pytest.mark.parametrize(
    ("arguments", "bodies", "kept", "dead_lettered", "refused"),
    [
        # maxlength docs "Default Max Queue Length Limit Behaviour": drop-head drops the oldest.
        ({"x_max_length": 2}, [b"1", b"2", b"3"], [b"2", b"3"], [b"1"], []),
        # x-max-length-bytes counts message bodies only.
        ({"x_max_length_bytes": 4}, [b"aa", b"bb", b"cc"], [b"bb", b"cc"], [b"aa"], []),
        # maxlength docs "Queue Overflow Behaviour": reject-publish refuses the newest.
        ({"x_max_length": 2, "x_overflow": "reject-publish"}, [b"1", b"2", b"3"], [b"1", b"2"], [], [b"3"]),
        # reject-publish-dlx refuses and dead-letters it.
        (
            {"x_max_length": 2, "x_overflow": "reject-publish-dlx"},
            [b"1", b"2", b"3"],
            [b"1", b"2"],
            [b"3"],
            [b"3"],
        ),
        (
            {"x_max_length_bytes": 3, "x_overflow": "reject-publish"},
            [b"aa", b"b", b"c"],
            [b"aa", b"b"],
            [],
            [b"c"],
        ),
        # max-length 0 with drop-head: everything dead-lettered on arrival (no consumer).
        ({"x_max_length": 0}, [b"1", b"2"], [], [b"1", b"2"], []),
    ],
)
def test_overflow_variants(
    arguments: dict[str, object],
    bodies: list[bytes],
    kept: list[bytes],
    dead_lettered: list[bytes],
    refused: list[bytes],
) -> None:
    k = Kit()
    k.queue("dlq")
    k.queue("q", x_dead_letter_exchange="", x_dead_letter_routing_key="dlq", **arguments)
    got_refused = []
    for body in bodies:
        r = k.publish("q", body)
        if r.rejected_by_overflow:
            assert r.rejected_by_overflow == ("q",) and r.routed == () and not r.unroutable
            got_refused.append(body)
        else:
            assert r.routed == ("q",)
    assert got_refused == refused
    dl = k.get_all("dlq")
    assert [d.body for d in dl] == dead_lettered
    assert all(d.message.headers["x-death"][0]["reason"] == "maxlen" for d in dl)
    assert k.bodies("q") == kept


def test_reject_publish_without_dlx_counts_dropped_overflow() -> None:
    k = Kit()
    k.queue("q", x_max_length=1, x_overflow="reject-publish")
    k.publish("q")
    k.publish("q")
    assert k.stats("q").dropped == {"overflow": 1}


def test_drop_head_without_dlx_counts_dropped_maxlen() -> None:
    k = Kit()
    k.queue("q", x_max_length=1)
    k.publish("q")
    k.publish("q")
    assert k.stats("q").dropped == {"maxlen": 1}


def test_unacked_messages_do_not_count_towards_the_limit() -> None:
    # maxlength docs: only ready messages count.
    k = Kit()
    k.queue("q", x_max_length=1, x_overflow="reject-publish")
    s = k.session()
    s.qos(5)
    s.basic_consume("q", "c")
    for _ in range(3):
        assert k.publish("q").routed == ("q",)
    assert k.stats("q").unacked == 3


def test_reject_publish_refuses_even_when_a_consumer_is_waiting() -> None:
    # rabbit_amqqueue_process checks will_overflow before attempting delivery; with length 0 and
    # reject-publish every publish is refused.
    k = Kit()
    k.queue("q", x_max_length=0, x_overflow="reject-publish")
    s = k.session()
    s.basic_consume("q", "c")
    assert k.publish("q").rejected_by_overflow == ("q",)
    assert s.poll() == []


def test_drop_head_with_waiting_consumer_delivers() -> None:
    k = Kit()
    k.queue("q", x_max_length=0)
    s = k.session()
    s.basic_consume("q", "c")
    assert k.publish("q").routed == ("q",)
    assert len(s.poll()) == 1


def test_requeue_over_the_limit_drops_from_the_head() -> None:
    # requeue_and_run runs maybe_drop_head after returning messages.
    k = Kit()
    k.queue("dlq")
    k.queue("q", x_max_length=1, x_dead_letter_exchange="", x_dead_letter_routing_key="dlq")
    k.publish("q", b"1")
    s = k.session()
    d = s.basic_get("q")
    assert d is not None
    k.publish("q", b"2")
    s.nack(d.delivery_tag, requeue=True)  # "1" returns ahead of "2": over the limit, head dropped
    assert k.bodies("q") == [b"2"]
    assert k.bodies("dlq") == [b"1"]


def test_overflow_on_one_queue_does_not_stop_others() -> None:
    k = Kit()
    k.exchange("fan", "fanout")
    k.queue("full", x_max_length=0, x_overflow="reject-publish")
    k.queue("free")
    k.bind("full", "fan")
    k.bind("free", "fan")
    r = k.publish("", exchange="fan")
    assert (r.routed, r.rejected_by_overflow) == (("free",), ("full",))
