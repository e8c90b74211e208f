"""The replay journal: durable settings, job life cycle, what a resume needs to know."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqstudio.ops.journal import ItemState, JobStatus, Journal, default_journal_path


def test_the_file_uses_wal_with_full_sync_and_lives_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_journal_path() == tmp_path / "data" / "mqstudio" / "replay-journal.sqlite3"
    with Journal() as journal:
        assert journal.path.exists()
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_jobs_not_done_are_unfinished_and_a_resume_marks_them_running(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_job("a", source="dlq", target="", options={"rate": 5.0}, total=10)
        journal.start_job("b", source="dlq", target="orders:job")
        journal.finish_job("b", JobStatus.DONE)
        journal.start_job("c", source="dlq2", target="")
        journal.finish_job("c", JobStatus.INTERRUPTED)
        assert [j.id for j in journal.unfinished_jobs()] == ["a", "c"]
        journal.start_job("c", source="ignored on resume", target="")
        record = journal.job("c")
        assert record is not None and record.state is JobStatus.RUNNING and record.source == "dlq2"
        a = journal.job("a")
        assert a is not None and a.options == {"rate": 5.0} and a.total == 10


def test_sent_keys_are_those_that_may_have_a_copy_in_the_target(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_job("j", source="dlq", target="")
        rows = journal.add_items(
            "j", [("id:a", ""), ("id:b", ""), ("id:c", ""), ("id:d", "")], ItemState.IN_FLIGHT
        )
        journal.set_items(
            [
                (rows[1], ItemState.PUBLISHED, ""),
                (rows[2], ItemState.DONE, ""),
                (rows[3], ItemState.FAILED, "nack"),
            ]
        )
        assert journal.sent_keys("j") == {"id:a", "id:b", "id:c"}
        assert journal.unsettled_keys("j") == {"id:a": ItemState.IN_FLIGHT, "id:b": ItemState.PUBLISHED}
        assert journal.counts("j") == {"in_flight": 1, "published": 1, "done": 1, "failed": 1}
        assert journal.items("j")[3] == ("id:d", "", "failed", "nack")


def test_confirmed_kafka_positions_are_found_across_jobs(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_job("one", source="t.DLT", target="")
        rows = journal.add_items(
            "one", [("k", "t.DLT/0/1"), ("k", "t.DLT/0/2"), ("k", "t.DLT/0/3")], ItemState.IN_FLIGHT
        )
        journal.set_items([(rows[0], ItemState.DONE, ""), (rows[1], ItemState.PUBLISHED, "")])
        assert journal.published_positions(["t.DLT/0/1", "t.DLT/0/2", "t.DLT/0/3", "t.DLT/0/4", ""]) == {
            "t.DLT/0/1",
            "t.DLT/0/2",
        }


def test_a_second_connection_sees_committed_state_at_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as writer, Journal(path) as reader:
        writer.start_job("j", source="dlq", target="")
        writer.add_items("j", [("id:x", "")], ItemState.IN_FLIGHT)
        assert reader.unsettled_keys("j") == {"id:x": ItemState.IN_FLIGHT}
