"""The pytest plugin as a user meets it: a test file of their own, their own flow, no boilerplate."""

import textwrap
from pathlib import Path

import pytest

from tests.conftest import MINI_FLOW

pytest_plugins = ["pytester"]

USER_TESTS = """
def test_help_then_operator(ivr_simulator):
    call = ivr_simulator.call(at="2021-03-01T10:00:00+03:00")
    assert call.heard.startswith("Привет.")
    call.say("справка")
    assert "Справка." in call.heard
    call.press("2")
    assert call.dialed == ["+78002001441"]


def test_the_app_fixture_serves_the_chosen_flow(ivr_app):
    assert ivr_app.extensions["ivr"].handler.flow.name == "mini"
"""


def test_plugin_runs_a_users_flow_tests(pytester: pytest.Pytester) -> None:
    flow = pytester.path / "mini.yaml"
    flow.write_text(textwrap.dedent(MINI_FLOW).lstrip(), encoding="utf-8")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--ivr-flow={flow}")
    result.assert_outcomes(passed=2)


def test_plugin_reads_the_flow_from_the_ini_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    flow = pytester.path / "mini.yaml"
    flow.write_text(textwrap.dedent(MINI_FLOW).lstrip(), encoding="utf-8")
    pytester.makeini(f"[pytest]\nivr_flow = {flow}\n")
    pytester.makepyfile(test_user=USER_TESTS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_ini_flow_is_relative_to_the_ini_file_and_the_header_names_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / "flows").mkdir()
    (pytester.path / "flows" / "mini.yaml").write_text(textwrap.dedent(MINI_FLOW).lstrip(), encoding="utf-8")
    pytester.makeini("[pytest]\nivr_flow = flows/mini.yaml\n")
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "test_user.py").write_text(USER_TESTS, encoding="utf-8")
    monkeypatch.chdir(pytester.path / "checks")  # run from a sub-folder: the flow is still found
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", ".")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["ivr: testing the flow flows/mini.yaml (ivr_flow in tox.ini)"])


def test_the_header_says_when_the_bundled_hotline_is_tested(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IVR_FLOW", raising=False)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["ivr: testing the bundled DMS hotline (set ivr_flow in pytest.ini, or --ivr-flow, to test yours)"]
    )


def test_a_call_that_dialled_nobody_has_an_empty_list(pytester: pytest.Pytester) -> None:
    flow = pytester.path / "mini.yaml"
    flow.write_text(textwrap.dedent(MINI_FLOW).lstrip(), encoding="utf-8")
    pytester.makepyfile(
        test_user="""
def test_nobody(ivr_simulator):
    assert ivr_simulator.call(at="2021-03-01T10:00:00+03:00").dialed == []
"""
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--ivr-flow={flow}").assert_outcomes(passed=1)
