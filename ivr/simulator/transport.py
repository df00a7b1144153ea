"""How the simulator reaches an app: in-process through Flask's test client, or over HTTP."""

from __future__ import annotations

import email.message
import http.cookiejar
import io
import logging
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, or `error` when there was none."""

    status: int
    body: bytes
    content_type: str = ""
    error: str | None = None
    refused: str = ""  # what the app said it did not honour (X-Ivr-Refused): the clock, the mark
    prompt: str = ""  # the words of a recorded prompt (X-Ivr-Prompt), for the transcript
    location: str = ""  # where a redirect (3xx) points
    code: str = "11205"  # Twilio's error code when there was no usable answer (`error`)
    url: str = ""  # the URL that answered, after the redirects followed
    # What was sent to it, for the transcript: the method (a redirect may have turned POST into
    # GET), the URL as sent (a GET's parameters in its query) and the parameters.
    method: str = ""
    sent: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


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
        if not self.jar:  # most apps set none: no request to build for the jar
            return None
        request = urllib.request.Request(url)
        self.jar.add_cookie_header(request)
        return request.get_header("Cookie")

    def keep(self, url: str, headers: list[tuple[str, str]]) -> None:
        if not any(name.lower() in ("set-cookie", "set-cookie2") for name, _ in headers):
            return
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
            location=found.get("location", ""),
        )


@dataclass(frozen=True)
class Overrides:
    """Twilio's connection overrides, written in a webhook URL's fragment (`#ct=2000&rt=3000&rc=2`):
    connect and read timeouts, a total time, retries and which failures are retried. The fragment
    is never sent."""

    connect_ms: int = 5000
    read_ms: int = 15000
    total_ms: int = 15000
    retries: int = 1
    policy: frozenset[str] = frozenset({"ct"})
    unmodelled: tuple[str, ...] = ()  # overrides understood by Twilio that the simulator has no use for

    @classmethod
    def of(cls, url: str) -> Overrides:
        if "#" not in url:  # no fragment: Twilio's defaults
            return _DEFAULTS
        fragment = urllib.parse.urlsplit(url).fragment
        if not fragment:
            return cls()
        values = dict(urllib.parse.parse_qsl(fragment))

        def number(key: str, default: int, low: int, high: int) -> int:
            text = values.get(key, "")
            return min(max(int(text), low), high) if text.isdigit() else default

        policy = frozenset(p.strip() for p in values.get("rp", "ct").split(",") if p.strip())
        if "all" in policy:
            policy = frozenset({"4xx", "5xx", "ct", "rt"})
        return cls(
            number("ct", 5000, 100, 10000),
            number("rt", 15000, 100, 15000),
            number("tt", 15000, 100, 15000),
            number("rc", 1, 0, 5),
            policy,
            tuple(k for k in values if k in ("e", "edge", "sni")),
        )


_DEFAULTS = Overrides()


def without_fragment(url: str) -> str:
    return urllib.parse.urlsplit(url)._replace(fragment="").geturl()


# httpx says every request at INFO: the simulator shows its requests itself (-v).
logging.getLogger("httpx").setLevel(logging.WARNING)


class HttpSession:
    """Real HTTP to any URL (httpx), with a cookie jar; no redirect is followed here (the call
    follows them as Twilio does); the timeouts are Twilio's, or the URL's connection overrides;
    the simulated clock goes in X-Ivr-Clock."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.base_url = base_url
        self.client = httpx.Client(follow_redirects=False, trust_env=False)

    def send(
        self, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], clock: str | None
    ) -> Reply:
        import httpx

        overrides = Overrides.of(url)
        target = without_fragment(url)
        sent = dict(headers)
        if clock:
            sent["X-Ivr-Clock"] = clock
        sent["X-Ivr-Simulated"] = "1"  # an app of ours keeps the call apart from real ones
        deadline = time.monotonic() + overrides.total_ms / 1000
        attempt, reply = 0, Reply(0, b"", "", error=f"cannot reach {target}")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return replace(reply, error=reply.error or f"{target} took longer than {overrides.total_ms} ms in all")
            timeout = httpx.Timeout(
                connect=min(overrides.connect_ms / 1000, left),
                read=min(overrides.read_ms / 1000, left),
                write=left,
                pool=left,
            )
            failure = ""
            try:
                if method == "POST":
                    response = self.client.post(target, data=dict(params), headers=sent, timeout=timeout)
                else:
                    response = self.client.get(target, headers=sent, timeout=timeout)
                reply = _reply(response)
                failure = "5xx" if reply.status >= 500 else "4xx" if reply.status >= 400 else ""
            except httpx.ConnectTimeout:
                reply, failure = (
                    Reply(0, b"", "", error=f"cannot reach {target}: no connection within {overrides.connect_ms} ms"),
                    "ct",
                )
            except httpx.ConnectError as exc:
                reply, failure = Reply(0, b"", "", error=f"cannot reach {target}: {_reason(exc)}"), "ct"
            except httpx.ReadTimeout:
                reply, failure = Reply(0, b"", "", error=f"{target} did not answer within {overrides.read_ms} ms"), "rt"
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:  # e.g. the answer cut off mid-body
                return Reply(0, b"", "", error=f"{target} broke off its answer: {type(exc).__name__}")
            except httpx.HTTPError as exc:
                return Reply(0, b"", "", error=f"cannot reach {target}: {_reason(exc)}")
            if not failure or failure not in overrides.policy or attempt >= overrides.retries:
                return reply
            attempt += 1


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.split("] ", 1)[-1]


def _reply(response: Any) -> Reply:
    headers = response.headers
    return Reply(
        response.status_code,
        response.content,
        headers.get("Content-Type", ""),
        refused=headers.get("X-Ivr-Refused", ""),
        prompt=urllib.parse.unquote(headers.get("X-Ivr-Prompt", "")),
        location=headers.get("Location", ""),
    )
