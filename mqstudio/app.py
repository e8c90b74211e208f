"""GUI bootstrap: the one place that creates the QApplication.

Owns: display detection, application metadata (names, organisation for QSettings, window icon), the
theme at start-up (the user's choice; ``$MQSTUDIO_THEME`` overrides it), creating and showing the main
window, offering crash recovery, and ``--screenshot`` (render offscreen to a PNG, show nothing). Imports
Qt lazily; only `cli` imports this module.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from mqstudio import __version__
from mqstudio.desktop import APP_ID, WM_CLASS  # the packaged .desktop file's name and StartupWMClass

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication


def display_problem() -> str | None:
    """Explain how to run the GUI when no display is reachable, or None when one is."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc", "eglfs", "linuxfb")):
        return None
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return (
            "mqstudio needs a display to open its window, and none was found "
            "(neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
            "  - on a desktop, start it from your session;\n"
            "  - headless, run it under a virtual screen: xvfb-run mqstudio\n"
            "  - or render offscreen: QT_QPA_PLATFORM=offscreen mqstudio\n"
            "The command line works without a display: mqstudio --help"
        )
    return None


THEME_ENV = "MQSTUDIO_THEME"
SCREENSHOT_SIZE = (1280, 800)


def _application() -> QApplication:
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(WM_CLASS)  # X11 WM_CLASS; also names the settings file
    app.setApplicationDisplayName("mqstudio")
    app.setOrganizationName("mqstudio")
    app.setOrganizationDomain("mqstudio.github.io")
    app.setApplicationVersion(__version__)
    from mqstudio.ui.canvas.scene import release_clipboard

    app.aboutToQuit.connect(release_clipboard)
    app.setDesktopFileName(APP_ID)
    from mqstudio.ui.resources import app_icon

    app.setWindowIcon(app_icon())
    from mqstudio.ui import gcguard

    gcguard.install(app)  # Qt objects in dead cycles are destroyed on the GUI thread, never a worker's
    return app


def run_gui(file: str | None = None, screenshot: str | None = None, wait: float | None = None) -> int:
    """Open the main window (with `file`; on a first run without one, the live demo), or with
    `screenshot` render it offscreen to a PNG and exit (after `wait` seconds of live traffic)."""
    if screenshot is not None:
        return _screenshot(screenshot, file, wait)
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2

    from PySide6.QtCore import QTimer

    from mqstudio.ui.mainwindow import MainWindow

    app = _application()
    window = MainWindow()
    forced = os.environ.get(THEME_ENV)
    if forced:
        window.theme.set_theme(forced)
    if file:
        window.open_path(file)
    else:
        from mqstudio.ui.traffic import is_first_run, start_demo

        if is_first_run(window):  # the live demo on the embedded broker (ui.traffic)
            start_demo(window)
    window.show()
    QTimer.singleShot(0, window, window.files.offer_recovery)
    return int(app.exec())


def _screenshot(out: str, file: str | None, wait: float | None = None) -> int:
    """Render the window at 1280x800 without showing it on any screen; settings stay untouched."""
    import tempfile

    from mqstudio.core.errors import FileFormatError
    from mqstudio.core.loading import load_any

    if file:  # refuse a bad file here: a dialog would wait for a click nobody can give
        try:
            load_any(file)
        except (OSError, FileFormatError) as exc:
            print(f"mqstudio --screenshot: cannot open {file}: {exc}", file=sys.stderr)
            return 1
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    with tempfile.TemporaryDirectory(prefix="mqstudio-screenshot-") as scratch:
        os.environ["MQSTUDIO_SETTINGS"] = os.path.join(scratch, "settings.ini")
        app = _application()
        from pathlib import Path

        from PySide6.QtCore import QSettings

        from mqstudio.ui.mainwindow import MainWindow

        settings = QSettings(os.environ["MQSTUDIO_SETTINGS"], QSettings.Format.IniFormat)
        settings.setValue("view/theme", os.environ.get(THEME_ENV, "system"))
        window = MainWindow(settings=settings, autosave_dir=Path(scratch) / "autosave")
        if file and not window.open_path(file):
            return 1
        window.resize(*SCREENSHOT_SIZE)
        window.show()
        for _ in range(3):
            app.processEvents()
        if wait:  # live traffic first: an in-memory broker, the demo or FILE, generators and a tail
            from mqstudio.ui.traffic import live_screenshot

            live_screenshot(window, wait, demo=not file)
        window.prepare_screenshot()
        app.processEvents()
        image = window.grab().toImage()
        if wait:
            from mqstudio.ui.traffic import stop_live

            stop_live(window)
        window.files.shutdown()
        window.hide()
        window.deleteLater()
        app.processEvents()
        if not image.save(out, "PNG"):  # type: ignore[call-overload]  # the stubs say bytes; str works
            print(f"mqstudio --screenshot: cannot write {out}", file=sys.stderr)
            return 1
    print(f"wrote {out} ({image.width()}x{image.height()})")
    return 0
