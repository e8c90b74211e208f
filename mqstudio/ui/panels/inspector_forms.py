"""The inspector's per-kind forms: the fields shown for an exchange, queue, binding, topic, group or client.

Owns: `InspectorForms`, the mixin `InspectorPanel` builds its form with — one `_build_<kind>` per object
kind plus the shared field helpers (name, check boxes, argument combos and spin boxes, node combos). Every
field commits through the panel's `_set_field` / `_set_arg` / `_edit_table` / `_execute`, so each edit is
one core command; loaders put the model's values back. Imports PySide6, mqstudio.core and mqstudio.ui only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from mqstudio.core.commands import Command, EditBinding, RenameNode
from mqstudio.core.model import (
    Binding,
    ConsumerGroup,
    Exchange,
    ExchangeType,
    Node,
    Overflow,
    Queue,
    QueueType,
    Topic,
    Topology,
)
from mqstudio.core.validation import DELAYED_TYPES, X_MATCH_VALUES
from mqstudio.ui.panels.inspector_fields import (
    DURATION_UNITS,
    SIZE_UNITS,
    FieldRow,
    KeyValueTable,
    TemplateEdit,
    UnitSpinBox,
    routing_key_warning,
    set_checked,
    set_combo_data,
    set_spin,
    set_text,
)

if TYPE_CHECKING:
    from mqstudio.ui.editor import DocumentEditor

#: What an empty payload means (the traffic generator's default template, shown as the placeholder).
DEFAULT_PAYLOAD_HINT = '{"id": {{counter}}, "uuid": "{{uuid}}", "at": "{{now}}", "amount": {{rand:1-100}}}'

NONE_ITEM = "(not set)"
DEFAULT_EXCHANGE_ITEM = '(default exchange "")'
EXCHANGE_ARGS = frozenset({"alternate-exchange", "x-delayed-type"})
QUEUE_ARGS = frozenset(
    {
        "x-queue-type",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-message-ttl",
        "x-expires",
        "x-max-length",
        "x-max-length-bytes",
        "x-overflow",
        "x-max-priority",
        "x-delivery-limit",
        "x-single-active-consumer",
    }
)


class InspectorForms:
    """The form builders; mixed into `InspectorPanel`, which provides the state and the commit methods."""

    if TYPE_CHECKING:
        _editor: DocumentEditor
        _topology: Topology
        _loading: bool
        _loaders: list[Callable[[], None]]
        rows: dict[str, FieldRow]

        def _obj(self) -> Node | Binding: ...
        def reload(self) -> None: ...
        def _section(self, title: str) -> QFormLayout: ...
        def _row(
            self, form: QFormLayout, label: str, path: str, editor: QWidget, unset: str = ""
        ) -> FieldRow: ...
        def _execute(self, row: FieldRow, command: Command) -> bool: ...
        def _set_field(self, row: FieldRow, field: str, value: Any) -> None: ...
        def _set_arg(self, row: FieldRow, key: str, value: Any) -> None: ...
        def _edit_table(self, row: FieldRow, known: frozenset[str], new: Mapping[str, Any]) -> None: ...

    # -- common fields ----------------------------------------------------------------------------
    def _name_row(self, form: QFormLayout) -> None:
        edit = QLineEdit()
        edit.setClearButtonEnabled(False)
        row = self._row(form, "Name", "name", edit)

        def commit() -> None:
            obj = self._obj()
            if self._loading or isinstance(obj, Binding) or edit.text() == obj.name:
                return
            self._execute(row, RenameNode(self._editor.document, obj.id, edit.text()))

        edit.editingFinished.connect(commit)
        self._loaders.append(lambda: set_text(edit, getattr(self._obj(), "name", "")))

    def _check_row(self, form: QFormLayout, label: str, field: str, tip: str) -> QCheckBox:
        box = QCheckBox(label)
        box.setToolTip(tip)
        row = self._row(form, "", field, box)
        box.toggled.connect(lambda checked: self._set_field(row, field, checked))
        self._loaders.append(lambda: set_checked(box, bool(getattr(self._obj(), field))))
        return box

    def _exchange_combo(self, form: QFormLayout, label: str, key: str, tip: str) -> None:
        """An editable combo of the vhost's exchanges (plus free text) for a name-valued argument."""
        combo = QComboBox()
        combo.setEditable(True)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        combo.setToolTip(tip)
        line = combo.lineEdit()
        assert line is not None
        line.setPlaceholderText(NONE_ITEM)
        row = self._row(form, label, f"arguments.{key}", combo, unset=f"Remove {key}")

        def commit() -> None:
            if self._loading:
                return
            text = combo.currentText()
            value: str | None = text
            if text in ("", NONE_ITEM):
                value = None
            elif text == DEFAULT_EXCHANGE_ITEM:
                value = ""
            self._set_arg(row, key, value)

        def load() -> None:
            obj = self._obj()
            assert isinstance(obj, Exchange | Queue)
            names = [e.name for e in self._topology.exchanges if e.vhost == obj.vhost and e.id != obj.id]
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(NONE_ITEM)
            if key == "x-dead-letter-exchange":
                combo.addItem(DEFAULT_EXCHANGE_ITEM)
            combo.addItems(sorted(n for n in names if n))
            value = obj.arguments.get(key)
            if value is None:
                combo.setCurrentIndex(0)
                combo.setEditText("")
            else:
                combo.setEditText(DEFAULT_EXCHANGE_ITEM if value == "" else str(value))
            combo.blockSignals(False)

        combo.activated.connect(lambda _i: commit())
        line.editingFinished.connect(commit)
        row.unset_clicked.connect(lambda: self._set_arg(row, key, None))
        self._loaders.append(load)

    def _choice_arg(
        self, form: QFormLayout, label: str, key: str, choices: tuple[str, ...], *, default: str | None = None
    ) -> QComboBox:
        """A combo for an enumerated argument; "(not set)" removes it (RabbitMQ's default applies)."""
        combo = QComboBox()
        combo.addItem(NONE_ITEM if default is None else f"{default} (default)")
        combo.addItems(list(choices))
        row = self._row(form, label, f"arguments.{key}", combo)

        def commit(index: int) -> None:
            self._set_arg(row, key, None if index == 0 else combo.itemText(index))

        def load() -> None:
            args = getattr(self._obj(), "arguments", {})
            value = args.get(key)
            combo.blockSignals(True)
            combo.setCurrentIndex(combo.findText(str(value)) if value in choices else 0)
            combo.blockSignals(False)

        combo.activated.connect(commit)
        self._loaders.append(load)
        return combo

    def _int_arg(
        self,
        form: QFormLayout,
        label: str,
        key: str,
        units: tuple[tuple[str, int], ...] | None = None,
        *,
        minimum: int = 0,
        maximum: int = 2_147_483_647,
        tip: str = "",
    ) -> None:
        """An integer argument (with a unit combo when `units`); "not set" and the unset button remove it."""
        editor = UnitSpinBox(units or (("", 1),), minimum=minimum, maximum=maximum)
        if not units:
            editor.unit.hide()
        editor.setToolTip(tip)
        row = self._row(form, label, f"arguments.{key}", editor, unset=f"Remove {key}")
        editor.committed.connect(lambda: self._set_arg(row, key, editor.value()))
        row.unset_clicked.connect(lambda: self._set_arg(row, key, None))

        def load() -> None:
            value = getattr(self._obj(), "arguments", {}).get(key)
            editor.set_value(value if isinstance(value, int) and not isinstance(value, bool) else None)

        self._loaders.append(load)

    def _other_args(self, known: frozenset[str], title: str = "Other arguments") -> None:
        form = self._section(title)
        table = KeyValueTable(key_header="Argument", add_tip="Add an argument")
        table.setToolTip("Arguments RabbitMQ or its plugins read that have no field above, with typed values")
        row = self._row(form, "", "arguments", table)
        table.edited.connect(lambda new: self._edit_table(row, known, new))
        table.invalid.connect(row.show_error)

        def load() -> None:
            obj = self._obj()
            source = obj.configs if isinstance(obj, Topic) else getattr(obj, "arguments", {})
            table.set_items({k: v for k, v in source.items() if k not in known})

        self._loaders.append(load)

    # -- exchanges --------------------------------------------------------------------------------
    def _build_exchange(self) -> None:
        form = self._section("Exchange")
        self._name_row(form)
        kinds = QComboBox()
        for t in ExchangeType:
            kinds.addItem(t.value, t)
        row = self._row(form, "Type", "type", kinds)
        kinds.activated.connect(lambda i: self._set_field(row, "type", kinds.itemData(i)))
        self._loaders.append(lambda: set_combo_data(kinds, self._obj_attr("type")))
        self._check_row(form, "Durable", "durable", "Survives a broker restart")
        self._check_row(form, "Auto-delete", "auto_delete", "Deleted when its last binding is removed")
        self._check_row(form, "Internal", "internal", "Only other exchanges can publish to it")
        args = self._section("Arguments")
        self._exchange_combo(
            args, "Alternate exchange", "alternate-exchange", "Where messages that match no binding go"
        )
        delayed = self._choice_arg(args, "Delayed type", "x-delayed-type", DELAYED_TYPES)
        delayed_row = self.rows["arguments.x-delayed-type"]

        def show_delayed() -> None:
            is_delayed = self._obj_attr("type") == ExchangeType.DELAYED
            delayed_row.setVisible(is_delayed)
            label = args.labelForField(delayed_row)
            if label is not None:
                label.setVisible(is_delayed)
            delayed.setToolTip("How an x-delayed-message exchange routes once the delay is over")

        self._loaders.append(show_delayed)
        self._other_args(EXCHANGE_ARGS)

    def _obj_attr(self, name: str) -> Any:
        return getattr(self._obj(), name)

    # -- queues -----------------------------------------------------------------------------------
    def _build_queue(self) -> None:
        form = self._section("Queue")
        self._name_row(form)
        qtype = QComboBox()
        for t in QueueType:
            qtype.addItem(t.value, t)
        type_row = self._row(form, "Type", "arguments.x-queue-type", qtype)

        def set_type(index: int) -> None:
            obj = self._obj()
            assert isinstance(obj, Queue)
            if obj.queue_type != qtype.itemData(index):
                self._set_arg(type_row, "x-queue-type", qtype.itemData(index).value)

        qtype.activated.connect(set_type)
        self._loaders.append(lambda: set_combo_data(qtype, self._obj_attr("queue_type")))
        self._check_row(form, "Durable", "durable", "Survives a broker restart")
        self._check_row(form, "Exclusive", "exclusive", "Used by one connection, deleted when it closes")
        self._check_row(form, "Auto-delete", "auto_delete", "Deleted when its last consumer goes")

        dl = self._section("Dead-lettering")
        self._exchange_combo(
            dl,
            "Dead-letter exchange",
            "x-dead-letter-exchange",
            "Where rejected, expired and dropped messages go",
        )
        dlrk = QLineEdit()
        dlrk.setPlaceholderText("the message's own routing key")
        dlrk_row = self._row(
            dl,
            "Dead-letter key",
            "arguments.x-dead-letter-routing-key",
            dlrk,
            "Remove x-dead-letter-routing-key",
        )
        dlrk.editingFinished.connect(
            lambda: self._set_arg(dlrk_row, "x-dead-letter-routing-key", dlrk.text() or None)
        )
        dlrk_row.unset_clicked.connect(lambda: self._set_arg(dlrk_row, "x-dead-letter-routing-key", None))
        self._loaders.append(
            lambda: set_text(dlrk, self._obj_attr("arguments").get("x-dead-letter-routing-key") or "")
        )

        ttl = self._section("Time to live")
        self._int_arg(
            ttl, "Message TTL", "x-message-ttl", DURATION_UNITS, tip="Messages older than this expire"
        )
        self._int_arg(
            ttl,
            "Queue expiry",
            "x-expires",
            DURATION_UNITS,
            tip="The queue is deleted after being unused this long",
        )

        limits = self._section("Limits")
        self._int_arg(limits, "Max length", "x-max-length", tip="Ready messages the queue holds at most")
        self._int_arg(
            limits,
            "Max length bytes",
            "x-max-length-bytes",
            SIZE_UNITS,
            tip="Body bytes the queue holds at most",
        )
        self._choice_arg(
            limits, "Overflow", "x-overflow", tuple(o.value for o in Overflow), default="drop-head"
        )
        self._int_arg(
            limits,
            "Max priority",
            "x-max-priority",
            minimum=1,
            maximum=255,
            tip="Classic queues only: 1 to 255",
        )
        self._int_arg(
            limits,
            "Delivery limit",
            "x-delivery-limit",
            tip="Quorum queues: redeliveries before dead-lettering",
        )
        sac = QCheckBox("Single active consumer")
        sac.setToolTip("Only one consumer at a time receives messages")
        sac_row = self._row(limits, "", "arguments.x-single-active-consumer", sac)
        sac.toggled.connect(
            lambda on: self._set_arg(sac_row, "x-single-active-consumer", True if on else None)
        )
        self._loaders.append(
            lambda: set_checked(sac, self._obj_attr("arguments").get("x-single-active-consumer") is True)
        )
        self._other_args(QUEUE_ARGS)

    # -- bindings ---------------------------------------------------------------------------------
    def _build_binding(self) -> None:
        binding = self._obj()
        assert isinstance(binding, Binding)
        source = self._topology.get(binding.source)
        source_type = ""
        if isinstance(source, Exchange):
            source_type = (
                source.delayed_type or "" if source.type == ExchangeType.DELAYED else str(source.type)
            )
        form = self._section("Binding")
        ends = QLabel()
        ends.setWordWrap(True)
        self._row(form, "Route", "ends", ends)

        def load_ends() -> None:
            b = self._obj()
            assert isinstance(b, Binding)
            src, dst = self._topology.get(b.source), self._topology.get(b.destination)
            ends.setText(
                f"{getattr(src, 'name', b.source) or '(default)'}  →  {getattr(dst, 'name', b.destination)}"
            )

        self._loaders.append(load_ends)
        key = QLineEdit()
        key.setPlaceholderText("(empty)")
        key_row = self._row(form, "Routing key", "routing_key", key)

        def warn(text: str) -> None:
            message = routing_key_warning(text, source_type)
            if message:
                key_row.show_warning(message)
            else:
                key_row.clear_message()

        def commit_key() -> None:
            b = self._obj()
            if self._loading or not isinstance(b, Binding) or key.text() == b.routing_key:
                return
            self._execute(key_row, EditBinding(self._editor.document, b.id, routing_key=key.text()))

        key.textEdited.connect(warn)
        key.editingFinished.connect(commit_key)

        def load_key() -> None:
            set_text(key, self._obj_attr("routing_key"))
            warn(key.text())

        self._loaders.append(load_key)

        if source_type == ExchangeType.HEADERS:
            self._build_headers_binding()
        else:
            args = self._section("Arguments")
            table = KeyValueTable(key_header="Argument", add_tip="Add a binding argument")
            row = self._row(args, "", "arguments", table)
            table.edited.connect(lambda new: self._edit_binding_args(row, dict(new)))
            table.invalid.connect(row.show_error)
            self._loaders.append(lambda: table.set_items(self._obj_attr("arguments")))

    def _build_headers_binding(self) -> None:
        form = self._section("Header match")
        match = QComboBox()
        match.addItem("all (default)")
        match.addItems([v for v in X_MATCH_VALUES if v != "all"])
        match_row = self._row(form, "x-match", "arguments.x-match", match)
        headers = KeyValueTable(key_header="Header", add_tip="Add a header to match")
        headers_row = self._row(form, "Headers", "arguments", headers)

        def with_match(rows: Mapping[str, Any]) -> dict[str, Any]:
            new: dict[str, Any] = {}
            if match.currentIndex() > 0:
                new["x-match"] = match.currentText()
            elif self._obj_attr("arguments").get("x-match") == "all":
                new["x-match"] = "all"  # keep an explicit default as the user wrote it
            new.update(rows)
            return new

        def current_rows() -> dict[str, Any]:
            return {k: v for k, v in self._obj_attr("arguments").items() if k != "x-match"}

        match.activated.connect(lambda _i: self._edit_binding_args(match_row, with_match(current_rows())))
        headers.edited.connect(lambda rows: self._edit_binding_args(headers_row, with_match(rows)))
        headers.invalid.connect(headers_row.show_error)

        def load() -> None:
            args = self._obj_attr("arguments")
            value = args.get("x-match", "all")
            match.blockSignals(True)
            match.setCurrentIndex(0 if value == "all" else max(match.findText(str(value)), 0))
            match.blockSignals(False)
            headers.set_items({k: v for k, v in args.items() if k != "x-match"})

        self._loaders.append(load)

    def _edit_binding_args(self, row: FieldRow, new: dict[str, Any]) -> None:
        b = self._obj()
        if self._loading or not isinstance(b, Binding) or new == b.arguments:
            return
        self._execute(row, EditBinding(self._editor.document, b.id, arguments=new))

    # -- Kafka ------------------------------------------------------------------------------------
    def _build_topic(self) -> None:
        form = self._section("Topic")
        self._name_row(form)
        self._spin_field(form, "Partitions", "partitions", "At most one consumer per partition in a group")
        self._spin_field(form, "Replication factor", "replication_factor", "Copies of every partition")
        configs = self._section("Configs")
        table = KeyValueTable(typed=False, key_header="Config", add_tip="Add a topic config")
        row = self._row(configs, "", "configs", table)
        table.edited.connect(lambda new: self._edit_table(row, frozenset(), new))
        self._loaders.append(lambda: table.set_items(self._obj_attr("configs")))

    def _spin_field(self, form: QFormLayout, label: str, field: str, tip: str) -> None:
        spin = QSpinBox()
        spin.setRange(0, 100_000)
        spin.setToolTip(tip)
        row = self._row(form, label, field, spin)
        spin.editingFinished.connect(lambda: self._set_field(row, field, spin.value()))
        self._loaders.append(lambda: set_spin(spin, self._obj_attr(field)))

    def _build_group(self) -> None:
        form = self._section("Consumer group")
        self._name_row(form)
        topics = QListWidget()
        topics.setToolTip("Topics the group subscribes to")
        topics.setMinimumHeight(90)
        row = self._row(form, "Topics", "topics", topics)

        def commit(_item: QListWidgetItem) -> None:
            if self._loading:
                return
            chosen = [
                topics.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(topics.count())
                if topics.item(i).checkState() == Qt.CheckState.Checked
            ]
            self._set_field(row, "topics", chosen)

        def load() -> None:
            subscribed = list(self._obj_attr("topics"))
            topics.blockSignals(True)
            topics.clear()
            for topic in self._topology.topics:
                item = QListWidgetItem(topic.name, topics)
                item.setData(Qt.ItemDataRole.UserRole, topic.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if topic.id in subscribed else Qt.CheckState.Unchecked
                )
            topics.blockSignals(False)

        topics.itemChanged.connect(commit)
        self._loaders.append(load)

    # -- simulated clients ------------------------------------------------------------------------
    def _node_combo(self, form: QFormLayout, label: str, field: str, kinds: tuple[type, ...]) -> None:
        combo = QComboBox()
        row = self._row(form, label, field, combo)
        combo.activated.connect(lambda i: self._set_field(row, field, combo.itemData(i)))

        def load() -> None:
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(NONE_ITEM, "")
            for node in self._topology.nodes:
                if isinstance(node, kinds):
                    combo.addItem(self._topology.label(node.id), node.id)
            index = combo.findData(self._obj_attr(field))
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)

        self._loaders.append(load)

    def _build_producer(self) -> None:
        form = self._section("Producer")
        self._name_row(form)
        self._node_combo(form, "Publishes to", "target", (Exchange, Topic))
        key = QLineEdit()
        key_row = self._row(form, "Routing key", "routing_key", key)
        key.editingFinished.connect(lambda: self._set_field(key_row, "routing_key", key.text()))
        self._loaders.append(lambda: set_text(key, self._obj_attr("routing_key")))
        rate = QDoubleSpinBox()
        rate.setRange(0.0, 1_000_000.0)
        rate.setDecimals(2)
        rate.setSuffix(" msg/s")
        rate_row = self._row(form, "Rate", "rate", rate)
        rate.editingFinished.connect(lambda: self._set_field(rate_row, "rate", rate.value()))
        self._loaders.append(lambda: set_spin(rate, self._obj_attr("rate")))
        message = self._section("Messages")
        payload = TemplateEdit()
        payload.setPlaceholderText(f"(default) {DEFAULT_PAYLOAD_HINT}")
        payload.setToolTip(
            "Body template: {{counter}}, {{uuid}}, {{now}} and {{rand:1-100}} are filled per message"
        )
        payload.setFixedHeight(payload.fontMetrics().lineSpacing() * 5 + 12)
        payload_row = self._row(message, "Payload", "payload", payload)
        payload.committed.connect(lambda: self._set_field(payload_row, "payload", payload.toPlainText()))
        self._loaders.append(lambda: payload.set_text(self._obj_attr("payload")))
        self._optional_int_field(
            message, "Priority", "priority", maximum=255, tip="AMQP message priority, 0 to 255"
        )
        self._optional_int_field(
            message, "TTL", "ttl_ms", DURATION_UNITS, tip="Per-message expiration (AMQP expiration)"
        )
        section = self._section("Headers")
        table = KeyValueTable(key_header="Header", add_tip="Add a header to every message")
        row = self._row(section, "", "headers", table)
        table.edited.connect(lambda new: self._set_field(row, "headers", dict(new)))
        table.invalid.connect(row.show_error)
        self._loaders.append(lambda: table.set_items(self._obj_attr("headers")))

    def _build_consumer(self) -> None:
        form = self._section("Consumer")
        self._name_row(form)
        self._node_combo(form, "Consumes from", "source", (Queue, ConsumerGroup))
        prefetch = QSpinBox()
        prefetch.setRange(0, 1_000_000)
        prefetch.setSpecialValueText("0 (unlimited)")
        prefetch_row = self._row(form, "Prefetch", "prefetch", prefetch)
        prefetch.editingFinished.connect(lambda: self._set_field(prefetch_row, "prefetch", prefetch.value()))
        self._loaders.append(lambda: set_spin(prefetch, self._obj_attr("prefetch")))
        work = UnitSpinBox(DURATION_UNITS, optional=False)
        work_row = self._row(form, "Processing time", "processing_ms", work)
        work.committed.connect(lambda: self._set_field(work_row, "processing_ms", work.value()))
        self._loaders.append(lambda: work.set_value(self._obj_attr("processing_ms")))
        fail = QDoubleSpinBox()
        fail.setRange(0.0, 100.0)
        fail.setDecimals(1)
        fail.setSuffix(" %")
        fail.setToolTip("Share of deliveries it rejects without requeue (dead-lettered)")
        fail_row = self._row(form, "Failure rate", "failure_rate", fail)
        fail.editingFinished.connect(
            lambda: self._set_field(fail_row, "failure_rate", round(fail.value() / 100, 4))
        )
        self._loaders.append(lambda: set_spin(fail, self._obj_attr("failure_rate") * 100))
        requeue = QDoubleSpinBox()
        requeue.setRange(0.0, 100.0)
        requeue.setDecimals(1)
        requeue.setSuffix(" %")
        requeue.setToolTip("Share of deliveries it rejects with requeue (redelivered)")
        requeue_row = self._row(form, "Requeue rate", "requeue_rate", requeue)
        requeue.editingFinished.connect(
            lambda: self._set_field(requeue_row, "requeue_rate", round(requeue.value() / 100, 4))
        )
        self._loaders.append(lambda: set_spin(requeue, self._obj_attr("requeue_rate") * 100))

    def _optional_int_field(
        self,
        form: QFormLayout,
        label: str,
        field: str,
        units: tuple[tuple[str, int], ...] | None = None,
        *,
        maximum: int = 2_147_483_647,
        tip: str = "",
    ) -> None:
        """An integer node field that may be unset (None): "not set" and the unset button clear it."""
        editor = UnitSpinBox(units or (("", 1),), minimum=0, maximum=maximum)
        if not units:
            editor.unit.hide()
        editor.setToolTip(tip)
        row = self._row(form, label, field, editor, unset=f"Unset {label.lower()}")
        editor.committed.connect(lambda: self._set_field(row, field, editor.value()))

        def unset() -> None:
            editor.set_value(None)
            self._set_field(row, field, None)

        row.unset_clicked.connect(unset)
        self._loaders.append(lambda: editor.set_value(self._obj_attr(field)))
