"""The inspector dock: typed editors for every property and argument of the one selected object.

Owns: `InspectorPanel`. It mirrors the model: the form is built for the selected object's kind and
reloaded (with feedback blocked, so a reload never pushes a command) whenever the model reports a change
— including undo and redo. Every user edit becomes ONE core command run through `editor.execute`
(`RenameNode`, `SetNodeField`, `SetArgument`, `EditBinding`, or a `Macro` of them for table edits); a
refused command shows the broken rule in red under the field and the field reverts to the model value.
It never writes the model itself. Imports PySide6, mqstudio.core and mqstudio.ui only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from mqstudio.core.commands import Command, Macro, SetArgument, SetNodeField
from mqstudio.core.model import (
    Binding,
    Consumer,
    ConsumerGroup,
    Exchange,
    Node,
    Producer,
    Queue,
    Topic,
)
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.panels.inspector_fields import (
    FieldRow,
    KeyValueTable,
    html_escape,
)
from mqstudio.ui.panels.inspector_forms import InspectorForms

_PATH_PREFIX = re.compile(r"^[\w.\-\[\]]+: ")
_HINT = (
    "Select an exchange, queue, binding, topic, consumer group, producer or consumer on the canvas "
    "to edit its properties here."
)


def _strip_path(message: str) -> str:
    """``arguments.x-expires: must be …`` → ``must be …`` (the field the text sits under says where)."""
    return _PATH_PREFIX.sub("", message, count=1)


class InspectorPanel(InspectorForms, QWidget):
    """Properties of the single selected object; "n objects selected" or a hint otherwise."""

    def __init__(self, editor: DocumentEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("InspectorPanel")
        self._editor = editor
        self._object_id: str | None = None
        self._loading = False
        self._loaders: list[Callable[[], None]] = []
        self.rows: dict[str, FieldRow] = {}
        self._topology = editor.document.topology

        self.title = QLabel(self)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setContentsMargins(8, 6, 8, 2)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.scroll_area, 1)

        editor.selection_changed.connect(self._on_selection_changed)
        editor.document_replaced.connect(self._on_document_replaced)
        editor.undo_stack.indexChanged.connect(self._on_undo_index)
        self._connect_topology()
        self._on_selection_changed(editor.selection)

    # -- model subscription -----------------------------------------------------------------------
    def _connect_topology(self) -> None:
        t = self._topology
        for signal in (t.node_changed, t.node_added, t.node_removed, t.binding_changed, t.binding_removed):
            signal.connect(self._on_model_event)

    def _disconnect_topology(self) -> None:
        t = self._topology
        for signal in (t.node_changed, t.node_added, t.node_removed, t.binding_changed, t.binding_removed):
            signal.disconnect(self._on_model_event)

    def _on_document_replaced(self) -> None:
        self._disconnect_topology()
        self._topology = self._editor.document.topology
        self._connect_topology()
        self._show(None)

    def _on_model_event(self, *_args: Any) -> None:
        # Names of other nodes feed the combos (DLX, alternate exchange, targets), so any change reloads.
        if self._object_id is None:
            return
        if self._object_id not in self._topology:
            self._show(None)
            return
        self.reload()

    def _on_undo_index(self, _index: int) -> None:
        if self._object_id is not None and self._object_id in self._topology:
            self.reload()

    def _on_selection_changed(self, ids: list[str]) -> None:
        if len(ids) == 1:
            self._show(ids[0])
        elif ids:
            self._show(None, f"<b>{len(ids)} objects selected</b><br>Select one object to edit it.")
        else:
            self._show(None)

    # -- building ---------------------------------------------------------------------------------
    @property
    def object_id(self) -> str | None:
        return self._object_id

    def _obj(self) -> Node | Binding:
        assert self._object_id is not None
        obj = self._topology.get(self._object_id)
        assert obj is not None
        return obj

    def _show(self, object_id: str | None, message: str = "") -> None:
        self._object_id = object_id if object_id in self._topology else None
        self._loaders = []
        self._forms: list[QFormLayout] = []
        self.rows = {}
        content = QWidget()
        content.setObjectName("InspectorContent")
        self._content_layout = QVBoxLayout(content)
        self._content_layout.setContentsMargins(8, 4, 8, 8)
        self._content_layout.setSpacing(8)
        if self._object_id is None:
            # Nothing selected: the dock's own title says "Inspector"; a second heading is noise.
            self.title.setText("")
            self.title.hide()
            hint = QLabel(message or _HINT, content)
            hint.setObjectName("InspectorHint")
            hint.setWordWrap(True)
            hint.setTextFormat(Qt.TextFormat.RichText)
            hint.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            hint.setStyleSheet("color: palette(placeholder-text); padding: 12px;")
            self._content_layout.addWidget(hint)
        else:
            obj = self._obj()
            builders: dict[type, Callable[[], None]] = {
                Exchange: self._build_exchange,
                Queue: self._build_queue,
                Binding: self._build_binding,
                Topic: self._build_topic,
                ConsumerGroup: self._build_group,
                Producer: self._build_producer,
                Consumer: self._build_consumer,
            }
            builders[type(obj)]()
        self._content_layout.addStretch(1)
        self._align_labels()
        self.scroll_area.setWidget(content)
        # Horizontal scrolling is off, so the dock must be at least as wide as the form, or the
        # editors on the right (unit combos, unset buttons) would be clipped.
        scrollbar = self.scroll_area.verticalScrollBar().sizeHint().width()
        self.scroll_area.setMinimumWidth(content.minimumSizeHint().width() + scrollbar)
        self.reload()

    def reload(self) -> None:
        """Show the model's values; emits no command (feedback blocked while loading)."""
        if self._object_id is None:
            return
        obj = self._obj()
        kind = "binding" if isinstance(obj, Binding) else obj.kind.value.replace("_", " ")
        self.title.show()
        self.title.setText(
            f"<span style='color: palette(placeholder-text)'>{kind.upper()}</span>&nbsp;&nbsp;"
            f"<b>{html_escape(self._title_of(obj))}</b>"
        )
        self._loading = True
        try:
            for load in self._loaders:
                load()
        finally:
            self._loading = False

    def sizeHint(self) -> QSize:
        return QSize(380, 640)

    def _align_labels(self) -> None:
        """One label column for every section, so the fields line up from box to box."""
        labels: list[QWidget] = []
        for form in self._forms:
            for i in range(form.rowCount()):
                item = form.itemAt(i, QFormLayout.ItemRole.LabelRole)
                widget = item.widget() if item is not None else None
                if isinstance(widget, QLabel):
                    labels.append(widget)
        width = max((label.sizeHint().width() for label in labels), default=0)
        for label in labels:
            label.setMinimumWidth(width)

    def _title_of(self, obj: Node | Binding) -> str:
        if not isinstance(obj, Binding):
            return obj.name
        src, dst = self._topology.get(obj.source), self._topology.get(obj.destination)
        source = getattr(src, "name", obj.source) or "(default)"
        return f"{source} \u2192 {getattr(dst, 'name', obj.destination)}"

    def _section(self, title: str) -> QFormLayout:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setContentsMargins(8, 8, 8, 8)
        form.setVerticalSpacing(6)
        self._content_layout.addWidget(box)
        self._forms.append(form)
        return form

    def _row(self, form: QFormLayout, label: str, path: str, editor: QWidget, unset: str = "") -> FieldRow:
        row = FieldRow(editor, unset_tip=unset)
        if isinstance(editor, KeyValueTable) and not label:
            form.addRow(row)  # tables span the whole section
        else:
            form.addRow(label, row)
        self.rows[path] = row
        return row

    # -- executing --------------------------------------------------------------------------------
    def _execute(self, row: FieldRow, command: Command) -> bool:
        """Run `command`; on refusal show the rule under `row` and put the model's value back."""
        if self._loading:
            return False
        reasons: list[str] = []

        def capture(reason: str) -> None:
            reasons.append(reason)

        self._editor.refused.connect(capture)
        try:
            ok = self._editor.execute(command)
        finally:
            self._editor.refused.disconnect(capture)
        for other in self.rows.values():
            if other.has_error:
                other.clear_message()
        if not ok:
            row.show_error(_strip_path(reasons[0]) if reasons else "refused")
            self.reload()
        return ok

    def _set_field(self, row: FieldRow, field: str, value: Any) -> None:
        obj = self._obj()
        if self._loading or getattr(obj, field) == value:
            return
        assert not isinstance(obj, Binding)
        self._execute(row, SetNodeField(self._editor.document, obj.id, field, value))

    def _set_arg(self, row: FieldRow, key: str, value: Any) -> None:
        """Set argument `key` (None: remove it); nothing when the model already says so."""
        obj = self._obj()
        if self._loading or not isinstance(obj, Exchange | Queue):
            return
        current = obj.arguments.get(key)
        if value is None and key not in obj.arguments:
            self.reload()
            return
        if value is not None and key in obj.arguments and current == value and type(current) is type(value):
            return
        doc = self._editor.document
        command = (
            SetArgument(doc, obj.id, key, remove=True)
            if value is None
            else SetArgument(doc, obj.id, key, value)
        )
        self._execute(row, command)

    def _edit_table(self, row: FieldRow, known: frozenset[str], new: Mapping[str, Any]) -> None:
        """One undo step for a table edit of the arguments (or configs) not shown as fields."""
        obj = self._obj()
        if self._loading or not isinstance(obj, Exchange | Queue | Topic):
            return
        current = obj.configs if isinstance(obj, Topic) else obj.arguments
        doc = self._editor.document
        commands: list[Command] = [
            SetArgument(doc, obj.id, key, remove=True)
            for key in current
            if key not in known and key not in new
        ]
        for key, value in new.items():
            if key in known:
                row.show_error(f"{key} has its own field above; set it there")
                return
            if key not in current or current[key] != value or type(current[key]) is not type(value):
                commands.append(SetArgument(doc, obj.id, key, value))
        if len(commands) == 1:
            self._execute(row, commands[0])
        elif commands:
            self._execute(row, Macro("Edit arguments", commands))
