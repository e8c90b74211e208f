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
  (``<replay_group>.<topic>``, auto-commit off) takes records; ``settle(ack=True)`` commits, per
  partition, the offset after the highest record below which every record taken has been settled, so a
  record is never skipped by a commit, and a crash before the commit delivers it (and any later,
  already-settled ones) again. ``settle(ack=False, requeue=True)`` hands the record out again on the
  next `consume_for_replay` (flagged ``redelivered``); ``requeue=False`` settles it without replay
  (Kafka cannot drop one record: it is skipped by committing past it).
* `publish` refuses unknown topics (`NotFoundError`) rather than letting the broker auto-create them,
  and waits for the broker's acknowledgement, returning the partition and offset.
* `purge` deletes records up to each partition's end offset (DeleteRecords); brokers without it
  (Tansu) raise `UnsupportedError` naming the alternative: recreate the topic.
* `stats` reports per topic ``end_offset`` (gauge) and ``produced`` (counter), both the sum of the
  partitions' end offsets, and per consumer group ``lag`` (gauge: total) plus
  ``lag.<topic>.<partition>`` per partition and ``consumers`` (members).
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


def _to_message(record: Any) -> BrokerMessage:
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
        handle=(record.topic, record.partition, record.offset),
    )


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
        self._replays: dict[str, _Replay] = {}
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

    def publish(self, message: OutgoingMessage) -> PublishResult:
        try:
            self._known_topic(message.target)
            if self._producer is None:
                timeout_ms = max(int(self.timeout_s * 1000), 1000)
                self._producer = KafkaProducer(
                    **self._config(), acks="all", max_block_ms=timeout_ms, linger_ms=0
                )
            future = self._producer.send(
                message.target,
                value=message.body,
                key=message.key.encode() if message.key else None,
                headers=[(name, _encode_header(value)) for name, value in message.headers.items()],
                partition=message.partition,
                timestamp_ms=message.properties.get("timestamp_ms"),
            )
            meta = future.get(timeout=self.timeout_s * 2)
        except ValueError as exc:  # kafka-python: unknown partition
            raise NotFoundError(f"cannot publish to topic {message.target!r}: {exc}") from exc
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, f"publish to topic {message.target!r}") from exc
        return PublishResult(confirmed=True, partition=meta.partition, offset=meta.offset)

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
    def _replay_for(self, source: str) -> _Replay:
        replay = self._replays.get(source)
        if replay is None:
            self._partitions(source)  # NotFoundError for unknown topics
            timeouts = self.group_timeouts
            consumer = self._consumer(
                group_id=f"{self.replay_group}.{source}",
                auto_offset_reset="earliest",
                session_timeout_ms=timeouts.session_timeout_ms,
                heartbeat_interval_ms=timeouts.heartbeat_interval_ms,
                max_poll_interval_ms=timeouts.max_poll_interval_ms,
                request_timeout_ms=max(int(self.timeout_s * 1000), timeouts.session_timeout_ms + 1000),
            )
            consumer.subscribe([source])
            replay = self._replays[source] = _Replay(consumer)
        return replay

    def consume_for_replay(self, source: str, limit: int) -> list[BrokerMessage]:
        """Take up to `limit` records of topic `source` in the replay group; settle each with `settle`.
        Returns fewer (or none) when the group's committed position reaches the end of the topic."""
        replay = self._replay_for(source)
        out = replay.again[:limit]
        del replay.again[: len(out)]
        consumer = replay.consumer
        join_deadline = time.monotonic() + self.group_timeouts.session_timeout_ms / 1000 * 3 + self.timeout_s
        try:
            while len(out) < limit:
                batch = consumer.poll(timeout_ms=_POLL_MS, max_records=limit - len(out))
                for records in batch.values():
                    for record in records:
                        message = _to_message(record)
                        tp = TopicPartition(record.topic, record.partition)
                        replay.pending.setdefault(tp, set()).add(record.offset)
                        out.append(message)
                if batch:
                    continue
                assigned = consumer.assignment()
                if assigned:
                    ends = consumer.end_offsets(list(assigned))
                    if all(consumer.position(tp) >= ends[tp] for tp in assigned):
                        break
                elif time.monotonic() > join_deadline:
                    raise UnreachableError(
                        f"the replay consumer of topic {source!r} got no partitions",
                        f"another member of group {self.replay_group}.{source!r} may hold them; retry later",
                    )
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, f"take records from topic {source!r}") from exc
        return out

    def settle(self, message: BrokerMessage, *, ack: bool, requeue: bool = True) -> None:
        replay = self._replays.get(message.source)
        if replay is None or message.partition is None or message.offset is None:
            raise ConflictError(
                f"cannot settle a record of topic {message.source!r}: it was not taken by consume_for_replay",
                "take records with consume_for_replay first",
            )
        tp = TopicPartition(message.source, message.partition)
        pending = replay.pending.get(tp, set())
        if message.offset not in pending:
            raise ConflictError(f"record {message.offset} of {tp.topic}[{tp.partition}] is already settled")
        if not ack and requeue:
            message.redelivered = True
            replay.again.append(message)
            return
        pending.discard(message.offset)
        settled = replay.settled.setdefault(tp, set())
        settled.add(message.offset)
        # Commit past every settled record below the lowest record still out (never past an unsettled one).
        floor = min(pending) if pending else max(settled) + 1
        done = [o for o in settled if o < floor]
        if not done:
            return
        try:
            replay.consumer.commit({tp: OffsetAndMetadata(max(done) + 1, "", -1)})
        except Exception as exc:
            raise self._error(exc, f"commit offset {max(done) + 1} of {tp.topic}[{tp.partition}]") from exc
        settled.difference_update(done)

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
