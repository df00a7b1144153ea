"""The probes a load balancer asks (/healthz, /readyz) and the recorded prompts Twilio plays."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, abort, request, send_from_directory

from ivr.engine.studio import AUDIO_TYPES
from ivr.errors import reason
from ivr.web.runtime import runtime
from ivr.web.security import is_local

bp = Blueprint("probes", __name__)


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
        body = {"status": "not ready", "reason": why if is_local(request) else "see the server log"}
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
