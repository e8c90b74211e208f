"""Icons, style sheets and example projects, found in a source checkout or inside the installed wheel.

Owns: `resources_dir()` and the small loaders built on it (`icon`, `style_sheet`, `examples`). The wheel
carries the repository's ``resources/`` as the package directory ``mqstudio/resources`` (pyproject's
``force-include``); a source checkout or an editable install has it beside the package. Monochrome icons
draw with ``currentColor``, which Qt's SVG renderer does not know, so `icon()` substitutes the palette's
text colour and renders pixmaps itself: the icons follow the light/dark theme. Imports PySide6 only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

import mqstudio

_PACKAGE = Path(mqstudio.__file__).resolve().parent
_ICON_SIZES = (16, 20, 24, 32, 48)


class ResourcesMissingError(RuntimeError):
    """Neither the installed package nor the checkout holds the resources: a broken install."""


@cache
def resources_dir() -> Path:
    """The directory holding ``icons/``, ``styles/`` and ``examples/``."""
    for candidate in (_PACKAGE / "resources", _PACKAGE.parent / "resources"):
        if (candidate / "icons").is_dir():
            return candidate
    raise ResourcesMissingError(
        f"mqstudio's resources are missing (looked in {_PACKAGE / 'resources'} and "
        f"{_PACKAGE.parent / 'resources'}); reinstall mqstudio"
    )


def icon_path(name: str) -> Path:
    return resources_dir() / "icons" / f"{name}.svg"


def _svg_text(name: str) -> str:
    return icon_path(name).read_text(encoding="utf-8")


def _render(svg: str, size: int, ratio: float) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    pixmap = QPixmap(round(size * ratio), round(size * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pixmap


def _palette() -> QPalette:
    app = QApplication.instance()
    return app.palette() if isinstance(app, QApplication) else QPalette()


def icon(name: str, palette: QPalette | None = None) -> QIcon:
    """The named SVG icon, drawn in `palette`'s text colours (normal and disabled) at common sizes."""
    pal = palette if palette is not None else _palette()
    app = QApplication.instance()
    ratio = max(1.0, app.devicePixelRatio()) if isinstance(app, QApplication) else 1.0
    text = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText).name()
    back = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Window).name()
    return QIcon(_drawn(name, text, back, ratio))


@cache
def _drawn(name: str, text: str, back: str, ratio: float) -> QIcon:
    pal = QPalette()
    pal.setColor(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText, QColor(text))
    pal.setColor(QPalette.ColorGroup.Active, QPalette.ColorRole.Window, QColor(back))
    svg = _svg_text(name)
    result = QIcon()
    if "currentColor" not in svg:  # a coloured icon: Qt derives the disabled look itself
        for size in _ICON_SIZES:
            result.addPixmap(_render(svg, size, ratio))
        return result
    states = (
        (QIcon.Mode.Normal, pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)),
        (QIcon.Mode.Disabled, _disabled_colour(pal)),
    )
    for mode, colour in states:
        text = svg.replace("currentColor", colour.name())
        for size in _ICON_SIZES:
            result.addPixmap(_render(text, size, ratio), mode)
    return result


def _disabled_colour(pal: QPalette) -> QColor:
    """Text blended 40 % onto the window colour: SVG colours here must be opaque ``#rrggbb``."""
    text = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    back = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Window)
    mix = 0.4
    return QColor(
        round(back.red() + (text.red() - back.red()) * mix),
        round(back.green() + (text.green() - back.green()) * mix),
        round(back.blue() + (text.blue() - back.blue()) * mix),
    )


def app_icon() -> QIcon:
    return icon("mqstudio")


def style_sheet(name: str) -> str:
    return (resources_dir() / "styles" / f"{name}.qss").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Example:
    """A bundled example project: its file and the title from its metadata."""

    path: Path
    title: str
    description: str


def examples() -> list[Example]:
    """Bundled example projects, by title."""
    found: list[Example] = []
    for path in sorted((resources_dir() / "examples").glob("*.mqs.json")):
        title, description = path.name.removesuffix(".mqs.json").replace("-", " ").capitalize(), ""
        try:
            metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata") or {}
        except (OSError, ValueError, AttributeError):
            metadata = {}
        if isinstance(metadata, dict):
            title = str(metadata.get("title") or title)
            description = str(metadata.get("description") or "")
        found.append(Example(path, title, description))
    return sorted(found, key=lambda example: example.title.lower())
