"""`mqstudio install-desktop`: the entry, metainfo and icon land in $XDG_DATA_HOME, launch this
installation, and `--uninstall` takes them away again."""

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


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def keys(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_install_writes_the_three_files_under_xdg_data_home_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    code, out, err = run(capsys, "install-desktop")
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"wrote {tmp_path / rel}" for rel in (ENTRY, METAINFO, ICON)]
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
    assert out.splitlines() == [f"removed {tmp_path / rel}" for rel in (ENTRY, METAINFO, ICON)]
    assert not any((tmp_path / rel).exists() for rel in (ENTRY, METAINFO, ICON))
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
