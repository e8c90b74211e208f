"""`mqstudio install-desktop`: the entry, metainfo, icon and project MIME type land in $XDG_DATA_HOME,
launch this installation, the freedesktop caches are refreshed where the tools exist, and
`--uninstall` takes it all away again."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mqstudio import cli, desktop

ROOT = Path(__file__).resolve().parents[2]
ENTRY = f"applications/{desktop.APP_ID}.desktop"
METAINFO = f"metainfo/{desktop.APP_ID}.metainfo.xml"
ICON = f"icons/hicolor/scalable/apps/{desktop.APP_ID}.svg"
MIME = f"mime/packages/{desktop.APP_ID}.xml"
FILES = (ENTRY, METAINFO, ICON, MIME)
REFRESHERS = ("update-mime-database", "update-desktop-database")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def keys(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def refreshed(tmp_path: Path) -> list[str]:
    """The lines install-desktop prints after refreshing the caches with the tools this machine has."""
    folders = {
        "update-mime-database": tmp_path / "mime",
        "update-desktop-database": tmp_path / "applications",
    }
    return [f"updated {folders[tool]} ({tool})" for tool in REFRESHERS if shutil.which(tool)]


def test_install_writes_the_four_files_under_xdg_data_home_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    code, out, err = run(capsys, "install-desktop")
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"wrote {tmp_path / rel}" for rel in FILES] + refreshed(tmp_path)
    assert (tmp_path / ICON).read_bytes() == (ROOT / "resources" / "icons" / "mqstudio.svg").read_bytes()
    packaged = ROOT / "packaging" / "linux" / Path(METAINFO).name
    assert (tmp_path / METAINFO).read_bytes() == packaged.read_bytes()
    values = keys((tmp_path / ENTRY).read_text(encoding="utf-8"))
    assert values["Exec"] == f"{desktop.launcher()} %f"
    assert values["TryExec"] == desktop.launcher()
    assert Path(values["TryExec"]).is_absolute()
    assert values["StartupWMClass"] == desktop.WM_CLASS
    assert values["Icon"] == desktop.APP_ID


def test_uninstall_removes_what_install_wrote_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    neighbour = tmp_path / "applications" / "other.desktop"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text("[Desktop Entry]\n", encoding="utf-8")
    assert run(capsys, "install-desktop")[0] == 0
    code, out, _ = run(capsys, "install-desktop", "--uninstall")
    assert code == 0
    assert out.splitlines() == [f"removed {tmp_path / rel}" for rel in FILES] + refreshed(tmp_path)
    assert not any((tmp_path / rel).exists() for rel in FILES)
    assert neighbour.exists()
    code, out, _ = run(capsys, "install-desktop", "--uninstall")
    assert (code, out) == (0, f"nothing to remove under {tmp_path}\n")


def test_a_relative_xdg_data_home_is_ignored_as_the_spec_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    assert desktop.data_home() == tmp_path / ".local" / "share"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert desktop.data_home() == tmp_path / ".local" / "share"


def test_an_unwritable_data_home_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    code, out, err = run(capsys, "install-desktop")
    assert code == 2
    assert out == ""
    assert err.startswith("mqstudio install-desktop: cannot write ")
    assert str(blocker) in err


@pytest.mark.parametrize(
    ("program", "exec_value"),
    [
        ("/opt/mq studio/bin/mqstudio-gui", '"/opt/mq studio/bin/mqstudio-gui" %f'),
        ("/home/a$b/100%/mqstudio-gui", '"/home/a\\\\$b/100%%/mqstudio-gui" %f'),
        ("/usr/bin/mqstudio-gui", "/usr/bin/mqstudio-gui %f"),
    ],
)
def test_a_launcher_path_with_reserved_characters_is_quoted_per_the_spec(
    tmp_path: Path, program: str, exec_value: str
) -> None:
    written = desktop.install(tmp_path, program=program)
    text = written[0].read_text(encoding="utf-8")
    assert keys(text)["Exec"] == exec_value
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(
            ["desktop-file-validate", str(written[0])], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and "error" not in result.stdout, result.stdout


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in REFRESHERS),
    reason="needs shared-mime-info and desktop-file-utils",
)
def test_projects_open_with_mqstudio_once_installed_and_not_after_uninstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert run(capsys, "install-desktop")[0] == 0
    globs = (tmp_path / "mime" / "globs2").read_text(encoding="utf-8").splitlines()
    assert f"50:{desktop.PROJECT_MIME_TYPE}:*.mqs.json" in globs
    associations = (tmp_path / "applications" / "mimeinfo.cache").read_text(encoding="utf-8")
    assert f"{desktop.PROJECT_MIME_TYPE}={desktop.APP_ID}.desktop;" in associations.splitlines()
    assert run(capsys, "install-desktop", "--uninstall")[0] == 0
    assert "*.mqs.json" not in (tmp_path / "mime" / "globs2").read_text(encoding="utf-8")
    assert desktop.PROJECT_MIME_TYPE not in (tmp_path / "applications" / "mimeinfo.cache").read_text()


def test_a_failing_cache_tool_is_reported_and_the_files_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in REFRESHERS:
        script = tools / tool
        script.write_text("#!/bin/sh\necho 'broken cache' >&2\nexit 3\n", encoding="utf-8")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    data = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    code, out, _ = run(capsys, "install-desktop")
    assert code == 0
    assert out.splitlines()[-2:] == [
        f"update-mime-database {data / 'mime'} failed: broken cache",
        f"update-desktop-database {data / 'applications'} failed: broken cache",
    ]
    assert all((data / rel).is_file() for rel in FILES)
