"""Shared fixtures: the bundled flow, the app on a temporary database, small flows written to disk."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ivr import flows
from ivr.model import Flow
from ivr.requests import list_requests

# The server's own time zone must never matter: run every test far from Moscow.
os.environ["TZ"] = "Pacific/Kiritimati"
time.tzset()

# Times that recur, in Moscow time (UTC+3). 2021-03-01 is a Monday inside the programme.
MONDAY_10 = "2021-03-01T10:00:00+03:00"
SATURDAY_10 = "2021-03-06T10:00:00+03:00"


@pytest.fixture(scope="session")
def hotline() -> Flow:
    """The bundled DMS hotline flow, loaded once."""
    return flows.load(env={})


@pytest.fixture
def app(ivr_app: Any) -> Any:
    return ivr_app


@pytest.fixture
def client(ivr_app: Any) -> Any:
    return ivr_app.test_client()


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
