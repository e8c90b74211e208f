"""`python -m build` gives a clean sdist and a wheel that works installed into a fresh venv.

The fresh venv gets only the wheel (pip --no-deps --no-index, so nothing is downloaded); the third-party
dependencies come from the environment running the tests through a plain path line in a .pth file (whose
own .pth files, among them the editable install's pointer to this checkout, are therefore not run). An
audit hook installed in the fresh venv logs every file Python opens, so the tests can prove that the
installed commands read their code, icons, styles, examples and desktop files from the installed package
and never from this repository.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from mqstudio import __version__, desktop

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AUDIT_ENV = "MQSTUDIO_TEST_OPEN_LOG"
AUDIT_MODULE = f"""\
import os, sys
_log_path = os.environ.get({AUDIT_ENV!r})
if _log_path:
    _log = open(_log_path, "a", encoding="utf-8")
    def _hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.fsdecode(args[0])
            _log.write(os.path.abspath(path) + "\\n")
            _log.flush()
    sys.addaudithook(_hook)
"""


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    output: str


@dataclass(frozen=True)
class Installed:
    bin: Path
    site_packages: Path

    @property
    def package(self) -> Path:
        return self.site_packages / "mqstudio"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """sdist, then the wheel built from the unpacked sdist (so a file missing from the sdist shows)."""
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: hatchling comes from the test environment, nothing is downloaded
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    (wheel,) = out.glob("mqstudio-*.whl")
    (sdist,) = out.glob("mqstudio-*.tar.gz")
    return Built(wheel, sdist, output)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-index", "--no-compile", str(built.wheel)],
        check=True,
        timeout=300,
    )
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n", encoding="utf-8")
    (site / "_mqstudio_test_audit.py").write_text(AUDIT_MODULE, encoding="utf-8")
    (site / "_mqstudio_test_audit.pth").write_text("import _mqstudio_test_audit\n", encoding="utf-8")
    return Installed(venv / "bin", site)


def run_installed(
    installed: Installed, tmp_path: Path, *argv: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run an installed command from an empty directory; also return the files it opened."""
    log = tmp_path / "opened.log"
    log.write_text("", encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    environ.update(QT_QPA_PLATFORM="offscreen", **{AUDIT_ENV: str(log)}, **env)
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    result = subprocess.run(
        [str(installed.bin / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=work,
        env=environ,
        timeout=120,
    )
    return result, log.read_text(encoding="utf-8").splitlines()


def from_checkout(opened: list[str]) -> list[str]:
    """Opened files that belong to this checkout's package, resources or packaging (not its .venv)."""
    own = tuple(str(ROOT / name) + os.sep for name in ("mqstudio", "resources", "packaging"))
    return [path for path in opened if path.startswith(own)]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_build_warns_about_nothing_and_the_sdist_holds_sources_not_clutter(built: Built) -> None:
    assert "warning" not in built.output.lower(), built.output
    with tarfile.open(built.sdist) as tar:
        names = [name.split("/", 1)[1] for name in tar.getnames() if "/" in name]
    clutter = (".venv/", "__pycache__", ".pyc", "_cache/", ".hypothesis/", ".git/", "dist/", "build/")
    assert [name for name in names if any(part in name + "/" for part in clutter)] == []
    for needed in (
        "pyproject.toml",
        "README.md",
        "mqstudio/cli.py",
        "resources/icons/mqstudio.svg",
        f"packaging/linux/{desktop.APP_ID}.desktop",
        f"packaging/linux/{desktop.APP_ID}.metainfo.xml",
        f"packaging/linux/{desktop.APP_ID}.mime.xml",
        "packaging/pyinstaller/mqstudio.spec",
        "packaging/build-bundle.sh",
    ):
        assert needed in names, f"{needed} is missing from the sdist"


def test_the_wheel_carries_icons_styles_examples_desktop_files_and_both_commands(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"mqstudio-{__version__}.dist-info/entry_points.txt").decode()
    for needed in (
        "mqstudio/resources/icons/mqstudio.svg",
        "mqstudio/resources/styles/app.qss",
        "mqstudio/resources/examples/demo.mqs.json",
        f"mqstudio/resources/linux/{desktop.APP_ID}.desktop",
        f"mqstudio/resources/linux/{desktop.APP_ID}.metainfo.xml",
        f"mqstudio/resources/linux/{desktop.APP_ID}.mime.xml",
    ):
        assert needed in names, f"{needed} is missing from the wheel"
    assert not [name for name in names if name.startswith(("tests/", "resources/", "packaging/"))]
    assert "[console_scripts]\nmqstudio = mqstudio.cli:main" in entry_points
    assert "[gui_scripts]\nmqstudio-gui = mqstudio.cli:main" in entry_points


def test_installed_mqstudio_reports_its_version(installed: Installed, tmp_path: Path) -> None:
    result, opened = run_installed(installed, tmp_path, "mqstudio", "--version")
    assert (result.returncode, result.stdout) == (0, f"mqstudio {__version__}\n"), result.stderr
    assert str(installed.package / "cli.py") in opened
    assert from_checkout(opened) == []
    assert (installed.bin / "mqstudio-gui").is_file()


def test_installed_mqstudio_renders_a_screenshot_from_its_own_resources(
    installed: Installed, tmp_path: Path
) -> None:
    out = tmp_path / "shot.png"
    result, opened = run_installed(installed, tmp_path, "mqstudio", "--screenshot", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert png_size(out) == (1280, 800)
    assert out.stat().st_size > 20_000, "a 1280x800 window with toolbars and panels is not a blank image"
    resources = installed.package / "resources"
    assert str(resources / "icons" / "mqstudio.svg") in opened
    assert str(resources / "styles" / "app.qss") in opened
    assert from_checkout(opened) == []


def test_installed_install_desktop_points_the_entry_at_the_installed_launcher(
    installed: Installed, tmp_path: Path
) -> None:
    data = tmp_path / "share"
    result, opened = run_installed(
        installed, tmp_path, "mqstudio", "install-desktop", XDG_DATA_HOME=str(data)
    )
    assert result.returncode == 0, result.stderr
    entry = (data / "applications" / f"{desktop.APP_ID}.desktop").read_text(encoding="utf-8")
    assert f"Exec={installed.bin / 'mqstudio-gui'} %f" in entry.splitlines()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / f"{desktop.APP_ID}.svg").is_file()
    assert str(installed.package / "resources" / "linux" / f"{desktop.APP_ID}.metainfo.xml") in opened
    assert (data / "mime" / "packages" / f"{desktop.APP_ID}.xml").is_file()
    assert from_checkout(opened) == []
