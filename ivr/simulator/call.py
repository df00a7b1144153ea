"""One simulated phone call: executes TwiML the way Twilio does and records what happened.

The simulated clock (when the call has one) moves by what has a duration of its own: pauses,
Gather and Record timeouts, transfers and recordings. Speech takes no simulated time, so a call
placed at 17:59:59 presses its first key at 17:59:59.
"""

from __future__ import annotations

import copy
import email.utils
import secrets
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from twilio.request_validator import RequestValidator

from . import dialing, legs, queues, schema
from .attrs import number as _int
from .attrs import text as _attr
from .attrs import true as _true
from .documents import AUDIO_TYPES, FETCHED, FOLLOWED_REDIRECTS, MAX_REDIRECTS, document
from .transport import Overrides, Reply, Session, without_fragment
from .urls import joined

DIAL_OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled", "answered")  # answered: <Conference>
# How the callee of an outbound call answers: Twilio's AnsweredBy values (machine detection), or not at all.
ANSWERED_BY = (
    "human",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
    "unknown",
)
UNANSWERED = ("busy", "no-answer", "failed")
# How waiting in a queue can end for the caller, besides <Leave> and hanging up (Enqueue's QueueResult).
QUEUE_RESULTS = ("bridged", "error", "queue-full", "system-shutdown")
APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."

Event = dict[str, Any]


class SimulatorError(Exception):
    """The simulated caller was asked to do something the call cannot take right now."""


@dataclass
class Waiting:
    """A verb the call is waiting in: Gather, Dial or Record."""

    verb: str
    element: ET.Element
    document_url: str
    event: Event | None = None  # the transcript event of this verb, completed when it ends


@dataclass
class Exchange:
    """One webhook request and its raw answer, for a closer look."""

    method: str
    url: str
    params: dict[str, str]
    status: int
    body: str


@dataclass
class _Document:
    url: str
    verbs: list[ET.Element] = field(default_factory=list)
    position: int = 0

    def next_verb(self) -> ET.Element | None:
        if self.position >= len(self.verbs):
            return None
        self.position += 1
        return self.verbs[self.position - 1]


def sign(token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a request to `url` with POST `params`, as Twilio computes it."""
    return str(RequestValidator(token).compute_signature(url, params))


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


class Call:
    """A call in progress; drive it with press, say, silence, dial_outcome, record and hangup."""

    def __init__(
        self,
        session: Session,
        entry_url: str,
        *,
        method: str = "POST",
        from_: str,
        to: str,
        at: datetime | None,
        auth_token: str | None,
        account_sid: str,
        call_sid: str | None = None,
        status_callback: str | None = None,
        loop_limit: int = 50,
        fallback_url: str | None = None,
        params: Mapping[str, str] | None = None,
        direction: str = "inbound",
        answer: str = "",
    ) -> None:
        """`direction` "outbound-api" is a call placed through the REST API; `answer` is how its callee
        answers: a value of Twilio's AnsweredBy (human, machine_start, fax, unknown ...), sent with
        the first webhook as machine detection does, or busy, no-answer, failed (nothing is
        requested: only the status callback says so)."""
        self.session = session
        self.direction = direction
        self.answered_by = answer if answer not in UNANSWERED else ""
        self.fallback_url = fallback_url
        self.conditional = dict(params or {})
        self.refused: list[str] = []  # what the app said it did not honour
        self.call_sid = call_sid or "CA" + secrets.token_hex(16)
        self.from_, self.to = from_, to
        self.started_at = at
        self.clock = at
        self._written: tuple[datetime, str] | None = None  # the clock and its text (`_moment`)
        self._rejected = ""
        self.elapsed = 0.0  # simulated seconds since the call began (pauses, timeouts, transfers, recordings)
        # Callbacks Twilio makes on its own after a step: (URL, parameters, method).
        self._pending: list[tuple[str, dict[str, str], str]] = []
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.status_callback = status_callback
        self.loop_limit = loop_limit
        self.events: list[Event] = []
        self.exchanges: list[Exchange] = []
        self.end: str | None = None
        self.waiting: Waiting | None = None
        self._heard: list[str] = []
        self._dialed: list[str] | None = None
        self._document = _Document(entry_url)
        self._fetches_without_input = 0
        self._answered = False
        self._in_gather = False
        self._queue_sid, self._queued_at = "", 0.0  # the queue the caller waits in (<Enqueue>)
        self._said_elsewhere = False  # media at other hosts: said once per call that it is not fetched
        if answer in UNANSWERED:
            self._event("unanswered", outcome=answer)
            self._rejected = answer
            self._finish(answer)
            return
        self._fetch(entry_url, method, {"AnsweredBy": self.answered_by} if self.answered_by else {})
        self._run()

    # ------------------------------------------------------------ what the caller observes

    @property
    def heard(self) -> str:
        """Everything said since the caller's last input, as one text."""
        return " ".join(self._heard)

    @property
    def dialed(self) -> list[str] | None:
        """The targets of a <Dial> met since the caller's last input, or None."""
        return self._dialed

    @property
    def ended(self) -> bool:
        return self.end is not None

    @property
    def transcript(self) -> list[Event]:
        """Every event of the call, in order."""
        return list(self.events)

    def to_json(self) -> dict[str, Any]:
        """The call as the `ivr simulate --json` object."""
        return {
            "call_sid": self.call_sid,
            "from": self.from_,
            "to": self.to,
            "at": self.started_at.isoformat() if self.started_at else None,
            "events": self.transcript,
            "end": self.end,
        }

    def clone(self, call_sid: str, session: Session) -> Call:
        """A copy of this call's caller side under another CallSid (the app must copy its own side)."""
        twin = copy.copy(self)
        twin.call_sid, twin.session = call_sid, session
        # Events are flat; only their own keys change later (a gather's `got`, a dial's `outcome`).
        twin.events = [dict(event) for event in self.events]
        twin.exchanges = list(self.exchanges)
        twin._heard = list(self._heard)
        twin._dialed = list(self._dialed) if self._dialed is not None else None
        twin._document = _Document(self._document.url, self._document.verbs, self._document.position)
        if self.waiting is not None:
            index = next((i for i, e in enumerate(self.events) if e is self.waiting.event), None)
            event = twin.events[index] if index is not None else None
            twin.waiting = Waiting(self.waiting.verb, self.waiting.element, self.waiting.document_url, event)
        return twin

    # ------------------------------------------------------------ what the caller does

    def press(self, keys: str) -> Call:
        """Press keys on the keypad (digits, * and #); `*` during a <Dial hangupOnStar> hangs up on
        the called party and the call goes on."""
        if self.waiting is not None and self.waiting.verb == "dial":
            dial = self.waiting.element
            if keys != "*" or not _true(dial, "hangupOnStar"):
                raise SimulatorError(
                    'cannot press keys: the call waits in <Dial>; only * with hangupOnStar="true" does anything'
                )
            found, _ = legs.legs(dial)
            self._input_begins()
            self._event("gather", input="dtmf", got="*", hangup_on_star=True)
            dialing.ends(self, self.waiting, found, "completed", None)
            return self
        waiting = self._expect("gather", "record", action="press keys")
        self._input_begins()
        if waiting.verb == "record":
            finish = (
                _attr(waiting.element, "finishOnKey", "1234567890*#")
                if "finishOnKey" in waiting.element.attrib
                else "1234567890*#"
            )
            key = next((k for k in keys if k in finish), None)
            if key is None:  # a key that does not end it is just sound in the recording
                self._event("warning", message=f"keys {keys!r} are not in finishOnKey {finish!r}: recording goes on")
                return self
            return self._finish_recording(waiting, text="", digits=key)
        gather = waiting.element
        if "dtmf" not in _attr(gather, "input", "dtmf"):
            self._event("gather", input=_attr(gather, "input", "dtmf"), got=None, ignored=keys)
            return self._nothing_gathered(waiting)
        finish = _attr(gather, "finishOnKey", "#") if "finishOnKey" in gather.attrib else "#"
        limit = _int(gather, "numDigits", 0)
        digits, finished_on = "", None
        for key in keys:
            if finish and key == finish:
                finished_on = key
                break
            digits += key
            if limit and len(digits) >= limit:
                break
        if not digits:
            self._event("gather", input=_attr(gather, "input", "dtmf"), got="")
            return self._nothing_gathered(waiting)
        self._event("gather", input=_attr(gather, "input", "dtmf"), got=digits)
        extra = {"Digits": digits}
        if finished_on:
            extra["FinishedOnKey"] = finished_on
        return self._submit(waiting, extra)

    def say(self, text: str, confidence: float = 0.92) -> Call:
        """Speak to a Gather that listens for speech."""
        waiting = self._expect("gather", action="speak")
        self._input_begins()
        gather = waiting.element
        if "speech" not in _attr(gather, "input", "dtmf"):
            self._event("gather", input=_attr(gather, "input", "dtmf"), got=None, ignored=text)
            return self._nothing_gathered(waiting)
        self._event("gather", input=_attr(gather, "input", "dtmf"), got=text)
        partial = _attr(gather, "partialResultCallback")
        if partial:
            # While the caller speaks, before the final result: what is recognised so far.
            words = text.split()
            method = _attr(gather, "partialResultCallbackMethod", "POST")
            for number in range(1, len(words) + 1):
                unstable = {"UnstableSpeechResult": " ".join(words[:number]), "Stability": "0.8"}
                unstable["SequenceNumber"] = str(number - 1)
                self._callback_later(waiting.document_url, partial, unstable, method)
            self._send_pending()
        return self._submit(waiting, {"SpeechResult": text, "Confidence": f"{confidence:.2f}"})

    def silence(self) -> Call:
        """Stay silent until the Gather or Record times out; in a queue, wait another round."""
        waiting = self._expect("gather", "record", "enqueue", action="stay silent")
        self._input_begins()
        if waiting.verb == "enqueue":
            queues.hold(self)
            return self
        if waiting.verb == "record":
            self._advance(_int(waiting.element, "timeout", 5))
            if waiting.event is not None:
                waiting.event["got"] = None
            self._continue_document()  # an empty recording: Twilio skips the action
            return self
        self._event("gather", input=_attr(waiting.element, "input", "dtmf"), got=None)
        return self._nothing_gathered(waiting)

    def dial_outcome(self, status: str = "completed", duration: int | None = None) -> Call:
        """Decide how the transfer the call is ringing ends: completed, busy, no-answer, failed,
        canceled; `answered` for a <Conference>. `duration` is how long the parties talk."""
        if status not in DIAL_OUTCOMES:
            raise SimulatorError(f"{status!r} is not a dial outcome; use one of {', '.join(DIAL_OUTCOMES)}")
        waiting = self._expect("dial", action="decide a transfer outcome")
        dial = waiting.element
        found, _ = legs.legs(dial)
        if status == "answered" and not any(leg.noun == "Conference" for leg in found):
            raise SimulatorError(
                "answered is what Twilio reports for a <Conference>; a number, SIP address or client that answers "
                "is `completed`"
            )
        self._input_begins()
        dialing.ends(self, waiting, found, status, duration)
        return self

    def record(self, text: str = "", duration: int = 5) -> Call:
        """Leave a recording (with `text` as its transcription) at a <Record>."""
        waiting = self._expect("record", action="leave a recording")
        self._input_begins()
        return self._finish_recording(waiting, text=text, digits="", duration=duration)  # ended by silence

    def hangup(self) -> Call:
        """The caller hangs up."""
        if self.ended:
            return self
        if self.waiting is not None and self.waiting.event is not None and self.waiting.verb == "dial":
            self.waiting.event["outcome"] = "caller-hangup"
        if self.waiting is not None and self.waiting.verb == "record":
            # Twilio still requests the action, with Digits=hangup; what it answers is not played.
            waiting, self._heard = self.waiting, []
            self._finish_recording(waiting, text="", digits="hangup", hung_up=True)
        self._event("hangup", by="caller")
        if self.waiting is not None and self.waiting.verb == "enqueue":
            waiting = self.waiting
            self.end = "caller-hangup"  # Twilio tells the Enqueue action (QueueResult=hangup), unplayed
            queues.left(self, waiting, "hangup", hung_up=True)
            self.end = None
        self._finish("caller-hangup")
        return self

    # ------------------------------------------------------------ executing TwiML

    def _expect(self, *verbs: str, action: str) -> Waiting:
        if self.ended:
            raise SimulatorError(f"cannot {action}: the call has ended ({self.end})")
        if self.waiting is None or self.waiting.verb not in verbs:
            where = self.waiting.verb if self.waiting else "nothing"
            wanted = " or ".join(f"<{verb.capitalize()}>" for verb in verbs)
            raise SimulatorError(f"cannot {action}: the call waits in <{where.capitalize()}>, not in {wanted}")
        return self.waiting

    def _input_begins(self) -> None:
        self._heard = []
        self._dialed = None
        self._fetches_without_input = 0

    def _event(self, kind: str, **fields: Any) -> None:
        event: Event = {"type": kind, **fields}
        if self.clock is not None:
            event["at"] = self._moment()
        self.events.append(event)

    def _moment(self) -> str:
        """The simulated clock as events show it (written once per moment: a webhook's events share one)."""
        clock = self.clock
        assert clock is not None
        if self._written is None or self._written[0] is not clock:
            self._written = (clock, clock.isoformat())
        return self._written[1]

    def _advance(self, seconds: float) -> None:
        self.elapsed += seconds
        if self.clock is not None:
            self.clock += timedelta(seconds=seconds)

    def _params(self, extra: Mapping[str, str]) -> dict[str, str]:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
            "CallStatus": "in-progress" if self._answered else "ringing",
            "Direction": self.direction,
            "ApiVersion": "2010-04-01",
            **self.conditional,  # ForwardedFrom, CallerName, FromCountry ... when given
        }
        params.update(extra)
        return params

    def _request(self, url: str, method: str, extra: Mapping[str, str]) -> Reply:
        """One request as Twilio makes it, following the redirects Twilio follows (301, 302 and 303
        as GET, 307 with the same method and body, as a browser does); the reply says the URL that
        answered."""
        params: Mapping[str, str] = self._params(extra)
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._send_once(url, method, params)
            if not 300 <= reply.status < 400 or reply.error:
                return reply if reply.url == url else replace(reply, url=url)
            if reply.status not in FOLLOWED_REDIRECTS or not reply.location:
                why = f"HTTP {reply.status}" + ("" if reply.location else " without a Location")
                return replace(
                    reply,
                    url=url,
                    code="11216",
                    error=f"{why} from {url}: Twilio follows only 301, 302, 303 and 307 with a Location",
                )
            target = joined(url, reply.location)
            self._event("request", method=method, url=url, status=reply.status, redirected=target)
            if reply.status != 307 and method == "POST":
                method, params = "GET", {}
            url = target
        return replace(
            reply,
            url=url,
            code="11215",
            error=f"more than {MAX_REDIRECTS} redirects from {url}: Twilio stops (a loop?)",
        )

    def _send_once(self, url: str, method: str, params: Mapping[str, str]) -> Reply:
        unmodelled = Overrides.of(url).unmodelled
        if unmodelled:
            names = ", ".join(f"#{name}" for name in unmodelled)
            self._event("warning", message=f"connection overrides {names} choose Twilio's edge or TLS: not simulated")
        signed = without_fragment(url)  # the fragment (Twilio's connection overrides) is never sent
        if method == "GET" and params:
            parts = urllib.parse.urlsplit(url)
            query = "&".join(q for q in (parts.query, urllib.parse.urlencode(params)) if q)
            url = parts._replace(query=query).geturl()
            signed = without_fragment(url)
        headers = {"User-Agent": "TwilioProxy/1.1 (ivr simulator)"}
        if self.auth_token:
            body = params if method == "POST" else {}
            headers["X-Twilio-Signature"] = sign(self.auth_token, signed, body)
        clock = self._moment() if self.clock is not None else None
        reply = self.session.send(method, url, params if method == "POST" else {}, headers, clock)
        if reply.refused and reply.refused not in self.refused:
            self.refused.append(reply.refused)
            self._event("warning", message=f"the app refused {reply.refused}")
        text = reply.body.decode("utf-8", errors="replace")
        self.exchanges.append(Exchange(method, signed, dict(params), reply.status, text))
        return reply

    def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> None:
        """Request a TwiML document and make it the one being executed."""
        url = joined(self._document.url, url)
        method = method.upper() if method.upper() in ("GET", "POST") else "POST"
        self._fetches_without_input += 1
        if self._fetches_without_input > self.loop_limit:
            self._app_error(f"more than {self.loop_limit} documents fetched without caller input (a loop?)")
            return
        reply = self._request(url, method, extra)
        self._answered = True
        answered = reply.url or url  # relative URLs in the document resolve against where it came from
        self._event("request", method=method, url=answered, status=reply.status)
        root, code, problem = document(answered, reply)
        if root is None and self.fallback_url:
            # Twilio requests the number's fallback URL, with the error and the URL that failed.
            failed = without_fragment(url)  # the connection overrides are not part of the URL requested
            self._event("error", code=code, message=problem, url=failed, fallback=True)
            fallback = joined(self._document.url, self.fallback_url)
            reply = self._request(fallback, "POST", {**extra, "ErrorCode": code, "ErrorUrl": failed})
            answered = url = reply.url or fallback
            self._event("request", method="POST", url=answered, status=reply.status)
            root, code, problem = document(answered, reply)
        if root is None:
            self._app_error(problem, code, without_fragment(url))
            return
        self.waiting = None
        self._document = _Document(answered, list(root))

    def _app_error(self, message: str, code: str = "", url: str = "") -> None:
        self._event("error", message=message, **({"code": code} if code else {}), **({"url": url} if url else {}))
        self._event("say", text=APPLICATION_ERROR, voice="alice", language="en-US")
        self._heard.append(APPLICATION_ERROR)
        self._event("hangup", by="app")
        self._finish("app-error")

    def _run(self) -> None:
        """Execute verbs until the call waits for the caller or ends."""
        while not self.ended and self.waiting is None:
            verb = self._document.next_verb()
            if verb is None:
                self._event("hangup", by="app")
                self._finish("completed")  # no more TwiML: Twilio ends the call
                return
            self._execute(verb)

    def _continue_document(self) -> None:
        self.waiting = None
        self._run()

    def _speak(self, el: ET.Element) -> None:
        if el.tag == "Say":
            text = " ".join((el.text or "").split())
            loop = _int(el, "loop", 1)
            event: Event = {
                "text": text,
                "voice": _attr(el, "voice", "man"),
                "language": _attr(el, "language", "en-US"),
            }
            if loop != 1:
                event["loop"] = loop  # 0 means "until something else happens"
            self._event("say", **event)
            self._heard.extend([text] * max(loop, 1))
        elif el.tag == "Play":
            self._play(el)
        elif el.tag == "Pause":
            length = _int(el, "length", 1)
            self._event("pause", length=length)
            self._advance(length)

    def _play(self, el: ET.Element) -> None:
        """Fetch the audio as Twilio does: what it cannot fetch or play is skipped with a warning."""
        url = (el.text or "").strip()
        digits = _attr(el, "digits") or None
        if el.get(FETCHED):  # the webhook answered with the audio itself: Twilio plays it, then hangs up
            self._event("play", url=url, digits=None)
            return
        if not url:
            self._event("play", url="", digits=digits)
            return
        target = joined(self._document.url, url)
        if not urllib.parse.urlsplit(url).scheme:
            self._event("warning", message=f"<Play> {url!r} is not an absolute URL: Twilio may not fetch it")
        if _origin(target) != _origin(self._document.url):
            # Media elsewhere (a CDN, Twilio's own): the simulator has no network to fetch it with.
            if not self._said_elsewhere:
                self._said_elsewhere = True
                self._event(
                    "warning",
                    message=f"media at another host ({target}) is not fetched: the simulator has no network; "
                    "Twilio fetches it and skips it with 11200 if it cannot",
                )
            self._event("play", url=target, digits=digits)
            return
        reply = self.session.send("GET", target, {}, {"User-Agent": "TwilioProxy/1.1 (ivr simulator)"}, None)
        kind = reply.content_type.split(";")[0].strip().lower()
        if reply.error or not 200 <= reply.status < 300:
            why = reply.error or f"HTTP {reply.status}"
            self._event("warning", code="11200", message=f"<Play> could not fetch {target}: {why}; Twilio skips it")
            return
        if kind not in AUDIO_TYPES:
            code = "13325" if self._in_gather else "13420"
            self._event(
                "warning",
                code=code,
                message=f"<Play> {target} is {kind or 'of no type'}, not audio Twilio plays: Twilio skips it",
            )
            return
        event: Event = {"url": target, "digits": digits}
        if reply.prompt:
            event["text"] = reply.prompt  # a recorded prompt of ours: the words it says
            self._heard.append(reply.prompt)
        self._event("play", **event)

    def _execute(self, el: ET.Element) -> None:
        tag = el.tag
        for problem in schema.problems(el):
            self._event("warning", code="12200", message=problem)
        if tag in ("Say", "Play", "Pause"):
            self._speak(el)
            if tag != "Pause" and _attr(el, "loop", "1") == "0":
                # Repeated until the caller hangs up: the verbs after it never run.
                self.waiting = Waiting("loop", el, self._document.url, self.events[-1])
        elif tag == "Gather":
            self._in_gather = True
            for child in el:
                if child.tag in ("Say", "Play", "Pause"):
                    self._speak(child)
                else:
                    self._event("warning", code="12200", message=f"<{child.tag}> is not allowed inside <Gather>")
            self._in_gather = False
            self.waiting = Waiting("gather", el, self._document.url)
        elif tag == "Dial":
            found, unknown = legs.legs(el)
            for noun in unknown:
                self._event("warning", code="12200", message=f"<{noun}> is no noun of <Dial>: Twilio ignores it")
            for leg in found:
                if leg.noun == "Conference":
                    self._event(
                        "warning",
                        message=f"{leg.target}: the other participants, beeps and wait music of a conference are "
                        "not simulated; its outcome is what you give (dial:answered)",
                    )
                if leg.noun == "Queue" and leg.element is not None and leg.element.get("url"):
                    self._event(
                        "warning", message=f"{leg.target}: the url played to the dequeued caller is not simulated"
                    )
            self._dialed = [leg.target for leg in found]
            self._event("dial", to=self._dialed, outcome=None)
            self.waiting = Waiting("dial", el, self._document.url, self.events[-1])
        elif tag == "Record":
            self._event("record", max_length=_int(el, "maxLength", 3600))
            self.waiting = Waiting("record", el, self._document.url, self.events[-1])
        elif tag == "Redirect":
            target = (el.text or "").strip() or self._document.url
            self._event("redirect", url=joined(self._document.url, target))
            self._fetch(target, _attr(el, "method", "POST"), {})
        elif tag == "Hangup":
            self._event("hangup", by="app")
            self._finish("app-hangup")
        elif tag == "Reject":
            reason = _attr(el, "reason", "rejected")
            self._rejected = "busy" if reason == "busy" else "rejected"  # the call ends busy or no-answer
            self._event("reject", reason=reason)
            self._finish("rejected")
        elif tag in ("Sms", "Message"):
            self._event("sms", to=_attr(el, "to", self.from_), text=(el.text or "").strip())
        elif tag == "Enqueue":
            queues.enqueue(self, el)
        elif tag == "Leave":
            self._event("warning", code="12200", message="<Leave> outside a queue's waitUrl: Twilio skips it")
        elif tag in schema.NOT_SIMULATED:
            self._event("warning", message=f"<{tag}> is TwiML the simulator does not run: skipped")
        else:
            self._event("warning", code="12200", message=f"unknown verb <{tag}> skipped")

    def queue_outcome(self, result: str) -> Call:
        """How waiting in a queue ends for the caller: bridged (an agent dequeued the call), error,
        queue-full or system-shutdown."""
        if result not in QUEUE_RESULTS:
            raise SimulatorError(f"{result!r} is not a queue result; use one of {', '.join(QUEUE_RESULTS)}")
        waiting = self._expect("enqueue", action="end waiting in a queue")
        self._input_begins()
        queues.ends(self, waiting, result)
        return self

    def _submit(self, waiting: Waiting, extra: Mapping[str, str]) -> Call:
        el = waiting.element
        action = _attr(el, "action") or waiting.document_url  # Twilio's default: the current document
        self._fetch(action, _attr(el, "method", "POST"), extra)
        self._run()
        return self

    def _nothing_gathered(self, waiting: Waiting) -> Call:
        self._advance(_int(waiting.element, "timeout", 5))
        if _true(waiting.element, "actionOnEmptyResult"):
            return self._submit(waiting, {})
        self._continue_document()  # Twilio falls through to the next verb
        return self

    def _finish_recording(
        self, waiting: Waiting, text: str, digits: str, duration: int = 5, hung_up: bool = False
    ) -> Call:
        el = waiting.element
        limit = _int(el, "maxLength", 3600) or 3600
        duration = min(duration, limit)  # a recording stops at maxLength
        self._advance(duration)
        sid = "RE" + secrets.token_hex(16)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        if waiting.event is not None:
            waiting.event.update(got=text or None, recording_url=url, duration=duration)
        recording = {"RecordingUrl": url, "RecordingSid": sid, "RecordingDuration": str(duration)}
        # Asynchronous on Twilio: they arrive after the step that made the recording.
        callback = _attr(el, "transcribeCallback")
        if callback and text:
            transcription = {
                **recording,
                "TranscriptionText": text,
                "TranscriptionStatus": "completed",
                "TranscriptionSid": "TR" + secrets.token_hex(16),
            }
            self._callback_later(waiting.document_url, callback, transcription)
        self._recording_status(el, waiting.document_url, recording, "RecordVerb")
        params = dict(recording, **({"Digits": digits} if digits else {}))
        if hung_up:
            action = _attr(el, "action") or waiting.document_url
            reply = self._request(joined(waiting.document_url, action), _attr(el, "method", "POST"), params)
            self._event("request", method=_attr(el, "method", "POST"), url=action, status=reply.status)
            return self
        self._submit(waiting, params)
        self._send_pending()
        return self

    def _recording_status(self, el: ET.Element, base: str, recording: Mapping[str, str], source: str) -> None:
        """recordingStatusCallback: the recording is ready, after the step that made it."""
        url = _attr(el, "recordingStatusCallback")
        if url:
            params = {**recording, "RecordingStatus": "completed", "RecordingChannels": "1", "RecordingSource": source}
            self._callback_later(base, url, params, _attr(el, "recordingStatusCallbackMethod", "POST"))

    def _send_pending(self) -> None:
        """The callbacks Twilio sends on its own after a step (transcriptions, recording status,
        a dialled party's call progress)."""
        pending, self._pending = self._pending, []
        for url, params, method in pending:
            reply = self._request(url, method, params)
            self._event("request", method=method, url=url, status=reply.status, callback=True)

    def _callback_later(self, base: str, url: str, params: dict[str, str], method: str = "POST") -> None:
        method = method.upper() if method.upper() in ("GET", "POST") else "POST"
        self._pending.append((joined(base, url), params, method))

    def _finish(self, how: str) -> None:
        self.end = how
        self.waiting = None
        self._send_pending()
        if self.status_callback:
            url = joined(self._document.url, self.status_callback)
            status = {"busy": "busy", "rejected": "no-answer"}.get(self._rejected, self._rejected or "completed")
            answered = not self._rejected
            moment = (self.clock or datetime.now(UTC)).astimezone(UTC)
            params = {
                "CallStatus": status,
                "CallDuration": str(int(self.elapsed)) if answered else "0",
                "Timestamp": email.utils.format_datetime(moment),
                "CallbackSource": "call-progress-events",
                "SequenceNumber": "0",
                **({"AnsweredBy": self.answered_by} if self.answered_by else {}),
            }
            reply = self._request(url, "POST", params)
            self._event("request", method="POST", url=url, status=reply.status)
