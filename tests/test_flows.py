from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.errors import FlowError
from ivr.flow import loader as flows
from ivr.flow.model import Ask, Branch, Menu, Transfer
from tests.conftest import MINI_FLOW

WriteFlow = Callable[[str], Path]


def problems(path: Path) -> list[str]:
    with pytest.raises(FlowError) as info:
        flows.load(path, env={})
    return [str(p).removeprefix(f"{path}:") for p in info.value.problems]


def test_bundled_hotline_loads_with_the_main_menu_keys_of_the_roadmap(hotline) -> None:
    main = hotline.nodes["main"]
    assert isinstance(main, Menu)
    assert [o.key for o in main.options] == ["1", "2", "3", "4", "5", "6", "0"]
    assert hotline.settings.voice == "Polly.Tatyana" and hotline.settings.language == "ru-RU"


def test_every_sub_menu_of_the_hotline_returns_to_the_main_menu_with_9(hotline) -> None:
    for node in hotline.nodes.values():
        if isinstance(node, Menu) and node.id != "main":
            back = node.option("9")
            assert back is not None and back.to == "main", node.id
            assert "главное меню" in node.prompt.lower() or "главного меню" in node.prompt.lower(), node.id


def test_every_transfer_of_the_hotline_handles_every_dial_outcome(hotline) -> None:
    for node in hotline.nodes.values():
        if isinstance(node, Transfer):
            assert "completed" in node.outcomes and "otherwise" in node.outcomes, node.id


def test_contacts_default_to_the_roadmap_numbers_and_follow_the_environment() -> None:
    default = flows.load(env={})
    assert default.contacts["desk"].target == "+78002001441"
    assert default.contacts["navigator"].target == "+78007756610"
    moved = flows.load(env={"IVR_CONTACT_REPRESENTATIVE": "sip:rep@example.test"})
    assert moved.contacts["representative"].target == "sip:rep@example.test"


def test_yaml_keys_stay_strings(write_flow: WriteFlow) -> None:
    path = write_flow(
        MINI_FLOW.replace('"1": {to: info', "1: {to: info").replace(
            "      info:\n        kind: message", "      info:\n        kind: message"
        )
    )
    flow = flows.load(path, env={})
    assert isinstance(flow.nodes["main"], Menu)
    assert flow.nodes["main"].option("1") is not None


def test_on_is_a_string_key_not_a_boolean(write_flow: WriteFlow) -> None:
    text = (
        MINI_FLOW
        + """
      check:
        kind: branch
        on: value:answer
        cases: {on: bye, off: bye, yes: bye}
        default: bye
    """
    )
    text = text.replace('"2": operator', '"2": operator\n          "3": check')
    flow = flows.load(write_flow(text), env={})
    branch = flow.nodes["check"]
    assert isinstance(branch, Branch) and sorted(branch.cases) == ["off", "on", "yes"]


def test_dangling_target_is_reported_with_line_and_node(write_flow: WriteFlow) -> None:
    path = write_flow(MINI_FLOW.replace("next: main\n      operator", "next: mian\n      operator"))
    assert problems(path) == ["20: node 'info': next: no node 'mian'; did you mean 'main'?"]


def test_unreachable_node_is_reported(write_flow: WriteFlow) -> None:
    path = write_flow(MINI_FLOW + "      orphan:\n        kind: hangup\n        say: Пока.\n")
    assert problems(path) == ["32: node 'orphan': unreachable: no path from 'hello' leads here"]


def test_menu_without_silence_handling_is_reported(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace("      operator: operator\n", "")
    path = write_flow(text.replace('"2": operator', '"2": operator\n          "0": operator'))
    assert problems(path) == [
        "12: node 'main': no wrong input handling: set `invalid.fallback` or settings.operator",
        "12: node 'main': no silence handling: set `no_input.fallback` or settings.operator",
    ]


def test_unknown_field_and_kind_are_reported_once_without_their_cascade(write_flow: WriteFlow) -> None:
    # 'operator' leads to 'bye': its kind is the one root cause, not also a missing target
    text = MINI_FLOW.replace("        say: Справка.\n", "        sya: Справка.\n        say: Справка.\n")
    text = text.replace("kind: hangup", "kind: goodbye")
    assert problems(write_flow(text)) == [
        "22: node 'info': unknown field 'sya' for a message; known: next, say",
        "30: node 'bye': unknown kind 'goodbye'; use one of menu, message, ask, branch, allowance, register, "
        "transfer, hangup",
    ]


def test_empty_prompt_is_reported(write_flow: WriteFlow) -> None:
    path = write_flow(MINI_FLOW.replace("say: Справка.", 'say: " "'))
    assert problems(path) == ["22: node 'info': `say` is empty: the caller would hear nothing"]


def test_invalid_yaml_names_the_line(write_flow: WriteFlow) -> None:
    path = write_flow(
        MINI_FLOW.replace("kind: message\n        say: Справка.", "kind: message\n        say: [Справка.")
    )
    (problem,) = problems(path)
    assert problem.startswith("2") and "invalid YAML" in problem


def test_loop_that_never_waits_is_reported(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace("say: Справка.\n        next: main", "say: Справка.\n        next: info2")
    text += "      info2:\n        kind: message\n        say: Ещё.\n        next: info\n"
    assert problems(write_flow(text)) == [
        "20: node 'info': loop that never waits for the caller: info -> info2 -> info",
        "32: node 'info2': loop that never waits for the caller: info2 -> info -> info2",
    ]


def test_sub_menu_without_a_way_back_is_reported(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace('"1": {to: info, say: [справка]}', '"1": {to: sub, say: [справка]}')
    text += '      sub:\n        kind: menu\n        prompt: Подменю.\n        options:\n          "1": info\n'
    assert problems(write_flow(text)) == [
        "32: node 'sub': no way back to the main menu: add a key that leads to 'main'"
    ]


def test_transfer_with_unhandled_outcomes_is_reported(write_flow: WriteFlow) -> None:
    path = write_flow(MINI_FLOW.replace("outcomes: {completed: bye, otherwise: main}", "outcomes: {completed: bye}"))
    assert problems(path) == [
        "28: node 'operator': dial outcomes busy, no-answer, failed, canceled lead nowhere: add them or `otherwise`"
    ]


def test_schedule_errors_name_their_line(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace(
        "    nodes:",
        "    schedules:\n      office:\n        timezone: Europe/Moskva\n        hours:\n"
        '          mon: "18:00-09:00"\n          funday: "09:00-10:00"\n    nodes:',
    )
    assert problems(write_flow(text)) == [
        "10: schedule 'office': timezone: 'Europe/Moskva' is not a known IANA time zone like 'Europe/Moscow'",
        "12: schedule 'office': hours.mon: '18:00-09:00' ends before it starts",
        "13: schedule 'office': hours: unknown key 'funday'; use 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
    ]


def test_unknown_placeholder_is_reported(write_flow: WriteFlow) -> None:
    path = write_flow(MINI_FLOW.replace("say: Справка.", "say: Справка {nonsense} {contact:nobody}."))
    assert problems(path) == [
        "20: node 'info': say: unknown placeholder {nonsense}",
        "20: node 'info': say: {contact:nobody} names no contact",
    ]


def test_missing_file_is_a_flow_error(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="cannot read the file"):
        flows.load(tmp_path / "nope.yaml")


def test_hotline_asks_use_the_conventions(hotline) -> None:
    policy = hotline.nodes["desk_policy"]
    assert isinstance(policy, Ask) and policy.finish_on_key == "#" and policy.confirm


def test_schedule_overrides_and_shortening_are_read(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace(
        "    nodes:",
        "    schedules:\n      office:\n        calendar: RU\n        shorten_before_holidays: true\n"
        '        hours: {mon: "09:00-18:00"}\n        overrides:\n          2021-03-01: closed\n'
        '          2021-03-02: "10:00-12:00"\n    nodes:',
    )
    office = flows.load(write_flow(text), env={}).schedules["office"]
    assert office.shorten_before_holidays and office.country == "RU"
    assert [str(i) for i in office.overrides[date(2021, 3, 2)]] == ["10:00-12:00"]


def test_bad_override_is_reported(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace(
        "    nodes:",
        '    schedules:\n      office:\n        hours: {mon: "09:00-18:00"}\n        overrides:\n'
        "          2021-03-01: sometimes\n        opens: never\n    nodes:",
    )
    assert problems(write_flow(text)) == [
        "12: schedule 'office': overrides.2021-03-01: 'sometimes' is not an interval like '09:00-18:00'",
        "13: schedule 'office': unknown key 'opens'; known: calendar, closed_on, hours, moved_workday, overrides, "
        "shorten_before_holidays, timezone, working_on",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("      operator: operator\n", "      operator: operator\n      voicee: Polly.Maxim\n"),
            "settings: unknown key 'voicee'; did you mean 'voice'?",
        ),
        (
            ("      operator: operator\n", "      operator: operator\n      attempts: -1\n"),
            "settings.attempts: -1 is not from 1 to 10",
        ),
        (
            ('      desk: "+78002001441"\n', '      desk: "call me maybe"\n'),
            "contact 'desk': 'call me maybe' is not dialable: use E.164 like +78002001441, or sip:, client:",
        ),
        (
            (
                "    contacts:\n",
                "    allowances:\n      so: {limt: 2}\n    programme:\n      start: 2020-12-01T00:00:00+03:00\n"
                "      end: 2021-12-01T00:00:00+03:00\n      ende: 2022-01-01\n      inactive: bye\n    contacts:\n",
            ),
            "allowance 'so': unknown key 'limt'; did you mean 'limit'?",
        ),
    ],
    ids=["unknown setting", "attempts out of range", "contact not dialable", "unknown allowance key"],
)
def test_each_mistake_is_reported_once_at_its_line_with_what_would_be_right(
    write_flow: WriteFlow, change: tuple[str, str], expected: str
) -> None:
    text = MINI_FLOW.replace(*change)
    assert text != MINI_FLOW
    found = problems(write_flow(text))
    assert [p for p in found if expected in p] and len([p for p in found if "attempts" in p]) <= 1, found
    assert not any("unreachable" in p for p in found), found


def test_an_unknown_programme_key_is_reported(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace(
        "    contacts:\n",
        "    programme:\n      start: 2020-12-01T00:00:00+03:00\n      end: 2021-12-01T00:00:00+03:00\n"
        "      ende: x\n      inactive: bye\n    contacts:\n",
    )
    assert any("programme: unknown key 'ende'; did you mean 'end'?" in p for p in problems(write_flow(text)))


def test_a_contact_override_that_is_not_dialable_is_named(write_flow: WriteFlow) -> None:
    with pytest.raises(FlowError) as raised:
        flows.load(write_flow(MINI_FLOW), env={"IVR_CONTACT_DESK": "garbage"})
    assert "IVR_CONTACT_DESK='garbage' (overriding contact 'desk') is not dialable" in str(raised.value)


def test_one_typo_in_next_is_one_problem_not_a_cascade(hotline: Any, tmp_path: Any) -> None:
    from ivr.flow.loader import BUNDLED_FLOW

    broken = tmp_path / "hotline.yaml"
    broken.write_text(
        BUNDLED_FLOW.read_text(encoding="utf-8").replace("next: main\n", "next: mian\n", 1), encoding="utf-8"
    )
    found = problems(broken)
    assert len(found) == 1 and "no node 'mian'; did you mean 'main'?" in found[0], found


# ---- one definition: the loader and the JSON Schema agree, and every error is one located line ----

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**6),
    st.sampled_from(["", " ", "x", "*", "mian", "25:00-26:00", "2026-13-01", "{broken", "Mars/Base", "+7"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["to", "limit", "sya", "kind"]), st.integers(), max_size=2),
)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in [(*path, k), *_leaves(v, (*path, k))]]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in [(*path, i), *_leaves(v, (*path, i))]]
    return []


def _hotline_doc() -> dict[str, Any]:
    from tests.test_schema import load  # as ivr reads it (`on:` stays a word), dates as text

    doc: dict[str, Any] = load(flows.BUNDLED_FLOW)
    return doc


_PATHS = _leaves(_hotline_doc())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_PATHS), junk=_JUNK, rename=st.booleans())
def test_any_broken_value_or_key_is_a_located_problem_in_plain_words(
    tmp_path: Path, where: tuple[Any, ...], junk: Any, rename: bool
) -> None:
    import yaml

    doc = _hotline_doc()
    parent = doc
    for part in where[:-1]:
        parent = parent[part]
    if rename and isinstance(parent, dict):
        parent[f"{where[-1]}x"] = parent.pop(where[-1])
    else:
        parent[where[-1]] = junk
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        flows.load(path, env={})
    except FlowError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line is not None and problem.line >= 1, problem
            for jargon in ("Input should", "pydantic", "[type=", "function-after", "datetime.", "Value error"):
                assert jargon not in problem.message, problem


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("      operator: operator\n", "      operator: operator\n      voicee: x\n"), "unknown key 'voicee'"),
        (("      operator: operator\n", "      operator: operator\n      attempts: 11\n"), "11 is not from 1 to 10"),
        (("kind: hangup", "kind: goodbye"), "unknown kind 'goodbye'"),
        (('"2": operator', '"2": operator\n          "*": operator'), "key '*' is reserved"),
        (("next: main\n      operator", "next: 5main\n      operator"), "'5main' is not a node name"),
        (("outcomes: {completed: bye", "outcomes: {maybe: bye, completed: bye"), "unknown key 'maybe'"),
    ],
    ids=["unknown setting", "attempts range", "unknown kind", "star key", "bad name", "unknown outcome"],
)
def test_the_loader_and_the_json_schema_refuse_the_same_file(
    write_flow: WriteFlow, change: tuple[str, str], expected: str
) -> None:
    import jsonschema

    from ivr.flow.flowfile import json_schema
    from tests.test_schema import load

    path = write_flow(MINI_FLOW.replace(*change))
    assert any(expected in p for p in problems(path))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(load(path), json_schema())
    jsonschema.validate(load(write_flow(MINI_FLOW)), json_schema())


def test_callbacks_name_contacts_and_nodes_that_exist(write_flow: WriteFlow) -> None:
    text = MINI_FLOW.replace(
        "    nodes:\n",
        "    callbacks:\n      lines: {dsk: call_back}\n      machine: machin\n"
        "      policy: {attempts: 0}\n    nodes:\n",
    )
    found = problems(write_flow(text))
    assert "11: callbacks.policy.attempts: 0 is not from 1 to 10" in found, found
    fixed = problems(write_flow(text.replace("{attempts: 0}", "{attempts: 2}")))
    assert fixed == [
        "9: callbacks.lines: 'dsk' is not a contact; did you mean 'desk'?",
        "9: callbacks.lines.dsk: no node 'call_back'",
        "10: callbacks.machine: no node 'machin'; did you mean 'main'?",
    ], fixed


def test_the_nodes_a_call_back_starts_at_count_as_reachable(write_flow: WriteFlow) -> None:
    text = (
        MINI_FLOW.replace(
            "    nodes:\n", "    callbacks:\n      lines: {desk: call_back}\n      machine: bye\n    nodes:\n"
        )
        + "      call_back:\n        kind: message\n        say: Перезваниваем.\n        next: operator\n"
    )
    flow = flows.load(write_flow(text), env={})
    assert flow.callbacks is not None and flow.callbacks.lines == {"desk": "call_back"}
    assert flow.callbacks.policy.attempts == 3 and flow.callbacks.default_line == "desk"
