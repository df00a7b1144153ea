"""Incidents: a run of failures of the store is logged once when it starts and once when it is over.

During a database outage every webhook and every status callback fails; a line (and a traceback)
for each would bury the one that matters. The first failure of a run gets a reference, a line and
the traceback; the others only count; the first success after them says the incident is over.
"""

from __future__ import annotations

import logging
import secrets
import threading


class Incidents:
    """The store's health as this process sees it, shared by every path that uses the store."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.failures = 0
        self.reference = ""
        self._lock = threading.Lock()

    def failed(self, what: str) -> str:
        """Count a failure (call from an `except` block); the first of a run is logged with its
        traceback. Returns the incident's reference, for the webhook's own log line."""
        with self._lock:
            self.failures += 1
            if self.failures == 1:
                self.reference = secrets.token_hex(4)
                self.log.exception("incident %s: %s; callers are connected to the operator", self.reference, what)
            return self.reference

    def worked(self) -> None:
        """The store worked: an incident in progress is over."""
        if not self.failures:  # the common case, without the lock
            return
        with self._lock:
            if self.failures:
                self.log.warning(
                    "incident %s over: the store works again after %d failures", self.reference, self.failures
                )
                self.failures, self.reference = 0, ""
