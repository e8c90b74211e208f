"""kafka-python scripts: a producer that creates its topic if missing and sends with acks="all", and a
group consumer that commits offsets by hand after handling each batch.

Owns: `producer(plan)` and `consumer(plan)`. Stdlib only: the generated code imports kafka-python.
"""

from __future__ import annotations

from mqstudio.core.codegen.common import (
    COUNT_ENV,
    DEFAULT_KAFKA_BOOTSTRAP,
    DEFAULT_PAYLOAD,
    KAFKA_BOOTSTRAP_ENV,
    RENDER_FUNCTIONS,
    header,
)
from mqstudio.core.codegen.literals import py, py_block
from mqstudio.core.codegen.selection import KafkaPlan

PRODUCER_FILE = "kafka_producer.py"
CONSUMER_FILE = "kafka_consumer.py"

_ARGS = f'''

def parse_args(description: str, default_count: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--count",
        type=int,
        default=int(os.environ.get("{COUNT_ENV}", default_count)),
        help="how many messages (default: ${COUNT_ENV}, else %(default)s; 0 = no limit)",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=BOOTSTRAP_SERVERS,
        help="comma-separated host:port list (default: ${KAFKA_BOOTSTRAP_ENV})",
    )
    return parser.parse_args()
'''


def producer(plan: KafkaPlan) -> str:
    topic = plan.producer_topic
    template = plan.payload or DEFAULT_PAYLOAD
    parts = [
        header(
            "Send messages to a Kafka topic (kafka-python).",
            [
                "Creates the topic when it does not exist (with its partitions, replication factor and",
                'configs), then sends --count messages with acks="all", waiting for each to be written.',
            ],
            plan.subject,
            [
                "pip install kafka-python",
                f"{KAFKA_BOOTSTRAP_ENV}={DEFAULT_KAFKA_BOOTSTRAP} python {PRODUCER_FILE} --count 10",
            ],
        ),
        "from __future__ import annotations\n",
        "import argparse\nimport os\nimport random\nimport re\nimport sys\nimport uuid\n"
        "from datetime import datetime, timezone\n",
        "from kafka import KafkaProducer\nfrom kafka.admin import KafkaAdminClient, NewTopic\n"
        "from kafka.errors import TopicAlreadyExistsError\n",
        f'BOOTSTRAP_SERVERS = os.environ.get("{KAFKA_BOOTSTRAP_ENV}", {py(DEFAULT_KAFKA_BOOTSTRAP)})',
        f"TOPIC = {py(topic.name)}",
        f"PARTITIONS = {py(topic.partitions)}",
        f"REPLICATION_FACTOR = {py(topic.replication_factor)}",
        f"TOPIC_CONFIGS = {py_block(dict(topic.configs), 0)}",
        f"ROUTING_KEY = {py(plan.key)}  # the message key ({{n}} and {{rand}} are filled in); '' = no key",
        f"HEADERS = {py_block(plan.headers, 0)}",
        f"PAYLOAD_TEMPLATE = {py(template)}",
        RENDER_FUNCTIONS,
        _ENSURE_TOPIC,
        _ARGS,
        _PRODUCER_MAIN,
    ]
    return "\n".join(parts)


_ENSURE_TOPIC = '''
def ensure_topic(bootstrap_servers: list[str]) -> None:
    """Create TOPIC unless it exists (an existing topic is left as it is)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        admin.create_topics(
            [
                NewTopic(
                    name=TOPIC,
                    num_partitions=PARTITIONS,
                    replication_factor=REPLICATION_FACTOR,
                    topic_configs=TOPIC_CONFIGS,
                )
            ]
        )
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
'''

_PRODUCER_MAIN = '''
def main() -> int:
    args = parse_args("Send messages with acks=all.", 10)
    servers = args.bootstrap_servers.split(",")
    ensure_topic(servers)
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", retries=5)
    headers = [(name, str(value).encode("utf-8")) for name, value in HEADERS.items()]
    try:
        counter = 0
        while args.count == 0 or counter < args.count:
            counter += 1
            key = routing_key(counter)
            future = producer.send(
                TOPIC, value=render(counter), key=key.encode("utf-8") if key else None, headers=headers
            )
            metadata = future.get(timeout=30)  # raises when the write failed
            print(f"sent {counter} to partition {metadata.partition} at offset {metadata.offset}", flush=True)
        producer.flush()
    except KeyboardInterrupt:
        pass
    finally:
        producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def consumer(plan: KafkaPlan) -> str:
    parts = [
        header(
            "Consume Kafka topics in a consumer group, committing offsets by hand (kafka-python).",
            [
                "Offsets are committed after the records of each poll are handled (at-least-once: a crash",
                "before the commit redelivers them). A record whose handle() raises is reported and",
                "skipped; send it to a dead-letter topic there if you need to keep it. Stops after --count",
                "records (0 = run until interrupted). KAFKA_SESSION_TIMEOUT_MS and",
                "KAFKA_MAX_POLL_INTERVAL_MS tune the group timers (short ones join a group sooner).",
            ],
            plan.subject,
            [
                "pip install kafka-python",
                f"{KAFKA_BOOTSTRAP_ENV}={DEFAULT_KAFKA_BOOTSTRAP} python {CONSUMER_FILE} --count 10",
            ],
        ),
        "from __future__ import annotations\n",
        "import argparse\nimport os\nimport sys\n",
        "from kafka import KafkaConsumer\nfrom kafka.consumer.fetcher import ConsumerRecord\n",
        f'BOOTSTRAP_SERVERS = os.environ.get("{KAFKA_BOOTSTRAP_ENV}", {py(DEFAULT_KAFKA_BOOTSTRAP)})',
        f"TOPICS = {py_block([t.name for t in plan.topics], 0)}",
        f"GROUP = {py(plan.group)}",
        'SESSION_TIMEOUT_MS = int(os.environ.get("KAFKA_SESSION_TIMEOUT_MS", "45000"))',
        'MAX_POLL_INTERVAL_MS = int(os.environ.get("KAFKA_MAX_POLL_INTERVAL_MS", "300000"))',
        _CONSUMER_BODY,
        _ARGS,
        _CONSUMER_MAIN,
    ]
    return "\n".join(parts)


_CONSUMER_BODY = '''

def handle(record: ConsumerRecord) -> None:
    """Process one record: put your code here. Raise to report it as failed."""
    text = record.value.decode("utf-8")  # a value that is not UTF-8 raises
    print(f"received: {text}", flush=True)
'''

_CONSUMER_MAIN = '''
def main() -> int:
    args = parse_args("Consume in a group with manual commits.", 0)
    consumer = KafkaConsumer(
        *TOPICS,
        bootstrap_servers=args.bootstrap_servers.split(","),
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=min(3000, SESSION_TIMEOUT_MS // 3),
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
    )
    handled = 0
    try:
        while args.count == 0 or handled < args.count:
            # max_records: never fetch past --count, so the commit covers exactly what was handled.
            remaining = None if args.count == 0 else args.count - handled
            batches = consumer.poll(timeout_ms=1000, max_records=remaining)
            for records in batches.values():
                for record in records:
                    try:
                        handle(record)
                    except Exception as exc:
                        where = f"{record.topic}[{record.partition}]@{record.offset}"
                        print(f"failed {where}: {exc!r}", file=sys.stderr, flush=True)
                    handled += 1
            if batches:
                consumer.commit()  # synchronous: the positions after the records handled above
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
