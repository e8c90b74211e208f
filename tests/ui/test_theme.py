"""Themes: System/Light/Dark change the application palette and style sheet, icons follow the palette,
and the choice made in View ▸ Theme is remembered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from mqstudio.ui import theme as theme_module
from mqstudio.ui.mainwindow import MainWindow
from mqstudio.ui.resources import icon
from mqstudio.ui.theme import Theme, ThemeManager, dark_palette, is_dark, light_palette, render_style_sheet

PLACEHOLDER = re.compile(r"@[a-z_]+@")


@pytest.fixture
def app(qapp: QApplication) -> Iterator[QApplication]:
    palette, sheet = qapp.palette(), qapp.styleSheet()
    yield qapp
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)


def window_colour(app: QApplication) -> int:
    return app.palette().color(QPalette.ColorRole.Window).lightness()


def test_light_and_dark_switch_the_application_palette(app: QApplication) -> None:
    manager = ThemeManager(app)
    changes: list[None] = []
    manager.changed.connect(lambda: changes.append(None))
    manager.set_theme(Theme.DARK)
    assert manager.dark and window_colour(app) < 100
    assert not PLACEHOLDER.search(app.styleSheet()) and "QToolBar" in app.styleSheet()
    manager.set_theme(Theme.LIGHT)
    assert not manager.dark and window_colour(app) > 200
    assert len(changes) == 2


def test_system_follows_the_platform_colour_scheme(
    app: QApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = ThemeManager(app)
    monkeypatch.setattr(theme_module, "system_prefers_dark", lambda _app: True)
    manager.set_theme(Theme.SYSTEM)
    assert manager.dark
    monkeypatch.setattr(theme_module, "system_prefers_dark", lambda _app: False)
    manager._on_system_scheme_changed(app.styleHints().colorScheme())
    assert not manager.dark
    manager.set_theme(Theme.DARK)
    monkeypatch.setattr(theme_module, "system_prefers_dark", lambda _app: False)
    manager._on_system_scheme_changed(app.styleHints().colorScheme())
    assert manager.dark  # an explicit choice ignores the system


def test_both_palettes_keep_text_readable() -> None:
    for palette in (light_palette(), dark_palette()):
        for back, fore in (
            (QPalette.ColorRole.Window, QPalette.ColorRole.WindowText),
            (QPalette.ColorRole.Base, QPalette.ColorRole.Text),
            (QPalette.ColorRole.Button, QPalette.ColorRole.ButtonText),
        ):
            gap = abs(palette.color(back).lightness() - palette.color(fore).lightness())
            assert gap > 150, (back, fore)
    assert is_dark(dark_palette()) and not is_dark(light_palette())


def test_every_placeholder_of_the_style_sheet_is_filled() -> None:
    from mqstudio.ui.resources import style_sheet

    for palette in (light_palette(), dark_palette()):
        assert not PLACEHOLDER.search(render_style_sheet(style_sheet("app"), palette))


def test_monochrome_icons_are_drawn_in_the_palette_text_colour(app: QApplication) -> None:
    def ink(palette: QPalette) -> int:
        image = icon("document-open", palette).pixmap(24, 24).toImage()
        colours = [image.pixelColor(x, y) for x in range(24) for y in range(24)]
        opaque = [c for c in colours if c.alpha() > 200]
        assert opaque
        return sum(c.lightness() for c in opaque) // len(opaque)

    assert ink(dark_palette()) > 180
    assert ink(light_palette()) < 80


def test_the_theme_menu_switches_and_remembers(qtbot: object, app: QApplication, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    try:
        window.action_set.themes[Theme.DARK].trigger()
        assert window_colour(app) < 100
        assert settings.value("view/theme") == "dark"
        window.action_set.themes[Theme.LIGHT].trigger()
        assert window_colour(app) > 200
        window.action_set.themes[Theme.DARK].trigger()
    finally:
        window.close()
        window.deleteLater()
    again = MainWindow(settings=settings, autosave_dir=tmp_path / "autosave")
    try:
        assert again.theme.theme is Theme.DARK
        assert again.action_set.themes[Theme.DARK].isChecked()
        assert window_colour(app) < 100
    finally:
        again.close()
        again.deleteLater()
