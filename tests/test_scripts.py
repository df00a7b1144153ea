"""Call scripts: parsing with clear errors, pass and fail reports, pytest collection."""

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.errors import FlowError
from ivr.testing import scripts
from tests.conftest import serving

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]

GOOD = """
name: navigator
at: 2021-03-01T10:00:00+03:00
steps:
  - press: "3"
  - expect: {heard: "навигатор", transferred_to: "+78007756610"}
"""

BAD = """
name: wrong expectations
at: 2021-03-01T10:00:00+03:00
steps:
  - press: "3"
  - expect: {heard: "психолог", transferred_to: "+70000000000", registered: desk}
  - press: "5"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.call.yaml"
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


def test_ivr_test_reports_pass_and_fail_with_reasons(tmp_path: Path) -> None:
    write(tmp_path, "good", GOOD)
    write(tmp_path, "bad", BAD)
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"FAIL {tmp_path / 'bad.call.yaml'}: wrong expectations"
    assert lines[1].startswith("    line 5: expected to hear «психолог»; heard «Медицинский навигатор")
    assert lines[2] == "    line 5: expected a transfer to ['+70000000000']; the call dialled ['+78007756610']"
    assert lines[3] == "    line 5: expected requests registered in this call: ['desk']; found []"
    assert lines[4].startswith("    line 6: press: cannot press keys: the call waits in <Dial>")
    assert lines[5] == f"PASS {tmp_path / 'good.call.yaml'}: navigator"
    assert lines[-1] == "1 passed, 1 failed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: []\n", ":1: `steps` must be a non-empty list"),
        ("steps:\n  - jump: 3\n", ":2: unknown step 'jump'; use press, say, silence, dial, record, hangup, expect"),
        ("steps:\n  - dial: maybe\n", ":2: dial outcome 'maybe' is not one of completed, busy"),
        ("steps:\n  - expect: {hears: x}\n", ":2: unknown expectation 'hears'"),
        ("name: x\nwhen: now\nsteps: [{press: '1'}]\n", ":2: unknown key 'when'"),
        ("calls:\n  - callback: first\n    steps: [{press: '1'}]\n", ":2: `callback` takes `last`"),
        ("calls:\n  - callback: last\n    answer: robot\n    steps: [{press: '1'}]\n", ":3: `answer` is one of"),
        ("calls:\n  - answer: human\n    steps: [{press: '1'}]\n", ":2: `answer` goes with `callback: last`"),
        ("calls:\n  - steps: [{press: '1'}]\n    wait: 5\n", ":3: unknown key 'wait' of a call"),
        ("params: [ForwardedFrom]\nsteps: [{press: '1'}]\n", ":1: `params` maps Twilio's parameter names"),
    ],
)
def test_broken_scripts_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "broken", text)
    with pytest.raises(FlowError) as info:
        scripts.load(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_pytest_collects_call_scripts(pytester: pytest.Pytester) -> None:
    (pytester.path / "good.call.yaml").write_text(GOOD.lstrip(), encoding="utf-8")
    (pytester.path / "bad.call.yaml").write_text(BAD.lstrip(), encoding="utf-8")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*call script*bad.call.yaml*", "*expected to hear «психолог»*"])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("at: tomorrow\nsteps:\n  - press: '3'\n", ":1: `at`: 'tomorrow' is not an ISO-8601 date and time"),
        ("steps:\n  - press: 'abc'\n", ":2: `press` takes keys 0-9, * and #"),
    ],
)
def test_a_wrong_script_is_reported_at_its_line_and_the_others_still_run(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "a_wrong.call.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "b_fine.call.yaml").write_text(
        "at: 2021-03-01T10:00:00+03:00\nsteps:\n  - press: '3'\n  - expect: {transferred_to: '+78007756610'}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
    assert "PASS" in result.output and result.output.rstrip().endswith("1 passed, 1 failed")


def test_over_http_scripts_that_need_the_app_in_process_are_skipped_with_the_reason(ivr_databases: Any) -> None:
    url = ivr_databases()
    app = create_app({"DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, "ALLOW_SIMULATED_CLOCK": True})
    with serving(app) as voice:
        result = CliRunner().invoke(main, ["test", "--url", voice, str(ROOT / "calls")])
    assert "SKIP" in result.output and "need the app in-process (run without --url)" in result.output
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("skipped")
    app.extensions["ivr"].dispose()


def test_ivr_test_refuses_a_url_that_is_none() -> None:
    result = CliRunner().invoke(main, ["test", "--url", "notaurl", str(ROOT / "calls")])
    assert result.exit_code == 2 and "'notaurl' must start with http:// or https://" in result.output


def test_a_call_back_that_is_not_due_yet_fails_the_script_saying_when_it_is(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "early",
        "calls:\n"
        "  - at: 2021-03-13T11:00:00+03:00\n"
        "    steps: [{press: '2'}, {press: '2'}, {press: '1'}]\n"
        "  - callback: last\n"
        "    at: 2021-03-15T08:00:00+03:00\n"
        "    steps: [{expect: {hung_up: true}}]\n",
    )
    outcome = scripts.run(scripts.load(path))
    assert outcome.failures == [
        "call 2, `callback: last`: call-back 100016 is not due at 2021-03-15T08:00:00+03:00 (waiting)"
    ]


def test_a_script_sends_twilio_s_conditional_parameters(tmp_path: Path) -> None:
    from flask import Flask, request

    app = Flask("echo")
    app.add_url_rule(
        "/voice",
        "voice",
        lambda: (
            f"<Response><Say>{request.values.get('ForwardedFrom', 'none')}</Say></Response>",
            200,
            {"Content-Type": "text/xml"},
        ),
        methods=["POST"],
    )
    from tests.conftest import serving

    path = write(
        tmp_path, "forwarded", "params: {ForwardedFrom: '+74951234567'}\nsteps: [{expect: {heard: '+74951234567'}}]\n"
    )
    with serving(app) as url:
        assert scripts.run(scripts.load(path), url=url).failures == []
