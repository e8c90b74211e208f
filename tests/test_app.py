"""The GUI bootstrap explains how to run without a display instead of crashing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mqstudio import app


@pytest.mark.parametrize(
    ("env", "expect_problem"),
    [
        ({}, True),
        ({"DISPLAY": ":0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"QT_QPA_PLATFORM": "offscreen"}, False),
    ],
)
def test_display_problem_only_when_no_display_is_reachable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expect_problem: bool
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", "linux")
    problem = app.display_problem()
    assert (problem is not None) is expect_problem
    if problem:
        assert "xvfb-run" in problem and "QT_QPA_PLATFORM=offscreen" in problem


def test_gui_without_display_exits_2_with_instructions() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run(
        [sys.executable, "-m", "mqstudio"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "needs a display" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_help_need_no_display() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    for flag, expected in (("--version", "mqstudio 0."), ("--help", "usage: mqstudio")):
        result = subprocess.run(
            [sys.executable, "-m", "mqstudio", flag], capture_output=True, text=True, env=env, timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout
