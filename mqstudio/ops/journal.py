"""The replay journal: a local SQLite file that lets a crashed or interrupted replay resume.

Owns: `Journal` (open/create the file, jobs and items), `JobRecord`, `ItemState`, `JobStatus`,
`default_journal_path()`. Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.

Durability: WAL mode with ``synchronous=FULL`` (every commit is on disk before it returns), one
connection per `Journal`, several processes may share the file. The replay engine commits the
in-flight state of a batch *before* publishing it (`record`: one commit per batch, with the outcomes
of earlier batches), ``published`` after the broker confirmed a Kafka record (queue messages skip it:
they are always published again), and ``done`` after the source message was acknowledged (written
with a later batch's commit: until then the row says ``in_flight``); so after a crash every message
that may have a copy in the target is recorded as ``in_flight``, ``published`` or ``done``.

A job records its `owner` (``pid@host``) whenever it starts or resumes: a job still RUNNING whose
process is alive on this machine is being run right now by another mqstudio (the GUI and the command
line share the file), so it is neither offered for resuming nor abandoned (`active_elsewhere`).

Tables:
  jobs(id, source, target, backend, created, updated, state, options, total, owner)
  items(id, job_id, key, position, state, detail, updated)   -- one row per attempt
`key` is the message id (or a body hash), `position` a Kafka ``topic/partition/offset`` (see
`mqstudio.ops.provenance.item_key`).

**Abandoning a job** (`Journal.abandon_job`) only changes the journal: the job is marked ABANDONED
and is no longer offered for resuming. Nothing is published, acknowledged or removed, so no message
can be lost by it: a message the job did not finish was never acknowledged, so the broker gave it
back to the dead-letter queue when the job's connection went (Kafka: its offset was never
committed). What an abandoned job leaves behind, by the state of its last attempt at a message:

* ``in_flight`` — the copy may or may not be in the target, and the original is in the DLQ — or,
  when the job stopped just after a batch was confirmed and acknowledged but before the journal
  recorded it (its ``done`` rows are written with the next commit), only the copy, in the target.
  Either way the message is somewhere: never lost.
* ``published`` — the copy is in the target *and* the original is still in the DLQ: replaying the
  DLQ again sends a second copy (a duplicate, never a loss). Kafka is the exception: later jobs
  still find the position as confirmed and acknowledge it without sending it again.
* ``done`` — replayed: the copy is in the target, the original was removed.
* ``failed`` — refused (by the target or the job): the original is still in the DLQ.

Its rows stay in the file as history (`items`, `counts`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "AbandonSummary",
    "ItemState",
    "JobRecord",
    "JobStatus",
    "Journal",
    "JournalError",
    "active_elsewhere",
    "default_journal_path",
]

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


_JOB_COLUMNS = "id, source, target, backend, created, updated, state, options, total, owner"


class JobStatus(StrEnum):
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # stopped by an error (e.g. the broker went away): resume it
    CANCELLED = "cancelled"  # the user stopped it: resumable too
    DONE = "done"
    ABANDONED = "abandoned"  # the user gave up on it: not offered again (see the module docstring)


FINISHED = (JobStatus.DONE, JobStatus.ABANDONED)


class JournalError(Exception):
    """A journal operation that cannot be done (unknown job, a job that is already finished)."""


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
    owner: str = ""  # pid@host of the process that last started or resumed it

    @property
    def owner_pid(self) -> int | None:
        pid, _, host = self.owner.partition("@")
        return int(pid) if pid.isdigit() and host == socket.gethostname() else None


@dataclass(frozen=True, slots=True)
class AbandonSummary:
    """What an abandoned job left behind: messages (distinct keys) by the state of the job's last
    attempt at each."""

    job: JobRecord
    in_flight: int  # copy maybe in the target; original in the DLQ unless its ack beat the journal
    published: int  # copy in the target; original still in the DLQ (a later replay duplicates it)
    done: int  # replayed and removed from the DLQ
    failed: int  # refused; original still in the DLQ

    def describe(self) -> list[str]:
        lines = [
            f"abandoned replay job {self.job.id} from {self.job.source!r} "
            f"(was {self.job.state.value}): nothing was sent or removed by abandoning it",
            f"  {self.done} replayed before it stopped",
        ]
        if self.in_flight:
            lines.append(
                f"  {self.in_flight} were being sent when it stopped: each is still in the DLQ, in the "
                "target, or in both (never in neither)"
            )
        if self.published:
            lines.append(
                f"  {self.published} were confirmed by the target but not yet removed: still in the DLQ "
                "and in the target (replaying them again makes duplicates)"
            )
        if self.failed:
            lines.append(f"  {self.failed} were refused and stay in the DLQ")
        return lines


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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "owner" not in columns:  # a journal written before owners were recorded
            self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")

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
            row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None:  # a resume: claimed in this transaction, so two processes can't both
                existing = _job(row)
                if active_elsewhere(existing):
                    raise JournalError(
                        f"replay job {job_id!r} is running now in process {existing.owner_pid} on this "
                        "machine: stop it there first"
                    )
                if existing.state in FINISHED:
                    raise JournalError(f"replay job {job_id!r} is {existing.state.value}: nothing to resume")
            if row is None:
                db.execute(
                    "INSERT INTO jobs (id, source, target, backend, created, updated, state, options, total,"
                    " owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        _me(),
                    ),
                )
            else:
                db.execute(
                    "UPDATE jobs SET state = ?, updated = ?, owner = ? WHERE id = ?",
                    (JobStatus.RUNNING.value, now, _me(), job_id),
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
                f"SELECT {_JOB_COLUMNS} FROM jobs "
                "WHERE id = ?",
                (job_id,),
            ).fetchone()
        return _job(row) if row is not None else None

    def jobs(self) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs "
                "ORDER BY created"
            ).fetchall()
        return [_job(r) for r in rows]

    def unfinished_jobs(self, *, include_active: bool = False) -> list[JobRecord]:
        """Jobs neither DONE nor ABANDONED (running when the process died, interrupted, or
        cancelled), oldest first: resume or abandon them. Jobs another live process is running now
        (`active_elsewhere`) only with `include_active`."""
        return [j for j in self.jobs() if j.state not in FINISHED
                and (include_active or not active_elsewhere(j))]

    def abandon_job(self, job_id: str) -> AbandonSummary:
        """Mark an unfinished job ABANDONED (see the module docstring: the journal only, no message
        is touched) and say what it left behind. `JournalError` for an unknown or finished job."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs "
                "WHERE id = ?",
                (job_id,),
            ).fetchone()
            if row is None:
                raise JournalError(f"no replay job {job_id!r} in {self.path}")
            record = _job(row)
            if active_elsewhere(record):
                raise JournalError(
                    f"replay job {job_id!r} is running now in process {record.owner_pid} on this machine: "
                    "stop it there first"
                )
            if record.state in FINISHED:
                raise JournalError(
                    f"replay job {job_id!r} is already {record.state.value}: nothing to abandon"
                )
            db.execute(
                "UPDATE jobs SET state = ?, updated = ? WHERE id = ?",
                (JobStatus.ABANDONED.value, time.time(), job_id),
            )
            # The last attempt at each key decides where that message is (an earlier in_flight one
            # may have been settled by a later attempt of a resumed run).
            rows = db.execute(
                "SELECT i.state, COUNT(*) FROM items i JOIN ("
                " SELECT key, MAX(id) AS last FROM items WHERE job_id = ? GROUP BY key"
                ") l ON i.id = l.last GROUP BY i.state",
                (job_id,),
            ).fetchall()
        by_state = {str(s): int(n) for s, n in rows}
        return AbandonSummary(
            record,
            in_flight=by_state.get(ItemState.IN_FLIGHT.value, 0),
            published=by_state.get(ItemState.PUBLISHED.value, 0),
            done=by_state.get(ItemState.DONE.value, 0),
            failed=by_state.get(ItemState.FAILED.value, 0),
        )

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

    def record(
        self,
        job_id: str,
        new: Sequence[tuple[str, str, ItemState, str]],
        updates: Iterable[tuple[int, ItemState, str]] = (),
    ) -> list[int]:
        """In one commit: set (row id, state, detail) of earlier attempts, then record new attempts
        (key, position, state, detail); returns the new rows' ids, in order. The replay engine writes
        a batch with this: its in-flight rows together with the outcome of the batch before."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE items SET state = ?, detail = ?, updated = ? WHERE id = ?",
                [(state.value, detail, now, row) for row, state, detail in updates],
            )
            if not new:
                return []
            db.executemany(
                "INSERT INTO items (job_id, key, position, state, detail, updated) VALUES (?, ?, ?, ?, ?, ?)",
                [(job_id, key, position, state.value, detail, now) for key, position, state, detail in new],
            )
            # One writer holds the file (BEGIN IMMEDIATE): the new rows got consecutive ids.
            last = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(new) + 1, last + 1))

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


def _me() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def active_elsewhere(job: JobRecord) -> bool:
    """The job is RUNNING in another process that is alive on this machine (not this process: a
    process that finds its own id there is the one that died and was restarted with the same pid, or
    runs the job itself)."""
    pid = job.owner_pid
    if job.state is not JobStatus.RUNNING or pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def _job(row: tuple[Any, ...]) -> JobRecord:
    job_id, source, target, backend, created, updated, state, options, total, owner = row
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
        str(owner or ""),
    )
