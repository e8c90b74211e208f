"""The error codegen raises for a selection it cannot write code for. Stdlib only."""

from __future__ import annotations


class CodegenError(ValueError):
    """The selection has no code to generate (nothing selected, a producer without a target …) or a
    value cannot be written as source. The message says which and why."""
