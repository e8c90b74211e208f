"""The main window: menus, toolbar, docks, status bar and the central canvas around one `DocumentEditor`.

Owns: `MainWindow`, `app_settings()`. The window wires parts together and keeps its own chrome
(title, counts, geometry and dock layout in QSettings); the file workflow lives in `files.py`, the
actions in `actions.py`, the start page in `welcome.py`. Imports PySide6, mqstudio.core and mqstudio.ui;
never touches a backend directly.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QStackedWidget,
    QToolBar,
    QUndoView,
    QWidget,
)

from mqstudio.backends.base import BackendKind
from mqstudio.core.codegen import supports
from mqstudio.ui.about import show_about
from mqstudio.ui.actions import WindowActions
from mqstudio.ui.broker_menu import BrokerController
from mqstudio.ui.canvas.minimap import MiniMap
from mqstudio.ui.canvas.scene import TopologyScene
from mqstudio.ui.canvas.view import TopologyView
from mqstudio.ui.dialogs.codegen import CodegenDialog, open_codegen_dialog
from mqstudio.ui.dialogs.connections import ConnectionsDialog
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.files import FileController
from mqstudio.ui.monitoring import install_monitoring
from mqstudio.ui.panels.deadletters import install as install_dead_letters
from mqstudio.ui.panels.inspector import InspectorPanel
from mqstudio.ui.panels.lint import LintPanel
from mqstudio.ui.panels.palette import PalettePanel
from mqstudio.ui.panels.tracer import TracerPanel
from mqstudio.ui.resources import app_icon, examples, icon
from mqstudio.ui.shelldialogs import ShortcutsDialog
from mqstudio.ui.theme import Theme, ThemeManager
from mqstudio.ui.traffic import install as install_traffic
from mqstudio.ui.welcome import WelcomePage

SETTINGS_ENV = "MQSTUDIO_SETTINGS"
STATE_VERSION = 1
BOTTOM_SHARE = 0.28  # the bottom docks' share of the window's height until the user sizes them
_LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
_RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
_BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea


def app_settings() -> QSettings:
    """The user's settings: an INI file named by ``$MQSTUDIO_SETTINGS`` (tests, screenshots), else the
    platform's native store for organisation and application "mqstudio"."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("mqstudio", "mqstudio")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _scrollable(widget: QWidget) -> QScrollArea:
    """Wrap a tall panel so that its minimum height never sets the window's minimum height."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    return area


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: QSettings | None = None,
        theme: ThemeManager | None = None,
        autosave_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("MainWindow")
        self.setWindowIcon(app_icon())
        self.setDockNestingEnabled(True)
        self.setDocumentMode(True)
        self.settings = settings if settings is not None else app_settings()
        app = QApplication.instance()
        assert isinstance(app, QApplication), "create the QApplication first"
        self.theme = theme if theme is not None else ThemeManager(app, self)
        if theme is None:
            self.theme.set_theme(self._stored_theme())

        self.editor = DocumentEditor(parent=self)
        self.action_set = WindowActions(self, self.editor.undo_stack)
        self.files = FileController(self, self.editor, self.settings, autosave_dir)

        self._stack = QStackedWidget(self)
        a = self.action_set
        self.welcome = WelcomePage(
            [("New Topology", a.new), ("Open…", a.open), ("Import Definitions…", a.import_definitions)],
            examples(), self, connect=[a.connect_rabbitmq, a.connect_kafka], links=[a.shortcuts, a.about],
        )
        self._stack.addWidget(_scrollable(self.welcome))
        self.scene = TopologyScene(self.editor, self)
        self.view = TopologyView(self.scene, self)
        self._stack.addWidget(self.view)
        self.setCentralWidget(self._stack)

        self._build_docks()
        self.broker = BrokerController(self, self.editor, self.files, self.palette_panel)
        self._build_menus()
        self.monitoring = install_monitoring(self)  # Throughput dock, View ▸ Live Overlays
        self._build_toolbar()
        self._build_status_bar()
        self._connect()
        self._restore_layout()
        self._refresh_recent()
        self._on_document_replaced()
        self.traffic = install_traffic(self)  # run mode, the Messages dock (ui.traffic)
        self.dead_letters = install_dead_letters(self)  # the Dead Letters dock (ui.panels.deadletters)

    # -- construction --------------------------------------------------------------------------
    def _build_docks(self) -> None:
        self.palette_panel = PalettePanel(self)
        self.inspector = InspectorPanel(self.editor, self)
        self.minimap = MiniMap(self.view, self)
        self.history = QUndoView(self.editor.undo_stack, self)
        self.history.setEmptyLabel("<opened>")
        self.history.setCleanIcon(icon("document-save"))
        self.lint = LintPanel(self.editor, self)
        self.tracer = TracerPanel(self.editor, self)
        # One tab group only: a second group tabified before the first show leaves a stray tab bar
        # painted at the pre-show geometry (Qt 6.11), so History sits under the palette instead.
        self.palette_dock = self._dock("Palette", "PaletteDock", self.palette_panel, _LEFT)
        self.history_dock = self._dock("History", "HistoryDock", self.history, _LEFT)
        self.inspector_dock = self._dock("Inspector", "InspectorDock", self.inspector, _RIGHT)
        self.minimap_dock = self._dock("Overview", "OverviewDock", self.minimap, _RIGHT)
        self.lint_dock = self._dock("Problems", "ProblemsDock", self.lint, _BOTTOM)
        self.tracer_dock = self._dock("Route Tracer", "TracerDock", _scrollable(self.tracer), _BOTTOM)
        self.tabifyDockWidget(self.lint_dock, self.tracer_dock)
        self.lint_dock.raise_()
        self.resizeDocks([self.palette_dock, self.inspector_dock], [220, 300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.palette_dock, self.history_dock], [460, 120], Qt.Orientation.Vertical)
        self.resizeDocks([self.inspector_dock, self.minimap_dock], [420, 170], Qt.Orientation.Vertical)
        self._default_bottom = True  # sized in the first showEvent, from the window's real height

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        a = self.action_set
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([a.new, a.open])
        self.examples_menu = file_menu.addMenu("Open &Example")
        for example in examples():
            action = self.examples_menu.addAction(example.title)
            action.setStatusTip(example.description)
            action.triggered.connect(lambda _=False, ex=example: self.files.open_example(ex))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addActions([a.save, a.save_as])
        file_menu.addSeparator()
        file_menu.addActions([a.import_definitions, a.export_definitions])
        file_menu.addSeparator()
        file_menu.addAction(a.quit)

        self.edit_menu = bar.addMenu("&Edit")
        self.edit_menu.addActions([a.undo, a.redo])
        self.edit_menu.addSeparator()
        self.edit_menu.addActions([a.cut, a.copy, a.paste, a.delete])
        self.edit_menu.addSeparator()
        self.edit_menu.addActions([a.select_all, a.rename])
        self.edit_menu.addSeparator()
        self.edit_menu.addAction(a.generate_code)

        file_menu.insertAction(a.quit, a.export_image)
        file_menu.insertSeparator(a.quit)

        self.view_menu = bar.addMenu("&View")
        self.view_menu.addActions([a.zoom_in, a.zoom_out, a.zoom_reset, a.fit])
        self.view_menu.addSeparator()
        self.view_menu.addActions([a.snap, a.auto_layout])
        self.view_menu.addSeparator()
        self.docks_menu = self.view_menu.addMenu("&Panels")
        for dock in self.findChildren(QDockWidget):
            self.docks_menu.addAction(dock.toggleViewAction())
        self.view_menu.addSeparator()
        theme_menu = self.view_menu.addMenu("&Theme")
        theme_menu.addActions(list(a.themes.values()))
        a.themes[self.theme.theme].setChecked(True)

        self.broker_menu = self.broker.build_menu(bar.addMenu("&Broker"))

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a.shortcuts)
        help_menu.addSeparator()
        help_menu.addAction(a.about)
        self._menus: list[tuple[str, QMenu]] = [
            ("File", file_menu), ("Edit", self.edit_menu), ("View", self.view_menu),
            ("Broker", self.broker_menu), ("Help", help_menu),
        ]

    def _build_toolbar(self) -> None:
        a = self.action_set
        self.toolbar = QToolBar("Main Toolbar", self)
        self.toolbar.setObjectName("MainToolbar")
        self.toolbar.setMovable(False)
        self.toolbar.setIconSize(QSize(20, 20))
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.toolbar.addActions([a.new, a.open, a.save])
        self.toolbar.addSeparator()
        self.toolbar.addActions([a.undo, a.redo])
        self.toolbar.addSeparator()
        self.toolbar.addActions([a.delete])
        self.toolbar.addSeparator()
        self.toolbar.addActions([a.zoom_in, a.zoom_out, a.fit, a.auto_layout])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.docks_menu.addSeparator()
        self.docks_menu.addAction(self.toolbar.toggleViewAction())

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setSizeGripEnabled(False)
        self._title_label = QLabel(self)
        self._counts_label = QLabel(self)
        self._broker_label = self.broker.label
        for widget in (self._title_label, self._separator(), self._counts_label, self._separator(),
                       self._broker_label):
            status.addPermanentWidget(widget)

    def _separator(self) -> QLabel:
        line = QLabel(self)
        line.setObjectName("StatusSeparator")
        line.setFixedWidth(1)
        return line

    def _connect(self) -> None:
        a, files, editor = self.action_set, self.files, self.editor
        a.new.triggered.connect(files.new_document)
        a.open.triggered.connect(files.open_dialog)
        a.save.triggered.connect(files.save)
        a.save_as.triggered.connect(files.save_as)
        a.import_definitions.triggered.connect(files.import_definitions_dialog)
        a.export_definitions.triggered.connect(files.export_definitions_dialog)
        a.quit.triggered.connect(self.close)
        a.export_image.triggered.connect(lambda: files.export_image_dialog(self.scene))
        a.delete.triggered.connect(self.scene.delete_selected)
        a.select_all.triggered.connect(self.select_all)
        a.cut.triggered.connect(self.cut)
        a.copy.triggered.connect(self.scene.copy_selection)
        a.paste.triggered.connect(self.paste)
        a.rename.triggered.connect(self.rename)
        a.generate_code.triggered.connect(self.generate_code)
        a.zoom_in.triggered.connect(self.view.zoom_in)
        a.zoom_out.triggered.connect(self.view.zoom_out)
        a.zoom_reset.triggered.connect(self.view.reset_zoom)
        a.fit.triggered.connect(self.view.fit_all)
        a.snap.toggled.connect(self._on_snap_toggled)
        a.auto_layout.triggered.connect(self.auto_layout)
        self._drop_view_shortcuts()
        self.palette_panel.create_requested.connect(self.create_node)
        self.lint.findings_changed.connect(self.scene.set_findings)
        self.lint.title_changed.connect(self.lint_dock.setWindowTitle)
        self.tracer.path_traced.connect(self.scene.highlight_path)
        a.shortcuts.triggered.connect(self.show_shortcuts)
        a.about.triggered.connect(self.show_about)
        a.connect_rabbitmq.triggered.connect(lambda: self.connect_to(BackendKind.RABBITMQ))
        a.connect_kafka.triggered.connect(lambda: self.connect_to(BackendKind.KAFKA))
        a.theme_group.triggered.connect(self._on_theme_chosen)
        self.theme.changed.connect(self._on_theme_changed)

        files.document_opened.connect(self._on_document_opened)
        files.title_changed.connect(self._update_title)
        files.recent_changed.connect(self._refresh_recent)
        files.message.connect(self.show_message)
        self.broker.message.connect(self.show_message)
        self.recent_menu.aboutToShow.connect(self._refresh_recent)
        self.welcome.example_chosen.connect(files.open_example)
        self.welcome.recent_chosen.connect(self.files.open_path)

        editor.document_replaced.connect(self._on_document_replaced)
        editor.undo_stack.cleanChanged.connect(self._update_title)
        editor.undo_stack.indexChanged.connect(self._update_counts)
        editor.selection_changed.connect(self._update_edit_actions)
        editor.undo_stack.indexChanged.connect(self._update_edit_actions)  # a client gains a target …
        editor.refused.connect(lambda reason: self.show_message(reason, 6000))

    # -- public --------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.editor.document.path

    def open_path(self, path: str | Path) -> bool:
        """Open a project or definitions file; on error show every problem and keep the open one."""
        return self.files.open_path(path)

    def show_message(self, text: str, timeout: int = 4000) -> None:
        self.statusBar().showMessage(text, timeout)

    def create_node(self, spec: dict[str, str]) -> None:
        """A palette double-click: the node appears in the middle of the visible canvas."""
        self._show_document()
        node_id = self.scene.create_at_center(spec)
        if node_id is not None:
            self.editor.select([node_id])
            self.view.setFocus()

    def cut(self) -> None:
        if self.scene.copy_selection():
            self.scene.delete_selected()

    def paste(self) -> None:
        self._show_document()
        self.scene.paste()

    def rename(self) -> None:
        if not self.scene.rename_selected():
            self.show_message("Select one node to rename it")

    def generate_code(self) -> None:
        """Edit ▸ Generate Code…: client snippets for the one selected node (ui.dialogs.codegen)."""
        topology = self.editor.document.topology
        nodes = [i for i in self.editor.selection if any(n.id == i for n in topology.nodes)]
        if len(nodes) != 1:
            self.show_message("Select one node to generate code for it")
            return
        result = open_codegen_dialog(self, topology, nodes[0])
        if isinstance(result, str):
            self.show_message(result, 6000)
        else:
            self.codegen_dialog: CodegenDialog | None = result

    def auto_layout(self) -> None:
        if self.scene.auto_layout():
            self.view.fit_all()
        else:
            self.show_message("The layout is already tidy")

    def select_all(self) -> None:
        topology = self.editor.document.topology
        self.editor.select([*(n.id for n in topology.nodes), *(b.id for b in topology.bindings)])

    def show_shortcuts(self) -> None:
        groups = [(name, [x for x in menu.actions() if not x.isSeparator()]) for name, menu in self._menus]
        ShortcutsDialog(self, groups).exec()

    def connect_to(self, kind: BackendKind) -> ConnectionsDialog:
        """Broker ▸ Connect…, opened on a profile of `kind` (the welcome page's Connect buttons)."""
        b = self.broker
        dialog = ConnectionsDialog(b.store, b.runner, self, session_passwords=b.session_passwords, kind=kind)
        dialog.setWindowTitle(f"Connect to {'Kafka' if kind is BackendKind.KAFKA else 'RabbitMQ'}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.connect_requested.connect(b.connect_profile)
        dialog.open()
        return dialog

    def show_about(self) -> None:
        show_about(self, getattr(self.broker, "_broker_thread", None))

    def prepare_screenshot(self) -> None:
        """Before an offscreen render: frame the whole topology."""
        if self._stack.currentWidget() is self.view:
            self.view.fit_all()

    # -- state ---------------------------------------------------------------------------------
    def _show_document(self) -> None:
        if self._stack.currentWidget() is not self.view:
            self._stack.setCurrentWidget(self.view)
        self.view.setFocus()

    def _on_document_opened(self) -> None:
        self._show_document()
        QTimer.singleShot(0, self, self.view.fit_all)  # after the view has its final size

    def _drop_view_shortcuts(self) -> None:
        """The view binds zoom keys itself; the View menu's actions bind the same keys window-wide, and
        two shortcuts on one key would make Qt fire neither ("ambiguous shortcut")."""
        taken = {k.toString() for action in self.action_set.all() for k in action.shortcuts()}
        for shortcut in self.view.findChildren(QShortcut):
            if shortcut.key().toString() in taken or shortcut.key() == QKeySequence("Ctrl+="):
                shortcut.setEnabled(False)

    def _on_snap_toggled(self, on: bool) -> None:
        self.scene.snap_to_grid = on
        self.settings.setValue("view/snap", on)

    def _on_document_replaced(self) -> None:
        self._update_title()
        self._update_counts()
        self._update_edit_actions()

    def _update_title(self, *_: object) -> None:
        dirty = self.editor.document.dirty
        name = self.files.display_name
        self.setWindowTitle(f"{name}[*] — mqstudio")
        self.setWindowModified(dirty)
        self.setWindowFilePath(str(self.path) if self.path else "")
        self._title_label.setText(f"{name} •" if dirty else name)
        self._title_label.setToolTip(
            (str(self.path) if self.path else "Not saved yet") + (" — unsaved changes" if dirty else "")
        )

    def _update_counts(self, *_: object) -> None:
        topology = self.editor.document.topology
        parts = [
            _plural(len(topology.exchanges), "exchange"),
            _plural(len(topology.queues), "queue"),
            _plural(len(topology.bindings), "binding"),
        ]
        kafka = len(topology.topics)
        if kafka:
            parts.append(_plural(kafka, "topic"))
        self._counts_label.setText(", ".join(parts))
        self.action_set.select_all.setEnabled(bool(topology.nodes))
        self._update_title()

    def _update_edit_actions(self, *_: object) -> None:
        selection = self.editor.selection
        topology = self.editor.document.topology
        nodes = [i for i in selection if i in topology and i not in {b.id for b in topology.bindings}]
        self.action_set.delete.setEnabled(bool(selection))
        self.action_set.cut.setEnabled(bool(nodes))
        self.action_set.copy.setEnabled(bool(nodes))
        self.action_set.rename.setEnabled(len(nodes) == 1)
        self.action_set.generate_code.setEnabled(len(nodes) == 1 and supports(topology, nodes[0]))

    def _refresh_recent(self) -> None:
        recent = self.files.recent_files()
        self.recent_menu.clear()
        for number, path in enumerate(recent, start=1):
            prefix = f"&{number} " if number < 10 else ""
            action = self.recent_menu.addAction(f"{prefix}{path.name}")
            action.setStatusTip(str(path))
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.files.open_path(p))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("&Clear Menu", self.files.clear_recent)
        self.recent_menu.setEnabled(bool(recent))
        self.welcome.set_recent(recent)

    def _stored_theme(self) -> Theme:
        value = str(self.settings.value("view/theme", Theme.SYSTEM.value))
        return Theme(value) if value in Theme._value2member_map_ else Theme.SYSTEM

    def _on_theme_chosen(self, action: QAction) -> None:
        theme = Theme(str(action.data()))
        self.settings.setValue("view/theme", theme.value)
        self.theme.set_theme(theme)

    def _on_theme_changed(self) -> None:
        self.scene.refresh_theme()
        self.palette_panel.refresh_icons()
        self.action_set.refresh_icons()
        self.welcome.refresh_icons()
        self.setWindowIcon(app_icon())

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            screen = QGuiApplication.primaryScreen()
            available = screen.availableGeometry() if screen is not None else None
            if available is not None and available.width() > 0:
                self.resize(
                    min(1440, int(available.width() * 0.85)), min(900, int(available.height() * 0.85))
                )
            else:
                self.resize(1280, 800)
        state = self.settings.value("window/state")
        if state is not None and self.restoreState(state, STATE_VERSION):
            self._default_bottom = False
        snap = self.settings.value("view/snap", True)
        self.action_set.snap.setChecked(snap not in (False, "false", "0", 0))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._default_bottom:  # the canvas gets most of the height, the bottom docks a quarter
            self._default_bottom = False
            self.resizeDocks([self.lint_dock], [round(self.height() * BOTTOM_SHARE)], Qt.Orientation.Vertical)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.files.maybe_save():
            event.ignore()
            return
        self.save_layout()
        self.files.shutdown()
        self.broker.shutdown()
        event.accept()



