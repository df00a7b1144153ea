"""What the webhooks of one app share, and what each request says about itself: real or simulated,
and when it happens."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import Request, current_app, g

from ivr import clock
from ivr.web.calls import Answer, CallHandler
from ivr.web.incidents import Incidents
from ivr.web.security import is_local

log = logging.getLogger("ivr.web")


@dataclass
class Runtime:
    """The call handlers (real calls, simulated calls), the clock policy, and the store's health."""

    handler: CallHandler
    allow_simulated_clock: bool
    # The handler of simulated calls, on a database of their own, made when the first one arrives.
    make_sandbox: Callable[[], CallHandler] | None = None
    sandbox_url: str = ""  # where simulated calls are kept (said by `ivr serve`)
    incidents: Incidents = field(default_factory=lambda: Incidents(log))
    # Called with (CallSid, Answer) after every answered webhook: the crawler and the journal listen.
    listeners: list[Callable[[str, Answer], None]] = field(default_factory=list)
    _sandbox: CallHandler | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sandbox(self) -> CallHandler:
        """The handler of simulated calls (the main one when simulated calls share its database)."""
        if self.make_sandbox is None:
            return self.handler
        with self._lock:
            if self._sandbox is None:
                self._sandbox = self.make_sandbox()
            return self._sandbox

    def dispose(self) -> None:
        """Close every database connection, of real and of simulated calls."""
        self.handler.store.dispose()
        if self._sandbox is not None and self._sandbox is not self.handler:
            self._sandbox.store.dispose()

    def handler_for(self, request: Request) -> CallHandler:
        """The handler of this request's call: the sandbox's for a simulated one."""
        return self.sandbox() if simulated(request) else self.handler


def runtime() -> Runtime:
    """The current app's runtime."""
    value: Runtime = current_app.extensions["ivr"]
    return value


_SAID_REFUSED: set[str] = set()


def refuse(what: str) -> None:
    """Say, in the answer's X-Ivr-Refused header and once per process in the log, that a simulator's
    mark was not honoured (the simulator shows the header to its user)."""
    g.setdefault("refused", []).append(what)
    if what not in _SAID_REFUSED:
        _SAID_REFUSED.add(what)
        log.warning("refused: %s", what)


def refusals() -> list[str]:
    """What this request's marks were refused for (see `refuse`)."""
    found: list[str] = g.get("refused", [])
    return found


def simulated(request: Request) -> bool:
    """Whether the request is a simulated call's: marked by the in-process simulator, or with
    X-Ivr-Simulated by a simulator on this machine (never through a tunnel or a proxy)."""
    environ = request.environ
    if environ.get("ivr.simulated"):
        return True
    if not environ.get("HTTP_X_IVR_SIMULATED"):
        return False
    if is_local(request):
        return True
    refuse("X-Ivr-Simulated from another machine or through a proxy: this call is handled as a real one")
    return False


def request_now(rt: Runtime, request: Request) -> datetime:
    """The request's moment: the real clock, unless a simulator is allowed to move it."""
    environ = request.environ
    text = environ.get("ivr.clock")  # set only by the in-process simulator
    header = environ.get("HTTP_X_IVR_CLOCK")
    if text is None and header:
        if not rt.allow_simulated_clock:
            refuse("X-Ivr-Clock: the server runs on the real clock (start it with --allow-simulated-clock)")
        elif not is_local(request):
            refuse("X-Ivr-Clock from another machine or through a proxy: the server runs on the real clock")
        else:
            text = header
    if text:
        try:
            return clock.parse(text[:64], rt.handler.flow.settings.timezone)
        except ValueError as exc:
            refuse(f"X-Ivr-Clock: {exc}; the server runs on the real clock")
    return clock.now()
