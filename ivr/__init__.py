"""Declarative voice menus on Twilio, with a faithful local simulator."""

from .app import create_app
from .errors import ConfigError, FlowError, IvrError
from .flows import load as load_flow

__all__ = ["ConfigError", "FlowError", "IvrError", "create_app", "load_flow"]
__version__ = "0.1.0"
