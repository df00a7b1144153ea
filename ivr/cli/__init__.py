"""The `ivr` command: one module per command group, each a thin layer over the packages below."""

from ivr.cli.core import main

__all__ = ["main"]
