"""The start page shown before a project is opened: quick actions, bundled examples, recent files.

Owns: `WelcomePage`. It shows what the file controller offers and emits what the user picked; it opens
nothing itself. Imports PySide6 and mqstudio.ui only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mqstudio.ui.resources import Example, app_icon, icon

_DATA = Qt.ItemDataRole.UserRole


class WelcomePage(QWidget):
    """Signals ``example_chosen(object)`` with an `Example`, ``recent_chosen(object)`` with a `Path`."""

    example_chosen = Signal(object)
    recent_chosen = Signal(object)

    def __init__(
        self, actions: list[QAction], examples: list[Example], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("WelcomePage")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._actions = actions

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

        self._buttons: list[tuple[QPushButton, QAction]] = []
        start = QVBoxLayout()
        start.setSpacing(8)
        start.addWidget(self._section("Start"))
        for action in actions:
            button = QPushButton(action.iconText().replace("&", ""), self)
            button.setObjectName("WelcomeButton")
            button.setIcon(action.icon())
            button.setIconSize(QSize(20, 20))
            button.setToolTip(action.statusTip())
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(action.trigger)
            start.addWidget(button)
            self._buttons.append((button, action))
        start.addStretch(1)

        self.examples = self._list()
        for example in examples:
            item = QListWidgetItem(example.title, self.examples)
            item.setIcon(app_icon())
            item.setData(_DATA, example)
            item.setToolTip(example.description)
        self.examples.itemActivated.connect(lambda item: self.example_chosen.emit(item.data(_DATA)))
        self.recent = self._list()
        self.recent.itemActivated.connect(lambda item: self.recent_chosen.emit(item.data(_DATA)))
        self._recent_hint = QLabel("Projects you open or save appear here.", self)
        self._recent_hint.setObjectName("SectionHint")
        self._recent_hint.setWordWrap(True)

        lists = QGridLayout()
        lists.setHorizontalSpacing(24)
        lists.setVerticalSpacing(6)
        lists.addWidget(self._section("Examples"), 0, 0)
        lists.addWidget(self.examples, 1, 0)
        lists.addWidget(self._section("Recent Projects"), 0, 1)
        recent_box = QVBoxLayout()
        recent_box.setContentsMargins(0, 0, 0, 0)
        recent_box.addWidget(self._recent_hint, 0, Qt.AlignmentFlag.AlignTop)
        recent_box.addWidget(self.recent, 1)
        recent_box.addStretch(0)
        lists.addLayout(recent_box, 1, 1, Qt.AlignmentFlag.AlignTop)
        lists.setColumnStretch(0, 3)
        lists.setColumnStretch(1, 2)

        body = QHBoxLayout()
        body.setSpacing(28)
        body.addLayout(start)
        body.addLayout(lists, 1)

        content = QVBoxLayout()
        content.setSpacing(28)
        content.addLayout(top)
        content.addLayout(body, 1)
        frame = QWidget(self)
        frame.setLayout(content)
        frame.setMaximumWidth(920)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(32, 36, 32, 24)
        outer.addStretch(1)
        outer.addWidget(frame, 8)
        outer.addStretch(1)

    def _section(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setObjectName("SectionTitle")
        return label

    def _list(self) -> QListWidget:
        widget = QListWidget(self)
        widget.setObjectName("WelcomeList")
        widget.setIconSize(QSize(20, 20))
        widget.setFrameShape(QListWidget.Shape.NoFrame)
        widget.setCursor(Qt.CursorShape.PointingHandCursor)
        widget.setMinimumSize(180, 160)
        widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        widget.setTextElideMode(Qt.TextElideMode.ElideRight)
        widget.setWordWrap(False)
        return widget

    def set_recent(self, paths: list[Path]) -> None:
        self.recent.clear()
        for path in paths:
            item = QListWidgetItem(path.name, self.recent)
            item.setIcon(icon("document-open"))
            item.setToolTip(str(path))
            item.setData(_DATA, path)
            item.setText(f"{path.name}\n{_shorten(path.parent)}")
        self._recent_hint.setVisible(not paths)
        self.recent.setVisible(bool(paths))

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
