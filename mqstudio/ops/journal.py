"""The replay journal: a local SQLite file that lets a crashed or interrupted replay resume.

Owns: `Journal` (open/create the file, jobs and items), `JobRecord`, `ItemState`, `JobStatus`,
`default_journal_path()`. Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.

Durability: WAL mode with ``synchronous=FULL`` (every commit is on disk before it returns), one
connection per `Journal`, several processes may share the file. The replay engine commits the
in-flight state of a batch *before* publishing it, ``published`` after the broker confirmed it, and
``done`` after the source message was acknowledged; so after a crash every message that may have a
copy in the target is recorded as ``in_flight`` or ``published``.

Tables:
  jobs(id, source, target, backend, created, updated, state, options, total)
  items(id, job_id, key, position, state, detail, updated)   -- one row per attempt
`key` is the message id (or a body hash), `position` a Kafka ``topic/partition/offset`` (see
`mqstudio.ops.provenance.item_key`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["ItemState", "JobRecord", "JobStatus", "Journal", "default_journal_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    backend TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    total INTEGER
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    key TEXT NOT NULL,
    position TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_job_key ON items(job_id, key);
CREATE INDEX IF NOT EXISTS items_position ON items(position) WHERE position != '';
"""


class JobStatus(StrEnum):
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # stopped by an error (e.g. the broker went away): resume it
    CANCELLED = "cancelled"  # the user stopped it: resumable too
    DONE = "done"


class ItemState(StrEnum):
    IN_FLIGHT = "in_flight"  # about to be published; a copy may or may not exist in the target
    PUBLISHED = "published"  # the target confirmed the copy; the source ack may not have happened
    DONE = "done"  # copy confirmed and source acknowledged
    FAILED = "failed"  # not replayed (target refused, or the job refused it); source kept it
    DUPLICATE = "duplicate"  # taken again after an earlier in_flight/published attempt of this job


UNSETTLED = (ItemState.IN_FLIGHT, ItemState.PUBLISHED)


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    source: str
    target: str
    backend: str
    created: float
    updated: float
    state: JobStatus
    options: dict[str, Any]
    total: int | None


def default_journal_path() -> Path:
    """``<user data dir>/mqstudio/replay-journal.sqlite3`` (platformdirs)."""
    from platformdirs import user_data_path

    return user_data_path("mqstudio", appauthor=False) / "replay-journal.sqlite3"


class Journal:
    """One connection to the journal file (created with its directory when missing). Thread-safe."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- jobs -------------------------------------------------------------------------------------
    def start_job(
        self,
        job_id: str,
        *,
        source: str,
        target: str,
        backend: str = "",
        options: dict[str, Any] | None = None,
        total: int | None = None,
    ) -> JobRecord:
        """Record a new job as running, or mark an existing one (a resume) running again."""
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO jobs (id, source, target, backend, created, updated, state, options, total)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        source,
                        target,
                        backend,
                        now,
                        now,
                        JobStatus.RUNNING.value,
                        json.dumps(options or {}, default=str),
                        total,
                    ),
                )
            else:
                db.execute(
                    "UPDATE jobs SET state = ?, updated = ? WHERE id = ?",
                    (JobStatus.RUNNING.value, now, job_id),
                )
        record = self.job(job_id)
        assert record is not None
        return record

    def finish_job(self, job_id: str, state: JobStatus) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, updated = ? WHERE id = ?", (state.value, time.time(), job_id)
            )

    def job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, source, target, backend, created, updated, state, options, total FROM jobs "
                "WHERE id = ?",
                (job_id,),
            ).fetchone()
        return _job(row) if row is not None else None

    def jobs(self) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, source, target, backend, created, updated, state, options, total FROM jobs "
                "ORDER BY created"
            ).fetchall()
        return [_job(r) for r in rows]

    def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs not DONE (running when the process died, interrupted, or cancelled), oldest first.
        A job recorded RUNNING whose process is gone is one of these: resume it."""
        return [j for j in self.jobs() if j.state is not JobStatus.DONE]

    # -- items ------------------------------------------------------------------------------------
    def add_items(self, job_id: str, items: Sequence[tuple[str, str]], state: ItemState) -> list[int]:
        """Record one attempt per (key, position); returns their row ids (one commit)."""
        now = time.time()
        ids: list[int] = []
        with self._tx() as db:
            for key, position in items:
                cur = db.execute(
                    "INSERT INTO items (job_id, key, position, state, updated) VALUES (?, ?, ?, ?, ?)",
                    (job_id, key, position, state.value, now),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def set_items(self, updates: Iterable[tuple[int, ItemState, str]]) -> None:
        """Set (row id, state, detail) for several attempts in one commit."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE items SET state = ?, detail = ?, updated = ? WHERE id = ?",
                [(state.value, detail, now, row) for row, state, detail in updates],
            )

    def unsettled_keys(self, job_id: str) -> dict[str, ItemState]:
        """Keys of this job's attempts left in_flight or published (a copy may exist in the target)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, state FROM items WHERE job_id = ? AND state IN (?, ?)",
                (job_id, *(s.value for s in UNSETTLED)),
            ).fetchall()
        return {str(k): ItemState(s) for k, s in rows}

    def sent_keys(self, job_id: str) -> set[str]:
        """Keys this job published at least once (in_flight, published or done): seeing one of them in
        the source again means its copy may already be in the target (an ack that never arrived)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT key FROM items WHERE job_id = ? AND state IN (?, ?, ?)",
                (job_id, *(s.value for s in (*UNSETTLED, ItemState.DONE))),
            ).fetchall()
        return {str(k) for (k,) in rows}

    def published_positions(self, positions: Sequence[str]) -> set[str]:
        """Which of these Kafka positions have a confirmed copy (published or done) in any job."""
        wanted = [p for p in positions if p]
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT DISTINCT position FROM items WHERE position IN ({marks}) AND state IN (?, ?)",
                    (*chunk, ItemState.PUBLISHED.value, ItemState.DONE.value),
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        return found

    def counts(self, job_id: str) -> dict[str, int]:
        """Attempts of a job by state."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM items WHERE job_id = ? GROUP BY state", (job_id,)
            ).fetchall()
        return {str(s): int(n) for s, n in rows}

    def items(self, job_id: str) -> list[tuple[str, str, str, str]]:
        """(key, position, state, detail) of every attempt of a job, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, position, state, detail FROM items WHERE job_id = ? ORDER BY id", (job_id,)
            ).fetchall()
        return [(str(k), str(p), str(s), str(d)) for k, p, s, d in rows]


def _job(row: tuple[Any, ...]) -> JobRecord:
    job_id, source, target, backend, created, updated, state, options, total = row
    return JobRecord(
        str(job_id),
        str(source),
        str(target),
        str(backend),
        float(created),
        float(updated),
        JobStatus(state),
        dict(json.loads(options or "{}")),
        None if total is None else int(total),
    )
