"""The Broker menu in the main window: connect to the embedded broker, see the state in the status bar,
grey out what the broker cannot hold, load its topology (after the unsaved-changes prompt), plan and
apply; an unreachable broker reconnects in the background while the window keeps working. Also the
Qt bridge that carries worker results to the GUI thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from mqstudio.backends.base import Capabilities
from mqstudio.core import fileformat
from mqstudio.core.commands import AddNode
from mqstudio.core.loading import build_document
from mqstudio.core.model import Queue
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.connect import apply_plan, node_kinds
from mqstudio.runtime.jobs import JobRunner, SessionState, SessionStatus
from mqstudio.runtime.profiles import parse_url
from mqstudio.ui.broker_menu import IDLE_TEXT
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.qtbridge import JobBridge, SessionBridge, submit

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
Button = QMessageBox.StandardButton


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    win.broker.set_embedded_broker(EmbeddedBrokerThread(None, port=0, name="test-broker"), owned=True)
    win.show()
    yield win
    if shiboken6.isValid(win):
        win.editor.mark_saved()
        win.close()


def _connected(qtbot: QtBot, window: MainWindow) -> None:
    window.broker.connect_embedded_action.trigger()
    broker = window.broker
    qtbot.waitUntil(lambda: broker.connected and broker.capabilities is not None, timeout=30_000)


def _design(name: str) -> Any:
    raw = (EXAMPLES / f"{name}.mqs.json").read_bytes()
    return build_document(fileformat.parse_json(raw, name), name)[1].topology


def _answer(monkeypatch: pytest.MonkeyPatch, answer: Button) -> list[str]:
    asked: list[str] = []

    def fake_exec(box: QMessageBox) -> Button:
        asked.append(box.text())
        return answer

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return asked


def test_the_broker_menu_sits_between_view_and_help(window: MainWindow) -> None:
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("&Broker") == titles.index("&View") + 1
    assert titles.index("&Help") == titles.index("&Broker") + 1
    texts = [a.text() for a in window.broker_menu.actions() if not a.isSeparator()]
    assert "&Connect…" in texts and "&Load Topology from Broker" in texts and "&Plan and Apply…" in texts


def test_before_connecting_only_connecting_is_possible(window: MainWindow) -> None:
    broker = window.broker
    assert window._broker_label.text() == IDLE_TEXT
    assert not broker.load_action.isEnabled() and not broker.apply_action.isEnabled()
    assert not broker.disconnect_action.isEnabled()
    assert broker.connect_action.isEnabled() and broker.connect_embedded_action.isEnabled()


def test_connecting_to_the_embedded_broker_shows_the_state_and_greys_kafka_entries(
    qtbot: QtBot, window: MainWindow
) -> None:
    states: list[SessionState] = []
    window.broker.state_changed.connect(lambda status: states.append(status.state))
    _connected(qtbot, window)
    assert states[-1] is SessionState.CONNECTED
    assert window._broker_label.text() == "Embedded broker: connected"
    assert window.broker.load_action.isEnabled() and window.broker.apply_action.isEnabled()
    palette = window.palette_panel
    topic = palette.item_for("topic")
    assert not topic.flags() & Qt.ItemFlag.ItemIsEnabled
    assert "Not available on embedded broker" in topic.toolTip(0)
    assert palette.item_for("exchange", "direct").flags() & Qt.ItemFlag.ItemIsEnabled

    window.broker.disconnect_action.trigger()
    assert window._broker_label.text() == IDLE_TEXT
    assert topic.flags() & Qt.ItemFlag.ItemIsEnabled
    assert not window.broker.load_action.isEnabled()


def test_a_greyed_palette_entry_creates_nothing(qtbot: QtBot, window: MainWindow) -> None:
    window.palette_panel.set_enabled_kinds({"exchange", "queue"}, "Not available on RabbitMQ")
    created: list[dict[str, str]] = []
    window.palette_panel.create_requested.connect(created.append)
    window.palette_panel.tree.entry_activated.emit(window.palette_panel.item_for("topic"))
    assert created == []


def test_loading_the_topology_asks_about_unsaved_changes_then_opens_it_laid_out(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connected(qtbot, window)
    session = window.broker.session
    assert session is not None
    design = _design("work-queue-dlx")
    assert session.call(lambda b: apply_plan(b, b.plan(design))).result(30).ok
    assert window.editor.execute(AddNode(window.editor.document, Queue("draft"), (0.0, 0.0)))
    asked = _answer(monkeypatch, Button.Discard)

    with qtbot.waitSignal(window.broker.topology_loaded, timeout=30_000):
        window.broker.load_action.trigger()
    assert asked and "save the changes" in asked[0]
    document = window.editor.document
    assert {q.name for q in document.topology.queues} == {"tasks", "tasks.dead"}
    assert all(document.position(n.id) is not None for n in document.topology.nodes)
    assert not document.dirty
    assert window.files.display_name == "Embedded broker.mqs.json"


def test_cancelling_the_unsaved_changes_prompt_keeps_the_open_document(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connected(qtbot, window)
    assert window.editor.execute(AddNode(window.editor.document, Queue("draft"), (0.0, 0.0)))
    document = window.editor.document
    asked = _answer(monkeypatch, Button.Cancel)
    bridge = window.broker.load_topology()
    assert bridge is not None
    with qtbot.waitSignal(bridge.settled, timeout=30_000):
        pass
    assert asked
    assert window.editor.document is document
    assert [q.name for q in document.topology.queues] == ["draft"]


def test_plan_and_apply_from_the_menu_changes_the_broker(qtbot: QtBot, window: MainWindow) -> None:
    _connected(qtbot, window)
    assert window.open_path(EXAMPLES / "pub-sub.mqs.json")
    dialog = window.broker.plan_and_apply()
    assert dialog is not None
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.plan is not None and not dialog.busy, timeout=30_000)
    with qtbot.waitSignal(dialog.applied, timeout=30_000):
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    session = window.broker.session
    assert session is not None
    live = session.call(lambda b: b.fetch_topology()).result(30)
    assert {q.name for q in live.topology.queues} == {"billing", "shipping", "analytics"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_broker_reconnects_in_the_background_while_the_window_works(
    qtbot: QtBot, window: MainWindow
) -> None:
    port = _closed_port()
    profile = parse_url(f"amqp://guest@127.0.0.1:{port}/?management=http://127.0.0.1:{port}",
                        name="nowhere").profile
    ticks: list[int] = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(0)
    with qtbot.waitSignal(
        window.broker.state_changed, timeout=30_000,
        check_params_cb=lambda status: status.state is SessionState.RECONNECTING,
    ):
        assert window.broker.connect_profile(profile, "guest")
    timer.stop()
    assert ticks
    assert window._broker_label.text().startswith("nowhere")
    assert "reconnecting" in window._broker_label.text()
    assert str(port) in window._broker_label.toolTip()
    assert not window.broker.load_action.isEnabled()
    window.broker.disconnect_action.trigger()
    assert window._broker_label.text() == IDLE_TEXT


def test_node_kinds_follow_capabilities() -> None:
    assert node_kinds(Capabilities.TOPICS | Capabilities.CONSUMER_GROUPS) == {
        "topic", "consumer_group", "producer", "consumer",
    }
    assert node_kinds(Capabilities.EXCHANGES) == {"exchange", "queue", "producer", "consumer"}


# -- the bridge --------------------------------------------------------------------------------


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    pool = JobRunner(2, name="test-bridge")
    yield pool
    pool.shutdown()


def test_a_job_bridge_delivers_progress_then_the_result_on_the_gui_thread(
    qtbot: QtBot, runner: JobRunner
) -> None:
    gui = threading.get_ident()
    seen: list[tuple[str, Any, int]] = []

    def work(job: Any) -> str:
        for step in range(3):
            job.progress(step + 1, 3, f"step {step + 1}")
        return "result"

    bridge = submit(runner, work, title="work")
    bridge.progressed.connect(lambda d, t, w: seen.append(("progress", (d, t, w), threading.get_ident())))
    bridge.finished.connect(lambda value: seen.append(("finished", value, threading.get_ident())))
    with qtbot.waitSignal(bridge.settled, timeout=10_000):
        pass
    assert [kind for kind, _, _ in seen] == ["progress"] * 3 + ["finished"]
    assert seen[-1][1] == "result"
    assert {thread for _, _, thread in seen} == {gui}


def test_a_job_bridge_reports_a_failure_with_its_exception(qtbot: QtBot, runner: JobRunner) -> None:
    def work(_job: Any) -> None:
        raise ValueError("no such vhost")

    bridge = submit(runner, work, title="work")
    with qtbot.waitSignal(bridge.failed, timeout=10_000) as signal:
        pass
    assert signal.args == ["no such vhost"]
    assert isinstance(bridge.exception, ValueError)


def test_a_bridge_for_a_settled_job_still_reports_it(qtbot: QtBot, runner: JobRunner) -> None:
    job = runner.submit(lambda _job: 42, title="done already")
    job.wait(10)
    bridge = JobBridge()
    with qtbot.waitSignal(bridge.finished, timeout=10_000) as signal:
        bridge.watch(job)
    assert signal.args == [42]


def test_a_session_bridge_relays_states_from_another_thread(qtbot: QtBot) -> None:
    bridge = SessionBridge()
    status = SessionStatus(SessionState.RECONNECTING, "refused", 1, 0.5)
    with qtbot.waitSignal(bridge.state_changed, timeout=10_000) as signal:
        threading.Thread(target=bridge.report, args=(status,)).start()
    assert signal.args == [status]
    assert bridge.status == status
