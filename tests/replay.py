"""Recorded Twilio REST exchanges, replayed instead of the network (the twilio client's HTTP client replaced)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from twilio.http import HttpClient
from twilio.http.response import Response


class Replay(HttpClient):
    """Answers each request with the next recorded response, after checking it is the recorded request."""

    def __init__(self, exchanges: list[dict[str, Any]], auth: tuple[str, str]) -> None:
        super().__init__(logging.getLogger("replay"), is_async=False)
        self.exchanges = list(exchanges)
        self.auth = auth

    def request(
        self,
        method: str,
        uri: str,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = False,
    ) -> Response:
        assert self.exchanges, f"unexpected request {method} {uri}"
        recorded = self.exchanges.pop(0)
        assert {"method": method, "url": uri, "params": params or None, "data": data or None} == recorded["request"]
        assert auth == self.auth
        return Response(recorded["response"]["status"], json.dumps(recorded["response"]["body"]))


class Recorded:
    """Puts recorded exchanges in place of Twilio's API for `ivr` commands (they build their client
    with twilio_setup.make_client); `check()` says whether every recorded request was made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, recorded: dict[str, Any], auth: tuple[str, str]) -> None:
        self.monkeypatch, self.recorded, self.auth = monkeypatch, recorded, auth
        self.used: list[Replay] = []

    def __call__(self, name: str) -> Replay:
        from ivr.tools import twilio_setup

        real = twilio_setup.make_client
        http = Replay(self.recorded[name], self.auth)
        self.used.append(http)
        self.monkeypatch.setattr(twilio_setup, "make_client", lambda sid, token: real(sid, token, http))
        return http

    def check(self) -> None:
        for http in self.used:
            assert http.exchanges == [], "not every recorded request was made"
