"""Wrong inputs at the edges get one clear answer, and nothing a caller said is run by a spreadsheet."""

import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr import ConfigError, create_app
from ivr.cli import main
from ivr.store.spreadsheet import cell
from tests.conftest import MONDAY_10, SignedClient


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+7 916", "'+7 916"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("Иванов", "Иванов"),
        (12, 12),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(value: Any, written: Any) -> None:
    assert cell(value) == written


def test_a_caller_s_words_in_the_requests_export_are_never_a_formula(
    sim: Any, ivr_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", ivr_config["DATABASE_URL"])
    call = sim.call(at=MONDAY_10).press("1").press("123456#").press("1")
    call.say('=HYPERLINK("http://evil","click")').press("1").say("@болит").press("1")
    assert "Заявка зарегистрирована" in call.heard
    exported = CliRunner().invoke(main, ["requests", "list", "--csv"]).output
    (header, row) = list(csv.reader(io.StringIO(exported)))
    values = dict(zip(header, row, strict=True))
    assert values["full_name"] == '\'=HYPERLINK("http://evil","click")' and values["complaints"] == "'@болит"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOURNAL_DAYS", "abc", "IVR_JOURNAL_DAYS='abc': must be a whole number from 1 to 36500"),
        ("JOURNAL_DAYS", "0", "IVR_JOURNAL_DAYS='0': must be a whole number from 1 to 36500"),
        ("MAX_CALL_STEPS", "0", "IVR_MAX_CALL_STEPS='0': must be a whole number from 3 to 100000"),
        ("MAX_CONTENT_LENGTH", "0", "IVR_MAX_CONTENT_LENGTH='0': must be a whole number from 4096 to 10485760"),
        ("DB_BUSY_TIMEOUT", "soon", "IVR_DB_BUSY_TIMEOUT='soon': must be a number from 0.01 to 60"),
        ("TRUST_PROXY", "-1", "IVR_TRUST_PROXY='-1': must be a whole number from 0 to 5"),
        ("LOG_LEVEL", "LOUD", "IVR_LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR"),
        ("SIMULATOR", "maybe", "IVR_SIMULATOR='maybe': must be 1 or 0 (true/false, yes/no, on/off)"),
    ],
)
def test_a_setting_out_of_range_stops_the_start_with_one_line(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv(f"IVR_{name}", value)
    with pytest.raises(ConfigError) as raised:
        create_app()
    assert str(raised.value) == message
    if name != "LOG_LEVEL":  # admin commands run quiet, with a log level of their own
        result = CliRunner().invoke(main, ["purge"])
        assert result.exit_code == 2 and result.output == f"ivr: {message}\n"


def test_purge_refuses_days_it_cannot_count() -> None:
    result = CliRunner().invoke(main, ["purge", "--days", "99999999999"])
    assert result.exit_code == 2 and "99999999999 is not in the range 1<=x<=36500" in result.output


def test_the_serving_docs_list_every_setting_with_its_range() -> None:
    from pathlib import Path

    from ivr.settings import table

    readme = (Path(__file__).resolve().parent.parent / "docs" / "serving.md").read_text(encoding="utf-8")
    for row in table():
        line = next((line for line in readme.splitlines() if line.startswith(f"| `{row['name']}`")), None)
        assert line is not None, row["name"]
        assert f"| {row['allowed']} |" in line and f"| {row['default']} |" in line, line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hours", "--at", "9999-12-31T23:59"], "'9999-12-31T23:59' is out of range: give a moment from 1970 to 2199"),
        (["requests", "list", "--since", "0001-01-01"], "'0001-01-01' is out of range"),
        (["report", "--since", "0001-01-01"], "'0001-01-01' is out of range"),
        (["report", "--since", "2021-03-08", "--until", "2021-03-01"], "is not before --until 2021-03-01"),
        (["simulate", "--at", "0001-01-01T00:00", "3"], "'0001-01-01T00:00' is out of range"),
    ],
)
def test_a_moment_out_of_range_is_one_clear_line(
    args: list[str], message: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_simulated_clock_out_of_range_is_refused_not_an_incident(tmp_path: Any) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "ALLOW_SIMULATED_CLOCK": True})
    answer = SignedClient(app).post("/voice", data={"CallSid": "CA1"}, headers={"X-Ivr-Clock": "0001-01-01T00:00"})
    assert "out of range" in answer.headers["X-Ivr-Refused"] and "Здравствуйте".encode() in answer.data
    assert app.extensions["ivr"].incidents.failures == 0


def _commands(group: Any = main, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import click

    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_explains_itself_and_a_wrong_option_in_one_line(
    command: tuple[str, ...], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    runner = CliRunner()
    helped = runner.invoke(main, [*command, "--help"])
    assert helped.exit_code == 0 and helped.output.startswith("Usage: ") and "Traceback" not in helped.output
    wrong = runner.invoke(main, [*command, "--no-such-option"])
    assert wrong.exit_code == 2, wrong.output
    (line,) = wrong.output.splitlines()
    assert line.startswith(f"main {' '.join(command)}: ") and "No such option '--no-such-option'" in line
    assert "--help" in line


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["simulate", "--at", "soon", "3"], 2, "'soon' is not an ISO-8601 date and time"),
        (["simulate", "--url", "notaurl"], 2, "must start with http:// or https://"),
        (["hours", "lunch"], 2, "'lunch' is not a schedule of the flow"),
        (
            ["allowance", "release", "999999", "--reason", "dup"],
            2,
            "'999999' is not the reference of a spent allowance; see `ivr requests list` for references",
        ),
        (["requests", "list", "--since", "yesterday"], 2, "'yesterday' is not a date like 2021-03-01"),
        (["purge", "--days", "0"], 2, "0 is not in the range 1<=x<=36500"),
        (["check", "/nonexistent/flow.yaml"], 1, "flow.yaml"),
        (["nosuchcommand"], 2, "No such command 'nosuchcommand'"),
    ],
)
def test_common_mistakes_get_one_line_and_the_right_status(
    args: list[str], status: int, says: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == status, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) <= 2, result.output


def test_an_unexpected_failure_is_one_line_and_a_traceback_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.engine import seal  # `ivr keys new` imports it when it runs

    monkeypatch.setattr(seal, "new_key", lambda: 1 / 0)
    quiet = CliRunner().invoke(main, ["keys", "new"])
    assert quiet.exit_code == 1
    assert (
        quiet.output
        == "ivr: unexpected ZeroDivisionError: division by zero (--debug or IVR_DEBUG=1 shows the traceback)\n"
    )
    loud = CliRunner().invoke(main, ["--debug", "keys", "new"])
    assert isinstance(loud.exception, ZeroDivisionError)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["requests", "list", "--kind", "nosuch"], "'nosuch' is not a kind of request of the flow; known: callback"),
        (["hours", "close", "--reason", "x", "--at", "2021-03-01T10:00"], "--at goes with asking about the hours"),
        (["check", "flows/dms_hotline.yaml", "--flow", "other.yaml"], "two flow files"),
        (
            ["twilio", "connect", "--number", "123", "--public-url", "https://x.example"],
            "'123' is not a number in E.164",
        ),
        (
            ["twilio", "connect", "--number", "+15005550006", "--public-url", "https://x.example/voice"],
            "without /voice (give 'https://x.example'",
        ),
    ],
)
def test_more_mistakes_are_refused_with_what_would_be_right(
    args: list[str], says: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and says in result.output, result.output


def test_check_and_graph_take_the_flow_from_ivr_flow_like_every_other_command(
    monkeypatch: pytest.MonkeyPatch, mini_flow: Any
) -> None:
    monkeypatch.setenv("IVR_FLOW", str(mini_flow))
    assert "OK, flow 'mini'" in CliRunner().invoke(main, ["check"]).output
    assert 'info["info"]' in CliRunner().invoke(main, ["graph"]).output
    assert "OK, flow 'mini'" in CliRunner().invoke(main, ["check", "--flow", str(mini_flow)]).output


def test_piped_tokens_drive_a_simulated_call() -> None:
    result = CliRunner().invoke(main, ["simulate", "--at", MONDAY_10], input="3\ndial:completed\n")
    assert result.exit_code == 0 and "Соединяю с медицинским навигатором" in result.output
    assert "call ended: app-hangup" in result.output


def test_crawl_of_a_url_where_nothing_answers_says_so_in_one_line() -> None:
    result = CliRunner().invoke(main, ["crawl", "--url", "http://127.0.0.1:9/voice"])
    assert result.exit_code == 2 and "cannot reach http://127.0.0.1:9/voice" in result.output
    assert "is the server running?" in result.output and "{" not in result.output


def test_words_said_to_a_keys_only_prompt_are_shown_as_what_twilio_hears() -> None:
    result = CliRunner().invoke(main, ["simulate", "--at", MONDAY_10, "1", "say:123"])
    assert "caller: said «123», but this prompt takes keys only: heard as silence" in result.output


def test_the_simulator_says_which_verbs_it_waited_for_in_words(sim: Any) -> None:
    from ivr.simulator import SimulatorError

    call = sim.call(at=MONDAY_10).press("3")
    with pytest.raises(SimulatorError, match=r"the call waits in <Dial>, not in <Gather> or <Record> or <Enqueue>$"):
        call.silence()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["callbacks", "--at", "nope"],
            "ivr callbacks: Invalid value for --at: 'nope' is not an ISO-8601 date and time like "
            "2021-03-01T10:00:00+03:00 (see `ivr callbacks --help`)\n",
        ),
        (
            ["callbacks", "--at", "2021-02-30T10:00"],
            "ivr callbacks: Invalid value for --at: '2021-02-30T10:00' is no such date: day is out of range for "
            "month (see `ivr callbacks --help`)\n",
        ),
        (
            ["simulate", "--at", "2021-02-30T10:00", "1"],
            "ivr simulate: Invalid value for --at: '2021-02-30T10:00' is no such date: day is out of range for "
            "month (see `ivr simulate --help`)\n",
        ),
        (
            ["report", "--since", "2021-13-01"],
            "ivr report: Invalid value for --since: '2021-13-01' is no such date: month must be in 1..12 "
            "(see `ivr report --help`)\n",
        ),
        (
            ["simulate", "--at"],
            "ivr simulate: Option '--at' requires an argument. (see `ivr simulate --help`)\n",
        ),
    ],
)
def test_a_moment_option_says_what_is_wrong_with_the_moment_and_where_help_is(
    args: list[str], said: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env["IVR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    ivr = str(Path(sys.executable).parent / "ivr")  # the console script, as a user types it
    run = subprocess.run([ivr, *args], env=env, capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (2, said)
