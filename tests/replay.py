"""Recorded Twilio REST exchanges, replayed instead of the network (the twilio client's HTTP client replaced)."""

from __future__ import annotations

import json
import logging
from typing import Any

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
