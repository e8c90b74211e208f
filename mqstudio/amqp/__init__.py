"""AMQP 0-9-1 wire front-end of the embedded broker: pamqp codec, sans-I/O connection, asyncio server.

Layers: `framing` (bytes ↔ frames, content assembly), `auth` (SASL and the user table),
`connection` (sans-I/O protocol state machine), `server` (asyncio adapter that only moves bytes).

Must not import: Qt, pika, or any mqstudio package other than mqstudio.broker (stdlib and pamqp only).
"""

from __future__ import annotations
