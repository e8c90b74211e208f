"""lint() finds designs RabbitMQ accepts but that lose messages, and leaves sound designs alone."""

from __future__ import annotations

from typing import Any

import pytest

from mqstudio.core.model import Binding, ConsumerGroup, Exchange, ExchangeType, Queue, Topic, Topology
from mqstudio.core.validation import LINT_RULES, Finding, Severity, lint


class Design:
    """A small builder: nodes by name, so tests read like the topology they draw."""

    def __init__(self) -> None:
        self.t = Topology()
        self.ids: dict[str, str] = {}

    def ex(
        self, name: str, kind: ExchangeType | str = ExchangeType.DIRECT, vhost: str = "/", **args: Any
    ) -> Design:
        node = Exchange(name, type=kind, vhost=vhost, arguments=args)
        self.t.add_node(node)
        self.ids[name] = node.id
        return self

    def q(self, name: str, vhost: str = "/", **args: Any) -> Design:
        node = Queue(name, vhost=vhost, arguments=args)
        self.t.add_node(node)
        self.ids[name] = node.id
        return self

    def bind(self, source: str, destination: str, key: str = "", **args: Any) -> Design:
        self.t.add_binding(Binding(self.ids[source], self.ids[destination], key, args))
        return self

    def codes(self, name: str | None = None) -> list[str]:
        object_id = self.ids[name] if name is not None else None
        return [f.code for f in lint(self.t) if object_id is None or f.object_id == object_id]


def dlx(name: str, key: str | None = None, **more: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"x-dead-letter-exchange": name, **more}
    if key is not None:
        args["x-dead-letter-routing-key"] = key
    return args


# -- dead-letter exchange that does not exist ---------------------------------------------------
def test_dlx_that_does_not_exist_is_an_error() -> None:
    d = Design().ex("work").q("jobs", **dlx("jobs.dlx")).bind("work", "jobs")
    findings = [f for f in lint(d.t) if f.code == "dlx-missing"]
    assert [(f.severity, f.object_id) for f in findings] == [(Severity.ERROR, d.ids["jobs"])]
    assert "jobs.dlx" in findings[0].message


@pytest.mark.parametrize("name", ["", "amq.direct"])
def test_default_and_builtin_exchanges_are_valid_dlxs(name: str) -> None:
    d = Design().ex("work").q("jobs", **dlx(name, "parking")).bind("work", "jobs")
    assert "dlx-missing" not in d.codes()


def test_dlx_in_another_vhost_does_not_count() -> None:
    d = Design().ex("jobs.dlx", vhost="/other").ex("work").q("jobs", **dlx("jobs.dlx")).bind("work", "jobs")
    assert "dlx-missing" in d.codes("jobs")


# -- dead-letter cycles ------------------------------------------------------------------------
def test_two_hop_cycle_through_a_topic_exchange_is_found() -> None:
    d = (
        Design()
        .ex("retry", ExchangeType.TOPIC)
        .q("a", **dlx("retry", "to.b.now", **{"x-message-ttl": 1000}))
        .q("b", **dlx("retry", "to.a", **{"x-message-ttl": 1000}))
        .bind("retry", "b", "to.b.*")
        .bind("retry", "a", "to.a.#")
    )
    cycles = [f for f in lint(d.t) if f.code == "dead-letter-cycle"]
    assert len(cycles) == 1
    assert cycles[0].severity is Severity.ERROR
    assert "a → b → a" in cycles[0].message


def test_topic_keys_that_do_not_match_break_the_cycle() -> None:
    d = (
        Design()
        .ex("retry", ExchangeType.TOPIC)
        .q("a", **dlx("retry", "to.b.now", **{"x-message-ttl": 1000}))
        .q("b", **dlx("retry", "elsewhere.a", **{"x-message-ttl": 1000}))
        .bind("retry", "b", "to.b.*")
        .bind("retry", "a", "to.a.#")
    )
    assert "dead-letter-cycle" not in d.codes()


def test_ttl_retry_ladder_is_not_a_cycle_finding() -> None:
    # work queue --(consumer rejects)--> retry DLX → wait queue --(TTL)--> work exchange → work queue.
    # The cycle contains a rejection, which RabbitMQ allows (https://www.rabbitmq.com/docs/dlx).
    d = (
        Design()
        .ex("work")
        .ex("work.retry")
        .q("jobs", **dlx("work.retry", "jobs"))
        .q("jobs.wait", **dlx("work", "jobs", **{"x-message-ttl": 5000}))
        .bind("work", "jobs", "jobs")
        .bind("work.retry", "jobs.wait", "jobs")
    )
    assert d.codes() == []


def test_queue_dead_lettering_to_the_default_exchange_without_a_key_cycles_into_itself() -> None:
    # The docs' own example: no dead-letter routing key, so the message keeps its key, the queue name.
    d = Design().ex("work").q("jobs", **dlx("", **{"x-message-ttl": 1000})).bind("work", "jobs", "x")
    assert "dead-letter-cycle" in d.codes("jobs")


def test_expiring_queue_bound_to_its_own_fanout_dlx_cycles() -> None:
    d = (
        Design()
        .ex("fan", ExchangeType.FANOUT)
        .q("jobs", **dlx("fan", **{"x-max-length": 10}))
        .bind("fan", "jobs")
    )
    assert "dead-letter-cycle" in d.codes("jobs")


def test_original_key_is_kept_through_a_direct_dlx_without_a_routing_key() -> None:
    d = (
        Design()
        .ex("work")
        .q("jobs", **dlx("work", **{"x-message-ttl": 1000}))
        .q("other", **{"x-message-ttl": 1000})
        .bind("work", "jobs", "jobs")
        .bind("work", "other", "other")
    )
    assert "dead-letter-cycle" in d.codes("jobs")
    d2 = (
        Design()
        .ex("work")
        .ex("front")
        .q("jobs", **dlx("work", **{"x-message-ttl": 1000}))
        .q("parked")
        .bind("front", "jobs", "in")
        .bind("work", "parked", "in.retry")
    )
    assert "dead-letter-cycle" not in d2.codes()


def test_cycle_through_an_exchange_to_exchange_binding_is_found() -> None:
    d = (
        Design()
        .ex("dlx")
        .ex("inner", ExchangeType.TOPIC)
        .q("jobs", **dlx("dlx", "jobs.expired", **{"x-message-ttl": 1000}))
        .bind("dlx", "inner", "jobs.expired")
        .bind("inner", "jobs", "jobs.*")
    )
    assert "dead-letter-cycle" in d.codes("jobs")


def test_a_cycle_is_reported_once_on_its_first_queue() -> None:
    d = (
        Design()
        .ex("x")
        .q("a", **dlx("x", "b", **{"x-message-ttl": 1}))
        .q("b", **dlx("x", "c", **{"x-message-ttl": 1}))
        .q("c", **dlx("x", "a", **{"x-message-ttl": 1}))
        .bind("x", "a", "a")
        .bind("x", "b", "b")
        .bind("x", "c", "c")
    )
    cycles = [f for f in lint(d.t) if f.code == "dead-letter-cycle"]
    assert [f.object_id for f in cycles] == [d.ids["a"]]
    assert "a → b → c → a" in cycles[0].message


def test_cycle_with_a_queue_without_ttl_or_limit_is_not_flagged() -> None:
    d = (
        Design()
        .ex("x")
        .q("a", **dlx("x", "b", **{"x-message-ttl": 1}))
        .q("b", **dlx("x", "a"))  # only consumers' rejections dead-letter from b
        .bind("x", "a", "a")
        .bind("x", "b", "b")
    )
    assert "dead-letter-cycle" not in d.codes()


# -- single-object traps -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "severity"),
    [
        ({"x-message-ttl": 1000}, "ttl-without-dlx", Severity.WARNING),
        ({"x-max-length": 10}, "max-length-drops", Severity.INFO),
        ({"x-max-length-bytes": 10, "x-overflow": "drop-head"}, "max-length-drops", Severity.INFO),
        ({"x-queue-type": "quorum", "x-max-priority": 5}, "quorum-max-priority", Severity.ERROR),
        (
            {"x-queue-type": "quorum", "x-overflow": "reject-publish-dlx"},
            "quorum-reject-publish-dlx",
            Severity.ERROR,
        ),
    ],
)
def test_queue_traps(args: dict[str, Any], code: str, severity: Severity) -> None:
    d = Design().ex("work").q("jobs", **args).bind("work", "jobs")
    found = [f for f in lint(d.t) if f.code == code]
    assert [(f.object_id, f.severity) for f in found] == [(d.ids["jobs"], severity)]


@pytest.mark.parametrize(
    "args",
    [
        {"x-message-ttl": 1000, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "parked"},
        {"x-max-length": 10, "x-overflow": "reject-publish"},
        {"x-max-length": 10, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "parked"},
        {"x-queue-type": "quorum", "x-overflow": "reject-publish"},
    ],
)
def test_queues_that_keep_their_messages_have_no_findings(args: dict[str, Any]) -> None:
    d = Design().ex("work").q("jobs", **args).bind("work", "jobs", "jobs")
    assert d.codes() == []


def test_unbound_queue_is_info_and_unbound_exchange_is_a_warning() -> None:
    d = Design().ex("lonely").q("orphan")
    by_code = {f.code: f for f in lint(d.t)}
    assert by_code["queue-unbound"].severity is Severity.INFO
    assert by_code["queue-unbound"].object_id == d.ids["orphan"]
    assert by_code["exchange-unbound"].severity is Severity.WARNING
    assert by_code["exchange-unbound"].object_id == d.ids["lonely"]


def test_exchange_with_an_alternate_exchange_is_not_unbound() -> None:
    d = Design().ex("catchall", ExchangeType.FANOUT).q("unrouted").bind("catchall", "unrouted")
    d.ex("front", **{"alternate-exchange": "catchall"})
    assert d.codes("front") == []


def test_alternate_exchange_that_does_not_exist_is_a_warning() -> None:
    d = Design().ex("front", **{"alternate-exchange": "nowhere"}).q("q").bind("front", "q")
    assert d.codes("front") == ["alternate-exchange-missing"]


def test_delayed_exchange_without_delayed_type_is_an_error() -> None:
    d = Design().ex("later", ExchangeType.DELAYED).q("q").bind("later", "q")
    assert d.codes("later") == ["delayed-type-missing"]


def test_duplicate_binding_is_flagged_once_on_the_copy() -> None:
    d = Design().ex("x").q("q").bind("x", "q", "k").bind("x", "q", "k").bind("x", "q", "other")
    dupes = [f for f in lint(d.t) if f.code == "duplicate-binding"]
    assert [f.object_id for f in dupes] == [d.t.bindings[1].id]


def test_consumer_group_subscribed_to_a_missing_topic_is_an_error() -> None:
    t = Topology()
    t.add_node(Topic("events", id="t"))
    t.add_node(ConsumerGroup("g", topics=["t", "gone"], id="g"))
    assert [(f.code, f.object_id) for f in lint(t)] == [("group-topic-missing", "g")]


# -- order and wording -------------------------------------------------------------------------
def test_findings_come_in_severity_then_topology_order() -> None:
    d = Design().q("z-orphan").ex("x").q("a", **{"x-message-ttl": 5}).ex("later", ExchangeType.DELAYED)
    findings = lint(d.t)
    ranks = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    assert [ranks[f.severity] for f in findings] == sorted(ranks[f.severity] for f in findings)
    infos = [f.object_id for f in findings if f.severity is Severity.INFO]
    assert infos == [d.ids["z-orphan"], d.ids["a"]]
    assert findings == lint(d.t)


def test_every_rule_says_why_and_how_to_fix() -> None:
    for code, (severity, template) in LINT_RULES.items():
        assert isinstance(severity, Severity)
        assert code == code.lower()
        assert len(template) > 60, code


def test_findings_are_frozen_values() -> None:
    finding = Finding(Severity.INFO, "q", "queue-unbound", "m")
    with pytest.raises(AttributeError):
        finding.code = "other"  # type: ignore[misc]


# -- exchange types mqstudio does not simulate ----------------------------------------------------
def test_plugin_exchange_type_is_an_info_naming_the_type() -> None:
    d = Design().ex("hash", "x-consistent-hash").q("a").bind("hash", "a", "10")
    findings = [f for f in lint(d.t) if f.code == "exchange-type-not-simulated"]
    assert len(findings) == 1 and findings[0].severity is Severity.INFO
    assert "routing of exchange type 'x-consistent-hash' is not simulated" in findings[0].message


def test_known_types_are_simulated() -> None:
    d = Design().ex("t", ExchangeType.TOPIC).q("a").bind("t", "a", "#")
    assert "exchange-type-not-simulated" not in [f.code for f in lint(d.t)]


def test_misspelt_type_gets_a_hint() -> None:
    d = Design().ex("f", "Fan-Out").q("a").bind("f", "a")
    (finding,) = [f for f in lint(d.t) if f.code == "exchange-type-not-simulated"]
    assert "Did you mean 'fanout'?" in finding.message


def test_dead_letter_cycle_through_a_plugin_exchange_is_assumed_possible() -> None:
    d = (
        Design()
        .ex("hash", "x-modulus-hash")
        .q("a", **{"x-dead-letter-exchange": "hash", "x-message-ttl": 1})
        .bind("hash", "a")
    )
    assert "dead-letter-cycle" in [f.code for f in lint(d.t)]


def test_at_least_once_without_reject_publish_is_a_warning() -> None:
    args = {"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-strategy": "at-least-once"}
    (finding,) = [f for f in lint(Design().q("a", **args).t) if f.code == "dead-letter-strategy-fallback"]
    assert finding.severity is Severity.WARNING and "drop-head" in finding.message
    fine = {**args, "x-overflow": "reject-publish"}
    assert "dead-letter-strategy-fallback" not in [f.code for f in lint(Design().q("a", **fine).t)]
