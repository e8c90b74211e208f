"""The Messages panel: bounded rows, batched inserts, filters, safe rendering of huge and binary bodies,
JSONL save, and a real tail of the embedded broker (joined at the end)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt

from mqstudio.backends.base import BrokerMessage
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.ops.jsonl import read_messages
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.ui.panels.message_models import (
    DETAIL_LIMIT,
    FilterError,
    MessageFilter,
    MessageTailTableModel,
    TailBuffer,
    body_preview,
    decode_body,
    topic_matches,
)
from mqstudio.ui.panels.messages import MessageTailPanel


def msg(
    key: str = "order.created", body: bytes = b'{"order": {"id": 42}}', **headers: object
) -> BrokerMessage:
    return BrokerMessage("q", body, exchange="orders", routing_key=key, headers=dict(headers),
                         properties={"content_type": "application/json"})


def batch(*messages: BrokerMessage) -> list[tuple[float, BrokerMessage]]:
    return [(1_700_000_000.0, m) for m in messages]


# -- model ------------------------------------------------------------------------------------------


def test_rows_wrap_at_the_cap_keeping_the_newest(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = MessageTailTableModel(cap=100)
    for start in range(0, 1000, 50):
        model.append(batch(*(msg(key=f"k.{i}") for i in range(start, start + 50))))
    assert model.rowCount() == 100 == model.kept
    assert model.message(0).routing_key == "k.900" and model.message(99).routing_key == "k.999"
    assert model.total_seen == 1000


def test_a_batch_is_one_insert_signal(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = MessageTailTableModel(cap=1000)
    inserts: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    model.append(batch(*(msg() for _ in range(250))))
    model.append(batch(*(msg() for _ in range(250))))
    assert inserts == [(0, 249), (250, 499)]


def test_wrapping_removes_the_oldest_rows_in_one_signal(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = MessageTailTableModel(cap=10)
    model.append(batch(*(msg() for _ in range(10))))
    removed: list[tuple[int, int]] = []
    model.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))
    model.append(batch(*(msg() for _ in range(4))))
    assert removed == [(0, 3)] and model.rowCount() == 10


def test_body_bytes_are_bounded_too(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = MessageTailTableModel(cap=1000, max_bytes=10 * 1024)
    model.append(batch(*(msg(body=b"x" * 1024) for _ in range(50))))
    assert model.kept == 10 and model.kept_bytes == 10 * 1024


def test_buffer_keeps_the_newest_and_counts_what_it_dropped() -> None:
    buffer = TailBuffer(cap=5)
    for i in range(8):
        buffer.push(msg(key=str(i)))
    drained = buffer.drain()
    assert [m.routing_key for _, m in drained] == ["3", "4", "5", "6", "7"]
    assert buffer.dropped == 3 and buffer.drain() == []


def test_buffer_takes_pushes_from_many_threads() -> None:
    buffer = TailBuffer(cap=100_000)
    threads = [threading.Thread(target=lambda: [buffer.push(msg()) for _ in range(1000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(buffer.drain()) == 4000


# -- filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [("order.*", "order.created", True), ("order.*", "order.created.eu", False), ("order.#", "order", True),
     ("#", "", True), ("#.eu", "order.created.eu", True), ("*.created", "order.paid", False),
     ("a.#.z", "a.b.c.z", True), ("a.*", "a", False)],
)
def test_routing_key_patterns_match_word_by_word(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_filters_by_key_header_text_and_json_path(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = MessageTailTableModel()
    model.append(batch(
        msg("order.created", b'{"order": {"id": 42}, "items": [{"sku": "A"}]}', tenant="acme"),
        msg("order.paid", b'{"order": {"id": 7}}', tenant="acme"),
        msg("order.created", b"plain text body", tenant="other"),
        msg("order.created", b"\x00\x01binary"),
    ))
    model.set_filter(MessageFilter(routing_key="order.created"))
    assert model.rowCount() == 3
    model.set_filter(MessageFilter(header="tenant=acme"))
    assert model.rowCount() == 2
    model.set_filter(MessageFilter(body="text"))
    assert model.rowCount() == 1
    model.set_filter(MessageFilter(body="$.order.id=42"))
    assert [model.message(r).routing_key for r in range(model.rowCount())] == ["order.created"]
    model.set_filter(MessageFilter(body='$.items[0].sku=A'))
    assert model.rowCount() == 1
    model.set_filter(MessageFilter(routing_key="order.*", header="tenant=acme", body="$.order.id=7"))
    assert model.rowCount() == 1 and model.message(0).routing_key == "order.paid"
    model.append(batch(msg("order.paid", b'{"order": {"id": 7}}', tenant="acme")))  # new rows are filtered
    assert model.rowCount() == 2 and model.kept == 5


def test_bad_filters_say_what_is_expected() -> None:
    with pytest.raises(FilterError, match="name=value"):
        MessageFilter(header="tenant")
    with pytest.raises(FilterError, match=r"\$\.order\.id=42"):
        MessageFilter(body="$.order")


# -- bodies --------------------------------------------------------------------------------------


def test_huge_body_renders_only_its_first_64_kib(qtbot) -> None:  # type: ignore[no-untyped-def]
    huge = b'{"data": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    kind, text, truncated = decode_body(huge)
    assert truncated and kind == "text" and len(text) == DETAIL_LIMIT
    assert len(body_preview(huge)) < 200
    kind, text, truncated = decode_body(huge, None)
    assert kind == "json" and not truncated


def test_binary_bodies_are_a_hex_dump_and_a_short_preview() -> None:
    data = bytes(range(256)) * 4
    kind, text, _ = decode_body(data)
    assert kind == "binary" and text.splitlines()[1].startswith("00000010  10 11 12")
    assert body_preview(data).startswith("⟨binary 1.0 KiB⟩ 00 01 02")


def test_text_cut_inside_a_multibyte_character_is_still_text() -> None:
    body = "é".encode() * (DETAIL_LIMIT)  # 2 bytes each: the cut can fall inside one
    kind, _text, truncated = decode_body(body[: DETAIL_LIMIT + 1] + b"x")
    assert kind == "text" and truncated


def test_panel_details_show_pretty_json_and_offer_show_all_for_huge_bodies(qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = MessageTailPanel()
    qtbot.addWidget(panel)
    panel.buffer.push(msg(body=b'{"order":{"id":42}}', tenant="acme"))
    panel.buffer.push(msg(body=b"y" * (5 * 1024 * 1024)))
    panel.buffer.push(msg(body=bytes(range(256))))
    assert panel.drain() == 3
    panel.table.selectRow(0)
    assert '"id": 42' in panel.details.toPlainText() and "tenant: acme" in panel.details.toPlainText()
    assert panel.show_all_button.isHidden()
    panel.table.selectRow(1)
    assert "first 64.0 KiB shown" in panel.details_title.text() and not panel.show_all_button.isHidden()
    assert len(panel.details.toPlainText()) < DETAIL_LIMIT + 1000
    panel.show_all()
    assert len(panel.details.toPlainText()) > 5 * 1024 * 1024
    panel.table.selectRow(2)
    assert "binary" in panel.details_title.text() and "00000000  00 01 02" in panel.details.toPlainText()
    for column in range(6):  # every cell renders without raising
        panel.model.data(panel.model.index(1, column), Qt.ItemDataRole.DisplayRole)
    assert panel.model.data(QModelIndex()) is None
    panel.shutdown()


def test_pause_holds_messages_until_resumed(qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = MessageTailPanel()
    qtbot.addWidget(panel)
    panel.set_paused(True)
    panel.buffer.push(msg())
    assert panel.drain() == 0 and panel.model.rowCount() == 0
    assert "1 waiting" in panel.count_label.text()
    panel.set_paused(False)
    assert panel.model.rowCount() == 1
    panel.clear()
    assert panel.model.rowCount() == 0
    panel.shutdown()


def test_panel_filters_from_the_fields_and_reports_errors(qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = MessageTailPanel()
    qtbot.addWidget(panel)
    panel.buffer.push(msg("order.created", tenant="acme"))
    panel.buffer.push(msg("order.paid", tenant="other"))
    panel.drain()
    panel.key_filter.setText("*.paid")
    assert panel.apply_filters() and panel.model.rowCount() == 1
    assert "1 shown of 2" in panel.count_label.text()
    panel.header_filter.setText("tenant")
    assert not panel.apply_filters() and "name=value" in panel.filter_error.text()
    panel.header_filter.clear()
    panel.key_filter.clear()
    assert panel.model.rowCount() == 2
    panel.shutdown()


def test_save_writes_the_listed_messages_as_jsonl(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = MessageTailPanel()
    qtbot.addWidget(panel)
    panel.buffer.push(msg("order.created", b'{"a": 1}', tenant="acme"))
    panel.buffer.push(msg("order.paid", b"\xff\x00binary"))
    panel.drain()
    path = tmp_path / "tail.jsonl"
    assert panel.save(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["routing_key"] == "order.created"
    back = list(read_messages(path))
    assert back[1].body == b"\xff\x00binary" and back[0].headers == {"tenant": "acme"}
    panel.shutdown()


# -- a real tail ------------------------------------------------------------------------------------


@pytest.fixture
def broker_thread() -> Iterator[EmbeddedBrokerThread]:
    bt = EmbeddedBrokerThread(port=0)
    bt.start()
    yield bt
    assert bt.stop(10.0)


def test_tail_of_the_embedded_broker_fills_the_table(qtbot, broker_thread: EmbeddedBrokerThread) -> None:  # type: ignore[no-untyped-def]
    def setup(b):  # type: ignore[no-untyped-def]
        b.declare_exchange("/", "orders", "topic")
        b.declare_queue("/", "all")
        b.queue_bind("/", "all", "orders", "#")

    broker_thread.call(setup).result(10)
    panel = MessageTailPanel(lambda: EmbeddedBackend(broker_thread))
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.tailing_changed):
        assert panel.start("orders")
    publisher = EmbeddedBackend(broker_thread)
    from mqstudio.backends.base import OutgoingMessage

    def published_seen() -> bool:
        publisher.publish(OutgoingMessage("orders", b'{"n": 1}', "order.created"))
        panel.drain()
        return panel.model.rowCount() > 0

    qtbot.waitUntil(published_seen, timeout=10_000)
    assert panel.model.message(0).exchange == "orders"
    panel.stop()
    panel.shutdown()
    assert not panel.runner.jobs()


def test_panel_shrinks_with_the_bottom_dock_row(qtbot) -> None:  # type: ignore[no-untyped-def]
    """The Messages dock shares the bottom row with Problems, Throughput and Dead Letters: it must not
    hold the row taller than the others (~130 px)."""
    panel = MessageTailPanel()
    qtbot.addWidget(panel)
    assert panel.minimumSizeHint().height() <= 130
