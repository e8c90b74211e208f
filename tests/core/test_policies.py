"""Policies: which one RabbitMQ applies, the settings a queue ends up with, and lint using them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mqstudio import cli
from mqstudio.core.definitions import import_definitions
from mqstudio.core.document import TopologyDocument
from mqstudio.core.lint import lint
from mqstudio.core.model import Binding, Consumer, Exchange, ExchangeType, Queue, Topology
from mqstudio.core.policies import (
    document_default_queue_types,
    document_policies,
    effective_exchange,
    effective_queue,
    matching_policy,
)


def policy(
    name: str, pattern: str = ".*", priority: int = 0, apply_to: str = "all", vhost: str = "/", **d: Any
) -> dict[str, Any]:
    definition = {key.replace("_", "-"): value for key, value in d.items()}
    return {
        "vhost": vhost,
        "name": name,
        "pattern": pattern,
        "apply-to": apply_to,
        "priority": priority,
        "definition": definition,
    }


def qq(name: str = "work", **args: Any) -> Queue:
    return Queue(name, arguments={"x-queue-type": "quorum", **args})


# -- matching -------------------------------------------------------------------------------------
def test_highest_priority_matching_policy_wins_and_ties_go_to_the_first() -> None:
    policies = [
        policy("low", message_ttl=1),
        policy("high", priority=5, message_ttl=2),
        policy("high2", priority=5),
    ]
    assert matching_policy(Queue("work"), policies) == policies[1]


def test_pattern_is_an_unanchored_regex_and_vhost_must_match() -> None:
    assert matching_policy(Queue("my-work-queue"), [policy("p", "work")]) is not None
    assert matching_policy(Queue("work"), [policy("p", "^jobs$")]) is None
    assert matching_policy(Queue("work"), [policy("p", vhost="other")]) is None
    assert matching_policy(Queue("work", vhost="other"), [policy("p", vhost="other")]) is not None
    assert matching_policy(Queue("work"), [policy("p", "([")]) is None  # unreadable pattern: no match


@pytest.mark.parametrize(
    ("apply_to", "queue", "exchange"),
    [
        ("all", True, True),
        ("queues", True, False),
        ("exchanges", False, True),
        ("classic_queues", True, False),
        ("quorum_queues", False, False),
        ("streams", False, False),
    ],
)
def test_apply_to_selects_objects(apply_to: str, queue: bool, exchange: bool) -> None:
    policies = [policy("p", apply_to=apply_to)]
    assert (matching_policy(Queue("work"), policies) is not None) is queue
    assert (matching_policy(Exchange("work"), policies) is not None) is exchange


def test_quorum_queues_and_streams_apply_to() -> None:
    assert matching_policy(qq(), [policy("p", apply_to="quorum_queues")]) is not None
    stream = Queue("s", arguments={"x-queue-type": "stream"})
    assert matching_policy(stream, [policy("p", apply_to="streams", max_age="7D")]) is not None


def test_a_policy_with_a_key_the_queue_type_does_not_support_does_not_apply() -> None:
    # rabbit_queue_type:is_policy_applicable: delivery-limit is a quorum-only key, so this policy
    # skips classic queues entirely; the lower-priority one applies instead.
    policies = [
        policy("qq", priority=9, dead_letter_exchange="a", delivery_limit=5),
        policy("all", dead_letter_exchange="b"),
    ]
    assert matching_policy(Queue("work"), policies) == policies[1]
    assert matching_policy(qq(), policies) == policies[0]


def test_malformed_policies_are_ignored() -> None:
    assert matching_policy(Queue("work"), ["nope", {"name": "x"}, {"pattern": ".*", "definition": 3}]) is None


# -- effective settings ---------------------------------------------------------------------------
def test_policy_fills_in_missing_arguments_and_the_queue_keeps_its_id() -> None:
    q = Queue("work", arguments={"x-max-length": 5})
    eff, applied = effective_queue(q, [policy("dlx", dead_letter_exchange="dlx", message_ttl=100)])
    assert applied is not None and applied["name"] == "dlx"
    assert eff.id == q.id and eff is not q
    assert eff.arguments == {"x-max-length": 5, "x-dead-letter-exchange": "dlx", "x-message-ttl": 100}
    assert q.arguments == {"x-max-length": 5}  # the design is untouched


def test_classic_queue_argument_wins_except_numbers_take_the_lower() -> None:
    q = Queue(
        "work", arguments={"x-dead-letter-exchange": "mine", "x-message-ttl": 500, "x-overflow": "drop-head"}
    )
    eff, _ = effective_queue(
        q, [policy("p", dead_letter_exchange="theirs", message_ttl=100, overflow="reject-publish")]
    )
    assert eff.arguments["x-dead-letter-exchange"] == "mine"
    assert eff.arguments["x-message-ttl"] == 100
    assert eff.arguments["x-overflow"] == "drop-head"


def test_quorum_queue_takes_the_policys_overflow() -> None:
    eff, _ = effective_queue(qq(**{"x-overflow": "drop-head"}), [policy("p", overflow="reject-publish")])
    assert eff.arguments["x-overflow"] == "reject-publish"


def test_without_a_matching_policy_the_queue_itself_is_returned() -> None:
    q = Queue("work")
    assert effective_queue(q, None) == (q, None)
    assert effective_queue(q, [policy("p", "^other$")]) == (q, None)


def test_exchange_policy_alternate_exchange_unless_an_argument_sets_one() -> None:
    eff, _ = effective_exchange(Exchange("e"), [policy("ae", alternate_exchange="unrouted")])
    assert eff.alternate_exchange == "unrouted"
    eff, _ = effective_exchange(
        Exchange("e", arguments={"alternate-exchange": "own"}), [policy("ae", alternate_exchange="x")]
    )
    assert eff.alternate_exchange == "own"


# -- lint -----------------------------------------------------------------------------------------
def design(*queues: Queue, exchanges: tuple[str, ...] = ("in",)) -> Topology:
    t = Topology()
    for name in exchanges:
        t.add_node(Exchange(name, ExchangeType.FANOUT))
    for q in queues:
        t.add_node(q)
        t.add_binding(Binding(t.exchanges[0].id, q.id))
    return t


def codes(t: Topology, policies: list[dict[str, Any]] | None = None) -> list[str]:
    return [f.code for f in lint(t, policies=policies)]


def test_ttl_and_length_limit_from_a_policy_without_dlx_are_flagged_and_named() -> None:
    t = design(Queue("work"))
    findings = lint(t, policies=[policy("limits", message_ttl=1000, max_length=10)])
    by_code = {f.code: f for f in findings}
    assert "ttl-without-dlx" in by_code and "max-length-drops" in by_code
    assert "(set by policy 'limits')" in by_code["ttl-without-dlx"].message


def test_dlx_from_a_policy_must_exist() -> None:
    t = design(Queue("work", arguments={"x-message-ttl": 5}))
    findings = lint(t, policies=[policy("dlx", dead_letter_exchange="gone")])
    missing = [f for f in findings if f.code == "dlx-missing"]
    assert len(missing) == 1 and "'gone' (set by policy 'dlx')" in missing[0].message
    assert "ttl-without-dlx" not in codes(t, [policy("dlx", dead_letter_exchange="gone")])


def test_consumer_rejects_are_kept_when_a_policy_sets_the_dlx() -> None:
    t = design(Queue("work"), exchanges=("in", "dlx"))
    t.add_node(Consumer("flaky", source=t.queues[0].id, failure_rate=0.5))
    assert "consumer-rejects-dropped" in codes(t)
    assert "consumer-rejects-dropped" not in codes(t, [policy("p", "^work$", dead_letter_exchange="dlx")])


def test_dead_letter_cycle_through_policy_settings_is_found() -> None:
    # Two queues whose TTL and DLX come from a policy, dead-lettering into each other by name.
    t = Topology()
    t.add_node(Exchange("x", ExchangeType.DIRECT))
    a, b = Queue("a"), Queue("b")
    for q in (a, b):
        t.add_node(q)
        t.add_binding(Binding(t.exchanges[0].id, q.id, q.name))
    policies = [
        policy("pa", "^a$", dead_letter_exchange="x", dead_letter_routing_key="b", message_ttl=1),
        policy("pb", "^b$", dead_letter_exchange="x", dead_letter_routing_key="a", message_ttl=1),
    ]
    assert "dead-letter-cycle" not in codes(t)
    assert "dead-letter-cycle" in codes(t, policies)


def test_at_least_once_fallback_uses_the_effective_overflow() -> None:
    t = design(qq(**{"x-dead-letter-strategy": "at-least-once", "x-dead-letter-exchange": "in"}))
    assert "dead-letter-strategy-fallback" in codes(t)
    assert "dead-letter-strategy-fallback" not in codes(t, [policy("o", overflow="reject-publish")])


def test_stream_length_retention_is_not_a_dropping_limit() -> None:
    t = design(Queue("s", arguments={"x-queue-type": "stream", "x-max-length-bytes": 10**9}))
    assert "max-length-drops" not in codes(t)


def test_alternate_exchange_from_a_policy_counts_for_unbound_exchanges() -> None:
    t = Topology()
    t.add_node(Exchange("lonely"))
    t.add_node(Exchange("unrouted", ExchangeType.FANOUT))
    t.add_node(Queue("u"))
    t.add_binding(Binding(t.exchanges[1].id, t.queues[0].id))
    assert "exchange-unbound" in codes(t)
    assert "exchange-unbound" not in codes(t, [policy("ae", "^lonely$", alternate_exchange="unrouted")])
    assert "alternate-exchange-missing" in codes(t, [policy("ae", "^lonely$", alternate_exchange="nowhere")])


# -- documents ------------------------------------------------------------------------------------
def test_document_policies_fill_in_the_vhost_of_a_per_vhost_import() -> None:
    data = {"policies": [{"name": "p", "pattern": ".*", "definition": {}}], "queues": [], "exchanges": []}
    document = import_definitions(data, vhost="eu")
    assert document_policies(document) == [{"vhost": "eu", "name": "p", "pattern": ".*", "definition": {}}]
    assert document_policies(TopologyDocument()) is None


def test_document_default_queue_types_read_vhost_metadata() -> None:
    data = {
        "vhosts": [
            {"name": "/", "metadata": {"default_queue_type": "quorum"}},
            {"name": "new", "default_queue_type": "stream", "metadata": {}},
            {"name": "plain"},
            {"name": "odd", "metadata": {"default_queue_type": "undefined"}},
        ],
        "queues": [],
    }
    assert document_default_queue_types(import_definitions(data)) == {"/": "quorum", "new": "stream"}


def test_cli_validate_lints_with_the_files_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "rabbit_version": "4.1.0",
        "vhosts": [{"name": "/"}],
        "policies": [policy("dlx", "^work$", dead_letter_exchange="dlx")],
        "exchanges": [
            {"name": "in", "vhost": "/", "type": "fanout"},
            {"name": "dlx", "vhost": "/", "type": "fanout"},
        ],
        "queues": [
            {"name": "work", "vhost": "/", "arguments": {"x-message-ttl": 1000}},
            {"name": "dead", "vhost": "/"},
        ],
        "bindings": [
            {"source": "in", "vhost": "/", "destination": "work", "destination_type": "queue"},
            {"source": "dlx", "vhost": "/", "destination": "dead", "destination_type": "queue"},
        ],
    }
    path = tmp_path / "defs.json"
    path.write_text(json.dumps(data))
    assert cli.main(["validate", str(path), "--strict"]) == 0
    assert "ttl-without-dlx" not in capsys.readouterr().out
