"""How the simulator reaches an app: in-process through Flask's test client, or over HTTP."""

from __future__ import annotations

import email.message
import http.client
import http.cookiejar
import io
import sys
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
    refused: str = ""  # what the app said it did not honour (X-Ivr-Refused): the clock, the mark
    prompt: str = ""  # the words of a recorded prompt (X-Ivr-Prompt), for the transcript


class Session(Protocol):
    """One call's connection to the app: keeps that call's cookies."""

    base_url: str

    def send(
        self, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], clock: str | None
    ) -> Reply: ...


class _Cookies:
    """One call's cookies, kept as a browser keeps them (http.cookiejar), for either transport."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()

    def header(self, url: str) -> str | None:
        request = urllib.request.Request(url)
        self.jar.add_cookie_header(request)
        return request.get_header("Cookie")

    def keep(self, url: str, headers: list[tuple[str, str]]) -> None:
        message = email.message.Message()
        for name, value in headers:
            message[name] = value
        self.jar.extract_cookies(_Answered(message), urllib.request.Request(url))  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Answered:
    """What http.cookiejar needs of a response: its headers."""

    message: email.message.Message

    def info(self) -> email.message.Message:
        return self.message


class InProcessSession:
    """Requests straight into the app's WSGI callable, as a server would hand them over; the
    simulated clock travels in the WSGI environ."""

    base_url = "http://localhost"

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies = _Cookies()

    def send(
        self, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], clock: str | None
    ) -> Reply:
        parts = urllib.parse.urlsplit(url)
        body = urllib.parse.urlencode(params).encode() if method == "POST" else b""
        raw_path = parts.path or "/"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": parts.query,
            "RAW_URI": raw_path + (f"?{parts.query}" if parts.query else ""),
            "SERVER_NAME": parts.hostname or "localhost",
            "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": parts.netloc,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": parts.scheme or "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if method == "POST":
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        cookie = self.cookies.header(url)
        if cookie:
            environ["HTTP_COOKIE"] = cookie
        if clock:
            environ["ivr.clock"] = clock
        environ["ivr.simulated"] = True  # kept apart from real calls by the app
        answered: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status, response_headers]
            return lambda _data: None

        result = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, response_headers = answered
        self.cookies.keep(url, response_headers)
        found = {k.lower(): v for k, v in response_headers}
        return Reply(
            int(status.split(" ", 1)[0]),
            payload,
            found.get("content-type", ""),
            refused=found.get("x-ivr-refused", ""),
            prompt=urllib.parse.unquote(found.get("x-ivr-prompt", "")),
        )


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
        request.add_header("X-Ivr-Simulated", "1")  # an app of ours keeps the call apart from real ones
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
                headers = response.headers
                return Reply(
                    response.status,
                    response.read(),
                    headers.get("Content-Type", ""),
                    refused=headers.get("X-Ivr-Refused", ""),
                    prompt=urllib.parse.unquote(headers.get("X-Ivr-Prompt", "")),
                )
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read(), exc.headers.get("Content-Type", ""))
        except http.client.HTTPException as exc:  # e.g. the answer cut off mid-body (IncompleteRead)
            return Reply(0, b"", "", error=f"{url} broke off its answer: {type(exc).__name__}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Reply(0, b"", "", error=f"cannot reach {url}: {reason}")
