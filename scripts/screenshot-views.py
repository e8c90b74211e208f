"""Render the main views of mqstudio offscreen (1280x800) into docs/screenshots/, from the bundled examples.

Run by scripts/make-screenshots (``make screenshots``) with the project's Python. One window, settings in
a scratch directory, an in-memory embedded broker on a free port:

  welcome.png       the start page (no project open)
  route-tracer.png  the retry-with-TTL example, a rejected message traced through the ladder
  live-demo.png     the first-run demo with its generators running and the Messages tail
  throughput.png    the same, Throughput charts and View ▸ Live Overlays on the canvas
  dead-letters.png  the same, Dead Letters dock on orders.dead with a message selected

Usage: screenshot-views.py OUT_DIR [SECONDS]   (SECONDS of live traffic first; default 6)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 800)


def _settle(app: Any, seconds: float) -> None:
    from mqstudio.ui.traffic import run_for

    run_for(seconds)
    app.processEvents()


def _wait(app: Any, condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        _settle(app, 0.1)
    return bool(condition())


def _save(window: Any, out: Path) -> None:
    image = window.grab().toImage()
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"screenshot-views: cannot write {out}")
    print(f"wrote {out} ({image.width()}x{image.height()})")


def _live_views(app: Any, window: Any, out_dir: Path, seconds: float) -> None:
    from mqstudio.ui.traffic import live_screenshot, stop_live

    live_screenshot(window, seconds, demo=True)  # demo on an in-memory broker, generators, tail
    window.prepare_screenshot()
    _settle(app, 0.2)
    _save(window, out_dir / "live-demo.png")

    window.monitoring.overlays_action.setChecked(True)
    window.monitoring.dock.raise_()
    window.monitoring.panel.set_window(60)  # the shortest window, a third of it filled
    window.editor.select(["q-process"])  # charts (and the inspector) follow the selection
    _settle(app, 14)
    _save(window, out_dir / "throughput.png")
    window.monitoring.overlays_action.setChecked(False)
    window.editor.select([])

    dead = window.dead_letters
    dead.parentWidget().raise_()
    _wait(app, lambda: (dead.poll(), "orders.dead" in dead.dlqs)[1], 10)
    dead.select_queue("orders.dead")
    _wait(app, lambda: dead.model.rowCount() > 0, 10)
    _settle(app, 2.2)  # a second stats poll: the In/s column
    view = dead.view
    group = view.model().index(0, 0)
    first = view.model().index(0, 0, group) if view.model().hasChildren(group) else group
    view.setCurrentIndex(first)
    _settle(app, 0.2)
    _save(window, out_dir / "dead-letters.png")
    stop_live(window)


def _tracer_view(app: Any, window: Any, out_dir: Path) -> None:
    from mqstudio.ops.trace import Outcome

    if not window.open_path(ROOT / "resources" / "examples" / "retry-ttl-ladder.mqs.json"):
        raise SystemExit("screenshot-views: cannot open the retry-ttl-ladder example")
    window.resize(*SIZE)  # the default layout: the form beside the hops, every hop visible
    _settle(app, 0.2)
    window.tracer_dock.raise_()
    tracer = window.tracer
    tracer.set_exchange("ex-work")
    tracer.routing_key.setText("work")
    tracer.outcome.setCurrentIndex(tracer.outcome.findData(Outcome.REJECTED))
    tracer.run_trace()
    _settle(app, 0.2)
    window.prepare_screenshot()
    _settle(app, 0.3)
    _save(window, out_dir / "route-tracer.png")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    seconds = float(argv[1]) if len(argv) > 1 else 6.0
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    with tempfile.TemporaryDirectory(prefix="mqstudio-views-") as scratch:
        os.environ["MQSTUDIO_SETTINGS"] = os.path.join(scratch, "settings.ini")
        from PySide6.QtCore import QSettings

        from mqstudio.app import THEME_ENV, _application
        from mqstudio.ui.mainwindow import MainWindow

        app = _application()
        settings = QSettings(os.environ["MQSTUDIO_SETTINGS"], QSettings.Format.IniFormat)
        settings.setValue("view/theme", os.environ.get(THEME_ENV, "system"))
        window = MainWindow(settings=settings, autosave_dir=Path(scratch) / "autosave")
        window.resize(*SIZE)
        window.show()
        _settle(app, 0.2)
        try:
            _save(window, out_dir / "welcome.png")  # before anything is opened
            _tracer_view(app, window, out_dir)  # no broker yet: a clean status bar
            _live_views(app, window, out_dir, seconds)
        finally:
            window.files.shutdown()
            window.broker.shutdown()
            window.hide()
            window.deleteLater()
            app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
