"""The Dead Letters panel against the embedded broker: messages dead-lettered through a real session
(reject without requeue, max-length overflow) are listed with their reasons, grouped and filtered; the
detail view shows nested headers and caps huge and binary bodies; purge needs the typed name; export
and import round trip; delete and resubmit change the queue; the counts follow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from mqstudio.backends.base import Backend, BackendKind, OutgoingMessage
from mqstudio.core.model import Binding, Exchange, ExchangeType, Queue, Topology
from mqstudio.ops.journal import ItemState, JobStatus, Journal
from mqstudio.ops.jsonl import read_messages
from mqstudio.ops.provenance import H_FROM, H_JOB
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread
from mqstudio.runtime.connect import open_backend
from mqstudio.runtime.jobs import BackendSession, SessionState
from mqstudio.runtime.profiles import ConnectionProfile
from mqstudio.ui.panels.deadletter_dialogs import BODY_CAP
from mqstudio.ui.panels.deadletter_models import MESSAGE_ROLE, DeadRow
from mqstudio.ui.panels.deadletter_replay import ReplayDialog
from mqstudio.ui.panels.deadletters import DeadLettersPanel, parse_filter
from mqstudio.ui.qtbridge import JobBridge

WAIT = 30_000
NESTED = {"tenant": {"id": 7, "plan": {"tier": "gold", "limits": [1, 2.5, True]}}, "code": 42}


def _design() -> Topology:
    t = Topology()
    work, dlx = Exchange("work"), Exchange("dlx", ExchangeType.FANOUT)
    orders = Queue("orders", arguments={"x-dead-letter-exchange": "dlx"})
    payments = Queue("payments", arguments={"x-dead-letter-exchange": "dlx", "x-max-length": 1})
    parked = Queue("parked")
    for node in (work, dlx, orders, payments, parked, Queue("restored")):
        t.add_node(node)
    t.add_binding(Binding(work.id, orders.id, "order.created"))
    t.add_binding(Binding(work.id, payments.id, "payment.made"))
    t.add_binding(Binding(dlx.id, parked.id))
    return t


def _dead_letter(backend: Backend) -> None:
    backend.apply(backend.plan(_design()))
    for n in range(3):
        backend.publish(OutgoingMessage("work", f'{{"order": {n}}}'.encode(), "order.created",
                                        dict(NESTED), {"content_type": "application/json"}))
    for message in backend.consume_for_replay("orders", 10):
        backend.settle(message, ack=False, requeue=False)  # reason "rejected"
    for n in range(3):  # x-max-length 1: the two oldest are dead-lettered with reason "maxlen"
        backend.publish(OutgoingMessage("work", f"payment {n}".encode(), "payment.made", {"code": 7}))


@pytest.fixture
def session() -> Iterator[BackendSession]:
    broker = EmbeddedBrokerThread(None, port=0, name="test-dlq-panel-broker")
    broker.start()
    profile = ConnectionProfile("Embedded broker", BackendKind.EMBEDDED, host="", port=0)
    s = BackendSession(lambda: open_backend(profile, None, broker), name="test-dlq-session")
    s.call(_dead_letter, title="dead-letter some messages").result(WAIT / 1000)
    assert s.state is SessionState.CONNECTED
    yield s
    assert s.close(10.0)
    assert broker.stop(10.0)


def _run(session: BackendSession, fn: Any) -> Any:
    return session.call(fn).result(WAIT / 1000)


@pytest.fixture
def panel(qtbot: QtBot, session: BackendSession, tmp_path: Path) -> DeadLettersPanel:
    widget = DeadLettersPanel(lambda: session, journal_path=tmp_path / "journal.sqlite3")
    qtbot.addWidget(widget)
    widget.resize(1400, 420)
    widget.show()
    qtbot.waitUntil(lambda: widget.current_queue == "parked" and widget.model.rowCount() == 5, timeout=WAIT)
    return widget


def _settle(qtbot: QtBot, bridge: JobBridge | None) -> None:
    assert bridge is not None
    if not bridge.done:
        with qtbot.waitSignal(bridge.settled, timeout=WAIT):
            pass


def _reasons(panel: DeadLettersPanel) -> list[str]:
    return [row.death.reason for row in panel.filtered_rows()]


def test_the_panel_lists_dead_letter_queues_and_their_messages_with_reasons(
    qtbot: QtBot, panel: DeadLettersPanel
) -> None:
    names = [panel.queue_list.topLevelItem(i).text(0) for i in range(panel.queue_list.topLevelItemCount())]
    assert names == ["parked"]
    assert "dead-letter target of orders, payments" in panel.queue_list.topLevelItem(0).toolTip(0)
    assert sorted(_reasons(panel)) == ["maxlen", "maxlen", "rejected", "rejected", "rejected"]
    origins = {row.death.origin for row in panel.filtered_rows()}
    assert origins == {"orders", "payments"}
    qtbot.waitUntil(lambda: panel.queue_list.topLevelItem(0).text(1) == "5", timeout=WAIT)
    if os.environ.get("MQSTUDIO_SCREENSHOTS"):
        panel.view.selectionModel().select(
            panel.view.model().index(0, 0),
            panel.view.selectionModel().SelectionFlag.ClearAndSelect
            | panel.view.selectionModel().SelectionFlag.Rows,
        )
        panel.grab().save(os.environ["MQSTUDIO_SCREENSHOTS"] + "/deadletters.png")


def test_grouping_by_reason_and_origin_shows_counted_groups(panel: DeadLettersPanel) -> None:
    panel.group_combo.setCurrentIndex(1)  # reason
    assert panel.view.model() is panel.groups
    assert sorted(panel.groups.groups()) == [("maxlen", 2), ("rejected", 3)]
    first = panel.groups.index(0, 0)
    assert panel.groups.data(first).endswith(")") and panel.groups.rowCount(first) > 0
    panel.group_combo.setCurrentIndex(2)  # origin
    assert sorted(panel.groups.groups()) == [("orders", 3), ("payments", 2)]
    panel.group_combo.setCurrentIndex(0)
    assert panel.view.model() is panel.proxy


def test_the_filter_takes_text_header_values_and_time_ranges(panel: DeadLettersPanel) -> None:
    panel.filter_edit.setText("gold")
    assert _reasons(panel) == ["rejected"] * 3
    panel.filter_edit.setText("code=7")
    assert _reasons(panel) == ["maxlen"] * 2
    assert "2 of 5" in panel.count_label.text()
    panel.filter_edit.setText("since:1h")
    assert len(_reasons(panel)) == 5
    panel.filter_edit.setText("until:2000-01-01")
    assert _reasons(panel) == []
    panel.filter_edit.setText("since:yesterday-ish")  # unreadable: the last filter stays, marked
    assert "cannot read" in panel.filter_edit.toolTip()
    panel.filter_edit.clear()
    assert len(_reasons(panel)) == 5
    # grouping applies to the filtered rows
    panel.filter_edit.setText("code=7")
    panel.group_combo.setCurrentIndex(1)
    assert panel.groups.groups() == [("maxlen", 2)]


def test_parse_filter_splits_words_headers_and_times() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    criteria = parse_filter("timeout code=42 since:15m until:2024-05-01T11:59:00+00:00 db", now)
    assert criteria["text"] == "timeout db" and criteria["header"] == "code=42"
    assert criteria["since"] == datetime(2024, 5, 1, 11, 45, tzinfo=UTC)
    assert criteria["until"] == datetime(2024, 5, 1, 11, 59, tzinfo=UTC)
    with pytest.raises(ValueError, match="until"):
        parse_filter("until:soon", now)


def _select(panel: DeadLettersPanel, predicate: Any) -> list[DeadRow]:
    model, selection = panel.view.model(), panel.view.selectionModel()
    chosen = []
    for r in range(model.rowCount()):
        row = model.index(r, 0).data(MESSAGE_ROLE)
        if isinstance(row, DeadRow) and predicate(row):
            selection.select(model.index(r, 0), selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
            chosen.append(row)
    return chosen


def test_the_detail_view_shows_nested_headers_as_a_tree(panel: DeadLettersPanel) -> None:
    _select(panel, lambda row: row.death.reason == "rejected" and b'"order": 0' in row.message.body)
    detail = panel.detail
    assert "rejected" in detail.summary.text() and "orders" in detail.summary.text()
    tree = detail.headers_tree
    top = {tree.topLevelItem(i).text(0): tree.topLevelItem(i) for i in range(tree.topLevelItemCount())}
    assert {"tenant", "code", "x-death"} <= set(top)
    tenant = top["tenant"]
    plan = next(tenant.child(i) for i in range(tenant.childCount()) if tenant.child(i).text(0) == "plan")
    assert {plan.child(i).text(0): plan.child(i).text(1) for i in range(plan.childCount())}["tier"] == "gold"
    assert '"order": 0' in detail.json_view.toPlainText()
    assert detail.body_tabs.currentWidget() is detail.json_view


def test_huge_and_binary_bodies_render_capped(qtbot: QtBot, panel: DeadLettersPanel,
                                              session: BackendSession) -> None:
    huge = b'{"blob": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    binary = bytes(range(256)) * 4
    _run(session, lambda b: [b.publish(OutgoingMessage("", body, "parked")) for body in (huge, binary)])
    panel.reload()
    qtbot.waitUntil(lambda: panel.model.rowCount() == 7, timeout=WAIT)
    _select(panel, lambda row: row.message.body == huge)
    detail = panel.detail
    assert len(detail.text_view.toPlainText()) <= BODY_CAP
    assert "64 KiB" in detail.cap_label.text() and not detail.load_all.isHidden()
    assert "Load all" in detail.json_view.toPlainText()
    assert detail.hex_view.document().blockCount() == BODY_CAP // 16
    detail.load_all.click()
    assert len(detail.text_view.toPlainText()) == len(huge)
    assert detail.load_all.isHidden() and detail.body_tabs.currentWidget() is detail.json_view

    panel.view.clearSelection()
    _select(panel, lambda row: row.message.body == binary)
    assert detail.body_tabs.currentWidget() is detail.hex_view
    assert detail.hex_view.toPlainText().startswith("00000000  00 01 02")
    assert detail.json_view.toPlainText() == "(not JSON)"
    preview = panel.view.model().index(next(
        r for r in range(panel.view.model().rowCount())
        if panel.view.model().index(r, 0).data(MESSAGE_ROLE).message.body == binary), 6).data()
    assert preview.startswith("binary: 00 01 02") and len(preview) < 200


def test_purge_requires_the_typed_queue_name(qtbot: QtBot, panel: DeadLettersPanel,
                                             session: BackendSession) -> None:
    dialog = panel.purge_dialog()
    assert dialog is not None and not dialog.purge_button.isEnabled()
    exports: list[bool] = []
    dialog.export_requested.disconnect()
    dialog.export_requested.connect(lambda: exports.append(True))
    dialog.export_button.click()
    assert exports == [True] and dialog.isVisible()
    dialog.name_edit.setText("parke")
    assert not dialog.purge_button.isEnabled()
    dialog.name_edit.setText("parked")
    assert dialog.purge_button.isEnabled()
    dialog.purge_button.click()
    qtbot.waitUntil(lambda: not panel.busy and panel.model.rowCount() == 0, timeout=WAIT)
    assert _run(session, lambda b: b.peek("parked", 10)) == []
    qtbot.waitUntil(lambda: panel.queue_list.topLevelItem(0).text(1) == "0", timeout=WAIT)


def test_export_then_import_round_trips_the_messages(qtbot: QtBot, panel: DeadLettersPanel,
                                                     session: BackendSession, tmp_path: Path) -> None:
    path = tmp_path / "parked.jsonl"
    _settle(qtbot, panel.export_to(str(path)))
    exported = list(read_messages(path))
    assert len(exported) == 5 and len(_run(session, lambda b: b.peek("parked", 10))) == 5
    _settle(qtbot, panel.import_from(str(path), "restored"))
    restored = _run(session, lambda b: b.peek("restored", 10))
    assert [(m.body, m.headers) for m in restored] == [(m.body, m.headers) for m in exported]


def test_delete_selected_removes_only_those_messages(qtbot: QtBot, panel: DeadLettersPanel,
                                                     session: BackendSession) -> None:
    chosen = _select(panel, lambda row: row.death.reason == "maxlen")
    assert len(chosen) == 2 and panel.delete_button.isEnabled()
    _settle(qtbot, panel.delete_selected(confirm=False))
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=WAIT)
    assert _reasons(panel) == ["rejected"] * 3
    assert "Deleted 2 of 2" in panel.status.text()


def test_edit_and_resubmit_publishes_the_edit_then_removes_the_original(
    qtbot: QtBot, panel: DeadLettersPanel, session: BackendSession
) -> None:
    _select(panel, lambda row: b'"order": 1' in row.message.body)
    dialog = panel.edit_and_resubmit()
    assert dialog is not None
    assert (dialog.target_edit.text(), dialog.key_edit.text()) == ("work", "order.created")
    dialog.body_edit.setPlainText('{"order": 1, "fixed": true}')
    dialog.headers_edit.setPlainText('{"fixed": {"$bytes": "AAE="}}')
    dialog.accept()
    qtbot.waitUntil(lambda: not panel.busy and panel.model.rowCount() == 4, timeout=WAIT)
    arrived = _run(session, lambda b: b.peek("orders", 10))
    expected = [(b'{"order": 1, "fixed": true}', {"fixed": b"\x00\x01"})]
    assert [(m.body, m.headers) for m in arrived] == expected


def test_a_bad_edit_keeps_the_dialog_open_with_the_reason(panel: DeadLettersPanel) -> None:
    _select(panel, lambda row: b'"order": 2' in row.message.body)
    dialog = panel.edit_and_resubmit()
    assert dialog is not None
    dialog.headers_edit.setPlainText("{not json")
    dialog.accept()
    assert dialog.isVisible() and "headers: not valid JSON" in dialog.error.text()
    dialog.reject()


def test_without_a_session_the_panel_says_so_and_offers_nothing(qtbot: QtBot) -> None:
    widget = DeadLettersPanel(lambda: None)
    qtbot.addWidget(widget)
    widget.poll()
    assert "Not connected" in widget.status.text()
    assert not widget.purge_button.isEnabled() and not widget.export_button.isEnabled()
    assert not widget.refresh_button.isEnabled()


# -- replay -----------------------------------------------------------------------------------------
def _open_replay(panel: DeadLettersPanel, action: Any) -> ReplayDialog:
    before = set(panel.findChildren(ReplayDialog))
    assert action.isEnabled()
    action.trigger()
    (dialog,) = set(panel.findChildren(ReplayDialog)) - before
    assert dialog.isVisible()
    return dialog


def _shot(widget: Any, name: str) -> None:
    if os.environ.get("MQSTUDIO_SCREENSHOTS"):
        widget.grab().save(os.environ["MQSTUDIO_SCREENSHOTS"] + f"/{name}.png")


def _ids(messages: list[Any]) -> list[str]:
    return sorted(str(m.properties.get("message_id")) for m in messages)


def test_replay_selected_puts_the_two_back_in_their_origin_with_provenance(
    qtbot: QtBot, panel: DeadLettersPanel, session: BackendSession
) -> None:
    qtbot.waitUntil(lambda: panel.queue_list.topLevelItem(0).text(1) == "5", timeout=WAIT)
    chosen = _select(panel, lambda row: row.message.body in (b'{"order": 0}', b'{"order": 2}'))
    assert len(chosen) == 2
    dialog = _open_replay(panel, panel.replay_selected_action)
    assert "2 selected messages" in dialog.title.text()
    dialog.replay_button.click()
    bridge = panel._long_job
    assert bridge is not None and dialog.running
    _settle(qtbot, bridge)
    qtbot.waitUntil(dialog.summary.isVisible, timeout=WAIT)
    assert dialog.summary.toPlainText().startswith("Replayed 2 · failed 0 · refused 0")
    back = _run(session, lambda b: b.peek("orders", 10))
    assert sorted(m.body for m in back) == [b'{"order": 0}', b'{"order": 2}']
    report = dialog.finished_report
    assert report is not None
    for message in back:
        assert message.headers[H_FROM] == "parked" and message.headers[H_JOB] == report.job_id
        assert message.headers["tenant"] == NESTED["tenant"]
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=WAIT)
    qtbot.waitUntil(lambda: panel.queue_list.topLevelItem(0).text(1) == "3", timeout=WAIT)
    assert len(_run(session, lambda b: b.peek("parked", 10))) == 3
    assert "Replayed 2" in panel.status.text()
    _shot(dialog, "replay-dialog-done")
    _shot(panel, "deadletters-after-replay")
    dialog.reject()


def test_dry_run_lists_each_destination_and_moves_nothing(
    qtbot: QtBot, panel: DeadLettersPanel, session: BackendSession
) -> None:
    dialog = _open_replay(panel, panel.replay_all_action)
    dialog.max_spin.setValue(3)
    dialog.dry_run_button.click()
    items = dialog.plan_tree
    assert items.topLevelItemCount() == 5
    rows = [items.topLevelItem(i).text(1) for i in range(5)]
    assert sorted(rows) == sorted(["exchange 'work' with routing key 'order.created'"] * 3
                                  + ["exchange 'work' with routing key 'payment.made'"] * 2)
    assert "5 would be replayed, 0 refused" in dialog.plan_label.text()
    _shot(dialog, "replay-dialog-dry-run")
    dialog.target_radio.setChecked(True)
    dialog.target_edit.setText(":parked")  # the DLQ itself: refused with the reason
    dialog.dry_run_button.click()
    refusals = [dialog.plan_tree.topLevelItem(i).text(1) for i in range(5)]
    assert all(r.startswith("refused: the target is the dead-letter queue") for r in refusals)
    assert panel.busy is False and panel._long_job is None
    assert len(_run(session, lambda b: b.peek("parked", 10))) == 5
    assert _run(session, lambda b: b.peek("orders", 10)) == []
    assert [m.body for m in _run(session, lambda b: b.peek("payments", 10))] == [b"payment 2"]  # as before
    dialog.reject()


def test_cancel_midway_keeps_every_message_in_the_origin_or_the_dlq(
    qtbot: QtBot, panel: DeadLettersPanel, session: BackendSession
) -> None:
    ids = [f"c{n}" for n in range(6)]

    def more(backend: Backend) -> None:
        for i in ids:
            backend.publish(OutgoingMessage("work", f"cancel {i}".encode(), "order.created",
                                            {}, {"message_id": i}))
        for message in backend.consume_for_replay("orders", 10):
            backend.settle(message, ack=False, requeue=False)

    _run(session, more)
    panel.reload()
    qtbot.waitUntil(lambda: panel.model.rowCount() == 11, timeout=WAIT)
    panel.filter_edit.setText("cancel")
    assert len(panel.filtered_rows()) == 6
    dialog = _open_replay(panel, panel.replay_filtered_action)
    dialog.rate_spin.setValue(1)
    dialog.replay_button.click()
    bridge = panel._long_job
    assert bridge is not None
    with qtbot.waitSignal(bridge.progressed, timeout=WAIT):
        pass
    _shot(dialog, "replay-dialog-running")
    dialog.cancel_button.click()
    _settle(qtbot, bridge)
    qtbot.waitUntil(lambda: dialog.summary.isVisible() and not panel.busy, timeout=WAIT)
    report = dialog.finished_report
    assert report is not None and report.cancelled and report.replayed < len(ids)
    in_origin = [i for i in _ids(_run(session, lambda b: b.peek("orders", 20))) if i in ids]
    in_dlq = [i for i in _ids(_run(session, lambda b: b.peek("parked", 20))) if i in ids]
    assert sorted(in_origin + in_dlq) == ids  # lost = 0 (and no duplicates on this broker)
    assert len(in_origin) == report.replayed
    qtbot.waitUntil(lambda: panel.model.rowCount() == 11 - report.replayed, timeout=WAIT)


def test_unfinished_journaled_replays_are_offered_and_can_be_abandoned(
    qtbot: QtBot, session: BackendSession, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        journal.start_job("crashed", source="parked", target="", backend="embedded", total=5, options={})
        (row,) = journal.add_items("crashed", [("id:x", "")], ItemState.IN_FLIGHT)
        journal.start_job("later", source="parked", target="work:order.created", backend="embedded")
    widget = DeadLettersPanel(lambda: session, journal_path=path)
    qtbot.addWidget(widget)
    said: list[str] = []
    widget.message.connect(said.append)
    widget.resize(1400, 420)
    widget.show()
    qtbot.waitUntil(widget.resume_bar.isVisible, timeout=WAIT)
    assert "parked" in widget.resume_bar.label.text() and "1 more after it" in widget.resume_bar.label.text()
    assert "2 unfinished replays from an earlier run" in said[-1]
    _shot(widget, "deadletters-resume-bar")
    widget.resume_bar.abandon_button.click()
    qtbot.waitUntil(lambda: "Abandoned" in widget.status.text(), timeout=WAIT)
    assert "0 had been replayed" in widget.status.text() and "1 of them may also have a copy" in (
        widget.status.text())
    assert widget.resume_bar.isVisible() and "work:order.created" in widget.resume_bar.label.text()
    widget.resume_bar.later_button.click()  # the second: left for another time
    assert not widget.resume_bar.isVisible()
    with Journal(path) as journal:
        assert [j.id for j in journal.unfinished_jobs()] == ["later"]
        crashed = journal.job("crashed")
        assert crashed is not None and crashed.state is JobStatus.ABANDONED
        assert journal.items("crashed")[0][2] == "in_flight"  # history kept, nothing settled
        assert row > 0
    # Abandon touched no message: the DLQ still holds all five.
    assert len(_run(session, lambda b: b.peek("parked", 10))) == 5


def test_a_job_left_for_later_is_offered_again_and_resumed_by_click(
    qtbot: QtBot, session: BackendSession, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        journal.start_job("later", source="parked", target="work:order.created", backend="embedded")
    first = DeadLettersPanel(lambda: session, journal_path=path)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitUntil(first.resume_bar.isVisible, timeout=WAIT)
    first.resume_bar.later_button.click()
    first.close()
    second = DeadLettersPanel(lambda: session, journal_path=path)  # "the next start"
    qtbot.addWidget(second)
    second.show()
    qtbot.waitUntil(second.resume_bar.isVisible, timeout=WAIT)
    qtbot.waitUntil(lambda: second.model.rowCount() == 5, timeout=WAIT)
    second.resume_bar.resume_button.click()
    bridge = second._long_job
    assert bridge is not None
    _settle(qtbot, bridge)
    qtbot.waitUntil(lambda: second.model.rowCount() == 0, timeout=WAIT)
    assert "Replayed 5" in second.status.text()
    assert len(_run(session, lambda b: b.peek("orders", 10))) == 5  # the job's own target
    with Journal(path) as journal:
        assert journal.unfinished_jobs() == []


def test_on_rabbitmq_the_panel_says_what_listing_a_queue_does_to_it(
    qtbot: QtBot, rabbitmq_backend: Any, tmp_path: Path
) -> None:
    """A peek on RabbitMQ is basic.get + requeue: the panel must say it marks messages redelivered."""
    rabbitmq_backend.apply(rabbitmq_backend.plan(_retarget(_design(), rabbitmq_backend.vhost)))
    rabbitmq_backend.publish(OutgoingMessage("work", b"x", "order.created"))
    for message in rabbitmq_backend.consume_for_replay("orders", 10):
        rabbitmq_backend.settle(message, ack=False, requeue=False)
    session = BackendSession(lambda: rabbitmq_backend, name="test-dlq-rabbit-session")
    session.start()
    try:
        widget = DeadLettersPanel(lambda: session, journal_path=tmp_path / "journal.sqlite3")
        qtbot.addWidget(widget)
        widget.show()
        qtbot.waitUntil(
            lambda: widget.current_queue == "parked" and widget.model.rowCount() == 1, timeout=WAIT
        )
        assert not widget.peek_note.isHidden()
        assert "redelivered" in widget.peek_note.text()
    finally:
        session.close(10.0)


def _retarget(topology: Topology, vhost: str) -> Topology:
    for node in topology.nodes:
        if isinstance(node, Exchange | Queue):
            node.vhost = vhost
    topology.vhosts = [vhost]
    return topology
