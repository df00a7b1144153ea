"""The line under a simulated call: its clock, its events, the requests it makes and the document it
executes; what the verbs (`dialing`, `queues`) act on.

The simulated clock (when the call has one) moves by what has a duration of its own: pauses,
Gather and Record timeouts, transfers and recordings. Speech takes no simulated time, so a call
placed at 17:59:59 presses its first key at 17:59:59.
"""

from __future__ import annotations

import email.utils
import secrets
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from twilio.request_validator import RequestValidator

from .attrs import number as _int
from .attrs import text as _attr
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
class Document:
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


def origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


class Line:
    """A call's line: what Twilio keeps of a call while it executes the call's TwiML."""

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
        self.verbs_run = 0  # a <Reject> keeps the call unanswered only as the very first verb
        self.recording_since = 0.0  # when the <Record> in progress began (simulated seconds)
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
        self._dialed: list[str] = []
        self.running = Document(entry_url)
        self._fetches_without_input = 0
        self._answered = False
        self._in_gather = False
        self.queue_sid, self.queued_at = "", 0.0  # the queue the caller waits in (<Enqueue>)
        self._said_elsewhere = False  # media at other hosts: said once per call that it is not fetched
        if answer in UNANSWERED:
            self.add_event("unanswered", outcome=answer)
            self._rejected = answer
            self.finish(answer)
            return
        self._fetch(entry_url, method, {"AnsweredBy": self.answered_by} if self.answered_by else {})
        self._run()

    def add_event(self, kind: str, **fields: Any) -> None:
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

    def advance(self, seconds: float) -> None:
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

    def request(self, url: str, method: str, extra: Mapping[str, str], own: bool = True) -> Reply:
        """One request as Twilio makes it, following the redirects Twilio follows (301, 302 and 303
        as GET, 307 with the same method and body, as a browser does); the reply says the URL that
        answered, and the method, URL and parameters of the request that reached it. `own`: with
        this call's parameters; else `extra` are all (another leg's request)."""
        params: Mapping[str, str] = self._params(extra) if own else dict(extra)
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._send_once(url, method, params)
            if not 300 <= reply.status < 400 or reply.error:
                return replace(reply, url=url)
            if reply.status not in FOLLOWED_REDIRECTS or not reply.location:
                why = f"HTTP {reply.status}" + ("" if reply.location else " without a Location")
                return replace(
                    reply,
                    url=url,
                    code="11216",
                    error=f"{why} from {url}: Twilio follows only 301, 302, 303 and 307 with a Location",
                )
            target = joined(url, reply.location)
            self.log_request(reply, redirected=target)
            if reply.status != 307 and method == "POST":
                method, params = "GET", {}
            url = target
        return replace(
            reply,
            url=url,
            code="11215",
            error=f"more than {MAX_REDIRECTS} redirects from {url}: Twilio stops (a loop?)",
        )

    def log_request(self, reply: Reply, **extra: Any) -> None:
        """The transcript's record of a request: what was sent, as sent, and the status it got."""
        self.add_event(
            "request", method=reply.method, url=reply.sent, status=reply.status, params=dict(reply.params), **extra
        )

    def _send_once(self, url: str, method: str, params: Mapping[str, str]) -> Reply:
        unmodelled = Overrides.of(url).unmodelled
        if unmodelled:
            names = ", ".join(f"#{name}" for name in unmodelled)
            self.add_event(
                "warning", message=f"connection overrides {names} choose Twilio's edge or TLS: not simulated"
            )
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
            self.add_event("warning", message=f"the app refused {reply.refused}")
        text = reply.body.decode("utf-8", errors="replace")
        self.exchanges.append(Exchange(method, signed, dict(params), reply.status, text))
        return replace(reply, method=method, sent=signed, params=dict(params))

    def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> None:
        """Request a TwiML document and make it the one being executed."""
        url = joined(self.running.url, url)
        method = method.upper() if method.upper() in ("GET", "POST") else "POST"
        self._fetches_without_input += 1
        if self._fetches_without_input > self.loop_limit:
            self.app_error(f"more than {self.loop_limit} documents fetched without caller input (a loop?)")
            return
        reply = self.request(url, method, extra)
        self._answered = True
        answered = reply.url or url  # relative URLs in the document resolve against where it came from
        self.log_request(reply)
        root, code, problem = document(answered, reply)
        if root is None and self.fallback_url:
            # Twilio requests the number's fallback URL, with the error and the URL that failed.
            failed = without_fragment(url)  # the connection overrides are not part of the URL requested
            self.add_event("error", code=code, message=problem, url=failed, fallback=True)
            fallback = joined(self.running.url, self.fallback_url)
            reply = self.request(fallback, "POST", {**extra, "ErrorCode": code, "ErrorUrl": failed})
            answered = url = reply.url or fallback
            self.log_request(reply)
            root, code, problem = document(answered, reply)
        if root is None:
            self.app_error(problem, code, without_fragment(url))
            return
        self.waiting = None
        self.running = Document(answered, list(root))

    def app_error(self, message: str, code: str = "", url: str = "") -> None:
        self.add_event("error", message=message, **({"code": code} if code else {}), **({"url": url} if url else {}))
        self.add_event("say", text=APPLICATION_ERROR, voice="alice", language="en-US")
        self._heard.append(APPLICATION_ERROR)
        self.add_event("hangup", by="app")
        self.finish("app-error")

    def _run(self) -> None:
        """Execute verbs until the call waits for the caller or ends."""
        while not self.ended and self.waiting is None:
            verb = self.running.next_verb()
            if verb is None:
                self.add_event("hangup", by="app")
                self.finish("completed")  # no more TwiML: Twilio ends the call
                return
            self._execute(verb)

    def continue_document(self) -> None:
        self.waiting = None
        self._run()

    def speak(self, el: ET.Element) -> None:
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
            self.add_event("say", **event)
            self._heard.extend([text] * max(loop, 1))
        elif el.tag == "Play":
            self._play(el)
        elif el.tag == "Pause":
            length = _int(el, "length", 1)
            self.add_event("pause", length=length)
            self.advance(length)

    def submit(self, waiting: Waiting, extra: Mapping[str, str]) -> Self:
        el = waiting.element
        action = _attr(el, "action") or waiting.document_url  # Twilio's default: the current document
        self._fetch(action, _attr(el, "method", "POST"), extra)
        self._run()
        return self

    def recording_status(self, el: ET.Element, base: str, recording: Mapping[str, str], source: str) -> None:
        """recordingStatusCallback: the recording is ready, after the step that made it."""
        url = _attr(el, "recordingStatusCallback")
        if url:
            params = {**recording, "RecordingStatus": "completed", "RecordingChannels": "1", "RecordingSource": source}
            self.callback_later(base, url, params, _attr(el, "recordingStatusCallbackMethod", "POST"))

    def send_pending(self) -> None:
        """The callbacks Twilio sends on its own after a step (transcriptions, recording status,
        a dialled party's call progress)."""
        pending, self._pending = self._pending, []
        for url, params, method in pending:
            reply = self.request(url, method, params)
            self.log_request(reply, callback=True)

    def callback_later(self, base: str, url: str, params: dict[str, str], method: str = "POST") -> None:
        method = method.upper() if method.upper() in ("GET", "POST") else "POST"
        self._pending.append((joined(base, url), params, method))

    def finish(self, how: str) -> None:
        self.end = how
        self.waiting = None
        self.send_pending()
        if self.status_callback:
            url = joined(self.running.url, self.status_callback)
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
            reply = self.request(url, "POST", params)
            self.log_request(reply)

    @property
    def ended(self) -> bool:
        return self.end is not None

    def _play(self, el: ET.Element) -> None:
        """Fetch the audio as Twilio does: what it cannot fetch or play is skipped with a warning."""
        url = (el.text or "").strip()
        digits = _attr(el, "digits") or None
        if el.get(FETCHED):  # the webhook answered with the audio itself: Twilio plays it, then hangs up
            self.add_event("play", url=url, digits=None)
            return
        if not url:
            self.add_event("play", url="", digits=digits)
            return
        target = joined(self.running.url, url)
        if not urllib.parse.urlsplit(url).scheme:
            self.add_event("warning", message=f"<Play> {url!r} is not an absolute URL: Twilio may not fetch it")
        if origin(target) != origin(self.running.url):
            # Media elsewhere (a CDN, Twilio's own): the simulator has no network to fetch it with.
            if not self._said_elsewhere:
                self._said_elsewhere = True
                self.add_event(
                    "warning",
                    message=f"media at another host ({target}) is not fetched: the simulator has no network; "
                    "Twilio fetches it and skips it with 11200 if it cannot",
                )
            self.add_event("play", url=target, digits=digits)
            return
        reply = self.session.send("GET", target, {}, {"User-Agent": "TwilioProxy/1.1 (ivr simulator)"}, None)
        kind = reply.content_type.split(";")[0].strip().lower()
        if reply.error or not 200 <= reply.status < 300:
            why = reply.error or f"HTTP {reply.status}"
            self.add_event("warning", code="11200", message=f"<Play> could not fetch {target}: {why}; Twilio skips it")
            return
        if kind not in AUDIO_TYPES:
            code = "13325" if self._in_gather else "13420"
            self.add_event(
                "warning",
                code=code,
                message=f"<Play> {target} is {kind or 'of no type'}, not audio Twilio plays: Twilio skips it",
            )
            return
        event: Event = {"url": target, "digits": digits}
        if reply.prompt:
            event["text"] = reply.prompt  # a recorded prompt of ours: the words it says
            self._heard.append(reply.prompt)
        self.add_event("play", **event)

    def _execute(self, el: ET.Element) -> None:
        raise NotImplementedError  # `Call` executes each verb
