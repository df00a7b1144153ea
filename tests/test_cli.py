"""The `ivr` command line, through click's CliRunner and a real local HTTP server."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.simulator.console import Token, interactive_token
from tests.conftest import MINI_FLOW, MONDAY_10, SignedClient, action_of, serving


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def without_timestamps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without what differs between two runs: moments, URLs, the values of the parameters
    sent (a CallSid is new each call) — their names stay."""
    return [{k: (sorted(v) if k == "params" else v) for k, v in e.items() if k not in ("at", "url")} for e in events]


def test_check_prints_the_summary_of_the_hotline(runner: CliRunner) -> None:
    result = runner.invoke(main, ["check", "flows/dms_hotline.yaml"])
    assert result.exit_code == 0, result.output
    assert "flows/dms_hotline.yaml: OK, flow 'dms_hotline'" in result.output
    assert "  nodes: 62 (" in result.output
    assert "  call-backs: representative → cb_representative" in result.output
    assert "schedule representative: mon 09:00-18:00" in result.output
    assert "allowance second_opinion: 1 per policy year" in result.output


def test_check_lists_every_problem_and_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        MINI_FLOW.replace("next: main\n      operator", "next: mian\n      operator").replace("\n    ", "\n")
    )
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert f"error: {path}:" in result.output and "node 'info': next: no node 'mian'" in result.output
    assert "1 problem(s) found." in result.output


def test_simulate_json_navigator_ends_in_a_transfer(runner: CliRunner) -> None:
    result = runner.invoke(main, ["simulate", "--json", "--at", MONDAY_10, "3"])
    assert result.exit_code == 0, result.output
    call = json.loads(result.output)
    assert set(call) == {"call_sid", "from", "to", "at", "events", "end"}
    dial = [e for e in call["events"] if e["type"] == "dial"]
    assert dial == [{"type": "dial", "to": ["+78007756610"], "outcome": "caller-hangup", "at": MONDAY_10}]
    assert call["events"][-2] == {"type": "hangup", "by": "caller", "at": MONDAY_10}
    assert call["end"] == "caller-hangup"


def test_simulate_text_output_shows_what_the_caller_hears(runner: CliRunner) -> None:
    result = runner.invoke(main, ["simulate", "--at", "2021-03-06T10:00:00+03:00", "2"])
    assert result.exit_code == 0
    assert "  ⌨  caller: 2" in result.output
    assert "Он будет на связи во вторник, 9 марта, в 9 часов." in result.output
    assert result.output.rstrip().endswith("call ended: caller-hangup")


def test_simulate_dial_token_decides_the_transfer_outcome(runner: CliRunner) -> None:
    result = runner.invoke(main, ["simulate", "--json", "--at", MONDAY_10, "3", "dial:busy", "9"])
    events = json.loads(result.output)["events"]
    assert [e["outcome"] for e in events if e["type"] == "dial"] == ["busy"]
    assert any("не удалось соединить" in e.get("text", "") for e in events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "5x"], "'5x' is not an input token"),
        (["simulate", "dial:maybe"], "must be one of completed, busy"),
        (["simulate", "--at", "next tuesday"], "'next tuesday' is not an ISO-8601 date"),
        (["simulate", "--url", "localhost:5000/voice"], "must start with http:// or https://"),
        (["simulate", "--at", MONDAY_10, "3", "5"], "input 2 (5) does not fit: the call waits for the outcome"),
    ],
)
def test_simulate_misuse_exits_2_with_a_clear_message(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output


def test_simulate_unreachable_url_is_twilio_s_11205_with_the_call_and_exit_1(runner: CliRunner) -> None:
    result = runner.invoke(main, ["simulate", "--url", "http://127.0.0.1:9/voice", "1"])
    assert result.exit_code == 1
    assert "nothing answered at http://127.0.0.1:9/voice: is the server running?" in result.output
    assert "!  error 11205: cannot reach http://127.0.0.1:9/voice" in result.output
    assert "We are sorry, an application error has occurred. Goodbye." in result.output
    assert "call ended: app-error" in result.output


def test_simulate_with_a_broken_flow_names_the_problem(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("nodes: {}\n")
    result = runner.invoke(main, ["simulate", "--flow", str(path)])
    assert result.exit_code == 1 and "the flow has no nodes" in result.output


def test_extra_tokens_after_the_end_are_reported(runner: CliRunner) -> None:
    result = runner.invoke(main, ["simulate", "--at", MONDAY_10, "3", "dial:completed", "1"])
    assert result.exit_code == 0
    assert "note: the call ended before input 3 (1); the rest is unused" in result.output


@pytest.fixture
def live_server(ivr_databases: Any) -> Iterator[str]:
    app = create_app({"DATABASE_URL": ivr_databases(), "ALLOW_SIMULATED_CLOCK": True})
    with serving(app) as url:
        yield url


def test_simulate_over_http_prints_the_same_events_as_in_process(runner: CliRunner, live_server: str) -> None:
    args = ["simulate", "--json", "--at", MONDAY_10, "3"]
    local = json.loads(runner.invoke(main, args).output)
    remote_result = runner.invoke(main, [*args, "--url", live_server, "--status-callback", "/voice/status"])
    assert remote_result.exit_code == 0, remote_result.output
    remote = json.loads(remote_result.output)
    assert without_timestamps(remote["events"]) == without_timestamps(local["events"])


def test_simulate_over_http_closes_the_call_with_the_app_s_status_callback_unless_told_not_to(
    runner: CliRunner, ivr_databases: Any
) -> None:
    url = ivr_databases()
    app = create_app({"DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, "ALLOW_SIMULATED_CLOCK": True})
    with serving(app) as voice:
        closed = runner.invoke(main, ["simulate", "--json", "--at", MONDAY_10, "--url", voice, "6"])
        open_ = runner.invoke(main, ["simulate", "--json", "--at", MONDAY_10, "--url", voice, "--no-status-callback"])
    posted = [e["url"] for e in json.loads(closed.output)["events"] if e["type"] == "request"]
    assert posted[-1] == voice + "/status"
    assert not [e for e in json.loads(open_.output)["events"] if e["type"] == "request" and "status" in e["url"]]
    store = app.extensions["ivr"].handler.store
    with store.read() as conn:
        from ivr.store import calls as lookup

        listing = lookup.recent(conn, None, 10)
    assert sorted(c.in_progress for c in listing.calls) == [False, True]  # the second never said it ended


def test_status_callback_and_no_status_callback_do_not_go_together(runner: CliRunner) -> None:
    result = runner.invoke(main, ["simulate", "--status-callback", "/s", "--no-status-callback", "1"])
    assert result.exit_code == 2
    assert "--status-callback and --no-status-callback contradict each other; give one" in result.output


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ("", Token("silence")),
        ("5", Token("keys", "5")),
        ("say психолог", Token("say", "психолог")),
        ("dial busy", Token("dial", "busy")),
        ("q", Token("hangup")),
        ("?", None),
        ("психолог", Token("say", "психолог")),  # plain words are speech
        ("второе мнение", Token("say", "второе мнение")),
    ],
)
def test_interactive_lines_become_tokens(line: str, token: Token | None) -> None:
    assert interactive_token(line) == token


def test_an_interactive_line_that_is_neither_keys_nor_words_gets_one_short_line() -> None:
    with pytest.raises(ValueError) as wrong:
        interactive_token("5a")
    assert str(wrong.value) == "'5a' is neither keys (0-9, * and #) nor words to say; ? shows what you can type"


def test_the_interactive_prompt_names_inputs_as_they_are_typed_there(sim: Any) -> None:
    from ivr.simulator.console import waiting_for

    call = sim.call(at=MONDAY_10)
    assert waiting_for(call, interactive=True) == "1 key or speech (say TEXT)"
    assert waiting_for(call) == "1 key or speech (say:TEXT)"  # a token on the command line
    call.press("3")
    assert waiting_for(call, interactive=True).endswith("(dial STATUS)")


@pytest.fixture
def admin_env(ivr_databases: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Admin commands act on the database IVR_DATABASE_URL names; give them a temporary one."""
    url = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    return url


def test_hours_explains_closed_and_names_the_moved_saturday(runner: CliRunner, admin_env: str) -> None:
    result = runner.invoke(main, ["hours", "--at", "2021-02-19T18:30:00+03:00"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "representative: CLOSED at 2021-02-19 18:30 Friday (Europe/Moscow, calendar RU)\n"
        "  why: weekly hours (Friday); hours that day: 09:00-18:00\n"
        "  next opening: 2021-02-20 09:00 Saturday (moved working day of the production calendar); "
        "callers hear «завтра в 9 часов»\n"
    )


def test_hints_keep_simulated_when_the_command_works_on_simulated_calls(runner: CliRunner, admin_env: str) -> None:
    closed = runner.invoke(main, ["hours", "close", "representative", "--reason", "учения", "--simulated"])
    assert closed.output == (
        "representative: closed by an operator (учения); `ivr hours open representative --simulated` lifts it.\n"
    )
    real = runner.invoke(main, ["hours", "close", "representative", "--reason", "учения"])
    assert real.output.endswith("`ivr hours open representative` lifts it.\n")
    unknown = runner.invoke(main, ["allowance", "release", "123", "--reason", "x", "--simulated"])
    assert "see `ivr requests list --simulated` for references" in unknown.output


def test_emergency_closure_is_switched_without_a_restart(runner: CliRunner, admin_env: str) -> None:
    client = SignedClient(create_app())  # a running server, sharing the database with the admin commands
    clock = {"ivr.clock": MONDAY_10}

    def press_2(sid: str) -> bytes:
        entry = client.post("/voice", data={"CallSid": sid}, environ_base=clock)
        return client.post(action_of(entry), data={"CallSid": sid, "Digits": "2"}, environ_base=clock).data

    assert b"<Dial" in press_2("CA1")
    closed = runner.invoke(main, ["hours", "close", "representative", "--reason", "потоп в офисе"])
    assert closed.exit_code == 0 and "closed by an operator (потоп в офисе)" in closed.output
    assert "временно недоступен".encode() in press_2("CA2")
    status = runner.invoke(main, ["hours", "--at", MONDAY_10])
    assert "CLOSED" in status.output and "why: emergency closure: потоп в офисе" in status.output
    assert runner.invoke(main, ["hours", "open"]).output == "representative: emergency closure lifted.\n"
    assert b"<Dial" in press_2("CA3")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hours", "close"], "say why with --reason"),
        (["hours", "lunch"], "'lunch' is not a schedule of the flow; known: representative"),
        (["hours", "--at", "soon"], "'soon' is not an ISO-8601 date and time"),
        (["hours", "--reason", "x"], "--reason goes with `ivr hours close`"),
    ],
)
def test_hours_misuse_is_explained(runner: CliRunner, admin_env: str, args: list[str], message: str) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and message in result.output


def test_graph_draws_keys_schedules_and_allowances(runner: CliRunner) -> None:
    mermaid = runner.invoke(main, ["graph"]).output
    assert mermaid.startswith("flowchart TD\n")
    assert 'main -->|"3 «навигатор»"| navigator_info' in mermaid
    assert 'rep_hours{"rep_hours: schedule representative?"}' in mermaid
    assert 'so_allowance[("so_allowance: allowance second_opinion 1 per policy year")]' in mermaid
    assert 'main -.->|"wrong ×3, silent ×3"| desk_operator' in mermaid
    dot = runner.invoke(main, ["graph", "--format", "dot"]).output
    assert dot.startswith('digraph "dms_hotline" {') and 'rep_hours -> rep_transfer [label="open"];' in dot


def test_new_writes_a_working_flow_with_passing_call_scripts(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["new", "demo", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "schema" / "flow.schema.json").exists()
    assert runner.invoke(main, ["check", str(tmp_path / "flows" / "demo.yaml")]).exit_code == 0
    tested = runner.invoke(main, ["test", str(tmp_path / "calls" / "demo")])
    assert tested.exit_code == 0 and tested.output.endswith("3 passed, 0 failed\n")
    again = runner.invoke(main, ["new", "demo", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exist;" in again.output
    assert "must be lower-case" in runner.invoke(main, ["new", "My Line"]).output


@pytest.mark.slow
def test_new_writes_a_pytest_configuration_and_first_tests_that_pass(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["new", "shop", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pytest.ini").read_text().splitlines()[1:3] == ["[pytest]", "ivr_flow = flows/shop.yaml"]
    assert (
        result.output.splitlines()[-1]
        == f"next: ivr simulate --flow {tmp_path}/flows/shop.yaml, then pytest (in {tmp_path})"
    )
    env = {k: v for k, v in os.environ.items() if k != "IVR_FLOW"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ivr: testing the flow flows/shop.yaml (ivr_flow in pytest.ini)" in run.stdout
    assert " 6 passed in " in run.stdout.rstrip().splitlines()[-1]  # 3 tests and 3 call scripts


def test_new_leaves_an_existing_pytest_configuration_alone_and_says_what_to_add(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-q"\n')
    result = runner.invoke(main, ["new", "shop", "--dir", str(tmp_path)])
    assert result.exit_code == 0 and not (tmp_path / "pytest.ini").exists()
    assert f"note: {tmp_path}/pyproject.toml configures pytest already: add `ivr_flow = flows/shop.yaml` to it" in (
        result.output
    )
    assert (tmp_path / "pyproject.toml").read_text() == '[tool.pytest.ini_options]\naddopts = "-q"\n'
    second = runner.invoke(main, ["new", "shop", "--dir", str(tmp_path)])
    assert second.exit_code == 2 and "tests/test_shop.py" in second.output
