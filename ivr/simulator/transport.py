"""How the simulator reaches an app: in-process through Flask's test client, or over HTTP."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

WEBHOOK_TIMEOUT = 15.0  # seconds Twilio waits for a webhook before giving up


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, or `error` when there was none."""

    status: int
    body: bytes
    content_type: str = ""
    error: str | None = None


class Session(Protocol):
    """One call's connection to the app: keeps that call's cookies."""

    base_url: str

    def send(
        self, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], clock: str | None
    ) -> Reply: ...


class InProcessSession:
    """Requests through Flask's test client; the simulated clock travels in the WSGI environ."""

    base_url = "http://localhost"

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()

    def send(
        self, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], clock: str | None
    ) -> Reply:
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        environ = {"ivr.clock": clock} if clock else {}
        kwargs: dict[str, Any] = {"headers": dict(headers), "environ_base": environ}
        if method == "POST":
            kwargs["data"] = dict(params)
        response = self.client.open(path, method=method, base_url=f"{parts.scheme}://{parts.netloc}", **kwargs)
        return Reply(response.status_code, response.get_data(), response.content_type or "")


class HttpSession:
    """Real HTTP to any URL, with a cookie jar; the simulated clock goes in X-Ivr-Clock."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def send(
        self, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], clock: str | None
    ) -> Reply:
        data = urllib.parse.urlencode(params).encode() if method == "POST" else None
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
        if clock:
            request.add_header("X-Ivr-Clock", clock)
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
                return Reply(response.status, response.read(), response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read(), exc.headers.get("Content-Type", ""))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Reply(0, b"", "", error=f"cannot reach {url}: {reason}")
