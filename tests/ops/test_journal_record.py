"""`Journal.record`: a replay batch's journal writes in one commit (earlier outcomes + new attempts)."""

from __future__ import annotations

from pathlib import Path

from mqstudio.ops.journal import ItemState, Journal


def test_record_returns_the_new_rows_ids_in_order_and_applies_the_updates_in_the_same_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as journal, Journal(path) as other:
        journal.start_job("j", source="dlq", target="")
        other.start_job("k", source="dlq2", target="")
        first = journal.record("j", [(f"id:a{i}", "", ItemState.IN_FLIGHT, "") for i in range(3)])
        other.add_items("k", [("id:elsewhere", "")], ItemState.IN_FLIGHT)  # another writer in between
        second = journal.record(
            "j",
            [("id:b0", "", ItemState.IN_FLIGHT, ""), ("id:b1", "t/0/7", ItemState.FAILED, "refused: loop")],
            updates=[(first[0], ItemState.DONE, ""), (first[1], ItemState.FAILED, "nacked")],
        )
        assert len(set(first + second)) == 5 and second[0] > first[-1]
        journal.set_items([(second[0], ItemState.PUBLISHED, "")])  # the ids name the right rows
        assert journal.items("j") == [
            ("id:a0", "", "done", ""),
            ("id:a1", "", "failed", "nacked"),
            ("id:a2", "", "in_flight", ""),
            ("id:b0", "", "published", ""),
            ("id:b1", "t/0/7", "failed", "refused: loop"),
        ]
        assert other.items("k") == [("id:elsewhere", "", "in_flight", "")]
        assert journal.record("j", [], updates=[(first[2], ItemState.DONE, "")]) == []
        assert journal.counts("j") == {"done": 2, "failed": 2, "published": 1}
