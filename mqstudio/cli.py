"""Command line entry point: no sub-command opens the GUI; sub-commands run without Qt.

Owns: argument parsing and dispatch. Qt is imported lazily, only by `_run_gui` (through
`mqstudio.app`), so `--version`, `--help` and every sub-command work without a display.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mqstudio import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqstudio",
        description="A desktop studio for message brokers. Without a sub-command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"mqstudio {__version__}")
    parser.add_argument(
        "--open", dest="file", metavar="FILE", help="a project (.mqs.json) or definitions file to open"
    )
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def _run_gui(args: argparse.Namespace) -> int:
    from mqstudio.app import run_gui  # lazy: Qt only when the window is wanted

    return run_gui(file=args.file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        return _run_gui(args)
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover - parser.error exits
