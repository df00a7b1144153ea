"""`ivr report --funnel`: the journal node by node."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.flow.model import Flow
from ivr.store.calls import finished_between
from ivr.tools import funnel
from tests.conftest import AUTH_TOKEN, MONDAY_10


def _calls(sim: Any) -> None:
    sim.call(at=MONDAY_10).silence().press("8").press("*").press("3").dial_outcome("busy").press("1").dial_outcome(
        "completed"
    )
    sim.call(at=MONDAY_10).press("3").dial_outcome("completed")
    sim.call(at="2021-03-01T19:30:00+03:00").press("2").hangup()
    sim.call(at=MONDAY_10).press("5").press("1").dial_outcome("completed")  # anonymous
    sim.call(at=MONDAY_10).press("6").hangup()


def test_the_funnel_counts_entries_exits_failures_and_hang_ups(sim: Any, app: Any, hotline: Flow) -> None:
    _calls(sim)
    with app.extensions["ivr"].handler.store.read() as conn:
        rows = finished_between(conn, None, None)
    found = funnel.build(rows, lambda _revision: hotline, hotline)
    assert (found.calls, found.anonymous) == (5, 1)
    main_menu = found.nodes["main"]
    assert main_menu.entered == 4 and main_menu.visits == 4
    assert (main_menu.silences, main_menu.wrong, main_menu.repeats) == (1, 1, 1)
    assert main_menu.left == {"key 3 → navigator_info": 2, "key 2 → rep_hours": 1, "key 6 → info_menu": 1}
    assert found.nodes["navigator_transfer"].left == {"busy → transfer_failed": 1, "completed → goodbye": 2}
    assert found.nodes["rep_closed"].hung_up == 1 and found.nodes["info_menu"].hung_up == 1
    assert found.transfers == {("navigator", "busy"): 1, ("navigator", "completed"): 2}
    assert found.paths["3 · dial completed · goodbye"] == 1
    assert found.paths["3 · dial busy · 1 · dial completed · goodbye"] == 1
    assert found.hours == {10: 4, 19: 1}
    assert "psych_info" not in found.nodes  # nothing of the anonymous call but its hour


@pytest.mark.parametrize("fmt", ["table", "csv", "html"])
def test_ivr_report_funnel_in_each_format(fmt: str, ivr_databases: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr import create_app
    from ivr.simulator import Simulator

    url = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_SIMULATED_DATABASE_URL", url)  # the simulated calls are the data
    _calls(Simulator(create_app({"LOG_LEVEL": "ERROR"}), auth_token=AUTH_TOKEN, status_callback="/voice/status"))
    result = CliRunner().invoke(main, ["report", "--funnel", "--format", fmt, "--since", "2021-03-01"])
    assert result.exit_code == 0, result.output
    if fmt == "table":
        assert "5 calls, 1 anonymous" in result.output
        assert "navigator: " in result.output and "most common ways" in result.output
    elif fmt == "csv":
        assert "node,main,silences,1" in result.output and "transfer,navigator,busy,1" in result.output
    else:
        assert result.output.startswith("<!doctype html>") and "Silences and wrong answers" in result.output
        assert "<svg" in result.output
