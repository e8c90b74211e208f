"""TracerPanel end to end: the form drives a trace, hops are listed, the path is emitted for the canvas."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Binding, Exchange, Queue, Topology
from mqstudio.ops.trace import Outcome
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.panels.tracer import TracerPanel


def _ladder() -> tuple[DocumentEditor, dict[str, str]]:
    t = Topology()
    work, retry = Exchange("work"), Exchange("retry")
    work_q = Queue("work.q", arguments={"x-dead-letter-exchange": "retry"})
    wait_q = Queue("wait", arguments={"x-message-ttl": 5000, "x-dead-letter-exchange": "work"})
    for node in (work, retry, work_q, wait_q):
        t.add_node(node)
    b1, b2 = Binding(work.id, work_q.id, "job"), Binding(retry.id, wait_q.id, "job")
    t.add_binding(b1)
    t.add_binding(b2)
    ids = {
        "work": work.id,
        "retry": retry.id,
        "work.q": work_q.id,
        "wait": wait_q.id,
        "b1": b1.id,
        "b2": b2.id,
    }
    return DocumentEditor(TopologyDocument(t)), ids


def test_trace_button_lists_hops_and_emits_the_path(qtbot: QtBot) -> None:
    editor, ids = _ladder()
    panel = TracerPanel(editor)
    qtbot.addWidget(panel)
    panel.set_exchange(ids["work"])
    panel.routing_key.setText("job")
    panel.outcome.setCurrentIndex(panel.outcome.findData(Outcome.REJECTED))
    with qtbot.waitSignal(panel.path_traced) as blocker:
        panel.trace_button.click()
    assert blocker.args[0] == [ids["work"], ids["b1"], ids["work.q"], ids["retry"], ids["b2"], ids["wait"]]
    kinds = [panel.hops.topLevelItem(i).text(0).split()[-1] for i in range(panel.hops.topLevelItemCount())]
    assert kinds == ["routed", "dead-lettered", "routed", "dead-lettered", "routed", "delivered"]
    last = panel.hops.topLevelItem(panel.hops.topLevelItemCount() - 1)
    x_death = next(last.child(i) for i in range(last.childCount()) if last.child(i).text(0) == "x-death")
    assert '"count": 1' in x_death.text(1) and '"reason": "expired"' in x_death.text(1)


def test_selecting_a_hop_selects_its_binding(qtbot: QtBot) -> None:
    editor, ids = _ladder()
    panel = TracerPanel(editor)
    qtbot.addWidget(panel)
    panel.set_exchange(ids["work"])
    panel.routing_key.setText("job")
    panel.run_trace()
    with qtbot.waitSignal(editor.selection_changed) as blocker:
        panel.hops.setCurrentItem(panel.hops.topLevelItem(0))
    assert blocker.args == [[ids["b1"]]]


def test_unroutable_key_is_shown_as_unroutable(qtbot: QtBot) -> None:
    editor, ids = _ladder()
    panel = TracerPanel(editor)
    qtbot.addWidget(panel)
    panel.set_exchange(ids["work"])
    panel.routing_key.setText("nobody")
    panel.run_trace()
    assert panel.hops.topLevelItemCount() == 1
    assert panel.hops.topLevelItem(0).text(0).endswith("unroutable")


def test_bad_header_value_is_reported_without_tracing(qtbot: QtBot) -> None:
    editor, _ids = _ladder()
    panel = TracerPanel(editor)
    qtbot.addWidget(panel)
    panel.headers.set_row(0, "attempt", "three", "integer")
    with qtbot.assertNotEmitted(panel.path_traced):
        panel.run_trace()
    assert "not a whole number" in panel.status.text()


def test_exchange_choices_follow_the_model(qtbot: QtBot) -> None:
    editor, _ids = _ladder()
    panel = TracerPanel(editor)
    qtbot.addWidget(panel)
    before = panel.exchange.count()
    editor.document.topology.add_node(Exchange("audit"))
    assert panel.exchange.count() == before + 1
