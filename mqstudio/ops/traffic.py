"""The traffic generator: simulated producers and consumers that drive real messages through a broker.

Owns: `ProducerRunner` (publishes at N msg/s, token bucket, on its own thread), `ConsumerRunner`
(consumes with prefetch, a processing delay, a failure rate — nack without requeue, so the queue's
dead-letter exchange takes the message — and a requeue rate), `TrafficController` (start/stop per
design node and all at once, stats per runner), `PayloadTemplate`, `RoutingKeys`, `TokenBucket`,
`RunnerStats` and `EmbeddedBroker` (the efficient in-process path).

Two ways to reach a broker:

* the embedded engine, through its host thread (`EmbeddedBroker(host, vhost)`): a producer publishes
  a whole batch of messages in ONE ``host.call``; a consumer opens an engine `Session` (basic.consume
  with the prefetch), and each ``host.call`` settles the previous batch and polls the next one. No
  AMQP framing, no per-message thread hop: 5,000 msg/s is sustained (see ``benchmarks/tail.py``);
* any `Backend` (RabbitMQ, Kafka): a producer calls ``backend.publish`` per message; a consumer uses
  ``consume_for_replay(source, prefetch)`` in batches and ``settle`` per message — the `Backend`
  protocol has no consume stream, and these two give manual acknowledgement on every backend. On
  Kafka, a consumer attached to a design's consumer group consumes in that group (its name), so the
  group's committed offsets and lag show the consumer's progress.
  A backend is thread-confined: each runner gets its own (``connect()`` and ``close()`` run on the
  runner's thread when `own_backend` is set, as `TrafficController` does).

Kafka has no broker dead-lettering: a consumer of a topic whose design also has a dead-letter topic
(``<topic>.DLT``, ``<topic>-dlt`` or ``<topic>.dlq``, the names `ops.deadletters` recognises) publishes
each record it fails there, as Spring Kafka's ``DeadLetterPublishingRecoverer`` does (the record's key,
body and headers plus ``kafka_dlt-original-topic/-partition/-offset/-timestamp`` and
``kafka_dlt-exception-*``), and settles the original only after the broker acknowledged the copy; so
the dead-letter panel and replay know where each came from. Without one, a failed record is skipped
(committed past), which is all Kafka can do.

Threads: every runner owns one thread, started by `start()` and always joined by `stop()`/`join()`.
Stats are read under a lock and copied (`RunnerStats` snapshots), never shared mutable state.
Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from mqstudio.backends.base import (
    Backend,
    BackendError,
    BackendKind,
    BrokerMessage,
    OutgoingMessage,
    PublishResult,
)
from mqstudio.backends.embedded import BrokerHost
from mqstudio.broker.broker import Broker
from mqstudio.broker.errors import BrokerError
from mqstudio.broker.message import Properties
from mqstudio.broker.session import Session
from mqstudio.core.model import (
    DEFAULT_VHOST,
    Consumer,
    ConsumerGroup,
    Exchange,
    Producer,
    Queue,
    Topic,
    Topology,
)

__all__ = [
    "DEFAULT_PAYLOAD",
    "ConsumerRunner",
    "EmbeddedBroker",
    "PayloadTemplate",
    "ProducerRunner",
    "RoutingKeys",
    "RunnerStats",
    "TokenBucket",
    "TrafficController",
    "TrafficError",
    "TrafficOptions",
    "dead_letter_copy",
    "dead_letter_topic_for",
    "dumps_stats",
]

log = logging.getLogger(__name__)

#: The payload a producer sends unless told otherwise.
DEFAULT_PAYLOAD = '{"id": {{counter}}, "uuid": "{{uuid}}", "at": "{{now}}", "amount": {{rand:1-100}}}'
#: Most messages one engine call publishes (bounds the time the engine thread is held).
MAX_BATCH = 500
#: How long an idle consumer waits before polling again (seconds).
IDLE_POLL = 0.01
CALL_TIMEOUT = 30.0
#: Dead-letter topic names for a topic T, in the order they are looked for (as `ops.deadletters`).
DLT_SUFFIXES = (".DLT", "-dlt", ".dlq")
#: What a simulated failure says in a dead-letter topic's ``kafka_dlt-exception-*`` headers.
FAILURE_FQCN = "mqstudio.traffic.SimulatedFailure"

PublishFn = Callable[[OutgoingMessage], object]


class TrafficError(Exception):
    """A runner cannot start: its node has no target/source, or the target is not in the design."""


@dataclass(frozen=True, slots=True)
class EmbeddedBroker:
    """The in-process path: the engine's host (an `EmbeddedBrokerThread`) and the vhost to use."""

    host: BrokerHost
    vhost: str = DEFAULT_VHOST


# -- payloads and keys ------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*(counter|uuid|now|rand:\s*(-?\d+)\s*-\s*(-?\d+))\s*\}\}")


class PayloadTemplate:
    """A body template: ``{{counter}}`` (1, 2, …), ``{{uuid}}``, ``{{now}}`` (ISO 8601 UTC) and
    ``{{rand:1-100}}`` (an integer in the closed range) are replaced per message. Parsed once."""

    def __init__(self, template: str = DEFAULT_PAYLOAD, rng: random.Random | None = None) -> None:
        self.template = template
        self._rng = rng or random.Random()
        self._parts: list[str | tuple[str, int, int]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(template):
            self._parts.append(template[pos : match.start()])
            name = match.group(1)
            if name.startswith("rand"):
                low, high = int(match.group(2)), int(match.group(3))
                self._parts.append(("rand", min(low, high), max(low, high)))
            else:
                self._parts.append((name, 0, 0))
            pos = match.end()
        self._parts.append(template[pos:])

    def render(self, counter: int) -> bytes:
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name, low, high = part
            if name == "counter":
                out.append(str(counter))
            elif name == "uuid":
                out.append(str(uuid.uuid4()))
            elif name == "now":
                out.append(dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))
            else:
                out.append(str(self._rng.randint(low, high)))
        return "".join(out).encode()


class RoutingKeys:
    """Routing keys for successive messages: a list is used round-robin; a string is a pattern where
    ``{n}`` is the message counter and ``{rand}`` a random digit 0-9 (``order.{rand}`` → ``order.7``)."""

    def __init__(self, keys: Sequence[str] | str, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        if isinstance(keys, str):
            self._list: list[str] = []
            self._pattern: str | None = keys
            self._dynamic = "{n}" in keys or "{rand}" in keys
        else:
            self._list = list(keys) or [""]
            self._pattern = None
            self._dynamic = False

    def key(self, counter: int) -> str:
        if self._pattern is None:
            return self._list[(counter - 1) % len(self._list)]
        if not self._dynamic:
            return self._pattern
        return self._pattern.replace("{n}", str(counter)).replace("{rand}", str(self._rng.randint(0, 9)))


class TokenBucket:
    """`rate` tokens per second, holding at most `burst` (so a stall is not followed by a flood)."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = max(1.0, burst if burst is not None else rate / 10)
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()

    def take(self, most: int) -> int:
        """Take as many whole tokens as are available, at most `most`; never blocks."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        n = min(most, int(self._tokens))
        self._tokens -= n
        return n

    def wait_time(self) -> float:
        """Seconds until the next whole token."""
        return max(0.0, (1.0 - self._tokens) / self.rate)


# -- stats ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RunnerStats:
    """Counters of one runner. Producers: `sent` (accepted by the broker), `unroutable` (of those, routed
    nowhere), `failed` (refused or errors). Consumers: `received`, `acked`, `failed` (nacked without
    requeue: dead-lettered or dropped), `requeued`. `error` is the last error text."""

    name: str = ""
    sent: int = 0
    unroutable: int = 0
    failed: int = 0
    received: int = 0
    acked: int = 0
    requeued: int = 0
    error: str = ""
    running: bool = False
    started_at: float = 0.0
    stopped_at: float = 0.0

    def copy(self) -> RunnerStats:
        return replace(self)


# -- runners ----------------------------------------------------------------------------------------


class _Runner:
    """One thread, a stop event, stats under a lock."""

    kind = "runner"

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stats = RunnerStats(name)
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> RunnerStats:
        with self._lock:
            return self._stats.copy()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.kind} {self.name!r} was started already")
        with self._lock:
            self._stats.running = True
            self._stats.started_at = time.monotonic()
        name = f"mqstudio-{self.kind}-{self.name}"
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to end; returns at once (the GUI thread's way)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Ask the thread to end and join it; False when it did not end within `timeout`."""
        self.request_stop()
        return self.join(timeout)

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:
            log.debug("%s %s failed", self.kind, self.name, exc_info=True)
            with self._lock:
                self._stats.error = str(exc) or type(exc).__name__
        finally:
            with self._lock:
                self._stats.running = False
                self._stats.stopped_at = time.monotonic()

    def _run(self) -> None:
        raise NotImplementedError

    def _note_error(self, exc: BaseException) -> None:
        with self._lock:
            self._stats.error = str(exc) or type(exc).__name__


def _call(host: BrokerHost, fn: Callable[[Broker], Any]) -> Any:
    try:
        return host.call(fn).result(CALL_TIMEOUT)
    except BrokerError as exc:
        raise BackendError(exc.text) from exc


class ProducerRunner(_Runner):
    """Publishes to `target` (exchange, or Kafka topic) at `rate` msg/s until stopped.

    `sink` is an `EmbeddedBroker` (batched engine calls), a `Backend` (``publish`` per message; with
    `own_backend` it is connected and closed on the runner's thread) or a function taking an
    `OutgoingMessage`. Unset arguments come from `producer` (rate, routing key, headers, name, payload
    template — its "" meaning `DEFAULT_PAYLOAD` —, priority, TTL). `priority` and `ttl_ms` become the
    AMQP priority and expiration properties. `max_messages` stops
    the runner after that many messages (tests, one-off bursts).
    """

    kind = "producer"

    def __init__(  # noqa: PLR0917  (the documented positional order of the generator's settings)
        self,
        sink: EmbeddedBroker | Backend | PublishFn,
        producer: Producer | None = None,
        rate: float | None = None,
        payload_template: str | None = None,
        routing_keys: Sequence[str] | str | None = None,
        headers: dict[str, Any] | None = None,
        priority: int | None = None,
        ttl_ms: int | None = None,
        *,
        target: str | None = None,
        content_type: str = "application/json",
        persistent: bool = False,
        own_backend: bool = False,
        max_messages: int | None = None,
        seed: int | None = None,
    ) -> None:
        producer = producer or Producer("producer")
        super().__init__(producer.name)
        self.sink = sink
        self.target = target if target is not None else producer.target
        self.rate = float(rate if rate is not None else producer.rate)
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        rng = random.Random(seed)
        if payload_template is None:
            payload_template = producer.payload or DEFAULT_PAYLOAD
        self.payload = PayloadTemplate(payload_template, rng)
        self.keys = RoutingKeys(routing_keys if routing_keys is not None else producer.routing_key, rng)
        self.headers = dict(headers if headers is not None else producer.headers)
        self.priority = priority if priority is not None else producer.priority
        self.ttl_ms = ttl_ms if ttl_ms is not None else producer.ttl_ms
        self.content_type = content_type
        self.persistent = persistent
        self.own_backend = own_backend
        self.max_messages = max_messages
        self._counter = itertools.count(1)
        self._made = 0

    def make_messages(self, n: int) -> list[OutgoingMessage]:
        properties: dict[str, Any] = {"content_type": self.content_type, "app_id": "mqstudio-traffic"}
        if self.priority is not None:
            properties["priority"] = self.priority
        if self.ttl_ms is not None:
            properties["expiration"] = str(self.ttl_ms)
        if self.persistent:
            properties["delivery_mode"] = 2
        out = []
        for _ in range(n):
            counter = next(self._counter)
            props = dict(properties)
            props["message_id"] = f"{self.name}-{counter}"
            out.append(
                OutgoingMessage(
                    self.target,
                    self.payload.render(counter),
                    self.keys.key(counter),
                    headers=dict(self.headers),
                    properties=props,
                    mandatory=False,
                )
            )
        self._made += n
        return out

    def _run(self) -> None:
        if isinstance(self.sink, EmbeddedBroker):
            publish_batch: Callable[[list[OutgoingMessage]], tuple[int, int, int]] = self._embedded_batch
        else:
            publish_batch = self._backend_batch
        backend = self.sink if self.own_backend and not isinstance(self.sink, EmbeddedBroker) else None
        if backend is not None:
            backend.connect()  # type: ignore[union-attr]
        try:
            bucket = TokenBucket(self.rate)
            while not self._stop.is_set():
                most = MAX_BATCH
                if self.max_messages is not None:
                    most = min(most, self.max_messages - self._made)
                    if most <= 0:
                        break
                n = bucket.take(most)
                if n == 0:
                    self._stop.wait(min(0.05, max(0.001, bucket.wait_time())))
                    continue
                sent, unroutable, failed = publish_batch(self.make_messages(n))
                with self._lock:
                    self._stats.sent += sent
                    self._stats.unroutable += unroutable
                    self._stats.failed += failed
        finally:
            if backend is not None:
                with contextlib.suppress(Exception):
                    backend.close()  # type: ignore[union-attr]

    def _embedded_batch(self, messages: list[OutgoingMessage]) -> tuple[int, int, int]:
        assert isinstance(self.sink, EmbeddedBroker)
        vhost = self.sink.vhost

        def publish(broker: Broker) -> tuple[int, int, int]:
            sent = unroutable = failed = 0
            for m in messages:
                p = m.properties
                props = Properties(
                    content_type=p.get("content_type"),
                    headers=m.headers or None,
                    delivery_mode=p.get("delivery_mode"),
                    priority=p.get("priority"),
                    expiration=p.get("expiration"),
                    message_id=p.get("message_id"),
                    app_id=p.get("app_id"),
                    timestamp=dt.datetime.now(dt.UTC),
                )
                result = broker.publish(vhost, m.target, m.key, props, m.body)
                if result.rejected_by_overflow and not result.routed:
                    failed += 1
                    continue
                sent += 1
                unroutable += result.unroutable
            return sent, unroutable, failed

        try:
            result: tuple[int, int, int] = _call(self.sink.host, publish)
        except Exception as exc:
            self._note_error(exc)
            if isinstance(exc, RuntimeError | TimeoutError):  # the broker stopped
                self._stop.set()
            return 0, 0, len(messages)
        return result

    def _backend_batch(self, messages: list[OutgoingMessage]) -> tuple[int, int, int]:
        sent = unroutable = failed = 0
        publish: PublishFn = self.sink.publish if hasattr(self.sink, "publish") else self.sink  # type: ignore[assignment]
        for m in messages:
            try:
                result = publish(m)
            except Exception as exc:
                self._note_error(exc)
                failed += 1
                continue
            if isinstance(result, PublishResult):
                if not result.confirmed:
                    failed += 1
                    continue
                unroutable += not result.routed
            sent += 1
        return sent, unroutable, failed


class _GroupConsumer(Protocol):
    """A backend that consumes in a named consumer group (Kafka)."""

    def consume_for_replay(
        self, source: str, limit: int, *, group: str | None = None
    ) -> list[BrokerMessage]: ...


class ConsumerRunner(_Runner):
    """Consumes `source` (a queue; a Kafka topic on the Kafka backend) with the consumer's prefetch,
    `processing_ms` per message and `failure_rate` (nack without requeue: dead-lettered through the
    queue's DLX, or dropped without one); `requeue_rate` of the rest is nacked with requeue (redelivered).
    Unset arguments come from `consumer`. `dead_letter_topic` (Kafka, see the module doc): where failed
    records are published before they are settled. `group` (Kafka): the consumer group to consume in
    (the design's group), instead of the backend's own replay group.
    Deliveries still held when the runner stops go back to the queue (the session closes)."""

    kind = "consumer"

    def __init__(
        self,
        backend: EmbeddedBroker | Backend,
        consumer: Consumer,
        *,
        source: str | None = None,
        prefetch: int | None = None,
        processing_ms: float | None = None,
        failure_rate: float | None = None,
        requeue_rate: float | None = None,
        dead_letter_topic: str | None = None,
        group: str | None = None,
        own_backend: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(consumer.name)
        self.dead_letter_topic = dead_letter_topic
        self.group = group
        self.backend = backend
        self.source = source if source is not None else consumer.source
        self.prefetch = max(1, prefetch if prefetch is not None else consumer.prefetch)
        self.processing_ms = float(processing_ms if processing_ms is not None else consumer.processing_ms)
        self.failure_rate = float(failure_rate if failure_rate is not None else consumer.failure_rate)
        self.requeue_rate = float(requeue_rate if requeue_rate is not None else consumer.requeue_rate)
        self.own_backend = own_backend
        self._rng = random.Random(seed)

    def _decide(self) -> str:
        roll = self._rng.random()
        if roll < self.failure_rate:
            return "fail"
        if roll < self.failure_rate + self.requeue_rate:
            return "requeue"
        return "ack"

    def _count(self, actions: list[str]) -> None:
        with self._lock:
            for action in actions:
                if action == "ack":
                    self._stats.acked += 1
                elif action == "fail":
                    self._stats.failed += 1
                else:
                    self._stats.requeued += 1

    def _process(self) -> bool:
        """Simulate the work on one message; False when the runner was stopped meanwhile."""
        if self.processing_ms > 0:
            return not self._stop.wait(self.processing_ms / 1000)
        return not self._stop.is_set()

    def _run(self) -> None:
        if isinstance(self.backend, EmbeddedBroker):
            self._run_embedded(self.backend)
        else:
            self._run_backend(self.backend)

    # -- the embedded engine: one session, settle + poll per call ------------------------------------
    def _run_embedded(self, embedded: EmbeddedBroker) -> None:
        host, vhost, source, prefetch = embedded.host, embedded.vhost, self.source, self.prefetch
        connection_id = f"mqstudio-traffic-{self.name}-{uuid.uuid4().hex[:6]}"

        def open_session(broker: Broker) -> Session:
            session = broker.open_session(vhost, connection_id=connection_id)
            session.basic_consume(source, f"mqstudio-traffic-{self.name}", prefetch=prefetch)
            return session

        session: Session = _call(host, open_session)
        decisions: list[tuple[int, str]] = []

        def settle(broker: Broker) -> None:
            if session.closed or not session.consumers:
                raise BackendError(f"the consumer of {source!r} was cancelled (queue deleted?)")
            for tag, action in decisions:
                if action == "ack":
                    session.ack(tag)
                else:
                    session.nack(tag, requeue=action == "requeue")

        def settle_and_poll(broker: Broker) -> list[int]:
            settle(broker)
            return [d.delivery_tag for d in session.poll()]

        def flush(poll: bool) -> list[int]:
            nonlocal decisions
            tags: list[int] = _call(host, settle_and_poll) if poll else []
            if not poll:
                _call(host, settle)
            self._count([a for _, a in decisions])
            decisions = []
            return tags

        try:
            while not self._stop.is_set():
                tags = flush(poll=True)
                if not tags:
                    self._stop.wait(IDLE_POLL)
                    continue
                with self._lock:
                    self._stats.received += len(tags)
                for tag in tags:
                    if not self._process():
                        break
                    decisions.append((tag, self._decide()))
                    if self.processing_ms >= 1:  # a slow consumer settles each one as it finishes
                        flush(poll=False)
            if decisions:  # finished before the stop: settle them; the rest go back on close
                with contextlib.suppress(Exception):
                    flush(poll=False)
        finally:
            with contextlib.suppress(Exception):
                host.call(lambda b: b.close_connection(connection_id)).result(CALL_TIMEOUT)

    # -- any backend: consume_for_replay in batches, settle each ------------------------------------
    def _run_backend(self, backend: Backend) -> None:
        if self.own_backend:
            backend.connect()
        try:
            while not self._stop.is_set():
                try:
                    batch = self._take(backend)
                except BackendError as exc:
                    self._note_error(exc)
                    self._stop.wait(1.0)
                    continue
                if not batch:
                    self._stop.wait(0.1)
                    continue
                with self._lock:
                    self._stats.received += len(batch)
                for message in batch:
                    stopped = not self._process()
                    action = "requeue" if stopped else self._decide()
                    if action == "fail" and self.dead_letter_topic is not None:
                        action = self._dead_letter(backend, message)
                    backend.settle(message, ack=action == "ack", requeue=action == "requeue")
                    if not stopped:
                        self._count([action])
        finally:
            if self.own_backend:
                with contextlib.suppress(Exception):
                    backend.close()

    def _take(self, backend: Backend) -> list[BrokerMessage]:
        if self.group is not None and backend.kind is BackendKind.KAFKA:
            grouped = cast(_GroupConsumer, backend)
            return grouped.consume_for_replay(self.source, self.prefetch, group=self.group)
        return backend.consume_for_replay(self.source, self.prefetch)

    def _dead_letter(self, backend: Backend, message: BrokerMessage) -> str:
        """Publish a failed record to the dead-letter topic; "fail" when the broker took it (the original
        may then be settled), "requeue" when not (it is handed out again: nothing is lost)."""
        assert self.dead_letter_topic is not None
        try:
            result = backend.publish(dead_letter_copy(message, self.dead_letter_topic, self.failure_rate))
        except BackendError as exc:
            self._note_error(exc)
            return "requeue"
        if not result.confirmed:
            self._note_error(BackendError(f"dead-letter topic {self.dead_letter_topic!r}: {result.detail}"))
            return "requeue"
        return "fail"


def dead_letter_copy(message: BrokerMessage, topic: str, failure_rate: float = 0.0) -> OutgoingMessage:
    """The copy of a failed Kafka record for dead-letter topic `topic`: same key, body and headers, plus
    Spring Kafka's ``kafka_dlt-*`` headers (partition and offset as 4- and 8-byte big-endian integers)."""
    headers: dict[str, Any] = {k: v for k, v in message.headers.items() if not k.startswith("kafka_dlt-")}
    headers["kafka_dlt-original-topic"] = message.source
    if message.partition is not None:
        headers["kafka_dlt-original-partition"] = message.partition.to_bytes(4, "big", signed=True)
    if message.offset is not None:
        headers["kafka_dlt-original-offset"] = message.offset.to_bytes(8, "big", signed=True)
    if message.timestamp_ms is not None:
        headers["kafka_dlt-original-timestamp"] = message.timestamp_ms.to_bytes(8, "big", signed=True)
    headers["kafka_dlt-exception-fqcn"] = FAILURE_FQCN
    headers["kafka_dlt-exception-message"] = (
        f"simulated failure (the traffic generator fails {failure_rate:.0%} of records)"
    )
    return OutgoingMessage(topic, message.body, message.routing_key, headers=headers)


def dead_letter_topic_for(topology: Topology, topic: str) -> str | None:
    """The design's dead-letter topic for Kafka topic `topic` (``<topic>.DLT`` …), or None."""
    names = {t.name for t in topology.topics}
    return next((topic + suffix for suffix in DLT_SUFFIXES if topic + suffix in names), None)


# -- the controller ---------------------------------------------------------------------------------


@dataclass(slots=True)
class TrafficOptions:
    """Run-wide defaults for what a design's `Producer`/`Consumer` leaves unset: a producer's own payload
    (when not ""), priority and TTL (when not None) and a consumer's own requeue rate (when not 0) win."""

    payload_template: str = DEFAULT_PAYLOAD
    requeue_rate: float = 0.0
    priority: int | None = None
    ttl_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Runner = ProducerRunner | ConsumerRunner


class TrafficController:
    """Runs the design's producers and consumers: `start(node_id)`, `stop(node_id)`, `start_all()`,
    `stop_all()`; `stats()` per node id. Targets and sources are resolved by name from `topology`.

    Give `embedded` for the in-process engine, or `backend_factory` (an unconnected backend per call:
    each runner connects its own on its thread). `on_change(node_id, running)` is called from the
    calling thread when a runner starts or is stopped here (a runner that dies by itself is seen in
    `stats`/`running`)."""

    def __init__(
        self,
        topology: Topology,
        *,
        embedded: EmbeddedBroker | None = None,
        backend_factory: Callable[[], Backend] | None = None,
        options: TrafficOptions | None = None,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        if embedded is None and backend_factory is None:
            raise ValueError("give the embedded broker or a backend factory")
        self.topology = topology
        self.embedded = embedded
        self.backend_factory = backend_factory
        self.options = options or TrafficOptions()
        self.on_change = on_change
        self._runners: dict[str, Runner] = {}

    # -- resolving ----------------------------------------------------------------------------------
    def _name_of(self, node_id: str, what: str) -> str:
        node = self.topology.get(node_id) if node_id else None
        if isinstance(node, Exchange | Queue | Topic):
            return node.name
        if isinstance(node, ConsumerGroup):
            topics = [self.topology.get(t) for t in node.topics]
            names = [t.name for t in topics if isinstance(t, Topic)]
            if names:
                return names[0]
        raise TrafficError(f"{what} is not connected to anything it can use; connect it on the canvas")

    def _make(self, node_id: str) -> Runner:
        node = self.topology.get(node_id)
        sink: EmbeddedBroker | Backend
        if self.embedded is not None:
            sink = self.embedded
        else:
            assert self.backend_factory is not None
            sink = self.backend_factory()
        own = self.embedded is None
        if isinstance(node, Producer):
            target = self._name_of(node.target, f"producer {node.name!r}")
            options = self.options
            return ProducerRunner(
                sink,
                node,
                payload_template=node.payload or options.payload_template,
                priority=node.priority if node.priority is not None else options.priority,
                ttl_ms=node.ttl_ms if node.ttl_ms is not None else options.ttl_ms,
                target=target,
                own_backend=own,
            )
        if isinstance(node, Consumer):
            source = self._name_of(node.source, f"consumer {node.name!r}")
            requeue = node.requeue_rate or self.options.requeue_rate
            origin = self.topology.get(node.source)
            kafka = isinstance(origin, ConsumerGroup | Topic)
            dlt = dead_letter_topic_for(self.topology, source) if kafka and own else None
            group = origin.name if isinstance(origin, ConsumerGroup) and own else None
            return ConsumerRunner(
                sink,
                node,
                source=source,
                requeue_rate=requeue,
                dead_letter_topic=dlt,
                group=group,
                own_backend=own,
            )
        raise TrafficError(f"{node_id!r} is not a producer or consumer")

    # -- control ------------------------------------------------------------------------------------
    def runnable_ids(self) -> list[str]:
        return [n.id for n in self.topology.nodes if isinstance(n, Producer | Consumer)]

    def is_running(self, node_id: str) -> bool:
        runner = self._runners.get(node_id)
        return runner is not None and runner.running

    def running_ids(self) -> list[str]:
        return [node_id for node_id, runner in self._runners.items() if runner.running]

    def runner(self, node_id: str) -> Runner | None:
        return self._runners.get(node_id)

    def start(self, node_id: str) -> Runner:
        """Start the node's runner (a running one is returned as it is). Raises `TrafficError`."""
        current = self._runners.get(node_id)
        if current is not None and current.running:
            return current
        runner = self._make(node_id)
        self._runners[node_id] = runner
        runner.start()
        if self.on_change is not None:
            self.on_change(node_id, True)
        return runner

    def start_all(self) -> dict[str, str]:
        """Start every producer and consumer; consumers first so that the first messages are taken.
        Returns the node ids that could not start with the reason."""
        problems: dict[str, str] = {}
        ids = self.runnable_ids()
        consumers = [i for i in ids if isinstance(self.topology.get(i), Consumer)]
        for node_id in consumers + [i for i in ids if i not in consumers]:
            try:
                self.start(node_id)
            except (TrafficError, BackendError, ValueError) as exc:
                problems[node_id] = str(exc)
        return problems

    def stop(self, node_id: str, timeout: float | None = 10.0) -> bool:
        """Stop the node's runner; with ``timeout=0`` only ask (the GUI thread), else join it."""
        runner = self._runners.get(node_id)
        if runner is None:
            return True
        runner.request_stop()
        if self.on_change is not None:
            self.on_change(node_id, False)
        return runner.join(timeout) if timeout != 0 else True

    def stop_all(self, timeout: float | None = 10.0) -> bool:
        """Stop every runner (producers first, so consumers drain what is in flight) and join them."""
        order = sorted(self._runners, key=lambda i: not isinstance(self._runners[i], ProducerRunner))
        for node_id in order:
            self.stop(node_id, timeout=0)
        if timeout == 0:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        for runner in self._runners.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ok = runner.join(left) and ok
        return ok

    def stats(self) -> dict[str, RunnerStats]:
        return {node_id: runner.stats for node_id, runner in self._runners.items()}

    def summary(self) -> tuple[int, int, int]:
        """(sent, received, failed) over every runner."""
        all_stats = self.stats().values()
        return (
            sum(s.sent for s in all_stats),
            sum(s.received for s in all_stats),
            sum(s.failed for s in all_stats),
        )

    def describe(self, node_id: str) -> str:
        runner = self._runners.get(node_id)
        if runner is None:
            return ""
        s = runner.stats
        if isinstance(runner, ProducerRunner):
            text = f"{s.sent:,} sent"
            if s.failed:
                text += f", {s.failed:,} failed"
        else:
            text = f"{s.acked:,} acked"
            if s.failed:
                text += f", {s.failed:,} failed"
        return text


def dumps_stats(stats: dict[str, RunnerStats]) -> str:
    """Stats as JSON (the command line, logs)."""
    return json.dumps({k: {f: getattr(v, f) for f in v.__slots__} for k, v in stats.items()})
