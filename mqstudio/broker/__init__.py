"""Qt-free, synchronous, deterministic embedded broker engine (stdlib only; does not import core)."""
