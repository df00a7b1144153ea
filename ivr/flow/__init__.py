"""The flow file: its shape (one pydantic definition per node kind), loading into a validated,
frozen model, the checks that name file, line and node, and the graph."""

from ivr.flow.loader import BUNDLED_FLOW, load
from ivr.flow.model import Flow

__all__ = ["BUNDLED_FLOW", "Flow", "load"]
