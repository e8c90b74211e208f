"""`mqstudio fetch/plan/apply` against the embedded broker (``embedded://``) and a real RabbitMQ (a fresh
vhost per test): exit codes, confirmation, consent for destructive steps, passwords never printed."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import keyring
import keyring.backends.fail
import pytest

from mqstudio.cli import main
from mqstudio.runtime.profiles import PASSWORD_ENV
from tests.fixtures.rabbitmq import RabbitMQService

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"
WORK_QUEUE = EXAMPLES / "work-queue-dlx.mqs.json"
PUB_SUB = EXAMPLES / "pub-sub.mqs.json"


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No password from a real keyring or the caller's environment; no terminal unless a test says so."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    yield
    keyring.set_keyring(previous)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- embedded ----------------------------------------------------------------------------------


def test_plan_against_the_embedded_broker_lists_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "plan", str(WORK_QUEUE), "--url", "embedded://")
    assert code == 0
    assert "1. create exchange 'tasks' in vhost '/'" in out
    assert "6. bind 'tasks.dlx' → queue 'tasks.dead'" in out


def test_apply_with_yes_applies_every_step_and_reports_them(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "apply", str(WORK_QUEUE), "--url", "embedded://", "--yes")
    assert code == 0
    assert "[1/6] create exchange 'tasks'" in out
    assert out.count("applied: ") == 6
    assert out.rstrip().endswith("done: 6 applied")


def test_apply_without_a_terminal_needs_yes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "apply", str(WORK_QUEUE), "--url", "embedded://")
    assert code == 1
    assert "1. create exchange 'tasks'" in out  # the steps are shown first
    assert "applied:" not in out
    assert "pass --yes" in err


@pytest.mark.parametrize(("answer", "code"), [("n", 1), ("", 1), ("y", 0)])
def test_apply_asks_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, answer: str, code: int
) -> None:
    questions: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda q: questions.append(q) or answer)
    result, out, _ = _run(capsys, "apply", str(WORK_QUEUE), "--url", "embedded://")
    assert result == code
    assert questions and "Apply 6 steps to embedded broker" in questions[0]
    assert ("not applied: refused" in out) == (code == 1)


def test_fetch_writes_a_project(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "live.mqs.json"
    code, out, _ = _run(capsys, "fetch", "--url", "embedded://", str(out_file))
    assert code == 0
    assert json.loads(out_file.read_text(encoding="utf-8"))["format"]
    assert "wrote" in out and "project" in out


def test_fetch_refuses_an_output_of_unknown_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "fetch", "--url", "embedded://", str(tmp_path / "live.txt"))
    assert code == 2
    assert "output format" in err


# -- bad usage and unreachable brokers ---------------------------------------------------------


def test_a_bad_url_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "plan", str(WORK_QUEUE), "--url", "http://h")
    assert code == 2
    assert "unknown scheme" in err


def test_an_unreachable_broker_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    code, out, err = _run(
        capsys, "plan", str(WORK_QUEUE), "--url", f"amqp://guest@127.0.0.1:{port}/",
        "--http", f"http://127.0.0.1:{port}",
    )
    assert code == 2
    assert "cannot connect" in err and str(port) in err
    assert out == ""


def test_no_password_without_a_terminal_says_where_to_put_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "plan", str(WORK_QUEUE), "--url", "amqp://app@127.0.0.1:1/")
    assert code == 2
    assert PASSWORD_ENV in err and "keyring" in err


def test_a_password_in_the_url_is_used_with_a_warning_and_never_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = _closed_port()
    code, out, err = _run(
        capsys, "plan", str(WORK_QUEUE), "--url", f"amqp://app:Sup3rSecret@127.0.0.1:{port}/",
        "--http", f"http://127.0.0.1:{port}",
    )
    assert code == 2
    assert "warning" in err and PASSWORD_ENV in err
    assert "Sup3rSecret" not in out + err


def test_the_prompted_password_is_used_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "typed")
    port = _closed_port()
    code, _, _ = _run(capsys, "plan", str(WORK_QUEUE), "--url", f"amqp://app@127.0.0.1:{port}/",
                      "--http", f"http://127.0.0.1:{port}")
    assert code == 2  # nothing listens; what matters is that it asked
    assert asked and "app" in asked[0]


# -- RabbitMQ ----------------------------------------------------------------------------------


@pytest.fixture
def rabbit_args(
    rabbitmq_service: RabbitMQService, rabbitmq_vhost: str, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    monkeypatch.setenv(PASSWORD_ENV, rabbitmq_service.password)
    s = rabbitmq_service
    return [
        "--url", f"amqp://{quote(s.username)}@{s.host}:{s.port}/{quote(rabbitmq_vhost, safe='')}",
        "--http", f"http://{s.host}:{s.management_port}",
    ]


def test_rabbitmq_apply_then_plan_finds_nothing_to_do(
    capsys: pytest.CaptureFixture[str], rabbit_args: list[str], rabbitmq_vhost: str
) -> None:
    code, out, _ = _run(capsys, "apply", str(WORK_QUEUE), *rabbit_args, "--yes")
    assert code == 0, out
    assert f"planned for vhost '{rabbitmq_vhost}'" in out  # the design was drawn in '/'
    assert "done: 6 applied" in out
    code, out, _ = _run(capsys, "plan", str(WORK_QUEUE), *rabbit_args)
    assert code == 0
    assert "nothing to do" in out


def test_rabbitmq_fetch_writes_definitions_of_the_vhost(
    capsys: pytest.CaptureFixture[str], rabbit_args: list[str], tmp_path: Path
) -> None:
    assert _run(capsys, "apply", str(WORK_QUEUE), *rabbit_args, "--yes")[0] == 0
    out_file = tmp_path / "live.json"
    code, out, _ = _run(capsys, "fetch", *rabbit_args, str(out_file))
    assert code == 0, out
    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert {e["name"] for e in data["exchanges"]} == {"tasks", "tasks.dlx"}
    assert {q["name"] for q in data["queues"]} == {"tasks", "tasks.dead"}


def test_rabbitmq_destructive_steps_are_skipped_without_allow_recreate(
    capsys: pytest.CaptureFixture[str], rabbit_args: list[str],
    rabbitmq_admin: object, rabbitmq_vhost: str,
) -> None:
    assert _run(capsys, "apply", str(WORK_QUEUE), *rabbit_args, "--yes")[0] == 0
    code, out, _ = _run(capsys, "apply", str(PUB_SUB), *rabbit_args, "--yes", "--prune")
    assert code == 1
    assert "will be skipped (pass --allow-recreate" in out
    assert "skipped (no consent): delete queue 'tasks'" in out
    assert "skipped (no consent): delete exchange 'tasks'" in out
    assert "incomplete:" in out
    queues = {q["name"] for q in rabbitmq_admin.queues(rabbitmq_vhost)}  # type: ignore[attr-defined]
    assert {"tasks", "tasks.dead", "billing"} <= queues

    code, out, _ = _run(capsys, "apply", str(PUB_SUB), *rabbit_args, "--yes", "--prune", "--allow-recreate")
    assert code == 0, out
    queues = {q["name"] for q in rabbitmq_admin.queues(rabbitmq_vhost)}  # type: ignore[attr-defined]
    assert "tasks" not in queues and "billing" in queues


def test_rabbitmq_wrong_password_exits_2(
    capsys: pytest.CaptureFixture[str], rabbit_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "definitely-wrong")
    code, _, err = _run(capsys, "plan", str(WORK_QUEUE), *rabbit_args)
    assert code == 2
    assert "cannot connect" in err and "definitely-wrong" not in err
