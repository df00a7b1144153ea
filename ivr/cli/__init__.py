"""The `ivr` command: one module per command group, each a thin layer over the packages below."""

from ivr.cli.main import main

__all__ = ["main"]
