"""LintPanel: findings of a bad design listed by severity; clicking one selects its object."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from mqstudio.core.commands import SetArgument
from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Queue, Topology
from mqstudio.core.validation import Severity
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.panels.lint import LintPanel


def _bad_design() -> tuple[DocumentEditor, Queue]:
    t = Topology()
    q = Queue("orders", arguments={"x-dead-letter-exchange": "missing", "x-message-ttl": 10})
    t.add_node(q)
    return DocumentEditor(TopologyDocument(t)), q


def test_lists_findings_sorted_by_severity_with_a_count_in_the_title(qtbot: QtBot) -> None:
    editor, _q = _bad_design()
    panel = LintPanel(editor)
    qtbot.addWidget(panel)
    model = panel.model
    assert model.rowCount() >= 2
    codes = [model.finding(r).code for r in range(model.rowCount())]
    assert "dlx-missing" in codes and "queue-unbound" in codes
    ranks = [list(Severity).index(model.finding(r).severity) for r in range(model.rowCount())]
    assert ranks == sorted(ranks)
    assert model.index(0, 1).data() == "queue 'orders'"
    assert panel.title() == f"Problems ({model.rowCount()})"


def test_clicking_a_finding_selects_its_object(qtbot: QtBot) -> None:
    editor, q = _bad_design()
    panel = LintPanel(editor)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(editor.selection_changed) as blocker:
        panel.view.clicked.emit(panel.model.index(0, 2))
    assert blocker.args == [[q.id]]


def test_relints_after_a_model_change_and_reports_findings(qtbot: QtBot) -> None:
    editor, q = _bad_design()
    panel = LintPanel(editor)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.findings_changed, timeout=2000) as blocker:
        editor.execute(SetArgument(editor.document, q.id, "x-dead-letter-exchange", remove=True))
    codes = {f.code for f in blocker.args[0]}
    assert "dlx-missing" not in codes
    assert "ttl-without-dlx" in codes


def test_a_clean_design_shows_no_problems(qtbot: QtBot) -> None:
    panel = LintPanel(DocumentEditor())
    qtbot.addWidget(panel)
    assert panel.model.rowCount() == 0
    assert panel.title() == "Problems"
    assert not panel.empty.isHidden()
