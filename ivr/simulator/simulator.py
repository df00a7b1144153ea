"""The simulator: places calls into a TwiML app, in-process or over HTTP."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .call import Call
from .line import ANSWERED_BY, UNANSWERED
from .transport import HttpSession, InProcessSession, Session
from .urls import joined

DEFAULT_FROM = "+79161234567"
DEFAULT_TO = "+78002001441"
DEFAULT_ACCOUNT = "AC" + "0" * 32
EARLIEST, LATEST = 1970, 2199  # the years a simulated call may be placed in (the app refuses others)


def parse_at(value: str | datetime | None) -> datetime | None:
    """`at` as a datetime (without an offset it is left for the app to read in the flow's zone);
    a string must be ISO-8601, from 1970 to 2199 (raises ValueError otherwise)."""
    if value is None or isinstance(value, datetime):
        return value
    text = value.strip()
    try:  # Python 3.11 reads a trailing Z as UTC
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date and time like 2021-03-01T10:00:00+03:00") from None
    if not EARLIEST <= moment.year <= LATEST:
        raise ValueError(f"{value!r} is out of range: give a moment from {EARLIEST} to {LATEST}")
    return moment


class Simulator:
    """Plays Twilio's part for a TwiML app: `Simulator(app)` in-process, or `Simulator(url=...)`."""

    def __init__(
        self,
        app: Any = None,
        *,
        url: str | None = None,
        method: str = "POST",
        path: str = "/voice",
        auth_token: str | None = None,
        account_sid: str | None = None,
        status_callback: str | None = None,
        loop_limit: int = 50,
        fallback_url: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        """`fallback_url` is the number's fallback URL: requested, as Twilio does, when the app fails;
        `params` are Twilio's conditional parameters sent with every request (ForwardedFrom,
        CallerName, FromCountry, ParentCallSid ...)."""
        if (app is None) == (url is None):
            raise ValueError("give either an app (in-process) or a url (over HTTP), not both or neither")
        self.app = app
        self.url = url if url is not None else InProcessSession.base_url + path
        self.method = method.upper()
        if self.method not in ("GET", "POST"):
            raise ValueError(f"method {method!r} is not GET or POST")
        self.auth_token = auth_token if auth_token is not None else os.environ.get("TWILIO_AUTH_TOKEN") or None
        self.account_sid = account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or DEFAULT_ACCOUNT
        self.status_callback = status_callback
        self.loop_limit = loop_limit
        self.fallback_url = fallback_url
        self.params = dict(params or {})

    def _session(self) -> Session:
        if self.app is not None:
            return InProcessSession(self.app)
        return HttpSession(self.url)

    def outbound(
        self,
        url: str,
        to: str,
        from_: str = DEFAULT_TO,
        answer: str = "human",
        at: str | datetime | None = None,
        status_callback: str | None = None,
        call_sid: str | None = None,
    ) -> Call:
        """A call placed through Twilio's REST API (calls.create with machine detection): `url` is its
        webhook, `to` the callee, `answer` how the callee answers (human, machine_start, fax, unknown
        ... sent as AnsweredBy; or busy, no-answer, failed: no webhook, only the status callback)."""
        if answer not in ANSWERED_BY + UNANSWERED:
            raise ValueError(f"answer {answer!r} is not one of {', '.join(ANSWERED_BY + UNANSWERED)}")
        entry = joined(self.url, url)
        return self._place(entry, from_, to, at, call_sid, status_callback, {}, direction="outbound-api", answer=answer)

    def call(
        self,
        from_: str = DEFAULT_FROM,
        to: str = DEFAULT_TO,
        at: str | datetime | None = None,
        call_sid: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Call:
        """Place a call; it runs until it first waits for the caller (or ends). `params` are more of
        Twilio's conditional parameters for this call alone."""
        return self._place(self.url, from_, to, at, call_sid, None, params or {})

    def _place(
        self,
        entry: str,
        from_: str,
        to: str,
        at: str | datetime | None,
        call_sid: str | None,
        status_callback: str | None,
        params: Mapping[str, str],
        **how: str,
    ) -> Call:
        return Call(
            self._session(),
            entry,
            method=self.method,
            from_=from_,
            to=to,
            at=parse_at(at),
            auth_token=self.auth_token,
            account_sid=self.account_sid,
            call_sid=call_sid,
            status_callback=status_callback or self.status_callback,
            loop_limit=self.loop_limit,
            fallback_url=self.fallback_url,
            params={**self.params, **params},
            **how,
        )
