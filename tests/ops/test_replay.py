"""Dead-letter replay on the embedded broker and a real RabbitMQ (classic and quorum): messages go
back where they died with provenance headers, refusals keep messages in the DLQ, nothing is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mqstudio.backends.base import Backend, BrokerMessage, OutgoingMessage, UnreachableError
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.ops.journal import ItemState, JobStatus, Journal
from mqstudio.ops.provenance import (
    H_COUNT,
    H_DEATH,
    H_FROM,
    H_JOB,
    death_of,
    item_key,
    origin_of,
    replay_headers,
)
from mqstudio.ops.replay import (
    ReplayJob,
    Target,
    TokenBucket,
    build_copy,
    parse_filter,
    parse_target,
    plan_replay,
    selection_fingerprint,
)
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.jobs import JobRunner, JobState
from tests.fixtures.rabbitmq import RabbitMQService
from tests.ops.replay_helpers import SMALL, count, dead_letter, deploy, drain, eventually, ids_of


def settles(backend: Backend, queue: str, n: int) -> bool:
    """Requeues are asynchronous on quorum queues: wait until `queue` holds `n` ready messages."""
    eventually(lambda: count(backend, queue) == n, f"{n} messages ready in {queue!r}")
    return True


# -- pure planning ----------------------------------------------------------------------------------
def rabbit_dead(**headers: object) -> BrokerMessage:
    death = {
        "count": 1,
        "reason": "rejected",
        "queue": "work",
        "time": datetime(2024, 5, 1, tzinfo=UTC),
        "exchange": "orders",
        "routing-keys": ["job", "cc-key"],
    }
    older = {**death, "queue": "first", "exchange": "old", "routing-keys": ["old-key"]}
    base: dict[str, object] = {
        "x-death": [death, older],
        "x-first-death-queue": "first",
        "x-last-death-queue": "work",
        "tenant": "acme",
    }
    base.update(headers)
    return BrokerMessage(
        "dlq", b"x", exchange="dlx", routing_key="job", headers=base, properties={"message_id": "m1"}
    )


def test_origin_is_the_newest_x_death_entry_exchange_and_first_routing_key() -> None:
    origin = origin_of(rabbit_dead())
    assert origin is not None and (origin.target, origin.key) == ("orders", "job")


def test_kafka_origin_reads_spring_dlt_headers_with_binary_partition() -> None:
    record = BrokerMessage(
        "orders.DLT",
        b"x",
        headers={
            "kafka_dlt-original-topic": "orders",
            "kafka_dlt-original-partition": (2).to_bytes(4, "big").decode(),
        },
        partition=0,
        offset=7,
    )
    origin = origin_of(record)
    assert origin is not None and (origin.target, origin.partition) == ("orders", 2)
    assert item_key(record)[1] == "orders.DLT/0/7"


def test_copy_headers_drop_broker_death_bookkeeping_and_add_provenance() -> None:
    headers = replay_headers(rabbit_dead(**{H_COUNT: 2}), source="dlq", job_id="J")
    assert "x-death" not in headers
    assert not [h for h in headers if h.startswith(("x-first-death-", "x-last-death-"))]
    assert headers["tenant"] == "acme"
    assert headers[H_COUNT] == 3 and headers[H_FROM] == "dlq" and headers[H_JOB] == "J"
    assert headers[H_DEATH] == {
        "reason": "rejected",
        "queue": "work",
        "exchange": "orders",
        "routing-key": "job",
        "count": 1,
        "time": int(datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
    }


def test_a_planned_copy_carries_the_same_headers_as_replay_headers_computes_alone() -> None:
    # plan_one keeps the death and replay count it read; the copy reuses them (no second parse).
    kafka_dead = BrokerMessage(
        "orders.DLT",
        b"k",
        headers={"kafka_dlt-original-topic": "orders", "kafka_dlt-exception-message": "boom", H_COUNT: "1"},
        properties={"key": b"k1"},
        partition=0,
        offset=7,
    )
    for message, target in ((rabbit_dead(**{H_COUNT: 2}), None), (kafka_dead, None), (rabbit_dead(), "ex:k")):
        (item,) = plan_replay([message], message.source, parse_target(target) if target else None)
        assert item.ok, item.refused
        copy = build_copy(item, source=message.source, job_id="J")
        assert copy.headers == replay_headers(message, source=message.source, job_id="J")
        assert copy.headers[H_DEATH] == death_of(message).as_header()


def test_plan_refuses_self_target_missing_origin_and_the_loop_guard_with_reasons() -> None:
    no_origin = BrokerMessage("dlq", b"y", properties={"message_id": "m2"})
    looped = rabbit_dead(**{H_COUNT: 3})
    items = plan_replay([rabbit_dead(), no_origin, looped], "dlq", max_replays=3)
    assert [i.ok for i in items] == [True, False, False]
    assert "no origin" in items[1].refused
    assert "loop guard: already replayed 3 times" in items[2].refused
    (self_target,) = plan_replay([rabbit_dead()], "dlq", Target("", "dlq"))
    assert "dead-letter queue 'dlq' itself" in self_target.refused
    (picked,) = plan_replay([no_origin], "dlq", parse_target("audit:k"))
    assert picked.ok and picked.destination is not None
    assert (picked.destination.target, picked.destination.key) == ("audit", "k")


def test_filter_expressions_combine_clauses() -> None:
    keep = parse_filter("reason=rejected, header.tenant=acme and body~x")
    assert keep(rabbit_dead())
    assert not keep(rabbit_dead(tenant="other"))
    with pytest.raises(ValueError, match="unknown filter field"):
        parse_filter("colour=red")


def test_token_bucket_waits_for_the_deficit_on_a_virtual_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(10, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(11):
        bucket.take()
    assert now[0] == pytest.approx(1.0)  # 10/s: the first is free, ten more take one second


# -- on real brokers --------------------------------------------------------------------------------
@pytest.fixture(params=["embedded", "rabbitmq-classic", "rabbitmq-quorum"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "embedded":
        bt = EmbeddedBrokerThread(port=0)
        bt.start()
        embedded = EmbeddedBackend(bt)
        embedded.connect()
        deploy(embedded)
        yield embedded
        embedded.close()
        assert bt.stop(10.0)
        return
    service: RabbitMQService = request.getfixturevalue("rabbitmq_service")
    vhost: str = request.getfixturevalue("rabbitmq_vhost")
    rabbit = service.backend(vhost)
    rabbit.connect()
    try:
        deploy(rabbit, quorum=request.param.endswith("quorum"))
        yield rabbit
    finally:
        rabbit.close()


def test_replay_to_origin_puts_messages_back_with_provenance_and_empties_the_dlq(
    backend: Backend, tmp_path: Path
) -> None:
    ids = dead_letter(backend, 30)
    with Journal(tmp_path / "j.sqlite3") as journal:
        report = ReplayJob(backend, "dlq", journal=journal).run()
        assert journal.counts(report.job_id) == {ItemState.DONE.value: 30}
        assert journal.unfinished_jobs() == []
    assert report.replayed == 30 and report.ok
    assert count(backend, "dlq") == 0
    back = drain(backend, "work")
    assert ids_of(back) == sorted(ids)
    for message in back:
        assert "x-death" not in message.headers or message.headers["x-death"] == []
        assert message.headers[H_COUNT] == 1
        assert message.headers[H_FROM] == "dlq"
        assert message.headers[H_JOB] == report.job_id
        death = message.headers[H_DEATH]
        assert death["reason"] == "rejected" and death["queue"] == "work"
        assert death["exchange"] == "orders" and death["routing-key"] == "job"
        assert message.headers["tenant"] in ("acme", "other")  # other headers travel along


def test_dry_run_moves_nothing_and_reports_each_destination(backend: Backend) -> None:
    dead_letter(backend, 8)
    report = ReplayJob(backend, "dlq", dry_run=True).run()
    assert len(report.planned) == 8
    assert {p.destination for p in report.planned} == {"exchange 'orders' with routing key 'job'"}
    assert report.replayed == 0
    assert settles(backend, "dlq", 8) and count(backend, "work") == 0


def test_self_target_is_refused_and_the_messages_stay(backend: Backend) -> None:
    dead_letter(backend, 4)
    report = ReplayJob(backend, "dlq", Target("", "dlq")).run()
    assert report.replayed == 0 and len(report.refused) == 4
    assert all("itself" in r.detail for r in report.refused)
    assert settles(backend, "dlq", 4)


def test_loop_guard_refuses_a_message_replayed_max_replays_times(backend: Backend) -> None:
    dead_letter(backend, 1)
    for round_ in range(2):  # replay, die again, replay
        report = ReplayJob(backend, "dlq", max_replays=2).run()
        assert report.replayed == 1, round_
        (again,) = backend.consume_for_replay("work", 1)
        assert again.headers[H_COUNT] == round_ + 1
        backend.settle(again, ack=False, requeue=False)  # dies again → dlq
        eventually(lambda: count(backend, "dlq") == 1, "back in the DLQ")
    report = ReplayJob(backend, "dlq", max_replays=2).run()
    assert report.replayed == 0
    (refusal,) = report.refused
    assert "loop guard: already replayed 2 times (limit 2)" in refusal.detail
    assert settles(backend, "dlq", 1)


def test_a_full_target_rejects_some_which_stay_in_the_dlq_with_the_reason(backend: Backend) -> None:
    ids = dead_letter(backend, 12)
    report = ReplayJob(backend, "dlq", Target("", "small")).run()
    assert report.replayed == SMALL
    assert len(report.failed) == 12 - SMALL
    assert all("nack" in f.detail or "overflow" in f.detail for f in report.failed), report.failed
    assert count(backend, "small") == SMALL
    assert settles(backend, "dlq", 12 - SMALL)
    assert sorted(ids_of(drain(backend, "small")) + ids_of(drain(backend, "dlq"))) == sorted(ids)


def test_filter_replays_only_matching_messages(backend: Backend) -> None:
    dead_letter(backend, 10)
    report = ReplayJob(backend, "dlq", filter="header.tenant=acme").run()
    assert report.replayed == 5 and report.filtered == 5
    assert {m.headers["tenant"] for m in drain(backend, "work")} == {"acme"}
    assert {m.headers["tenant"] for m in drain(backend, "dlq")} == {"other"}


def test_cancel_midway_leaves_each_message_in_the_target_or_the_dlq(backend: Backend, tmp_path: Path) -> None:
    ids = dead_letter(backend, 60)
    with Journal(tmp_path / "j.sqlite3") as journal, JobRunner(1) as runner:
        replay = ReplayJob(backend, "dlq", journal=journal, batch_size=10, rate=200)

        def cancel_after_some(job: object, info: object) -> None:
            if replay.report.replayed >= 20:
                job_handle.cancel()

        job_handle = runner.submit(replay, title="replay", on_progress=cancel_after_some)
        assert job_handle.wait(60)
        assert job_handle.state is JobState.CANCELLED
        record = journal.job(replay.id)
        assert record is not None and record.state is JobStatus.CANCELLED
    assert 20 <= replay.report.replayed < 60
    eventually(lambda: count(backend, "work") + count(backend, "dlq") == 60, "every message accounted for")
    in_work, in_dlq = drain(backend, "work"), drain(backend, "dlq")
    assert len(in_work) == replay.report.replayed
    assert sorted(ids_of(in_work) + ids_of(in_dlq)) == sorted(ids)


def test_pause_holds_the_job_between_batches_until_resumed(backend: Backend) -> None:
    dead_letter(backend, 20)
    replay = ReplayJob(backend, "dlq", batch_size=5)
    replay.pause()
    reached = threading.Event()
    done: list[int] = []

    def run() -> None:
        reached.set()
        done.append(replay.run().replayed)

    if not isinstance(backend, EmbeddedBackend):
        pytest.skip("a pika backend is confined to one thread; pause is shown on the embedded one")
    thread = threading.Thread(target=run)
    thread.start()
    reached.wait(5)
    thread.join(0.3)
    assert thread.is_alive() and replay.report.replayed == 0
    replay.resume()
    thread.join(30)
    assert done == [20]


def test_missing_target_exchange_fails_each_message_and_keeps_it(backend: Backend) -> None:
    dead_letter(backend, 3)
    report = ReplayJob(backend, "dlq", Target("no-such-exchange", "k")).run()
    assert report.replayed == 0 and len(report.failed) == 3
    assert settles(backend, "dlq", 3)


def test_publish_result_for_unroutable_copy_keeps_the_message(backend: Backend) -> None:
    dead_letter(backend, 3)
    report = ReplayJob(backend, "dlq", Target("orders", "nobody-binds-this")).run()
    assert report.replayed == 0 and len(report.failed) == 3
    assert all("bound" in f.detail or "NO_ROUTE" in f.detail for f in report.failed), report.failed
    assert settles(backend, "dlq", 3)


def test_publish_many_reports_each_message_in_order(backend: Backend) -> None:
    many = getattr(backend, "publish_many", None)
    if many is None:
        pytest.skip("only RabbitMQ pipelines publishes")
    messages = [
        OutgoingMessage("orders", b"a", key="job"),
        OutgoingMessage("orders", b"b", key="nowhere"),
        *[OutgoingMessage("", b"s%d" % i, key="small") for i in range(SMALL + 2)],
    ]
    results = many(messages)
    assert [(r.confirmed, r.routed) for r in results[:2]] == [(True, True), (True, False)]
    assert [r.confirmed for r in results[2:]] == [True] * SMALL + [False, False]


def test_streamed_take_and_batched_settle_hold_and_release_like_consume_for_replay(backend: Backend) -> None:
    take, settle_many = getattr(backend, "take_for_replay", None), getattr(backend, "settle_many", None)
    if take is None or settle_many is None:
        pytest.skip("only RabbitMQ streams replay takes")
    dead_letter(backend, 30)
    first = take("dlq", 10)
    assert len(first) == 10 and settles(backend, "dlq", 20)
    rest = take("dlq", 100)
    assert len(rest) == 20 and take("dlq", 5) == []
    settle_many(first, ack=True)
    settle_many(rest, ack=False, requeue=True)
    assert settles(backend, "dlq", 20)
    held = take("dlq", 5)
    backend.close()  # the broker puts them back; their handles are refused afterwards
    with pytest.raises(UnreachableError, match="put the messages back"):
        settle_many(held, ack=True)
    assert settles(backend, "dlq", 20)


def test_only_replays_the_chosen_fingerprints_and_keeps_the_others(backend: Backend, tmp_path: Path) -> None:
    ids = dead_letter(backend, 5)
    chosen = [m for m in backend.peek("dlq", 10) if m.properties.get("message_id") in ids[1:3]]
    assert len(chosen) == 2
    with Journal(tmp_path / "j.sqlite3") as journal:
        only = [selection_fingerprint(m) for m in chosen]
        report = ReplayJob(backend, "dlq", journal=journal, only=only).run()
        assert journal.counts(report.job_id) == {ItemState.DONE.value: 2}
    assert report.replayed == 2 and report.ok and report.total == 2
    assert ids_of(drain(backend, "work")) == sorted(ids[1:3])
    assert settles(backend, "dlq", 3)
    assert ids_of(drain(backend, "dlq")) == sorted([ids[0], *ids[3:]])


def test_selection_fingerprint_ignores_the_quorum_delivery_count_only() -> None:
    from mqstudio.ops.deadletters import fingerprint

    plain = rabbit_dead()
    assert selection_fingerprint(plain) == fingerprint(plain)
    once, twice = rabbit_dead(**{"x-delivery-count": 0}), rabbit_dead(**{"x-delivery-count": 1})
    assert selection_fingerprint(once) == selection_fingerprint(twice) == fingerprint(plain)
    assert selection_fingerprint(rabbit_dead(tenant="other")) != fingerprint(plain)
