"""InspectorPanel: edits through real widgets become one undoable command; refusals show the rule."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit
from pytestqt.qtbot import QtBot

from mqstudio.core.commands import SetArgument
from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Binding, Consumer, Exchange, ExchangeType, Producer, Queue, Topology
from mqstudio.ops.traffic import DEFAULT_PAYLOAD
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.panels.inspector import InspectorPanel
from mqstudio.ui.panels.inspector_fields import KeyValueTable, TemplateEdit, UnitSpinBox, routing_key_warning


@pytest.fixture
def design() -> tuple[DocumentEditor, dict[str, str]]:
    t = Topology()
    work, topic = Exchange("work"), Exchange("events", ExchangeType.TOPIC)
    q = Queue("jobs", arguments={"x-custom": 7})
    for node in (work, topic, q):
        t.add_node(node)
    b = Binding(topic.id, q.id, "order.*")
    t.add_binding(b)
    editor = DocumentEditor(TopologyDocument(t))
    return editor, {"work": work.id, "events": topic.id, "q": q.id, "b": b.id}


def _panel(qtbot: QtBot, editor: DocumentEditor, object_id: str) -> InspectorPanel:
    panel = InspectorPanel(editor)
    qtbot.addWidget(panel)
    editor.select([object_id])
    return panel


def _queue(editor: DocumentEditor, ids: dict[str, str]) -> Queue:
    q = editor.document.topology.node(ids["q"])
    assert isinstance(q, Queue)
    return q


def test_ttl_with_unit_is_stored_in_ms_and_undo_restores(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["q"])
    ttl = panel.rows["arguments.x-message-ttl"].editor
    assert isinstance(ttl, UnitSpinBox)
    ttl.unit.setCurrentText("s")
    ttl.spin.setValue(30)
    ttl.spin.editingFinished.emit()
    assert _queue(editor, ids).arguments["x-message-ttl"] == 30_000
    assert editor.undo_stack.count() == 1
    editor.undo_stack.undo()
    assert "x-message-ttl" not in _queue(editor, ids).arguments
    assert ttl.value() is None  # the panel mirrored the undo


def test_overflow_combo_sets_the_argument(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["q"])
    combo = panel.rows["arguments.x-overflow"].editor
    assert isinstance(combo, QComboBox)
    index = combo.findText("reject-publish")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert _queue(editor, ids).arguments["x-overflow"] == "reject-publish"
    editor.undo_stack.undo()
    assert "x-overflow" not in _queue(editor, ids).arguments


def test_unset_button_removes_the_argument(qtbot: QtBot, design) -> None:
    editor, ids = design
    editor.execute(SetArgument(editor.document, ids["q"], "x-max-length", 10))
    panel = _panel(qtbot, editor, ids["q"])
    row = panel.rows["arguments.x-max-length"]
    assert isinstance(row.editor, UnitSpinBox) and row.editor.value() == 10
    assert row.unset_button is not None
    row.unset_button.click()
    assert "x-max-length" not in _queue(editor, ids).arguments
    assert row.editor.value() is None


def test_invalid_value_is_refused_with_the_rule_shown_and_the_model_untouched(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["q"])
    row = panel.rows["arguments.x-delivery-limit"]
    assert isinstance(row.editor, UnitSpinBox)
    row.editor.spin.setValue(5)
    row.editor.spin.editingFinished.emit()
    assert "x-delivery-limit" not in _queue(editor, ids).arguments
    assert editor.undo_stack.count() == 0
    assert "only quorum queues have a delivery limit" in row.message_text
    assert row.editor.value() is None  # reverted to the model value


def test_refused_rename_shows_the_reason_and_reverts(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["q"])
    row = panel.rows["name"]
    assert isinstance(row.editor, QLineEdit)
    row.editor.setText("amq.mine")
    row.editor.editingFinished.emit()
    assert _queue(editor, ids).name == "jobs"
    assert row.editor.text() == "jobs"
    assert "reserved" in row.message_text


def test_checkbox_toggles_a_field_in_one_step(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["work"])
    box = panel.rows["internal"].editor
    assert isinstance(box, QCheckBox)
    box.setChecked(True)
    exchange = editor.document.topology.node(ids["work"])
    assert isinstance(exchange, Exchange) and exchange.internal
    assert editor.undo_stack.count() == 1


def test_refresh_from_the_model_pushes_no_command(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["q"])
    editor.execute(SetArgument(editor.document, ids["q"], "x-max-priority", 5))
    row = panel.rows["arguments.x-max-priority"]
    assert isinstance(row.editor, UnitSpinBox) and row.editor.value() == 5
    assert editor.undo_stack.count() == 1


def test_other_arguments_table_edits_typed_values(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["q"])
    table = panel.rows["arguments"].editor
    assert isinstance(table, KeyValueTable)
    assert table.table.item(0, 0).text() == "x-custom"
    table.set_row(0, "x-custom", "true", "boolean")
    assert _queue(editor, ids).arguments["x-custom"] is True
    editor.undo_stack.undo()
    assert _queue(editor, ids).arguments["x-custom"] == 7


def test_binding_key_edit_and_live_topic_warning(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["b"])
    row = panel.rows["routing_key"]
    assert isinstance(row.editor, QLineEdit)
    row.editor.textEdited.emit("order..created")
    assert "empty word" in row.message_text
    row.editor.setText("order.#")
    row.editor.editingFinished.emit()
    assert editor.document.topology.binding(ids["b"]).routing_key == "order.#"
    editor.undo_stack.undo()
    assert editor.document.topology.binding(ids["b"]).routing_key == "order.*"


def test_routing_key_warnings_by_exchange_type() -> None:
    assert routing_key_warning("a.*", "topic") == ""
    assert "literal" in routing_key_warning("a*", "topic")
    assert "exactly" in routing_key_warning("a.#", "direct")
    assert "ignore" in routing_key_warning("x", "fanout")


def test_multi_selection_and_empty_selection_show_messages(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, ids["q"])
    editor.select([ids["q"], ids["work"]])
    assert panel.object_id is None
    assert "2 objects selected" in panel.scroll_area.widget().findChildren(type(panel.title))[0].text()
    editor.select([])
    assert panel.rows == {}


def test_producer_fields_are_edited(qtbot: QtBot, design) -> None:
    editor, ids = design
    producer = Producer("orders-in", target=ids["work"])
    editor.document.topology.add_node(producer)
    panel = _panel(qtbot, editor, producer.id)
    key = panel.rows["routing_key"].editor
    assert isinstance(key, QLineEdit)
    key.setText("job")
    key.editingFinished.emit()
    assert producer.routing_key == "job"
    editor.undo_stack.undo()
    assert producer.routing_key == ""


def test_consumer_requeue_rate_is_one_undoable_edit_and_the_sum_is_checked(qtbot: QtBot, design) -> None:
    editor, ids = design
    consumer = Consumer("worker", source=ids["q"], failure_rate=0.5)
    editor.document.topology.add_node(consumer)
    panel = _panel(qtbot, editor, consumer.id)

    def node() -> Consumer:
        c = editor.document.topology.node(consumer.id)
        assert isinstance(c, Consumer)
        return c

    requeue = panel.rows["requeue_rate"].editor
    assert isinstance(requeue, QDoubleSpinBox) and requeue.value() == 0
    requeue.setValue(25)
    requeue.editingFinished.emit()
    assert node().requeue_rate == 0.25
    assert editor.undo_stack.count() == 1
    editor.undo_stack.undo()
    assert node().requeue_rate == 0.0 and requeue.value() == 0  # the panel mirrored the undo
    requeue.setValue(60)  # 50 % failures + 60 % requeues is more than every delivery
    requeue.editingFinished.emit()
    assert node().requeue_rate == 0.0 and editor.undo_stack.count() == 1
    assert "at most 1" in panel.rows["requeue_rate"].message_text and requeue.value() == 0


def test_producer_payload_priority_and_ttl_fields(qtbot: QtBot, design) -> None:
    editor, ids = design
    producer = Producer("orders-in", target=ids["work"])
    editor.document.topology.add_node(producer)
    panel = _panel(qtbot, editor, producer.id)

    def node() -> Producer:
        p = editor.document.topology.node(producer.id)
        assert isinstance(p, Producer)
        return p

    payload = panel.rows["payload"].editor
    assert isinstance(payload, TemplateEdit)
    assert DEFAULT_PAYLOAD in payload.placeholderText()
    payload.setPlainText('{"n": {{counter}}}')
    payload.committed.emit()  # what losing focus does
    assert node().payload == '{"n": {{counter}}}'
    priority, ttl = panel.rows["priority"].editor, panel.rows["ttl_ms"].editor
    assert isinstance(priority, UnitSpinBox) and isinstance(ttl, UnitSpinBox)
    assert priority.value() is None and ttl.value() is None
    priority.spin.setValue(5)
    priority.committed.emit()
    ttl.unit.setCurrentText("s")
    ttl.spin.setValue(30)
    ttl.committed.emit()
    assert (node().priority, node().ttl_ms) == (5, 30_000)
    assert editor.undo_stack.count() == 3
    unset = panel.rows["priority"].unset_button
    assert unset is not None
    unset.click()
    assert node().priority is None and priority.value() is None
    editor.undo_stack.undo()
    assert node().priority == 5 and priority.value() == 5


def test_the_panel_is_never_narrower_than_its_form(qtbot: QtBot, design) -> None:
    editor, ids = design
    panel = _panel(qtbot, editor, _queue(editor, ids).id)
    panel.resize(200, 600)  # a dock would clip the unit combos and unset buttons at this width
    content = panel.scroll_area.widget()
    assert panel.scroll_area.minimumWidth() >= content.minimumSizeHint().width()
    assert panel.minimumSizeHint().width() >= content.minimumSizeHint().width()
