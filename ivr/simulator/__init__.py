"""A faithful local stand-in for Twilio: runs any TwiML app's webhooks, no account, no network."""

from .call import Call
from .line import ANSWERED_BY, DIAL_OUTCOMES, QUEUE_RESULTS, UNANSWERED, Event, Exchange, SimulatorError
from .simulator import Simulator, parse_at

__all__ = [
    "ANSWERED_BY",
    "DIAL_OUTCOMES",
    "QUEUE_RESULTS",
    "UNANSWERED",
    "Call",
    "Event",
    "Exchange",
    "Simulator",
    "SimulatorError",
    "parse_at",
]
