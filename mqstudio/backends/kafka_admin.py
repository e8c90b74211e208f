"""Kafka admin helpers for `mqstudio.backends.kafka`: error mapping, topology read, plan steps, offsets.

Owns: `translate_error` (kafka-python exceptions → `BackendError`s with actionable messages),
`read_topology` (topics with partitions, replication factor and configs; consumer groups with the
topics they subscribe to or have committed offsets for), `describe_groups` (state, members and their
subscriptions), `run_step` (create/delete topics, add partitions), and the offset queries behind
stats, lag and offset resets. Only this module and `kafka.py` may import kafka-python; must not import
Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.

Broker differences handled here (found against Tansu 0.6, a Kafka-compatible broker):

* DescribeGroups: Tansu answers with every authorized-operation bit set, which kafka-python's
  ``describe_groups`` cannot parse (``ValueError``). We then send the request ourselves without asking
  for authorized operations. Tansu also sends no member metadata, so a group's topics come from its
  committed offsets as well as from its members' subscriptions.
* DescribeConfigs: Tansu returns only the configs given at creation and labels them all
  ``DEFAULT_CONFIG``; Kafka returns every config (dozens) and labels overrides ``DYNAMIC_TOPIC_CONFIG``.
  We keep the overrides when the broker marks any, else — when the broker lists only a handful of
  keys, i.e. only what was set — all of them; a broker that cannot describe configs gives no configs.
* ListOffsets by timestamp: Tansu answers offset 0 for any timestamp, so `KafkaBackend` treats the
  answer as a lower bound and finds the first record stamped at or after the time by reading.
* CreatePartitions is not implemented by Tansu (``UnsupportedError``); DeleteRecords is advertised but
  the broker drops the connection (see `KafkaBackend.purge`).
* Tansu's end offset after a multi-record batch is the batch's base offset + 1, so end offsets (and the
  lag computed from them) undercount records produced in batches by other clients. Records published
  through `KafkaBackend.publish` are sent one per request and counted exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import kafka.errors as kerrors
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec

from mqstudio.backends.base import (
    AuthenticationError,
    BackendError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
    UnsupportedError,
)
from mqstudio.core.model import ConsumerGroup, Topic, Topology
from mqstudio.core.plan import Step, StepKind

#: A broker listing at most this many configs for a topic lists only the ones that were set (Tansu);
#: Kafka always lists every topic config (30+), defaults included.
_FEW_CONFIGS = 12
_OVERRIDE_SOURCES = {"DYNAMIC_TOPIC_CONFIG", "TOPIC_CONFIG"}


# -- errors -----------------------------------------------------------------------------------------
def _reason(exc: BaseException) -> str:
    description = getattr(exc, "description", None)
    if isinstance(description, str) and description:
        return description.rstrip(".")
    text = str(exc)
    return text.split(": ", 1)[-1] if text else type(exc).__name__


def translate_error(exc: BaseException, action: str, bootstrap: str = "") -> BackendError:
    """A `BackendError` saying what failed (``cannot <action>``), why, and what to do about it."""
    if isinstance(exc, BackendError):
        return exc
    where = f" at {bootstrap}" if bootstrap else ""
    reason = _reason(exc)
    message = f"cannot {action}: {reason}"
    if isinstance(exc, kerrors.TopicAlreadyExistsError):
        return ConflictError(message, "choose another name, or plan against the live topology")
    if isinstance(exc, kerrors.UnknownTopicOrPartitionError | kerrors.UnknownTopicIdError):
        return NotFoundError(message, "refresh the topology: the topic or partition does not exist")
    if isinstance(exc, kerrors.GroupIdNotFoundError):
        return NotFoundError(message, "refresh the topology: the consumer group does not exist")
    if isinstance(exc, kerrors.SaslAuthenticationFailedError | kerrors.UnsupportedSaslMechanismError):
        return AuthenticationError(message, "check the SASL mechanism, user name and password")
    if isinstance(exc, kerrors.AuthorizationError):
        return PermissionDeniedError(message, "ask the cluster's admin for an ACL that allows it")
    if isinstance(exc, kerrors.UnsupportedVersionError):
        return UnsupportedError(
            f"cannot {action}: the Kafka broker{where} does not support this request", reason
        )
    if isinstance(exc, kerrors.InvalidPartitionsError):
        return ConflictError(message, "Kafka can only add partitions to a topic, never remove them")
    if isinstance(exc, kerrors.InvalidReplicationFactorError):
        return BackendError(message, "the replication factor cannot exceed the number of brokers")
    if isinstance(
        exc,
        kerrors.NonEmptyGroupError
        | kerrors.RebalanceInProgressError
        | kerrors.UnknownMemberIdError
        | kerrors.IllegalGenerationError
        | kerrors.CommitFailedError
        | kerrors.GroupSubscribedToTopicError,
    ):
        return ConflictError(message, "the group's members changed meanwhile; stop its consumers and retry")
    if isinstance(exc, kerrors.TopicDeletionDisabledError | kerrors.PolicyViolationError):
        return PermissionDeniedError(message, "the broker's configuration forbids it")
    if isinstance(
        exc,
        kerrors.KafkaConnectionError
        | kerrors.KafkaTimeoutError
        | kerrors.NodeNotReadyError
        | kerrors.RequestTimedOutError
        | OSError,
    ):
        return UnreachableError(
            f"cannot {action}: no answer from Kafka{where} ({reason})",
            "check that the broker runs and that its advertised listener is reachable from here",
        )
    if isinstance(exc, kerrors.InvalidTopicError):
        return BackendError(message, "topic names use letters, digits, '.', '_' and '-' (at most 249)")
    return BackendError(message)


# -- groups -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class GroupInfo:
    """What DescribeGroups says about one consumer group."""

    name: str
    state: str = ""
    members: int = 0
    topics: set[str] = field(default_factory=set)  # the members' subscriptions, when the broker sends them


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _subscribed_topics(metadata: Any) -> set[str]:
    if isinstance(metadata, bytes | bytearray):
        if not metadata:
            return set()
        try:
            from kafka.protocol.consumer.metadata import ConsumerProtocolSubscription

            metadata = ConsumerProtocolSubscription.decode(bytes(metadata))
        except Exception:  # undecodable metadata of a non-consumer protocol: no topics
            return set()
    topics = _get(metadata, "topics") or []
    return {t for t in topics if isinstance(t, str)}


def _group_info(group: Any) -> GroupInfo:
    members = list(_get(group, "members") or [])
    topics: set[str] = set()
    for member in members:
        topics |= _subscribed_topics(_get(member, "member_metadata"))
    return GroupInfo(
        name=str(_get(group, "group_id", "")),
        state=str(_get(group, "group_state", "") or ""),
        members=len(members),
        topics=topics,
    )


def describe_groups(admin: KafkaAdminClient, group_ids: Iterable[str]) -> dict[str, GroupInfo]:
    """State, member count and subscriptions of each group (see the module docstring for Tansu)."""
    ids = list(group_ids)
    if not ids:
        return {}
    try:
        described = admin.describe_groups(ids)
        return {gid: _group_info({**info, "group_id": gid}) for gid, info in described.items()}
    except ValueError:
        pass  # unparseable authorized operations (Tansu): ask again without them
    from kafka.protocol.admin import DescribeGroupsRequest

    async def describe(gid: str) -> Any:
        coordinator = await admin._find_coordinator_id(gid)
        request = DescribeGroupsRequest(groups=[gid], include_authorized_operations=False)
        return await admin._manager.send(request, node_id=coordinator)

    result = {}
    for gid in ids:
        response = admin._manager.run(describe, gid)
        for group in response.groups:
            result[group.group_id] = _group_info(group)
    return result


def list_group_ids(admin: KafkaAdminClient) -> list[str]:
    return sorted({str(g["group_id"]) for g in admin.list_groups()})


def committed_offsets(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets (partitions without a commit are left out)."""
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return {tp: int(m.offset) for tp, m in offsets.items() if m.offset is not None and m.offset >= 0}


# -- topics and offsets -----------------------------------------------------------------------------
@dataclass(slots=True)
class TopicInfo:
    name: str
    partitions: int
    replication_factor: int


def describe_topics(admin: KafkaAdminClient, names: Iterable[str] | None = None) -> dict[str, TopicInfo]:
    """Partition count and replication factor of each (non-internal) topic, by name."""
    wanted = list(names) if names is not None else admin.list_topics()
    if not wanted:
        return {}
    result = {}
    for entry in admin.describe_topics(wanted):
        if entry.get("is_internal") or entry.get("error_code", 0):
            continue
        partitions = entry.get("partitions") or []
        replicas = len(partitions[0].get("replica_nodes") or []) if partitions else 1
        result[entry["name"]] = TopicInfo(entry["name"], len(partitions), max(replicas, 1))
    return dict(sorted(result.items()))


def topic_configs(admin: KafkaAdminClient, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each topic's configs that differ from the broker's defaults (empty when it cannot say)."""
    names = list(names)
    if not names:
        return {}
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    except (kerrors.KafkaError, ValueError, KeyError):
        return {}  # the broker cannot describe configs: the plan then just sees no configs
    result: dict[str, dict[str, str]] = {}
    for name in names:
        entries: dict[str, dict[str, Any]] = described.get(name) or {}
        overrides = {k: v for k, v in entries.items() if v.get("config_source") in _OVERRIDE_SOURCES}
        if not overrides and len(entries) <= _FEW_CONFIGS:
            overrides = entries  # the broker lists only what was set (Tansu labels it DEFAULT_CONFIG)
        result[name] = {k: str(v.get("value")) for k, v in overrides.items() if v.get("value") is not None}
    return result


def partitions_of(infos: dict[str, TopicInfo]) -> list[TopicPartition]:
    return [TopicPartition(name, p) for name, info in infos.items() for p in range(info.partitions)]


def list_offsets(
    admin: KafkaAdminClient, tps: Iterable[TopicPartition], spec: Any
) -> dict[TopicPartition, int]:
    tps = list(tps)
    if not tps:
        return {}
    answer = admin.list_partition_offsets({tp: spec for tp in tps})
    return {tp: int(value.offset) for tp, value in answer.items()}


def end_offsets(admin: KafkaAdminClient, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    return list_offsets(admin, tps, OffsetSpec.LATEST)


def group_lag(
    committed: dict[TopicPartition, int], ends: dict[TopicPartition, int], topics: Iterable[str]
) -> dict[TopicPartition, int]:
    """Lag per partition of the group's topics: end offset - committed offset (no commit: whole log)."""
    wanted = set(topics)
    return {tp: max(0, end - committed.get(tp, 0)) for tp, end in ends.items() if tp.topic in wanted}


# -- topology ---------------------------------------------------------------------------------------
def read_topology(admin: KafkaAdminClient) -> Topology:
    """Topics and consumer groups as a core `Topology` (internal topics such as ``__consumer_offsets``
    left out); a group's topics are those its members subscribe to or it has committed offsets for."""
    topology = Topology()
    infos = describe_topics(admin)
    configs = topic_configs(admin, infos)
    ids: dict[str, str] = {}
    for name, info in infos.items():
        topic = Topic(name, info.partitions, info.replication_factor, configs.get(name, {}))
        topology.add_node(topic)
        ids[name] = topic.id
    groups = list_group_ids(admin)
    described = describe_groups(admin, groups)
    for gid in groups:
        topics = {tp.topic for tp in committed_offsets(admin, gid)}
        topics |= described[gid].topics if gid in described else set()
        topology.add_node(ConsumerGroup(gid, [ids[t] for t in sorted(topics) if t in ids]))
    return topology


def topics_only(desired: Topology) -> tuple[Topology, list[str]]:
    """A copy of the design's topics and consumer groups, and a warning per kind left out (Kafka has
    no exchanges, queues or bindings)."""
    copy = Topology()
    for topic in desired.topics:
        copy.add_node(Topic(topic.name, topic.partitions, topic.replication_factor, dict(topic.configs)))
    warnings = []
    for what, items in (
        ("exchanges", desired.exchanges),
        ("queues", desired.queues),
        ("bindings", desired.bindings),
    ):
        if items:
            warnings.append(f"the design's {len(items)} {what} are ignored: Kafka has no {what}")
    return copy, warnings


# -- apply ------------------------------------------------------------------------------------------
def create_topic(admin: KafkaAdminClient, topic: Topic) -> None:
    spec: dict[str, Any] = {
        "num_partitions": topic.partitions,
        "replication_factor": topic.replication_factor,
    }
    if topic.configs:
        spec["configs"] = dict(topic.configs)
    admin.create_topics({topic.name: spec})


def run_step(admin: KafkaAdminClient, step: Step) -> None:
    """Carry out one plan step (kafka-python exceptions propagate; the caller translates them)."""
    obj = step.obj
    if not isinstance(obj, Topic):
        raise UnsupportedError(
            f"cannot {step.describe()}: Kafka has no exchanges, queues or bindings",
            "remove them from the design, or apply it to a RabbitMQ connection",
        )
    if step.kind == StepKind.CREATE_TOPIC:
        create_topic(admin, obj)
    elif step.kind == StepKind.ALTER_TOPIC_PARTITIONS:
        current = describe_topics(admin, [obj.name]).get(obj.name)
        if current is None:
            raise NotFoundError(f"cannot add partitions to topic {obj.name!r}: it does not exist")
        if obj.partitions < current.partitions:
            raise ConflictError(
                f"cannot shrink topic {obj.name!r} from {current.partitions} to {obj.partitions} partitions",
                "Kafka can only add partitions; delete and recreate the topic to shrink it (losing its data)",
            )
        if obj.partitions > current.partitions:
            admin.create_partitions({obj.name: obj.partitions})
    elif step.kind == StepKind.DELETE_TOPIC:
        admin.delete_topics([obj.name])
    else:
        raise UnsupportedError(f"cannot {step.describe()}: not a Kafka operation")


def group_partitions(tps: Iterable[TopicPartition]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in tps:
        by_topic[tp.topic].append(tp.partition)
    return {topic: sorted(parts) for topic, parts in by_topic.items()}
