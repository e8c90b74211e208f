"""Dockable panels of the main window (inspector, lint problems, route tracer, live views).

Each panel takes the shared `DocumentEditor`, mirrors the model and changes it only through
`editor.execute(command)`. Panels import PySide6, mqstudio.core, mqstudio.ops and
mqstudio.backends.base only (never mqstudio.broker or a concrete backend).
"""
