"""The one error handler of the app: on the webhook paths every error still answers TwiML."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ivr.web.paths import PREFIX
from ivr.web.runtime import runtime
from ivr.web.voice import emergency, xml

log = logging.getLogger("ivr.web")


def answer(error: Exception) -> Response | HTTPException:
    """TwiML on /voice (a body too large, an unknown path, a crash): the apology and the operator;
    JSON on the web phone's API; Flask's own page elsewhere."""
    if not isinstance(error, HTTPException):
        log.exception("unexpected error on %s", request.path)
    if request.path.startswith("/simulator/api"):  # the web phone's API answers JSON, always
        status = error.code if isinstance(error, HTTPException) and error.code else 500
        message = error.description if isinstance(error, HTTPException) else "internal error (see the server log)"
        return Response(json.dumps({"error": message}), status=status, mimetype="application/json")
    if not request.path.startswith(PREFIX):
        return error if isinstance(error, HTTPException) else Response("internal error", status=500)
    return xml(emergency(runtime().handler))


def register(app: Flask) -> None:
    app.register_error_handler(Exception, answer)
