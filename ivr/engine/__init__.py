"""Stepping a call: `step(flow, state, input, now)` returns a `Turn` (what to say, then a Gather,
Dial or End, and effects as data), with the understanding of keys and speech, Russian words for
prompts, the seal of call state and TwiML rendering beside it."""

from ivr.engine.core import call_back, lost, repeat, resume, start, step
from ivr.engine.turns import (
    CallState,
    Closures,
    Dial,
    Effect,
    EffectOutcome,
    End,
    Gather,
    Input,
    RequestEffect,
    SpendEffect,
    Turn,
)

__all__ = [
    "CallState",
    "Closures",
    "Dial",
    "Effect",
    "EffectOutcome",
    "End",
    "Gather",
    "Input",
    "RequestEffect",
    "SpendEffect",
    "Turn",
    "call_back",
    "lost",
    "repeat",
    "resume",
    "start",
    "step",
]
