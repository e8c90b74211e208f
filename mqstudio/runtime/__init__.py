"""Qt-free concurrency: worker threads and jobs (`jobs`), backend thread-confinement with reconnects
(`jobs.BackendSession`), and the embedded broker's event-loop thread (`brokerthread`).

Must not import Qt, `mqstudio.ui`, `mqstudio.app` or `mqstudio.cli`: the UI reaches these objects
through `mqstudio.ui.qtbridge`, which re-emits their callbacks as queued Qt signals.
"""
