"""Replay of a Kafka dead-letter topic (Spring Kafka ``kafka_dlt-*`` headers) on Tansu: records go back
to their original topic and partition with provenance headers, the replay group's offsets are
committed only after the producer's acks, and a second run finds nothing left."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from mqstudio.backends import kafka_admin as kadmin
from mqstudio.backends.base import UnreachableError
from mqstudio.backends.kafka import KafkaBackend
from mqstudio.core.model import Topic
from mqstudio.ops.journal import ItemState, Journal
from mqstudio.ops.provenance import H_COUNT, H_FROM, H_JOB
from mqstudio.ops.replay import ReplayJob
from tests.fixtures.kafka import CONSUMER_OPTIONS, Tansu

N = 10_000
"""Records in the DLT: the issue's 10,000. Seeding them is one batched producer (well under a second);
the replay publishes each batch with acks=all through the backend's publish_many (whole batches,
not pipelined) and commits each batch's offsets with one request: about 8 s of this test on a loaded
2-core machine (it was 25-30 s publishing and committing record by record)."""


def fill_dlt(tansu: Tansu, dlt: str, origin: str, n: int) -> None:
    # Many send()s into large batches, then one flush: no round trip per record.
    producer = KafkaProducer(
        bootstrap_servers=tansu.bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=1 << 20,
        max_request_size=4 << 20,
    )
    for i in range(n):
        producer.send(
            dlt,
            value=b"payload %d" % i,
            key=b"k%d" % (i % 7),
            headers=[
                ("rid", b"r%d" % i),
                ("kafka_dlt-original-topic", origin.encode()),
                ("kafka_dlt-original-partition", (i % 3).to_bytes(4, "big")),
                ("kafka_dlt-original-offset", i.to_bytes(8, "big")),
                ("kafka_dlt-exception-message", b"boom"),
            ],
        )
    producer.flush(30)
    producer.close()


def read_all(tansu: Tansu, topic: str, n: int, timeout: float = 60.0) -> list[object]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=tansu.bootstrap, group_id=f"{topic}-check", **CONSUMER_OPTIONS
    )
    out: list[object] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        # and nothing more arrives
        for records in consumer.poll(timeout_ms=1000).values():
            out.extend(records)
    finally:
        consumer.close()
    return out


def test_dlt_records_go_back_to_their_original_topic_and_partition(
    tansu: Tansu, kafka_backend: KafkaBackend, kafka_prefix: str, tmp_path: Path
) -> None:
    origin, dlt = f"{kafka_prefix}orders", f"{kafka_prefix}orders.DLT"
    kafka_backend.create_topic(Topic(origin, partitions=3))
    kafka_backend.create_topic(Topic(dlt, partitions=2))
    fill_dlt(tansu, dlt, origin, N)

    with Journal(tmp_path / "j.sqlite3") as journal:
        job = ReplayJob(kafka_backend, dlt, journal=journal, job_id="kafka-1")
        assert not job._pipelined  # whole batches on Kafka (pipelining measured no gain there)
        report = job.run()
        assert report.replayed == N and report.ok, report.describe()
        assert journal.counts("kafka-1") == {ItemState.DONE.value: N}
        # everything is committed: a second job finds nothing to replay
        again = ReplayJob(kafka_backend, dlt, journal=journal, job_id="kafka-2").run()
        assert again.replayed == 0 and again.skipped == 0

    records = read_all(tansu, origin, N)
    rids = sorted(dict(r.headers)["rid"] for r in records)  # type: ignore[attr-defined]
    assert rids == sorted(b"r%d" % i for i in range(N))  # each exactly once
    for record in records:
        headers = dict(record.headers)  # type: ignore[attr-defined]
        i = int(headers["rid"][1:])
        assert record.partition == i % 3  # type: ignore[attr-defined]
        assert record.key == b"k%d" % (i % 7)  # type: ignore[attr-defined]
        assert not [h for h in headers if h.startswith("kafka_dlt-")]
        assert headers[H_COUNT] == b"1" and headers[H_FROM] == dlt.encode() and headers[H_JOB] == b"kafka-1"


def test_a_rerun_after_lost_commits_acknowledges_records_the_journal_saw_confirmed(
    tansu: Tansu, kafka_backend: KafkaBackend, kafka_prefix: str, tmp_path: Path
) -> None:
    origin, dlt = f"{kafka_prefix}orders", f"{kafka_prefix}orders.DLT"
    kafka_backend.create_topic(Topic(origin, partitions=3))
    kafka_backend.create_topic(Topic(dlt, partitions=1))
    fill_dlt(tansu, dlt, origin, 50)
    with Journal(tmp_path / "j.sqlite3") as journal:
        # The copies of the first 30 were confirmed, then the process died before committing.
        journal.start_job("earlier", source=dlt, target="")
        rows = journal.add_items("earlier", [("k", f"{dlt}/0/{o}") for o in range(30)], ItemState.PUBLISHED)
        assert len(rows) == 30
        report = ReplayJob(kafka_backend, dlt, journal=journal, job_id="later").run()
    assert report.skipped == 30 and report.replayed == 20
    assert len(read_all(tansu, origin, 20)) == 20


class _DropsOnce:
    """The Kafka backend, except that its `at`-th batch publish raises UnreachableError after the
    broker acknowledged the copies (the link dropped between the confirms and the offset commit:
    those copies are in the target, their sources unsettled)."""

    def __init__(self, backend: KafkaBackend, at: int) -> None:
        self._backend, self._at, self.waits = backend, at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def publish_many(self, messages: Any) -> Any:
        results = self._backend.publish_many(messages)
        self.waits += 1
        if self.waits == self._at:
            assert all(r.confirmed for r in results)
            raise UnreachableError("link dropped (simulated)")
        return results


def test_a_link_lost_mid_replay_gives_the_records_back_and_commits_to_the_end(
    tansu: Tansu, kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    origin, dlt = f"{kafka_prefix}orders", f"{kafka_prefix}orders.DLT"
    kafka_backend.create_topic(Topic(origin, partitions=3))
    kafka_backend.create_topic(Topic(dlt, partitions=2))
    n, batch = 1000, 100
    fill_dlt(tansu, dlt, origin, n)
    dropping = _DropsOnce(kafka_backend, at=3)

    # No journal: nothing says the dropped batch's copies were confirmed, so they go out again.
    report = ReplayJob(dropping, dlt, batch_size=batch, retries=1, retry_delay=0).run()

    assert report.reconnects == 1 and report.ok, report.describe()
    # Every record replayed in this job (the given-back ones were taken again, each once) ...
    assert report.replayed == n
    # ... and committed: the replay group's offsets reach the end of the DLT, so a later job (on a
    # new connection, as after a restart) finds nothing to replay again.
    group = f"{kafka_backend.replay_group}.{dlt}"
    assert sum(kafka_backend.group_lag(group).values()) == 0
    kafka_backend.close()  # (its replay consumer leaves the group)
    kafka_backend.connect()
    later = ReplayJob(kafka_backend, dlt).run()
    assert later.replayed == 0 and later.skipped == 0
    # lost = 0; the only duplicates are the copies of the batch in flight when the link dropped.
    records = read_all(tansu, origin, n + batch)
    rids = Counter(dict(r.headers)["rid"] for r in records)  # type: ignore[attr-defined]
    assert set(rids) == {b"r%d" % i for i in range(n)}
    duplicates = sum(c - 1 for c in rids.values())
    assert 0 < duplicates <= batch
    assert len(report.possible_duplicates) == duplicates


def test_records_a_job_left_in_the_dlt_are_replayed_once_by_the_next_job_on_the_same_connection(
    tansu: Tansu, kafka_backend: KafkaBackend, kafka_prefix: str
) -> None:
    origin, dlt = f"{kafka_prefix}orders", f"{kafka_prefix}orders.DLT"
    kafka_backend.create_topic(Topic(origin, partitions=3))
    kafka_backend.create_topic(Topic(dlt, partitions=2))
    fill_dlt(tansu, dlt, origin, 300)
    # The first job leaves the records with a 7 in the body (filtered out) in the DLT: at its end
    # the backend gives them back and seeks to them, between records it replayed and settled.
    first = ReplayJob(kafka_backend, dlt, filter="body~7", batch_size=50).run()
    kept = sum(1 for i in range(300) if "7" in str(i))
    assert first.replayed == kept and first.filtered == 300 - kept
    group = f"{kafka_backend.replay_group}.{dlt}"
    # the filtered ones are not committed past
    assert sum(kadmin.committed_offsets(kafka_backend.admin, group).values()) < 300

    second = ReplayJob(kafka_backend, dlt, batch_size=50).run()

    assert second.replayed == 300 - kept and second.filtered == 0 and not second.possible_duplicates
    assert sum(kafka_backend.group_lag(group).values()) == 0
    rids = Counter(dict(r.headers)["rid"] for r in read_all(tansu, origin, 300))  # type: ignore[attr-defined]
    assert set(rids) == {b"r%d" % i for i in range(300)} and set(rids.values()) == {1}
