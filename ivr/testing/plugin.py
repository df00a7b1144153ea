"""pytest plugin (entry point `pytest11`): fixtures to test a flow with the simulator, no boilerplate.

    def test_navigator(ivr_simulator):
        call = ivr_simulator.call(at="2021-03-01T10:00:00+03:00")
        call.press("3")
        assert call.dialed == ["+78007756610"]

Choose the flow with `--ivr-flow PATH` or the ini option `ivr_flow` (default: IVR_FLOW, else the
bundled DMS hotline); pytest's header line names the flow under test. Each test gets its own
temporary database: a SQLite file, or a fresh
schema on the PostgreSQL server IVR_TEST_DATABASE_URL names.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.errors import FlowError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ivr", "ivr voice-menu simulator")
    group.addoption("--ivr-flow", default=None, help="flow file the ivr_app fixture serves")
    parser.addini("ivr_flow", "flow file the ivr_app fixture serves", default="")


def flow_under_test(config: pytest.Config) -> tuple[str | None, str]:
    """The flow file the fixtures and call scripts test, and where that choice came from: --ivr-flow
    (relative to the current folder), the ini option ivr_flow (relative to the ini file), IVR_FLOW,
    else None for the bundled hotline."""
    option = config.getoption("--ivr-flow")
    if option:
        return str(option), "--ivr-flow"
    ini = config.getini("ivr_flow")
    if ini:
        path = Path(str(ini))
        if not path.is_absolute() and config.inipath is not None:
            path = config.inipath.parent / path
        return str(path), f"ivr_flow in {config.inipath.name if config.inipath else 'the ini file'}"
    if os.environ.get("IVR_FLOW"):
        return os.environ["IVR_FLOW"], "IVR_FLOW"
    return None, "the default"


def pytest_report_header(config: pytest.Config) -> str:
    flow, source = flow_under_test(config)
    if flow is None:
        return "ivr: testing the bundled DMS hotline (set ivr_flow in pytest.ini, or --ivr-flow, to test yours)"
    try:
        shown = Path(flow).resolve().relative_to(config.rootpath.resolve())
    except ValueError:
        shown = Path(flow)
    return f"ivr: testing the flow {shown} ({source})"


@pytest.fixture(scope="session")
def ivr_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty databases: SQLite files, or, when IVR_TEST_DATABASE_URL names a PostgreSQL
    server, a schema of its own each (dropped at the end), so tests can run in parallel."""
    base = os.environ.get("IVR_TEST_DATABASE_URL", "")
    schemas: list[str] = []

    def new() -> str:
        if not base:
            return f"sqlite:///{tmp_path_factory.mktemp('ivr-db') / 'ivr.sqlite3'}"
        import sqlalchemy as sa

        name = "ivr_test_" + secrets.token_hex(6)
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        engine.dispose()
        schemas.append(name)
        url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    yield new
    if schemas:
        import sqlalchemy as sa

        engine = sa.create_engine(base)
        for name in schemas:  # one transaction each: dropping them all in one runs out of lock slots
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        engine.dispose()


@pytest.fixture
def ivr_config(request: pytest.FixtureRequest, ivr_databases: Callable[[], str]) -> dict[str, Any]:
    """The configuration ivr_app is built with; override this fixture to change it."""
    url = ivr_databases()
    # The database is a throw-away: simulated calls are kept in it, where the test looks.
    config: dict[str, Any] = {"TESTING": True, "DATABASE_URL": url, "SIMULATED_DATABASE_URL": url}
    flow, _source = flow_under_test(request.config)
    if flow:
        config["FLOW"] = flow
    return config


@pytest.fixture
def ivr_app(ivr_config: dict[str, Any]) -> Iterator[Any]:
    """The Flask app of the flow under test, on a fresh temporary database."""
    from ivr import create_app

    app = create_app(ivr_config)
    yield app
    app.extensions["ivr"].dispose()


@pytest.fixture
def ivr_simulator(ivr_app: Any) -> Any:
    """A Simulator that calls ivr_app in-process, signing requests when the app checks signatures."""
    from ivr.simulator import Simulator

    token = ivr_app.config.get("TWILIO_AUTH_TOKEN")
    return Simulator(ivr_app, auth_token=token or "", status_callback="/voice/status")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    """Every `*.call.yaml` file is a test: its calls are played and their expectations checked."""
    if file_path.name.endswith(".call.yaml"):
        return CallScriptFile.from_parent(parent, path=file_path)
    return None


class CallScriptFile(pytest.File):
    """A call script file, collected as one test item."""

    def collect(self) -> Iterator[pytest.Item]:
        yield CallScriptItem.from_parent(self, name=self.path.name.removesuffix(".call.yaml"))


class CallScriptError(Exception):
    """A call script's expectations were not met."""


class CallScriptItem(pytest.Item):
    """Runs one call script in-process, with the flow chosen by --ivr-flow / ivr_flow or the script."""

    def runtest(self) -> None:
        from ivr.testing import scripts

        flow, _source = flow_under_test(self.config)
        outcome = scripts.run(scripts.load(self.path), flow=Path(flow) if flow else None)
        if outcome.skipped:
            pytest.skip(outcome.skipped)
        if not outcome.passed:
            raise CallScriptError("\n".join([outcome.script.name, *outcome.failures]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CallScriptError):
            return f"call script {self.path}:\n{excinfo.value}"
        if isinstance(excinfo.value, FlowError):  # the script file itself is wrong: its lines, no traceback
            return f"call script {self.path}:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"call script: {self.name}"
