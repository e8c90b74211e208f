"""Publisher-confirm safety of the RabbitMQ pipeline (issue #7, "never lose a message"): a
``basic.return`` is credited to the copy that was returned, not to an older look-alike, and a group
that cannot be published whole never puts the confirm numbering out of step with the broker's."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from pika.spec import BasicProperties

import mqstudio.backends.rabbitmq as rabbitmq_module
from mqstudio.backends.base import OutgoingMessage, PublishResult, UnreachableError
from mqstudio.backends.rabbitmq import RabbitMQBackend, _Confirms
from mqstudio.backends.rabbitmq_messages import Confirms, PublishGroup, properties_form
from mqstudio.ops.replay import ReplayJob
from tests.ops.replay_helpers import count, dead_letter, deploy, drain, ids_of

NO_ROUTE = SimpleNamespace(exchange="hx", routing_key="k", reply_code=312, reply_text="NO_ROUTE")


def _headers_design(backend: RabbitMQBackend) -> Any:
    """Headers exchange ``hx`` → durable queue ``q`` for tenant=a only; a durable ``dlq``."""
    ch = backend.amqp.channel("main")
    ch.exchange_declare("hx", "headers", durable=True)
    ch.queue_declare("q", durable=True)
    ch.queue_declare("dlq", durable=True)
    ch.queue_bind("q", "hx", arguments={"x-match": "all", "tenant": "a"})
    return ch


def _tenant(i: int) -> str:
    return "a" if i % 2 == 0 else "b"


# -- returns are credited to the copy that was returned -----------------------------------------------
@pytest.mark.timeout(120)
def test_replay_to_a_headers_exchange_loses_none_of_the_unroutable_copies(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    """Same body and key, half routable: RabbitMQ confirms an unroutable copy at once and a persistent
    routed one after the fsync, so confirms come out of publish order. Every message must end up in
    ``q`` (its copy routed) or still in the DLQ (its copy returned), never neither."""
    backend = rabbitmq_backend
    _headers_design(backend)
    ids = [f"m{i}" for i in range(40)]
    seed = [
        OutgoingMessage(
            "",
            b"same body",
            key="dlq",
            headers={"tenant": _tenant(i)},
            properties={"delivery_mode": 2, "message_id": mid},
        )
        for i, mid in enumerate(ids)
    ]
    assert all(r.confirmed and r.routed for r in backend.publish_many(seed))

    report = ReplayJob(backend, "dlq", "hx:k").run()

    routed, kept = drain(backend, "q"), drain(backend, "dlq")
    routable = sorted(mid for i, mid in enumerate(ids) if _tenant(i) == "a")
    unroutable = sorted(set(ids) - set(routable))
    assert set(ids) - set(ids_of(routed)) - set(ids_of(kept)) == set(), "in neither queue: lost"
    assert ids_of(kept) == unroutable, "an unroutable copy's source was acked"
    assert ids_of(routed) == routable
    assert report.replayed == 20 and len(report.failed) == 20


@pytest.mark.timeout(120)
def test_publish_many_reports_each_return_on_the_copy_that_was_returned(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    """Copies differ only in their headers (nested tables, arrays, bytes, decimals, timestamps)."""
    backend = rabbitmq_backend
    _headers_design(backend)
    stamp = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)  # sub-second: not on the wire
    messages = [
        OutgoingMessage(
            "hx",
            b"same body",
            key="k",
            headers={
                "tenant": _tenant(i),
                "meta": {"n": [1, b"\xff\x00", Decimal("1.50"), stamp, {"deep": "x"}], "none": None},
            },
            properties={"delivery_mode": 2, "timestamp": 1_700_000_000},
            mandatory=True,
        )
        for i in range(200)
    ]
    results = backend.publish_many(messages)
    assert [r.routed for r in results] == [_tenant(i) == "a" for i in range(200)]
    assert all(r.confirmed for r in results)
    assert all("NO_ROUTE" in r.detail for r in results[1::2])
    assert count(backend, "q") == 100


def test_a_return_goes_to_the_unconfirmed_copy_with_the_same_headers_not_the_oldest() -> None:
    confirms = _Confirms(1)
    group = PublishGroup(3)
    sent = [BasicProperties(headers={"tenant": t}, delivery_mode=2) for t in ("a", "b", "a")]
    for index, props in enumerate(sent):
        confirms.sent(group, index, ("hx", "k", b"same"), props)
    # what pika hands the return callback: the properties decoded from the wire
    on_wire = BasicProperties().decode(b"".join(sent[1].encode()))
    confirms.on_return(None, NO_ROUTE, on_wire, b"same")
    confirms.confirmed(3, True, True)
    assert [r.routed for r in group.final()] == [True, False, True]


def test_a_return_with_float_headers_is_exact_and_goes_to_the_copy_with_the_same_floats() -> None:
    """Floats now survive pika's decode/encode round trip (`rabbitmq_pika`), so copies that differ
    only in a float header are told apart instead of all being kept back as look-alikes."""
    confirms = _Confirms(1)
    group = PublishGroup(3)
    sent = [BasicProperties(headers={"ratio": r, "deep": [{"x": r / 3}]}) for r in (1.5, 1.25, 1.0)]
    for index, props in enumerate(sent):
        confirms.sent(group, index, ("hx", "k", b"same"), props)
    assert all(confirms.form(props)[1] for props in sent)  # exact
    on_wire = BasicProperties().decode(b"".join(sent[1].encode()))
    confirms.on_return(None, NO_ROUTE, on_wire, b"same")
    confirms.confirmed(3, True, True)
    assert [r.routed for r in group.final()] == [True, False, True]
    assert "could not be told apart" not in group.final()[1].detail


def test_identical_copies_are_interchangeable_and_only_one_is_counted_returned() -> None:
    confirms = _Confirms(1)
    group = PublishGroup(2)
    for index in range(2):
        confirms.sent(group, index, ("hx", "k", b"same"), BasicProperties(headers={"tenant": "b"}))
    confirms.on_return(None, NO_ROUTE, BasicProperties(headers={"tenant": "b"}), b"same")
    confirms.confirmed(2, True, True)
    assert [r.routed for r in group.final()] == [False, True]


def test_a_return_that_cannot_be_told_apart_exactly_keeps_every_look_alike_unrouted() -> None:
    class Inexact(Confirms):
        def form(self, props: Any) -> tuple[Any, bool]:
            return super().form(props)[0], False  # e.g. a value pika does not decode faithfully

    confirms = Inexact(1)
    group = PublishGroup(4)
    confirms.sent(group, 0, ("hx", "k", b"same"), SimpleNamespace(headers={"tenant": "a"}))
    confirms.sent(group, 1, ("hx", "k", b"same"), SimpleNamespace(headers={"tenant": "b"}))
    confirms.sent(group, 2, ("hx", "k", b"other"), SimpleNamespace(headers={"tenant": "b"}))
    confirms.sent(group, 3, ("hx", "k", b"same"), SimpleNamespace(headers={"tenant": "c"}))
    confirms.on_return(None, NO_ROUTE, SimpleNamespace(headers={"tenant": "b"}), b"same")
    confirms.confirmed(4, True, True)
    routed = [r.routed for r in group.final()]
    assert routed == [False, False, True, False]  # every same exchange/key/body copy stays unrouted
    assert "could not be told apart" in group.final()[0].detail


def test_a_return_whose_properties_match_no_copy_keeps_every_look_alike_unrouted() -> None:
    confirms = Confirms(1)
    group = PublishGroup(2)
    for index, tenant in enumerate(("a", "b")):
        confirms.sent(group, index, ("hx", "k", b"same"), SimpleNamespace(headers={"tenant": tenant}))
    confirms.on_return(None, NO_ROUTE, SimpleNamespace(headers={"tenant": object()}), b"same")
    confirms.confirmed(2, True, True)
    assert [r.routed for r in group.final()] == [False, False]


# -- a group that cannot be published whole -------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_key_over_255_octets_is_not_published_and_the_numbering_stays_in_step(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    backend = rabbitmq_backend
    backend.amqp.channel("main").queue_declare("q", durable=True)
    group = [
        OutgoingMessage("", b"1", key="q"),
        OutgoingMessage("", b"2", key="k" * 300),
        OutgoingMessage("x" * 256, b"3", key="q"),
        OutgoingMessage("", b"4", key="q", headers={"tags": {"a", "b"}}),  # AMQP has no type for a set
        OutgoingMessage("", b"5", key="q"),
        # RabbitMQ closes the whole connection (541) on a NaN or infinite double: refused here
        OutgoingMessage("", b"6", key="q", headers={"ratio": float("nan")}),
        OutgoingMessage("", b"7", key="q", headers={"nested": {"limit": [float("-inf")]}}),
    ]
    first = backend.publish_many(group)
    assert first[0] == PublishResult(True, True) and first[4] == PublishResult(True, True)
    assert not first[5].confirmed and "not published" in first[5].detail
    assert not first[6].confirmed and "not published" in first[6].detail
    assert not first[1].confirmed and "not published" in first[1].detail
    assert "routing key is 300 octets" in first[1].detail and "at most 255" in first[1].detail
    assert not first[2].confirmed and "exchange name is 256 octets" in first[2].detail
    assert not first[3].confirmed and "not published" in first[3].detail and "type set" in first[3].detail
    for _ in range(3):  # following groups on the same channel confirm normally (no hang)
        assert (
            backend.publish_many([OutgoingMessage("", b"z", key="q")] * 50)
            == [PublishResult(True, True)] * 50
        )
    assert count(backend, "q") == 2 + 150


@pytest.mark.timeout(60)
def test_a_group_that_fails_after_numbering_starts_a_new_channel_numbered_from_one(
    rabbitmq_backend: RabbitMQBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = rabbitmq_backend
    backend.amqp.channel("main").queue_declare("q", durable=True)
    assert backend.publish_many([OutgoingMessage("", b"a", key="q")] * 3) == [PublishResult(True, True)] * 3
    old_channel = backend.amqp.channel_id("pipeline")

    def broken(*_args: Any) -> None:
        raise RuntimeError("write failed")

    monkeypatch.setattr(rabbitmq_module, "_write", broken)
    with pytest.raises(RuntimeError, match="write failed"):
        backend.publish_many([OutgoingMessage("", b"b", key="q")] * 3)
    monkeypatch.undo()
    assert backend._pipeline is None and backend.amqp.channel_id("pipeline") is None

    assert backend.publish_many([OutgoingMessage("", b"c", key="q")] * 3) == [PublishResult(True, True)] * 3
    assert backend.amqp.channel_id("pipeline") != old_channel
    assert backend._pipeline is not None and backend._pipeline.seq == 3  # numbered from 1 again
    assert count(backend, "q") == 6


@pytest.mark.timeout(60)
def test_publish_wait_gives_up_when_no_confirm_comes_and_never_reports_it_confirmed(
    rabbitmq_backend: RabbitMQBackend,
) -> None:
    backend = rabbitmq_backend
    backend.amqp.channel("main").queue_declare("q", durable=True)
    backend.publish_many([OutgoingMessage("", b"a", key="q")])
    state = backend._pipeline
    assert state is not None
    ghost = PublishGroup(1)
    state.sent(ghost, 0, ("", "q", b"never written"))  # our numbering now runs one ahead
    waiting = backend.publish_start([OutgoingMessage("", b"b", key="q")])
    results = backend.publish_wait(waiting, idle=0.5)
    assert not results[0].confirmed and not results[0].routed
    assert "no confirm from RabbitMQ" in results[0].detail
    assert backend._pipeline is None  # the out-of-step channel is given up
    assert backend.publish_many([OutgoingMessage("", b"c", key="q")]) == [PublishResult(True, True)]


@pytest.mark.timeout(60)
def test_publish_wait_stops_waiting_when_cancelled(rabbitmq_backend: RabbitMQBackend) -> None:
    backend = rabbitmq_backend
    backend.amqp.channel("main").queue_declare("q", durable=True)
    backend.publish_many([OutgoingMessage("", b"a", key="q")])
    assert backend._pipeline is not None
    backend._pipeline.sent(PublishGroup(1), 0, ("", "q", b"never written"))
    waiting = backend.publish_start([OutgoingMessage("", b"b", key="q")])
    results = backend.publish_wait(waiting, cancel=SimpleNamespace(cancelled=True))
    assert not results[0].confirmed and "stopped waiting" in results[0].detail


# -- the rate-limited path -------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_publish_does_not_reconnect_silently_inside_a_replay_round(rabbitmq_backend: RabbitMQBackend) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    dead_letter(backend, 10)
    held = backend.take_for_replay("dlq", 5)
    assert len(held) == 5
    backend.amqp.close()  # the link is gone: RabbitMQ puts back what the round held
    with pytest.raises(UnreachableError, match="during the replay"):
        backend.publish(OutgoingMessage("orders", b"copy", key="job"))
    backend.end_take()
    assert backend.publish(OutgoingMessage("orders", b"copy", key="job")) == PublishResult(True, True)


def test_properties_form_tells_value_kinds_apart_and_ignores_how_a_client_decoded_text() -> None:
    def form(headers: dict[str, Any], **props: Any) -> Any:
        return properties_form(SimpleNamespace(headers=headers, **props))

    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert form({"a": "x"}) == form({"a": b"x"})  # a long string may be decoded as str or bytes
    assert form({"a": {"b": [naive]}}) == form({"a": {"b": [naive.replace(tzinfo=UTC)]}})
    assert form({"a": Decimal("1.50")}) == form({"a": Decimal("1.5")})
    assert form({"a": 1, "b": 2}) == form({"b": 2, "a": 1})
    assert len({form({"a": v}) for v in (1, True, 1.0, "1", Decimal(1), None)}) == 6
    assert form({"a": 0.1}) != form({"a": 0.1 + 2**-56}) and form({"a": 0.1}) == form({"a": 0.1})
    assert form({}, message_id="m1") != form({}, message_id="m2")
    assert properties_form(None) == ()
