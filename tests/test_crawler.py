"""The crawler: coverage, dead ends and loops, in-process and over HTTP."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask, Response

from ivr import create_app
from ivr.cli import main
from ivr.flow import loader as flows
from ivr.tools.crawler import Crawler
from ivr.tools.scenarios import Scenario, default_scenarios
from tests.conftest import MONDAY_10, serving


def test_mini_flow_is_fully_covered(mini_flow: Path, ivr_databases: Any) -> None:
    app = create_app({"DATABASE_URL": ivr_databases(), "FLOW": str(mini_flow)})
    flow = flows.load(mini_flow, env={})
    report = Crawler(app=app, flow=flow, scenarios=[Scenario("now", MONDAY_10)]).run()
    assert report.ok and report.coverage == 1.0
    assert report.transfers == {"+78002001441": {"completed", "busy", "no-answer", "failed", "canceled"}}
    assert "До свидания." in report.hangups
    # menu: keys 1, 2, 0, *, a wrong key, silence, the keyword and nonsense speech all tried
    tried = {edge[1] for edge in report.edges}
    assert {"1", "2", "0", "*", "9", "-", "say:справка", "say:абракадабра"} <= tried


@pytest.mark.slow
def test_one_moment_leaves_the_closed_branches_unreached_and_fails(runner: CliRunner) -> None:
    result = runner.invoke(main, ["crawl", "--json", "--at", MONDAY_10])
    report = json.loads(result.output)
    assert result.exit_code == 1 and not report["ok"]
    assert "rep_closed" in report["nodes"]["unreached"] and report["nodes"]["coverage"] < 1


def test_default_scenarios_reach_open_closed_emergency_and_outside_the_programme(hotline: Any) -> None:
    scenarios = default_scenarios(hotline)
    names = [s.name for s in scenarios if s.callback is None]
    assert (
        len(names) == 4 and any("emergency" in n for n in names) and any("programme not in force" in n for n in names)
    )
    assert "Sat 2021-03-06 10:00, programme in force, schedules closed" in names


def test_default_scenarios_place_each_lines_call_back_and_meet_an_answering_machine(hotline: Any) -> None:
    placed = {s.callback for s in default_scenarios(hotline) if s.callback is not None}
    lines = {"representative", "desk", "navigator", "coordinator"}
    assert {(line, "human", False) for line in lines} <= placed
    assert ("representative", "machine_start", False) in placed and ("representative", "machine_start", True) in placed


def test_scenario_labels_claim_nothing_about_a_flow_they_do_not_know() -> None:
    names = [s.name for s in default_scenarios(None)]
    assert names == ["Mon 2021-03-01 10:00", "Sat 2021-03-06 10:00", "Mon 2022-01-10 10:00"]


def broken_app() -> Flask:
    """A TwiML app with a dead end (key 1: no more TwiML) and a loop with no exit (key 2)."""
    app = Flask("broken")
    menu = '<Response><Gather numDigits="1" action="/pick"><Say>1 or 2</Say></Gather><Hangup/></Response>'
    trap = (
        '<Response><Gather numDigits="1" action="/trap"><Say>trapped</Say></Gather>'
        "<Redirect>/trap</Redirect></Response>"
    )

    @app.post("/voice")
    def voice() -> Response:
        return Response(menu, mimetype="text/xml")

    @app.post("/pick")
    def pick() -> Response:
        from flask import request

        digit = request.form.get("Digits", "")
        body = {"1": "<Response><Say>bye?</Say></Response>", "2": trap}.get(digit, menu)
        return Response(body, mimetype="text/xml")

    @app.post("/trap")
    def again() -> Response:
        return Response(trap, mimetype="text/xml")

    return app


@pytest.mark.slow
def test_http_crawl_finds_dead_ends_and_loops_without_exit(runner: CliRunner) -> None:
    with serving(broken_app()) as url:
        result = runner.invoke(main, ["crawl", "--json", "--url", url])
    report = json.loads(result.output)
    assert result.exit_code == 1 and report["nodes"] is None
    assert [d["inputs"] for d in report["dead_ends"]] == [["1"]] * len(report["dead_ends"])
    assert report["dead_ends"][0]["end"] == "completed"
    assert report["loops_without_exit"] and all(x["inputs"][0] == "2" for x in report["loops_without_exit"])


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.slow
def test_the_hotline_crawl_reaches_every_node_with_no_dead_end_or_trap(ivr_databases: Any, hotline: Any) -> None:
    app = create_app({"DATABASE_URL": ivr_databases(), "LOG_LEVEL": "ERROR"})
    report = Crawler(app=app, flow=hotline, scenarios=default_scenarios(hotline)).run()
    data = report.to_json()
    assert data["nodes"]["coverage"] == 1.0, data["nodes"]["unreached"]
    assert data["dead_ends"] == [] and data["loops_without_exit"] == [] and data["empty_prompts"] == []
    assert set(data["terminals"]["transfers"]) == {"+78002001441", "+78007756610"}
    assert report.ok
    said = " ".join(str(getattr(node, "say", "") or "") for node in hotline.nodes.values()).split()
    for hangup in data["terminals"]["hangups"]:  # shown from the start of a word, never from its middle
        assert hangup["last_words"].lstrip("…").split()[0] in said, hangup
    assert len(data["terminals"]["hangups"]) == 4  # the three endings with the desk's number stay apart


@pytest.mark.parametrize(
    ("heard", "limit", "shown"),
    [
        ("До свидания.", 80, "До свидания."),
        ("Перезвоните позже по номеру восемь. До свидания.", 20, "…восемь. До свидания."),
        ("Перезвоните позже по номеру восемь. До свидания.", 22, "…номеру восемь. До свидания."),
        ("Перезвоните  позже\n по номеру", 12, "…позже по номеру"),
        ("Одно", 2, "…Одно"),
    ],
)
def test_last_words_are_cut_between_words_never_in_one(heard: str, limit: int, shown: str) -> None:
    from ivr.tools.crawler import last_words

    assert last_words(heard, limit) == shown
