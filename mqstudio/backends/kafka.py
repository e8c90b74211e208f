"""The Kafka backend: topics, consumer groups, records, offsets and stats through kafka-python.

Owns: `KafkaBackend` (the `Backend` protocol for Kafka and Kafka-compatible brokers such as Tansu),
`KafkaSecurity` (TLS/SASL options) and `GroupTimeouts`. Admin details (error mapping, topology read,
plan steps, offset queries) live in `kafka_admin`; only these two modules import kafka-python. Must not
import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.

Semantics:

* Kafka has no exchanges and no broker dead-lettering: dead-letter topics are ordinary topics by
  convention, and plans ignore a design's exchanges, queues and bindings (with a warning).
* `peek` and `tail` read with a consumer without a group (assign + seek): nothing is committed, so
  they are non-destructive by nature.
* `consume_for_replay`/`settle` are at-least-once: a consumer in a dedicated replay group
  (``<replay_group>.<topic>``, or the consumer group the caller names, e.g. the traffic generator's
  design group; auto-commit off) takes records; ``settle(ack=True)`` commits, per
  partition, the offset after the highest record below which every record taken has been settled, so a
  record is never skipped by a commit, and a crash before the commit delivers it (and any later,
  already-settled ones) again. ``settle(ack=False, requeue=True)`` hands the record out again on the
  next `consume_for_replay` (flagged ``redelivered``); ``requeue=False`` settles it without replay
  (Kafka cannot drop one record: it is skipped by committing past it). `settle_many` does the same
  for many records with one commit request. `release_pending` gives back everything taken and not
  settled (the caller dropped it: lost link, cancel, end of a job): the consumer seeks back to the
  first such record per partition, so the next take reads them again, each once.
* `publish` refuses unknown topics (`NotFoundError`) rather than letting the broker auto-create them,
  and waits for the broker's acknowledgement, returning the partition and offset. `publish_many`
  (= `publish_wait(publish_start(...))`, which a caller may pipeline) hands a whole batch to the producer
  (acks=all) and then waits for every acknowledgement: one `PublishResult` per record, confirmed only
  when the broker acknowledged that record; unknown topics/partitions are not sent (not routed, with
  the reason), and records unanswered within the producer's delivery timeout are not confirmed.
* `purge` deletes records up to each partition's end offset (DeleteRecords); brokers without it
  (Tansu) raise `UnsupportedError` naming the alternative: recreate the topic.
* `stats` reports per topic ``end_offset`` (gauge) and ``produced`` (counter), both the sum of the
  partitions' end offsets, and per consumer group ``lag`` (gauge: total) plus
  ``lag.<topic>.<partition>`` per partition and ``consumers`` (members). (Tansu 0.6 reports a
  partition's end offset as its last record batch's base offset + 1: after batched produces, its end
  offsets and so the lags are too low. Real Kafka reports the high watermark.)
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from mqstudio.backends import kafka_admin as kadmin
from mqstudio.backends.applying import run_plan
from mqstudio.backends.base import (
    ApplyReport,
    BackendError,
    BackendKind,
    BrokerMessage,
    CancelToken,
    Capabilities,
    ConflictError,
    NotFoundError,
    OutgoingMessage,
    Progress,
    PublishResult,
    UnreachableError,
    UnsupportedError,
)
from mqstudio.core.document import TopologyDocument
from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.core.model import Topic, Topology
from mqstudio.core.plan import Plan, Step, StepKind
from mqstudio.core.plan import plan as make_plan

_POLL_MS = 100
_TAIL_FETCH_WAIT_MS = 50  # Tansu answers a long poll only when it expires: keep tails responsive
_NO_ACK = "no acknowledgement from Kafka in time (it may still arrive: a duplicate, never a loss)"
_BATCH_BYTES = 256 * 1024  # producer batch per partition: a replay batch goes in a few requests


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How to connect: ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL mechanism
    ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``). The password is never shown."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True

    def client_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            config["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            config["sasl_plain_username"] = self.username
            config["sasl_plain_password"] = self.password
        if self.protocol.endswith("SSL"):
            config["ssl_check_hostname"] = self.ssl_check_hostname
            for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                if getattr(self, key):
                    config[key] = getattr(self, key)
        return config


@dataclass(frozen=True, slots=True)
class GroupTimeouts:
    """Consumer-group timers of the replay consumer. A join takes about half the session timeout on
    Tansu; tests use 3000/1000/3000 (then the replay consumer must be polled every 3 s)."""

    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000


@dataclass(slots=True)
class _Replay:
    """One topic's replay consumer and what it handed out but was not settled yet."""

    consumer: Any
    pending: dict[TopicPartition, set[int]] = field(default_factory=dict)
    settled: dict[TopicPartition, set[int]] = field(default_factory=dict)
    again: list[BrokerMessage] = field(default_factory=list)
    released: dict[TopicPartition, set[int]] = field(default_factory=dict)
    """Given back by `KafkaBackend.release_pending` and not read again yet: no commit passes them."""
    skip: dict[TopicPartition, set[int]] = field(default_factory=dict)
    """Settled before a `release_pending` moved the consumer back over them: not handed out again
    when read again (their offsets may be committed before that: `settled` forgets them then)."""


@dataclass(slots=True)
class KafkaPublishGroup:
    """The records of one `KafkaBackend.publish_start`, in order: each a result decided without the
    broker (not sent) or ``(topic, future)`` awaiting its acknowledgement until `deadline` (monotonic)."""

    slots: list[PublishResult | tuple[str, Any]]
    deadline: float


def _encode_header(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, default=str).encode()


def _decode_header(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value


def _to_message(record: Any, group_id: str | None = None) -> BrokerMessage:
    """A record as a `BrokerMessage`; `group_id` names the consumer group that took it (replay)."""
    key = record.key
    return BrokerMessage(
        source=record.topic,
        body=record.value if record.value is not None else b"",
        routing_key=key.decode(errors="replace") if key is not None else "",
        headers={name: _decode_header(value) for name, value in (record.headers or [])},
        properties={"key": key},
        timestamp_ms=record.timestamp if record.timestamp is not None and record.timestamp >= 0 else None,
        partition=record.partition,
        offset=record.offset,
        handle=(record.topic, record.partition, record.offset)
        if group_id is None
        else (record.topic, record.partition, record.offset, group_id),
    )


def _at_end(consumer: Any, tps: Iterable[TopicPartition], trust_end_offsets: bool) -> bool:
    """Whether `consumer` sits at the end of every partition of `tps`. The end is the larger of the
    broker's end offset and the high watermark of the last fetch answer: Tansu 0.6 reports the end
    offset too low after batched produces (its last batch's base offset + 1), the fetch's high
    watermark right. Until a fetch answered for a partition, only with `trust_end_offsets`."""
    tps = list(tps)
    ends = consumer.end_offsets(tps)
    for tp in tps:
        high = consumer.highwater(tp)
        if high is None and not trust_end_offsets:
            return False
        if consumer.position(tp) < max(ends[tp], high or 0):
            return False
    return True


class KafkaBackend:
    """A connection to one Kafka cluster. Blocking; one thread at a time (`tail` runs its own consumer
    and may run on another thread while this one publishes).

    `bootstrap` is ``host:port[,host:port…]``; `timeout_s` bounds the connect (bootstrap) and each
    request; `replay_group` prefixes the replay consumer groups (``<replay_group>.<topic>``);
    `group_timeouts` sets their session/heartbeat/poll timers.
    """

    kind = BackendKind.KAFKA
    capabilities = (
        Capabilities.TOPICS
        | Capabilities.CONSUMER_GROUPS
        | Capabilities.TOPOLOGY_WRITE
        | Capabilities.PEEK
        | Capabilities.REPLAY
        | Capabilities.STATS
        | Capabilities.TAIL
    )

    def __init__(
        self,
        bootstrap: str = "127.0.0.1:9092",
        *,
        client_id: str = "mqstudio",
        security: KafkaSecurity | None = None,
        timeout_s: float = 5.0,
        replay_group: str = "mqstudio-replay",
        group_timeouts: GroupTimeouts | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.security = security or KafkaSecurity()
        self.timeout_s = timeout_s
        self.replay_group = replay_group
        self.group_timeouts = group_timeouts or GroupTimeouts()
        self._admin: Any = None
        self._producer: Any = None
        self._replays: dict[tuple[str, str], _Replay] = {}  # (group id, topic) -> its consumer
        self._topics: set[str] = set()  # topics known to exist (publish checks, refreshed on a miss)

    # -- connection -----------------------------------------------------------------------------
    @property
    def description(self) -> str:
        user = f"{self.security.username}@" if self.security.username else ""
        return f"kafka {user}{self.bootstrap} ({self.security.protocol})"

    def _config(self) -> dict[str, Any]:
        timeout_ms = int(self.timeout_s * 1000)
        return {
            "bootstrap_servers": self.bootstrap.split(","),
            "client_id": self.client_id,
            "request_timeout_ms": max(timeout_ms, 1000),
            **self.security.client_config(),
        }

    def _error(self, exc: BaseException, action: str) -> BackendError:
        return kadmin.translate_error(exc, action, self.bootstrap)

    def connect(self) -> None:
        if self._admin is not None:
            return
        try:
            self._admin = KafkaAdminClient(
                **self._config(), bootstrap_timeout_ms=max(int(self.timeout_s * 1000), 500)
            )
            self._topics = set(self._admin.list_topics())  # a metadata request
        except Exception as exc:
            self._admin = None
            error = self._error(exc, f"connect to Kafka at {self.bootstrap}")
            if isinstance(error, UnreachableError):
                raise UnreachableError(
                    f"cannot reach Kafka at {self.bootstrap}",
                    "check host and port, that the broker runs, and that its advertised listener "
                    "(advertised.listeners) names an address reachable from this machine",
                ) from exc
            raise error from exc

    def close(self) -> None:
        for replay in self._replays.values():
            with contextlib.suppress(Exception):
                replay.consumer.close(autocommit=False)
        self._replays.clear()
        for client in (self._producer, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._producer = None
        self._admin = None
        self._topics = set()

    @property
    def admin(self) -> Any:
        """The kafka-python admin client (connects on first use)."""
        if self._admin is None:
            self.connect()
        return self._admin

    def _consumer(self, **options: Any) -> Any:
        config = {
            **self._config(),
            "enable_auto_commit": False,
            "fetch_max_wait_ms": _TAIL_FETCH_WAIT_MS,
            **options,
        }
        try:
            return KafkaConsumer(**config)
        except Exception as exc:
            raise self._error(exc, "open a consumer") from exc

    def _topic_info(self, topic: str) -> kadmin.TopicInfo:
        try:
            info = kadmin.describe_topics(self.admin, [topic]).get(topic)
        except Exception as exc:
            raise self._error(exc, f"describe topic {topic!r}") from exc
        if info is None:
            raise NotFoundError(f"topic {topic!r} does not exist", "refresh the topology or create the topic")
        return info

    def _partitions(self, topic: str, partition: int | None = None) -> list[TopicPartition]:
        info = self._topic_info(topic)
        if partition is None:
            return [TopicPartition(topic, p) for p in range(info.partitions)]
        if not 0 <= partition < info.partitions:
            raise NotFoundError(
                f"topic {topic!r} has no partition {partition}",
                f"its partitions are 0 to {info.partitions - 1}",
            )
        return [TopicPartition(topic, partition)]

    # -- topology -------------------------------------------------------------------------------
    def live_topology(self) -> Topology:
        try:
            return kadmin.read_topology(self.admin)
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, "read the topology") from exc

    def fetch_topology(self) -> TopologyDocument:
        return TopologyDocument(self.live_topology(), metadata={"source": self.description})

    def plan(self, desired: Topology, *, prune: bool = False) -> Plan:
        topics, warnings = kadmin.topics_only(desired)
        result = make_plan(topics, self.live_topology(), prune=prune)
        result.warnings = warnings + result.warnings
        return result

    def create_topic(self, topic: Topic) -> None:
        """Create one topic; `ConflictError` when it exists already."""
        try:
            kadmin.create_topic(self.admin, topic)
        except Exception as exc:
            raise self._error(exc, f"create topic {topic.name!r}") from exc

    def apply(
        self,
        plan: Plan,
        *,
        consent: Iterable[Step] = (),
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> ApplyReport:
        """Run the topic steps in order (see `run_plan` for consent, cancel, progress and the report)."""
        return run_plan(plan, self._run_step, consent=consent, progress=progress, cancel=cancel)

    def _run_step(self, step: Step) -> None:
        try:
            kadmin.run_step(self.admin, step)
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, step.describe()) from exc
        if step.kind == StepKind.DELETE_TOPIC and isinstance(step.obj, Topic):
            self._topics.discard(step.obj.name)

    # -- records --------------------------------------------------------------------------------
    def _known_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        self._topics = set(self.admin.list_topics())
        if topic not in self._topics:
            raise NotFoundError(
                f"cannot publish to topic {topic!r}: it does not exist",
                "create it first (mqstudio does not rely on the broker auto-creating topics)",
            )

    def _producer_for(self) -> Any:
        if self._producer is None:
            timeout_ms = max(int(self.timeout_s * 1000), 1000)
            self._producer = KafkaProducer(
                **self._config(),
                acks="all",
                max_block_ms=timeout_ms,
                linger_ms=0,
                batch_size=_BATCH_BYTES,
                delivery_timeout_ms=self._delivery_timeout_ms(),
                bootstrap_timeout_ms=timeout_ms,  # (kafka-python's default: 30 s)
            )
        return self._producer

    def _delivery_timeout_ms(self) -> int:
        """How long the producer keeps trying to deliver a record before it fails its future (at
        least one request timeout, as kafka-python requires)."""
        return max(int(self.timeout_s * 2000), int(self._config()["request_timeout_ms"]))

    def _send(self, message: OutgoingMessage) -> Any:
        """Hand one record to the producer; its future. Raises what kafka-python raises."""
        return self._producer_for().send(
            message.target,
            value=message.body,
            key=message.key.encode() if message.key else None,
            headers=[(name, _encode_header(value)) for name, value in message.headers.items()],
            partition=message.partition,
            timestamp_ms=message.properties.get("timestamp_ms"),
        )

    def publish(self, message: OutgoingMessage) -> PublishResult:
        try:
            self._known_topic(message.target)
            meta = self._send(message).get(timeout=self.timeout_s * 2)
        except ValueError as exc:  # kafka-python: unknown partition
            raise NotFoundError(f"cannot publish to topic {message.target!r}: {exc}") from exc
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, f"publish to topic {message.target!r}") from exc
        return PublishResult(confirmed=True, partition=meta.partition, offset=meta.offset)

    def publish_many(self, messages: list[OutgoingMessage]) -> list[PublishResult]:
        """Publish several records with ``acks=all`` and wait for all the acknowledgements: one result
        per record, in order (much faster than `publish`, which waits for each). A record is
        ``confirmed`` only when the broker acknowledged it; one for an unknown topic or partition is not
        sent (not confirmed, not routed, with the reason); one not acknowledged in time is not confirmed
        (the producer may still deliver it later: a duplicate if it is published again, never a loss).
        `UnreachableError` when no producer can be opened (nothing was sent)."""
        return self.publish_wait(self.publish_start(messages))

    def publish_start(self, messages: list[OutgoingMessage]) -> KafkaPublishGroup:
        """`publish_many` without waiting for the acknowledgements (the producer sends in the
        background): the caller can prepare the next batch meanwhile; `publish_wait` returns the
        results. When Kafka cannot be reached, the records after the first that could not be sent are
        not sent either (each would wait for metadata in vain)."""
        if not messages:
            return KafkaPublishGroup([], 0.0)
        try:
            self._producer_for()
        except Exception as exc:
            raise self._error(exc, "open a producer") from exc
        slots: list[Any] = []
        topics: dict[str, str] = {}  # topic -> why it cannot be published to ("" = it exists)
        gave_up = ""
        for message in messages:
            if gave_up:
                slots.append(PublishResult(False, False, gave_up))
                continue
            target = message.target
            if target not in topics:
                topics[target] = self._missing_topic(target)
            if topics[target]:
                slots.append(PublishResult(False, False, topics[target]))
                continue
            try:
                slots.append((target, self._send(message)))
            except ValueError as exc:  # kafka-python: unknown partition
                slots.append(PublishResult(False, False, f"not published to topic {target!r}: {exc}"))
            except Exception as exc:
                error = self._error(exc, f"publish to topic {target!r}")
                if isinstance(error, UnreachableError):
                    gave_up = f"not sent: {error}"
                slots.append(PublishResult(False, False, f"not sent: {error}"))
        return KafkaPublishGroup(slots, time.monotonic() + self._delivery_timeout_ms() / 1000 + 1.0)

    def _missing_topic(self, topic: str) -> str:
        """Why records cannot be published to `topic` ("" when it exists)."""
        try:
            self._known_topic(topic)
        except NotFoundError as exc:
            return f"not published: {exc}"
        except Exception as exc:
            return f"not sent: {self._error(exc, f'check that topic {topic!r} exists')}"
        return ""

    def publish_wait(self, group: KafkaPublishGroup) -> list[PublishResult]:
        """The results of a `publish_start`, once the broker acknowledged each record or the producer
        gave up on it (after its delivery timeout; a record still unanswered then is not confirmed)."""
        results: list[PublishResult] = []
        for slot in group.slots:
            if isinstance(slot, PublishResult):
                results.append(slot)
                continue
            topic, future = slot
            try:
                meta = future.get(timeout=max(0.0, group.deadline - time.monotonic()))
            except KafkaTimeoutError:
                results.append(PublishResult(False, False, f"not confirmed: {_NO_ACK}"))
            except Exception as exc:
                results.append(self._failed(topic, exc))
            else:
                results.append(PublishResult(True, True, partition=meta.partition, offset=meta.offset))
        return results

    def _failed(self, topic: str, exc: BaseException) -> PublishResult:
        error = self._error(exc, f"publish to topic {topic!r}")
        if isinstance(error, NotFoundError):
            self._topics.discard(topic)
            return PublishResult(False, False, f"not published: {error}")
        return PublishResult(False, False, f"not confirmed: {error}")

    def peek(
        self,
        source: str,
        limit: int = 50,
        *,
        partition: int | None = None,
        offset: int | None = None,
        timestamp_ms: int | None = None,
    ) -> list[BrokerMessage]:
        """Up to `limit` records of topic `source` without committing anything: from `offset` (in each
        partition read), or from the first record at or after `timestamp_ms`, else from the beginning;
        all partitions unless `partition` is given; merged by timestamp, then partition and offset."""
        if offset is not None and timestamp_ms is not None:
            raise ValueError("peek takes an offset or a timestamp, not both")
        tps = self._partitions(source, partition)
        if limit <= 0:
            return []
        consumer = self._consumer(group_id=None, auto_offset_reset="earliest")
        try:
            return self._peek(consumer, tps, limit, offset, timestamp_ms)
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, f"read topic {source!r}") from exc
        finally:
            consumer.close()

    def _peek(
        self,
        consumer: Any,
        tps: list[TopicPartition],
        limit: int,
        offset: int | None,
        timestamp_ms: int | None,
    ) -> list[BrokerMessage]:
        consumer.assign(tps)
        ends: dict[TopicPartition, int] = consumer.end_offsets(tps)
        starts: dict[TopicPartition, int] = consumer.beginning_offsets(tps)
        if timestamp_ms is not None:
            begin = self._broker_offsets_at(consumer, tps, timestamp_ms, starts)
        elif offset is not None:
            begin = {tp: min(max(offset, starts[tp]), ends[tp]) for tp in tps}
        else:
            begin = dict(starts)
        taken = self._read(consumer, begin, ends, limit, timestamp_ms)
        merged = [m for messages in taken.values() for m in messages]
        merged.sort(key=lambda m: (m.timestamp_ms or 0, m.partition or 0, m.offset or 0))
        return merged[:limit]

    @staticmethod
    def _broker_offsets_at(
        consumer: Any, tps: list[TopicPartition], timestamp_ms: int, starts: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Where the broker says the first record at or after `timestamp_ms` is; `_read` checks it.

        Tansu 0.6 answers offset 0 for any timestamp, so this is a lower bound only."""
        found = consumer.offsets_for_times({tp: timestamp_ms for tp in tps})
        return {tp: found[tp].offset if found.get(tp) is not None else starts[tp] for tp in tps}

    def _read(
        self,
        consumer: Any,
        begin: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        limit: int,
        since_ms: int | None = None,
    ) -> dict[TopicPartition, list[BrokerMessage]]:
        """Up to `limit` records per partition from `begin` to `ends`; with `since_ms`, a partition's
        records before its first record stamped at or after `since_ms` are skipped (Kafka's rule)."""
        for tp, offset in begin.items():
            consumer.seek(tp, offset)
        taken: dict[TopicPartition, list[BrokerMessage]] = {tp: [] for tp in begin}
        found = {tp: since_ms is None for tp in begin}

        def done(tp: TopicPartition) -> bool:
            return len(taken[tp]) >= limit or consumer.position(tp) >= ends[tp]

        deadline = time.monotonic() + max(self.timeout_s, 1.0) * 2
        while not all(done(tp) for tp in begin) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=_POLL_MS).items():
                for record in records:
                    if not found[tp]:
                        if record.timestamp is None or since_ms is None or record.timestamp < since_ms:
                            continue
                        found[tp] = True
                    if len(taken[tp]) < limit:
                        taken[tp].append(_to_message(record))
        return taken

    def _offsets_at(self, tps: list[TopicPartition], timestamp_ms: int) -> dict[TopicPartition, int]:
        """Per partition, the offset of the first record stamped at or after `timestamp_ms` (else the
        end offset), checked by reading rather than trusting the broker's time index."""
        consumer = self._consumer(group_id=None, auto_offset_reset="earliest")
        try:
            consumer.assign(tps)
            ends: dict[TopicPartition, int] = consumer.end_offsets(tps)
            starts: dict[TopicPartition, int] = consumer.beginning_offsets(tps)
            begin = self._broker_offsets_at(consumer, tps, timestamp_ms, starts)
            taken = self._read(consumer, begin, ends, 1, timestamp_ms)
        finally:
            consumer.close()
        return {tp: (taken[tp][0].offset or 0) if taken[tp] else ends[tp] for tp in tps}

    def tail(
        self,
        target: str,
        sink: Callable[[BrokerMessage], None],
        cancel: CancelToken,
        *,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Deliver records produced to topic `target` after the call to `sink` until `cancel` is set.
        `on_ready` is called once the consumer sits at the end of every partition (records produced
        after that are delivered). Partitions added meanwhile are not followed."""
        tps = self._partitions(target)
        consumer = self._consumer(group_id=None, auto_offset_reset="latest")
        try:
            consumer.assign(tps)
            consumer.seek_to_end(*tps)
            for tp in tps:
                consumer.position(tp)  # resolve "end" now, not at the first fetch
            if on_ready is not None:
                on_ready()
            while not cancel.cancelled:
                for records in consumer.poll(timeout_ms=_POLL_MS).values():
                    for record in records:
                        sink(_to_message(record))
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, f"tail topic {target!r}") from exc
        finally:
            consumer.close()

    # -- replay ---------------------------------------------------------------------------------
    def _group_id(self, source: str, group: str | None) -> str:
        return group if group is not None else f"{self.replay_group}.{source}"

    def _replay_for(self, source: str, group_id: str) -> _Replay:
        replay = self._replays.get((group_id, source))
        if replay is None:
            self._partitions(source)  # NotFoundError for unknown topics
            timeouts = self.group_timeouts
            consumer = self._consumer(
                group_id=group_id,
                auto_offset_reset="earliest",
                session_timeout_ms=timeouts.session_timeout_ms,
                heartbeat_interval_ms=timeouts.heartbeat_interval_ms,
                max_poll_interval_ms=timeouts.max_poll_interval_ms,
                request_timeout_ms=max(int(self.timeout_s * 1000), timeouts.session_timeout_ms + 1000),
            )
            consumer.subscribe([source])
            replay = self._replays[(group_id, source)] = _Replay(consumer)
        return replay

    def consume_for_replay(self, source: str, limit: int, *, group: str | None = None) -> list[BrokerMessage]:
        """Take up to `limit` records of topic `source` in the replay group (``<replay_group>.<source>``)
        or, given `group`, in that consumer group (e.g. a design's group, whose committed offsets and
        lag then show this consumer's progress); settle each with `settle`. Returns fewer (or none)
        when the group's position reaches the end of the topic."""
        group_id = self._group_id(source, group)
        replay = self._replay_for(source, group_id)
        out = replay.again[:limit]
        del replay.again[: len(out)]
        consumer = replay.consumer
        join_deadline = time.monotonic() + self.group_timeouts.session_timeout_ms / 1000 * 3 + self.timeout_s
        fetch_deadline = join_deadline  # after it, the end offsets are trusted without a fetch answer
        try:
            while len(out) < limit:
                batch = consumer.poll(timeout_ms=_POLL_MS, max_records=limit - len(out))
                for records in batch.values():
                    for record in records:
                        tp = TopicPartition(record.topic, record.partition)
                        pending = replay.pending.setdefault(tp, set())
                        released = replay.released.get(tp)
                        if released:  # read again after a give-back: commits may pass it once settled
                            released.discard(record.offset)
                        skip = replay.skip.get(tp)
                        if skip and record.offset in skip:
                            skip.discard(record.offset)  # settled before the rewind: not again
                            continue
                        if record.offset in pending:
                            continue  # read again after a rebalance, but still held by the caller
                        pending.add(record.offset)
                        out.append(_to_message(record, group_id))
                if batch:
                    continue
                assigned = consumer.assignment()
                if assigned:
                    if _at_end(consumer, assigned, time.monotonic() > fetch_deadline):
                        break
                elif time.monotonic() > join_deadline:
                    raise UnreachableError(
                        f"the consumer of topic {source!r} in group {group_id!r} got no partitions",
                        "another member of the group may hold them all; retry later",
                    )
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, f"take records from topic {source!r}") from exc
        return out

    def _taken(self, message: BrokerMessage) -> tuple[_Replay, TopicPartition]:
        """The consumer that took `message` and its partition; `ConflictError` when it is not held."""
        handle = message.handle
        group_id = handle[3] if isinstance(handle, tuple) and len(handle) == 4 else None
        replay = self._replays.get((str(group_id), message.source)) if group_id is not None else None
        if replay is None or message.partition is None or message.offset is None:
            raise ConflictError(
                f"cannot settle a record of topic {message.source!r}: it was not taken by consume_for_replay",
                "take records with consume_for_replay first",
            )
        tp = TopicPartition(message.source, message.partition)
        if message.offset not in replay.pending.get(tp, set()):
            raise ConflictError(f"record {message.offset} of {tp.topic}[{tp.partition}] is already settled")
        return replay, tp

    @staticmethod
    def _mark(replay: _Replay, tp: TopicPartition, message: BrokerMessage, ack: bool, requeue: bool) -> bool:
        """Settle `message` in the bookkeeping; True when an offset may be committed for `tp`."""
        assert message.offset is not None
        if not ack and requeue:
            message.redelivered = True
            replay.again.append(message)
            return False
        replay.pending[tp].discard(message.offset)
        replay.settled.setdefault(tp, set()).add(message.offset)
        return True

    def _commit(self, replay: _Replay, tps: Iterable[TopicPartition]) -> None:
        """Commit, for each of `tps`, past every settled record below the lowest record still out
        (never past an unsettled one): one request for all of them."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        done: dict[TopicPartition, list[int]] = {}
        for tp in tps:
            pending, settled = replay.pending.get(tp, set()), replay.settled.get(tp, set())
            if not settled:
                continue
            out = pending | replay.released.get(tp, set())
            floor = min(out) if out else max(settled) + 1
            below = [o for o in settled if o < floor]
            if below:
                done[tp] = below
                offsets[tp] = OffsetAndMetadata(max(below) + 1, "", -1)
        if not offsets:
            return
        try:
            replay.consumer.commit(offsets)
        except Exception as exc:
            where = ", ".join(f"{tp.topic}[{tp.partition}] to {m.offset}" for tp, m in offsets.items())
            raise self._error(exc, f"commit the offsets of {where}") from exc
        for tp, below in done.items():
            replay.settled[tp].difference_update(below)

    def settle(self, message: BrokerMessage, *, ack: bool, requeue: bool = True) -> None:
        replay, tp = self._taken(message)
        if self._mark(replay, tp, message, ack, requeue):
            self._commit(replay, [tp])

    def settle_many(self, messages: list[BrokerMessage], *, ack: bool, requeue: bool = True) -> None:
        """`settle` for several records with one offset commit per consumer (instead of one per record).
        All are checked first: when one cannot be settled (`ConflictError`), none is."""
        taken = [self._taken(message) for message in messages]
        seen: set[tuple[str, int, int]] = set()
        for message, (_replay, tp) in zip(messages, taken, strict=True):
            position = (tp.topic, tp.partition, int(message.offset or 0))
            if position in seen:
                raise ConflictError(f"record {position[2]} of {tp.topic}[{tp.partition}] is listed twice")
            seen.add(position)
        touched: dict[int, tuple[_Replay, set[TopicPartition]]] = {}
        for message, (replay, tp) in zip(messages, taken, strict=True):
            if self._mark(replay, tp, message, ack, requeue):
                touched.setdefault(id(replay), (replay, set()))[1].add(tp)
        for replay, tps in touched.values():
            self._commit(replay, tps)

    def release_pending(self, source: str, *, group: str | None = None) -> int:
        """Give back every record of topic `source` taken for replay (in the replay group, or `group`)
        and not settled yet, also those requeued by ``settle(ack=False)``: the backend forgets them
        and moves the consumer back to the first of them in each partition, so the next
        `consume_for_replay` reads them again, each once (records settled meanwhile are not handed out
        again and their offsets are committed as before). Use it when the caller drops what it holds
        (a lost link, a cancel, the end of a job): otherwise they stay pending and no commit passes
        them for the rest of the consumer's life. No commit passes a given-back record either until
        it was read again and settled. No request is made: a partition the consumer no longer holds
        is read by its next owner from the committed offset, which is below every record given back.
        Returns how many records were given back."""
        replay = self._replays.get((self._group_id(source, group), source))
        if replay is None:
            return 0
        replay.again.clear()
        count = 0
        try:
            assigned = replay.consumer.assignment()
        except Exception:  # a closed consumer holds nothing
            assigned = set()
        for tp, offsets in replay.pending.items():
            if not offsets:
                continue
            count += len(offsets)
            released = replay.released.setdefault(tp, set())
            released.update(offsets)
            offsets.clear()
            replay.skip.setdefault(tp, set()).update(replay.settled.get(tp, ()))
            if tp in assigned:
                with contextlib.suppress(Exception):  # revoked meanwhile: its next owner reads it
                    replay.consumer.seek(tp, min(released))
        return count

    # -- purge, offsets, stats ------------------------------------------------------------------
    def purge(self, source: str) -> int:
        """Delete every record of topic `source` (DeleteRecords up to the end offsets); returns how many
        were deleted. `UnsupportedError` when the broker cannot delete records."""
        tps = self._partitions(source)
        try:
            starts = kadmin.list_offsets(self.admin, tps, OffsetSpec.EARLIEST)
            ends = kadmin.end_offsets(self.admin, tps)
        except Exception as exc:
            raise self._error(exc, f"read the offsets of topic {source!r}") from exc
        todo = {tp: end for tp, end in ends.items() if end > starts.get(tp, 0)}
        if not todo:
            return 0
        try:
            self.admin.delete_records(todo)
        except Exception as exc:
            error = self._error(exc, f"purge topic {source!r}")
            if isinstance(error, UnreachableError | UnsupportedError) and self._still_reachable():
                raise UnsupportedError(
                    f"cannot purge topic {source!r}: the broker at {self.bootstrap} does not delete "
                    "records (DeleteRecords)",
                    "recreate the topic instead: delete it and create it with the same partitions "
                    "and configs (its records are lost)",
                ) from exc
            raise error from exc
        return sum(end - starts.get(tp, 0) for tp, end in todo.items())

    def _still_reachable(self) -> bool:
        try:
            self.admin.list_topics()
        except Exception:
            return False
        return True

    def reset_offsets(
        self,
        group: str,
        topic: str,
        to: str | int | None = None,
        *,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> dict[int, int]:
        """Move `group`'s committed offsets on `topic` (one `partition` or all): `to` is "earliest",
        "latest" or an offset (clamped to each partition's range); or give `timestamp_ms` for the first
        record at or after it. `ConflictError` while the group has members. Returns partition → offset."""
        if to is not None and timestamp_ms is not None:
            raise ValueError("reset to an offset or to a timestamp, not both")
        spec: Any
        if timestamp_ms is not None:
            spec = None  # resolved below by reading (brokers' time indexes differ)
        elif to is None or to == "earliest":
            spec = OffsetSpec.EARLIEST
        elif to == "latest":
            spec = OffsetSpec.LATEST
        elif isinstance(to, int) and not isinstance(to, bool):
            spec = to
        else:
            raise ValueError(f"reset offsets to 'earliest', 'latest', an offset or a timestamp, not {to!r}")
        tps = self._partitions(topic, partition)
        try:
            info = kadmin.describe_groups(self.admin, [group]).get(group)
        except Exception as exc:
            raise self._error(exc, f"describe consumer group {group!r}") from exc
        if info is not None and info.members:
            raise ConflictError(
                f"cannot reset the offsets of consumer group {group!r}: it has {info.members} active "
                f"member{'s' if info.members != 1 else ''}",
                "stop the group's consumers first (Kafka only moves the offsets of an empty group)",
            )
        try:
            if spec is None and timestamp_ms is not None:
                specs: dict[TopicPartition, Any] = dict(self._offsets_at(tps, timestamp_ms))
            else:
                specs = {tp: spec for tp in tps}
            answer = self.admin.reset_group_offsets(group, specs)
        except Exception as exc:
            raise self._error(exc, f"reset the offsets of group {group!r} on topic {topic!r}") from exc
        for tp, result in answer.items():
            error = result["error"]
            if error is not None and error.errno not in (None, 0):
                where = f"{tp.topic}[{tp.partition}]"
                raise self._error(error(), f"reset the offset of group {group!r} on {where}")
        return {tp.partition: int(result["offset"]) for tp, result in sorted(answer.items())}

    def group_lag(self, group: str) -> dict[TopicPartition, int]:
        """Lag per partition of the topics `group` has committed offsets for or subscribes to."""
        try:
            committed = kadmin.committed_offsets(self.admin, group)
            info = kadmin.describe_groups(self.admin, [group]).get(group)
            topics = {tp.topic for tp in committed} | (info.topics if info else set())
            infos = kadmin.describe_topics(self.admin, sorted(topics)) if topics else {}
            ends = kadmin.end_offsets(self.admin, kadmin.partitions_of(infos))
        except Exception as exc:
            raise self._error(exc, f"compute the lag of group {group!r}") from exc
        return kadmin.group_lag(committed, ends, topics)

    def stats(self) -> Snapshot:
        try:
            infos = kadmin.describe_topics(self.admin)
            ends = kadmin.end_offsets(self.admin, kadmin.partitions_of(infos))
            objects = []
            for name, info in infos.items():
                total = sum(end for tp, end in ends.items() if tp.topic == name)
                objects.append(
                    ObjectStats(
                        "topic",
                        name,
                        counters={"produced": total},
                        gauges={"end_offset": float(total), "partitions": float(info.partitions)},
                    )
                )
            groups = kadmin.list_group_ids(self.admin)
            described = kadmin.describe_groups(self.admin, groups)
            for gid in groups:
                committed = kadmin.committed_offsets(self.admin, gid)
                info_g = described.get(gid)
                topics = {tp.topic for tp in committed} | (info_g.topics if info_g else set())
                lag = kadmin.group_lag(committed, ends, topics)
                gauges = {f"lag.{tp.topic}.{tp.partition}": float(v) for tp, v in sorted(lag.items())}
                gauges["lag"] = float(sum(lag.values()))
                gauges["consumers"] = float(info_g.members if info_g else 0)
                objects.append(ObjectStats("consumer_group", gid, gauges=gauges))
        except Exception as exc:
            raise self._error(exc, "read statistics") from exc
        return Snapshot(timestamp=time.time(), objects=tuple(objects))
