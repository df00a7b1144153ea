"""What every command shares: one line for every failure, flows and apps opened or a clear exit."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ivr.errors import ConfigError, FlowError, reason

if TYPE_CHECKING:  # a usage error, or --help, is answered before the engine and the flow load
    from flask import Flask

    from ivr.flow.model import Flow


@contextmanager
def _quiet() -> Iterator[None]:
    """Hold back the server's start-up warnings (no auth token...) in commands that serve no calls."""
    logger = logging.getLogger("ivr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _shown(path: str) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _exit_with(exc: FlowError) -> NoReturn:
    for problem in exc.problems:
        click.echo(f"error: {problem}", err=True)
    click.echo(f"{len(exc.problems)} problem(s) found.", err=True)
    sys.exit(1)


def _flow_or_exit(path: str | None) -> Flow:
    """The flow named, else IVR_FLOW's, else the bundled hotline; or its problems and exit 1."""
    from ivr.flow import loader as flows

    try:
        return flows.load(path or os.environ.get("IVR_FLOW") or None)
    except FlowError as exc:
        _exit_with(exc)


def flow_file(command: Any) -> Any:
    """FLOW, or --flow FLOW: the flow file a command reads (default: IVR_FLOW, else the hotline)."""
    option = click.option(
        "--flow", "flow_option", type=click.Path(dir_okay=False), help="Flow file (as everywhere else)."
    )
    return click.argument("flow", required=False, type=click.Path(dir_okay=False))(option(command))


def _one_flow(argument: str | None, option: str | None) -> str | None:
    if argument and option and argument != option:
        raise click.UsageError(f"two flow files: {argument!r} and --flow {option!r}; give one")
    return argument or option


def _app_or_exit(config: dict[str, Any], quiet: bool = True) -> Flask:
    """The app, or the flow's problems and exit 1; commands that serve no calls keep it quiet."""
    from ivr.web.app import create_app

    config = {"DEVELOPMENT": True, **config}  # tools on this machine: a missing key ring is made for them
    try:
        return create_app({"LOG_LEVEL": "ERROR", **config} if quiet else config)
    except FlowError as exc:
        _exit_with(exc)
    except ConfigError as exc:
        click.echo(f"ivr: {exc}", err=True)
        sys.exit(2)


def _simulated_option(command: Any) -> Any:
    """--simulated: the command works on simulated calls (kept apart from real ones) instead."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.meta["ivr_simulated"] = True

    return click.option(
        "--simulated",
        is_flag=True,
        expose_value=False,
        callback=remember,
        help="Simulated calls (the simulators' own database) instead of real calls.",
    )(command)


class Commands(click.Group):
    """The `ivr` group, with one error path for every command: a misuse is one line naming what was
    wrong and where help is (exit 2), a failure of the app one line (exit 1), and a traceback only
    with --debug or IVR_DEBUG=1. `lazy` names commands by "module:attribute", imported on first use
    (click's documented way to load subcommands lazily)."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import importlib

            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command) and command.name == cmd_name, self.lazy[cmd_name]
            self.add_command(command)
        return self.commands.get(cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            given = args[0] if args else kwargs.get("args")
            where = exc.ctx.command_path if exc.ctx is not None else self._path_of(given)
            click.echo(f"{where}: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"ivr: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl-C: click already ended the line
                from ivr.cli import interrupted

                interrupted()
            click.echo("ivr: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def _path_of(self, given: Any) -> str:
        """The command a misuse belongs to when click did not say (an option missing its value)."""
        words = list(given) if given is not None else sys.argv[1:]
        path: list[str] = ["ivr"]
        command: click.Command = self
        for word in words:
            found = command.get_command(None, word) if isinstance(command, click.Group) else None  # type: ignore[arg-type]
            if found is not None:
                path.append(word)
                command = found
        return " ".join(path)

    def invoke(self, ctx: click.Context) -> Any:
        from ivr.errors import IvrError, StoreUnavailable
        from ivr.web.config import check_environment

        try:
            check_environment(os.environ)  # every command, whatever it overrides
        except ConfigError as exc:
            click.echo(f"ivr: {exc}", err=True)
            ctx.exit(2)
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # the reader stopped early (`ivr graph | head`): not a failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except (StoreUnavailable, _database_error()) as exc:
            if _debugging(ctx):
                raise
            click.echo(f"ivr: the database failed: {reason(exc)} {_TRACEBACK_HINT}", err=True)
            ctx.exit(1)
        except IvrError as exc:
            if _debugging(ctx):
                raise
            click.echo(f"ivr: {reason(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if _debugging(ctx):
                raise
            click.echo(f"ivr: unexpected {type(exc).__name__}: {reason(exc)} {_TRACEBACK_HINT}", err=True)
            ctx.exit(1)


_TRACEBACK_HINT = "(--debug or IVR_DEBUG=1 shows the traceback)"


def _database_error() -> type[Exception]:
    """SQLAlchemy's DB-API error, imported only once something has failed (an `except` clause's
    classes are looked up when an exception reaches it), so that a misuse or --help is answered
    before SQLAlchemy loads."""
    from sqlalchemy.exc import DBAPIError

    return DBAPIError


def _debugging(ctx: click.Context) -> bool:
    return bool(os.environ.get("IVR_DEBUG")) or bool(ctx.find_root().params.get("debug"))


def _database_engine() -> Any:
    from ivr.store.database import make_engine
    from ivr.web.app import database_url
    from ivr.web.config import check_database_url

    url = database_url(_admin_config())
    try:
        check_database_url(url)
    except ConfigError as exc:
        click.echo(f"ivr: {exc}", err=True)
        sys.exit(2)
    return make_engine(url)


def _admin_config() -> dict[str, Any]:
    from flask import Flask

    app = Flask("ivr", instance_relative_config=True)  # the instance folder create_app uses
    app.config.from_mapping(DATABASE_URL=None)
    app.config.from_prefixed_env("IVR", loads=str)
    return {"DATABASE_URL": app.config["DATABASE_URL"], "INSTANCE_PATH": app.instance_path}


def _date_problem(text: str, exc: ValueError) -> str:
    """A date option's problem (a date-time is welcome too): no such date, out of range, or the form."""
    said = str(exc)
    return said if "out of range" in said or "no such date" in said else f"{text!r} is not a date like 2021-03-01"


def _fail(message: str) -> NoReturn:
    click.echo(f"ivr: {message}", err=True)
    sys.exit(1)


def same_database() -> str:
    """ " --simulated" when the command works on simulated calls: hints naming another command keep it."""
    return " --simulated" if click.get_current_context().meta.get("ivr_simulated") else ""


def _admin_app(flow: str | None = None) -> Flask:
    """The app on IVR_DATABASE_URL (or, with --simulated, on the database of simulated calls) for a
    command that serves no calls, without start-up warnings."""
    config: dict[str, Any] = {"FLOW": flow} if flow else {}
    if click.get_current_context().meta.get("ivr_simulated"):
        from ivr.web.app import database_url, simulated_database_url

        where = _admin_config()
        chosen = {
            "DATABASE_URL": database_url(where),
            "SIMULATED_DATABASE_URL": os.environ.get("IVR_SIMULATED_DATABASE_URL"),
        }
        config["DATABASE_URL"] = simulated_database_url(chosen, where["INSTANCE_PATH"])
        # Calls the command places itself in the simulator (`callbacks run`) stay in that database too.
        config["SIMULATED_DATABASE_URL"] = config["DATABASE_URL"]
    with _quiet():
        return _app_or_exit(config)


def _admin_store() -> tuple[Flow, Any]:
    handler = _admin_app().extensions["ivr"].handler
    return handler.flow, handler.store


def _date(text: str | None, flow: Flow, option: str) -> datetime | None:
    """A date option (a date, or an ISO date-time) in the flow's time zone; None when not given."""
    from ivr import clock

    try:
        return clock.parse(text, flow.settings.timezone) if text else None
    except ValueError as exc:
        raise click.BadParameter(_date_problem(text or "", exc), param_hint=option) from None


def _period(since: str | None, until: str | None, flow: Flow) -> tuple[datetime | None, datetime | None]:
    """--since and --until, in the flow's time zone; refused when the period they make is empty."""
    start, end = _date(since, flow, "--since"), _date(until, flow, "--until")
    if start and end and start >= end:
        raise click.BadParameter(
            f"--since {since} is not before --until {until}: the period is empty", param_hint="--since"
        )
    return start, end


def _moment(at_text: str | None, flow: Flow, option: str = "--at") -> datetime:
    from ivr import clock

    try:
        return clock.parse(at_text, flow.settings.timezone) if at_text else clock.now()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _progress_line(enabled: bool) -> Any:
    """A one-line progress report on stderr for long runs at a terminal (quiet in CI and with --json)."""
    if not enabled:
        return None
    last = [0.0]

    def show(scenario: str, explored: int, queued: int) -> None:
        import time

        now = time.monotonic()
        if now - last[0] > 0.2:
            last[0] = now
            click.echo(f"\r  {scenario}: {explored} states, {queued} to explore ".ljust(78), nl=False, err=True)

    return show


def _show_progress(as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty() and not os.environ.get("CI")


def scratch_config(database_url: str, flow: str | None) -> dict[str, Any]:
    """An in-process app's configuration for one simulated call or crawl: its database is the
    sandbox itself, no public URL (in-process requests are signed for localhost), and a key made
    for this run only, so nothing is left behind."""
    from ivr.engine.seal import new_key

    config: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "SIMULATED_DATABASE_URL": database_url,
        "PUBLIC_URL": None,
        "STATE_KEYS": new_key(),
    }
    if flow:
        config["FLOW"] = flow
    return config


def flows_by_revision(current: Flow, store: Any) -> Callable[[str | None], Flow | None]:
    """The flow of each revision calls were on, read once from the database (None: not kept, or no
    longer loading)."""
    from ivr.flow import loader as flows

    known: dict[str | None, Flow | None] = {current.revision: current}

    def flow_of(revision: str | None) -> Flow | None:
        if revision not in known:
            source = store.revision_source(revision) if revision else None
            try:
                known[revision] = flows.load(current.path, text=source) if source is not None else None
            except FlowError:
                known[revision] = None
        return known[revision]

    return flow_of
