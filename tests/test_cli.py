"""The command line: validate and convert run without Qt and report through exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mqstudio import __version__, cli
from mqstudio.core import fileformat
from mqstudio.core.definitions import export_definitions, import_definitions

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "data" / "rabbitmq_definitions_cluster.json"
VHOST = ROOT / "tests" / "data" / "rabbitmq_definitions_vhost.json"
EXAMPLE = ROOT / "resources" / "examples" / "work-queue-dlx.mqs.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def in_any_order(definitions: dict[str, Any]) -> dict[str, Any]:
    """A project lists nodes by name, so compare object lists as sets of JSON texts."""
    return {
        key: sorted(json.dumps(item, sort_keys=True) for item in value) if isinstance(value, list) else value
        for key, value in definitions.items()
    }


def write_project(tmp_path: Path, queues: list[dict[str, Any]], name: str = "p.mqs.json") -> Path:
    path = tmp_path / name
    data = {"format": "mqstudio/1", "topology": {"queues": queues}}
    path.write_text(json.dumps(data))
    return path


def test_python_dash_m_prints_the_version_without_importing_qt() -> None:
    code = "import runpy, sys; sys.argv = ['mqstudio', '--version']\n"
    code += "try:\n    runpy.run_module('mqstudio', run_name='__main__')\nexcept SystemExit as e:\n"
    code += "    assert 'PySide6' not in sys.modules, 'Qt imported'; raise\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mqstudio {__version__}"


def test_python_dash_m_mqstudio_version_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mqstudio", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"mqstudio {__version__}"


def test_help_lists_the_sub_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "validate" in out and "convert" in out


# -- validate ---------------------------------------------------------------------------------


def test_validate_a_valid_example_project_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(EXAMPLE))
    assert code == 0
    assert out.strip().endswith("0 errors, 0 warnings")
    assert ": valid project (2 exchanges, 2 queues, 2 bindings)" in out


def test_validate_detects_definitions_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(CLUSTER))
    assert code == 0
    assert "valid definitions" in out


def test_validate_prints_every_problem_with_its_path_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_project(
        tmp_path,
        [{"id": "a", "name": "a", "durable": "no"}, {"id": "b", "name": "b", "arguments": {"x-expires": 0}}],
    )
    code, out, err = run(capsys, "validate", str(path))
    assert code == 1
    assert out == ""  # no verdict or lint for a file that was refused
    assert "topology.queues[0].durable: must be true or false" in err
    assert "topology.queues[1].arguments.x-expires:" in err
    assert "2 problems found" in err


def test_validate_groups_lint_findings_by_severity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_project(tmp_path, [{"id": "q", "name": "q", "arguments": {"x-message-ttl": 1000}}])
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 0  # warnings are allowed
    lines = out.splitlines()
    assert lines[0] == "warnings (1):"
    assert lines[1].startswith("  [ttl-without-dlx] ")
    assert "infos (1):" in lines
    assert "1 warning" in lines[-1]


def test_validate_strict_turns_warnings_into_failure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_project(tmp_path, [{"id": "q", "name": "q", "arguments": {"x-message-ttl": 1000}}])
    code, out, _ = run(capsys, "validate", "--strict", str(path))
    assert code == 1
    assert "invalid project" in out and "--strict" in out


def test_validate_exits_1_on_lint_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_project(
        tmp_path, [{"id": "q", "name": "q", "arguments": {"x-dead-letter-exchange": "nowhere"}}]
    )
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    assert out.startswith("errors (1):\n  [dlx-missing]")


def test_validate_exits_2_when_the_file_cannot_be_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "validate", str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read" in err and out == ""


def test_validate_exits_2_when_the_file_is_not_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "notes.json"
    path.write_text("queues:\n  - orders\n")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2
    assert "line 1, column 1" in err


def test_validate_exits_1_for_json_that_is_neither_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"name": "package", "version": "1.0"}')
    code, _, err = run(capsys, "validate", str(path))
    assert code == 1
    assert "neither an mqstudio project" in err


def test_validate_refuses_a_future_project_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "new.mqs.json"
    path.write_text('{"format": "mqstudio/2"}')
    code, _, err = run(capsys, "validate", str(path))
    assert code == 1
    assert "upgrade mqstudio" in err


# -- convert ----------------------------------------------------------------------------------


def test_convert_definitions_to_project_and_back_keeps_the_definitions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = tmp_path / "cluster.mqs.json"
    back = tmp_path / "back.json"
    assert run(capsys, "convert", str(CLUSTER), str(project))[0] == 0
    assert fileformat.load(project).topology.find_queue("orders.created") is not None
    code, out, _ = run(capsys, "convert", str(project), str(back))
    assert code == 0 and "(definitions)" in out
    original = export_definitions(import_definitions(CLUSTER.read_text()))
    assert in_any_order(json.loads(back.read_text())) == in_any_order(original)


def test_convert_with_vhost_writes_the_per_vhost_form(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_path = tmp_path / "billing.json"
    code, out, _ = run(capsys, "convert", str(CLUSTER), str(out_path), "--vhost", "billing")
    assert code == 0 and "for vhost 'billing'" in out
    data = json.loads(out_path.read_text())
    assert "users" not in data
    assert [q["name"] for q in data["queues"]] == ["invoices", "invoices.eu"]
    assert all("vhost" not in q for q in data["queues"])


def test_convert_to_overrides_the_extension(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_path = tmp_path / "design.json"
    assert run(capsys, "convert", str(VHOST), str(out_path), "--to", "project")[0] == 0
    assert json.loads(out_path.read_text())["format"] == "mqstudio/1"


def test_convert_refuses_to_overwrite_its_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "defs.json"
    path.write_text(VHOST.read_text())
    code, _, err = run(capsys, "convert", str(path), str(tmp_path / "." / "defs.json"), "--to", "definitions")
    assert code == 2
    assert "refusing to overwrite the input" in err
    assert path.read_text() == VHOST.read_text()


def test_convert_needs_a_known_output_extension_or_to(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "convert", str(VHOST), str(tmp_path / "out.yaml"))
    assert code == 2
    assert "--to" in err
    assert not (tmp_path / "out.yaml").exists()


def test_convert_of_an_invalid_input_writes_nothing_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_project(tmp_path, [{"id": "q", "name": "amq.mine"}])
    target = tmp_path / "out.json"
    code, _, err = run(capsys, "convert", str(path), str(target))
    assert code == 1
    assert "topology.queues[0].name" in err
    assert not target.exists()


def test_convert_reports_kafka_objects_left_out_of_definitions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "k.mqs.json"
    path.write_text(
        json.dumps({"format": "mqstudio/1", "topology": {"topics": [{"id": "t", "name": "events"}]}})
    )
    code, _, err = run(capsys, "convert", str(path), str(tmp_path / "k.json"))
    assert code == 0
    assert "1 Kafka object left out" in err


def test_convert_vhost_between_projects_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "convert", str(EXAMPLE), str(tmp_path / "copy.mqs.json"), "--vhost", "x")
    assert code == 2
    assert "--vhost applies only" in err
