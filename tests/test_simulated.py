"""Simulated calls are kept apart: whatever a simulator does, real requests, allowances and reports
stay as they were; and a simulator's mark or clock that the server does not honour is said."""

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.simulator import Simulator
from ivr.tools.crawler import Crawler
from ivr.tools.scenarios import default_scenarios
from tests.conftest import AUTH_TOKEN, MONDAY_10, SignedClient, action_of, serving

POLICY = "7777777"


@pytest.fixture
def real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A server's app on its real database (no IVR_SIMULATED_DATABASE_URL), and the admin commands on it."""
    url = f"sqlite:///{tmp_path / 'real.sqlite3'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.delenv("IVR_SIMULATED_DATABASE_URL", raising=False)
    app = create_app({"LOG_LEVEL": "ERROR", "ALLOW_SIMULATED_CLOCK": True})
    yield app
    app.extensions["ivr"].dispose()


def second_opinion(call: Any) -> Any:
    return call.press("5").press("2").press(f"{POLICY}#").press("1").press("1")


def test_a_simulated_second_opinion_spends_nothing_real_and_shows_only_when_asked(real: Any) -> None:
    call = second_opinion(Simulator(real, auth_token=AUTH_TOKEN, status_callback="/voice/status").call(at=MONDAY_10))
    assert "Заявка на второе медицинское мнение зарегистрирована" in call.heard  # the simulated caller hears it all
    call.dial_outcome("completed")  # and the call ends, with Twilio's status callback
    runner = CliRunner()
    assert runner.invoke(main, ["requests", "list"]).output == "no requests\n"
    assert runner.invoke(main, ["allowance", "show", POLICY]).exit_code == 2  # never asked, in real life
    simulated = runner.invoke(main, ["requests", "list", "--simulated"]).output
    assert "second_opinion" in simulated and POLICY in simulated
    assert "1 of 1 used" in runner.invoke(main, ["allowance", "show", POLICY, "--simulated"]).output
    assert "all                                                   0" in runner.invoke(main, ["report"]).output
    assert (
        "all                                                   1"
        in runner.invoke(main, ["report", "--simulated"]).output
    )

    # A real caller with the same policy is granted: the simulated use was not theirs.
    client = SignedClient(real)
    clock = {"ivr.clock": MONDAY_10}
    answer = client.post("/voice", data={"CallSid": "CAreal"}, environ_base=clock)
    for digits in ("5", "2", f"{POLICY}#", "1", "1"):
        answer = client.post(action_of(answer), data={"CallSid": "CAreal", "Digits": digits}, environ_base=clock)
    assert "зарегистрирована".encode() in answer.data
    (row,) = runner.invoke(main, ["requests", "list"]).output.strip().splitlines()  # the real caller's, only
    assert "second_opinion" in row and POLICY in row


@pytest.mark.slow
def test_simulated_calls_over_http_and_the_crawler_leave_the_real_journal_alone(real: Any) -> None:
    with serving(real) as url:
        call = second_opinion(
            Simulator(url=url, auth_token=AUTH_TOKEN, status_callback=url + "/status").call(at=MONDAY_10)
        )
        assert call.dialed == ["+78002001441"] and not [e for e in call.transcript if e["type"] == "warning"]
    flow = real.extensions["ivr"].handler.flow
    report = Crawler(app=real, flow=flow, scenarios=default_scenarios(flow)[:1]).run()
    assert report.webhooks > 100
    runner = CliRunner()
    assert runner.invoke(main, ["requests", "list"]).output == "no requests\n"
    assert "all                                                   0" in runner.invoke(main, ["report"]).output


def test_a_mark_from_beyond_this_machine_is_refused_and_said(real: Any) -> None:
    client = SignedClient(real)
    tunnel = {"X-Ivr-Simulated": "1", "X-Forwarded-For": "203.0.113.7"}
    answer = client.post("/voice", data={"CallSid": "CAfar"}, headers=tunnel)
    assert "X-Ivr-Simulated from another machine" in answer.headers["X-Ivr-Refused"]
    real.extensions["ivr"].handler.store.ready()
    with real.extensions["ivr"].handler.store.engine.connect() as conn:  # handled, and kept, as a real call
        assert conn.exec_driver_sql("SELECT call_sid FROM ivr_events").scalars().all() == ["CAfar"]


def test_a_refused_simulated_clock_is_said_on_both_sides(tmp_path: Path, caplog: Any) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "LOG_LEVEL": "WARNING"})
    with serving(app) as url:
        call = Simulator(url=url, auth_token=AUTH_TOKEN).call(at=MONDAY_10)
        result = CliRunner().invoke(main, ["simulate", "--url", url, "--auth-token", AUTH_TOKEN, "--at", MONDAY_10])
    warnings = [e["message"] for e in call.transcript if e["type"] == "warning"]
    assert warnings == [
        "the app refused X-Ivr-Clock: the server runs on the real clock (start it with --allow-simulated-clock)"
    ]
    assert "warning: the app refused X-Ivr-Clock" in result.output
    assert "refused: X-Ivr-Clock" in caplog.text
    app.extensions["ivr"].dispose()
