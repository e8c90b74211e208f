"""Durable state survives a restart: definitions, persistent messages, deliveries, TTL, dead-lettering.

Each test runs a broker on an SqliteStore, commits, "restarts" (closes the store, crash-style, without
the engine's own shutdown) and inspects the broker rebuilt from the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import ManualClock
from mqstudio.broker.errors import NotFound
from mqstudio.broker.exchanges import DestinationKind
from mqstudio.broker.message import Properties
from mqstudio.broker.store import SCHEMA_VERSION, NullStore

P = Properties(delivery_mode=2)
T = Properties(delivery_mode=1)


class Env:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = ManualClock()
        self.broker = Broker.open(path, clock=self.clock)

    @property
    def b(self) -> Broker:
        return self.broker

    def restart(self, *, commit: bool = True) -> Broker:
        if commit:
            self.broker.commit()
        assert self.broker.store is not None
        self.broker.store.close()  # like a crash: nothing else runs
        self.broker = Broker.open(self.path, clock=self.clock)
        return self.broker

    def pub(self, queue: str, body: bytes, props: Properties = P, exchange: str = "") -> None:
        self.broker.publish("/", exchange, queue, props, body)

    def bodies(self, queue: str) -> list[bytes]:
        return [qm.body for qm in self.broker.queue("/", queue).messages()]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path / "broker.sqlite3")
    yield e
    e.broker.close()


def table_count(env: Env, table: str) -> int:
    b = env.restart()
    assert b.store is not None
    con = b.store._con  # type: ignore[attr-defined]
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# -- definitions -----------------------------------------------------------------------------------


def test_durable_exchanges_of_every_type_are_recovered(env: Env) -> None:
    b = env.b
    b.declare_exchange("/", "d", "direct")
    b.declare_exchange("/", "f", "fanout", auto_delete=True)
    b.declare_exchange("/", "t", "topic", internal=True)
    b.declare_exchange("/", "h", "headers", arguments={"alternate-exchange": "f"})
    b.declare_exchange("/", "dl", "x-delayed-message", arguments={"x-delayed-type": "topic"})
    b.declare_exchange("/", "gone", "direct", durable=False)
    b = env.restart()
    xs = b.vhost("/").exchanges
    assert {n: x.type for n, x in xs.items() if n in {"d", "f", "t", "h", "dl"}} == {
        "d": "direct",
        "f": "fanout",
        "t": "topic",
        "h": "headers",
        "dl": "x-delayed-message",
    }
    assert xs["f"].auto_delete and xs["t"].internal and not xs["d"].internal
    assert xs["h"].alternate_exchange == "f"
    assert xs["dl"].arguments == {"x-delayed-type": "topic"}
    assert "gone" not in xs
    # Redeclaring with the same properties is accepted (equivalence holds after recovery).
    b.declare_exchange("/", "f", "fanout", auto_delete=True)


def test_durable_queue_arguments_are_recovered(env: Env) -> None:
    args = {
        "x-message-ttl": 60000,
        "x-max-length": 10,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "dead",
        "x-max-priority": 5,
        "x-custom": {"nested": [b"bytes", Decimal("1.5")]},
    }
    env.b.declare_queue("/", "q", arguments=args)
    env.b.declare_queue("/", "qq", arguments={"x-queue-type": "quorum", "x-delivery-limit": 3})
    env.b.declare_queue("/", "ad", auto_delete=True)
    b = env.restart()
    q = b.queue("/", "q")
    assert q.arguments == args and q.durable
    assert q.args.max_priority == 5 and q.args.message_ttl == 60000
    assert b.queue("/", "qq").is_quorum and b.queue("/", "qq").args.delivery_limit == 3
    assert b.queue("/", "ad").auto_delete
    assert b.declare_queue("/", "q", arguments=args).name == "q"  # still equivalent


def test_transient_and_exclusive_queues_are_not_recovered(env: Env) -> None:
    env.b.declare_queue("/", "transient", durable=False)
    env.b.declare_queue("/", "mine", exclusive=True, owner="c1")
    env.b.declare_queue("/", "kept")
    b = env.restart()
    assert set(b.vhost("/").queues) == {"kept"}


def test_server_named_durable_queue_is_recovered(env: Env) -> None:
    name = env.b.declare_queue("/", "").name
    assert name.startswith("amq.gen-")
    env.pub(name, b"x")
    assert env.restart().queue("/", name).message_count == 1


def test_bindings_among_durable_objects_are_recovered(env: Env) -> None:
    b = env.b
    b.declare_exchange("/", "src", "topic")
    b.declare_exchange("/", "mid", "fanout")
    b.declare_exchange("/", "hdr", "headers")
    b.declare_exchange("/", "temp", "fanout", durable=False)
    for q in ("q1", "q2", "q3"):
        b.declare_queue("/", q)
    b.declare_queue("/", "tq", durable=False)
    b.queue_bind("/", "q1", "src", "a.*")
    b.exchange_bind("/", "mid", "src", "b.#")  # e2e
    b.queue_bind("/", "q2", "mid")
    b.queue_bind("/", "q3", "hdr", arguments={"x-match": "any", "k": 1, "t": {"n": b"x"}})
    b.queue_bind("/", "q1", "amq.direct", "direct-key")
    b.queue_bind("/", "tq", "src", "a.*")  # transient queue: not stored
    b.queue_bind("/", "q1", "temp")  # transient exchange: not stored
    b = env.restart()
    vh = b.vhost("/")
    recs = {
        (r.source, r.destination.kind, r.destination.name, r.routing_key)
        for x in vh.exchanges.values()
        for r in x.bindings
    }
    assert recs == {
        ("src", DestinationKind.QUEUE, "q1", "a.*"),
        ("src", DestinationKind.EXCHANGE, "mid", "b.#"),
        ("mid", DestinationKind.QUEUE, "q2", ""),
        ("hdr", DestinationKind.QUEUE, "q3", ""),
        ("amq.direct", DestinationKind.QUEUE, "q1", "direct-key"),
    }
    # And they route.
    assert b.publish("/", "src", "a.x", P, b"1").routed == ("q1",)
    assert b.publish("/", "src", "b.y.z", P, b"2").routed == ("q2",)
    assert b.publish("/", "hdr", "", Properties(headers={"k": 1}), b"3").routed == ("q3",)
    assert b.publish("/", "amq.direct", "direct-key", P, b"4").routed == ("q1",)
    # The default exchange's implicit binding needs no row.
    assert b.publish("/", "", "q2", P, b"5").routed == ("q2",)


def test_unbind_and_deletions_are_recovered(env: Env) -> None:
    b = env.b
    b.declare_exchange("/", "x", "headers")
    b.declare_exchange("/", "x2", "direct")
    b.declare_exchange("/", "ad", "fanout", auto_delete=True)
    b.declare_queue("/", "q")
    b.declare_queue("/", "q2")
    b.queue_bind("/", "q", "x", arguments={"x-match": "all", "n": 1})
    b.queue_bind("/", "q", "x2", "k")
    b.queue_bind("/", "q2", "x2", "k")
    b.queue_bind("/", "q", "ad")
    b = env.restart()
    b.queue_unbind("/", "q", "x", arguments={"n": 1.0, "x-match": "all"})  # equal per RabbitMQ
    b.delete_queue("/", "q2")
    b.queue_unbind("/", "q", "ad")  # auto-delete exchange goes with its last binding
    b = env.restart()
    vh = b.vhost("/")
    assert vh.exchanges["x"].bindings == []
    assert [r.destination.name for r in vh.exchanges["x2"].bindings] == ["q"]
    assert "q2" not in vh.queues and "ad" not in vh.exchanges
    b.delete_exchange("/", "x2")
    b = env.restart()
    assert "x2" not in b.vhost("/").exchanges


def test_vhosts_are_recovered_and_deleted(env: Env) -> None:
    env.b.add_vhost("orders")
    env.b.declare_queue("orders", "q")
    env.b.publish("orders", "", "q", P, b"x")
    env.b.add_vhost("scratch")
    b = env.restart()
    assert b.vhost_names == ["/", "orders", "scratch"]
    assert b.queue("orders", "q").message_count == 1
    b.delete_vhost("orders")
    b = env.restart()
    assert b.vhost_names == ["/", "scratch"]
    assert table_count(env, "messages") == 0 and table_count(env, "contents") == 0


# -- messages ---------------------------------------------------------------------------------------


def test_message_properties_and_headers_round_trip(env: Env) -> None:
    props = Properties(
        content_type="application/json",
        headers={
            "table": {"inner": {"list": [1, "two", b"\x03", Decimal("4.50")]}},
            "array": [[1, 2], {"k": True}],
            "bytes": b"\x00\xff",
            "decimal": Decimal("-12.345"),
            "ts": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            "float": 2.5,
            "void": None,
        },
        delivery_mode=2,
        priority=3,
        correlation_id="corr",
        reply_to="rt",
        message_id="id-1",
        timestamp=datetime(2024, 6, 1, tzinfo=UTC),
        type="t",
        user_id="guest",
        app_id="app",
    )
    env.b.declare_exchange("/", "x", "direct")
    env.b.declare_queue("/", "q")
    env.b.queue_bind("/", "q", "x", "rk")
    env.b.publish("/", "x", "rk", props, b"\x00body\xff")
    b = env.restart()
    (qm,) = b.queue("/", "q").messages()
    assert qm.properties == props
    assert (qm.body, qm.exchange, qm.routing_key) == (b"\x00body\xff", "x", "rk")
    assert qm.message.size == len(b"\x00body\xff")


def test_order_is_preserved(env: Env) -> None:
    env.b.declare_queue("/", "q")
    bodies = [str(i).encode() for i in range(1000)]
    for body in bodies:
        env.pub("q", body)
    env.restart()
    assert env.bodies("q") == bodies
    # New messages go after the recovered ones.
    env.pub("q", b"new")
    env.restart()
    assert env.bodies("q") == [*bodies, b"new"]


def test_priorities_are_recovered(env: Env) -> None:
    env.b.declare_queue("/", "q", arguments={"x-max-priority": 5})
    for i, prio in enumerate([0, 5, 2, 9, 2, None]):
        env.pub("q", f"{i}:{prio}".encode(), Properties(delivery_mode=2, priority=prio))
    env.restart()
    # Higher first (9 capped to 5), FIFO within a priority.
    assert env.bodies("q") == [b"1:5", b"3:9", b"2:2", b"4:2", b"0:0", b"5:None"]


def test_transient_messages_and_transient_queues_are_not_written(env: Env) -> None:
    env.b.declare_queue("/", "durable")
    env.b.declare_queue("/", "transient", durable=False)
    env.pub("durable", b"persistent")
    env.pub("durable", b"transient", T)
    env.pub("durable", b"default", Properties())
    env.pub("transient", b"persistent-in-transient-queue")
    env.restart()
    assert env.bodies("durable") == [b"persistent"]
    assert table_count(env, "contents") == 1


def test_uncommitted_changes_do_not_survive_a_crash(env: Env) -> None:
    env.b.declare_queue("/", "q")
    env.pub("q", b"committed")
    env.b.commit()
    env.pub("q", b"pending")
    assert env.b.needs_commit and env.b.pending_count == 2  # one content, one queue row
    env.restart(commit=False)
    assert env.bodies("q") == [b"committed"]


def test_acked_messages_are_gone_and_unacked_come_back_redelivered(env: Env) -> None:
    env.b.declare_queue("/", "q")
    for i in range(8):
        env.pub("q", str(i).encode())
    env.b.commit()
    s = env.b.open_session("/", "c1")
    s.qos(4)
    s.basic_consume("q", "ctag")
    d = s.poll()
    assert [x.body for x in d] == [b"0", b"1", b"2", b"3"]
    g = env.b.open_session("/", "c2").basic_get("q", no_ack=True)  # "4" taken, no ack needed
    assert g is not None and g.body == b"4"
    s.ack(d[0].delivery_tag)  # single-tag hot path
    s.ack(d[1].delivery_tag, multiple=True)  # multiple path (acks tag of "1")
    assert [x.body for x in s.poll()] == [b"5", b"6"]  # freed prefetch slots
    b = env.restart()
    qms = b.queue("/", "q").messages()
    assert [(m.body, m.redelivered) for m in qms] == [
        (b"2", True),
        (b"3", True),
        (b"5", True),
        (b"6", True),
        (b"7", False),
    ]
    # A redelivered message shows up as such on its next delivery.
    s2 = b.open_session("/", "c3")
    first = s2.basic_get("q")
    assert first is not None and first.redelivered and first.body == b"2"


def test_nack_requeue_reject_and_recover_are_recorded(env: Env) -> None:
    env.b.declare_queue("/", "q")
    for i in range(3):
        env.pub("q", str(i).encode())
    s = env.b.open_session("/", "c1")
    s.basic_consume("q", "t")
    d = s.poll()
    s.nack(d[0].delivery_tag, requeue=True)
    s.reject(d[1].delivery_tag, requeue=False)  # no DLX: dropped
    b = env.restart()
    assert [(m.body, m.redelivered) for m in b.queue("/", "q").messages()] == [(b"0", True), (b"2", True)]


def test_consumed_within_one_batch_costs_no_write() -> None:
    store = NullStore()
    b = Broker(ManualClock(), store=store)
    b.declare_queue("/", "q")
    b.commit()
    s = b.open_session("/", "c1")
    s.basic_consume("q", "t")
    for i in range(100):
        b.publish("/", "", "q", P, str(i).encode())
    for d in s.poll():
        s.ack(d.delivery_tag)
    assert b.pending_count == 0 and not b.needs_commit
    written = store.written
    b.commit()
    assert store.written == written


def test_no_ack_consumer_takes_messages_out_of_the_store(env: Env) -> None:
    env.b.declare_queue("/", "q")
    env.pub("q", b"before")
    env.b.commit()
    s = env.b.open_session("/", "c1")
    s.basic_consume("q", "t", no_ack=True)
    env.pub("q", b"after")
    assert [d.body for d in s.poll()] == [b"before", b"after"]
    env.restart()
    assert env.bodies("q") == []
    assert table_count(env, "messages") == 0


def test_fanout_content_is_stored_once_and_deleted_with_its_last_reference(env: Env) -> None:
    b = env.b
    b.declare_exchange("/", "fan", "fanout")
    for q in ("a", "b", "c"):
        b.declare_queue("/", q)
        b.queue_bind("/", q, "fan")
    b.publish("/", "fan", "", P, b"shared")
    assert table_count(env, "contents") == 1
    assert table_count(env, "messages") == 3
    env.b.purge_queue("/", "a")
    env.b.delete_queue("/", "b")
    assert table_count(env, "contents") == 1
    s = env.b.open_session("/", "c1")
    d = s.basic_get("c")
    assert d is not None
    s.ack(d.delivery_tag)
    assert table_count(env, "messages") == 0
    assert table_count(env, "contents") == 0


def test_delete_queue_with_unacked_messages_then_ack_is_harmless(env: Env) -> None:
    env.b.declare_queue("/", "q")
    env.pub("q", b"x")
    env.b.commit()
    s = env.b.open_session("/", "c1")
    d = s.basic_get("q")
    assert d is not None
    env.b.delete_queue("/", "q")
    env.b.declare_queue("/", "q")  # same name, new incarnation
    env.pub("q", b"y")
    s.ack(d.delivery_tag)  # must not delete the new queue's row
    env.restart()
    assert env.bodies("q") == [b"y"]


def test_dead_lettered_message_moves_from_a_to_b(env: Env) -> None:
    b = env.b
    b.declare_exchange("/", "dlx", "fanout")
    b.declare_queue("/", "a", arguments={"x-dead-letter-exchange": "dlx"})
    b.declare_queue("/", "b")
    b.queue_bind("/", "b", "dlx")
    env.pub("a", b"poison", Properties(delivery_mode=2, headers={"h": 1}))
    b.commit()
    s = b.open_session("/", "c1")
    d = s.basic_get("a")
    assert d is not None
    s.reject(d.delivery_tag, requeue=False)
    b = env.restart()
    assert b.queue("/", "a").messages() == []
    (moved,) = b.queue("/", "b").messages()
    assert moved.body == b"poison" and not moved.redelivered
    headers = moved.properties.headers or {}
    assert headers["h"] == 1
    assert headers["x-death"][0]["queue"] == "a" and headers["x-death"][0]["reason"] == "rejected"
    assert isinstance(headers["x-death"][0]["time"], datetime)
    assert table_count(env, "contents") == 1


def test_dead_letter_history_survives_a_restart(env: Env) -> None:
    # The history is the broker's (Message.deaths), stored beside the properties: after a restart a
    # real cycle is still detected, and counts go on from the stored history.
    b = env.b
    b.declare_queue(
        "/",
        "a",
        arguments={"x-message-ttl": 10, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"},
    )
    b.declare_queue(
        "/",
        "b",
        arguments={"x-message-ttl": 10, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a"},
    )
    env.pub("a", b"m")
    env.clock.advance(10)
    b.tick()
    (moved,) = b.queue("/", "b").messages()
    assert [(d.queue, d.reason, d.count) for d in moved.message.deaths] == [("a", "expired", 1)]
    b = env.restart()
    (held,) = b.queue("/", "b").messages()
    assert held.message.deaths == moved.message.deaths
    env.clock.advance(10)
    b.tick()  # b → a: a is in the history with no rejection since, so it is a cycle
    assert b.queue("/", "a").message_count == 0
    assert b.snapshot().queue("b").dropped == {"cycle": 1}


def test_client_x_death_header_is_not_history_after_a_restart(env: Env) -> None:
    b = env.b
    b.declare_exchange("/", "to-b", "fanout")
    b.declare_queue("/", "a", arguments={"x-message-ttl": 10, "x-dead-letter-exchange": "to-b"})
    b.declare_queue("/", "b")
    b.queue_bind("/", "b", "to-b")
    old = [{"queue": "b", "reason": "expired", "count": 1}]
    env.pub("a", b"m", Properties(delivery_mode=2, headers={"x-death": old}))
    b = env.restart()
    (held,) = b.queue("/", "a").messages()
    assert held.message.deaths == () and (held.properties.headers or {})["x-death"] == old
    env.clock.advance(10)
    b.tick()
    assert b.queue("/", "b").message_count == 1


def test_version_1_store_is_migrated_with_empty_histories(env: Env) -> None:
    b = env.b
    b.declare_queue("/", "q")
    env.pub(
        "q", b"old", Properties(delivery_mode=2, headers={"x-death": [{"queue": "q", "reason": "expired"}]})
    )
    b.commit()
    assert b.store is not None
    b.store.close()
    con = sqlite3.connect(env.path)
    con.execute("ALTER TABLE contents DROP COLUMN deaths")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    env.broker = b = Broker.open(env.path, clock=env.clock)
    (qm,) = b.queue("/", "q").messages()
    assert qm.body == b"old" and qm.message.deaths == ()
    assert b.store is not None
    assert b.store._con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # type: ignore[attr-defined]


def test_ttl_deadlines_are_kept_across_a_restart(env: Env) -> None:
    b = env.b
    b.declare_exchange("/", "dlx", "fanout")
    b.declare_queue("/", "dead")
    b.queue_bind("/", "dead", "dlx")
    b.declare_queue("/", "q", arguments={"x-message-ttl": 10_000, "x-dead-letter-exchange": "dlx"})
    env.pub("q", b"short", Properties(delivery_mode=2, expiration="3000"))
    env.pub("q", b"long")
    deadline = b.next_deadline_ms()
    env.clock.advance(2_000)
    b = env.restart()
    assert b.next_deadline_ms() == deadline  # absolute, not restarted from the recovery time
    env.clock.advance(999)
    b.tick()
    assert env.bodies("q") == [b"short", b"long"]
    env.clock.advance(1)
    b.tick()
    assert env.bodies("q") == [b"long"]
    assert env.bodies("dead") == [b"short"]
    # Expired while the broker was down: goes at the first tick after recovery.
    b = env.restart()
    env.clock.advance(60_000)
    b = env.restart()
    assert env.bodies("q") == [b"long"]
    b.tick()
    assert env.bodies("q") == [] and env.bodies("dead") == [b"short", b"long"]
    b = env.restart()
    assert env.bodies("q") == [] and env.bodies("dead") == [b"short", b"long"]


def test_drop_head_removes_rows(env: Env) -> None:
    env.b.declare_queue("/", "q", arguments={"x-max-length": 2})
    for i in range(5):
        env.pub("q", str(i).encode())
    env.restart()
    assert env.bodies("q") == [b"3", b"4"]
    assert table_count(env, "messages") == 2 and table_count(env, "contents") == 2


def test_quorum_delivery_count_is_kept(env: Env) -> None:
    env.b.declare_exchange("/", "dlx", "fanout")
    env.b.declare_queue("/", "dead")
    env.b.queue_bind("/", "dead", "dlx")
    env.b.declare_queue(
        "/",
        "qq",
        arguments={"x-queue-type": "quorum", "x-delivery-limit": 2, "x-dead-letter-exchange": "dlx"},
    )
    env.pub("qq", b"m")

    def bounce(b: Broker) -> None:
        s = b.open_session("/", "c")
        d = s.basic_get("qq")
        assert d is not None
        s.nack(d.delivery_tag, requeue=True)

    bounce(env.b)
    bounce(env.b)
    b = env.restart()
    (qm,) = b.queue("/", "qq").messages()
    assert qm.delivery_count == 2 and qm.redelivered
    bounce(b)  # third return exceeds the limit of 2
    assert env.bodies("qq") == [] and env.bodies("dead") == [b"m"]


def test_queue_deleted_and_redeclared_within_one_batch(env: Env) -> None:
    env.b.declare_queue("/", "q", arguments={"x-max-length": 100})
    env.pub("q", b"old")
    env.b.delete_queue("/", "q")
    env.b.declare_queue("/", "q")
    env.pub("q", b"new")
    b = env.restart()
    assert env.bodies("q") == [b"new"]
    assert b.queue("/", "q").arguments == {}


def test_recovery_report_and_repeated_restarts(env: Env) -> None:
    env.b.declare_exchange("/", "x", "direct")
    env.b.declare_queue("/", "q")
    env.b.queue_bind("/", "q", "x", "k")
    env.pub("q", b"a")
    env.pub("q", b"b")
    s = env.b.open_session("/", "c")
    s.basic_get("q")
    for _ in range(3):
        b = env.restart()
    r = b.recovery
    assert r is not None
    assert (r.vhosts, r.exchanges, r.queues, r.bindings, r.messages, r.redelivered) == (1, 1, 1, 1, 2, 1)
    assert r.location == str(env.path)


def test_close_commits_pending_work(env: Env) -> None:
    env.b.declare_queue("/", "q")
    env.pub("q", b"x")
    env.b.close()
    env.broker = Broker.open(env.path, clock=env.clock)
    assert env.bodies("q") == [b"x"]


def test_broker_without_store_needs_no_commit() -> None:
    b = Broker(ManualClock())
    b.declare_queue("/", "q")
    b.publish("/", "", "q", P, b"x")
    assert not b.needs_commit and b.pending_count == 0 and b.recovery is None
    b.commit()
    b.close()


def test_stale_rows_are_cleaned_up_at_recovery(env: Env) -> None:
    env.b.declare_queue("/", "q")
    env.pub("q", b"x")
    env.b.close()
    con = sqlite3.connect(env.path)
    con.execute(
        "INSERT INTO contents (id, exchange, routing_key, properties, body) VALUES (99, '', 'q', '{}', x'00')"
    )
    con.execute("INSERT INTO messages VALUES (77, 1, 99, 0, NULL, 0, 0, 0)")
    con.commit()
    con.close()
    env.broker = Broker.open(env.path, clock=env.clock)
    assert env.b.recovery is not None and env.b.recovery.discarded == 2
    assert env.bodies("q") == [b"x"]
    assert table_count(env, "contents") == 1


def test_queue_lookup_after_recovery_of_missing_queue_is_404(env: Env) -> None:
    b = env.restart()
    with pytest.raises(NotFound):
        b.queue("/", "nope")


def test_recovered_messages_are_not_counted_as_published_and_new_ones_queue_behind(env: Env) -> None:
    env.b.declare_queue("/", "q")
    for body in (b"a", b"b", b"c"):
        env.pub("q", body)
    assert env.b.snapshot().queue("q").published == 3
    b = env.restart()
    q = b.queue("/", "q")
    assert (b.snapshot().queue("q").published, q.ready_count) == (0, 3)
    env.pub("q", b"d")
    assert b.snapshot().queue("q").published == 1
    assert env.bodies("q") == [b"a", b"b", b"c", b"d"]
    assert [m.seq for m in q.messages()] == sorted({m.seq for m in q.messages()})
