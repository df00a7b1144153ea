"""pytest plugin (entry point `pytest11`): fixtures to test a flow with the simulator, no boilerplate.

    def test_navigator(ivr_simulator):
        call = ivr_simulator.call(at="2021-03-01T10:00:00+03:00")
        call.press("3")
        assert call.dialed == ["+78007756610"]

Choose the flow with `--ivr-flow PATH` or the ini option `ivr_flow` (default: IVR_FLOW, else the
bundled DMS hotline). Each test gets its own temporary SQLite database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ivr", "ivr voice-menu simulator")
    group.addoption("--ivr-flow", default=None, help="flow file the ivr_app fixture serves")
    parser.addini("ivr_flow", "flow file the ivr_app fixture serves", default="")


@pytest.fixture
def ivr_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The configuration ivr_app is built with; override this fixture to change it."""
    config: dict[str, Any] = {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'ivr.sqlite3'}"}
    flow = request.config.getoption("--ivr-flow") or request.config.getini("ivr_flow")
    if flow:
        config["FLOW"] = str(flow)
    return config


@pytest.fixture
def ivr_app(ivr_config: dict[str, Any]) -> Iterator[Any]:
    """The Flask app of the flow under test, on a fresh temporary database."""
    from ivr import create_app

    app = create_app(ivr_config)
    yield app
    app.extensions["ivr"].handler.store.engine.dispose()


@pytest.fixture
def ivr_simulator(ivr_app: Any) -> Any:
    """A Simulator that calls ivr_app in-process, signing requests when the app checks signatures."""
    from ivr.simulator import Simulator

    token = ivr_app.config.get("TWILIO_AUTH_TOKEN")
    return Simulator(ivr_app, auth_token=token or "", status_callback="/voice/status")
