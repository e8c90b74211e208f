"""Linux desktop integration for the current user: the .desktop entry, AppStream metainfo, the icon and
the project file type (``*.mqs.json``, so file managers open projects with mqstudio).

Owns: where the packaging files are (inside the installed wheel as ``mqstudio/resources/linux``, in a
source checkout as ``packaging/linux``), the reverse-DNS application id and X11 window class the GUI must
use (`mqstudio.app` takes them from here), `install()` / `uninstall()` into the XDG data directory
(``$XDG_DATA_HOME``, by default ``~/.local/share``) and `refresh_caches()` (the freedesktop tools that
index MIME types and desktop entries, where installed). Stdlib only: no Qt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mqstudio

APP_ID = "io.github.mqstudio.MqStudio"
# Qt's xcb plugin sets WM_CLASS's class to QCoreApplication.applicationName(): the .desktop file's
# StartupWMClass must equal it, or docks show a second, icon-less entry for the running window.
WM_CLASS = "mqstudio"
GUI_COMMAND = "mqstudio-gui"
PROJECT_MIME_TYPE = "application/x-mqstudio-project"

_PACKAGE = Path(mqstudio.__file__).resolve().parent


class DesktopError(RuntimeError):
    """The desktop files cannot be found or written."""


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DesktopError(
        f"{candidates[0].name} is missing (looked in {', '.join(str(c.parent) for c in candidates)}); "
        "reinstall mqstudio"
    )


def desktop_entry_source() -> Path:
    name = f"{APP_ID}.desktop"
    return _first_existing(
        _PACKAGE / "resources" / "linux" / name, _PACKAGE.parent / "packaging" / "linux" / name
    )


def metainfo_source() -> Path:
    name = f"{APP_ID}.metainfo.xml"
    return _first_existing(
        _PACKAGE / "resources" / "linux" / name, _PACKAGE.parent / "packaging" / "linux" / name
    )


def mime_source() -> Path:
    name = f"{APP_ID}.mime.xml"
    return _first_existing(
        _PACKAGE / "resources" / "linux" / name, _PACKAGE.parent / "packaging" / "linux" / name
    )


def icon_source() -> Path:
    return _first_existing(
        _PACKAGE / "resources" / "icons" / "mqstudio.svg",
        _PACKAGE.parent / "resources" / "icons" / "mqstudio.svg",
    )


def data_home(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME`` when set to an absolute path (the spec ignores a relative one), else
    ``~/.local/share``."""
    env = os.environ if environ is None else environ
    value = env.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


@dataclass(frozen=True, slots=True)
class Targets:
    desktop_entry: Path
    metainfo: Path
    icon: Path
    mime: Path

    def all(self) -> tuple[Path, Path, Path, Path]:
        return (self.desktop_entry, self.metainfo, self.icon, self.mime)


def targets(base: Path) -> Targets:
    return Targets(
        desktop_entry=base / "applications" / f"{APP_ID}.desktop",
        metainfo=base / "metainfo" / f"{APP_ID}.metainfo.xml",
        icon=base / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
        mime=base / "mime" / "packages" / f"{APP_ID}.xml",
    )


def launcher() -> str:
    """The absolute path of the command that opens the window from this installation.

    A PyInstaller bundle is its own executable; a pip/pipx install has ``mqstudio-gui`` beside the
    interpreter; otherwise whatever ``mqstudio-gui`` the PATH finds, or the bare name as a last resort.
    """
    if getattr(sys, "frozen", False):
        return str(Path(sys.executable).resolve())
    beside = Path(sys.executable).parent / GUI_COMMAND
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside.absolute())
    found = shutil.which(GUI_COMMAND)
    return str(Path(found).absolute()) if found else GUI_COMMAND


def _quote_exec(program: str) -> str:
    """`program` as the first word of a desktop entry's Exec key (quoted per the Desktop Entry spec)."""
    program = program.replace("%", "%%")  # a literal % in Exec is written %%
    if not any(c in program for c in " \t\n\"'\\><~|&;$*?#()`"):
        return program
    escaped = program.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    # The .desktop file format itself unescapes backslashes once more when the value is read.
    return '"' + escaped.replace("\\", "\\\\") + '"'


def desktop_entry_text(program: str) -> str:
    """The packaged desktop entry with Exec and TryExec pointing at `program`."""
    lines: list[str] = []
    for line in desktop_entry_source().read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            lines.append(f"Exec={_quote_exec(program)} %f")
        elif line.startswith("TryExec="):
            lines.append("TryExec=" + program.replace("\\", "\\\\"))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def install(base: Path | None = None, program: str | None = None) -> list[Path]:
    """Write the desktop entry, metainfo, icon and MIME type under `base` (the XDG data home); return
    the paths."""
    where = targets(data_home() if base is None else base)
    entry = desktop_entry_text(launcher() if program is None else program)
    copies = ((metainfo_source(), where.metainfo), (icon_source(), where.icon), (mime_source(), where.mime))
    try:
        for path in where.all():
            path.parent.mkdir(parents=True, exist_ok=True)
        where.desktop_entry.write_text(entry, encoding="utf-8")
        for source, target in copies:
            shutil.copyfile(source, target)
    except OSError as exc:
        raise DesktopError(f"cannot write {exc.filename or 'the desktop files'}: {exc.strerror}") from exc
    return list(where.all())


def uninstall(base: Path | None = None) -> list[Path]:
    """Remove what `install` wrote under `base`; return the paths that were there."""
    removed: list[Path] = []
    for path in targets(data_home() if base is None else base).all():
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DesktopError(f"cannot remove {path}: {exc.strerror}") from exc
        removed.append(path)
    return removed


def refresh_caches(base: Path | None = None) -> list[str]:
    """Re-index the MIME database and the desktop entries' MIME associations under `base`, with the
    freedesktop tools where installed (desktops also notice the files by themselves, later). Returns
    one line per tool: what it did, or why it failed; a failure here leaves the installed files intact.
    """
    root = data_home() if base is None else base
    notes: list[str] = []
    for tool, folder in (
        ("update-mime-database", root / "mime"),
        ("update-desktop-database", root / "applications"),
    ):
        executable = shutil.which(tool)
        if executable is None or not folder.is_dir():
            continue
        try:
            result = subprocess.run(
                [executable, str(folder)], capture_output=True, text=True, check=False, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            notes.append(f"{tool} {folder} failed: {exc}")
            continue
        if result.returncode == 0:
            notes.append(f"updated {folder} ({tool})")
        else:
            detail = (result.stderr or result.stdout).strip().splitlines()
            notes.append(f"{tool} {folder} failed: {detail[-1] if detail else f'exit {result.returncode}'}")
    return notes
