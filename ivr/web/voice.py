"""Twilio's voice webhooks: POST /voice (entry), step webhooks, POST /voice/status.

Every answer on these paths is HTTP 200 with valid TwiML, except 403 for a bad signature: a
500 would make Twilio tell a patient "an application error has occurred".

The paths Twilio calls are served by a WSGI application of their own (`Webhooks`) in front of
Flask's: it matches the path, reads the request (a werkzeug request, no Flask context), checks
the signature, answers and writes the answer itself. Flask's contexts, routing, hooks and response
object cost as much per request as a webhook's own work (benchmarks/README.md), on the path every
caller's every key press takes. Every other path (probes, recorded prompts, the simulator's pages,
a /voice path that is none of these) is Flask's, and its error pages answer TwiML on /voice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from flask import Blueprint, Flask, Request, Response, abort, current_app, send_from_directory
from flask import request as current_request
from werkzeug.exceptions import HTTPException

from ivr import clock
from ivr.engine import twiml
from ivr.engine.core import Input
from ivr.engine.studio import AUDIO_TYPES
from ivr.errors import reason
from ivr.web import parameters
from ivr.web.calls import Answer, CallHandler, Webhook
from ivr.web.incidents import Incidents
from ivr.web.security import is_local, signature_problem

log = logging.getLogger("ivr.web")
journal = logging.getLogger("ivr.webhook")  # one JSON line per webhook
bp = Blueprint("voice", __name__)

_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_MAX_STEP = 1_000_000
_EMPTY = twiml.empty()  # the answer to every status callback
_AFTER_EMERGENCY = "/voice/after-emergency"
_REFUSED = "ivr.refused"  # the request's refusals (`_refused`), in its WSGI environ


@dataclass
class Runtime:
    """What the webhooks share: the call handlers (real calls, simulated calls), the clock policy,
    and the store's health."""

    handler: CallHandler
    allow_simulated_clock: bool
    # The handler of simulated calls, on a database of their own, made when the first one arrives.
    make_sandbox: Callable[[], CallHandler] | None = None
    incidents: Incidents = field(default_factory=lambda: Incidents(log))
    # Called with (CallSid, Answer) after every answered webhook: the crawler and the journal listen.
    listeners: list[Callable[[str, Answer], None]] = field(default_factory=list)
    _sandbox: CallHandler | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sandbox(self) -> CallHandler:
        """The handler of simulated calls (the main one when simulated calls share its database)."""
        if self.make_sandbox is None:
            return self.handler
        with self._lock:
            if self._sandbox is None:
                self._sandbox = self.make_sandbox()
            return self._sandbox

    def dispose(self) -> None:
        """Close every database connection, of real and of simulated calls."""
        self.handler.store.dispose()
        if self._sandbox is not None and self._sandbox is not self.handler:
            self._sandbox.store.dispose()

    def handler_for(self, request: Request) -> CallHandler:
        """The handler of this request's call: the sandbox's for a simulated one."""
        return self.sandbox() if simulated(request) else self.handler


def _refused(request: Request, what: str) -> None:
    """Say, in the answer's X-Ivr-Refused header and once per process in the log, that a simulator's
    mark was not honoured (the simulator shows the header to its user)."""
    request.environ.setdefault(_REFUSED, []).append(what)
    if what not in _SAID_REFUSED:
        _SAID_REFUSED.add(what)
        log.warning("refused: %s", what)


_SAID_REFUSED: set[str] = set()


def simulated(request: Request) -> bool:
    """Whether the request is a simulated call's: marked by the in-process simulator, or with
    X-Ivr-Simulated by a simulator on this machine (never through a tunnel or a proxy)."""
    environ = request.environ
    if environ.get("ivr.simulated"):
        return True
    if not environ.get("HTTP_X_IVR_SIMULATED"):
        return False
    if is_local(request):
        return True
    _refused(request, "X-Ivr-Simulated from another machine or through a proxy: this call is handled as a real one")
    return False


def runtime() -> Runtime:
    value: Runtime = current_app.extensions["ivr"]
    return value


def xml(document: str) -> Response:
    return Response(document, status=200, mimetype="application/xml")


def request_now(rt: Runtime, request: Request) -> datetime:
    """The request's moment: the real clock, unless a simulator is allowed to move it."""
    environ = request.environ
    text = environ.get("ivr.clock")  # set only by the in-process simulator
    header = environ.get("HTTP_X_IVR_CLOCK")
    if text is None and header:
        if not rt.allow_simulated_clock:
            _refused(request, "X-Ivr-Clock: the server runs on the real clock (start it with --allow-simulated-clock)")
        elif not is_local(request):
            _refused(request, "X-Ivr-Clock from another machine or through a proxy: the server runs on the real clock")
        else:
            text = header
    if text:
        try:
            return clock.parse(text[:64], rt.handler.flow.settings.timezone)
        except ValueError as exc:
            _refused(request, f"X-Ivr-Clock: {exc}; the server runs on the real clock")
    return clock.now()


def caller_input(values: parameters.Parameters) -> Input:
    """Twilio's parameters as the engine's Input; anything unreadable counts as silence."""
    caller = values.get("From", "")[:64]
    if values.get("DialCallStatus"):
        return Input("dial", values.get("DialCallStatus", "")[:32], caller)
    digits = values.get("Digits", "")
    if digits:
        return Input("digits", digits[:64], caller)
    spoken = values.get("SpeechResult", "")
    if spoken.strip():
        return Input("speech", spoken[:500], caller)
    return Input("silence", "", caller)


_SALT = secrets.token_bytes(16)  # per process: log lines of one call correlate, but never lead back to it


def pseudonym(call_sid: str) -> str:
    """A stand-in for a CallSid in logs: Twilio's console maps CallSids to numbers, and a call may
    turn out to be a psychologist's call (anonymous) only after its first lines were written."""
    return "call-" + hashlib.blake2b(call_sid.encode(), key=_SALT, digest_size=6).hexdigest() if call_sid else ""


def _log(sid: str, step: int, node: str, outcome: str, started: float, anonymous: bool, **extra: Any) -> None:
    if journal.isEnabledFor(logging.INFO):
        line = {
            "event": "webhook",
            "call": "anonymous" if anonymous else pseudonym(sid),
            "step": step,
            "node": node,
            "outcome": outcome,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            **extra,
        }
        journal.info(json.dumps(line, ensure_ascii=False))


def emergency(handler: CallHandler, request: Request) -> str:
    """TwiML for a call that cannot be served: the apology, the operator, then after-emergency."""
    return handler.emergency(request.script_root + _AFTER_EMERGENCY)


def _webhook(
    rt: Runtime,
    request: Request,
    step: int,
    node: str | None,
    seal: str | None = None,
    kind: str = "",
    ticket: str = "",
    answered_by: str = "",
) -> str:
    started = time.perf_counter()
    handler = rt.handler_for(request)
    values = parameters.values(request)
    sid = values.get("CallSid", "")
    if not _SID.fullmatch(sid):
        _log("", step, "", "no-call-sid", started, False)
        return emergency(handler, request)
    seal = values.get("s", "") if seal is None else seal
    media = media_url(handler, request)
    revision = values.get("r", "")[:16]
    given = caller_input(values)
    moment = request_now(rt, request)
    hook = Webhook(sid, step, node, seal, given, moment, request.script_root, media, revision, ticket, answered_by)
    try:
        answer = handler.handle(hook)
    except Exception:
        reference = rt.incidents.failed("webhooks fail")
        _log(sid, step, node or "", "emergency", started, False, incident=reference)
        return emergency(handler, request)
    rt.incidents.worked()
    _log(sid, step, answer.node, kind + answer.outcome, started, answer.anonymous)
    for listener in rt.listeners:
        listener(sid, answer)
    return answer.twiml


def entry(rt: Runtime, request: Request) -> str:
    """The entry webhook a Twilio number points at."""
    return _webhook(rt, request, 0, None)


def step(rt: Runtime, request: Request, number: str, node: str) -> str:
    """Where every Gather and Dial comes back, with the call's state sealed in the query (`s`)."""
    return _webhook(rt, request, _step_number(number), node)


def _step_number(text: str) -> int:
    number = int(text) if text.isascii() and text.isdigit() and len(text) < 8 else -1
    return number if number <= _MAX_STEP else -1


def callback(rt: Runtime, request: Request) -> str:
    """The webhook of a call the hotline placed to answer a call-back request (`ivr callbacks run`):
    its ticket (which request, which attempt) sealed in `t`; AnsweredBy from Twilio's machine detection."""
    values = parameters.values(request)
    return _webhook(rt, request, 0, None, ticket=_ticket(values), answered_by=_answered_by(values))


def _ticket(values: Any) -> str:
    """A call-back call's sealed ticket (`t`); "-" when there is none, which opens as no ticket."""
    return str(values.get("t", ""))[:512] or "-"


def _answered_by(values: parameters.Parameters) -> str:
    """Who answered a call-back call, by Twilio's answering-machine detection (AnsweredBy)."""
    return values.get("AnsweredBy", "")[:32]


def callback_status(rt: Runtime, request: Request) -> str:
    """The status callback of a call-back call: the journal row is closed, the attempt ended, and the
    request answered, tried again later, or given up by the flow's policy."""
    return _status(rt, request, _ticket(parameters.values(request)))


def fallback(rt: Runtime, request: Request) -> str:
    """The number's fallback URL: Twilio calls it when a webhook failed (no answer, an error, a cut
    connection), with the URL that failed in ErrorUrl. The answer is the one the failed webhook
    would have given: a step's state is sealed in that URL, and a step with an effect that was
    committed is repeated from its stored answer (the same reference, nothing spent twice). A call
    whose failed URL is not a step of ours is greeted as a new call."""
    values = parameters.values(request)
    failed = urlsplit(values.get("ErrorUrl", ""))
    code = values.get("ErrorCode", "")[:16]
    _, found, rest = failed.path.partition("/voice/step/")
    if found:
        number, _, node = rest.partition("/")
        seal = parse_qs(failed.query).get("s", [""])[0]
        log.warning("fallback for step %s after Twilio error %s", _step_number(number), code or "(none)")
        return _webhook(rt, request, _step_number(number), unquote(node), seal, kind="fallback-")
    if failed.path.endswith("/voice/callback"):  # a call-back call's first webhook: its ticket again
        log.warning("fallback for a call-back call after Twilio error %s", code or "(none)")
        answered_by = _answered_by(values)
        query = {key: found[0] for key, found in parse_qs(failed.query).items()}
        return _webhook(rt, request, 0, None, kind="fallback-", ticket=_ticket(query), answered_by=answered_by)
    log.warning("fallback for a call's first webhook after Twilio error %s", code or "(none)")
    return _webhook(rt, request, 0, None, kind="fallback-")


def status(rt: Runtime, request: Request) -> str:
    """Twilio's status callback: a finished call's state is forgotten."""
    return _status(rt, request, "")


def _status(rt: Runtime, request: Request, ticket: str) -> str:
    values = parameters.values(request)
    sid = values.get("CallSid", "")
    call_status = values.get("CallStatus", "")
    if _SID.fullmatch(sid) and call_status in _FINAL_STATUSES:
        text = values.get("CallDuration", "")
        duration = int(text) if text.isdigit() and len(text) < 7 else None
        handler = rt.handler_for(request)
        try:
            moment = request_now(rt, request)
            if ticket:
                handler.finish_callback(ticket, sid, call_status, _answered_by(values), duration, moment)
                wrote = True
            else:
                wrote = handler.finish(sid, call_status, duration, moment)
        except Exception:
            rt.incidents.failed("status callbacks fail (the journal of finished calls is not closed)")
        else:
            if wrote:  # a read that worked (nothing to write) says nothing of an outage of writes
                rt.incidents.worked()
    return _EMPTY


def after_emergency(rt: Runtime, request: Request) -> str:
    """After the emergency transfer: a last word and goodbye."""
    return rt.handler.after_emergency(media_url(rt.handler, request))


def media_url(handler: CallHandler, request: Request) -> str:
    """The absolute URL this flow's recordings are served from, as the caller's request reached us
    (behind a proxy: the public one, see TRUST_PROXY); "" when nothing is recorded."""
    if not handler.recordings:
        return ""
    return f"{request.url_root.rstrip('/')}/prompts/{quote(handler.flow.name, safe='')}"


_NAMED: dict[str, Callable[[Runtime, Request], str]] = {
    "": entry,
    "/callback": callback,
    "/callback/status": callback_status,
    "/fallback": fallback,
    "/status": status,
    "/after-emergency": after_emergency,
}
# /voice, /voice/<name>, /voice/step/<step>/<node> (`node` may hold slashes, never start with one),
# as Flask's routing matched them (a trailing slash or none; merge_slashes off, see `create_app`)
_ROUTE = re.compile(
    r"/voice(?:(?P<name>" + "|".join(map(re.escape, _NAMED)) + r")/?|/step/(?P<step>[^/]+)/(?P<node>[^/].*))",
    re.DOTALL,
)
_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS"})
_ALLOWED = "GET, HEAD, OPTIONS, POST"
_XML = "application/xml; charset=utf-8"


class Webhooks:
    """The voice webhooks as a WSGI application of their own; every other request goes on to
    `other` (Flask's). The settings and the runtime are `app`'s, read per request (a test may change
    them)."""

    def __init__(self, app: Flask, other: Callable[[dict[str, Any], Any], Any]) -> None:
        self.app = app
        self.other = other

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") not in _METHODS or "/voice" not in environ.get("PATH_INFO", ""):
            return self.other(environ, start_response)
        request = Request(environ)
        route = _ROUTE.fullmatch(request.path)
        if route is None:  # another /voice path: Flask's 404, which its error page answers with TwiML
            return self.other(environ, start_response)
        if environ["REQUEST_METHOD"] == "OPTIONS":  # what Flask's routing answered
            start_response("200 OK", [("Allow", _ALLOWED), ("Content-Length", "0")])
            return []
        config = self.app.config
        request.max_content_length = config["MAX_CONTENT_LENGTH"]
        rt: Runtime = self.app.extensions["ivr"]
        status, document, kind = "200 OK", "", _XML
        try:
            if self._forbidden(request, config):
                status, document, kind = "403 FORBIDDEN", "forbidden", "text/html; charset=utf-8"
            elif route["step"] is not None:
                document = step(rt, request, route["step"], route["node"])
            else:
                document = _NAMED[route["name"]](rt, request)
        except Exception as error:  # a body too large, a crash: TwiML all the same
            if not isinstance(error, HTTPException):
                log.exception("unexpected error on %s", request.path)
            document = emergency(rt.handler, request)
        body = document.encode()
        headers = [("Content-Type", kind), ("Content-Length", str(len(body)))]
        refusals = environ.get(_REFUSED)
        if refusals:
            headers.append(("X-Ivr-Refused", "; ".join(refusals)))
        start_response(status, headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    @staticmethod
    def _forbidden(request: Request, config: Any) -> bool:
        """Whether the request fails the signature check (there is none without TWILIO_AUTH_TOKEN)."""
        token = config.get("TWILIO_AUTH_TOKEN")
        if not token:
            return False
        problem = signature_problem(request, token, config.get("PUBLIC_URL"))
        if problem:
            # The reason, never the body: the body carries the caller's number and what they said.
            log.warning("rejected %s %s: %s", request.method, request.path, problem)
        return bool(problem)


@bp.route("/healthz", methods=["GET"])
def healthz() -> Response:
    """The process is alive and answers (for a load balancer's liveness check)."""
    return Response('{"status": "alive"}', mimetype="application/json")


@bp.route("/readyz", methods=["GET"])
def readyz() -> Response:
    """The database is reachable and its schema current: 200, else 503 with the reason."""
    try:
        runtime().handler.store.ready()
    except Exception as exc:
        why = reason(exc)[:300]
        # The reason may name hosts and files: only for a probe on this machine, not through a tunnel.
        body = {"status": "not ready", "reason": why if is_local(current_request) else "see the server log"}
        return Response(json.dumps(body), status=503, mimetype="application/json")
    return Response('{"status": "ready"}', mimetype="application/json")


@bp.route("/prompts/<flow>/<name>", methods=["GET", "HEAD"])
def recording(flow: str, name: str) -> Response:
    """A recorded prompt, for Twilio's <Play> (cached by Twilio and proxies; only files the flow's
    catalogue names are served). X-Ivr-Prompt carries its words, for the simulators to show."""
    handler = runtime().handler
    recordings = handler.recordings
    if recordings is None or flow != handler.flow.name or name not in recordings.texts:
        abort(404)
    response = send_from_directory(
        recordings.folder, name, mimetype=AUDIO_TYPES[Path(name).suffix], max_age=3600, conditional=True
    )
    response.headers["X-Ivr-Prompt"] = quote(recordings.texts[name])
    return response


def install_error_pages(app: Flask) -> None:
    """Errors on webhook paths (a body too large, an unknown path, a crash) still answer TwiML."""

    def answer(error: Exception) -> Response:
        if not isinstance(error, HTTPException):
            log.exception("unexpected error on %s", current_request.path)
        if current_request.path.startswith("/simulator/api"):  # the web phone's API answers JSON, always
            status = error.code if isinstance(error, HTTPException) and error.code else 500
            message = error.description if isinstance(error, HTTPException) else "internal error (see the server log)"
            return Response(json.dumps({"error": message}), status=status, mimetype="application/json")
        if not current_request.path.startswith("/voice"):
            return error if isinstance(error, HTTPException) else Response("internal error", status=500)  # type: ignore[return-value]
        return xml(emergency(runtime().handler, current_request))

    app.register_error_handler(HTTPException, answer)
    app.register_error_handler(Exception, answer)
