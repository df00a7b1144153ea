"""Declarative voice menus on Twilio, with a faithful local simulator.

The public surface is re-exported here and imported on first use, so that `import ivr` (and the
commands that need only the flow, such as `ivr check`) does not load Flask or the database layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ivr.errors import ConfigError, FlowError, IvrError

if TYPE_CHECKING:
    from ivr.flow.loader import load as load_flow
    from ivr.web.app import create_app

__all__ = ["ConfigError", "FlowError", "IvrError", "create_app", "load_flow"]
__version__ = "0.1.0"

_LAZY = {"create_app": ("ivr.web.app", "create_app"), "load_flow": ("ivr.flow.loader", "load")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ivr' has no attribute {name!r}")
