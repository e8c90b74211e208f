"""Dead-lettering (https://www.rabbitmq.com/docs/dlx), x-death bookkeeping and cycle detection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mqstudio.broker.deadletter import DeadLetterReason, dead_letter, is_cycle
from mqstudio.broker.message import Death, Message, Properties

from .enginekit import Kit


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=UTC)


def _retry_topology() -> Kit:
    """work exchange → work queue (DLX retry) ; retry exchange → wait queue (TTL 1 s, DLX work)."""
    k = Kit()
    k.exchange("work")
    k.exchange("retry")
    k.queue("work", x_dead_letter_exchange="retry")
    k.queue("wait", x_message_ttl=1000, x_dead_letter_exchange="work")
    k.bind("work", "work", "task")
    k.bind("wait", "retry", "task")
    return k


def test_retry_topology_x_death_over_three_rounds() -> None:
    # dlx docs "Dead-Lettered Messages": one x-death entry per {queue, reason}, newest first; a
    # repeated pair has its count incremented and moves to the front (other fields unchanged, as
    # in update_x_death_header); x-first-death-* set once; a rejection in the loop means it is not
    # an automatic cycle, so the message keeps circulating.
    k = _retry_topology()
    s = k.session()
    s.basic_consume("work", "worker")
    k.publish("task", b"job", exchange="work")
    t_rejected = _ts(k.clock.now_ms())
    expected: list[list[dict[str, Any]]] = []
    for round_ in range(1, 4):
        (d,) = s.poll()
        assert d.body == b"job"
        if round_ == 1:
            assert d.exchange == "work" and "x-death" not in d.message.headers
            t_rejected = _ts(k.clock.now_ms())
        else:
            assert d.exchange == "work" and d.routing_key == "task"
            assert d.message.headers["x-death"] == expected[-1]
        s.reject(d.delivery_tag, requeue=False)
        # Now in wait, dead-lettered from work.
        (held,) = k.broker.queue("/", "wait").messages()
        assert held.message.exchange == "retry"
        rejected_entry = {
            "count": round_,
            "reason": "rejected",
            "queue": "work",
            "time": t_rejected,
            "exchange": "work",
            "routing-keys": ["task"],
        }
        if round_ == 1:
            t_expired = _ts(k.clock.now_ms() + 1000)
            assert held.message.headers["x-death"] == [rejected_entry]
        else:
            expired_entry = {
                "count": round_ - 1,
                "reason": "expired",
                "queue": "wait",
                "time": t_expired,
                "exchange": "retry",
                "routing-keys": ["task"],
            }
            assert held.message.headers["x-death"] == [rejected_entry, expired_entry]
        k.tick(1000)
        expired_entry = {
            "count": round_,
            "reason": "expired",
            "queue": "wait",
            "time": t_expired,
            "exchange": "retry",
            "routing-keys": ["task"],
        }
        expected.append([expired_entry, rejected_entry])
    (final,) = s.poll()
    h = final.message.headers
    assert h["x-death"] == expected[-1]
    assert [e["count"] for e in h["x-death"]] == [3, 3]
    assert (h["x-first-death-queue"], h["x-first-death-reason"], h["x-first-death-exchange"]) == (
        "work",
        "rejected",
        "work",
    )
    assert (h["x-last-death-queue"], h["x-last-death-reason"], h["x-last-death-exchange"]) == (
        "wait",
        "expired",
        "retry",
    )
    assert k.stats("work").dead_lettered == {"rejected": 3}
    assert k.stats("wait").dead_lettered == {"expired": 3}


def test_self_cycle_without_rejection_is_dropped() -> None:
    # dlx docs: messages in an automatic cycle (no rejection in it) are dropped.
    k = Kit()
    k.queue("a", x_message_ttl=10, x_dead_letter_exchange="", x_dead_letter_routing_key="a")
    k.publish("a")
    k.tick(10)  # expires, dead-lettered into a: first time a is in x-death, ... and it is a itself
    st = k.stats("a")
    assert st.ready == 0 and st.dropped == {"cycle": 1} and st.dead_lettered == {}


def test_two_queue_expiry_cycle_is_dropped_on_return() -> None:
    k = Kit()
    k.queue("a", x_message_ttl=10, x_dead_letter_exchange="", x_dead_letter_routing_key="b")
    k.queue("b", x_message_ttl=10, x_dead_letter_exchange="", x_dead_letter_routing_key="a")
    k.publish("a")
    k.tick(10)
    assert k.stats("b").ready == 1  # a → b is fine: b never dead-lettered it yet
    k.tick(10)
    assert k.stats("a").ready == 0
    assert k.stats("b").dropped == {"cycle": 1}


def test_cycle_skips_only_the_cycling_target() -> None:
    k = Kit()
    k.exchange("dlx", "fanout")
    k.queue("a", x_message_ttl=10, x_dead_letter_exchange="dlx")
    k.queue("other")
    k.bind("a", "dlx")
    k.bind("other", "dlx")
    k.publish("a")
    k.tick(10)
    assert (k.stats("a").ready, k.stats("other").ready) == (0, 1)
    assert k.stats("a").dropped == {"cycle": 1}
    assert k.stats("a").dead_lettered == {"expired": 1}


def test_rejection_back_to_same_queue_is_not_a_cycle() -> None:
    k = Kit()
    k.queue("a", x_dead_letter_exchange="", x_dead_letter_routing_key="a")
    s = k.session()
    k.publish("a")
    for _ in range(3):
        d = s.basic_get("a")
        assert d is not None
        s.reject(d.delivery_tag, requeue=False)
        assert k.stats("a").ready == 1
    (d,) = k.get_all("a")
    assert d.message.headers["x-death"][0]["count"] == 3


@pytest.mark.parametrize(
    ("deaths", "target", "cycle"),
    [
        ([], "a", False),
        ([{"queue": "a", "reason": "expired"}], "a", True),
        ([{"queue": "b", "reason": "expired"}, {"queue": "a", "reason": "maxlen"}], "a", True),
        ([{"queue": "b", "reason": "rejected"}, {"queue": "a", "reason": "expired"}], "a", False),
        ([{"queue": "a", "reason": "rejected"}], "a", False),
        # entries older than the first match for the target do not matter
        ([{"queue": "a", "reason": "expired"}, {"queue": "z", "reason": "rejected"}], "a", True),
        ([{"queue": "b", "reason": "expired"}], "a", False),
    ],
)
def test_is_cycle_table(deaths: list[dict[str, Any]], target: str, cycle: bool) -> None:
    assert is_cycle(deaths, target) is cycle


@pytest.mark.parametrize(
    ("dlrk", "route_keys", "cc_kept"),
    [
        # dlx docs: without x-dead-letter-routing-key the original keys (incl. CC) are used.
        (None, ["orig", "cc1"], True),
        # with it, that key alone and "the CC header will also be removed".
        ("fixed", ["fixed"], False),
    ],
)
def test_routing_keys_and_cc(dlrk: str | None, route_keys: list[str], cc_kept: bool) -> None:
    msg = Message(b"x", Properties(headers={"CC": ["cc1"]}, expiration="100"), "ex", "orig")
    new, keys = dead_letter(msg, "q", DeadLetterReason.REJECTED, 1_700_000_000_000, dlx="dlx", dlrk=dlrk)
    assert keys == route_keys
    assert ("CC" in new.headers) is cc_kept
    assert new.exchange == "dlx" and new.routing_key == route_keys[0]
    death = new.headers["x-death"][0]
    assert death["routing-keys"] == ["orig", "cc1"]  # "including CC keys but excluding BCC"
    assert death["original-expiration"] == "100" and new.properties.expiration is None
    assert msg.properties.headers == {"CC": ["cc1"]}  # the original is untouched (shared by queues)


def test_bcc_is_removed_at_publish_and_never_reaches_x_death() -> None:
    k = Kit()
    k.exchange("x")
    k.queue("q", x_dead_letter_exchange="", x_dead_letter_routing_key="dlq")
    k.queue("dlq")
    k.queue("hidden")
    k.bind("q", "x", "k")
    k.bind("hidden", "x", "secret")
    r = k.publish("k", exchange="x", headers={"BCC": ["secret"]})
    assert r.routed == ("hidden", "q")
    s = k.session()
    d = s.basic_get("q")
    assert d is not None and "BCC" not in d.message.headers
    s.reject(d.delivery_tag, requeue=False)
    (dl,) = k.get_all("dlq")
    assert dl.message.headers["x-death"][0]["routing-keys"] == ["k"]


def test_missing_dlx_drops_silently_and_counts() -> None:
    k = Kit()
    k.queue("q", x_dead_letter_exchange="nowhere")
    s = k.session()
    k.publish("q")
    d = s.basic_get("q")
    assert d is not None
    s.reject(d.delivery_tag, requeue=False)
    assert k.stats("q").dropped == {"dlx_missing": 1}


@pytest.mark.parametrize(
    ("setup", "cause"),
    [("no_dlx", "rejected"), ("unroutable", "unroutable")],
)
def test_reject_without_destination_is_counted(setup: str, cause: str) -> None:
    k = Kit()
    if setup == "no_dlx":
        k.queue("q")
    else:
        k.exchange("dlx")
        k.queue("q", x_dead_letter_exchange="dlx")
    k.publish("q")
    s = k.session()
    d = s.basic_get("q")
    assert d is not None
    s.nack(d.delivery_tag, requeue=False)
    st = k.stats("q")
    assert st.dropped == {cause: 1} and st.rejected == 1


def test_x_death_count_increments_in_place_and_moves_to_front() -> None:
    msg = Message(b"x", Properties(), "ex", "rk")
    now = 1_700_000_000_000
    m1, _ = dead_letter(msg, "a", DeadLetterReason.EXPIRED, now, dlx="d", dlrk=None)
    m2, _ = dead_letter(m1, "b", DeadLetterReason.REJECTED, now + 5000, dlx="d", dlrk=None)
    m3, _ = dead_letter(m2, "a", DeadLetterReason.EXPIRED, now + 9000, dlx="d", dlrk=None)
    deaths = m3.headers["x-death"]
    assert [(e["queue"], e["reason"], e["count"]) for e in deaths] == [
        ("a", "expired", 2),
        ("b", "rejected", 1),
    ]
    assert deaths[0]["time"] == _ts(now) and deaths[0]["exchange"] == "ex"
    assert m1.headers["x-death"][0]["count"] == 1  # earlier copies are not mutated
    assert m3.headers["x-first-death-queue"] == "a" and m3.headers["x-last-death-reason"] == "expired"


def test_quorum_delivery_limit_dead_letters_after_limit_returns() -> None:
    # quorum-queues docs "Poison Message Handling": a message returned more times than the
    # delivery limit is dead-lettered (reason delivery_limit); with limit 2 a consumer sees it 3 times.
    k = Kit()
    k.queue("dlq")
    k.broker.declare_queue(
        "/",
        "qq",
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 2,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "dlq",
        },
    )
    s = k.session()
    s.basic_consume("qq", "c")
    k.publish("qq")
    seen = []
    for _ in range(5):
        ds = s.poll()
        if not ds:
            break
        (d,) = ds
        seen.append((d.redelivered, d.delivery_count))
        s.nack(d.delivery_tag, requeue=True)
    assert seen == [(False, 0), (True, 1), (True, 2)]
    (dl,) = k.get_all("dlq")
    assert dl.message.headers["x-death"][0]["reason"] == "delivery_limit"
    assert k.stats("qq").dead_lettered == {"delivery_limit": 1}


@pytest.mark.parametrize(
    ("queue_type", "limit", "deliveries"),
    [
        ("quorum", None, 21),  # RabbitMQ 4.0 default delivery limit 20
        ("quorum", -1, 30),  # negative: no limit (capped by the loop below)
        ("classic", 2, 30),  # classic queues ignore x-delivery-limit
    ],
)
def test_delivery_limit_defaults(queue_type: str, limit: int | None, deliveries: int) -> None:
    k = Kit()
    args: dict[str, Any] = {"x-queue-type": queue_type}
    if limit is not None:
        args["x-delivery-limit"] = limit
    k.broker.declare_queue("/", "q", arguments=args)
    k.publish("q")
    s = k.session()
    n = 0
    while n < 30 and (d := s.basic_get("q")) is not None:
        n += 1
        s.reject(d.delivery_tag, requeue=True)
    assert n == deliveries


# -- client-sent x-death (RabbitMQ 4: "will not interpret this x-death header anymore when clients
# (re-)publish a message") --------------------------------------------------------------------------


def _work_and_dlq() -> Kit:
    k = Kit()
    k.exchange("dlx", "fanout")
    k.queue("work", x_dead_letter_exchange="dlx")
    k.queue("dlq")
    k.bind("dlq", "dlx")
    return k


def test_client_sent_x_death_is_not_interpreted() -> None:
    # A forged history (count 7 for the very pair the broker records) is not counted on.
    k = _work_and_dlq()
    forged = [{"queue": "work", "reason": "rejected", "count": 7, "exchange": "", "routing-keys": ["work"]}]
    k.publish("work", headers={"x-death": forged, "x-first-death-queue": "elsewhere"})
    s = k.session()
    d = s.basic_get("work")
    assert d is not None and d.message.deaths == ()
    s.reject(d.delivery_tag, requeue=False)
    (got,) = k.get_all("dlq")
    xd = got.properties.headers["x-death"]
    assert [(e["queue"], e["reason"], e["count"]) for e in xd] == [("work", "rejected", 1)]
    # The broker's first dead-lettering sets x-first-death-*, replacing what the client sent.
    assert got.properties.headers["x-first-death-queue"] == "work"
    assert [(x.queue, x.reason, x.count) for x in got.message.deaths] == [("work", "rejected", 1)]


def test_client_copied_x_death_does_not_cause_a_cycle_drop() -> None:
    # A message whose copied x-death names 'b' (expired) used to be dropped as a "cycle" on its way
    # to 'b'; RabbitMQ 4 ignores client x-death and delivers it.
    k = Kit()
    k.exchange("to-b", "fanout")
    k.queue("a", x_message_ttl=10, x_dead_letter_exchange="to-b")
    k.queue("b")
    k.bind("b", "to-b")
    old = [{"queue": "b", "reason": "expired", "count": 1, "exchange": "x", "routing-keys": ["k"]}]
    k.publish("a", headers={"x-death": old})
    k.tick(20)
    assert k.stats("b").ready == 1
    assert k.stats("a").dropped == {}
    (got,) = k.get_all("b")
    assert [(e["queue"], e["reason"], e["count"]) for e in got.properties.headers["x-death"]] == [
        ("a", "expired", 1)
    ]


def test_client_sent_x_death_travels_untouched_until_the_broker_dead_letters() -> None:
    k = Kit()
    k.queue("q")
    sent = [{"queue": "q", "reason": "expired", "count": 3}]
    k.publish("q", headers={"x-death": sent, "x-last-death-queue": "q"})
    (d,) = k.get_all("q")
    assert d.properties.headers == {"x-death": sent, "x-last-death-queue": "q"}
    assert d.message.deaths == ()


def test_manual_retry_republish_with_copied_headers_starts_a_new_history() -> None:
    # The "manual retry / shovel" pattern: take from the DLQ, republish body and headers as they are.
    k = _work_and_dlq()
    k.publish("work")
    s = k.session()
    for _ in range(3):
        d = s.basic_get("work")
        assert d is not None
        s.reject(d.delivery_tag, requeue=False)
        dead = s.basic_get("dlq", no_ack=True)
        assert dead is not None
        assert [e["count"] for e in dead.properties.headers["x-death"]] == [1]
        k.publish("work", headers=dict(dead.properties.headers))
    assert k.stats("work").ready == 1


def test_automatic_cycle_still_detected_from_the_broker_history() -> None:
    # Copied headers do not hide a real cycle either: the history on the message decides.
    k = Kit()
    k.queue("a", x_message_ttl=10, x_dead_letter_exchange="", x_dead_letter_routing_key="b")
    k.queue("b", x_message_ttl=10, x_dead_letter_exchange="", x_dead_letter_routing_key="a")
    k.publish("a", headers={"x-death": []})
    k.tick(10)
    k.tick(10)
    assert k.stats("a").ready == 0 and k.stats("b").dropped == {"cycle": 1}


def test_is_cycle_reads_death_records() -> None:
    deaths = (
        Death("b", "expired", 1, 0, "x", ("k",)),
        Death("a", "expired", 2, 0, "x", ("k",)),
    )
    assert is_cycle(deaths, "a") is True
    assert is_cycle((Death("b", "rejected", 1, 0, "x", ("k",)), *deaths[1:]), "a") is False
    assert is_cycle((), "a") is False


def test_dead_letter_function_replaces_a_client_x_death_header() -> None:
    msg = Message(
        b"x", Properties(headers={"x-death": [{"queue": "q", "reason": "rejected", "count": 9}]}), "e", "k"
    )
    new, _ = dead_letter(msg, "q", DeadLetterReason.REJECTED, 1_700_000_000_000, dlx="d", dlrk=None)
    assert [(e["queue"], e["count"]) for e in new.headers["x-death"]] == [("q", 1)]
    assert new.deaths == (Death("q", "rejected", 1, 1_700_000_000_000, "e", ("k",)),)
    assert msg.deaths == ()
