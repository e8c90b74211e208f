"""Float and double header values through the RabbitMQ backend (`mqstudio.backends.rabbitmq_pika`).

pika 1.4 decodes the AMQP field-table types ``f`` and ``d`` as ints (1.5 -> 1) and cannot encode a
float. Messages published by other clients are sent here as hand-built frames (the table bytes are
made with `struct`, not by pika), read back through the backend, replayed and read by aio-pika, and
exported to JSONL and imported again: every float must come out as the same float.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import pika
import pika.data
import pytest
from pika.spec import Basic, BasicProperties

import mqstudio.backends.rabbitmq  # noqa: F401  (applies the fix, as the app does)
from mqstudio.backends import rabbitmq_pika
from mqstudio.backends.base import OutgoingMessage, PublishResult
from mqstudio.backends.rabbitmq import RabbitMQBackend
from mqstudio.ops.jsonl import export_messages, import_messages
from mqstudio.ops.replay import ReplayJob
from tests.fixtures.rabbitmq import RabbitMQService
from tests.ops.replay_helpers import count, deploy, eventually

MARK = "_mqstudio_float_fix"  # where a wrapper keeps the pika function it wraps


# -- hand-built AMQP field tables -------------------------------------------------------------------
def _d(value: float) -> bytes:
    return b"d" + struct.pack(">d", value)


def _f(value: float) -> bytes:
    return b"f" + struct.pack(">f", value)


def _i(value: int) -> bytes:
    return b"I" + struct.pack(">i", value)


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"S" + struct.pack(">I", len(raw)) + raw


def _table(items: dict[str, bytes]) -> bytes:
    inner = b"".join(bytes([len(k)]) + k.encode() + v for k, v in items.items())
    return struct.pack(">I", len(inner)) + inner


def _array(values: list[bytes]) -> bytes:
    inner = b"".join(values)
    return b"A" + struct.pack(">I", len(inner)) + inner


def _single(value: float) -> float:
    """`value` as a 32-bit float holds it (what an ``f`` field carries)."""
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


TABLE = _table(
    {
        "dbl": _d(0.1),
        "flt": _f(1.1),
        "whole": _d(3.0),
        "tiny": _d(-2.5e-300),
        "half": _f(1.5),
        "tenant": _s("a"),
        "nested": b"F"
        + _table(
            {"x": _d(1.25), "arr": _array([_d(0.3), _f(0.5), _i(7), b"F" + _table({"deep": _d(6.02e23)})])}
        ),
    }
)
EXPECTED: dict[str, Any] = {
    "dbl": 0.1,
    "flt": _single(1.1),
    "whole": 3.0,
    "tiny": -2.5e-300,
    "half": 1.5,
    "tenant": "a",
    "nested": {"x": 1.25, "arr": [0.3, 0.5, 7, {"deep": 6.02e23}]},
}


def same(got: Any, want: Any) -> bool:
    """Equal and of the same kinds throughout (``3.0`` is not ``3``, text may be str or bytes)."""
    if isinstance(want, str):
        return got in (want, want.encode())
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


# -- pika itself, fixed ------------------------------------------------------------------------------
def test_pika_decodes_float_and_double_fields_exactly_in_nested_tables_and_arrays() -> None:
    decoded, end = pika.data.decode_table(TABLE, 0)
    assert end == len(TABLE)
    assert same(decoded, EXPECTED), decoded
    assert decoded["flt"] != 1.1 and decoded["flt"] == pytest.approx(1.1)  # the 32-bit value, not rounded


def test_pika_encodes_a_float_as_a_double_everywhere_and_reads_it_back_unchanged() -> None:
    headers = {"a": 0.1, "b": [1.5, {"c": -0.0}], "n": 3, "w": 3.0}
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, headers)
    raw = b"".join(pieces)
    assert raw == _table(
        {"a": _d(0.1), "b": _array([_d(1.5), b"F" + _table({"c": _d(-0.0)})]), "n": _i(3), "w": _d(3.0)}
    )
    props = BasicProperties().decode(b"".join(BasicProperties(headers=headers).encode()))
    assert same(props.headers, headers)
    assert struct.pack(">d", props.headers["b"][1]["c"]) == struct.pack(">d", -0.0)  # the sign too


def test_apply_is_idempotent() -> None:
    before = (pika.data.decode_value, pika.data.encode_value)
    assert rabbitmq_pika.apply() == (False, False)
    assert rabbitmq_pika.apply() == (False, False)
    assert (pika.data.decode_value, pika.data.encode_value) == before


def test_apply_wraps_only_what_pika_still_gets_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_decode = pika.data.decode_value
    unfixed_decode: Callable[[bytes, int], tuple[Any, int]] = vars(fixed_decode)[MARK]  # pika's own
    unfixed_encode = vars(pika.data.encode_value)[MARK]
    assert pika.data.decode_table(_table({"r": _d(1.5)}), 0)[0] == {"r": 1.5}

    # pika 1.4 as shipped: both halves are wrapped
    monkeypatch.setattr(pika.data, "decode_value", unfixed_decode)
    monkeypatch.setattr(pika.data, "encode_value", unfixed_encode)
    assert not rabbitmq_pika.decodes_floats() and not rabbitmq_pika.encodes_floats()
    assert rabbitmq_pika.apply() == (True, True)
    assert rabbitmq_pika.decodes_floats() and rabbitmq_pika.encodes_floats()

    # a pika that decodes floats itself (here: a stand-in that does) keeps its own decoder
    def correct_decode(encoded: bytes, offset: int) -> tuple[Any, int]:
        if encoded[offset : offset + 1] == b"d":
            return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
        if encoded[offset : offset + 1] == b"f":
            return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
        return unfixed_decode(encoded, offset)

    monkeypatch.setattr(pika.data, "decode_value", correct_decode)
    monkeypatch.setattr(pika.data, "encode_value", unfixed_encode)
    assert rabbitmq_pika.apply() == (False, True)
    assert pika.data.decode_value is correct_decode


# -- real RabbitMQ -------------------------------------------------------------------------------------
def _publish_raw(backend: RabbitMQBackend, queue: str, body: bytes, table: bytes) -> None:
    """Publish `body` to `queue` with a content header whose headers table is the octets `table`."""
    conn = pika.BlockingConnection(backend.amqp._params)
    try:
        ch = conn.channel()
        number = ch.channel_number
        payload = struct.pack(">HHQH", 60, 0, len(body), 0x2000) + table  # class basic, headers flag
        frames = [
            pika.frame.Method(number, Basic.Publish(exchange="", routing_key=queue)).marshal(),
            struct.pack(">BHI", 2, number, len(payload)) + payload + b"\xce",
            pika.frame.Body(number, body).marshal(),
        ]
        conn._impl._output_marshaled_frames([b"".join(frames)])
        ch.queue_declare(queue, passive=True)  # a round trip after the publish on the same channel
    finally:
        conn.close()


def _read_with_aio_pika(service: RabbitMQService, vhost: str, queue: str) -> dict[str, Any]:
    where = f"{service.host}:{service.port}/{quote(vhost, safe='')}"
    url = f"amqp://{service.username}:{service.password}@{where}"

    async def read() -> dict[str, Any]:
        async with await aio_pika.connect(url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(queue, passive=True)
            message = await q.get(no_ack=True, timeout=10)
            assert message is not None
            return dict(message.headers)

    return asyncio.run(read())


@pytest.mark.timeout(120)
def test_float_headers_of_other_clients_survive_peek_replay_and_jsonl(
    rabbitmq_backend: RabbitMQBackend, rabbitmq_service: RabbitMQService, tmp_path: Path
) -> None:
    backend = rabbitmq_backend
    deploy(backend)
    _publish_raw(backend, "dlq", b"payload", TABLE)
    eventually(lambda: count(backend, "dlq") == 1, "the raw message in the DLQ")

    # (a) the backend reads every float exactly (peek, as the dead-letter panel does)
    [peeked] = backend.peek("dlq", 10)
    assert same(dict(peeked.headers), EXPECTED), peeked.headers

    # (c) JSONL export and import keep them (import into a queue of its own, read back)
    path = tmp_path / "dlq.jsonl"
    assert export_messages(backend, "dlq", path).count == 1
    assert '"dbl":0.1,' in path.read_text() and '"whole":3.0,' in path.read_text()
    backend.amqp.channel("main").queue_declare("imported", durable=True)
    imported = import_messages(path, backend, "imported")
    assert imported.published == 1, imported
    [back] = backend.peek("imported", 10)
    assert same({k: back.headers[k] for k in EXPECTED}, EXPECTED), back.headers
    assert same(_read_with_aio_pika(rabbitmq_service, backend.vhost, "imported"), EXPECTED)

    # (b) a replay publishes a copy whose floats another client reads as the originals
    report = ReplayJob(backend, "dlq", "orders:job").run()
    assert report.replayed == 1, report
    assert count(backend, "dlq") == 0
    copy = _read_with_aio_pika(rabbitmq_service, backend.vhost, "work")
    assert same({k: copy[k] for k in EXPECTED}, EXPECTED), copy


@pytest.mark.timeout(60)
def test_float_headers_publish_and_read_back_exactly(rabbitmq_backend: RabbitMQBackend) -> None:
    backend = rabbitmq_backend
    backend.amqp.channel("main").queue_declare("q", durable=True)
    headers = {"ratio": 1.5, "tiny": 1e-310, "list": [0.1, {"deep": 2.0}]}
    assert backend.publish(OutgoingMessage("", b"x", key="q", headers=headers)) == PublishResult(True, True)
    assert backend.publish_many([OutgoingMessage("", b"y", key="q", headers=headers)]) == [
        PublishResult(True, True)
    ]
    got = backend.peek("q", 10)
    assert [m.body for m in got] == [b"x", b"y"]
    assert all(same(dict(m.headers), headers) for m in got), [m.headers for m in got]


@pytest.mark.timeout(60)
def test_float_headers_published_by_aio_pika_read_as_the_floats_it_sent(
    rabbitmq_backend: RabbitMQBackend, rabbitmq_service: RabbitMQService
) -> None:
    """aio-pika (pamqp) sends a Python float as ``f``, a 32-bit float: the backend reads that value."""
    backend = rabbitmq_backend
    backend.amqp.channel("main").queue_declare("q", durable=True)
    where = f"{rabbitmq_service.host}:{rabbitmq_service.port}/{quote(backend.vhost, safe='')}"
    url = f"amqp://{rabbitmq_service.username}:{rabbitmq_service.password}@{where}"

    async def publish() -> None:
        async with await aio_pika.connect(url) as conn:
            ch = await conn.channel()
            headers: dict[str, Any] = {"r": 1.5, "x": 0.1, "t": {"a": [2.75]}}
            await ch.default_exchange.publish(aio_pika.Message(b"m", headers=headers), routing_key="q")

    asyncio.run(publish())
    eventually(lambda: count(backend, "q") == 1, "aio-pika's message in q")
    [got] = backend.peek("q", 10)
    assert same(dict(got.headers), {"r": 1.5, "x": _single(0.1), "t": {"a": [2.75]}}), got.headers
