"""The `ivr` command: one module per command group, each a thin layer over the packages below.

`run` is the console script: Ctrl-C anywhere, even while the commands are still being imported,
ends it at once with exit status 130 and one line, never a traceback. `main` is the click group
(for click's CliRunner and for embedding), imported on first use.
"""

from __future__ import annotations

import sys
from typing import Any

INTERRUPTED = 130  # 128 + SIGINT, as shells report a process Ctrl-C stopped


def run() -> None:
    try:
        from ivr.cli.group import main

        main()
    except KeyboardInterrupt:
        interrupted()


def interrupted() -> None:
    """Say the command was interrupted, and exit 130."""
    try:
        sys.stderr.write("ivr: interrupted\n")
        sys.stderr.flush()
    finally:
        sys.exit(INTERRUPTED)


def __getattr__(name: str) -> Any:
    if name == "main":
        from ivr.cli.group import main

        return main
    raise AttributeError(f"module 'ivr.cli' has no attribute {name!r}")


__all__ = ["main", "run"]
