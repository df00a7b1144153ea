"""A faithful local stand-in for Twilio: runs any TwiML app's webhooks, no account, no network."""

from .call import DIAL_OUTCOMES, Call, Event, Exchange, SimulatorError
from .simulator import Simulator, parse_at

__all__ = ["DIAL_OUTCOMES", "Call", "Event", "Exchange", "Simulator", "SimulatorError", "parse_at"]
