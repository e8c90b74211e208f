"""Open any file mqstudio understands: a project (`mqstudio/1`) or RabbitMQ definitions JSON.

Owns: format detection and dispatch for readers (the GUI's File ▸ Open, the CLI). Stdlib only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from mqstudio.core import fileformat
from mqstudio.core.definitions import detect_format, import_definitions
from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import DEFAULT_VHOST

Format = Literal["project", "definitions"]


def build_document(data: Any, source: str, vhost: str = DEFAULT_VHOST) -> tuple[Format, TopologyDocument]:
    """Build a document from parsed JSON, or raise FileFormatError listing every problem."""
    kind = detect_format(data, source)
    if kind == "project":
        return kind, fileformat.from_data(data, source, source)
    return kind, import_definitions(data, source, vhost=vhost)


def load_any(path: str | os.PathLike[str], vhost: str = DEFAULT_VHOST) -> TopologyDocument:
    """Read and build a file. Raises OSError when unreadable, FileFormatError when invalid."""
    source = os.fspath(path)
    data = fileformat.parse_json(Path(path).read_bytes(), source)
    return build_document(data, source, vhost)[1]
