"""Canvas overlays: rates on binding edges, depth/consumers and a dead-letter marker on queues, cleared
when switched off; and the window's Throughput dock and View ▸ Live Overlays."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from mqstudio.core.metrics import ObjectStats, Snapshot
from mqstudio.ui.canvas.items.edge import EDGE_WIDTH
from mqstudio.ui.monitoring.overlays import OverlayController, rate_level, rate_text
from tests.ui.canvas.conftest import Canvas, make_canvas, sample_document
from tests.ui.monitoring.conftest import FedSampler, queue_stats


def _snapshots(fed: FedSampler, *, billing_dead: int = 0, shipping_consumers: int = 1) -> None:
    for t, n in ((100.0, 0), (101.0, 1)):
        fed.push(Snapshot(t, (
            queue_stats("billing", ready=1234, unacked=3, consumers=2, published=12 * n, acked=10 * n,
                        dead_lettered=billing_dead * n),
            queue_stats("shipping", ready=5, consumers=shipping_consumers, published=0),
            ObjectStats("exchange", "orders", "/", counters={"published": 12 * n}),
        )))


@pytest.fixture
def canvas(qtbot: QtBot) -> Canvas:
    return make_canvas(qtbot, sample_document())


def _controller(canvas: Canvas, fed: FedSampler) -> OverlayController:
    controller = OverlayController(canvas.scene, fed, refresh_ms=10)  # type: ignore[arg-type]
    controller.set_enabled(True)
    return controller


def test_queues_show_depth_and_consumers(canvas: Canvas) -> None:
    fed = FedSampler()
    _snapshots(fed)
    controller = _controller(canvas, fed)
    overlay = controller.overlay_for("q-billing")
    assert overlay is not None and overlay.isVisible()
    assert overlay.text == "1234 ready · 3 unacked · 2 consumers"
    assert overlay.parentItem() is canvas.scene.node_item("q-billing")
    assert controller.overlay_for("q-dead") is None  # not on the broker: nothing drawn


def test_a_queue_with_messages_and_no_consumer_is_flagged(canvas: Canvas) -> None:
    fed = FedSampler()
    _snapshots(fed, shipping_consumers=0)
    overlay = _controller(canvas, fed).overlay_for("q-shipping")
    assert overlay is not None and overlay.level == "warning"


def test_binding_edges_show_the_rate_into_their_queue_and_grow_thicker(canvas: Canvas) -> None:
    fed = FedSampler()
    _snapshots(fed)
    _controller(canvas, fed)
    edge = next(e for e in canvas.scene.binding_edges() if e.binding_id == "b-billing")
    assert edge.overlay_text == "12/s"
    assert edge._pen.widthF() > EDGE_WIDTH
    idle = next(e for e in canvas.scene.binding_edges() if e.binding_id == "b-shipping")
    assert idle.overlay_text == "" and idle._pen.widthF() == EDGE_WIDTH


def test_a_dead_lettering_queue_gets_the_marker_and_its_dead_letter_edge_the_rate(canvas: Canvas) -> None:
    fed = FedSampler()
    _snapshots(fed, billing_dead=4)
    controller = _controller(canvas, fed)
    overlay = controller.overlay_for("q-billing")
    assert overlay is not None and overlay.marker
    assert "dead-lettering 4.0/s" in overlay.toolTip()
    dead_edge = next(e for e in canvas.scene.derived_edges() if e.kind == "dead-letter")
    assert dead_edge.overlay_text == "4.0/s"
    shipping = controller.overlay_for("q-shipping")
    assert shipping is not None and not shipping.marker


def test_switching_overlays_off_clears_every_read_out(canvas: Canvas) -> None:
    fed = FedSampler()
    _snapshots(fed, billing_dead=1)
    controller = _controller(canvas, fed)
    edge = next(e for e in canvas.scene.binding_edges() if e.binding_id == "b-billing")
    controller.set_enabled(False)
    assert controller.overlay_for("q-billing") is None
    assert edge.overlay_text == "" and edge._pen.widthF() == EDGE_WIDTH
    assert edge.label == "order.*.billing"  # the model's label is untouched


def test_new_snapshots_update_the_overlays_from_the_timer(qtbot: QtBot, canvas: Canvas) -> None:
    fed = FedSampler()
    _snapshots(fed)
    controller = _controller(canvas, fed)
    fed.push(Snapshot(102.0, (queue_stats("billing", ready=7, consumers=2, published=112),)))

    def updated() -> bool:
        overlay = controller.overlay_for("q-billing")
        return overlay is not None and overlay.text.startswith("7 ready")

    qtbot.waitUntil(updated)
    edge = next(e for e in canvas.scene.binding_edges() if e.binding_id == "b-billing")
    assert edge.overlay_text == "100/s"


def test_overlays_survive_a_replaced_document(canvas: Canvas) -> None:
    fed = FedSampler()
    _snapshots(fed)
    controller = _controller(canvas, fed)
    canvas.editor.set_document(sample_document())
    fed.push(Snapshot(102.0, (queue_stats("billing", ready=9, consumers=1, published=24),)))
    controller.refresh()
    overlay = controller.overlay_for("q-billing")
    assert overlay is not None and overlay.parentItem() is canvas.scene.node_item("q-billing")


def test_rate_text_and_level() -> None:
    assert rate_text(0.5) == "0.5/s"
    assert rate_text(12) == "12/s" and rate_text(12_345) == "12.3k/s"
    assert rate_level(0) == 0.0 and rate_level(10_000) == pytest.approx(1.0)
    assert 0 < rate_level(1) < rate_level(100) < 1


def test_the_window_has_a_throughput_dock_and_a_live_overlays_toggle(qtbot: QtBot, tmp_path: Path) -> None:
    from PySide6.QtCore import QSettings

    from mqstudio.ui.mainwindow import MainWindow

    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                        autosave_dir=tmp_path)
    qtbot.addWidget(window)
    monitoring = window.monitoring
    assert monitoring.dock is not None and monitoring.dock.objectName() == "ThroughputDock"
    assert monitoring.dock.toggleViewAction() in window.docks_menu.actions()
    action = monitoring.overlays_action
    assert action is not None and action in window.view_menu.actions() and action.isCheckable()
    action.setChecked(True)
    assert monitoring.overlays.enabled
    assert monitoring.sampler is None  # not connected: nothing samples
    assert "Not connected" in monitoring.panel.status_label.text()
    action.setChecked(False)
