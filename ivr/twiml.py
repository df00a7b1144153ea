"""Turn -> TwiML, only through the twilio library's VoiceResponse."""

from __future__ import annotations

from functools import lru_cache
from xml.sax.saxutils import escape

from twilio.twiml.voice_response import Dial as DialVerb
from twilio.twiml.voice_response import VoiceResponse

from .engine import CallState, Dial, End, Gather, Turn
from .model import Settings

_NO_STATE = CallState(node="")


def _dial_target(dial: DialVerb, target: str) -> None:
    if target.startswith("sip:"):
        dial.sip(target)
    elif target.startswith("client:"):
        dial.client(target.removeprefix("client:"))
    else:
        dial.number(target)


def render(turn: Turn, settings: Settings, action_url: str) -> str:
    """The TwiML document for a turn; every Gather and Dial comes back to `action_url`."""
    response = VoiceResponse()
    voice = {"voice": settings.voice, "language": settings.language}
    for text in turn.say:
        response.say(text, **voice)
    action = turn.action
    if isinstance(action, Gather):
        speech = "speech" in action.input
        gather = response.gather(
            action=action_url,
            method="POST",
            input=action.input,
            timeout=action.timeout,
            num_digits=action.num_digits,
            finish_on_key=action.finish_on_key if "dtmf" in action.input else None,
            action_on_empty_result=True,
            language=settings.language if speech else None,
            hints=", ".join(action.hints) if speech and action.hints else None,
            # A number, not "auto": Twilio refuses "auto" with some speech models (warning 13335).
            # Longer for free speech (a name, complaints) than for a menu keyword.
            speech_timeout=(3 if action.input == "speech" else 2) if speech else None,
        )
        for text in action.prompt:
            gather.say(text, **voice)
        # Belt and braces: should the Gather ever fall through, the caller still comes back to us.
        response.redirect(action_url, method="POST")
    elif isinstance(action, Dial):
        dial = response.dial(action=action_url, method="POST", timeout=action.timeout)
        _dial_target(dial, action.target)
    elif isinstance(action, End):
        response.hangup()
    return str(response)


_ACTION = "IVR-ACTION-URL"  # stands for the action URL in a cached document
_QUOTE = {'"': "&quot;"}


class Renderer:
    """Renders turns for one flow's settings, each distinct (speech, action) once: the document is
    kept with a stand-in for the action URL, which differs in every webhook (it carries the seal)."""

    def __init__(self, settings: Settings, size: int = 4096) -> None:
        @lru_cache(maxsize=size)
        def template(say: tuple[str, ...], action: Gather | Dial | End | None) -> tuple[str, ...]:
            document = render(Turn(state=_NO_STATE, say=say, action=action), settings, _ACTION)
            return tuple(document.split(_ACTION))  # in Gather's and Dial's action, and in Redirect

        self._template = template

    def render(self, turn: Turn, action_url: str) -> str:
        """The same document as `render(turn, settings, action_url)`."""
        return escape(action_url, _QUOTE).join(self._template(turn.say, turn.action))


def emergency(settings: Settings, apology: str, target: str, action_url: str) -> str:
    """What a caller gets when the call cannot be served: an apology and the operator."""
    response = VoiceResponse()
    response.say(apology, voice=settings.voice, language=settings.language)
    dial = response.dial(action=action_url, method="POST", timeout=30)
    _dial_target(dial, target)
    return str(response)


def goodbye(settings: Settings, text: str) -> str:
    """Say a last sentence and hang up."""
    response = VoiceResponse()
    response.say(text, voice=settings.voice, language=settings.language)
    response.hangup()
    return str(response)


def empty() -> str:
    """An empty TwiML document (for status callbacks)."""
    return str(VoiceResponse())
