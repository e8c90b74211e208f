"""The store back-ends on their own: tagged-JSON codec, SqliteStore file handling, NullStore, atomicity."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import ManualClock
from mqstudio.broker.journal import Journal, binding_key
from mqstudio.broker.message import Death, Properties
from mqstudio.broker.store import (
    SCHEMA_VERSION,
    STORE_FILENAME,
    Batch,
    NullStore,
    SqliteStore,
    StoreCorruptError,
    StoredState,
    StoreError,
    StoreLockedError,
    StoreVersionError,
    decode_deaths,
    decode_properties,
    decode_value,
    encode_deaths,
    encode_properties,
    encode_value,
)

# -- codec ------------------------------------------------------------------------------------------

AMQP_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.0,
    "",
    "héllo ✓",
    b"",
    b"\x00\xff raw",
    Decimal("3.14"),
    Decimal("-0.001"),
    datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    datetime(2024, 5, 1, 12, 30),
    datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
    [],
    [1, "a", b"b", [2, [3]], {"k": Decimal("1.0")}],
    {},
    {"nested": {"deeper": {"list": [1, 2, {"x": b"y"}], "ts": datetime(2020, 1, 1, tzinfo=UTC)}}},
    # Looks like a tag, must stay a table.
    {"b": "not base64", "m": 1},
]


@pytest.mark.parametrize("value", AMQP_VALUES, ids=repr)
def test_tagged_json_round_trips_amqp_values(value: Any) -> None:
    text = json.dumps(encode_value(value))
    back = decode_value(json.loads(text))
    assert back == value
    assert type(back) is type(value)


def test_tagged_json_keeps_bool_int_float_apart() -> None:
    back = decode_value(json.loads(json.dumps(encode_value([True, 1, 1.0]))))
    assert [type(v) for v in back] == [bool, int, float]


def test_non_finite_floats_are_tagged_not_bare_nan() -> None:
    text = json.dumps(encode_value([math.inf, -math.inf, math.nan]), allow_nan=False)
    inf, ninf, nan = decode_value(json.loads(text))
    assert inf == math.inf and ninf == -math.inf and math.isnan(nan)


def test_tuples_come_back_as_lists_like_pamqp_arrays() -> None:
    assert decode_value(encode_value((1, (2, 3)))) == [1, [2, 3]]


def test_unknown_python_types_are_kept_as_text() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert decode_value(encode_value({"x": Odd()})) == {"x": "odd"}


def test_unknown_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown value tag"):
        decode_value({"p": "pickle?"})


_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.datetimes(timezones=st.none() | st.just(UTC))
)
_values = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_values)
def test_codec_round_trip_property(value: Any) -> None:
    assert decode_value(json.loads(json.dumps(encode_value(value), allow_nan=False))) == value


def test_properties_round_trip_every_field() -> None:
    props = Properties(
        content_type="application/json",
        content_encoding="gzip",
        headers={"a": [1, {"b": Decimal("2.50")}], "raw": b"\x01", "when": datetime(2023, 1, 1, tzinfo=UTC)},
        delivery_mode=2,
        priority=7,
        correlation_id="c-1",
        reply_to="replies",
        expiration="60000",
        message_id="m-1",
        timestamp=datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC),
        type="order.created",
        user_id="guest",
        app_id="tests",
        cluster_id="legacy",
    )
    assert decode_properties(encode_properties(props)) == props
    assert decode_properties(encode_properties(Properties())) == Properties()


def test_properties_with_unknown_field_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown properties"):
        decode_properties('{"colour": "red"}')


def test_binding_key_equal_for_values_the_engine_calls_equal() -> None:
    assert binding_key({"x-match": "all", "n": 1}) == binding_key({"n": 1.0, "x-match": "all"})
    assert binding_key({"d": Decimal("1.0")}) == binding_key({"d": Decimal("1")})
    assert binding_key({"n": 1}) != binding_key({"n": True})
    assert binding_key(None) == binding_key({}) == ""


# -- SqliteStore files ---------------------------------------------------------------------------------


def test_new_store_is_wal_with_schema_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.close()
    con = sqlite3.connect(tmp_path / "s.db")
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_directory_path_holds_the_default_file(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    try:
        assert store.path == tmp_path / STORE_FILENAME
        assert store.location.endswith(STORE_FILENAME)
    finally:
        store.close()


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a" / "b" / "broker.db")
    store.close()
    assert (tmp_path / "a" / "b" / "broker.db").exists()


@pytest.mark.parametrize(("durability", "level"), [("power", 2), ("process", 1)])
def test_durability_chooses_synchronous_level(tmp_path: Path, durability: Any, level: int) -> None:
    store = SqliteStore(tmp_path / "s.db", durability=durability)
    try:
        assert store._con.execute("PRAGMA synchronous").fetchone()[0] == level
    finally:
        store.close()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        SqliteStore(tmp_path / "s.db", durability="sometimes")  # type: ignore[arg-type]


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreVersionError) as info:
        Broker.open(path)
    text = str(info.value)
    assert str(path) in text and "newer" in text and str(SCHEMA_VERSION + 1) in text
    assert info.value.path == str(path)


def test_garbage_file_is_refused_naming_the_file_and_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite3"
    garbage = b"this is not a database at all " * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreCorruptError) as info:
        Broker.open(path)
    text = str(info.value)
    assert str(path) in text and "--in-memory" in text and "move" in text.lower()
    # Never silently recreated: the file is left exactly as it was.
    assert path.read_bytes() == garbage


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.execute("INSERT INTO notes VALUES ('keep me')")
    con.commit()
    con.close()
    with pytest.raises(StoreCorruptError, match="not an mqstudio broker store"):
        SqliteStore(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT t FROM notes").fetchall() == [("keep me",)]
    con.close()


def test_malformed_record_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    b = Broker.open(path)
    b.declare_queue("/", "q")
    b.publish("/", "", "q", Properties(delivery_mode=2), b"x")
    b.close()
    con = sqlite3.connect(path)
    con.execute('UPDATE contents SET properties = \'{"headers": {"zz": 1}}\'')
    con.commit()
    con.close()
    with pytest.raises(StoreCorruptError) as info:
        Broker.open(path)
    assert str(path) in str(info.value)


def test_dead_letter_history_codec_round_trips() -> None:
    deaths = (
        Death("q\u00e9", "expired", 2, 1_700_000_000_123, "x", ("k", "cc"), "100"),
        Death("a", "rejected", 1, 5, "", ()),
    )
    assert decode_deaths(encode_deaths(deaths)) == deaths
    assert encode_deaths(()) is None and decode_deaths(None) == ()


@pytest.mark.parametrize(
    "text", ["{}", "[[1]]", '[["q", "r", "1", 0, "x", [], null]]', '[["q", "r", 1, 0, "x", [2], null]]']
)
def test_malformed_dead_letter_history_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="dead-letter history"):
        decode_deaths(text)


def test_malformed_stored_history_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    b = Broker.open(path)
    b.declare_queue("/", "q")
    b.publish("/", "", "q", Properties(delivery_mode=2), b"x")
    b.close()
    con = sqlite3.connect(path)
    con.execute("UPDATE contents SET deaths = '[[\"q\"]]'")
    con.commit()
    con.close()
    with pytest.raises(StoreCorruptError):
        Broker.open(path)


def test_definition_the_engine_cannot_restore_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    b = Broker.open(path)
    b.declare_exchange("/", "x", "direct")
    b.close()
    con = sqlite3.connect(path)
    con.execute("UPDATE exchanges SET type = 'x-consistent-hash' WHERE name = 'x'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="x-consistent-hash") as info:
        Broker.open(path)
    assert str(path) in str(info.value)
    # The failed open released its lock: the file can be repaired and opened.
    con = sqlite3.connect(path)
    con.execute("UPDATE exchanges SET type = 'direct' WHERE name = 'x'")
    con.commit()
    con.close()
    Broker.open(path).close()


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    b = Broker.open(path)
    b.declare_queue("/", "q")
    for i in range(200):
        b.publish("/", "", "q", Properties(delivery_mode=2), b"x" * 500 + str(i).encode())
    b.close()
    # Fold the WAL into the main file, then cut the file in half.
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptError):
        Broker.open(path)


def test_second_broker_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = Broker.open(tmp_path)
    try:
        with pytest.raises(StoreLockedError, match="in use"):
            Broker.open(tmp_path)
    finally:
        first.close()
    Broker.open(tmp_path).close()  # free again once the first one closed


# -- apply / atomicity -----------------------------------------------------------------------------


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        ok = Batch(ops=[("vhost+", {"vhost": "/"})], contents=[(1, "", "q", "{}", b"a", None)])
        store.apply(ok)
        bad = Batch(
            ops=[("vhost+", {"vhost": "other"})],
            contents=[(2, "", "q", "{}", b"b", None), (1, "", "q", "{}", b"dup", None)],  # duplicate id
        )
        with pytest.raises(StoreError, match="cannot write"):
            store.apply(bad)
        state = store.load()
        assert state.vhosts == ["/"]
        assert list(state.contents) == [1]
    finally:
        store.close()


class _FlakyStore(NullStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = False
        self.applied: list[int] = []

    def apply(self, batch: Batch) -> None:
        if self.fail:
            raise StoreError("disk full")
        self.applied.append(len(batch))
        super().apply(batch)


def test_failed_commit_keeps_the_changes_pending_for_a_retry() -> None:
    store = _FlakyStore()
    b = Broker(ManualClock(), store=store)
    b.declare_queue("/", "q")
    b.publish("/", "", "q", Properties(delivery_mode=2), b"x")
    pending = b.pending_count
    store.fail = True
    with pytest.raises(StoreError):
        b.commit()
    assert b.needs_commit and b.pending_count == pending
    store.fail = False
    b.commit()
    assert not b.needs_commit and store.applied[-1] == pending


def test_null_store_recovers_nothing_but_counts_writes() -> None:
    store = NullStore()
    b = Broker(ManualClock(), store=store)
    assert store.load() == StoredState()
    b.declare_queue("/", "q")
    b.publish("/", "", "q", Properties(delivery_mode=2), b"x")
    b.commit()
    assert store.batches >= 1 and store.written >= 2


def test_journal_without_changes_does_not_touch_the_store() -> None:
    store = _FlakyStore()
    journal = Journal(store)
    store.fail = True
    journal.commit()  # nothing pending: no apply, so no error
