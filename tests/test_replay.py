"""`ivr replay`: the journal's calls driven through a candidate flow with the same choices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.flow import BUNDLED_FLOW, load
from ivr.flow.model import Flow
from ivr.store.calls import finished_between
from ivr.tools.replay import choices, replay
from tests.conftest import MONDAY_10

HOTLINE = BUNDLED_FLOW.read_text(encoding="utf-8")


def _candidate(tmp_path: Path, old: str, new: str) -> Flow:
    assert old in HOTLINE
    path = tmp_path / "candidate.yaml"
    path.write_text(HOTLINE.replace(old, new), encoding="utf-8")
    return load(path)


def _rows(app: Any) -> list[dict[str, Any]]:
    with app.extensions["ivr"].handler.store.read() as conn:
        return finished_between(conn, None, None)


def _week(sim: Any) -> None:
    sim.call(at=MONDAY_10).press("3").dial_outcome("busy").press("1").dial_outcome("completed")
    sim.call(at=MONDAY_10).press("2").dial_outcome("completed")
    sim.call(at="2021-03-01T19:30:00+03:00").press("2").press("2").press("1").hangup()
    sim.call(at=MONDAY_10).press("5").press("2").press("555555#").press("1").press("1").dial_outcome("completed")
    sim.call(at=MONDAY_10).press("5").press("1").dial_outcome("completed")  # the psychologist: anonymous
    sim.call(at=MONDAY_10).press("6").hangup()


def test_the_journal_path_gives_back_the_callers_choices(sim: Any, app: Any, hotline: Flow) -> None:
    sim.call(at=MONDAY_10).press("3").dial_outcome("busy").press("1").dial_outcome("completed")
    (row,) = _rows(app)
    made = choices(hotline, json.loads(row["path"]), json.loads(row["facts"]))
    assert made.moves == (("key", "3"), ("dial", "busy"), ("key", "1"), ("dial", "completed"))
    assert not made.problem


def test_replayed_on_its_own_flow_every_call_keeps_its_outcome(sim: Any, app: Any, hotline: Flow) -> None:
    _week(sim)
    found = replay(_rows(app), lambda _revision: hotline, hotline)
    assert found.anonymous == 1 and not found.unreadable
    assert [c.verdict for c in found.calls] == ["same"] * 5
    outcomes = [str(c.after) for c in found.calls]
    # Oldest first: the calls at 10:00 in the order they were placed, then the one at 19:30.
    assert outcomes[0] == "transfer to navigator then navigator, goodbye at goodbye"
    assert outcomes[2] == "transfer to coordinator, registers second_opinion, goodbye at goodbye"
    assert outcomes[3] == "hung up at info_menu"
    assert outcomes[4] == "registers callback, hung up at main"


def test_a_changed_key_changes_the_outcome_of_the_calls_that_pressed_it(
    sim: Any, app: Any, hotline: Flow, tmp_path: Path
) -> None:
    _week(sim)
    candidate = _candidate(tmp_path, '"2": {to: rep_hours', '"2": {to: desk_operator')
    found = replay(_rows(app), lambda _revision: hotline, candidate)
    assert [c.verdict for c in found.calls] == ["same", "different", "same", "same", "different"]
    second = found.calls[1]
    assert str(second.before) == "transfer to representative, goodbye at goodbye"
    assert str(second.after) == "transfer to desk, goodbye at goodbye"


def test_a_removed_key_leaves_the_caller_stuck(sim: Any, app: Any, hotline: Flow, tmp_path: Path) -> None:
    sim.call(at=MONDAY_10).press("6").hangup()
    sim.call(at=MONDAY_10).press("3").dial_outcome("completed")
    candidate = _candidate(tmp_path, '      "3": {to: navigator_info', '      "7": {to: navigator_info')
    found = replay(_rows(app), lambda _revision: hotline, candidate)
    assert [c.verdict for c in found.calls] == ["same", "stuck"]
    assert found.calls[1].after.end == "stuck at main: the caller would give key 3"


def test_ivr_replay_exits_1_on_changes_unless_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ivr_databases: Any
) -> None:
    from ivr import create_app
    from ivr.simulator import Simulator
    from tests.conftest import AUTH_TOKEN

    url = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_SIMULATED_DATABASE_URL", url)
    app = create_app({"LOG_LEVEL": "ERROR"})
    _week(Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status"))
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(HOTLINE.replace('"2": {to: rep_hours', '"2": {to: desk_operator'), encoding="utf-8")
    same = CliRunner().invoke(main, ["replay", str(BUNDLED_FLOW)])
    assert same.exit_code == 0, same.output
    assert "5 calls replayed" in same.output and "5 same, 0 different, 0 stuck; 1 anonymous not replayed" in same.output
    changed = CliRunner().invoke(main, ["replay", str(candidate), "--since", "2021-03-01", "--until", "2021-03-02"])
    assert changed.exit_code == 1
    assert "3 same, 2 different, 0 stuck" in changed.output
    assert "transfer to representative, goodbye at goodbye -> transfer to desk, goodbye at goodbye" in changed.output
    accepted = CliRunner().invoke(main, ["replay", str(candidate), "--accept", "--json"])
    assert accepted.exit_code == 0
    report = json.loads(accepted.output)
    assert (report["same"], report["different"], report["anonymous_not_replayed"]) == (3, 2, 1)
    empty = CliRunner().invoke(main, ["replay", str(candidate), "--since", "2022-01-01"])
    assert empty.exit_code == 0 and "0 calls replayed" in empty.output
