"""aio-pika scripts: a producer on a confirming channel that raises on returned messages, and a
consumer with a prefetch limit, explicit ack and nack-without-requeue on failure.

Owns: `producer(plan)` and `consumer(plan)`. Stdlib only: the generated code imports aio-pika.
"""

from __future__ import annotations

from mqstudio.core.codegen.amqp_decl import aio_pika_declare
from mqstudio.core.codegen.common import (
    AMQP_PARSE_ARGS,
    AMQP_URL_ENV,
    DEFAULT_PAYLOAD,
    RENDER_FUNCTIONS,
    amqp_url,
    content_type,
    header,
)
from mqstudio.core.codegen.literals import py, py_block
from mqstudio.core.codegen.selection import AmqpPlan

PRODUCER_FILE = "aio_pika_producer.py"
CONSUMER_FILE = "aio_pika_consumer.py"


def producer(plan: AmqpPlan) -> str:
    publish = plan.publish
    assert publish is not None
    template = publish.payload or DEFAULT_PAYLOAD
    parts = [
        header(
            "Publish messages to RabbitMQ with publisher confirms (aio-pika).",
            [
                "Declares the exchanges, queues and bindings it needs, then publishes --count persistent",
                "messages with mandatory=True on a confirming channel: a returned or nacked message stops",
                "it with exit status 1.",
            ],
            plan.subject,
            [
                "pip install aio-pika",
                f"{AMQP_URL_ENV}={amqp_url(plan.vhost)} python {PRODUCER_FILE} --count 10",
            ],
        ),
        "from __future__ import annotations\n",
        "import argparse\nimport asyncio\nimport os\nimport random\nimport re\nimport sys\nimport uuid\n"
        "from datetime import datetime, timedelta, timezone\n",
        "import aio_pika\nimport aio_pika.abc\nimport aio_pika.exceptions\n",
        f'AMQP_URL = os.environ.get("{AMQP_URL_ENV}", {py(amqp_url(plan.vhost))})',
        f"EXCHANGE = {py(publish.exchange)}{'  # the default exchange' if not publish.exchange else ''}",
        f"ROUTING_KEY = {py(publish.routing_key)}",
        f"HEADERS = {py_block(publish.headers, 0)}",
        f"PRIORITY = {py(publish.priority)}",
        f"EXPIRATION_MS = {py(publish.ttl_ms)}  # per-message TTL; None = the queue's own",
        f"CONTENT_TYPE = {py(content_type(template))}",
        f"PAYLOAD_TEMPLATE = {py(template)}",
        RENDER_FUNCTIONS,
        "\n" + aio_pika_declare(plan, for_producer=True),
        AMQP_PARSE_ARGS,
        _PRODUCER_MAIN,
    ]
    return "\n".join(parts)


_PRODUCER_MAIN = """
async def publish(url: str, count: int) -> int:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        # publisher_confirms: publish() waits for the broker's ack; on_return_raises: a mandatory
        # message that no queue takes raises DeliveryError instead of vanishing.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare(channel)
        exchange = channel.default_exchange if EXCHANGE == "" else await channel.get_exchange(EXCHANGE)
        counter = 0
        while count == 0 or counter < count:
            counter += 1
            message = aio_pika.Message(
                render(counter),
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=HEADERS or None,
                priority=PRIORITY,
                expiration=None if EXPIRATION_MS is None else timedelta(milliseconds=EXPIRATION_MS),
                message_id=str(uuid.uuid4()),
            )
            key = routing_key(counter)
            try:
                await exchange.publish(message, routing_key=key, mandatory=True)
            except aio_pika.exceptions.DeliveryError as exc:
                print(f"message {counter} was not delivered (key {key!r}): {exc!r}", file=sys.stderr)
                return 1
            print(f"published {counter} with routing key {key!r}", flush=True)
    return 0


def main() -> int:
    args = parse_args("Publish messages with publisher confirms.", 10)
    try:
        return asyncio.run(publish(args.url, args.count))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
"""


def consumer(plan: AmqpPlan) -> str:
    consume = plan.consume
    assert consume is not None
    parts = [
        header(
            "Consume a RabbitMQ queue with explicit acks (aio-pika).",
            [
                "Declares the queue (with its arguments) and what it needs, limits unacknowledged",
                "deliveries with set_qos, acks each message after handle() returns, and nacks it without",
                "requeue when handle() raises, so that RabbitMQ dead-letters it. Stops after --count",
                "messages (0 = run until interrupted).",
            ],
            plan.subject,
            [
                "pip install aio-pika",
                f"{AMQP_URL_ENV}={amqp_url(plan.vhost)} python {CONSUMER_FILE} --count 10",
            ],
        ),
        "from __future__ import annotations\n",
        "import argparse\nimport asyncio\nimport os\nimport sys\n",
        "import aio_pika\nimport aio_pika.abc\n",
        f'AMQP_URL = os.environ.get("{AMQP_URL_ENV}", {py(amqp_url(plan.vhost))})',
        f"QUEUE = {py(consume.queue.name)}",
        f"PREFETCH = {py(consume.prefetch)}",
        "# Where rejected messages end up.",
        f"DEAD_LETTER_QUEUES = {py_block(consume.dead_letter_queues, 0)}",
        "\n\n" + aio_pika_declare(plan, for_producer=False),
        _HANDLE,
        AMQP_PARSE_ARGS,
        _CONSUMER_MAIN,
    ]
    return "\n".join(parts)


_HANDLE = '''

def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """Process one message: put your code here. Raise to reject it without requeue."""
    text = message.body.decode("utf-8")  # a body that is not UTF-8 raises, and is rejected
    print(f"received: {text}", flush=True)
'''

_CONSUMER_MAIN = """
async def consume(url: str, count: int) -> int:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        await declare(channel)
        queue = await channel.get_queue(QUEUE)
        handled = 0
        async with queue.iterator() as messages:
            async for message in messages:
                try:
                    handle(message)
                except Exception as exc:
                    # requeue=False: the broker dead-letters the message rather than delivering it again.
                    await message.nack(requeue=False)
                    print(f"rejected: {exc!r}", file=sys.stderr, flush=True)
                else:
                    await message.ack()
                handled += 1
                if count and handled >= count:
                    break
    return 0


def main() -> int:
    args = parse_args("Consume with explicit acks.", 0)
    try:
        return asyncio.run(consume(args.url, args.count))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
"""
