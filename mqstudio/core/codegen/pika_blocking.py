"""pika (BlockingConnection) scripts: a producer with publisher confirms and mandatory publishing, and
a consumer with a prefetch limit, manual acks and nack-without-requeue on failure.

Owns: `producer(plan)` and `consumer(plan)`, each returning the source of one runnable script.
Stdlib only: the generated code imports pika, this module does not.
"""

from __future__ import annotations

from mqstudio.core.codegen.amqp_decl import pika_declare
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

PRODUCER_FILE = "pika_producer.py"
CONSUMER_FILE = "pika_consumer.py"


def producer(plan: AmqpPlan) -> str:
    publish = plan.publish
    assert publish is not None
    template = publish.payload or DEFAULT_PAYLOAD
    parts = [
        header(
            "Publish messages to RabbitMQ with publisher confirms (pika, blocking connection).",
            [
                "Declares the exchanges, queues and bindings it needs, then publishes --count persistent",
                "messages with mandatory=True: an unroutable (returned) or nacked message stops it with",
                "exit status 1.",
            ],
            plan.subject,
            [
                "pip install pika",
                f"{AMQP_URL_ENV}={amqp_url(plan.vhost)} python {PRODUCER_FILE} --count 10",
            ],
        ),
        "from __future__ import annotations\n",
        "import argparse\nimport os\nimport random\nimport re\nimport sys\nimport uuid\n"
        "from datetime import datetime, timezone\n",
        "import pika\nimport pika.exceptions\n"
        "from pika.adapters.blocking_connection import BlockingChannel\n",
        f'AMQP_URL = os.environ.get("{AMQP_URL_ENV}", {py(amqp_url(plan.vhost))})',
        f"EXCHANGE = {py(publish.exchange)}{'  # the default exchange' if not publish.exchange else ''}",
        f"ROUTING_KEY = {py(publish.routing_key)}",
        f"HEADERS = {py_block(publish.headers, 0)}",
        f"PRIORITY = {py(publish.priority)}",
        f"EXPIRATION_MS = {py(publish.ttl_ms)}  # per-message TTL; None = the queue's own",
        f"CONTENT_TYPE = {py(content_type(template))}",
        f"PAYLOAD_TEMPLATE = {py(template)}",
        RENDER_FUNCTIONS,
        "\n" + pika_declare(plan, for_producer=True),
        AMQP_PARSE_ARGS,
        _PRODUCER_MAIN,
    ]
    return "\n".join(parts)


_PRODUCER_MAIN = """
def main() -> int:
    args = parse_args("Publish messages with publisher confirms.", 10)
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    try:
        channel = connection.channel()
        declare(channel)
        channel.confirm_delivery()  # basic_publish now waits for the broker's ack
        counter = 0
        while args.count == 0 or counter < args.count:
            counter += 1
            properties = pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,  # persistent
                headers=HEADERS or None,
                priority=PRIORITY,
                expiration=None if EXPIRATION_MS is None else str(EXPIRATION_MS),
                message_id=str(uuid.uuid4()),
            )
            key = routing_key(counter)
            try:
                channel.basic_publish(EXCHANGE, key, render(counter), properties, mandatory=True)
            except pika.exceptions.UnroutableError:
                print(f"message {counter} was returned: no queue is bound for key {key!r}", file=sys.stderr)
                return 1
            except pika.exceptions.NackError:
                print(f"message {counter} was nacked by the broker", file=sys.stderr)
                return 1
            print(f"published {counter} with routing key {key!r}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""


def consumer(plan: AmqpPlan) -> str:
    consume = plan.consume
    assert consume is not None
    dlq = ", ".join(consume.dead_letter_queues)
    where = (
        "the queue's dead-letter exchange routes it on"
        if plan.dead_letter_exchange is not None or consume.queue.dead_letter_exchange
        else "the queue has no dead-letter exchange, so RabbitMQ drops it"
    )
    parts = [
        header(
            "Consume a RabbitMQ queue with manual acks (pika, blocking connection).",
            [
                "Declares the queue (with its arguments) and what it needs, limits unacknowledged",
                "deliveries with basic_qos, acks each message after handle() returns, and nacks it without",
                "requeue when handle() raises, so that RabbitMQ dead-letters it instead of redelivering it",
                "forever. Stops after --count messages (0 = run until interrupted).",
            ],
            plan.subject,
            [
                "pip install pika",
                f"{AMQP_URL_ENV}={amqp_url(plan.vhost)} python {CONSUMER_FILE} --count 10",
            ],
        ),
        "from __future__ import annotations\n",
        "import argparse\nimport os\nimport sys\n",
        "import pika\nfrom pika.adapters.blocking_connection import BlockingChannel\n"
        "from pika.spec import Basic, BasicProperties\n",
        f'AMQP_URL = os.environ.get("{AMQP_URL_ENV}", {py(amqp_url(plan.vhost))})',
        f"QUEUE = {py(consume.queue.name)}",
        f"PREFETCH = {py(consume.prefetch)}",
        "# Where rejected messages end up"
        + ("." if dlq else f" (none: {where}).")
        + f"\nDEAD_LETTER_QUEUES = {py_block(consume.dead_letter_queues, 0)}",
        "\n\n" + pika_declare(plan, for_producer=False),
        _HANDLE.replace("WHERE", where),
        AMQP_PARSE_ARGS,
        _CONSUMER_MAIN,
    ]
    return "\n".join(parts)


_HANDLE = '''

def handle(body: bytes, properties: BasicProperties) -> None:
    """Process one message: put your code here.

    Raise to reject it without requeue: WHERE.
    """
    text = body.decode("utf-8")  # a body that is not UTF-8 raises, and is rejected
    print(f"received: {text}", flush=True)
'''

_CONSUMER_MAIN = """
def main() -> int:
    args = parse_args("Consume with manual acks.", 0)
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    declare(channel)
    channel.basic_qos(prefetch_count=PREFETCH)
    handled = 0

    def on_message(
        ch: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        nonlocal handled
        try:
            handle(body, properties)
        except Exception as exc:
            # requeue=False: the broker dead-letters the message rather than delivering it again.
            ch.basic_nack(delivery_tag=method.delivery_tag, requeue=False)
            print(f"rejected: {exc!r}", file=sys.stderr, flush=True)
        else:
            ch.basic_ack(delivery_tag=method.delivery_tag)
        handled += 1
        if args.count and handled >= args.count:
            ch.stop_consuming()

    channel.basic_consume(queue=QUEUE, on_message_callback=on_message)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        channel.stop_consuming()
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""
