"""pika's AMQP field-table floats, fixed for the RabbitMQ backend (imported by ``rabbitmq.py`` only).

pika 1.4 (``pika.data.decode_value``) decodes the field-table types ``f`` (32-bit float) and ``d``
(64-bit double) with ``long(...)``, so a header ``1.5`` sent by a Java, .NET or aio-pika client is
read as ``1``, and its ``encode_value`` has no type for a Python float at all
(``UnsupportedAMQPFieldException``). Reading a dead-letter queue, exporting it or replaying it would
silently change such headers, and a float header could not be published.

`apply` wraps the two module functions: ``f`` / ``d`` decode to Python floats exactly as sent
(``>f`` / ``>d``; a 32-bit float widens to the same value), and a Python float encodes as ``d``
(a double, as RabbitMQ itself and the Java and .NET clients do; nothing is rounded). Everything
else goes to pika's own functions unchanged. pika looks both up as module globals everywhere
(``encode_table`` / ``decode_table``, arrays recursing through ``encode_value`` / ``decode_value``,
``pika.spec`` through ``data.encode_table``), so replacing the module attributes covers nested
tables and arrays too.

`apply` is idempotent and decides by behaviour, not by version: it probes pika with a ``d`` and an
``f`` value and a float to encode, and wraps only what is still wrong, so a pika that fixes this
itself is left alone (and a pika that fixes only one half gets only the other half wrapped).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import pika.data
import pika.exceptions

__all__ = ["apply", "decodes_floats", "encodes_floats"]

_MARK = "_mqstudio_float_fix"
_F = struct.Struct(">f")
_D = struct.Struct(">d")
_PROBE = 0.1  # not an integer, and not exact in 32 bits: a rounded or truncated result shows


def decodes_floats() -> bool:
    """Whether pika decodes ``d`` and ``f`` table values to the exact floats sent."""
    try:
        double, end_d = pika.data.decode_value(b"d" + _D.pack(_PROBE), 0)
        single, end_f = pika.data.decode_value(b"f" + _F.pack(_PROBE), 0)
    except Exception:
        return False
    expected_single = _F.unpack(_F.pack(_PROBE))[0]
    return (
        type(double) is float
        and double == _PROBE
        and end_d == 9
        and type(single) is float
        and single == expected_single
        and end_f == 5
    )


def encodes_floats() -> bool:
    """Whether pika encodes a Python float as a ``d`` (double) table value."""
    pieces: list[bytes] = []
    try:
        size = pika.data.encode_value(pieces, _PROBE)
    except Exception:
        return False
    return size == 9 and b"".join(pieces) == b"d" + _D.pack(_PROBE)


def _decode_wrapper(
    original: Callable[[bytes, int], tuple[Any, int]],
) -> Callable[[bytes, int], tuple[Any, int]]:
    def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
        kind = encoded[offset : offset + 1]
        if kind == b"d":
            return _D.unpack_from(encoded, offset + 1)[0], offset + 9
        if kind == b"f":
            return _F.unpack_from(encoded, offset + 1)[0], offset + 5
        return original(encoded, offset)

    decode_value.__doc__ = "pika's decode_value with ``f`` / ``d`` decoded to exact floats (mqstudio)."
    setattr(decode_value, _MARK, original)
    return decode_value


def _encode_wrapper(original: Callable[[list[bytes], Any], int]) -> Callable[[list[bytes], Any], int]:
    def encode_value(pieces: list[bytes], value: Any) -> int:
        if isinstance(value, float):
            if not math.isfinite(value):  # RabbitMQ closes the connection (541) on NaN / ±Inf
                raise pika.exceptions.UnsupportedAMQPFieldException(pieces, value)
            pieces.append(b"d" + _D.pack(value))
            return 9
        return original(pieces, value)

    encode_value.__doc__ = "pika's encode_value with a Python float encoded as ``d`` (mqstudio)."
    setattr(encode_value, _MARK, original)
    return encode_value


def apply() -> tuple[bool, bool]:
    """Wrap whichever of pika's ``decode_value`` / ``encode_value`` still mishandles floats; returns
    (decode wrapped now, encode wrapped now). Calling it again changes nothing."""
    data: Any = pika.data
    wrap_decode = not decodes_floats() and not hasattr(data.decode_value, _MARK)
    wrap_encode = not encodes_floats() and not hasattr(data.encode_value, _MARK)
    if wrap_decode:
        data.decode_value = _decode_wrapper(data.decode_value)
    if wrap_encode:
        data.encode_value = _encode_wrapper(data.encode_value)
    if not (decodes_floats() and encodes_floats()):  # pika changed how it looks these up
        raise RuntimeError(
            f"pika {getattr(pika, '__version__', '?')}: AMQP float header values could not be fixed"
        )
    return wrap_decode, wrap_encode
