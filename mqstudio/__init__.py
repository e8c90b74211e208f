"""mqstudio: a desktop studio for message brokers (RabbitMQ, Kafka and an embedded broker).

The top-level package imports nothing heavy: no Qt, no network clients.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
