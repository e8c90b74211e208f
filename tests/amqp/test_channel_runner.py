"""`run_broker` (what `mqstudio broker` runs): listening line, connection log lines, clean stop,
and persistent messages surviving a restart with a data directory."""

from __future__ import annotations

import threading
from pathlib import Path

import pika
import pytest

from mqstudio.amqp.runner import parse_user, run_broker

WAIT = 10.0


class _Running:
    def __init__(self, **kwargs: object) -> None:
        self.lines: list[str] = []
        self.address: tuple[str, int] | None = None
        self.code: int | None = None
        self._ready = threading.Event()
        self.stop = threading.Event()

        def ready(address: tuple[str, int]) -> None:
            self.address = address
            self._ready.set()

        def run() -> None:
            self.code = run_broker(
                "127.0.0.1",
                0,
                log=self.lines.append,
                ready=ready,
                stop=self.stop,
                **kwargs,  # type: ignore[arg-type]
            )
            self._ready.set()

        self.thread = threading.Thread(target=run, name="run-broker-test", daemon=True)
        self.thread.start()
        assert self._ready.wait(WAIT)
        assert self.address is not None, self.lines

    def params(self, user: str = "guest", password: str = "guest") -> pika.ConnectionParameters:
        assert self.address is not None
        return pika.ConnectionParameters(
            self.address[0], self.address[1], credentials=pika.PlainCredentials(user, password)
        )

    def finish(self) -> int | None:
        self.stop.set()
        self.thread.join(WAIT)
        return self.code


def test_run_broker_logs_listening_address_connections_and_stops_cleanly() -> None:
    running = _Running(in_memory=True)
    conn = pika.BlockingConnection(running.params())
    ch = conn.channel()
    ch.queue_declare("q")
    ch.basic_publish("", "q", b"x")
    assert ch.basic_get("q", auto_ack=True)[2] == b"x"
    conn.close()
    assert running.finish() == 0
    port = running.address[1] if running.address else 0
    assert any(f"amqp://127.0.0.1:{port}/" in line for line in running.lines)
    assert any("opened: user 'guest'" in line for line in running.lines)
    assert any("closed by the client" in line for line in running.lines)
    assert running.lines[-1] == "mqstudio broker stopped"


def test_run_broker_logs_channel_errors() -> None:
    running = _Running(in_memory=True)
    try:
        conn = pika.BlockingConnection(running.params())
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            conn.channel().queue_declare("missing", passive=True)
        conn.close()
    finally:
        running.finish()
    assert any("NOT_FOUND - no queue 'missing'" in line for line in running.lines)


def test_run_broker_with_users_refuses_guest() -> None:
    running = _Running(in_memory=True, users=[("alice", "s3cret:x")])
    try:
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(running.params())
        pika.BlockingConnection(running.params("alice", "s3cret:x")).close()
    finally:
        running.finish()


def test_persistent_messages_survive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    first = _Running(data_dir=tmp_path / "data")
    conn = pika.BlockingConnection(first.params())
    ch = conn.channel()
    ch.queue_declare("durable-jobs", durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", "durable-jobs", b"kept", pika.BasicProperties(delivery_mode=2))
    ch.basic_publish("", "durable-jobs", b"transient", pika.BasicProperties(delivery_mode=1))
    conn.close()
    assert first.finish() == 0

    second = _Running(data_dir=tmp_path / "data")
    try:
        conn = pika.BlockingConnection(second.params())
        ch = conn.channel()
        assert ch.queue_declare("durable-jobs", passive=True).method.message_count == 1
        assert ch.basic_get("durable-jobs", auto_ack=True)[2] == b"kept"
        conn.close()
    finally:
        second.finish()


def test_parse_user_splits_at_the_first_colon() -> None:
    assert parse_user("bob:pa:ss") == ("bob", "pa:ss")
    with pytest.raises(ValueError, match="USER:PASSWORD"):
        parse_user("bob")


def test_cli_broker_serves_clients_and_stops_on_sigterm() -> None:
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "mqstudio", "broker", "--port", "0", "--in-memory", "--user", "app:pw"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"amqp://127\.0\.0\.1:(\d+)/", first)
        assert match, first
        params = pika.ConnectionParameters(
            "127.0.0.1", int(match.group(1)), credentials=pika.PlainCredentials("app", "pw")
        )
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        ch.queue_declare("cli-q")
        ch.basic_publish("", "cli-q", b"via cli")
        assert ch.basic_get("cli-q", auto_ack=True)[2] == b"via cli"
        conn.close()
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0
        assert "mqstudio broker stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_broker_refuses_in_memory_with_data_dir(tmp_path: Path) -> None:
    from mqstudio.cli import main

    assert main(["broker", "--in-memory", "--data-dir", str(tmp_path)]) == 2
