"""Literals for generated source: Python values that survive any name, and YAML scalars.

Owns: `py()` (one-line Python literal), `py_block()` (a dict or list laid out one item a line),
`yaml_scalar()` and `yaml_key()`. Names from a design can hold quotes, backslashes, newlines or any
Unicode; everything written into generated code goes through here so that it can never break out of
its literal. Stdlib only.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mqstudio.core.codegen.errors import CodegenError


def py(value: Any) -> str:
    """`value` as a Python expression on one line; `repr()` for strings (it escapes every character
    that is not printable, so no newline, quote or line separator can end the literal early)."""
    if value is None or isinstance(value, bool | int | str | bytes):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, list | tuple):
        items = ", ".join(py(v) for v in value)
        return f"[{items}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {py(v)}" for k, v in value.items()) + "}"
    raise CodegenError(f"cannot write a {type(value).__name__} value ({value!r}) as Python source")


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise CodegenError(f"argument names must be strings, not {type(key).__name__} ({key!r})")
    return repr(key)


def py_block(value: dict[str, Any] | list[Any], indent: int) -> str:
    """A dict or list literal with one item a line (closing bracket at `indent` spaces); ``{}`` when
    empty. Nested values stay on their item's line."""
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        lines = [f"{pad}{_key(k)}: {py(v)}," for k, v in value.items()]
        return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
    lines = [f"{pad}{py(v)}," for v in value]
    return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"


# -- YAML -------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]*")
# YAML 1.1 reads these plain words as booleans or null: never leave them unquoted.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "~"}


def _yaml_char(ch: str) -> str:
    code = ord(ch)
    if ch == '"':
        return '\\"'
    if ch == "\\":
        return "\\\\"
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    printable = (
        0x20 <= code <= 0x7E
        or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029))
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or code >= 0x10000
    )
    if printable:
        return ch
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def yaml_quoted(text: str) -> str:
    """`text` as a YAML double-quoted scalar: quotes, backslashes and every character YAML does not
    allow raw (controls, line and paragraph separators, BOM, lone surrogates) are escaped."""
    return '"' + "".join(_yaml_char(ch) for ch in text) + '"'


def yaml_scalar(value: Any) -> str:
    """A YAML scalar: booleans and integers plain, strings plain only when unmistakable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
            return value
        return yaml_quoted(value)
    raise CodegenError(f"cannot write a {type(value).__name__} value ({value!r}) as YAML")


def yaml_key(key: str) -> str:
    return key if _PLAIN.fullmatch(key) and key.lower() not in _RESERVED else yaml_quoted(key)


def yaml_document(tree: dict[str, Any], header: list[str] | None = None) -> str:
    """Nested dicts as a block-style YAML document; `header` lines become ``#`` comments (each line
    passed through `yaml_comment`)."""
    lines = [f"# {yaml_comment(line)}".rstrip() for line in header or []]
    _emit(tree, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(tree: dict[str, Any], depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    for key, value in tree.items():
        if isinstance(value, dict):
            if not value:
                continue
            lines.append(f"{pad}{yaml_key(key)}:")
            _emit(value, depth + 1, lines)
        else:
            lines.append(f"{pad}{yaml_key(key)}: {yaml_scalar(value)}")


def yaml_comment(text: str) -> str:
    """`text` safe inside a ``#`` comment: one line, non-printable characters escaped."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
