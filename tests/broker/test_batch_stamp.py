"""Batch stamps (`Broker.begin_batch` / `end_batch`): in a batch, messages no time rule applies to
share the batch's one clock read for `enqueued_ms`; every time rule (message TTL, queue TTL,
x-expires, x-death times) still reads the clock, so TTL is exactly as without batches. Outside a
batch nothing changes. Also: settlement and basic.get read no clock when no time rule applies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pamqp import commands

from mqstudio.amqp.auth import InMemoryAuthenticator, User
from mqstudio.amqp.connection import Connection, ConnectionConfig
from mqstudio.amqp.framing import PROTOCOL_HEADER, marshal, marshal_content
from mqstudio.amqp.service import BrokerService
from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import ManualClock
from mqstudio.broker.message import Properties

from .enginekit import Kit

T0 = 1_700_000_000_000


class CountingClock(ManualClock):
    """A ManualClock that counts how often the engine reads it."""

    def __init__(self, start_ms: int = T0) -> None:
        super().__init__(start_ms)
        self.reads = 0

    def now_ms(self) -> int:
        self.reads += 1
        return super().now_ms()


class CountingKit(Kit):
    def __init__(self) -> None:
        self.clock: CountingClock = CountingClock()
        self.broker = Broker(self.clock)


def _enqueued(k: Kit, queue: str) -> list[int]:
    return [qm.enqueued_ms for qm in k.broker.vhost("/").queues[queue].messages()]


def _expires(k: Kit, queue: str) -> list[int | None]:
    return [qm.expires_ms for qm in k.broker.vhost("/").queues[queue].messages()]


@pytest.mark.parametrize("exchange", ["", "fan"])
def test_a_batch_stamps_untimed_messages_with_its_start_and_reads_the_clock_once(exchange: str) -> None:
    k = CountingKit()
    k.queue("q")
    if exchange:
        k.exchange("fan", "fanout")
        k.queue("q2")
        k.bind("q", "fan")
        k.bind("q2", "fan")
    before = k.clock.reads
    with k.broker.batch():
        for _ in range(5):
            k.publish("q", exchange=exchange)
            k.clock.advance(10)
    assert k.clock.reads - before == 1  # begin_batch's read only
    assert _enqueued(k, "q") == [T0] * 5
    # Outside a batch each publish reads the clock, as before.
    before = k.clock.reads
    k.publish("q", exchange=exchange)
    k.clock.advance(10)
    k.publish("q", exchange=exchange)
    assert k.clock.reads - before == 2
    assert _enqueued(k, "q")[5:] == [T0 + 50, T0 + 60]
    # A new batch takes a new stamp.
    with k.broker.batch():
        k.publish("q", exchange=exchange)
    assert _enqueued(k, "q")[7:] == [T0 + 60]


@pytest.mark.parametrize(
    ("queue_args", "props", "ttl"),
    [
        ({"x_message_ttl": 100}, {}, 100),  # queue-level TTL
        ({}, {"expiration": "100"}, 100),  # per-message expiration
        ({"x_message_ttl": 300}, {"expiration": "100"}, 100),
    ],
)
@pytest.mark.parametrize("exchange", ["", "fan"])
def test_ttl_in_a_batch_counts_from_the_clock_not_from_the_stamp(
    queue_args: dict[str, Any], props: dict[str, Any], ttl: int, exchange: str
) -> None:
    k = Kit()
    k.queue("q", **queue_args)
    if exchange:
        # A route that also reaches an untimed queue: that one takes the clock's time too.
        k.exchange("fan", "fanout")
        k.queue("plain")
        k.bind("q", "fan")
        k.bind("plain", "fan")
    # Warm the route cache, so the next publish takes the cached one-queue fast path where it can.
    k.publish("q", exchange=exchange, **props)
    k.broker.purge_queue("/", "q")
    with k.broker.batch():
        k.clock.advance(40)  # the batch began at T0; the publish happens at T0 + 40
        k.publish("q", exchange=exchange, **props)
    assert _expires(k, "q") == [T0 + 40 + ttl]
    assert _enqueued(k, "q") == [T0 + 40]
    if exchange and "x_message_ttl" in queue_args:
        assert _enqueued(k, "plain")[-1] == T0 + 40
    k.tick(ttl - 1)
    assert k.stats("q").ready == 1
    k.tick(1)
    assert (k.stats("q").ready, k.stats("q").expired) == (0, 1)


def test_expiry_inside_a_batch_reads_the_clock() -> None:
    # A consumer arriving late in a batch must not get a message that expired since the batch began.
    k = Kit()
    k.queue("q", x_message_ttl=10)
    s = k.session()
    with k.broker.batch():
        k.publish("q")
        k.clock.advance(10)
        s.basic_consume("q", "c")
        assert s.poll() == []
    assert k.stats("q").expired == 1


def test_dead_lettering_in_a_batch_dates_x_death_by_the_clock() -> None:
    k = Kit()
    k.queue("dlq")
    k.queue("q", x_dead_letter_exchange="", x_dead_letter_routing_key="dlq")
    s = k.session()
    with k.broker.batch():
        k.publish("q")
        k.clock.advance(5000)
        d = s.basic_get("q")
        assert d is not None
        s.reject(d.delivery_tag, requeue=False)
    (dead,) = k.get_all("dlq")
    death = dead.message.headers["x-death"][0]
    assert death["reason"] == "rejected"
    assert int(death["time"].timestamp()) == (T0 + 5000) // 1000


def test_x_expires_lease_in_a_batch_runs_from_the_clock() -> None:
    k = Kit()
    k.queue("q", x_expires=1000)
    s = k.session()
    with k.broker.batch():
        k.clock.advance(800)
        assert s.basic_get("q") is None  # a use: the lease restarts at T0 + 800, not T0
    k.tick(999)
    assert "q" in k.broker.vhost("/").queues
    k.tick(1)
    assert "q" not in k.broker.vhost("/").queues


def test_settling_and_getting_read_no_clock_without_time_rules() -> None:
    k = CountingKit()
    k.queue("q")
    s = k.session()
    for _ in range(6):
        k.publish("q")
    before = k.clock.reads
    tags = [d.delivery_tag for _ in range(6) if (d := s.basic_get("q")) is not None]
    assert len(tags) == 6
    s.ack(tags[1], multiple=True)
    s.nack(tags[3], multiple=True, requeue=True)
    s.reject(tags[4], requeue=True)
    s.ack(tags[5])
    assert k.clock.reads == before
    assert k.stats("q").ready == 3  # the nacked and rejected came back


def test_a_queue_with_ttl_still_reads_the_clock_on_get() -> None:
    k = CountingKit()
    k.queue("q", x_message_ttl=50)
    k.publish("q")
    before = k.clock.reads
    k.clock.advance(50)
    assert k.session().basic_get("q") is None  # expired on the way
    assert k.clock.reads > before
    assert k.stats("q").expired == 1


def test_end_batch_without_a_batch_is_harmless_and_a_new_vhost_is_not_in_the_batch() -> None:
    clock = ManualClock(T0)
    broker = Broker(clock)
    broker.end_batch()
    broker.begin_batch()
    broker.add_vhost("v")
    broker.declare_queue("v", "q")
    clock.advance(7)
    broker.publish("v", "", "q", Properties(), b"m")
    broker.end_batch()
    assert [qm.enqueued_ms for qm in broker.vhost("v").queues["q"].messages()] == [T0 + 7]


def test_the_amqp_service_makes_each_loop_iteration_one_batch_and_ends_it() -> None:
    """Wired as served: publishes read in one loop iteration share the stamp of that iteration;
    the next iteration takes a new one, and a batch never outlives its flush."""
    clock = CountingClock()
    broker = Broker(clock)
    broker.declare_queue("/", "q")
    service = BrokerService(broker)
    auth = InMemoryAuthenticator([User.create("guest", "guest", loopback_only=True)], vhosts=["/"])
    conn = Connection(auth, ConnectionConfig(heartbeat=0), ("127.0.0.1", 40000))
    handshake = [
        commands.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0guest\0guest"),
        commands.Connection.TuneOk(channel_max=16, frame_max=131072, heartbeat=0),
        commands.Connection.Open(virtual_host="/"),
    ]
    publish = commands.Basic.Publish(exchange="", routing_key="q")

    def feed(data: bytes) -> None:
        conn.receive_data(data)
        while conn.has_events:
            for event in conn.drain_events():
                service(conn, event)

    async def serve() -> None:
        feed(PROTOCOL_HEADER + b"".join(marshal(m, 0) for m in handshake))
        feed(marshal(commands.Channel.Open(), 1))
        await asyncio.sleep(0)  # the flush of the handshake's iteration
        for _ in range(2):  # two loop iterations of three publishes each
            feed(b"".join(marshal_content(1, publish, None, b"m", 131072) for _ in range(3)))
            clock.advance(5)
            feed(marshal_content(1, publish, None, b"m", 131072))
            await asyncio.sleep(0)  # the flush runs, ending the batch
            clock.advance(100)
        broker.publish("/", "", "q", Properties(), b"in-process, after the flush")

    asyncio.run(serve())
    # The first publish of an iteration reads the clock (the batch starts once its flush is
    # scheduled); the rest of the iteration shares the stamp taken then.
    assert _enqueued_in(broker, "q") == [T0] * 4 + [T0 + 105] * 4 + [T0 + 210]


def _enqueued_in(broker: Broker, queue: str) -> list[int]:
    return [qm.enqueued_ms for qm in broker.vhost("/").queues[queue].messages()]
