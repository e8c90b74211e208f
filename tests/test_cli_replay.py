"""`mqstudio replay` and `mqstudio export` through `cli.main`, against the embedded broker and a real
RabbitMQ (a fresh vhost per test): messages go back where they died, the exit codes say whether all
did, bad input is refused before anything is taken, and the journal's jobs can be listed, resumed and
abandoned without losing a message."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import keyring
import keyring.backends.fail
import pytest

from mqstudio.backends.base import Backend
from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.cli import main
from mqstudio.ops.journal import ItemState, JobStatus, Journal, default_journal_path
from mqstudio.ops.jsonl import read_messages
from mqstudio.ops.provenance import H_JOB
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.profiles import PASSWORD_ENV
from tests.fixtures.rabbitmq import RabbitMQService
from tests.ops.replay_helpers import count, dead_letter, deploy, drain, eventually, ids_of

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Broker:
    url: list[str]  # the --url (and --http) arguments
    backend: Backend  # the test's own connection, to seed and check


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    yield
    keyring.set_keyring(previous)


@pytest.fixture(params=["embedded", "rabbitmq"])
def broker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """The design of tests/ops/replay_helpers deployed; ``embedded://`` is pointed at a broker the test
    owns (the command line's own would be empty)."""
    if request.param == "embedded":
        thread = EmbeddedBrokerThread(port=0)
        thread.start()
        mine = EmbeddedBackend(thread)
        mine.connect()
        deploy(mine)
        monkeypatch.setattr(
            "mqstudio.runtime.connect._embedded", lambda profile, _bt: EmbeddedBackend(thread, profile.vhost)
        )
        yield Broker(["--url", "embedded://"], mine)
        mine.close()
        assert thread.stop(10.0)
        return
    service: RabbitMQService = request.getfixturevalue("rabbitmq_service")
    vhost: str = request.getfixturevalue("rabbitmq_vhost")
    monkeypatch.setenv(PASSWORD_ENV, service.password)
    rabbit = service.backend(vhost)
    rabbit.connect()
    try:
        deploy(rabbit)
        url = f"amqp://{service.username}@{service.host}:{service.port}/{quote(vhost, safe='')}"
        yield Broker(["--url", url, "--http", f"http://{service.host}:{service.management_port}"], rabbit)
    finally:
        rabbit.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_replay_sends_every_dead_letter_back_to_its_origin(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = dead_letter(broker.backend, 12)
    code, out, err = run(capsys, "replay", *broker.url, "--from", "dlq")
    assert code == 0, err
    assert "replayed 12 of 12 from 'dlq'" in out
    eventually(lambda: count(broker.backend, "dlq") == 0, "the DLQ emptied")
    back = drain(broker.backend, "work")
    assert ids_of(back) == sorted(ids)
    assert all(m.headers.get(H_JOB) for m in back)
    with Journal(default_journal_path()) as journal:
        assert journal.unfinished_jobs() == []


def test_dry_run_filter_and_target_move_nothing_then_only_the_matching_ones(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_letter(broker.backend, 6)  # tenant acme for even ids
    code, out, err = run(capsys, "replay", *broker.url, "--from", "dlq", "--to", "orders:small",
                         "--filter", "header.tenant=acme", "--dry-run")
    assert code == 0, err
    assert "would replay 3 of 6" in out and "id:m2 -> exchange 'orders' with routing key 'small'" in out
    assert "3 not matching the filter" in out
    assert count(broker.backend, "dlq") == 6 and count(broker.backend, "small") == 0

    code, out, err = run(capsys, "replay", *broker.url, "--from", "dlq", "--to", "orders:small",
                         "--filter", "header.tenant=acme", "--rate", "200")
    assert code == 0, err
    assert "replayed 3 of 6" in out
    eventually(lambda: count(broker.backend, "small") == 3, "three copies in small")
    assert ids_of(drain(broker.backend, "small")) == ["m0", "m2", "m4"]
    eventually(lambda: count(broker.backend, "dlq") == 3, "the others still in the DLQ")


def test_a_target_that_refuses_keeps_the_messages_and_exits_1(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_letter(broker.backend, 8)  # queue small takes 5, then rejects publishes
    code, out, _ = run(capsys, "replay", *broker.url, "--from", "dlq", "--to", "orders:small")
    assert code == 1
    assert "replayed 5 of 8" in out and out.count("FAILED") == 3 and "kept in the DLQ" in out
    eventually(lambda: count(broker.backend, "dlq") == 3, "the refused three still in the DLQ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "nope"], "no queue 'nope' in this vhost"),
        (["--from", "dlq", "--to", "missing:key"], "no exchange 'missing' in this vhost"),
        (["--from", "dlq", "--to", ":dlq"], "refusing to replay queue 'dlq' into itself"),
        (["--from", "dlq", "--to", "dlx"], "exchange 'dlx' routes every message only to it"),
        (["--from", "dlq", "--to", ":nowhere"], "no queue 'nowhere' in this vhost"),
        (["--from", "dlq", "--filter", "colour=red"], "--filter: unknown filter field 'colour'"),
        (["--from", "dlq", "--rate", "0"], "--rate must be positive"),
        (["--resume", "nosuchjob"], "no replay job 'nosuchjob'"),
    ],
)
def test_bad_input_is_refused_before_anything_is_taken(
    broker: Broker, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    dead_letter(broker.backend, 3)
    code, out, err = run(capsys, "replay", *broker.url, *args)
    assert code == 2
    assert err.startswith("mqstudio replay: ") and expected in err
    assert "replay job" not in out  # nothing was started
    assert count(broker.backend, "dlq") == 3


def test_usage_errors_need_no_broker(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "replay", "--from", "dlq")
    assert code == 2 and "--url is required with --from" in err
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--url", "embedded://"])  # neither --from, --resume, --abandon nor --list
    assert exited.value.code == 2
    assert "one of the arguments --from --resume --abandon --list is required" in capsys.readouterr().err
    code, _, err = run(capsys, "replay", "--url", "embedded://", "--resume", "j", "--to", "x")
    assert code == 2 and "only --rate may be given" in err
    code, out, _ = run(capsys, "replay", "--list")
    assert code == 0 and "no unfinished replay jobs" in out
    code, _, err = run(capsys, "replay", "--abandon", "nosuchjob")
    assert code == 2 and "no replay job 'nosuchjob'" in err


def test_export_writes_every_message_and_keeps_them(
    broker: Broker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = dead_letter(broker.backend, 7)
    path = tmp_path / "dlq.jsonl"
    code, out, err = run(capsys, "export", *broker.url, "dlq", str(path))
    assert code == 0, err
    assert f"exported 7 messages from dlq to {path}" in out
    exported = list(read_messages(path))
    assert ids_of(exported) == sorted(ids)
    assert all(m.headers.get("x-death") for m in exported)
    eventually(lambda: count(broker.backend, "dlq") == 7, "the DLQ still holds all seven")

    code, _, err = run(capsys, "export", *broker.url, "nope", str(tmp_path / "x.jsonl"))
    assert code == 2 and "cannot export nope" in err
    assert not (tmp_path / "x.jsonl").exists()
    code, _, err = run(capsys, "export", *broker.url, "dlq", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert code == 2 and "cannot write" in err


def test_an_unfinished_job_can_be_listed_and_resumed(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job interrupted after part of the work (as a crash leaves it) is listed, then finished by
    --resume with its own filter."""
    ids = dead_letter(broker.backend, 10)
    from mqstudio.ops.replay import ReplayJob

    with Journal(default_journal_path()) as journal:
        job = ReplayJob(broker.backend, "dlq", filter="header.tenant=acme", journal=journal,
                        job_id="part", limit=4)
        assert job.run().replayed == 2  # m0, m2 among the first four
        journal.finish_job("part", JobStatus.INTERRUPTED)  # as if it had stopped there
    code, out, _ = run(capsys, "replay", "--list")
    assert code == 0
    assert "part  interrupted" in out and "from 'dlq' to their origins" in out and "2 done" in out
    code, out, err = run(capsys, "replay", *broker.url, "--resume", "part")
    assert code == 0, err
    assert "replayed 3 of" in out  # m4, m6, m8: the filter came back from the journal
    eventually(lambda: count(broker.backend, "dlq") == 5, "the other tenant's five stay")
    assert ids_of(drain(broker.backend, "work")) == sorted(i for i in ids if int(i[1:]) % 2 == 0)
    code, _, err = run(capsys, "replay", *broker.url, "--resume", "part")
    assert code == 2 and "is done: nothing to resume" in err


CHILD = "import sys; from mqstudio.cli import main; sys.exit(main(sys.argv[1:]))"


def test_a_killed_replay_abandoned_from_the_command_line_loses_nothing(
    rabbitmq_service: RabbitMQService, rabbitmq_vhost: str, tmp_path: Path
) -> None:
    """SIGKILL a `mqstudio replay` mid-job, abandon it: every message is in the target or still in
    the DLQ (the killed connection's unacked ones came back), and a new replay finishes the work."""
    s = rabbitmq_service
    backend = s.backend(rabbitmq_vhost)
    backend.connect()
    try:
        deploy(backend)
        ids = set(dead_letter(backend, 600))
        url = ["--url", f"amqp://{s.username}@{s.host}:{s.port}/{quote(rabbitmq_vhost, safe='')}",
               "--http", f"http://{s.host}:{s.management_port}"]
        env = {**os.environ, PASSWORD_ENV: s.password, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, "replay", *url, "--from", "dlq", "--rate", "300"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert child.stdout is not None
            first = child.stdout.readline()
            assert first.startswith("replay job "), first
            job_id = first.split()[2]
            with Journal(default_journal_path()) as journal:
                eventually(lambda: journal.counts(job_id).get(ItemState.DONE.value, 0) >= 100, "100 done", 60)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        listed = subprocess.run([sys.executable, "-c", CHILD, "replay", "--list"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60, check=False)
        assert listed.returncode == 0 and job_id in listed.stdout and "running" in listed.stdout
        abandoned = subprocess.run([sys.executable, "-c", CHILD, "replay", "--abandon", job_id], env=env,
                                   cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert abandoned.returncode == 0, abandoned.stderr
        assert f"abandoned replay job {job_id}" in abandoned.stdout
        assert "nothing was sent or removed" in abandoned.stdout
        with Journal(default_journal_path()) as journal:
            assert journal.unfinished_jobs() == []
        # The checker: every id is in work or back in the DLQ (lost = 0).
        eventually(lambda: count(backend, "dlq") + count(backend, "work") >= len(ids), "all requeued")
        left = count(backend, "dlq")
        assert 0 < left < len(ids)
        in_work = collections.Counter(str(m.properties.get("message_id")) for m in drain(backend, "work"))
        in_dlq = collections.Counter(str(m.properties.get("message_id")) for m in drain(backend, "dlq"))
        assert ids - set(in_work) - set(in_dlq) == set(), "lost"
        # Duplicates (in both) are only the batch in flight when the process died.
        assert len(set(in_work) & set(in_dlq)) <= 200
    finally:
        backend.close()


def test_kafka_dlt_replay_and_refusals_from_the_command_line(
    tansu: object, kafka_backend: object, kafka_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mqstudio.backends.kafka import KafkaBackend
    from mqstudio.core.model import Topic
    from tests.fixtures.kafka import Tansu
    from tests.ops.test_replay_kafka import fill_dlt, read_all

    assert isinstance(tansu, Tansu) and isinstance(kafka_backend, KafkaBackend)
    origin, dlt = f"{kafka_prefix}orders", f"{kafka_prefix}orders.DLT"
    kafka_backend.create_topic(Topic(origin, partitions=3))
    kafka_backend.create_topic(Topic(dlt, partitions=1))
    fill_dlt(tansu, dlt, origin, 30)
    url = ["--url", f"kafka://{tansu.bootstrap}"]
    for args, expected in (
        (["--from", dlt, "--to", dlt], f"refusing to replay topic {dlt!r} into itself"),
        (["--from", f"{kafka_prefix}nope.DLT"], f"no topic '{kafka_prefix}nope.DLT'"),
        (["--from", dlt, "--to", f"{kafka_prefix}missing"], f"no topic '{kafka_prefix}missing'"),
    ):
        code, _, err = run(capsys, "replay", *url, *args)
        assert code == 2 and expected in err, err
    code, out, err = run(capsys, "replay", *url, "--from", dlt)
    assert code == 0, err
    assert "replayed 30 of" in out
    records = read_all(tansu, origin, 30)
    assert sorted(dict(r.headers)["rid"] for r in records) == sorted(b"r%d" % i for i in range(30))  # type: ignore[attr-defined]
