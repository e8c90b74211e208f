"""Channel-layer helpers without sockets: confirm coalescing, property conversion, reply tokens."""

from __future__ import annotations

import datetime

from pamqp import commands
from pamqp import header as pamqp_header

from mqstudio.amqp.basic import ConfirmTracker, ReplyRegistry, from_wire, to_wire
from mqstudio.amqp.framing import FrameBuffer, marshal_content
from mqstudio.broker.message import Properties


def _frames(tracker: ConfirmTracker) -> list[tuple[str, int, bool]]:
    return [(type(f).__name__, f.delivery_tag, f.multiple) for f in tracker.release()]


def test_confirm_sequence_starts_at_one_and_acks_coalesce() -> None:
    tracker = ConfirmTracker()
    for _ in range(3):
        tracker.record(True)
    assert _frames(tracker) == [("Ack", 3, True)]
    tracker.record(True)
    assert _frames(tracker) == [("Ack", 4, False)]


def test_record_says_when_the_first_confirm_of_a_batch_is_waiting() -> None:
    tracker = ConfirmTracker()
    assert [tracker.record(ack) for ack in (True, False, True)] == [True, False, False]
    _frames(tracker)
    assert tracker.record(True) is True
    tracker.clear()
    assert tracker.record(False) is True


def test_nacks_split_runs_of_acks() -> None:
    tracker = ConfirmTracker()
    for ack in (True, True, False, True, True, True):
        tracker.record(ack)
    assert _frames(tracker) == [("Ack", 2, True), ("Nack", 3, False), ("Ack", 6, True)]


def test_failed_commit_turns_every_pending_confirm_into_a_nack() -> None:
    tracker = ConfirmTracker()
    tracker.record(True)
    tracker.record(True)
    tracker.fail_all()
    assert _frames(tracker) == [("Nack", 1, False), ("Nack", 2, False)]


def test_properties_round_trip_through_the_wire_form() -> None:
    wire = commands.Basic.Properties(
        content_type="text/plain",
        headers={"k": "v", "n": 5},
        delivery_mode=2,
        priority=4,
        message_type="evt",
        timestamp=datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    )
    props = from_wire(wire)
    assert props.type == "evt"
    assert to_wire(props) == wire


def test_non_utf8_header_strings_are_sent_as_byte_arrays() -> None:
    # pamqp decodes a non-UTF-8 longstr as bytes but cannot encode bytes again.
    props = Properties(headers={"raw": b"\x80\x81", "nested": {"list": [b"\xff"]}})
    data = marshal_content(1, commands.Basic.Deliver("c", 1, False, "", "q"), to_wire(props), b"", 4096)
    frames = FrameBuffer(4096, expect_header=False).feed(data)
    header = frames[1][1]
    assert isinstance(header, pamqp_header.ContentHeader)
    assert header.properties.headers == {
        "raw": bytearray(b"\x80\x81"),
        "nested": {"list": [bytearray(b"\xff")]},
    }


def test_reply_registry_resolves_only_its_own_tokens() -> None:
    registry: ReplyRegistry[str] = ReplyRegistry()
    token = registry.register("channel-1")
    assert registry.lookup(f"amq.rabbitmq.reply-to.{token}") == "channel-1"
    assert registry.lookup("amq.rabbitmq.reply-to.forged") is None
    assert registry.lookup(token) is None
    registry.unregister(token)
    assert registry.lookup(f"amq.rabbitmq.reply-to.{token}") is None
