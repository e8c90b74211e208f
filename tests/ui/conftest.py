"""UI test process set-up: cyclic garbage is collected on the GUI thread only (as in the app)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication

from mqstudio.ui import gcguard


@pytest.fixture(scope="session", autouse=True)
def _gui_thread_garbage_collection(qapp: QApplication) -> Iterator[gcguard.GuiGarbageCollector]:
    collector = gcguard.install(qapp)
    yield collector
    collector.uninstall()


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test(
    _gui_thread_garbage_collection: gcguard.GuiGarbageCollector,
) -> Iterator[None]:
    """A test's dead cycles go on the GUI thread before the next test's worker threads start."""
    yield
    _gui_thread_garbage_collection.check()
