"""Point a Twilio number at this server: its voice webhook, fallback and status callback, via the REST API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ivr.errors import IvrError, reason
from ivr.web.config import public_url_problem


class SetupError(IvrError):
    """A number cannot be connected; the message says what to fix."""


@dataclass(frozen=True)
class Setting:
    """One setting of the number: what it was and what it becomes."""

    name: str
    before: str
    after: str

    @property
    def changes(self) -> bool:
        return self.before != self.after


def make_client(account_sid: str, auth_token: str, http_client: Any = None) -> Any:
    """The twilio REST client (tests give it a recorded HTTP client instead of the network)."""
    from twilio.rest import Client

    return Client(account_sid, auth_token, http_client=http_client)


def network_reason(exc: BaseException) -> str:
    """Why a request to Twilio's API did not get through, in a few words: the operating system's
    reason at the bottom of the HTTP library's chain ("Connection refused", "Name or service not
    known"), not the chain itself with its URL and retry count."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        said = str(found[-1]).strip()
    elif "timed out" in text.lower():
        said = "the connection timed out"
    else:
        said = reason(exc)
    return said + (" (at the proxy HTTPS_PROXY names)" if "ProxyError" in text else "")


def check_public_url(url: str) -> str:
    """The public base URL without a trailing slash; Twilio needs https and a host."""
    problem = public_url_problem(url)
    if problem:
        raise SetupError(f"{url!r} {problem}")
    return url.strip().rstrip("/")


def check_number(number: str) -> str:
    """A phone number in E.164 (+ and 8 to 15 digits), as Twilio lists its numbers."""
    if not re.fullmatch(r"\+[1-9][0-9]{7,14}", number.strip()):
        raise SetupError(f"{number!r} is not a number in E.164, like +15005550006 (a plus, the country code, digits)")
    return number.strip()


def connect(client: Any, number: str, public_url: str, dry_run: bool) -> list[Setting]:
    """Point `number`'s voice webhook (POST /voice), its fallback (POST /voice/fallback: Twilio calls it
    when the webhook fails) and its status callback (POST /voice/status) at public_url."""
    base = check_public_url(public_url)
    number = check_number(number)
    found = client.incoming_phone_numbers.list(phone_number=number, limit=2)
    if not found:
        others = [n.phone_number for n in client.incoming_phone_numbers.list(limit=5)]
        listed = ", ".join(others) if others else "none"
        raise SetupError(f"{number} is not a number of this Twilio account (its numbers include: {listed})")
    phone = found[0]
    wanted = {
        "voice_url": f"{base}/voice",
        "voice_method": "POST",
        "voice_fallback_url": f"{base}/voice/fallback",
        "voice_fallback_method": "POST",
        "status_callback": f"{base}/voice/status",
        "status_callback_method": "POST",
    }
    settings = [Setting(name, getattr(phone, name) or "", value) for name, value in wanted.items()]
    if not dry_run and any(s.changes for s in settings):
        phone.update(**wanted)
    return settings
