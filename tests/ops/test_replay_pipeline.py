"""The pipelined replay on a real RabbitMQ: what it journals, what it reports, and what a pause gives
back (the copies in flight are settled and what was taken ahead returns to the DLQ)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mqstudio.backends.rabbitmq import RabbitMQBackend
from mqstudio.ops.journal import ItemState, Journal
from mqstudio.ops.replay import PIPELINE_DEPTH, ReplayJob, Target
from tests.fixtures.rabbitmq import RabbitMQService
from tests.ops.replay_helpers import count, dead_letter, deploy, drain, eventually, ids_of


def test_a_pipelined_job_journals_every_outcome_and_reports_full_progress(
    rabbitmq_backend: RabbitMQBackend, tmp_path: Path
) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    ids = dead_letter(backend, 450)
    reports: list[tuple[int, int]] = []
    with Journal(tmp_path / "j.sqlite3") as journal:
        job = ReplayJob(backend, "dlq", journal=journal, batch_size=100)
        assert job._pipelined and PIPELINE_DEPTH >= 2
        report = job.run(progress=lambda done, total, _what: reports.append((done, total)))
        assert journal.counts(report.job_id) == {ItemState.DONE.value: 450}
    assert report.replayed == 450 and report.ok
    assert reports[-1] == (450, 450)
    assert ids_of(drain(backend, "work")) == sorted(ids)


def test_a_pipelined_job_keeps_what_the_target_refuses_and_journals_why(
    rabbitmq_backend: RabbitMQBackend, tmp_path: Path
) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    ids = dead_letter(backend, 120)
    with Journal(tmp_path / "j.sqlite3") as journal:
        report = ReplayJob(backend, "dlq", Target("orders", "small"), journal=journal, batch_size=40).run()
        counts = journal.counts(report.job_id)
        details = {d for _k, _p, state, d in journal.items(report.job_id) if state == ItemState.FAILED.value}
    assert report.replayed == 5 and len(report.failed) == 115  # queue small takes 5 (reject-publish)
    assert counts == {ItemState.DONE.value: 5, ItemState.FAILED.value: 115}
    assert details == {"RabbitMQ nacked the message"}
    eventually(lambda: count(backend, "dlq") == 115, "the refused ones back in the DLQ")
    assert sorted(ids_of(drain(backend, "small")) + ids_of(drain(backend, "dlq"))) == sorted(ids)


def test_pause_settles_what_is_in_flight_and_gives_back_what_was_taken_ahead(
    rabbitmq_service: RabbitMQService, rabbitmq_backend: RabbitMQBackend
) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    dead_letter(backend, 600)
    observer = rabbitmq_service.backend(backend.vhost)
    observer.connect()
    job = ReplayJob(backend, "dlq", batch_size=100)
    paused: dict[str, int] = {}
    done = threading.Event()

    def look() -> None:  # another thread, another connection: the job holds nothing while paused
        try:
            eventually(
                lambda: count(observer, "dlq") == 600 - job.report.replayed,
                "everything not replayed ready in the DLQ during the pause",
            )
            paused["replayed"] = job.report.replayed
        finally:
            job.resume()
            done.set()

    def progress(_done: int, _total: int, _what: str) -> None:
        if not paused and not job.paused and job.report.replayed:
            job.pause()
            paused["at"] = job.report.replayed
            threading.Thread(target=look).start()

    try:
        report = job.run(progress=progress)
        assert done.wait(30)
    finally:
        observer.close()
    assert 0 < paused["at"] <= paused["replayed"] < 600
    assert report.replayed == 600 and count(backend, "dlq") == 0


def test_a_publish_group_that_fails_to_start_gives_its_sources_back_on_a_live_connection(
    rabbitmq_backend: RabbitMQBackend, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """`publish_start` raising (not a lost link) must not strand the batch's sources unacked on the
    still-open replay channel: they are nacked back to the DLQ with everything else the job held."""
    from mqstudio.backends.base import BackendError

    backend = rabbitmq_backend
    deploy(backend)
    ids = dead_letter(backend, 300)
    original = backend.publish_start
    calls = {"n": 0}

    def failing_start(copies):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise BackendError("injected: the publish group could not be started")
        return original(copies)

    monkeypatch.setattr(backend, "publish_start", failing_start)
    job = ReplayJob(backend, "dlq", batch_size=100)
    with pytest.raises(BackendError, match="injected"):
        job.run()
    assert calls["n"] == 2
    monkeypatch.undo()
    # Nothing is lost and nothing stays taken on the open channel: every message is ready in the
    # target or back in the DLQ (a copy of an unsettled batch may be in both: a duplicate, reported).
    eventually(lambda: count(backend, "dlq") + count(backend, "work") >= len(ids), "every message settled")
    assert set(ids_of(drain(backend, "work"))) | set(ids_of(drain(backend, "dlq"))) == set(ids)
