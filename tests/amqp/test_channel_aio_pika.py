"""aio-pika (asyncio) against the broker: publish/consume/ack, robust reconnects, server cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika

from tests.amqp.conftest import RunningBroker

WAIT = 10.0


def _url(broker: RunningBroker) -> str:
    return f"amqp://guest:guest@{broker.host}:{broker.port}/"


async def _eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_aio_pika_publish_consume_ack_flow(broker_server: RunningBroker) -> None:
    async def main() -> list[bytes]:
        async with await aio_pika.connect(_url(broker_server)) as conn:
            ch = await conn.channel(publisher_confirms=True)
            await ch.set_qos(prefetch_count=2)
            queue = await ch.declare_queue("", exclusive=True)
            assert queue.name.startswith("amq.gen-")
            for i in range(5):
                await ch.default_exchange.publish(
                    aio_pika.Message(str(i).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name,
                )
            got: list[bytes] = []
            async with queue.iterator() as it:
                async for message in it:
                    async with message.process():
                        got.append(message.body)
                    if len(got) == 5:
                        break
            declared = await ch.declare_queue(queue.name, passive=True)
            assert declared.declaration_result.message_count == 0
            return got

    assert asyncio.run(main()) == [b"0", b"1", b"2", b"3", b"4"]


def test_aio_pika_nack_requeue_redelivers(broker_server: RunningBroker) -> None:
    async def main() -> tuple[bool, bool]:
        async with await aio_pika.connect(_url(broker_server)) as conn:
            ch = await conn.channel()
            queue = await ch.declare_queue("", exclusive=True)
            await ch.default_exchange.publish(aio_pika.Message(b"again"), routing_key=queue.name)
            first = await queue.get(timeout=WAIT)
            assert first is not None
            await first.nack(requeue=True)
            second = await queue.get(timeout=WAIT)
            assert second is not None
            await second.ack()
            return bool(first.redelivered), bool(second.redelivered)

    assert asyncio.run(main()) == (False, True)


def test_aio_pika_consumer_is_told_when_its_queue_is_deleted(broker_server: RunningBroker) -> None:
    async def main() -> list[str]:
        async with await aio_pika.connect(_url(broker_server)) as conn:
            ch = await conn.channel()
            queue = await ch.declare_queue("doomed-aio")
            cancelled: list[str] = []
            underlay = await ch.get_underlay_channel()
            underlay.on_consumer_cancel_callbacks.add(lambda frame: cancelled.append(frame.consumer_tag))

            async def on_message(message: Any) -> None:
                await message.ack()

            tag = await queue.consume(on_message)
            other = await conn.channel()
            await other.queue_delete("doomed-aio")

            async def notified() -> bool:
                return cancelled == [tag]

            assert await _eventually(notified)
            return cancelled

    assert len(asyncio.run(main())) == 1


def test_aio_pika_robust_connection_reconnects_and_resumes(broker_server: RunningBroker) -> None:
    def drop_all_clients() -> None:
        for protocol in list(broker_server.server._protocols):
            protocol.abort()

    async def main() -> list[bytes]:
        conn = await aio_pika.connect_robust(_url(broker_server) + "?reconnect_interval=0.1")
        try:
            ch = await conn.channel()
            queue = await ch.declare_queue("robust-q", auto_delete=False)
            got: list[bytes] = []

            async def on_message(message: Any) -> None:
                async with message.process():
                    got.append(message.body)

            await queue.consume(on_message)
            await ch.default_exchange.publish(aio_pika.Message(b"before"), routing_key="robust-q")

            async def received(n: int) -> bool:
                return len(got) >= n

            assert await _eventually(lambda: received(1))
            reconnected = asyncio.Event()
            conn.reconnect_callbacks.add(lambda *_: reconnected.set())
            await asyncio.get_running_loop().run_in_executor(None, broker_server.call, drop_all_clients)
            await asyncio.wait_for(reconnected.wait(), WAIT)
            # The robust channel restored the queue and its consumer on the new connection.
            await ch.default_exchange.publish(aio_pika.Message(b"after"), routing_key="robust-q")
            assert await _eventually(lambda: received(2))
            return got
        finally:
            await conn.close()

    assert asyncio.run(main()) == [b"before", b"after"]


def test_aio_pika_unroutable_mandatory_publish_is_returned(broker_server: RunningBroker) -> None:
    async def main() -> bool:
        async with await aio_pika.connect(_url(broker_server)) as conn:
            ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
            try:
                await ch.default_exchange.publish(
                    aio_pika.Message(b"x"), routing_key="no-such-queue", mandatory=True
                )
            except aio_pika.exceptions.DeliveryError as exc:
                return exc.message is not None and exc.message.body == b"x"
            return False

    assert asyncio.run(main())
