"""Twilio's voice webhooks as Flask views: POST /voice (entry), the step webhooks every Gather and
Dial come back to, POST /voice/status, the fallback URL and the call-backs the hotline places.

Every answer on these paths is HTTP 200 with valid TwiML, except 403 for a bad signature: a 500
would make Twilio tell a patient "an application error has occurred". The signature is checked
before any view (`before_request`); errors of every kind end in one handler (`ivr.web.errors`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from ivr.engine import twiml
from ivr.engine.turns import Input
from ivr.web.calls import CallHandler, Webhook
from ivr.web.paths import PREFIX
from ivr.web.runtime import refusals, request_now, runtime
from ivr.web.security import signature_problem

log = logging.getLogger("ivr.web")
journal = logging.getLogger("ivr.webhook")  # one JSON line per webhook
bp = Blueprint("voice", __name__, url_prefix=PREFIX)

_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_METHODS = ["GET", "POST"]  # a number's webhook may be set to either


View = Callable[[], Response]


def _route(rule: str, endpoint: str) -> Callable[[View], View]:
    """A webhook's route, with and without a trailing slash (Twilio follows no redirect)."""

    def register(view: View) -> View:
        bp.add_url_rule(rule, endpoint, view, methods=_METHODS)
        bp.add_url_rule(rule + "/", endpoint, view, methods=_METHODS)
        return view

    return register


@bp.before_request
def refuse_floods() -> None:
    """Refuse a request with more form fields than Twilio ever sends, before any other work (its
    signature included): counted in the raw body and query, so it costs one pass over 64 KiB at most."""
    limit = current_app.config["MAX_FORM_FIELDS"]
    body = request.get_data(cache=True) if request.method == "POST" else b""
    fields = (body.count(b"&") + 1 if body else 0) + (
        request.query_string.count(b"&") + 1 if request.query_string else 0
    )
    if fields > limit:
        log.warning(
            "refused %s %s: %d form fields, more than IVR_MAX_FORM_FIELDS=%d",
            request.method,
            request.path,
            fields,
            limit,
        )
        raise RequestEntityTooLarge(f"{fields} form fields")


@bp.before_request
def check_signature() -> Response | None:
    """Refuse (403) a request whose X-Twilio-Signature fails, when TWILIO_AUTH_TOKEN is set."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    if not token or request.method == "OPTIONS":  # Flask answers OPTIONS itself: no view runs
        return None
    problem = signature_problem(request, token, current_app.config.get("PUBLIC_URL"))
    if not problem:
        return None
    # The reason, never the body: the body carries the caller's number and what they said.
    log.warning("rejected %s %s: %s", request.method, request.path, problem)
    return Response("forbidden", status=403, mimetype="text/html")


@bp.after_request
def say_refusals(response: Response) -> Response:
    """Tell a simulator which of its marks (the clock, simulated) were not honoured."""
    refused = refusals()
    if refused:
        response.headers["X-Ivr-Refused"] = "; ".join(refused)
    if response.allow:  # Flask's answer to OPTIONS, in an order that does not change from run to run
        response.headers["Allow"] = ", ".join(sorted(response.allow))
    return response


def xml(document: str) -> Response:
    return Response(document, status=200, mimetype="application/xml")


def caller_input(values: MultiDict[str, str]) -> Input:
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


def emergency(handler: CallHandler) -> str:
    """TwiML for a call that cannot be served: the apology, the operator, then after-emergency."""
    return handler.emergency(url_for("voice.after_emergency"))


def _webhook(
    step: int, node: str | None, seal: str | None = None, kind: str = "", ticket: str = "", answered_by: str = ""
) -> Response:
    started = time.perf_counter()
    rt = runtime()
    handler = rt.handler_for(request)
    values = request.values
    sid = values.get("CallSid", "")
    if not _SID.fullmatch(sid):
        _log("", step, "", "no-call-sid", started, False)
        return xml(emergency(handler))
    seal = values.get("s", "") if seal is None else seal
    revision = values.get("r", "")[:16]
    given = caller_input(values)
    moment = request_now(rt, request)
    media = media_url(handler)
    hook = Webhook(sid, step, node, seal, given, moment, request.script_root, media, revision, ticket, answered_by)
    try:
        answer = handler.handle(hook)
    except Exception:
        reference = rt.incidents.failed("webhooks fail")
        _log(sid, step, node or "", "emergency", started, False, incident=reference)
        return xml(emergency(handler))
    rt.incidents.worked()
    _log(sid, step, answer.node, kind + answer.outcome, started, answer.anonymous)
    for listener in rt.listeners:
        listener(sid, answer)
    return xml(answer.twiml)


@_route("", "entry")
def entry() -> Response:
    """The entry webhook a Twilio number points at."""
    return _webhook(0, None)


@bp.route("/step/<step:number>/<path:node>", methods=_METHODS)
def step(number: int, node: str) -> Response:
    """Where every Gather and Dial comes back, with the call's state sealed in the query (`s`)."""
    return _webhook(number, node)


@_route("/callback", "callback")
def callback() -> Response:
    """The webhook of a call the hotline placed to answer a call-back request (`ivr callbacks run`):
    its ticket (which request, which attempt) sealed in `t`; AnsweredBy from Twilio's machine detection."""
    values = request.values
    return _webhook(0, None, ticket=_ticket(values), answered_by=_answered_by(values))


def _ticket(values: Any) -> str:
    """A call-back call's sealed ticket (`t`); "-" when there is none, which opens as no ticket."""
    return str(values.get("t", ""))[:512] or "-"


def _answered_by(values: Any) -> str:
    """Who answered a call-back call, by Twilio's answering-machine detection (AnsweredBy)."""
    return str(values.get("AnsweredBy", ""))[:32]


@_route("/callback/status", "callback_status")
def callback_status() -> Response:
    """The status callback of a call-back call: the journal row is closed, the attempt ended, and the
    request answered, tried again later, or given up by the flow's policy."""
    return _status(_ticket(request.values))


@_route("/fallback", "fallback")
def fallback() -> Response:
    """The number's fallback URL: Twilio calls it when a webhook failed (no answer, an error, a cut
    connection), with the URL that failed in ErrorUrl. The answer is the one the failed webhook
    would have given: a step's state is sealed in that URL, and a step with an effect that was
    committed is repeated from its stored answer (the same reference, nothing spent twice). A call
    whose failed URL is not a step of ours is greeted as a new call."""
    values = request.values
    failed = urlsplit(values.get("ErrorUrl", ""))
    code = values.get("ErrorCode", "")[:16] or "(none)"
    query = {key: found[0] for key, found in parse_qs(failed.query).items()}
    matched = runtime().handler.paths.match(failed.path)
    endpoint, arguments = (matched[1], matched[2]) if matched else ("", {})
    if endpoint == "voice.step":
        log.warning("fallback for step %s after Twilio error %s", arguments["number"], code)
        return _webhook(arguments["number"], arguments["node"], query.get("s", ""), kind="fallback-")
    if endpoint == "voice.callback":  # a call-back call's first webhook: its ticket again
        log.warning("fallback for a call-back call after Twilio error %s", code)
        return _webhook(0, None, kind="fallback-", ticket=_ticket(query), answered_by=_answered_by(values))
    log.warning("fallback for a call's first webhook after Twilio error %s", code)
    return _webhook(0, None, kind="fallback-")


@_route("/status", "status")
def status() -> Response:
    """Twilio's status callback: a finished call's state is forgotten."""
    return _status("")


def _status(ticket: str) -> Response:
    rt = runtime()
    values = request.values
    sid = values.get("CallSid", "")
    call_status = values.get("CallStatus", "")
    if _SID.fullmatch(sid) and call_status in _FINAL_STATUSES:
        text = values.get("CallDuration", "")
        duration = int(text) if text.isascii() and text.isdigit() and len(text) < 7 else None
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
    return xml(twiml.empty())


@_route("/after-emergency", "after_emergency")
def after_emergency() -> Response:
    """After the emergency transfer: a last word and goodbye."""
    handler = runtime().handler
    return xml(handler.after_emergency(media_url(handler)))


def media_url(handler: CallHandler) -> str:
    """The absolute URL this flow's recordings are served from, as the caller's request reached us
    (behind a proxy: the public one, see TRUST_PROXY); "" when nothing is recorded."""
    if not handler.recordings:
        return ""
    return f"{request.url_root.rstrip('/')}/prompts/{quote(handler.flow.name, safe='')}"
