"""Shared fixtures: the bundled flow, the app on a temporary database, small flows written to disk."""

from __future__ import annotations

import os
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from ivr.flow import loader as flows
from ivr.flow.model import Flow
from ivr.store.requests import list_requests

# The server's own time zone must never matter: run every test far from Moscow.
os.environ["TZ"] = "Pacific/Kiritimati"
time.tzset()

# The whole suite runs with Twilio signature checking on: every app built in a test checks, and
# the simulator and the test client sign (the token is Twilio's documented example token).
AUTH_TOKEN = "12345"
os.environ["TWILIO_AUTH_TOKEN"] = AUTH_TOKEN
os.environ.pop("IVR_PUBLIC_URL", None)
# One key ring for every app a test builds, as every instance of a deployment shares one.
STATE_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdCE"
os.environ["IVR_STATE_KEYS"] = STATE_KEY

# Times that recur, in Moscow time (UTC+3). 2021-03-01 is a Monday inside the programme.
MONDAY_10 = "2021-03-01T10:00:00+03:00"
SATURDAY_10 = "2021-03-06T10:00:00+03:00"


@pytest.fixture(autouse=True)
def simulated_calls_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated calls of an app a test builds go to a sandbox in the test's own folder (unless the
    test says where), never to one in the project's instance folder shared across runs."""
    monkeypatch.setenv("IVR_SIMULATED_DATABASE_URL", f"sqlite:///{tmp_path / 'simulated.sqlite3'}")


@pytest.fixture(scope="session")
def hotline() -> Flow:
    """The bundled DMS hotline flow, loaded once."""
    return flows.load(env={})


@pytest.fixture
def app(ivr_app: Any) -> Any:
    return ivr_app


def action_of(response: Any) -> str:
    """The URL Twilio requests next: the action of the answer's Gather or Dial (it carries the
    call's sealed state)."""
    root = ET.fromstring(response.data)
    verb = root.find("Gather") if root.find("Gather") is not None else root.find("Dial")
    assert verb is not None, response.data
    return str(verb.get("action"))


class SignedClient:
    """Flask's test client, signing every request the way Twilio does."""

    def __init__(self, app: Any, token: str = AUTH_TOKEN) -> None:
        self.client = app.test_client()
        self.validator = RequestValidator(token)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        data = data or {}
        path = quote(path, safe="/?=&%:+")  # sign the URL exactly as it goes on the wire
        headers = {"X-Twilio-Signature": self.validator.compute_signature(f"http://localhost{path}", data)}
        headers.update(kwargs.pop("headers", {}))
        return self.client.post(path, data=data, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        path = quote(path, safe="/?=&%:+")
        headers = {"X-Twilio-Signature": self.validator.compute_signature(f"http://localhost{path}", {})}
        headers.update(kwargs.pop("headers", {}))
        return self.client.get(path, headers=headers, **kwargs)


@pytest.fixture
def client(ivr_app: Any) -> SignedClient:
    assert ivr_app.config["TWILIO_AUTH_TOKEN"] == AUTH_TOKEN
    return SignedClient(ivr_app)


@pytest.fixture
def sim(ivr_simulator: Any) -> Any:
    return ivr_simulator


@pytest.fixture
def requests_of(ivr_app: Any) -> Callable[..., list[Any]]:
    """The registered requests of the app under test, optionally of one kind."""
    store = ivr_app.extensions["ivr"].handler.store

    def listing(kind: str | None = None) -> list[Any]:
        with store.begin() as conn:
            return list_requests(conn, kind)

    return listing


@pytest.fixture
def write_flow(tmp_path: Path) -> Callable[[str], Path]:
    """Write a flow file (dedented) and return its path."""

    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


MINI_FLOW = """
    flow: mini
    settings:
      start: hello
      main_menu: main
      operator: operator
    contacts:
      desk: "+78002001441"
    nodes:
      hello:
        kind: message
        say: Привет.
        next: main
      main:
        kind: menu
        prompt: Один — справка, два — оператор.
        reprompt: Один или два.
        options:
          "1": {to: info, say: [справка]}
          "2": operator
      info:
        kind: message
        say: Справка.
        next: main
      operator:
        kind: transfer
        contact: desk
        say: Соединяю.
        outcomes: {completed: bye, otherwise: main}
      bye:
        kind: hangup
        say: До свидания.
"""


@pytest.fixture
def mini_flow(write_flow: Callable[[str], Path]) -> Path:
    return write_flow(MINI_FLOW)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yields the /voice URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # shutdown() waits for the serving loop to look up: every 0.5 s by default, half a second
    # lost by each of the hundreds of tests over HTTP.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/voice"
    finally:
        server.shutdown()
        thread.join(timeout=5)
