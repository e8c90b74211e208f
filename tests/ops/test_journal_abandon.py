"""Abandoning a journaled replay: the journal forgets the job, no message is touched, and what the
job left behind (in flight, confirmed but not removed, done, refused) is reported per message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqstudio.ops.journal import ItemState, JobStatus, Journal, JournalError, active_elsewhere


def test_abandoned_jobs_are_no_longer_unfinished_and_report_what_they_left(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_job("a", source="dlq", target="orders:job")
        rows = journal.add_items(
            "a", [("id:1", ""), ("id:2", ""), ("id:3", ""), ("id:4", ""), ("id:5", "")], ItemState.IN_FLIGHT
        )
        journal.set_items(
            [
                (rows[1], ItemState.PUBLISHED, ""),
                (rows[2], ItemState.DONE, ""),
                (rows[3], ItemState.DONE, ""),
                (rows[4], ItemState.FAILED, "nack"),
            ]
        )
        journal.start_job("b", source="dlq2", target="")
        summary = journal.abandon_job("a")
        assert (summary.in_flight, summary.published, summary.done, summary.failed) == (1, 1, 2, 1)
        assert summary.job.state is JobStatus.RUNNING  # what it was before
        record = journal.job("a")
        assert record is not None and record.state is JobStatus.ABANDONED
        assert [j.id for j in journal.unfinished_jobs()] == ["b"]
        text = "\n".join(summary.describe())
        assert "still in the DLQ, in the target, or in both (never in neither)" in text
        assert "replaying them again makes duplicates" in text
        # History is kept: the attempts are still there, unchanged.
        assert journal.counts("a") == {"in_flight": 1, "published": 1, "done": 2, "failed": 1}


def test_the_last_attempt_at_a_message_decides_its_state(tmp_path: Path) -> None:
    """A resumed run settled what the crashed run had left in flight: it is not counted in flight."""
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_job("a", source="dlq", target="")
        (first,) = journal.add_items("a", [("id:1", "")], ItemState.IN_FLIGHT)  # the crashed run
        (again,) = journal.add_items("a", [("id:1", "")], ItemState.IN_FLIGHT)  # the resumed run
        journal.set_items([(again, ItemState.DONE, "")])
        journal.finish_job("a", JobStatus.INTERRUPTED)
        summary = journal.abandon_job("a")
        assert (summary.in_flight, summary.done) == (0, 1)
        assert first != again


def test_abandoning_an_unknown_or_finished_job_is_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_job("done", source="dlq", target="")
        journal.finish_job("done", JobStatus.DONE)
        with pytest.raises(JournalError, match="no replay job 'nope'"):
            journal.abandon_job("nope")
        with pytest.raises(JournalError, match="already done"):
            journal.abandon_job("done")
        journal.start_job("x", source="dlq", target="")
        journal.abandon_job("x")
        with pytest.raises(JournalError, match="already abandoned"):
            journal.abandon_job("x")


def test_a_kafka_position_confirmed_by_an_abandoned_job_is_still_known_as_replayed(tmp_path: Path) -> None:
    """Later jobs acknowledge such a record without sending a second copy (abandon keeps the rows)."""
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_job("k", source="t.DLT", target="")
        rows = journal.add_items("k", [("id:1", "t.DLT/0/1"), ("id:2", "t.DLT/0/2")], ItemState.IN_FLIGHT)
        journal.set_items([(rows[0], ItemState.PUBLISHED, "")])
        journal.abandon_job("k")
        assert journal.published_positions(["t.DLT/0/1", "t.DLT/0/2"]) == {"t.DLT/0/1"}


def test_a_job_running_in_another_live_process_is_neither_offered_nor_abandoned(tmp_path: Path) -> None:
    """The GUI and the command line share the journal: a job another process is running right now is
    not "unfinished" (offering it would start a second run), until that process is gone."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "j.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from mqstudio.ops.journal import Journal
            Journal({str(path)!r}).start_job("busy", source="dlq", target="")
            print("started", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "started"
        with Journal(path) as journal:
            record = journal.job("busy")
            assert record is not None and record.owner_pid == child.pid and active_elsewhere(record)
            assert journal.unfinished_jobs() == []
            assert [j.id for j in journal.unfinished_jobs(include_active=True)] == ["busy"]
            with pytest.raises(JournalError, match=f"running now in process {child.pid}"):
                journal.abandon_job("busy")
            # A resume offered before the other process took the job is refused when it starts
            # (the claim is made in the same transaction), so the job never runs twice at once.
            with pytest.raises(JournalError, match=f"running now in process {child.pid}"):
                journal.start_job("busy", source="dlq", target="")
    finally:
        child.kill()
        child.wait(10)
    with Journal(path) as journal:  # its process is gone: an ordinary unfinished job again
        assert [j.id for j in journal.unfinished_jobs()] == ["busy"]
        assert journal.abandon_job("busy").job.id == "busy"
        with pytest.raises(JournalError, match="is abandoned: nothing to resume"):
            journal.start_job("busy", source="dlq", target="")


def test_a_journal_written_before_owners_were_recorded_still_opens(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, source TEXT NOT NULL, target TEXT NOT NULL, "
        "backend TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL, "
        "state TEXT NOT NULL, options TEXT NOT NULL DEFAULT '{}', total INTEGER);"
        "INSERT INTO jobs VALUES ('old', 'dlq', '', '', 1, 1, 'running', '{}', NULL);"
    )
    db.commit()
    db.close()
    with Journal(path) as journal:
        (record,) = journal.unfinished_jobs()
        assert record.id == "old" and record.owner == "" and not active_elsewhere(record)
