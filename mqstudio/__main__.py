"""`python -m mqstudio`: the same entry point as the `mqstudio` console script."""

from __future__ import annotations

import sys

from mqstudio.cli import main

if __name__ == "__main__":
    sys.exit(main())
