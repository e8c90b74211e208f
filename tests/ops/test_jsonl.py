"""ops.jsonl: exact value encoding (hypothesis round trip of arbitrary header tables), byte-exact
bodies, and export/import against the embedded broker without losing a message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqstudio.backends.base import BrokerMessage, CancelledError, OutgoingMessage
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.core.model import Queue, Topology
from mqstudio.ops.jsonl import (
    JsonlError,
    decode_value,
    dump_line,
    encode_value,
    export_messages,
    import_messages,
    load_line,
    read_messages,
)
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary() | st.decimals(allow_nan=False) | st.datetimes()
    | st.datetimes(timezones=st.just(UTC))
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
_tables = st.dictionaries(st.text(max_size=10), _values, max_size=6)


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 != 1.0 != True here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


@settings(max_examples=300)
@given(_tables)
def test_arbitrary_header_tables_round_trip_with_their_types(table: dict[str, Any]) -> None:
    text = json.dumps(encode_value(table))
    assert _same(decode_value(json.loads(text)), table)


@settings(max_examples=100)
@given(headers=_tables, properties=_tables, body=st.binary() | st.text().map(str.encode))
def test_a_message_line_round_trips_byte_exact(headers: dict[str, Any], properties: dict[str, Any],
                                               body: bytes) -> None:
    message = BrokerMessage("dlq", body, "ex", "rk", headers, properties, True, 17, 2, 40)
    line = dump_line(message)
    assert "\n" not in line
    back = load_line(line)
    assert back.body == body
    assert _same(back.headers, headers) and _same(back.properties, properties)
    assert (back.source, back.exchange, back.routing_key, back.redelivered) == ("dlq", "ex", "rk", True)
    assert (back.timestamp_ms, back.partition, back.offset) == (17, 2, 40)


@pytest.mark.parametrize(
    "value",
    [1, 1.0, True, 0, False, float("inf"), -0.0, b"\x00\xff", Decimal("1.50"), Decimal("1E+2"),
     datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=5, minutes=30))),
     (1, "a"), {"$bytes": "not a tag"}, {"$table": {"x": 1}}, "\ud800 lone surrogate",
     {"nested": {"deeper": [1, {"x-death": [{"count": 2}]}]}}],
)
def test_values_json_cannot_say_are_tagged_and_restored(value: Any) -> None:
    assert _same(decode_value(json.loads(json.dumps(encode_value(value)))), value)


def test_text_bodies_stay_readable_and_binary_ones_are_base64() -> None:
    text = json.loads(dump_line(BrokerMessage("q", "größe ✓".encode())))
    assert (text["body"], text["body_encoding"]) == ("größe ✓", "utf-8")
    binary = json.loads(dump_line(BrokerMessage("q", b"\xff\xfe\x00")))
    assert (binary["body"], binary["body_encoding"]) == ("//4A", "base64")


def test_a_line_that_is_not_a_message_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(dump_line(BrokerMessage("q", b"ok")) + "\n\n{not json}\n", encoding="utf-8")
    with pytest.raises(JsonlError, match="line 3"):
        list(read_messages(path))


# -- with the embedded broker -----------------------------------------------------------------------
@pytest.fixture
def backend() -> Iterator[EmbeddedBackend]:
    thread = EmbeddedBrokerThread(port=0, name="test-jsonl-broker")
    thread.start()
    b = EmbeddedBackend(thread)
    b.connect()
    t = Topology()
    t.add_node(Queue("parked.dlq"))
    t.add_node(Queue("restored"))
    b.apply(b.plan(t))
    yield b
    b.close()
    assert thread.stop(10.0)


HEADERS: dict[str, Any] = {
    "x-death": [{"count": 2, "reason": "rejected", "queue": "orders", "exchange": "work",
                 "time": datetime(2024, 5, 1, 12, tzinfo=UTC), "routing-keys": ["order.created"]}],
    "tenant": {"id": 7, "ratio": 0.5, "vip": False, "blob": b"\x00\x01"},
    "amount": Decimal("12.30"),
}


def test_export_is_non_destructive_and_import_restores_messages_exactly(
    backend: EmbeddedBackend, tmp_path: Path
) -> None:
    bodies = [b'{"order": 1}', b"\x00\x9f binary", "é".encode() * 10]
    for body in bodies:
        backend.publish(OutgoingMessage("", body, "parked.dlq", HEADERS,
                                        {"content_type": "application/json", "priority": 3,
                                         "message_id": "m-1"}))
    path = tmp_path / "out.jsonl"
    progress: list[tuple[int, int]] = []
    result = export_messages(backend, "parked.dlq", path, lambda d, t, _w: progress.append((d, t)))
    assert (result.count, result.method) == (3, "peek")
    assert len(backend.peek("parked.dlq", 10)) == 3  # nothing taken
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3

    imported = import_messages(path, backend, "restored")
    assert (imported.published, imported.unconfirmed, imported.unroutable) == (3, 0, 0)
    restored = backend.peek("restored", 10)
    assert [m.body for m in restored] == bodies
    for m in restored:
        assert _same(m.headers, HEADERS)
        assert m.properties["content_type"] == "application/json" and m.properties["priority"] == 3


def test_export_by_take_and_requeue_keeps_every_message(backend: EmbeddedBackend, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(250):
        backend.publish(OutgoingMessage("", str(n).encode(), "parked.dlq"))
    monkeypatch.setattr("mqstudio.ops.jsonl.peeks_in_place", lambda _b: False)  # as on RabbitMQ
    result = export_messages(backend, "parked.dlq", tmp_path / "all.jsonl")
    assert (result.count, result.method) == (250, "take-and-requeue")
    assert sorted(int(m.body) for m in backend.peek("parked.dlq", 1000)) == list(range(250))
    assert [m.body for m in read_messages(tmp_path / "all.jsonl")] == [str(n).encode() for n in range(250)]


def test_a_cancelled_export_leaves_no_file_and_no_message_taken(
    backend: EmbeddedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        backend.publish(OutgoingMessage("", str(n).encode(), "parked.dlq"))
    monkeypatch.setattr("mqstudio.ops.jsonl.peeks_in_place", lambda _b: False)

    class Cancelled:
        cancelled = True

    with pytest.raises(CancelledError):
        export_messages(backend, "parked.dlq", tmp_path / "x.jsonl", cancel=Cancelled())
    assert not (tmp_path / "x.jsonl").exists() and not list(tmp_path.iterdir())
    assert len(backend.peek("parked.dlq", 10)) == 5


def test_the_export_command_writes_the_queue_and_leaves_it_full(
    backend: EmbeddedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mqstudio import cli

    for n in range(3):
        backend.publish(OutgoingMessage("", str(n).encode(), "parked.dlq", {"n": n}))
    monkeypatch.setattr(cli, "_connect", lambda _args: backend)
    monkeypatch.setattr(cli, "_close", lambda _backend: None)
    path = tmp_path / "dlq.jsonl"
    assert cli.main(["export", "--url", "embedded://", "parked.dlq", str(path)]) == 0
    assert "exported 3 messages from parked.dlq" in capsys.readouterr().out
    assert [m.headers for m in read_messages(path)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert len(backend.peek("parked.dlq", 10)) == 3


def test_the_export_command_exits_2_for_a_missing_queue(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from mqstudio import cli

    assert cli.main(["export", "--url", "embedded://", "missing.dlq", str(tmp_path / "x.jsonl")]) == 2
    assert "cannot export missing.dlq" in capsys.readouterr().err
