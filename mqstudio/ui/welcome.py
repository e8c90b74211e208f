"""The start page shown before a project is opened: quick actions, bundled examples, recent files.

Owns: `WelcomePage`. It shows the window's actions as buttons (start: new, open, import; connect:
RabbitMQ, Kafka; help: keyboard shortcuts, about) and the examples and recent files as lists of links
(a click or Enter picks one), and emits what the user picked; it opens nothing itself. Imports PySide6
and mqstudio.ui only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QElapsedTimer, QSize, Qt, Signal, SignalInstance
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mqstudio.ui.resources import Example, app_icon, icon

_DATA = Qt.ItemDataRole.UserRole
#: (label, action): the label overrides the action's menu text ("New" → "New Topology").
Entry = tuple[str, QAction]


def _label(entry: Entry | QAction) -> tuple[str, QAction]:
    if isinstance(entry, QAction):
        return entry.iconText().replace("&", ""), entry
    return entry


class WelcomePage(QWidget):
    """Signals ``example_chosen(object)`` with an `Example`, ``recent_chosen(object)`` with a `Path`.

    `actions` become the Start buttons, `connect` the Connect buttons, `links` small help buttons
    under them (their shortcut shown). Each button triggers its action.
    """

    example_chosen = Signal(object)
    recent_chosen = Signal(object)

    def __init__(
        self,
        actions: Sequence[Entry | QAction],
        examples: list[Example],
        parent: QWidget | None = None,
        *,
        connect: Sequence[Entry | QAction] = (),
        links: Sequence[Entry | QAction] = (),
    ) -> None:
        super().__init__(parent)
        self.setObjectName("WelcomePage")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._buttons: list[tuple[QAbstractButton, QAction]] = []

        logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(QSize(56, 56), self.devicePixelRatioF()))
        title = QLabel("mqstudio", self)
        title.setObjectName("WelcomeTitle")
        subtitle = QLabel("Design, run, watch and fix RabbitMQ and Kafka topologies.", self)
        subtitle.setObjectName("WelcomeSubtitle")
        heading = QVBoxLayout()
        heading.setSpacing(2)
        heading.addWidget(title)
        heading.addWidget(subtitle)
        top = QHBoxLayout()
        top.setSpacing(16)
        top.addWidget(logo)
        top.addLayout(heading, 1)
        help_links = QVBoxLayout()  # top right, out of the way of the lists
        help_links.setSpacing(0)
        for entry in links:
            help_links.addWidget(self._link(*_label(entry)), 0, Qt.AlignmentFlag.AlignRight)
        top.addLayout(help_links)

        left = QVBoxLayout()
        left.setSpacing(6)
        left.addWidget(self._section("Start"))
        for entry in actions:
            left.addWidget(self._button(*_label(entry)))
        if connect:
            left.addSpacing(6)
            left.addWidget(self._section("Connect"))
            for entry in connect:
                left.addWidget(self._button(*_label(entry)))
        left.addStretch(1)

        self.examples = self._list()
        for example in examples:
            item = QListWidgetItem(example.title, self.examples)
            item.setIcon(app_icon())
            item.setData(_DATA, example)
            item.setToolTip(example.description)
        self._open_on_click(self.examples, self.example_chosen)
        self._fit_height(self.examples)
        self.recent = self._list()
        self._open_on_click(self.recent, self.recent_chosen)
        self._recent_hint = QLabel("Projects you open or save appear here.", self)
        self._recent_hint.setObjectName("SectionHint")
        self._recent_hint.setWordWrap(True)

        right = QVBoxLayout()
        right.setSpacing(6)
        right.addWidget(self._section("Open an Example"))
        right.addWidget(self.examples)
        right.addSpacing(10)
        right.addWidget(self._section("Recent Projects"))
        right.addWidget(self._recent_hint)
        right.addWidget(self.recent)
        right.addStretch(1)

        body = QHBoxLayout()
        body.setSpacing(32)
        body.addLayout(left)
        body.addLayout(right, 1)

        content = QVBoxLayout()
        content.setSpacing(20)
        content.addLayout(top)
        content.addLayout(body, 1)
        frame = QWidget(self)
        frame.setLayout(content)
        frame.setMaximumWidth(860)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(24, 24, 24, 16)
        outer.addStretch(0)  # the frame takes the width up to its maximum, then the margins grow
        outer.addWidget(frame, 1)
        outer.addStretch(0)

    def _section(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setObjectName("SectionTitle")
        return label

    def _button(self, text: str, action: QAction) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName("WelcomeButton")
        button.setIcon(action.icon())
        button.setIconSize(QSize(20, 20))
        button.setToolTip(action.statusTip())
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.setMinimumWidth(200)
        button.clicked.connect(action.trigger)
        self._buttons.append((button, action))
        return button

    def _link(self, text: str, action: QAction) -> QToolButton:
        button = QToolButton(self)
        button.setObjectName("WelcomeLink")
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        button.setText(f"{text}  ({keys})" if keys else text)
        button.setIcon(action.icon())
        button.setIconSize(QSize(16, 16))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setAutoRaise(True)
        button.setToolTip(action.statusTip())
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(action.trigger)
        self._buttons.append((button, action))
        return button

    def _list(self) -> QListWidget:
        widget = QListWidget(self)
        widget.setObjectName("WelcomeList")
        widget.setIconSize(QSize(20, 20))
        widget.setFrameShape(QListWidget.Shape.NoFrame)
        widget.setCursor(Qt.CursorShape.PointingHandCursor)
        widget.setMinimumWidth(260)
        widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        widget.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        widget.setTextElideMode(Qt.TextElideMode.ElideRight)
        widget.setWordWrap(False)
        return widget

    @staticmethod
    def _open_on_click(widget: QListWidget, chosen: SignalInstance) -> None:
        """A list of links: one click opens an item, and so do Enter and Return (itemActivated). An
        activation right after a click on the same item (the second click of a double-click, or a style
        that activates on a single click) is that click's, not a second opening."""
        clock = QElapsedTimer()
        last: list[QListWidgetItem | None] = [None]

        def clicked(item: QListWidgetItem) -> None:
            last[0] = item
            clock.start()
            chosen.emit(item.data(_DATA))

        def activated(item: QListWidgetItem) -> None:
            if last[0] is item and clock.isValid() and clock.elapsed() < QApplication.doubleClickInterval():
                return
            chosen.emit(item.data(_DATA))

        widget.itemClicked.connect(clicked)
        widget.itemActivated.connect(activated)

    @staticmethod
    def _fit_height(widget: QListWidget, most: int = 10) -> None:
        """Tall enough for every row (up to `most`): a page of a few items should never scroll."""
        rows = min(widget.count(), most)
        row = widget.sizeHintForRow(0) if widget.count() else 0
        widget.setFixedHeight(max(row * rows + 2 * widget.frameWidth() + 4, 40))

    def set_recent(self, paths: list[Path]) -> None:
        self.recent.clear()
        for path in paths:
            item = QListWidgetItem(path.name, self.recent)
            item.setIcon(icon("document-open"))
            item.setToolTip(str(path))
            item.setData(_DATA, path)
            item.setText(f"{path.name}  —  {_shorten(path.parent)}")
        self._fit_height(self.recent)
        self._recent_hint.setVisible(not paths)
        self.recent.setVisible(bool(paths))

    def buttons(self) -> list[tuple[QAbstractButton, QAction]]:
        """Every button with the action it triggers (tests, theming)."""
        return list(self._buttons)

    def button_for(self, action: QAction) -> QAbstractButton | None:
        return next((button for button, a in self._buttons if a is action), None)

    def refresh_icons(self) -> None:
        for button, action in self._buttons:
            button.setIcon(action.icon())
        for row in range(self.recent.count()):
            item = self.recent.item(row)
            if item is not None:
                item.setIcon(icon("document-open"))


def _shorten(folder: Path) -> str:
    home = Path.home()
    try:
        return f"~/{folder.relative_to(home)}" if folder != home else "~"
    except ValueError:
        return str(folder)
