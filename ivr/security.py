"""Twilio request signatures: which URL was signed, and whether the signature holds."""

from __future__ import annotations

import logging

from flask import Request
from twilio.request_validator import RequestValidator

log = logging.getLogger("ivr.security")


def signed_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio signed: the public base (the ngrok address) joined with path and query."""
    if not public_url:
        return request.url
    query = request.query_string.decode("latin-1")
    return public_url.rstrip("/") + request.path + (f"?{query}" if query else "")


def signature_problem(request: Request, token: str, public_url: str | None) -> str | None:
    """Why the request's X-Twilio-Signature is not valid, or None when it is."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return "no X-Twilio-Signature header"
    params = request.form if request.method == "POST" else {}
    url = signed_url(request, public_url)
    if RequestValidator(token).validate(url, params, signature):
        return None
    return f"signature does not match {url!r} (is IVR_PUBLIC_URL the address Twilio calls?)"
