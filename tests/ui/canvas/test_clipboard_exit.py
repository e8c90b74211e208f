"""Quitting after a copy exits cleanly (PySide6 would crash if the clipboard kept our QMimeData)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    from PySide6.QtCore import QTimer
    from mqstudio.app import _application
    from mqstudio.core.commands import AddNode
    from mqstudio.core.model import Queue
    from mqstudio.ui.canvas.scene import TopologyScene
    from mqstudio.ui.editor import DocumentEditor

    app = _application()
    editor = DocumentEditor()
    queue = Queue("orders")
    editor.execute(AddNode(editor.document, queue, (0.0, 0.0)))
    scene = TopologyScene(editor)
    scene.item_for(queue.id).setSelected(True)
    assert scene.copy_selection()
    QTimer.singleShot(0, app.quit)
    app.exec()
    print("quit cleanly")
    """
)


def test_quitting_after_a_copy_exits_with_status_zero() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert "quit cleanly" in result.stdout
