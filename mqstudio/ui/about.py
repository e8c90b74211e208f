"""Help ▸ About: what mqstudio is, the versions it runs on, and where the embedded broker listens.

Owns: `versions()` (mqstudio, Qt, PySide6, pika, kafka-python, Python — read from the installed
distributions with importlib.metadata, so the UI never imports pika or kafka), `listener_address()`
(the embedded broker's AMQP address while it serves, else None), `about_html()` and `show_about()`.
Imports PySide6 and the standard library only.
"""

from __future__ import annotations

import html
import platform
import sys
from importlib import metadata
from typing import Any

from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

from mqstudio import __version__

NOT_LISTENING = "not listening"
TITLE = "About mqstudio"
# (label, distribution name): PySide6 ships as PySide6-Essentials (or the full PySide6 wheel).
_DISTRIBUTIONS = (
    ("PySide6", ("PySide6-Essentials", "PySide6")),
    ("pika", ("pika",)),
    ("kafka-python", ("kafka-python",)),
)


def _installed(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> list[tuple[str, str]]:
    """(component, version) for everything a bug report needs, in display order."""
    rows = [("mqstudio", __version__), ("Qt", qVersion())]
    rows += [(label, _installed(names)) for label, names in _DISTRIBUTIONS]
    rows.append(("Python", f"{platform.python_version()} ({platform.python_implementation()})"))
    rows.append(("Platform", platform.platform(terse=True) or sys.platform))
    return rows


def listener_address(broker_thread: Any) -> str | None:
    """``amqp://HOST:PORT`` of a running `EmbeddedBrokerThread`, or None when it is not serving."""
    if broker_thread is None or not getattr(broker_thread, "running", False):
        return None
    try:
        host, port = broker_thread.address
    except Exception:  # stopped between the two reads
        return None
    shown = f"[{host}]" if ":" in str(host) else host
    return f"amqp://{shown}:{port}"


def about_html(listener: str | None) -> str:
    rows = "".join(
        f"<tr><td style='padding-right:16px'>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
        for name, value in versions()
    )
    where = html.escape(listener) if listener else NOT_LISTENING
    return (
        f"<h3>mqstudio {html.escape(__version__)}</h3>"
        "<p>A desktop studio for message brokers: design RabbitMQ and Kafka topologies, run them on the "
        "embedded broker or a real cluster, watch the traffic and replay dead letters.</p>"
        f"<table>{rows}"
        f"<tr><td style='padding-right:16px'>Embedded broker</td><td>{where}</td></tr></table>"
        "<p>MIT licence.</p>"
    )


def show_about(parent: QWidget | None, broker_thread: Any = None) -> None:
    """The modal About box; `broker_thread` is the window's embedded broker (None if never started)."""
    QMessageBox.about(parent, TITLE, about_html(listener_address(broker_thread)))
