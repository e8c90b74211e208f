"""Safe dead-letter replay: send dead letters back where they came from (or to a chosen target)
without ever losing one.

Owns: `Target` / `parse_target`, `ReplayItem` / `plan_replay` (per message: destination or the
reason it is refused), `parse_filter`, `TokenBucket`, `ReplayJob` (the engine) and `ReplayReport`.
Built on `mqstudio.backends.base` (and `mqstudio.runtime.jobs.Job` as the cancel/progress handle);
must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.

**The guarantee: lost = 0; duplicates ≤ the in-flight window.**

* A source message is acknowledged only after the target confirmed its copy *and* did not return it
  (RabbitMQ: publisher confirms + ``mandatory``; Kafka: ``acks=all``; embedded: the engine's result).
  Until then it is held unacknowledged, so a crash, a lost link, a cancel or a refusal leaves it in
  the dead-letter queue (the broker requeues what a dead connection held; we nack-requeue the rest;
  on Kafka the backend's `release_pending` moves the consumer back to every record the job did not
  settle, so the job's next take, or the next job, reads them again once and no offset commit
  passes them meanwhile).
  Nothing is ever nacked without requeue, and a message is never acked on another connection
  (the backends refuse stale handles).
* A duplicate needs a confirmed copy whose source ack did not happen: the process died, or the link
  dropped, between the confirm and the ack. Only messages published and not yet acked can be in that
  state: at most `batch_size` of them (pipelined, `PIPELINE_DEPTH` parts of a batch are in flight at
  once), so each crash or link loss adds at most `batch_size` duplicates. The journal commits each
  batch ``in_flight`` before publishing it (one commit, which also records the outcomes of earlier
  batches: ``done`` after the ack, ``failed`` with the reason; the last ones at the end of the job);
  Kafka records are also marked ``published`` after the confirms, before the offsets are committed.
  A job (also when resumed, or after a reconnect) reports every message it takes again after having
  sent it as a possible duplicate (an ack can be lost even after it was written).
  Every copy carries ``mqstudio-replay-job`` and the original ``message_id`` so consumers can
  de-duplicate.
* Kafka records have a unique position (topic/partition/offset): a record whose copy the journal
  recorded as confirmed is acknowledged without publishing again, so Kafka duplicates need a crash
  between the confirm and the journal's commit. Queue messages have no such identity (two messages
  may share an id or a body), so they are always published again: skipping one could lose it.

What a job replays: the messages present when it starts (the queue's ready count; a Kafka DLT up to
its end), or, with `only`, just the messages with those `selection_fingerprint`s (each listed
fingerprint once; the job stops taking once all were found). `selection_fingerprint` is
`ops.deadletters.fingerprint` without ``x-delivery-count``: a quorum queue rewrites that header on
every requeue, so a message peeked for the table would not match itself when the job takes it.
Messages it will not send (refused, filtered out, not chosen by `only`, refused by the target) are
held until the job ends so that they are not taken twice, then nack-requeued: they stay in the
dead-letter queue.

Speed (RabbitMQ): a batch is taken by consumers with a prefetch (not a basic.get per message) and,
while one is published, up to the next batch is taken ahead (held, never more than the messages
present at the start; given back on pause and at the end); copies are published in large writes with
`PIPELINE_DEPTH` parts of a batch awaiting their confirms at once; the sources of a confirmed part are
acked together (one ``multiple`` ack for a run with no held message in it). See benchmarks/replay.py.
Kafka is not pipelined (it measured no faster): each full batch is published with `publish_many`
and its offsets committed with one request (benchmarks/replay_kafka.py).
A message carrying this job's own id came back (it looped): the job stops there.

A nack from the target (e.g. a full ``reject-publish`` queue) keeps the source, but RabbitMQ nacks
when *any* queue refused: other queues the copy was routed to keep theirs (a duplicate, never a loss).

Side effect worth knowing: a requeue marks a message redelivered, and on a quorum queue with a
delivery limit each requeue counts as a delivery attempt (RabbitMQ's rule, see the backend's peek).
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from threading import Event
from typing import Any, Protocol

from mqstudio.backends.base import (
    Backend,
    BackendError,
    BackendKind,
    BrokerMessage,
    CancelledError,
    CancelToken,
    NeverCancelled,
    OutgoingMessage,
    Progress,
    PublishResult,
    UnreachableError,
)
from mqstudio.ops.deadletters import fingerprint
from mqstudio.ops.journal import ItemState, JobStatus, Journal
from mqstudio.ops.provenance import (
    Death,
    Origin,
    death_of,
    item_key,
    origin_of,
    replay_count,
    replay_headers,
    replay_job,
)

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MAX_REPLAYS",
    "ItemOutcome",
    "ReplayItem",
    "ReplayJob",
    "ReplayReport",
    "Target",
    "TokenBucket",
    "parse_filter",
    "parse_target",
    "plan_replay",
    "selection_fingerprint",
]

DEFAULT_MAX_REPLAYS = 5
"""Loop guard: a message already replayed this many times is refused."""
DEFAULT_BATCH = 200
PIPELINE_DEPTH = 2
"""Parts of a batch published at once (pipelined on RabbitMQ): one's confirms are awaited while the
next is prepared and published."""
"""Messages taken, journaled and published together (also the most a crash can duplicate)."""

Filter = Callable[[BrokerMessage], bool]


# -- destinations -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """A user-chosen destination: a RabbitMQ exchange ("" = default) or a Kafka topic. `key` None
    keeps each message's original routing key (or Kafka record key)."""

    target: str
    key: str | None = None

    def describe(self) -> str:
        return f"{self.target!r}" + (f" with key {self.key!r}" if self.key is not None else "")


def parse_target(text: str) -> Target:
    """``EXCHANGE[:KEY]`` (``:KEY`` alone means the default exchange)."""
    target, sep, key = text.partition(":")
    return Target(target, key if sep else None)


@dataclass(slots=True)
class ReplayItem:
    """One dead letter and where it would go (`destination`), or why it is `refused`."""

    message: BrokerMessage
    key: str
    position: str
    destination: Origin | None
    refused: str = ""
    count: int = 0
    """The message's provenance replay count (`replay_count`)."""
    death: Death | None = None
    """`death_of(message)` when the plan needed it (then the copy's headers reuse it)."""

    @property
    def ok(self) -> bool:
        return not self.refused and self.destination is not None


def _is_kafka(message: BrokerMessage) -> bool:
    return message.partition is not None and message.offset is not None


def plan_one(
    message: BrokerMessage,
    source: str,
    target: Target | None = None,
    *,
    max_replays: int = DEFAULT_MAX_REPLAYS,
) -> ReplayItem:
    """Where `message` taken from `source` goes (see `plan_replay`)."""
    key, position = item_key(message)
    kafka = _is_kafka(message)
    origin = origin_of(message)
    dest: Origin | None
    if target is not None:
        if kafka:
            dest = Origin(target.target, target.key or "", None, "target")
        else:
            dest = Origin(
                target.target,
                target.key if target.key is not None else _original_key(message, origin),
                source="target",
            )
    else:
        dest = origin
    count = replay_count(message)
    item = ReplayItem(message, key, position, dest, count=count)
    if dest is None:
        item.refused = "no origin: the message has no x-death (or Kafka DLT) headers; choose a target"
    elif count >= max_replays:
        item.refused = f"loop guard: already replayed {count} times (limit {max_replays})"
    elif kafka and dest.target == source:
        item.refused = f"the target is the dead-letter topic {source!r} itself"
    elif not kafka and dest.target == "" and dest.key == source:
        item.refused = f"the target is the dead-letter queue {source!r} itself"
    elif target is None and not kafka and _death(item).queue == source:
        item.refused = f"it died in {source!r} itself: replaying to its origin would loop"
    elif kafka and message.properties.get("key") is not None and _text_key(message) is None:
        item.refused = "the record key is not UTF-8 text and cannot be preserved by this backend"
    return item


def plan_replay(
    messages: Iterable[BrokerMessage],
    source: str,
    target: Target | None = None,
    *,
    max_replays: int = DEFAULT_MAX_REPLAYS,
) -> list[ReplayItem]:
    """Per message: its destination — the origin of its newest death (RabbitMQ ``x-death[0]``
    exchange + ``routing-keys[0]``; Kafka ``kafka_dlt-original-topic``/``-partition``) or `target` —
    or why it is refused: the destination is the source itself, no origin and no target, or the
    provenance replay count reached `max_replays` (loop guard)."""
    return [plan_one(m, source, target, max_replays=max_replays) for m in messages]


def _death(item: ReplayItem) -> Death:
    """`death_of(item.message)`, computed once per item."""
    if item.death is None:
        item.death = death_of(item.message)
    return item.death


def _original_key(message: BrokerMessage, origin: Origin | None) -> str:
    return (
        origin.key
        if origin is not None and origin.source in ("x-death", "x-original-exchange")
        else (message.routing_key)
    )


def _text_key(message: BrokerMessage) -> str | None:
    raw = message.properties.get("key")
    if raw is None:
        return ""
    if isinstance(raw, bytes | bytearray):
        try:
            return bytes(raw).decode()
        except UnicodeDecodeError:
            return None
    return str(raw)


def build_copy(item: ReplayItem, *, source: str, job_id: str) -> OutgoingMessage:
    """The message to publish for `item`: same body and properties, provenance headers."""
    dest = item.destination
    assert dest is not None
    message = item.message
    headers = replay_headers(message, source=source, job_id=job_id, death=_death(item), count=item.count)
    if _is_kafka(message):
        key = dest.key or (_text_key(message) or "")
        return OutgoingMessage(dest.target, message.body, key=key, headers=headers, partition=dest.partition)
    return OutgoingMessage(
        dest.target,
        message.body,
        key=dest.key,
        headers=headers,
        properties=dict(message.properties),
        mandatory=True,
    )


# -- choosing messages -----------------------------------------------------------------------------
# Kept under this name for callers that choose messages to replay; `fingerprint` itself leaves out
# the headers a broker rewrites on requeue (x-delivery-count on quorum queues).
selection_fingerprint = fingerprint


# -- filters ----------------------------------------------------------------------------------------
_CLAUSE = re.compile(r"^\s*(?P<field>[A-Za-z_][\w.-]*)\s*(?P<op>=|!=|~)\s*(?P<value>.*?)\s*$")


def parse_filter(expr: str) -> Filter:
    """A message filter from ``FIELD OP VALUE`` clauses joined by ``,`` or `` and `` (all must hold).

    Fields: ``reason``, ``queue`` (where it died), ``exchange``, ``key`` (routing key), ``id``
    (message id), ``body``, ``header.NAME``; operators ``=``, ``!=`` and ``~`` (contains).
    Example: ``reason=rejected, header.tenant=acme, body~timeout``. ValueError on a bad clause.
    """
    tests: list[Callable[[BrokerMessage], bool]] = []
    for clause in re.split(r",|\s+and\s+", expr):
        if not clause.strip():
            continue
        m = _CLAUSE.match(clause)
        if m is None:
            raise ValueError(
                f"cannot read filter clause {clause.strip()!r} (use FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT)"
            )
        name, op, value = m["field"], m["op"], m["value"].strip("'\"")
        get = _field_getter(name)
        tests.append(_compare(get, op, value))
    return lambda message: all(test(message) for test in tests)


def _field_getter(name: str) -> Callable[[BrokerMessage], str]:
    fields: dict[str, Callable[[BrokerMessage], str]] = {
        "reason": lambda m: death_of(m).reason,
        "queue": lambda m: death_of(m).queue,
        "exchange": lambda m: death_of(m).exchange,
        "key": lambda m: death_of(m).routing_key or m.routing_key,
        "id": lambda m: str(m.properties.get("message_id") or ""),
        "body": lambda m: m.body.decode(errors="replace"),
    }
    if name in fields:
        return fields[name]
    if name.startswith("header."):
        header = name[len("header.") :]
        return lambda m: "" if m.headers.get(header) is None else str(m.headers.get(header))
    raise ValueError(f"unknown filter field {name!r}: use {', '.join(fields)} or header.NAME")


def _compare(get: Callable[[BrokerMessage], str], op: str, value: str) -> Callable[[BrokerMessage], bool]:
    if op == "=":
        return lambda m: get(m) == value
    if op == "!=":
        return lambda m: get(m) != value
    return lambda m: value in get(m)


# -- rate limiting ----------------------------------------------------------------------------------
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `take(n)` waits until n tokens are there
    (taking more than `burst` at once is allowed: it waits for the deficit). Injectable clock/sleep."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()

    def take(self, n: int = 1, cancel: CancelToken | None = None) -> bool:
        """Wait for `n` tokens; False if `cancel` was set while waiting (nothing taken then)."""
        while True:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens + 1e-9 >= min(n, self.burst):  # float sums of elapsed time
                self._tokens -= n  # may go negative: the deficit is waited for by the next take
                return True
            if cancel is not None and cancel.cancelled:
                return False
            self._sleep(min(0.1, (min(n, self.burst) - self._tokens) / self.rate))


# -- reports ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ItemOutcome:
    key: str
    destination: str
    detail: str = ""


@dataclass(slots=True)
class ReplayReport:
    """What a replay did. Every message taken is in exactly one of: replayed, failed (the target
    refused it), refused (the job would not send it), filtered, skipped (a Kafka record already
    replayed), planned (dry run), not chosen (not among `only`), or returned untouched (cancel/stop);
    all but `replayed` and `skipped` are still in the dead-letter queue."""

    job_id: str
    source: str
    dry_run: bool = False
    total: int | None = None
    replayed: int = 0
    skipped: int = 0
    filtered: int = 0
    not_chosen: int = 0
    failed: list[ItemOutcome] = field(default_factory=list)
    refused: list[ItemOutcome] = field(default_factory=list)
    planned: list[ItemOutcome] = field(default_factory=list)
    possible_duplicates: list[str] = field(default_factory=list)
    cancelled: bool = False
    stopped: str = ""
    reconnects: int = 0

    @property
    def ok(self) -> bool:
        """Nothing that was meant to go stayed behind (filtered-out messages are not meant to)."""
        return not self.failed and not self.refused and not self.cancelled and not self.stopped

    def describe(self) -> list[str]:
        verb = "would replay" if self.dry_run else "replayed"
        count = len(self.planned) if self.dry_run else self.replayed
        lines = [
            f"{verb} {count} of {self.total if self.total is not None else '?'} from {self.source!r}"
            f" (job {self.job_id})"
        ]
        lines += [f"  {o.key} -> {o.destination}" for o in self.planned]
        lines += [f"FAILED {o.key} -> {o.destination}: {o.detail} (kept in the DLQ)" for o in self.failed]
        lines += [f"refused {o.key}: {o.detail} (kept in the DLQ)" for o in self.refused]
        if self.filtered:
            lines.append(f"{self.filtered} not matching the filter (kept in the DLQ)")
        if self.not_chosen:
            lines.append(f"{self.not_chosen} not chosen (kept in the DLQ)")
        if self.skipped:
            lines.append(f"{self.skipped} already replayed by an earlier job (acknowledged, not sent again)")
        if self.possible_duplicates:
            lines.append(
                f"{len(self.possible_duplicates)} possible duplicates (in flight when a run stopped): "
                + ", ".join(self.possible_duplicates[:10])
            )
        if self.reconnects:
            lines.append(f"{self.reconnects} reconnects")
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        if self.cancelled:
            lines.append("cancelled by the user")
        return lines


# -- the engine -------------------------------------------------------------------------------------
class _Control(Protocol):
    @property
    def cancelled(self) -> bool: ...

    def progress(self, done: int, total: int, what: str = "") -> None: ...


@dataclass(slots=True)
class _Flight:
    """A published batch: its items, journal rows, which keys this job had not sent before, and the
    publish results (None while `group`, a pipelined publish, awaits its confirms)."""

    items: list[ReplayItem]
    rows: list[int]
    fresh: list[bool]
    results: list[PublishResult] | None
    group: Any = None


class ReplayJob:
    """Replays the dead letters of `source` (a queue or Kafka DLT) to their origins or to `target`.

    Run it with `run()` on a worker thread (it blocks), e.g. ``runner.submit(replay, title=...)``
    or ``session.call_job(lambda backend, job: ReplayJob(backend, ...).run(job))``: the `Job` is
    the cancel token and receives progress(done, total, what). `pause()` / `resume()` act between
    messages. With a `journal` the job is recorded and can be resumed (`ReplayJob.resumed`).
    `retries` reconnect attempts are made on `UnreachableError` (the backend reconnects on next use)
    before the job gives up; the journal then says INTERRUPTED.
    `only`: `selection_fingerprint`s of the messages to replay (a fingerprint
    listed twice chooses two identical messages); the others are held and requeued like filtered ones.
    """

    def __init__(
        self,
        backend: Backend,
        source: str,
        target: Target | str | None = None,
        *,
        filter: Filter | str | None = None,
        rate: float | None = None,
        journal: Journal | None = None,
        max_replays: int = DEFAULT_MAX_REPLAYS,
        dry_run: bool = False,
        job_id: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        limit: int | None = None,
        retries: int = 0,
        retry_delay: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        only: Collection[str] | None = None,
    ) -> None:
        self.backend = backend
        self.source = source
        self.target = parse_target(target) if isinstance(target, str) else target
        self.filter_text = filter if isinstance(filter, str) else ""
        self.filter = parse_filter(filter) if isinstance(filter, str) else filter
        self.rate = rate
        self.journal = journal
        self.max_replays = max_replays
        self.dry_run = dry_run
        self.id = job_id or uuid.uuid4().hex[:16]
        self.batch_size = max(1, batch_size)
        self.limit = limit
        self.retries = retries
        self.retry_delay = retry_delay
        self._sleep = sleep
        self._running = Event()
        self._running.set()
        self._bucket = TokenBucket(rate, sleep=sleep) if rate else None
        self.report = ReplayReport(self.id, source, dry_run)
        self._cancel: CancelToken = NeverCancelled()
        self._progress: Progress | None = None
        self._held: list[BrokerMessage] = []
        self._unwritten: list[tuple[int, ItemState, str]] = []  # outcomes for the next journal commit
        self._sent: set[str] = set()
        self._acked = 0
        self.only: list[str] | None = None if only is None else list(only)
        self._only_left: Counter[str] | None = None if only is None else Counter(self.only)
        self._only_pending: list[str] = []  # chosen in the batch being sent, not settled yet
        self._scan: int | None = None  # messages the job takes at most (the source's count at start)
        self._flights: deque[_Flight] = deque()  # pipelined: published, confirms not handled yet
        self._pipelined = (
            callable(getattr(backend, "publish_start", None))
            and callable(getattr(backend, "publish_wait", None))
            and self._bucket is None
            and self.only is None
            and not dry_run
            and self.batch_size >= PIPELINE_DEPTH
            # Kafka: no gain measured (benchmarks/replay_kafka.py --mode pipelined vs batch), and
            # half batches double the journal commits and offset commits: full batches instead.
            and getattr(backend, "kind", None) is not BackendKind.KAFKA
        )

    @classmethod
    def resumed(cls, backend: Backend, journal: Journal, job_id: str, **overrides: Any) -> ReplayJob:
        """The journaled job `job_id` again (same id, source, target and options)."""
        record = journal.job(job_id)
        if record is None:
            raise KeyError(f"no replay job {job_id!r} in {journal.path}")
        options = dict(record.options)
        kwargs: dict[str, Any] = {
            "filter": options.get("filter") or None,
            "rate": options.get("rate"),
            "max_replays": int(options.get("max_replays", DEFAULT_MAX_REPLAYS)),
            "batch_size": int(options.get("batch_size", DEFAULT_BATCH)),
        }
        if options.get("only") is not None:  # the replayed ones are gone from the DLQ: not found again
            kwargs["only"] = list(options["only"])
        kwargs.update(overrides)
        target = parse_target(record.target) if record.target else None
        return cls(backend, record.source, target, journal=journal, job_id=job_id, **kwargs)

    # -- control ----------------------------------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def __call__(self, job: _Control) -> ReplayReport:
        return self.run(job)

    # -- running ----------------------------------------------------------------------------------
    def run(
        self,
        job: _Control | None = None,
        *,
        cancel: CancelToken | None = None,
        progress: Progress | None = None,
    ) -> ReplayReport:
        """Replay until done, cancelled or stopped; returns the report (also in `self.report`).
        Raises `UnreachableError` when the broker stays away after `retries` reconnects."""
        self._cancel = job if job is not None else (cancel or NeverCancelled())
        self._progress = job.progress if job is not None else progress
        report = self.report
        scan = self.limit if self.limit is not None else self._count()
        self._scan = scan
        report.total = scan
        if self.only is not None:  # progress counts the chosen messages, the scan goes through all
            report.total = len(self.only) if scan is None else min(scan, len(self.only))
        if self.journal is not None and not self.dry_run:
            self._sent = self.journal.sent_keys(self.id)
            self.journal.start_job(
                self.id,
                source=self.source,
                target=self._target_text(),
                backend=getattr(self.backend, "description", ""),
                total=report.total,
                options={
                    "filter": self.filter_text,
                    "rate": self.rate,
                    "max_replays": self.max_replays,
                    "batch_size": self.batch_size,
                    **({"only": self.only} if self.only is not None else {}),
                },
            )
        self._acked = 0
        status = JobStatus.INTERRUPTED
        try:
            while True:
                self._held = []
                try:
                    self._rounds()
                    break
                except UnreachableError:
                    # Not acked: RabbitMQ put them back when the connection went; Kafka records
                    # are given back by `_release` (the backend seeks back to them).
                    self._flights.clear()
                    self._held.clear()
                    self._restore_pending()  # chosen but maybe not acked: look for them again
                    if report.reconnects >= self.retries or self._cancel.cancelled:
                        raise
                    report.reconnects += 1
                    self._sleep(self.retry_delay)
                finally:
                    self._release()
            status = JobStatus.CANCELLED if report.cancelled else JobStatus.DONE
        finally:
            if self.journal is not None and not self.dry_run:
                self._write_journal([])
                self.journal.finish_job(self.id, status)
        if report.cancelled and job is not None:
            raise CancelledError("the replay was cancelled: " + "; ".join(report.describe()))
        return report

    def _target_text(self) -> str:
        if self.target is None:
            return ""
        return self.target.target + (f":{self.target.key}" if self.target.key is not None else "")

    def _count(self) -> int | None:
        """Messages in the source now: the replay takes no more than that (None: unknown / Kafka)."""
        counter = getattr(self.backend, "message_count", None)
        if callable(counter):
            return int(counter(self.source))
        if self.backend.kind is BackendKind.KAFKA:
            return None
        for obj in self.backend.stats().objects:
            if obj.kind == "queue" and obj.name == self.source:
                return int(obj.gauges.get("ready", 0))
        return None

    def _rounds(self) -> None:
        """Take and replay batches on one connection (until done, cancelled, stopped or the link drops)."""
        self._take_rounds()
        if self._flights:  # (not when the link dropped: then their sources are back in the DLQ)
            self._land()
            self._report_progress()

    def _take_rounds(self) -> None:
        report = self.report
        budget = None if self._scan is None else self._scan - self._acked
        taken = 0
        # Pipelined, PIPELINE_DEPTH parts of a batch are in flight at once: still at most `batch_size`
        # unacked copies.
        size = self.batch_size // PIPELINE_DEPTH if self._pipelined else self.batch_size
        while True:
            self._wait_if_paused()
            if self._cancel.cancelled:
                report.cancelled = True
                return
            if report.stopped:
                return
            if self._only_left is not None and not +self._only_left:
                return  # every chosen message was found: no need to scan the rest
            want = size if budget is None else min(size, budget - taken)
            if self.rate:
                want = min(want, max(1, int(self.rate / 4)))
            if want <= 0:
                return
            take = getattr(self.backend, "take_for_replay", None)
            # The next batch is taken while this one is published (not when choosing messages by
            # `only`: what is taken ahead after the last chosen one was found would be requeued).
            ahead = 0
            if budget is not None and self._only_left is None:
                ahead = max(0, min(self.batch_size, budget - taken - want))
            batch: list[BrokerMessage] = (
                take(self.source, want, ahead=ahead)
                if callable(take)
                else self.backend.consume_for_replay(self.source, want)
            )
            if not batch:
                return
            taken += len(batch)
            self._batch(batch)
            self._report_progress()

    def _wait_if_paused(self) -> None:
        if not self._running.is_set():
            self._land()
            self._end_take()  # what was taken ahead goes back to the DLQ for the pause
        while not self._running.wait(0.1):
            if self._cancel.cancelled:
                return

    def _report_progress(self) -> None:
        if self._progress is not None:
            r = self.report
            done = r.replayed + r.skipped + len(r.failed) + len(r.refused) + len(r.planned)
            if self.only is None:  # with `only`, progress is over the chosen messages
                done += r.filtered
            self._progress(done, max(done, r.total or 0), f"{r.replayed} replayed, {len(r.failed)} failed")

    def _batch(self, batch: Sequence[BrokerMessage]) -> None:
        report = self.report
        sendable: list[ReplayItem] = []
        refused: list[ReplayItem] = []
        for index, message in enumerate(batch):
            if replay_job(message) == self.id:
                report.stopped = (
                    f"a message this job replayed came back to {self.source!r} (it looped); "
                    "the rest stays in the DLQ"
                )
                self._held.extend(batch[index:])
                break
            if self.filter is not None and not self.filter(message):
                report.filtered += 1
                self._held.append(message)
                continue
            if self._only_left is not None:
                chosen = selection_fingerprint(message)
                if self._only_left[chosen] <= 0:
                    report.not_chosen += 1
                    self._held.append(message)
                    continue
                self._only_left[chosen] -= 1
                self._only_pending.append(chosen)
            item = plan_one(message, self.source, self.target, max_replays=self.max_replays)
            if not item.ok:
                refused.append(item)
                report.refused.append(ItemOutcome(item.key, _dest(item), item.refused))
                self._held.append(message)
                continue
            sendable.append(item)
        if self.dry_run:
            report.planned += [ItemOutcome(i.key, _dest(i)) for i in sendable]
            self._held.extend(i.message for i in sendable)
            return
        failed = [(i.key, i.position, ItemState.FAILED, "refused: " + i.refused) for i in refused]
        sendable = self._skip_replayed_records(sendable)
        if sendable:
            self._send(sendable, failed)
        elif failed:
            self._write_journal(failed)
        self._only_pending.clear()  # settled: acked, or held until the end of the job

    def _restore_pending(self) -> None:
        if self._only_left is not None:
            self._only_left.update(self._only_pending)
        self._only_pending.clear()

    def _skip_replayed_records(self, items: list[ReplayItem]) -> list[ReplayItem]:
        """Kafka records whose copy an earlier run confirmed: acknowledge, do not publish again."""
        if self.journal is None or not any(i.position for i in items):
            return items
        done = self.journal.published_positions([i.position for i in items])
        rest = []
        for item in items:
            if item.position in done:
                self.backend.settle(item.message, ack=True)
                self._acked += 1
                self.report.skipped += 1
            else:
                rest.append(item)
        return rest

    def _write_journal(self, new: list[tuple[str, str, ItemState, str]]) -> list[int]:
        """One commit: the outcomes not written yet (`_unwritten`) and the `new` attempts."""
        if self.journal is None:
            return []
        updates, self._unwritten = self._unwritten, []
        try:
            return self.journal.record(self.id, new, updates)
        except BaseException:
            self._unwritten[:0] = updates
            raise

    def _send(self, items: list[ReplayItem], failed: list[tuple[str, str, ItemState, str]]) -> None:
        """Journal `items` in flight (with `failed`, the batch's refused ones, and the outcomes not
        written yet: one commit), publish them, and ack the sources of the confirmed and routed copies.
        Pipelined, the acks of this batch wait until the next batch was published (`_land`).
        Outcomes (done / failed) are journaled with a later batch's commit, or by `run` at the end:
        until then the journal says in flight, which is what a crash must find."""
        report = self.report
        rows: list[int] = []
        if self.journal is not None:
            new = [(i.key, i.position, ItemState.IN_FLIGHT, "") for i in items]
            rows = self._write_journal(new + failed)[: len(items)]
        sent, fresh = self._sent, []
        for item in items:
            if item.key in sent:
                report.possible_duplicates.append(item.key)
                fresh.append(False)
            else:
                sent.add(item.key)
                fresh.append(True)
        source, job_id = self.source, self.id
        copies = [build_copy(i, source=source, job_id=job_id) for i in items]
        if not self._pipelined:
            self._settle(_Flight(items, rows, fresh, self._publish(copies)))
            return
        start = self.backend.publish_start  # type: ignore[attr-defined]
        flight = _Flight(items, rows, fresh, [] if self._cancel.cancelled else None)
        if flight.results is None:
            try:
                flight.group = start(copies)
            except BaseException:
                self._held.extend(i.message for i in items)  # unsettled: `_release` gives them back
                raise
        self._flights.append(flight)
        self._land(PIPELINE_DEPTH - 1)

    def _land(self, keep: int = 0) -> None:
        """Wait for the confirms of the oldest batches in flight and settle them, until `keep` are left."""
        while len(self._flights) > keep:
            flight = self._flights[0]
            if flight.results is None:
                flight.results = self.backend.publish_wait(flight.group)  # type: ignore[attr-defined]
            self._settle(flight)
            self._flights.popleft()

    def _settle(self, flight: _Flight) -> None:
        """Ack the sources of the confirmed and routed copies (one write); hold the others."""
        report, journal = self.report, self.journal
        items, rows, fresh, results = flight.items, flight.rows, flight.fresh, flight.results or []
        sent = len(results)
        updates: list[tuple[int, ItemState, str]] = []
        if sent < len(items):  # cancelled between publishes: the rest was never sent
            report.cancelled = True
            self._held.extend(i.message for i in items[sent:])
            self._sent.difference_update(
                i.key for i, new in zip(items[sent:], fresh[sent:], strict=True) if new
            )
            updates += [(r, ItemState.FAILED, "cancelled before publishing") for r in rows[sent:]]
        ok = [r.confirmed and r.routed for r in results]
        if journal is not None and any(i.position for i in items):
            # Kafka: a later job acknowledges a confirmed position without publishing it again,
            # so its confirm is journaled before the offset is committed. (A queue message is always
            # published again, so for it this commit would protect nothing.)
            journal.set_items((rows[n], ItemState.PUBLISHED, "") for n in range(sent) if ok[n])
        settle_many = getattr(self.backend, "settle_many", None)
        try:
            if callable(settle_many) and all(ok):  # the usual case: every copy confirmed and routed
                settle_many([i.message for i in items[:sent]], ack=True)
                self._acked += sent
                report.replayed += sent
                if rows:
                    updates += [(row, ItemState.DONE, "") for row in rows[:sent]]
                return
            if callable(settle_many):  # one write for the whole batch's acks
                settle_many([i.message for n, i in enumerate(items[:sent]) if ok[n]], ack=True)
            for n, (item, result) in enumerate(zip(items[:sent], results, strict=True)):
                if ok[n]:
                    if not callable(settle_many):
                        self.backend.settle(item.message, ack=True)
                    self._acked += 1
                    report.replayed += 1
                    if rows:
                        updates.append((rows[n], ItemState.DONE, ""))
                else:
                    why = _why(result)
                    report.failed.append(ItemOutcome(item.key, _dest(item), why))
                    self._held.append(item.message)
                    if fresh[n]:
                        self._sent.discard(item.key)  # refused by the target: no copy exists
                    if rows:
                        updates.append((rows[n], ItemState.FAILED, why))
        finally:
            self._unwritten += updates

    def _publish(self, copies: list[OutgoingMessage]) -> list[PublishResult]:
        """Publish with confirms (pipelined when the backend can); stops early only on cancel."""
        many = getattr(self.backend, "publish_many", None)
        if callable(many) and self._bucket is None:
            if self._cancel.cancelled:
                return []
            results: list[PublishResult] = many(copies)
            return results
        out: list[PublishResult] = []
        for copy in copies:
            if self._cancel.cancelled:
                break
            if self._bucket is not None and not self._bucket.take(1, self._cancel):
                break
            try:
                out.append(self.backend.publish(copy))
            except UnreachableError:
                raise
            except BackendError as exc:
                out.append(PublishResult(False, False, str(exc)))
        return out

    def _release(self) -> None:
        """Nack-requeue every held message and what was taken ahead (they stay in the DLQ). Never
        acks, never drops. A backend with `release_pending` (Kafka) gives back everything this job
        took and did not settle, also what a lost link left unsettled: its consumer moves back to
        the first of them, so the next take reads them again, once."""
        self._end_take()
        release = getattr(self.backend, "release_pending", None)
        if callable(release):
            self._flights.clear()
            self._held = []
            with contextlib.suppress(BackendError):
                release(self.source)
            return
        for flight in self._flights:  # an error left them unsettled: they stay in the DLQ
            self._held.extend(i.message for i in flight.items)
        self._flights.clear()
        held, self._held = self._held, []
        settle_many = getattr(self.backend, "settle_many", None)
        if callable(settle_many) and held:
            try:
                settle_many(held, ack=False, requeue=True)
                return
            except BackendError:
                pass  # one of them is from a connection that is gone: one by one then
        for message in held:
            try:
                self.backend.settle(message, ack=False, requeue=True)
            except BackendError:
                continue  # the connection that held it is gone: the broker has requeued it already

    def _end_take(self) -> None:
        end_take = getattr(self.backend, "end_take", None)
        if callable(end_take):
            # BackendError: the connection that took them is gone, the broker has requeued them already
            with contextlib.suppress(BackendError):
                end_take()


def _dest(item: ReplayItem) -> str:
    return item.destination.describe() if item.destination is not None else "(nowhere)"


def _why(result: PublishResult) -> str:
    if result.detail:
        return result.detail
    return "not confirmed by the target" if not result.confirmed else "not routed to any queue"
