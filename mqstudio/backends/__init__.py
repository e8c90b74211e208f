"""Backends: one blocking interface to a broker (embedded, RabbitMQ, Kafka), several implementations.

Also home of `translate` (a core Topology declared into the embedded `mqstudio.broker` engine).
Must not import `mqstudio.ui`, `mqstudio.app`, `mqstudio.cli` or Qt; each client library (pika,
httpx, kafka) only in its own module.
"""
