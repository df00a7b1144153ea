"""A phone in the browser: /simulator serves a page that drives the simulator through a small JSON API.

It answers only requests made on this machine, never through a tunnel or proxy.

The page holds no telephony logic: every key, word, silence and transfer outcome goes to the same
Simulator the terminal and the tests use, in-process against this app, with the simulated clock.
On by default under `ivr serve`, off under gunicorn unless IVR_SIMULATOR=1.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from ivr.simulator import DIAL_OUTCOMES, QUEUE_RESULTS, Call, Simulator, SimulatorError, parse_at
from ivr.web.security import is_local

bp = Blueprint("webphone", __name__, url_prefix="/simulator")
_MAX_CALLS = 50  # calls kept in memory; the oldest is dropped
_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


class _Calls:
    """Calls in progress, by an id the page holds."""

    def __init__(self) -> None:
        self.calls: OrderedDict[str, Call] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, call: Call) -> str:
        key = secrets.token_urlsafe(8)
        with self.lock:
            self.calls[key] = call
            while len(self.calls) > _MAX_CALLS:
                self.calls.popitem(last=False)
        return key

    def get(self, key: str) -> Call:
        with self.lock:
            call = self.calls.get(key)
        if call is None:
            abort(404, description="no such call (it may have been dropped); place a new one")
        return call


@bp.before_request
def only_this_machine() -> None:
    """The web phone places calls into this app's own database: it answers only on this machine.

    Behind ngrok or a load balancer a request arrives from 127.0.0.1 too, but carries forwarding
    headers; such a request is refused, so a public tunnel never exposes the simulator.
    """
    if not is_local(request):
        abort(403, description="the phone simulator answers only on the machine that runs the server")


def _waiting(call: Call) -> dict[str, Any] | None:
    if call.ended or call.waiting is None:
        return None
    el = call.waiting.element
    if call.waiting.verb != "gather":
        return {"verb": call.waiting.verb, "targets": call.dialed or []}
    return {
        "verb": "gather",
        "input": el.get("input", "dtmf").split(),
        "num_digits": int(el.get("numDigits", "0") or 0),
        "finish_on_key": el.get("finishOnKey", "#"),
    }


def _state(key: str, call: Call, since: int = 0, exchanges_since: int = 0) -> Response:
    return jsonify(
        {
            "id": key,
            "call_sid": call.call_sid,
            "events": call.events[since:],
            "event_count": len(call.events),
            "exchanges": [
                {"method": x.method, "url": x.url, "params": x.params, "status": x.status, "twiml": x.body}
                for x in call.exchanges[exchanges_since:]
            ],
            "exchange_count": len(call.exchanges),
            "waiting": _waiting(call),
            "ended": call.end,
            "clock": call.clock.isoformat() if call.clock else None,
        }
    )


_CALLER = re.compile(r"\+?[0-9]{3,15}|anonymous")


def _body() -> dict[str, Any]:
    """The request's JSON object ({} when there is none); a 400 in JSON for anything else."""
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        abort(400, description='send a JSON object, like {"kind": "keys", "text": "5"}')
    return body


def _error(message: str, status: int = 400) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@bp.get("")
@bp.get("/")
def page() -> Response:
    """The phone."""
    text = (resources.files("ivr.web") / "static" / "simulator.html").read_text(encoding="utf-8")
    return Response(text, mimetype="text/html")


@bp.get("/assets/<name>")
def asset(name: str) -> Response:
    if name not in _ASSETS:
        abort(404)
    text = (resources.files("ivr.web") / "static" / name).read_text(encoding="utf-8")
    return Response(text, mimetype=_ASSETS[name])


@bp.post("/api/calls")
def place_call() -> Response:
    """Place a call: {"from": "+7...", "at": "2021-03-06T10:00"} (at is read in the flow's zone)."""
    body = _body()
    caller = body.get("from") or "+79161234567"
    if not isinstance(caller, str) or not _CALLER.fullmatch(caller.strip()):
        return _error(f"'from' {caller!r} is not a phone number like +79161234567, nor 'anonymous'")
    caller = caller.strip()
    at_text = str(body.get("at") or "").strip()
    try:
        at = parse_at(at_text) if at_text else None
    except ValueError as exc:
        return _error(str(exc))
    if at is not None and at.tzinfo is None:
        from zoneinfo import ZoneInfo

        at = at.replace(tzinfo=ZoneInfo(current_app.extensions["ivr"].handler.flow.settings.timezone))
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    token = app.config.get("TWILIO_AUTH_TOKEN") or ""
    simulator = Simulator(app, auth_token=token, status_callback="/voice/status")
    call = simulator.call(from_=caller, at=at)
    key = current_app.extensions["ivr.webphone"].add(call)
    return _state(key, call)


@bp.post("/api/calls/<key>/input")
def caller_input(key: str) -> Response:
    """What the caller does: {"kind": "keys"|"say"|"silence"|"dial"|"record"|"queue"|"hangup", "text": ...}."""
    call = current_app.extensions["ivr.webphone"].get(key)
    body = _body()
    kind, text = str(body.get("kind", "")), str(body.get("text", ""))[:500]
    since, exchanges_since = len(call.events), len(call.exchanges)
    try:
        if kind == "keys" and text and all(ch in "0123456789*#" for ch in text):
            call.press(text)
        elif kind == "say" and text.strip():
            call.say(text.strip())
        elif kind == "silence":
            call.silence()
        elif kind == "dial" and text in DIAL_OUTCOMES:
            call.dial_outcome(text)
        elif kind == "record":
            call.record(text)
        elif kind == "queue" and text in QUEUE_RESULTS:
            call.queue_outcome(text)
        elif kind == "hangup":
            call.hangup()
        else:
            return _error(
                f"{kind!r} with {text!r} is not something a caller can do; use keys 0-9 * #, say, "
                f"silence, dial ({', '.join(DIAL_OUTCOMES)}), record, queue ({', '.join(QUEUE_RESULTS)}) or hangup"
            )
    except SimulatorError as exc:
        return _error(str(exc), 409)
    return _state(key, call, since, exchanges_since)


@bp.get("/api/calls/<key>")
def transcript(key: str) -> Response:
    """The whole call so far."""
    return _state(key, current_app.extensions["ivr.webphone"].get(key))


def install(app: Flask) -> None:
    """Serve the web phone from this app."""
    app.extensions["ivr.webphone"] = _Calls()
    app.register_blueprint(bp)
