"""Twilio's voice webhooks: POST /voice (entry), step webhooks, POST /voice/status."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, request, url_for
from werkzeug.datastructures import MultiDict

from . import clock, twiml
from .calls import CallHandler
from .engine import Input
from .security import signature_problem

log = logging.getLogger("ivr.web")
bp = Blueprint("voice", __name__)

_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_MAX_STEP = 1_000_000


@dataclass
class Runtime:
    """What the webhooks share: the call handler and the clock policy."""

    handler: CallHandler
    allow_simulated_clock: bool


def runtime() -> Runtime:
    value: Runtime = current_app.extensions["ivr"]
    return value


def xml(document: str) -> Response:
    return Response(document, status=200, mimetype="application/xml")


@bp.before_request
def check_signature() -> None:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    if not token:
        return
    problem = signature_problem(request, token, current_app.config.get("PUBLIC_URL"))
    if problem:
        log.warning("rejected %s %s: %s", request.method, request.path, problem)
        abort(403)


def request_now() -> datetime:
    """The request's moment: the real clock, unless a simulator is allowed to move it."""
    text = request.environ.get("ivr.clock")  # set only by the in-process simulator
    if text is None and runtime().allow_simulated_clock:
        text = request.headers.get("X-Ivr-Clock")
    if text:
        try:
            return clock.parse(text, runtime().handler.flow.settings.timezone)
        except ValueError:
            log.warning("ignored an unreadable simulated clock %r", text[:40])
    return clock.now()


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


def _webhook(step: int, node: str | None) -> Response:
    handler = runtime().handler
    sid = request.values.get("CallSid", "")
    fallback_url = url_for("voice.after_emergency")
    if not _SID.fullmatch(sid):
        log.warning("webhook without a usable CallSid on %s", request.path)
        return xml(handler.emergency(fallback_url))

    def action_url(next_step: int, next_node: str) -> str:
        return url_for("voice.step", step=next_step, node=next_node)

    try:
        document = handler.handle(sid, step, node, caller_input(request.values), request_now(), action_url)
    except Exception:
        log.exception("call %s: webhook failed; connecting the caller to the operator", sid)
        document = handler.emergency(fallback_url)
    return xml(document)


@bp.route("/voice", methods=["GET", "POST"])
def entry() -> Response:
    """The entry webhook a Twilio number points at."""
    return _webhook(0, None)


@bp.route("/voice/step/<step>/<path:node>", methods=["GET", "POST"])
def step(step: str, node: str) -> Response:
    """Where every Gather and Dial comes back."""
    number = int(step) if step.isdigit() and len(step) < 8 else -1
    return _webhook(number if number <= _MAX_STEP else -1, node)


@bp.route("/voice/status", methods=["GET", "POST"])
def status() -> Response:
    """Twilio's status callback: a finished call's state is forgotten."""
    sid = request.values.get("CallSid", "")
    if _SID.fullmatch(sid) and request.values.get("CallStatus") in _FINAL_STATUSES:
        try:
            runtime().handler.store.end_call(sid)
        except Exception:
            log.exception("call %s: could not forget the finished call", sid)
    return xml(twiml.empty())


@bp.route("/voice/after-emergency", methods=["GET", "POST"])
def after_emergency() -> Response:
    """After the emergency transfer: a last word and goodbye."""
    return xml(runtime().handler.after_emergency())
