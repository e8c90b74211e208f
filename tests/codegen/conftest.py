"""Fixtures for running generated scripts: the embedded AMQP broker on port 0 (shared with tests/amqp)
and a helper that runs a script in a subprocess with the broker's address in its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.amqp.conftest import broker_server  # re-exported as a fixture for this package

__all__ = ["broker_server", "run_script", "write_snippets"]

SCRIPT_TIMEOUT = 60.0  # bound for a stuck script; never asserted as a duration


def write_snippets(directory: Path, snippets: list) -> dict[str, Path]:  # type: ignore[type-arg]
    """Each snippet saved under its file name; returns title → path."""
    paths: dict[str, Path] = {}
    for snippet in snippets:
        path = directory / snippet.filename
        path.write_text(snippet.code, encoding="utf-8")
        paths[snippet.title] = path
    return paths


def run_script(path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a generated script with this interpreter (which has pika, aio-pika and kafka-python)."""
    full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **env}
    full_env.pop("MESSAGE_COUNT", None)
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SCRIPT_TIMEOUT,
        env=full_env,
        check=False,
    )
