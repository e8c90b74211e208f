"""trace(): one message followed through a design on a fresh engine, hop by hop."""

from __future__ import annotations

import pytest

from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topology
from mqstudio.ops.trace import HopKind, Outcome, TraceError, trace


def _ladder() -> tuple[Topology, dict[str, str]]:
    """work exchange → work queue (DLX retry) → retry exchange → wait queue (TTL 5000, DLX work)."""
    t = Topology()
    work, retry = Exchange("work"), Exchange("retry")
    work_q = Queue("work.q", arguments={"x-dead-letter-exchange": "retry"})
    wait_q = Queue("wait", arguments={"x-message-ttl": 5000, "x-dead-letter-exchange": "work"})
    for node in (work, retry, work_q, wait_q):
        t.add_node(node)
    b_work, b_wait = Binding(work.id, work_q.id, "job"), Binding(retry.id, wait_q.id, "job")
    t.add_binding(b_work)
    t.add_binding(b_wait)
    ids = {"work": work.id, "retry": retry.id, "work.q": work_q.id, "wait": wait_q.id}
    return t, ids | {"b_work": b_work.id, "b_wait": b_wait.id}


def _counts(x_death: tuple[dict[str, object], ...]) -> list[tuple[object, object, object]]:
    return [(d["queue"], d["reason"], d["count"]) for d in x_death]


def test_rejected_message_climbs_the_retry_ladder_back_to_work() -> None:
    t, ids = _ladder()
    result = trace(t, "/", routing_key="job", outcome=Outcome.REJECTED, exchange_id=ids["work"])
    assert result.kinds == [
        HopKind.ROUTED,
        HopKind.DEAD_LETTERED,
        HopKind.ROUTED,
        HopKind.DEAD_LETTERED,
        HopKind.ROUTED,
        HopKind.DELIVERED,
    ]
    hops = result.hops
    assert hops[0].object_ids == (ids["work"], ids["b_work"], ids["work.q"])
    assert (hops[1].object_ids, hops[1].reason) == ((ids["work.q"], ids["retry"]), "rejected")
    assert hops[2].object_ids == (ids["retry"], ids["b_wait"], ids["wait"])
    assert (hops[3].object_ids, hops[3].reason) == ((ids["wait"], ids["work"]), "expired")
    assert hops[4].object_ids == (ids["work"], ids["b_work"], ids["work.q"])
    assert hops[0].x_death == ()
    assert _counts(hops[1].x_death) == [("work.q", "rejected", 1)]
    assert _counts(hops[5].x_death) == [("wait", "expired", 1), ("work.q", "rejected", 1)]
    assert not result.truncated


def test_path_lists_nodes_and_bindings_in_order_of_first_touch() -> None:
    t, ids = _ladder()
    result = trace(t, routing_key="job", outcome=Outcome.REJECTED, exchange_id=ids["work"])
    assert result.path == [
        ids["work"],
        ids["b_work"],
        ids["work.q"],
        ids["retry"],
        ids["b_wait"],
        ids["wait"],
    ]


def test_trace_is_deterministic() -> None:
    t, ids = _ladder()
    first = trace(t, routing_key="job", outcome=Outcome.REJECTED, exchange_id=ids["work"])
    second = trace(t, routing_key="job", outcome=Outcome.REJECTED, exchange_id=ids["work"])
    assert first == second


def test_unroutable_key_is_reported_as_unroutable() -> None:
    t, ids = _ladder()
    result = trace(t, routing_key="nobody-binds-this", exchange_id=ids["work"])
    assert result.kinds == [HopKind.UNROUTABLE]
    assert result.hops[0].object_ids == (ids["work"],)


def test_unroutable_message_goes_to_the_alternate_exchange() -> None:
    t = Topology()
    main = Exchange("main", arguments={"alternate-exchange": "unrouted"})
    ae = Exchange("unrouted", ExchangeType.FANOUT)
    lost = Queue("lost")
    for node in (main, ae, lost):
        t.add_node(node)
    t.add_binding(Binding(ae.id, lost.id))
    result = trace(t, routing_key="x", exchange_id=main.id)
    assert result.kinds == [HopKind.ALTERNATE_EXCHANGE, HopKind.ROUTED, HopKind.DELIVERED]
    assert result.hops[0].object_ids == (main.id, ae.id)
    assert result.hops[-1].object_ids == (lost.id,)


def test_expired_message_without_dlx_is_dropped() -> None:
    t = Topology()
    q = Queue("short", arguments={"x-message-ttl": 100})
    t.add_node(q)
    result = trace(t, routing_key="short", outcome=Outcome.EXPIRED, exchange_id="")
    assert result.kinds == [HopKind.ROUTED, HopKind.DROPPED]
    assert result.hops[1].reason == "expired"


def test_per_message_ttl_expires_a_message_in_a_queue_without_ttl() -> None:
    t, ids = _ladder()
    result = trace(t, routing_key="job", ttl_ms=250, outcome=Outcome.EXPIRED, exchange_id=ids["work"])
    assert result.hops[1].kind is HopKind.DEAD_LETTERED
    assert result.hops[1].reason == "expired"
    assert result.hops[1].x_death[0]["original-expiration"] == "250"


def test_expired_outcome_in_a_queue_that_never_expires_says_so() -> None:
    t, ids = _ladder()
    result = trace(t, routing_key="job", outcome=Outcome.EXPIRED, exchange_id=ids["work"])
    assert result.kinds == [HopKind.ROUTED, HopKind.DELIVERED]
    assert any("never expires" in note for note in result.notes)


@pytest.mark.parametrize(
    ("overflow", "kinds", "reason"),
    [
        ("reject-publish", [HopKind.ROUTED, HopKind.DROPPED], "overflow"),
        ("reject-publish-dlx", [HopKind.ROUTED, HopKind.DEAD_LETTERED, HopKind.ROUTED], "maxlen"),
        ("drop-head", [HopKind.ROUTED, HopKind.DEAD_LETTERED, HopKind.ROUTED], "maxlen"),
    ],
)
def test_overflow_follows_the_queues_overflow_mode(overflow: str, kinds: list[HopKind], reason: str) -> None:
    t = Topology()
    dlx = Exchange("dlx", ExchangeType.FANOUT)
    full = Queue(
        "full", arguments={"x-max-length": 2, "x-overflow": overflow, "x-dead-letter-exchange": "dlx"}
    )
    parked = Queue("parked")
    for node in (dlx, full, parked):
        t.add_node(node)
    t.add_binding(Binding(dlx.id, parked.id))
    result = trace(t, routing_key="full", outcome=Outcome.OVERFLOW, exchange_id="")
    assert result.kinds[: len(kinds)] == kinds
    assert result.hops[1].reason == reason


def test_overflow_on_a_queue_without_limit_is_reported() -> None:
    t, ids = _ladder()
    result = trace(t, routing_key="job", outcome=Outcome.OVERFLOW, exchange_id=ids["work"])
    assert any("no length limit" in note for note in result.notes)


def test_fully_automatic_dead_letter_cycle_is_dropped() -> None:
    t = Topology()
    a = Queue(
        "a", arguments={"x-message-ttl": 10, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"}
    )
    b = Queue(
        "b", arguments={"x-message-ttl": 10, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a"}
    )
    t.add_node(a)
    t.add_node(b)
    result = trace(t, routing_key="a", outcome=Outcome.EXPIRED, exchange_id="")
    assert result.hops[-1].kind is HopKind.DROPPED
    assert result.hops[-1].reason == "cycle"


def test_max_hops_truncates() -> None:
    t, ids = _ladder()
    result = trace(t, routing_key="job", outcome=Outcome.REJECTED, exchange_id=ids["work"], max_hops=3)
    assert len(result.hops) == 3
    assert result.truncated


def test_unknown_exchange_is_refused() -> None:
    t, _ = _ladder()
    with pytest.raises(TraceError):
        trace(t, routing_key="job", exchange_id="ex-nope")


def test_headers_exchange_routes_by_headers() -> None:
    t = Topology()
    h = Exchange("h", ExchangeType.HEADERS)
    pdf, other = Queue("pdf"), Queue("other")
    for node in (h, pdf, other):
        t.add_node(node)
    bind = Binding(h.id, pdf.id, "", {"x-match": "all", "format": "pdf"})
    t.add_binding(bind)
    t.add_binding(Binding(h.id, other.id, "", {"x-match": "all", "format": "zip"}))
    result = trace(t, headers={"format": "pdf"}, exchange_id=h.id)
    assert result.hops[0].object_ids == (h.id, bind.id, pdf.id)
    assert result.kinds == [HopKind.ROUTED, HopKind.DELIVERED]
