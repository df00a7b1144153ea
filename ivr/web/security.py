"""Twilio request signatures: which URL was signed, and whether the signature holds."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import quote

from flask import Request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

log = logging.getLogger("ivr.security")


def signed_urls(request: Request, public_url: str | None) -> list[str]:
    """The URLs Twilio may have signed for this request, most likely first.

    Twilio signs the URL it requested. Behind ngrok or a load balancer that is the public address
    (IVR_PUBLIC_URL, or the forwarded headers when IVR_TRUST_PROXY says to trust them), not the
    one the app sees. The path is taken as it came on the wire when the server tells us (RAW_URI),
    since re-quoting it may differ in characters such as `{` or a space.
    """
    base = public_url.rstrip("/") if public_url else request.host_url.rstrip("/")
    query = request.query_string.decode("latin-1")
    candidates = []
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        candidates.append(base + raw)
    candidates.append(base + quote(request.path, safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else ""))
    if not public_url:
        candidates.append(request.url)
    return list(dict.fromkeys(candidates))


def signature_problem(request: Request, token: str, public_url: str | None) -> str | None:
    """Why the request's X-Twilio-Signature is not valid, or None when it is.

    One HMAC for the URL Twilio most likely signed; the other candidates (the URL re-quoted, with or
    without the port, the local address a simulator on this machine signs) only when that fails.
    """
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return "no X-Twilio-Signature header"
    params: MultiDict[str, str] = request.form
    validator = RequestValidator(token)
    urls = signed_urls(request, public_url)
    if hmac.compare_digest(validator.compute_signature(urls[0], params).encode(), signature.encode()):
        return None
    if public_url and is_local(request):
        # The simulator on this machine signs for the address it calls, not the tunnel's.
        urls += signed_urls(request, None)
    if any(validator.validate(url, params, signature) for url in urls):
        return None
    return f"signature does not match {urls[0]!r} (is IVR_PUBLIC_URL the address Twilio calls?)"


_LOOPBACK = ("127.", "::1", "localhost")
# X-Forwarded-For, X-Forwarded-Host, Forwarded, X-Real-Ip, as WSGI names them
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def is_local(request: Request) -> bool:
    """True for a request made on this machine, not relayed by a tunnel or proxy (ngrok connects
    from 127.0.0.1 too, but adds forwarding headers)."""
    environ = request.environ
    remote = request.remote_addr or ""
    return remote.startswith(_LOOPBACK) and not any(h in environ for h in _PROXY_HEADERS)
