"""packaging/linux: the desktop entry and AppStream metainfo are valid, agree with each other, with
pyproject and with what the running application tells the window manager."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mqstudio import __version__, desktop

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "packaging" / "linux"
ENTRY = LINUX / f"{desktop.APP_ID}.desktop"
METAINFO = LINUX / f"{desktop.APP_ID}.metainfo.xml"
MIME = LINUX / f"{desktop.APP_ID}.mime.xml"


def entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(ENTRY, encoding="utf-8")
    return parser["Desktop Entry"]


def metainfo() -> ET.Element:
    return ET.parse(METAINFO).getroot()


def homepage() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["urls"]["Homepage"])


def test_the_packaged_files_are_the_ones_install_desktop_uses() -> None:
    assert desktop.desktop_entry_source().resolve() == ENTRY.resolve()
    assert desktop.metainfo_source().resolve() == METAINFO.resolve()
    assert desktop.mime_source().resolve() == MIME.resolve()


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_entry_passes_desktop_file_validate() -> None:
    result = subprocess.run(
        ["desktop-file-validate", str(ENTRY)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower() and "warning" not in result.stdout.lower(), result.stdout


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream not installed")
def test_metainfo_passes_appstreamcli_validate() -> None:
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", "--no-color", str(METAINFO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert problems == []


def test_desktop_entry_names_the_application_id_icon_and_window_class() -> None:
    values = entry()
    assert values["Type"] == "Application"
    assert values["Icon"] == desktop.APP_ID
    assert values["StartupWMClass"] == desktop.WM_CLASS
    assert values["Exec"].split()[0] == desktop.GUI_COMMAND
    assert values["Exec"].endswith(" %f")
    assert values["MimeType"] == f"{desktop.PROJECT_MIME_TYPE};"


def test_the_project_mime_type_matches_project_files_and_is_provided_by_the_metainfo() -> None:
    namespace = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    (mime_type,) = ET.parse(MIME).getroot().iterfind("m:mime-type", namespace)
    assert mime_type.get("type") == desktop.PROJECT_MIME_TYPE
    globs = {glob.get("pattern") for glob in mime_type.iterfind("m:glob", namespace)}
    assert "*.mqs.json" in globs
    examples = list((ROOT / "resources" / "examples").iterdir())
    assert examples and all(example.name.endswith(".mqs.json") for example in examples)
    assert metainfo().findtext("provides/mediatype") == desktop.PROJECT_MIME_TYPE


def test_metainfo_describes_the_same_application_and_release() -> None:
    root = metainfo()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == desktop.APP_ID
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == ENTRY.name
    assert root.find("content_rating") is not None
    versions = [release.get("version") for release in root.iterfind("releases/release")]
    assert versions and versions[0] == __version__, "the newest <release> must be the package version"
    assert root.findtext("url[@type='homepage']") == homepage()
    assert root.findtext("project_license") == "MIT"


def test_metainfo_screenshots_are_the_repository_screenshots() -> None:
    owner_repo = homepage().removeprefix("https://github.com/")
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
    images = [image.text or "" for image in metainfo().iterfind("screenshots/screenshot/image")]
    assert images
    for url in images:
        assert url.startswith(prefix), url
        assert (ROOT / url.removeprefix(prefix)).is_file(), f"{url} names no file in the repository"


def test_the_running_application_uses_the_desktop_entry_name_and_window_class() -> None:
    """Qt's xcb plugin sets WM_CLASS's class to applicationName(); Wayland's app_id is desktopFileName()."""
    script = (
        "from mqstudio.app import _application\n"
        "app = _application()\n"
        "print(app.applicationName())\n"
        "print(app.desktopFileName())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    application_name, desktop_file_name = result.stdout.split()[-2:]
    assert application_name == entry()["StartupWMClass"]
    assert f"{desktop_file_name}.desktop" == ENTRY.name
