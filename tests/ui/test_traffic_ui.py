"""Canvas run mode and the live demo, in a real MainWindow on an in-memory embedded broker (port 0).
Every generator, tail and broker thread is stopped and joined before the test ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.traffic import is_first_run, start_demo, stop_live


@pytest.fixture
def window(qtbot, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    baseline = {t.name for t in threading.enumerate()}
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    qtbot.addWidget(w)
    yield w
    stop_live(w)
    w.files.shutdown()
    left = [t.name for t in threading.enumerate() if t.name not in baseline and "traffic" in t.name]
    assert not left


def _running_demo(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    started: list[bool] = []
    assert start_demo(window, EmbeddedBrokerThread(port=0), on_running=lambda: started.append(True))
    qtbot.waitUntil(lambda: bool(started), timeout=20_000)


def test_first_run_is_only_without_layout_recent_files_or_an_earlier_demo(window: MainWindow) -> None:
    assert is_first_run(window)
    window.settings.setValue("demo/shown", True)
    assert not is_first_run(window)


def test_first_run_can_be_switched_off(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQSTUDIO_NO_DEMO", "1")
    assert not is_first_run(window)


def test_demo_runs_generators_and_tails_live_traffic(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    _running_demo(qtbot, window)
    traffic = window.traffic_ui
    controller = traffic.controller
    assert controller is not None
    topology = window.editor.document.topology
    assert set(controller.running_ids()) == {n.id for n in (*topology.producers, *topology.consumers)}
    assert window.tail_panel.tailing and window.tail_panel.target == "orders"
    qtbot.waitUntil(lambda: window.tail_panel.drain() > 0 or window.tail_panel.model.rowCount() > 0,
                    timeout=10_000)
    qtbot.waitUntil(lambda: controller.stats()["c-fulfilment"].failed > 0, timeout=20_000)
    traffic.refresh()
    item = window.scene.node_item("p-web")
    assert item is not None and item.running and "sent" in item.running_text
    assert traffic.stop_all_action.isEnabled()
    assert window.settings.value("demo/shown") is not None


def test_run_and_stop_the_selected_node_only(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    _running_demo(qtbot, window)
    traffic = window.traffic_ui
    traffic.stop_all()
    assert traffic.controller is None
    for node_id in ("p-web", "c-auditor"):
        assert not window.scene.node_item(node_id).running
    window.editor.select(["p-web"])
    assert traffic.run_action.isEnabled() and not traffic.stop_action.isEnabled()
    assert traffic.run_selected() == 1
    controller = traffic.controller
    assert controller is not None and controller.running_ids() == ["p-web"]
    assert traffic.stop_action.isEnabled()
    assert window.scene.node_item("p-web").running and not window.scene.node_item("c-auditor").running
    traffic.stop_selected()
    runner = controller.runner("p-web")
    assert runner is not None and runner.join(10)
    traffic.refresh()
    assert not window.scene.node_item("p-web").running
    assert not traffic.stop_all_action.isEnabled()


def test_context_menu_offers_run_and_stop(window: MainWindow) -> None:
    menu = window.traffic_ui.context_menu()
    assert [a.text() for a in menu.actions()][:4] == ["Run", "Stop", "Run All", "Stop All"]
    assert "Generate Code…" not in [a.text().replace("&", "") for a in menu.actions()]  # nothing selected
    menu.deleteLater()


def test_right_click_selects_the_node_under_the_pointer_and_offers_its_actions(window: MainWindow) -> None:
    window.files.open_path(Path(__file__).parents[2] / "resources" / "examples" / "demo.mqs.json")
    window.resize(1280, 800)
    window.show()
    window.view.fit_all()
    topology = window.editor.document.topology
    queue = next(n for n in topology.nodes if type(n).__name__ == "Queue")
    item = window.scene.node_item(queue.id)
    assert item is not None
    pos = window.view.mapFromScene(item.sceneBoundingRect().center())
    window.editor.select([])
    window.traffic_ui.select_at(pos)
    assert set(window.editor.selection) == {queue.id}
    menu = window.traffic_ui.context_menu()
    texts = [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]
    assert texts[:4] == ["Run", "Stop", "Run All", "Stop All"]
    assert {"Generate Code…", "Rename", "Copy", "Delete"} <= set(texts)
    menu.deleteLater()


def test_run_without_a_broker_says_to_connect(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.files.open_path(Path(__file__).parents[2] / "resources" / "examples" / "demo.mqs.json")
    with qtbot.waitSignal(window.traffic_ui.message) as blocker:
        assert window.traffic_ui.run_all() == 0
    assert "Connect to a broker" in blocker.args[0]


def test_disconnecting_stops_the_generators_and_the_tail(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    _running_demo(qtbot, window)
    controller = window.traffic_ui.controller
    assert controller is not None and controller.running_ids()
    window.broker.disconnect_action.trigger()
    assert window.traffic_ui.controller is None and not window.tail_panel.tailing
    assert controller.stop_all(10) and controller.running_ids() == []
    assert not window.tail_panel.start_button.isEnabled()
