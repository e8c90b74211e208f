"""User operations built on backends, Qt-free: route tracing, replay, purge, export, traffic.

Must not import `mqstudio.ui`, `mqstudio.app`, `mqstudio.cli` or Qt; the GUI calls these (through
`runtime` when they block) and shows their plain-data results.
"""
