"""Knowing what a flow change does: `ivr diff`, the properties `ivr check` proves, `ivr timing`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.flow import load
from ivr.flow.model import Flow
from ivr.flow.properties import prove
from ivr.tools.diff import compare
from ivr.tools.paths import explore
from ivr.tools.timing import DEFAULT_RATE, EARLIEST_KEY, over_budget, services, spoken_seconds

TEMPLATE = (Path(__file__).resolve().parents[1] / "ivr" / "templates" / "flow.yaml").read_text(encoding="utf-8")
MONDAY_10 = datetime.fromisoformat("2021-03-01T10:00:00+03:00")
SATURDAY_10 = datetime.fromisoformat("2021-03-06T10:00:00+03:00")


def _write(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = TEMPLATE.replace("flow: NAME", f"flow: {name}")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _flow(tmp_path: Path, *edits: tuple[str, str]) -> Flow:
    return load(_write(tmp_path, "demo", *edits))


# ---------------------------------------------------------------- paths


def test_paths_are_walked_by_menu_keys_and_depend_on_the_moment(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    open_ = {p.label: p.outcome for p in explore(flow, MONDAY_10)}
    assert open_ == {"0": "transfer to office", "2": "transfer to office"}  # key 1 only leads back
    closed = {p.label: p.outcome for p in explore(flow, SATURDAY_10)}
    assert closed == {"(no key)": "ends at main"}  # out of hours every key leads back: no service at all
    path = next(p for p in explore(flow, MONDAY_10) if p.label == "2")
    assert path.nodes == ("greeting", "main", "office_hours", "operator")
    assert [h.interruptible for h in path.heard] == [False, True, False]


# ---------------------------------------------------------------- diff


def test_diff_names_the_changed_node_and_the_path_whose_outcome_changes(tmp_path: Path) -> None:
    old = _flow(tmp_path)
    new = load(_write(tmp_path, "changed", ('"2": {to: office_hours', '"2": {to: busy')))
    found = compare(old, new, [MONDAY_10])
    [change] = found.changes
    assert (change.what, change.name, change.change) == ("node", "main", "changed")
    assert change.fields == {"options.2.to": ("office_hours", "busy")}  # the option named, not the whole list
    [path] = found.paths
    assert path.keys == ("2",)
    assert path.sentence() == "key 2: was transfer to office, now ends at goodbye"
    assert not found.same


def test_diff_of_a_flow_with_itself_finds_nothing(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    found = compare(flow, flow, [MONDAY_10, SATURDAY_10])
    assert found.same and found.paths_compared == 3
    assert (
        found.lines()[-1]
        == "no path changes its outcome (3 compared at 2021-03-01T10:00+03:00, 2021-03-06T10:00+03:00)"
    )


def test_diff_sees_contacts_schedules_and_removed_nodes(tmp_path: Path) -> None:
    old = _flow(tmp_path)
    new = load(
        _write(
            tmp_path,
            "changed",
            ('office: "+74950000000"', 'office: "+74951111111"'),
            ('fri: "09:00-18:00"}', 'fri: "09:00-17:00"}'),
        )
    )
    found = {(c.what, c.name): c for c in compare(old, new, [MONDAY_10]).changes}
    assert found[("contact", "office")].fields["target"] == ("+74950000000", "+74951111111")
    friday = ([{"start": "09:00:00", "end": "18:00:00"}], [{"start": "09:00:00", "end": "17:00:00"}])
    assert found[("schedule", "office")].fields == {"weekly.4": friday}  # 4: Friday


def test_ivr_diff_runs_call_scripts_and_reports_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, ["new", "demo"]).exit_code == 0
    old = tmp_path / "flows" / "demo.yaml"
    new = tmp_path / "flows" / "changed.yaml"
    new.write_text(
        old.read_text(encoding="utf-8").replace('"2": {to: office_hours', '"2": {to: busy'), encoding="utf-8"
    )
    args = ["diff", str(old), str(new), "--at", "2021-03-01T10:00:00+03:00", "--scripts", "calls", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["paths"] == [
        {"keys": ["2"], "at": "2021-03-01T10:00:00+03:00", "before": "transfer to office", "after": "ends at goodbye"}
    ]
    failing = {Path(s["path"]).name: s["newly"] for s in report["scripts"]}
    assert failing == {"02_operator.call.yaml": True, "03_closed.call.yaml": True}  # 01 presses 1 only
    text = CliRunner().invoke(main, args[:-1])
    assert "key 2: was transfer to office, now ends at goodbye" in text.output
    assert "02_operator.call.yaml: now fails" in text.output


def test_ivr_diff_says_what_was_wrong_with_a_missing_flow(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["diff", str(tmp_path / "nosuch.yaml"), str(tmp_path / "other.yaml")])
    assert result.exit_code == 2
    assert "no such file, and no revision" in result.output


# ---------------------------------------------------------------- properties


def _rules(flow: Flow) -> list[tuple[str, str]]:
    return [(v.rule, v.node) for v in prove(flow)]


def test_the_hotline_and_the_template_prove_every_property(tmp_path: Path) -> None:
    assert prove(load()) == []
    assert prove(_flow(tmp_path)) == []
    assert over_budget(load(), MONDAY_10) == []


def test_a_question_that_cannot_reach_the_operator(tmp_path: Path) -> None:
    flow = _flow(
        tmp_path,
        ('"2": {to: office_hours, say: [сотрудник, оператор]}', '"2": {to: office_hours}\n      "3": {to: survey}'),
        (
            "  goodbye:\n",
            "  survey:\n    kind: ask\n    input: speech\n    store: opinion\n    prompt: Оцените нас.\n"
            "    next: goodbye\n    invalid: {fallback: goodbye}\n    no_input: {fallback: goodbye}\n\n  goodbye:\n",
        ),
    )
    [violation] = prove(flow)
    assert (violation.rule, violation.node, violation.opinion) == ("operator", "survey", True)
    assert violation.path == ("greeting", "main", "survey")
    assert violation.line == flow.nodes["survey"].line


def test_a_menu_with_no_way_to_any_ending_is_a_dead_end(tmp_path: Path) -> None:
    text = """
settings: {start: greeting, main_menu: main}
contacts: {}
nodes:
  greeting: {kind: message, say: Здравствуйте., next: main}
  main:
    kind: menu
    prompt: Часы работы — 1.
    options: {"1": hours}
    invalid: {fallback: hours}
    no_input: {fallback: hours}
  hours: {kind: message, say: Мы работаем днём., next: main}
"""
    path = tmp_path / "loop.yaml"
    path.write_text(text, encoding="utf-8")
    assert sorted(_rules(load(path))) == [("dead-end", "greeting"), ("dead-end", "hours"), ("dead-end", "main")]


def test_a_menu_that_falls_back_to_itself(tmp_path: Path) -> None:
    flow = _flow(
        tmp_path,
        ("    reprompt: Часы работы — 1, сотрудник — 2.", "    reprompt: Часы — 1.\n    no_input: {fallback: main}"),
    )
    assert _rules(flow) == [("retry-loop", "main")]


def test_a_busy_line_dialled_again_at_once(tmp_path: Path) -> None:
    flow = _flow(
        tmp_path,
        (
            "outcomes: {completed: goodbye, otherwise: busy}",
            "outcomes: {completed: goodbye, busy: operator, otherwise: busy}",
        ),
    )
    [violation] = prove(flow)
    assert (violation.rule, violation.node) == ("redial", "operator")
    assert "outcomes.busy" in violation.message


def test_a_line_with_hours_dialled_without_its_schedule(tmp_path: Path) -> None:
    flow = _flow(tmp_path, ("operator: office_hours", "operator: operator"))
    [violation] = prove(flow)
    assert (violation.rule, violation.node, violation.opinion) == ("hours", "operator", True)
    assert violation.path[-1] == "operator" and "office_hours" not in violation.path


def test_an_anonymous_part_that_asks_and_registers(tmp_path: Path) -> None:
    flow = _flow(
        tmp_path,
        ("nodes:\n", "properties:\n  anonymous: [hours]\n\nnodes:\n"),
        (
            "    say: Мы работаем с понедельника по пятницу с 9 до 18 часов.\n    next: main",
            "    say: Мы работаем днём.\n    next: name",
        ),
        (
            "  goodbye:\n",
            "  name:\n    kind: ask\n    input: speech\n    store: name\n    prompt: Ваше имя?\n    next: note\n\n"
            "  note:\n    kind: register\n    request: note\n    fields: [name]\n    next: main\n\n  goodbye:\n",
        ),
    )
    assert _rules(flow) == [("anonymous", "name"), ("anonymous", "note")]
    assert prove(flow)[0].path == ("greeting", "main", "hours", "name")


def test_a_budget_too_short_for_the_prompts(tmp_path: Path) -> None:
    flow = _flow(tmp_path, ("nodes:\n", "properties:\n  budgets: {operator: 3}\n\nnodes:\n"))
    [violation] = over_budget(flow, MONDAY_10)
    assert (violation.rule, violation.node) == ("budget", "operator")
    assert "over its budget of 3 s" in violation.message


def test_a_property_naming_no_node_fails_the_load(tmp_path: Path) -> None:
    from ivr.errors import FlowError

    with pytest.raises(FlowError, match=r"properties.budgets: no node 'operatr'.*'operator'"):
        _flow(tmp_path, ("nodes:\n", "properties:\n  budgets: {operatr: 3}\n\nnodes:\n"))


def test_ivr_check_fails_on_a_broken_property_and_on_opinions_only_when_strict(tmp_path: Path) -> None:
    broken = _write(
        tmp_path,
        "broken",
        (
            "outcomes: {completed: goodbye, otherwise: busy}",
            "outcomes: {completed: goodbye, busy: operator, otherwise: busy}",
        ),
    )
    result = CliRunner().invoke(main, ["check", str(broken)])
    assert result.exit_code == 1
    assert "error: " in result.output and "[redial]" in result.output and "1 property broken." in result.output
    opinion = _write(tmp_path, "opinion", ("operator: office_hours", "operator: operator"))
    loose = CliRunner().invoke(main, ["check", str(opinion)])
    assert loose.exit_code == 0 and "warning: " in loose.output and "[hours]" in loose.output
    assert CliRunner().invoke(main, ["check", "--strict", str(opinion)]).exit_code == 1


# ---------------------------------------------------------------- timing


def test_spoken_length_by_hand() -> None:
    assert spoken_seconds("") == 0.0
    assert spoken_seconds("а" * 159) == pytest.approx(159 / DEFAULT_RATE)
    # Two sentences: the characters (spaces included) and one pause between them.
    assert spoken_seconds("Да. Нет.") == pytest.approx(8 / DEFAULT_RATE + 0.2)


def test_time_to_a_service_by_hand(tmp_path: Path) -> None:
    greeting, prompt, connecting = "а" * 159, "б" * 318, "в" * 159  # 10 s, 20 s and 10 s at 15.9 a second
    flow = _flow(
        tmp_path,
        ("    say: Здравствуйте! Вы позвонили в нашу компанию.", f"    say: {greeting}"),
        (TEMPLATE.split("    prompt: ", 1)[1].split("\n", 1)[0], prompt),
        ("    say: Соединяю.", f"    say: {connecting}"),
    )
    by_service = {s.service: s for s in services(flow, MONDAY_10)}
    office = by_service["transfer to office"]
    assert office.full == pytest.approx(10 + 20 + 10 + EARLIEST_KEY)  # every prompt heard, then a key
    assert office.earliest == pytest.approx(10 + EARLIEST_KEY + 10 + EARLIEST_KEY)  # the menu cut short
    assert DEFAULT_RATE == 15.9


def test_ivr_timing_lists_the_hotlines_services() -> None:
    result = CliRunner().invoke(main, ["timing", "--at", "2021-03-01T10:00:00+03:00", "--json"])
    assert result.exit_code == 0, result.output
    found = {s["service"]: s for s in json.loads(result.output)}
    assert found["transfer to desk"]["keys"] == "0"
    assert found["transfer to coordinator"]["keys"] == "5 2 1" and found["transfer to coordinator"]["answers"] == 2
    assert all(s["earliest_seconds"] <= s["full_seconds"] for s in found.values())
    graph = CliRunner().invoke(main, ["graph", "--at", "2021-03-01T10:00:00+03:00"])
    assert f"⏱ {found['transfer to desk']['earliest_seconds']:.0f} s" in graph.output


def test_ivr_timing_cross_checks_with_a_real_synthesis() -> None:
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    result = CliRunner().invoke(main, ["timing", "--at", "2021-03-01T10:00:00+03:00", "--espeak", "--json"])
    assert result.exit_code == 0, result.output
    for service in json.loads(result.output):
        assert service["espeak_seconds"] == pytest.approx(service["full_seconds"], rel=0.15), service


def test_ivr_timing_says_how_to_get_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    result = CliRunner().invoke(main, ["timing", "--espeak"])
    assert result.exit_code == 1
    assert "espeak-ng is not installed (Debian: apt-get install espeak-ng)" in result.output


def test_ivr_diff_reads_a_revision_kept_in_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ivr_databases: Any
) -> None:
    from ivr import create_app
    from ivr.simulator import Simulator
    from tests.conftest import AUTH_TOKEN

    url = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_SIMULATED_DATABASE_URL", url)  # the simulated call stands for a real one
    monkeypatch.setenv("IVR_FLOW", str(_write(tmp_path, "demo")))
    app = create_app({"LOG_LEVEL": "ERROR"})
    Simulator(app, auth_token=AUTH_TOKEN).call(at=MONDAY_10).press("1").hangup()  # keeps the revision it ran on
    revision = app.extensions["ivr"].handler.revisions.current.flow.revision
    new = _write(tmp_path, "changed", ('"2": {to: office_hours', '"2": {to: busy'))
    result = CliRunner().invoke(main, ["diff", revision, str(new), "--at", "2021-03-01T10:00:00+03:00"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"--- revision {revision}\n")
    assert "key 2: was transfer to office, now ends at goodbye" in result.output
    unknown = CliRunner().invoke(main, ["diff", "0123456789ab", str(new)])
    assert unknown.exit_code == 1 and "no revision '0123456789ab' is kept in the database" in unknown.output
