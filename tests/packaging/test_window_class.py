"""On a real X server the main window's WM_CLASS class is the desktop entry's StartupWMClass, so docks
and launchers put the running window under mqstudio's icon. Needs Xvfb, xwininfo and xprop (Debian:
xvfb, x11-utils) and the xcb libraries Qt's platform plugin loads; skipped without them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqstudio import desktop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "pub-sub.mqs.json"
TOOLS = ("Xvfb", "xwininfo", "xprop")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(shutil.which(tool) is None for tool in TOOLS), reason="needs Xvfb, xwininfo and xprop"
    ),
]


@pytest.fixture
def display() -> Iterator[str]:
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        assert number, "Xvfb did not report its display number"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def x(display: str, *argv: str) -> str:
    return subprocess.run(
        list(argv), capture_output=True, text=True, check=False, env={**os.environ, "DISPLAY": display}
    ).stdout


def window_classes(display: str) -> list[str]:
    classes: list[str] = []
    for line in x(display, "xwininfo", "-root", "-children").splitlines():  # top-level windows
        match = re.match(r"\s*(0x[0-9a-f]+) ", line)
        if match:
            properties = x(display, "xprop", "-id", match[1], "WM_CLASS")
            found = re.search(r'WM_CLASS\(STRING\) = "[^"]*", "([^"]*)"', properties)
            if found:
                classes.append(found[1])
    return classes


def test_the_main_window_class_is_the_desktop_entrys_startup_wm_class(display: str, tmp_path: Path) -> None:
    entry = (ROOT / "packaging" / "linux" / f"{desktop.APP_ID}.desktop").read_text(encoding="utf-8")
    startup_class = re.search(r"^StartupWMClass=(.*)$", entry, re.MULTILINE)
    assert startup_class is not None
    env = {
        **os.environ,
        "DISPLAY": display,
        "QT_QPA_PLATFORM": "xcb",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    app = subprocess.Popen(
        [sys.executable, "-m", "mqstudio", str(EXAMPLE)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        classes: list[str] = []
        while time.monotonic() < deadline and app.poll() is None:
            classes = window_classes(display)
            if classes:
                break
            time.sleep(0.3)
        if app.poll() is not None:
            output = app.stdout.read() if app.stdout else ""
            if "Could not load the Qt platform plugin" in output:
                pytest.skip("Qt's xcb platform plugin lacks system libraries (e.g. libxcb-cursor0)")
            pytest.fail(f"mqstudio exited with {app.returncode}: {output}")
        assert classes, "no window with a WM_CLASS appeared within 30 s"
        assert set(classes) == {startup_class[1]}
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait(timeout=10)
