"""Call-back requests: due at once for an open line, else at the line's next opening."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.simulator import Simulator

SATURDAY = "2021-03-13T11:00:00+03:00"  # the representative is closed until Monday 15 March, 9:00


@pytest.fixture
def url(ivr_databases: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    database: str = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", database)
    return database


def _ask_the_representative_to_call_back(url: str, at: str) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SIMULATED_DATABASE_URL": url})
    call = Simulator(app, auth_token="12345", status_callback="/voice/status").call(at=at)
    call.press("2")  # the representative
    if call.waiting is not None and call.waiting.verb == "dial":
        call.dial_outcome("no-answer")  # open, but nobody picks up
    call.press("2")  # "call me back"
    call.press("1")  # the number I call from is right
    assert "зарегистрирована" in call.heard
    call.hangup()
    app.extensions["ivr"].dispose()


def test_a_call_back_asked_for_on_saturday_is_due_at_monday_nine_moscow(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    early = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-15T08:59:00+03:00"])
    assert early.exit_code == 0, early.output
    assert "representative" in early.output and "waiting  due 2021-03-15 09:00" in early.output
    due = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-15T09:00:00+03:00"])
    assert "due      due 2021-03-15 09:00" in due.output


def test_a_holiday_monday_moves_the_call_back_to_the_next_working_day(url: str) -> None:
    _ask_the_representative_to_call_back(url, "2021-03-06T11:00:00+03:00")  # Monday 8 March is a holiday
    listed = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-08T12:00:00+03:00"])
    assert "waiting  due 2021-03-09 09:00" in listed.output


def test_a_call_back_to_an_open_line_is_due_at_once(url: str) -> None:
    _ask_the_representative_to_call_back(url, "2021-03-15T10:00:00+03:00")  # open, but the line is busy
    listed = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-15T10:05:00+03:00"])
    assert "due      due 2021-03-15 10:00" in listed.output


def test_no_call_backs_says_so(url: str) -> None:
    assert CliRunner().invoke(main, ["callbacks"]).output == "no call-back requests\n"
