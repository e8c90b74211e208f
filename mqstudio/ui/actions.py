"""The window's QActions, grouped by menu: text, shortcut, icon, tooltip and status tip in one place.

Owns: `WindowActions`. It only creates actions; the window and its controllers connect them, so
this module knows nothing of files, the canvas or panels. Icons are our SVGs (see `resources.icon`),
redrawn by `refresh_icons()` when the theme changes. Imports PySide6 and mqstudio.ui only.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoStack

from mqstudio.ui.resources import icon
from mqstudio.ui.theme import Theme

_ICON_PROPERTY = "mqstudio_icon"
Key = QKeySequence.StandardKey


class WindowActions(QObject):
    def __init__(self, parent: QObject, undo_stack: QUndoStack) -> None:
        super().__init__(parent)
        self._all: list[QAction] = []
        act = self._make

        # File
        self.new = act("&New", "document-new", Key.New, "Start a new, empty project")
        self.open = act("&Open…", "document-open", Key.Open, "Open a project or RabbitMQ definitions file")
        self.save = act("&Save", "document-save", Key.Save, "Save the project")
        self.save_as = act("Save &As…", "document-save-as", Key.SaveAs, "Save the project under a new name")
        self.import_definitions = act(
            "&Import Definitions…", "definitions-import", "Ctrl+Shift+I",
            "Open a RabbitMQ definitions export (rabbitmqctl export_definitions, management API) "
            "as a project",
        )
        self.export_definitions = act(
            "&Export Definitions…", "definitions-export", "Ctrl+Shift+E",
            "Write the RabbitMQ objects as definitions JSON, cluster-wide or for one vhost",
        )
        self.export_image = act(
            "Export &Image…", "image-export", None, "Save the canvas as a PNG or SVG image"
        )
        self.quit = act("&Quit", None, Key.Quit, "Quit mqstudio")
        if self.quit.shortcut().isEmpty():
            self.quit.setShortcut(QKeySequence("Ctrl+Q"))

        # Edit: undo/redo texts follow the stack ("Undo Add queue").
        self.undo = undo_stack.createUndoAction(self, "&Undo")
        self.undo.setShortcuts(Key.Undo)
        self.redo = undo_stack.createRedoAction(self, "&Redo")
        self.redo.setShortcuts(Key.Redo)
        for action, name, tip in (
            (self.undo, "edit-undo", "Undo the last change"),
            (self.redo, "edit-redo", "Redo the last undone change"),
        ):
            action.setProperty(_ICON_PROPERTY, name)
            action.setIcon(icon(name))
            action.setStatusTip(tip)
            self._all.append(action)
        self.cut = act("Cu&t", "edit-cut", Key.Cut, "Cut the selected nodes")
        self.copy = act("&Copy", "edit-copy", Key.Copy, "Copy the selected nodes")
        self.paste = act("&Paste", "edit-paste", Key.Paste, "Paste nodes from the clipboard")
        self.delete = act("&Delete", "edit-delete", Key.Delete, "Delete the selection (and its bindings)")
        self.select_all = act("Select &All", "select-all", Key.SelectAll, "Select every node and binding")
        self.rename = act("&Rename", "edit-rename", "F2", "Rename the selected node")
        self.generate_code = act(
            "&Generate Code…", "code-generate", "Ctrl+Shift+G",
            "Write ready-to-run client code (pika, aio-pika, kafka-python, Spring) for the selected node",
        )

        # View
        self.zoom_in = act("Zoom &In", "zoom-in", Key.ZoomIn, "Zoom in on the canvas")
        self.zoom_out = act("Zoom &Out", "zoom-out", Key.ZoomOut, "Zoom out of the canvas")
        self.zoom_reset = act("&Reset Zoom", "zoom-original", "Ctrl+0", "Show the canvas at 100 %")
        self.fit = act("&Fit to Window", "zoom-fit", "Ctrl+1", "Zoom to show the whole topology")
        self.snap = act("&Snap to Grid", "snap-grid", None, "Align dragged nodes to the grid")
        self.snap.setCheckable(True)
        self.snap.setChecked(True)
        self.auto_layout = act("&Auto Layout", "auto-layout", "Ctrl+L", "Arrange the nodes left to right")
        self.theme_group = QActionGroup(self)
        self.themes: dict[Theme, QAction] = {}
        for theme in Theme:
            action = act(theme.label, None, None, f"Use the {theme.value} colour theme")
            action.setCheckable(True)
            action.setData(theme.value)
            self.theme_group.addAction(action)
            self.themes[theme] = action

        # Broker (the welcome page): the Connect dialog opened on a profile of that kind
        self.connect_rabbitmq = act(
            "Connect to &RabbitMQ…", "exchange-direct", None,
            "Choose or add a RabbitMQ connection, then connect",
        )
        self.connect_kafka = act(
            "Connect to &Kafka…", "kafka-topic", None, "Choose or add a Kafka connection, then connect"
        )

        # Help
        self.shortcuts = act("&Keyboard Shortcuts", "keyboard", "Ctrl+/", "List every keyboard shortcut")
        self.about = act("&About mqstudio", "help-about", None, "Version, Qt and PySide versions, licence")
        self.about.setMenuRole(QAction.MenuRole.AboutRole)
        self.quit.setMenuRole(QAction.MenuRole.QuitRole)

    def _make(
        self,
        text: str,
        icon_name: str | None,
        shortcut: QKeySequence.StandardKey | str | None,
        tip: str,
    ) -> QAction:
        action = QAction(text, self)
        if isinstance(shortcut, QKeySequence.StandardKey):
            action.setShortcuts(shortcut)
        elif shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if icon_name:
            action.setProperty(_ICON_PROPERTY, icon_name)
            action.setIcon(icon(icon_name))
        action.setStatusTip(tip)
        plain = text.replace("&", "").removesuffix("…")
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{plain} ({keys})" if keys else plain)
        self._all.append(action)
        return action

    def all(self) -> list[QAction]:
        return list(self._all)

    def refresh_icons(self) -> None:
        """Redraw every icon in the current palette's colours (after a theme change)."""
        for action in self._all:
            name = action.property(_ICON_PROPERTY)
            if name:
                action.setIcon(icon(str(name)))
