"""The webhook paths, built and matched by werkzeug from the voice blueprint's own routes.

Flask's `url_for` builds from the same rules; this binds them once so that URLs can also be made
where no request is being served (a call-back placed by `ivr callbacks run`, the crawler's twins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map
from werkzeug.routing.exceptions import RequestRedirect

PREFIX = "/voice"  # the voice blueprint's url_prefix
MAX_STEP = 1_000_000


class StepConverter(BaseConverter):
    """A step number in an action URL; anything that is not a plain number becomes -1 (a lost call,
    said politely: Twilio would read a 404 to the caller as an application error)."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> int:
        number = int(value) if value.isascii() and value.isdigit() and len(value) < 8 else -1
        return number if number <= MAX_STEP else -1

    def to_url(self, value: Any) -> str:
        return str(int(value))


class Paths:
    """Builds and matches the paths of the voice blueprint's endpoints (without the app's root)."""

    def __init__(self, url_map: Map) -> None:
        self._adapter = url_map.bind("localhost")

    def build(self, endpoint: str, values: Mapping[str, Any]) -> str:
        """The path of `endpoint` with `values` (those that are no part of its rule go in the query)."""
        return self._adapter.build(endpoint, dict(values))

    def match(self, path: str) -> tuple[str, str, dict[str, Any]] | None:
        """(root, endpoint, arguments) of a path of ours, mounted at any root, or None."""
        root, found, rest = path.partition(PREFIX)
        if not found:
            return None
        try:
            endpoint, arguments = self._adapter.match(PREFIX + rest, method="POST")
        except (HTTPException, RequestRedirect):
            return None
        return root, str(endpoint), dict(arguments)
