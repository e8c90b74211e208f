"""Dialogs of the Broker menu: connection profiles (`connections`) and plan-and-apply (`apply`).

Each dialog runs its network work on a `mqstudio.runtime` worker and hears back through
`mqstudio.ui.qtbridge`; none blocks the GUI thread. Imports PySide6, mqstudio.core, mqstudio.runtime
and mqstudio.backends.base only.
"""
