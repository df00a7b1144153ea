"""Turn -> TwiML, only through the twilio library's VoiceResponse."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

from twilio.twiml.voice_response import Dial as DialVerb
from twilio.twiml.voice_response import VoiceResponse

from ivr.engine.core import CallState, Dial, End, Gather, Turn
from ivr.engine.studio import Recordings
from ivr.flow.model import Settings

_NO_STATE = CallState(node="")
_QUOTE = {'"': "&quot;"}
_MEDIA = "IVR-MEDIA-URL"  # stands for where the recordings are served, in a document being built


def _speak(parent: Any, text: str, voice: dict[str, str], recordings: Recordings | None) -> None:
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
            parent.play(f"{_MEDIA}/{file}")
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
        _speak(response, text, voice, recordings)
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
            _speak(gather, text, voice, recordings)
        # Belt and braces: should the Gather ever fall through, the caller still comes back to us.
        response.redirect(action_url, method="POST")
    elif isinstance(action, Dial):
        dial = response.dial(action=action_url, method="POST", timeout=action.timeout)
        _dial_target(dial, action.target)
    elif isinstance(action, End):
        response.hangup()
    return _with_media(str(response), recordings, media_url)


def _with_media(document: str, recordings: Recordings | None, media_url: str) -> str:
    """The document with where recordings are served filled in (only a document with recordings has it)."""
    return document.replace(_MEDIA, escape(media_url, _QUOTE)) if recordings else document


_ACTION = "IVR-ACTION-URL"  # stands for the action URL in a cached document


class Renderer:
    """Renders turns for one flow's settings, each distinct (speech, action) once: the document is
    kept with a stand-in for the action URL, which differs in every webhook (it carries the seal),
    and for where recordings are served (it depends on the host the request came to)."""

    def __init__(self, settings: Settings, recordings: Recordings | None = None, size: int = 4096) -> None:
        self.recordings = recordings or None

        @lru_cache(maxsize=size)
        def template(say: tuple[str, ...], action: Gather | Dial | End | None, _key: object) -> tuple[str, ...]:
            turn = Turn(state=_NO_STATE, say=say, action=action)
            document = render(turn, settings, _ACTION, self.recordings, _MEDIA)
            return tuple(document.split(_ACTION))  # in Gather's and Dial's action, and in Redirect

        self._template = template

    def render(self, turn: Turn, action_url: str, media_url: str = "") -> str:
        """The same document as `render(turn, settings, action_url, recordings, media_url)`."""
        # With recordings, two phrases of the same words may be cut differently: their pieces count.
        key = _pieces(turn) if self.recordings else None
        document = escape(action_url, _QUOTE).join(self._template(turn.say, turn.action, key))
        return _with_media(document, self.recordings, media_url)


def _pieces(turn: Turn) -> tuple[object, ...]:
    prompt = turn.action.prompt if isinstance(turn.action, Gather) else ()
    return tuple(getattr(text, "pieces", None) for text in (*turn.say, *prompt))


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
    _speak(response, text, {"voice": settings.voice, "language": settings.language}, recordings)
    response.hangup()
    return _with_media(str(response), recordings, media_url)


def empty() -> str:
    """An empty TwiML document (for status callbacks)."""
    return str(VoiceResponse())
