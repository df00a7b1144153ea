"""Turn -> TwiML, only through the twilio library's VoiceResponse."""

from __future__ import annotations

from typing import Any

from twilio.twiml.voice_response import Dial as DialVerb
from twilio.twiml.voice_response import VoiceResponse

from ivr.engine.studio import Recordings
from ivr.engine.turns import Dial, End, Gather, Turn
from ivr.flow.model import Settings


def _speak(parent: Any, text: str, voice: dict[str, str], recordings: Recordings | None, media_url: str) -> None:
    """Say a text; with recordings, play the pieces a studio recorded and say the rest (the values)."""
    pieces = getattr(text, "pieces", None)
    if not recordings or pieces is None:
        parent.say(text, **voice)
        return
    pending: list[str] = []

    def flush() -> None:
        said = " ".join("".join(pending).split())
        if said:
            parent.say(said, **voice)
        pending.clear()

    for recordable, words in pieces:
        file = recordings.file_for(words) if recordable else None
        if file:
            flush()
            parent.play(f"{media_url}/{file}")
        else:
            pending.append(words)
    flush()


def _dial_target(dial: DialVerb, target: str) -> None:
    if target.startswith("sip:"):
        dial.sip(target)
    elif target.startswith("client:"):
        dial.client(target.removeprefix("client:"))
    else:
        dial.number(target)


def render(
    turn: Turn, settings: Settings, action_url: str, recordings: Recordings | None = None, media_url: str = ""
) -> str:
    """The TwiML document for a turn; every Gather and Dial comes back to `action_url`; recorded
    prompts are played from `media_url` (absolute: Twilio fetches media from absolute URLs only)."""
    response = VoiceResponse()
    voice = {"voice": settings.voice, "language": settings.language}
    for text in turn.say:
        _speak(response, text, voice, recordings, media_url)
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
            _speak(gather, text, voice, recordings, media_url)
        # Belt and braces: should the Gather ever fall through, the caller still comes back to us.
        response.redirect(action_url, method="POST")
    elif isinstance(action, Dial):
        dial = response.dial(action=action_url, method="POST", timeout=action.timeout)
        _dial_target(dial, action.target)
    elif isinstance(action, End):
        response.hangup()
    return str(response)


def emergency(settings: Settings, apology: str, target: str, action_url: str) -> str:
    """What a caller gets when the call cannot be served: an apology and the operator."""
    response = VoiceResponse()
    response.say(apology, voice=settings.voice, language=settings.language)
    dial = response.dial(action=action_url, method="POST", timeout=30)
    _dial_target(dial, target)
    return str(response)


def goodbye(settings: Settings, text: str, recordings: Recordings | None = None, media_url: str = "") -> str:
    """Say a last sentence and hang up."""
    response = VoiceResponse()
    _speak(response, text, {"voice": settings.voice, "language": settings.language}, recordings, media_url)
    response.hangup()
    return str(response)


def empty() -> str:
    """An empty TwiML document (for status callbacks)."""
    return str(VoiceResponse())
