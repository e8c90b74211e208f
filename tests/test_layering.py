"""core and broker import only the standard library (and, for broker, nothing of core).

import-linter forbids a named list of packages; this test closes the gap by allowing only
`sys.stdlib_module_names` plus the package's own allowed siblings, so a new third-party import fails.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mqstudio"
ALLOWED = {
    "core": {"mqstudio.core"},
    "broker": {"mqstudio.broker"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_stdlib_and_itself(package: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if any(module == own or module.startswith(own + ".") for own in ALLOWED[package]):
                continue
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: import {module}")
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_a_third_party_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom pika import BlockingConnection\nfrom . import sibling\n")
    assert [m for _, m in _imports(sample)] == ["os", "pika"]
