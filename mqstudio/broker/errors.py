"""Errors of the embedded broker engine, carrying the AMQP 0-9-1 reply code RabbitMQ would send.

Owns: `BrokerError` and its subclasses. Soft errors (403/404/405/406) close a channel, hard errors
(5xx) a connection; the AMQP front-end maps `code` straight onto channel.close/connection.close.
Must not import anything outside the stdlib.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every engine error. `code` is the AMQP reply code; `text` the reply text."""

    code = 541  # internal-error
    soft = False

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class AccessRefused(BrokerError):
    code = 403
    soft = True


class NotFound(BrokerError):
    code = 404
    soft = True


class ResourceLocked(BrokerError):
    code = 405
    soft = True


class PreconditionFailed(BrokerError):
    code = 406
    soft = True


class CommandInvalid(BrokerError):
    code = 503


class NotAllowed(BrokerError):
    code = 530


class NotImplementedFeature(BrokerError):
    code = 540
