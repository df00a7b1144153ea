"""`ivr calls`: the latest calls and one call's journal, never a caller's values nor an anonymous call."""

from typing import Any

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.simulator import Simulator
from tests.conftest import AUTH_TOKEN, MONDAY_10


@pytest.fixture
def database(ivr_databases: Any, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    url = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_SIMULATED_DATABASE_URL", url)  # calls at a simulated time are kept apart: here, together
    app = create_app({"LOG_LEVEL": "ERROR"})
    return Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status")


def calls(*args: str) -> Any:
    return CliRunner().invoke(main, ["calls", *args], prog_name="ivr")


def test_lists_calls_newest_first_and_counts_anonymous_ones_without_showing_them(database: Simulator) -> None:
    first = database.call(at=MONDAY_10, call_sid="CA" + "1" * 32)
    first.press("3").dial_outcome("completed")
    database.call(at="2021-03-01T11:00:00+03:00").press("5").press("1").dial_outcome("completed")  # psychologist
    running = database.call(at="2021-03-01T12:00:00+03:00", call_sid="CA" + "2" * 32)
    running.press("2")  # put through to the representative, still on the line: no status callback yet
    result = calls()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["started", "call", "length", "branch", "end"]
    assert lines[1].split()[:3] == ["2021-03-01", "12:00:00", "CA" + "2" * 32]
    assert lines[1].endswith("in progress, at rep_transfer")
    assert lines[2].split()[:3] == ["2021-03-01", "10:00:00", "CA" + "1" * 32]
    assert lines[2].split()[-2:] == ["navigator_info", "goodbye"]
    assert lines[3:] == ["and 1 anonymous call(s), not shown"]


def test_since_and_limit_narrow_the_list(database: Simulator) -> None:
    database.call(at="2021-02-26T10:00:00+03:00").press("3").hangup()
    database.call(at=MONDAY_10).press("3").hangup()
    database.call(at="2021-03-02T10:00:00+03:00").press("3").hangup()
    assert len(calls("--since", "2021-03-01").output.splitlines()) == 3  # header and two calls
    assert len(calls("--limit", "1").output.splitlines()) == 2
    assert "2021-03-02" in calls("--limit", "1").output
    assert calls("--since", "2021-04-01").output == "no calls yet\n"


def test_one_finished_call_shows_path_input_kinds_effects_and_end_but_no_values(database: Simulator) -> None:
    sid = "CA" + "3" * 32
    call = database.call(at="2021-03-01T19:30:00+03:00", call_sid=sid)
    call.press("2").press("2").press("1").hangup()  # after hours: a call-back request is registered
    result = calls(sid)
    assert result.exit_code == 0, result.output
    said = dict(line.split(None, 1) for line in result.output.splitlines() if not line.startswith(" "))
    assert said["call"] == sid and said["started"] == "2021-03-01 19:30:00 (Europe/Moscow)"
    assert said["ended"] == "2021-03-01 19:30:00, after 0:00: abandoned" and said["branch"] == "rep_hours"
    assert said["path"].startswith("greeting > main > rep_hours > rep_closed > rep_callback_programme")
    assert said["inputs"] == "call, digits, digits, digits"
    assert "schedule representative closed" in result.output and "request registered: callback" in result.output
    assert "+79161234567" not in result.output  # the caller's number is a value: never shown


def test_one_call_in_progress_shows_each_step(database: Simulator) -> None:
    sid = "CA" + "4" * 32
    database.call(at=MONDAY_10, call_sid=sid).press("2")
    output = calls(sid).output
    assert "now       in progress, waiting at rep_transfer" in output
    steps = [line.split() for line in output.splitlines() if line.startswith("  step")]
    assert [(s[4], s[-1]) for s in steps] == [("call", "main"), ("digits", "rep_transfer")]


def test_an_anonymous_or_unknown_call_is_not_found_and_since_does_not_go_with_one_call(database: Simulator) -> None:
    sid = "CA" + "5" * 32
    database.call(at=MONDAY_10, call_sid=sid).press("5").press("1").dial_outcome("completed")
    result = calls(sid)
    assert (result.exit_code, result.output) == (
        1,
        f"ivr: no call {sid} in this database (anonymous calls are not kept by id)\n",
    )
    misuse = calls(sid, "--since", "2021-03-01")
    assert misuse.exit_code == 2
    assert misuse.output == (
        "ivr calls: --since lists calls; with a CALLSID the one call is shown (see `ivr calls --help`)\n"
    )
