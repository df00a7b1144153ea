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
