"""GUI bootstrap: the one place that creates the QApplication.

Owns: display detection, application metadata, creating and showing the main window. Imports Qt;
only `cli` imports this module, lazily.
"""

from __future__ import annotations

import os
import sys

from mqstudio import __version__

APP_ID = "io.github.mqstudio.MqStudio"


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


def run_gui(file: str | None = None) -> int:
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2

    from PySide6.QtWidgets import QApplication

    from mqstudio.ui.mainwindow import MainWindow

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("mqstudio")
    app.setOrganizationName("mqstudio")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    window = MainWindow()
    if file:
        window.open_path(file)
    window.show()
    return int(app.exec())
