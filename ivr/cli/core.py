"""The `ivr` command: serve, check, simulate."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click
from flask import Flask

from ivr.engine.seal import new_key
from ivr.errors import ConfigError, FlowError, reason
from ivr.flow import loader as flows
from ivr.flow.model import Allowance, Flow, Register


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
    try:
        return flows.load(path or os.environ.get("IVR_FLOW") or None)
    except FlowError as exc:
        _exit_with(exc)


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


class _Commands(click.Group):
    """The `ivr` group, with one error path for every command: a misuse is one line naming what was
    wrong and where help is (exit 2), a failure of the app one line (exit 1), and a traceback only
    with --debug or IVR_DEBUG=1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "ivr"
            click.echo(f"{where}: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"ivr: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("ivr: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import DBAPIError

        from ivr.errors import IvrError, StoreUnavailable

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # the reader stopped early (`ivr graph | head`): not a failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except (StoreUnavailable, DBAPIError) as exc:
            if _debugging(ctx):
                raise
            wrong = _sqlite_folder_problem(os.environ.get("IVR_DATABASE_URL", ""))
            if wrong:  # bad input, not a failure of the app
                click.echo(f"ivr: {wrong}", err=True)
                ctx.exit(2)
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


def _sqlite_folder_problem(url: str) -> str:
    """Why a SQLite database URL cannot be opened, when its folder is the reason; else ""."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return ""
    folder = Path(url.removeprefix("sqlite:///").split("?", 1)[0]).parent
    if not folder.is_dir():
        return f"cannot open database {url}: the folder {folder} does not exist (create it, or fix IVR_DATABASE_URL)"
    if not os.access(folder, os.W_OK):
        return f"cannot open database {url}: the folder {folder} is not writable"
    return ""


def _debugging(ctx: click.Context) -> bool:
    return bool(os.environ.get("IVR_DEBUG")) or bool(ctx.find_root().params.get("debug"))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ivr")
@click.option("--debug", is_flag=True, help="Show the traceback when something fails.")
def main(debug: bool) -> None:
    """Voice menus on Twilio: serve the hotline, check flows, simulate calls."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # `ivr db upgrade` says what it did itself


@main.command()
@click.argument("flow", required=False, type=click.Path(dir_okay=False))
@click.option("--flow", "flow_option", type=click.Path(dir_okay=False), help="Flow file (as everywhere else).")
@click.option(
    "--against",
    type=click.Path(dir_okay=False),
    help="The revision now serving calls: say where its calls in progress would be stranded.",
)
def check(flow: str | None, flow_option: str | None, against: str | None) -> None:
    """Validate a flow file (default: the bundled DMS hotline) and print a summary."""
    model = _flow_or_exit(_one_flow(flow, flow_option))
    previous = _flow_or_exit(against) if against else None
    kinds = Counter(node.kind for node in model.nodes.values())
    click.echo(f"{_shown(model.path)}: OK, flow {model.name!r}, revision {model.revision}")
    click.echo(f"  nodes: {len(model.nodes)} (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")")
    menus = [n.id for n in model.nodes.values() if n.kind == "menu"]
    click.echo(f"  menus: {', '.join(menus)}")
    click.echo("  contacts: " + ", ".join(f"{c.name} {c.target}" for c in model.contacts.values()))
    for schedule in model.schedules.values():
        calendar = f", calendar {schedule.country}" if schedule.country else ""
        click.echo(f"  schedule {schedule.name}: {schedule.describe()} ({schedule.timezone}{calendar})")
    for rule in model.allowances.values():
        click.echo(f"  allowance {rule.name}: {rule.limit} per {rule.period.replace('_', ' ')}")
    if model.programme:
        click.echo(f"  programme: {model.programme.start.isoformat()} .. {model.programme.end.isoformat()}")
    if model.callbacks is not None:
        p = model.callbacks.policy
        lines = ", ".join(f"{line} → {node}" for line, node in model.callbacks.lines.items())
        click.echo(
            f"  call-backs: {lines}; answering machine → {model.callbacks.machine}; up to {p.attempts} attempts "
            f"{p.spacing_minutes} min apart, given up {p.give_up_hours} h after due, {p.at_once} at once"
        )
    _say_recordings(model)
    if previous is not None:
        _say_stranded(previous, model)


def _say_stranded(old: Flow, new: Flow) -> None:
    from ivr.store.revisions import stranded

    click.echo(f"against {_shown(old.path)} (revision {old.revision}) -> revision {new.revision}:")
    found = stranded(old, new)
    if not found:
        click.echo("  no call in progress could be stranded: every place a call waits is still there")
    for line in found:
        click.echo(f"  stranded: {line}")
    if found:
        click.echo(
            "  calls waiting there finish on their own revision (kept in the database); they would "
            "meet a lost call only if that revision were gone"
        )


def _say_recordings(model: Flow) -> None:
    """How many prompts are recorded, and each missing or orphaned recording as a warning."""
    from ivr.engine import studio

    root = os.environ.get("IVR_PROMPTS_DIR") or None
    recordings = studio.Recordings.scan(model, root)
    pieces = studio.catalogue(model)
    if recordings:
        recorded = sum(1 for p in pieces if recordings.file_for(p.text))
        click.echo(f"  recordings: {recorded} of {len(pieces)} prompts ({_shown(str(recordings.folder))})")
    for problem in studio.problems(model, root):
        click.echo(f"warning: {_shown(problem)}", err=True)


@main.group()
def prompts() -> None:
    """Every text a caller can hear: a script for a studio, and which are recorded."""


@prompts.command("export")
@click.option(
    "--flow", "flow_path", type=click.Path(dir_okay=False), help="Flow file (default: IVR_FLOW or the hotline)."
)
@click.option("--format", "fmt", type=click.Choice(["csv", "html"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def prompts_export(flow_path: str | None, fmt: str, output: str | None) -> None:
    """Write the studio's script: one row per piece to record (id, node, text, what the system says
    after it, whether it is recorded), as CSV or as a printable HTML page."""
    from ivr.engine import studio

    model = _flow_or_exit(_one_flow(None, flow_path))
    recordings = studio.Recordings.scan(model, os.environ.get("IVR_PROMPTS_DIR") or None)
    text = studio.export_csv(model, recordings) if fmt == "csv" else studio.export_html(model, recordings)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="--output") from None
        click.echo(f"wrote {output}: {len(studio.catalogue(model))} prompts", err=True)
    else:
        click.echo(text, nl=False)


@main.group()
def db() -> None:
    """The database's schema: upgrade it (a deploy step), or check that it is ready."""


def _database_engine() -> Any:
    from ivr.store.database import make_engine
    from ivr.web.app import database_url

    return make_engine(database_url(_admin_config()))


def _admin_config() -> dict[str, Any]:
    from flask import Flask

    app = Flask("ivr", instance_relative_config=True)  # the instance folder create_app uses
    app.config.from_mapping(DATABASE_URL=None)
    app.config.from_prefixed_env("IVR", loads=str)
    return {"DATABASE_URL": app.config["DATABASE_URL"], "INSTANCE_PATH": app.instance_path}


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database (IVR_DATABASE_URL) to this version's schema; safe on several instances at once."""
    from ivr.store import schema as database

    engine = _database_engine()
    try:
        before, after = database.upgrade(engine)
    except Exception as exc:
        _fail(f"cannot upgrade the database: {reason(exc)}")
    finally:
        engine.dispose()
    if before.current == after.current:
        click.echo(f"already at revision {after.current}: nothing to do")
    else:
        was = "an empty database" if before.empty else f"revision {before.current or '(before revisions)'}"
        click.echo(f"upgraded from {was} to revision {after.current}")


@db.command("check")
def db_check() -> None:
    """Exit 0 when the database is reachable and its schema current (a readiness check), else say why."""
    from ivr.store import schema as database

    engine = _database_engine()
    try:
        with engine.connect() as conn:
            conn.execution_options(ivr_read=True)  # a read: it must not wait for, or block, writers
            found = database.revision(conn)
    except Exception as exc:
        _fail(f"cannot reach the database: {reason(exc)}")
    finally:
        engine.dispose()
    if not found.up_to_date:
        _fail(found.describe())
    click.echo(found.describe())


def _date_problem(text: str, exc: ValueError) -> str:
    return str(exc) if "out of range" in str(exc) else f"{text!r} is not a date like 2021-03-01"


def _fail(message: str) -> NoReturn:
    click.echo(f"ivr: {message}", err=True)
    sys.exit(1)


@main.group()
def keys() -> None:
    """The key ring that seals call state in action URLs (IVR_STATE_KEYS)."""


@keys.command("new")
def keys_new() -> None:
    """Print a new key. Put it first in IVR_STATE_KEYS on every instance; keep the old key after it
    (comma-separated) until the calls it sealed are over, then drop it."""
    click.echo(new_key())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--flow", type=click.Path(dir_okay=False), help="Flow file (default: IVR_FLOW or the bundled hotline).")
@click.option(
    "--allow-simulated-clock",
    is_flag=True,
    help="Honour X-Ivr-Clock from the simulator. Never in production.",
)
@click.option("--debug", is_flag=True, help="Flask debug mode with the reloader.")
@click.option("--simulator/--no-simulator", default=True, show_default=True, help="The web phone at /simulator.")
def serve(host: str, port: int, flow: str | None, allow_simulated_clock: bool, debug: bool, simulator: bool) -> None:
    """Run the development server (production: gunicorn "ivr:create_app()")."""
    config: dict[str, Any] = {}
    if flow:
        config["FLOW"] = flow
    if allow_simulated_clock:
        config["ALLOW_SIMULATED_CLOCK"] = True
    config["SIMULATOR"] = simulator
    config["WATCH_FLOW"] = True  # an edited flow file is taken at the next new call
    app = _app_or_exit(config, quiet=False)
    public = app.config.get("PUBLIC_URL")
    revisions = app.extensions["ivr"].handler.revisions
    _reload_on_sighup(revisions)
    click.echo(f"Serving flow {_shown(revisions.path)} (revision {revisions.revision}; edits are taken at once)")
    click.echo(f"Webhook for a local simulator: http://{host}:{port}/voice")
    if simulator:
        click.echo(f"Phone in the browser: http://{host}:{port}/simulator")
    if public:
        click.echo(f"Webhook to paste into Twilio (A call comes in, HTTP POST): {public.rstrip('/')}/voice")
    else:
        click.echo("Set IVR_PUBLIC_URL to your tunnel's https address to see the webhook to paste into Twilio.")
    checking = "ON" if app.config.get("TWILIO_AUTH_TOKEN") else "OFF (set TWILIO_AUTH_TOKEN)"
    click.echo(f"Signature checking: {checking}")
    try:
        app.extensions["ivr"].handler.store.ready()
        click.echo("Database: ready")
    except Exception as exc:
        click.echo(f"Database: NOT READY ({reason(exc)}); callers reach the operator until it is")
    app.run(host=host, port=port, debug=debug, use_reloader=debug)


def _reload_on_sighup(revisions: Any) -> None:
    """SIGHUP: read the flow file again at the next webhook (calls in progress keep their revision)."""
    import signal

    def asked(_signum: int, _frame: Any) -> None:
        revisions.reload_requested = True

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, asked)


@main.command()
@click.argument("inputs", nargs=-1)
@click.option("--url", help="Call a TwiML app over HTTP at this URL instead of the hotline in-process.")
@click.option(
    "--method",
    type=click.Choice(["POST", "GET"], case_sensitive=False),
    default="POST",
    show_default=True,
    help="HTTP method of the entry webhook.",
)
@click.option("--at", "at_text", metavar="ISO-8601", help="Simulated date and time, e.g. 2021-03-01T10:00:00+03:00.")
@click.option("--from", "from_", default="+79161234567", show_default=True, help="The caller's number.")
@click.option("--to", default="+78002001441", show_default=True, help="The number called.")
@click.option(
    "--auth-token", envvar="TWILIO_AUTH_TOKEN", help="Sign requests like Twilio (default: TWILIO_AUTH_TOKEN)."
)
@click.option("--flow", type=click.Path(dir_okay=False), help="In-process: the flow file to run.")
@click.option("--status-callback", help="URL for the final status callback (in-process default: /voice/status).")
@click.option("--database-url", help="In-process: keep state in this database instead of a throw-away one.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="One of Twilio's conditional parameters to send (ForwardedFrom, CallerName, FromCountry ...); repeatable.",
)
@click.option(
    "--fallback-url",
    help="The number's fallback URL, requested as Twilio does when the app fails (in-process: /voice/fallback).",
)
@click.option(
    "--callback",
    "callback_ref",
    metavar="REFERENCE",
    help="Place the call-back of this request (a simulated call's) as `ivr callbacks run --simulated` would.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole call as one JSON object.")
@click.option("-v", "--verbose", is_flag=True, help="Also show every webhook request.")
def simulate(
    inputs: tuple[str, ...],
    url: str | None,
    method: str,
    at_text: str | None,
    from_: str,
    to: str,
    auth_token: str | None,
    flow: str | None,
    status_callback: str | None,
    database_url: str | None,
    params: tuple[str, ...],
    fallback_url: str | None,
    callback_ref: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Place a simulated call: interactive on a terminal, or scripted with INPUT tokens.

    \b
    Tokens, one per place the call waits:
      5, 123#        keys
      -              silence until the timeout
      say:TEXT       speech
      dial:STATUS    how the transfer ends (completed, busy, no-answer, failed, canceled; answered for a conference)
      record:TEXT    a recording with that transcription
      queue:RESULT   how waiting in an <Enqueue> ends (bridged, error, queue-full, system-shutdown)
      *              during a <Dial hangupOnStar="true">: hang up on the called party
      hangup         hang up (Twilio still requests what follows a hang-up: Record and Enqueue actions)
      answer:HOW     first, with --callback: human, machine, busy, no-answer, failed
    When the tokens run out the caller hangs up. Tokens may also be piped in, one per line.
    """
    from ivr.simulator import parse_at
    from ivr.simulator.console import parse_token

    conditional: dict[str, str] = {}
    for pair in params:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not name.strip().isidentifier():
            raise click.BadParameter(
                f"{pair!r} is not NAME=VALUE, like ForwardedFrom=+74951234567", param_hint="--param"
            )
        conditional[name.strip()] = value
    if not inputs and not sys.stdin.isatty():
        # Piped: `printf '3\ndial:busy\n' | ivr simulate`, one token per line.
        inputs = tuple(line.strip() for line in sys.stdin.read().splitlines() if line.strip())
    try:
        tokens = [parse_token(t) for t in inputs]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        at = parse_at(at_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    if url and not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} must start with http:// or https://", param_hint="--url")
    if url and (flow or database_url):
        raise click.UsageError("--flow and --database-url run the app in-process; they cannot go with --url")
    if callback_ref is not None:
        if url:
            raise click.UsageError("--callback places the call in-process; it cannot go with --url")
        _simulate_callback(callback_ref, tokens, at_text, database_url, flow, as_json, verbose)
        return
    if any(t.kind == "answer" for t in tokens):
        raise click.UsageError("answer:HOW says how the callee of a call the hotline places answers: add --callback")

    with _quiet():  # a simulated call needs no server warnings
        from ivr.simulator import Simulator, SimulatorError
        from ivr.simulator.console import perform, run_interactive, show_new, waiting_for

        with tempfile.TemporaryDirectory(prefix="ivr-simulate-") as scratch:
            if url:
                sim = Simulator(
                    url=url,
                    method=method,
                    auth_token=auth_token,
                    status_callback=status_callback,
                    fallback_url=fallback_url,
                    params=conditional,
                )
            else:
                # A throw-away database, and no public URL: in-process requests are signed for localhost.
                chosen = database_url or f"sqlite:///{Path(scratch) / 'simulated.sqlite3'}"
                # The database of a simulated call run here is the sandbox itself (a throw-away one,
                # or the one --database-url names to keep state in).
                config: dict[str, Any] = {
                    "DATABASE_URL": chosen,
                    "SIMULATED_DATABASE_URL": chosen,
                    "PUBLIC_URL": None,
                    "STATE_KEYS": new_key(),  # a key for this call only: nothing is left behind
                }
                if flow:
                    config["FLOW"] = flow
                if auth_token:
                    config["TWILIO_AUTH_TOKEN"] = auth_token
                sim = Simulator(
                    _app_or_exit(config),
                    method=method,
                    auth_token=auth_token,
                    status_callback=status_callback or "/voice/status",
                    fallback_url=fallback_url or "/voice/fallback",
                    params=conditional,
                )
            call = sim.call(from_=from_, to=to, at=at)
            first = call.exchanges[0] if call.exchanges else None
            if url and first is not None and first.status == 0:
                # Twilio's 11205, shown with the call as Twilio plays it; the likely cause said once more.
                click.echo(f"note: nothing answered at {url}: is the server running?", err=True)

            colour = sys.stdout.isatty() and not as_json and "NO_COLOR" not in os.environ
            interactive = not tokens and sys.stdin.isatty() and not as_json
            if interactive:
                click.echo(f"Calling {sim.url} from {from_}" + (f" at {at.isoformat()}" if at else ""))
                run_interactive(call, colour, verbose)
            else:
                shown = 0 if as_json else show_new(call, 0, colour, verbose)
                for index, token in enumerate(tokens, start=1):
                    if call.ended:
                        click.echo(f"note: the call ended before input {index} ({token}); the rest is unused", err=True)
                        break
                    try:
                        perform(call, token, show=not as_json)
                    except SimulatorError:
                        click.echo(
                            f"error: input {index} ({token}) does not fit: the call waits for {waiting_for(call)}",
                            err=True,
                        )
                        sys.exit(2)
                    if not as_json:
                        shown = show_new(call, shown, colour, verbose)
                if not call.ended:
                    call.hangup()
                    if not as_json:
                        show_new(call, shown, colour, verbose)
            if as_json:
                click.echo(json.dumps(call.to_json(), ensure_ascii=False, indent=2))
            elif call.end:
                click.echo(click.style(f"call ended: {call.end}", dim=True) if colour else f"call ended: {call.end}")
        sys.exit(1 if call.end == "app-error" else 0)


def _simulate_callback(
    reference: str,
    tokens: list[Any],
    at_text: str | None,
    database_url: str | None,
    flow_file: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """`ivr simulate --callback`: the next attempt of one call-back request, now, in the simulator, on
    the database of simulated calls (or --database-url), recorded as any attempt is."""
    from ivr.simulator.console import show_new
    from ivr.store import callbacks as cb
    from ivr.tools.placing import SimulatedPlacer

    if database_url:
        config: dict[str, Any] = {"DATABASE_URL": database_url, "SIMULATED_DATABASE_URL": database_url}
        if flow_file:
            config["FLOW"] = flow_file
        with _quiet():
            app = _app_or_exit(config)
    else:
        click.get_current_context().meta["ivr_simulated"] = True
        app = _admin_app(flow_file)
    handler = app.extensions["ivr"].handler
    flow, store = handler.flow, handler.store
    if flow.callbacks is None:
        raise click.ClickException(f"the flow {flow.name!r} has no `callbacks:` section: it places no call-backs")
    now = _moment(at_text, flow)
    answer = tokens[0].text if tokens and tokens[0].kind == "answer" else "human"
    rest = tuple(tokens[1:] if tokens and tokens[0].kind == "answer" else tokens)
    found, ticket = cb.claim_now(store, flow, reference, now, cb.worker_name(), force=True)
    if found is None:
        raise click.BadParameter(
            f"no call-back request {reference} among simulated calls (see `ivr callbacks --simulated`)",
            param_hint="--callback",
        )
    if ticket is None:
        state = {"answered": "is answered already", "given-up": "was given up", "placed": "is being placed now"}
        raise click.ClickException(f"call-back {reference} {state.get(found.state, 'cannot be placed')}")
    placer = SimulatedPlacer(app, answer, rest, now)
    with _quiet():
        placed = cb.place(store, flow, placer, found, ticket, now)
    if as_json:
        body = placer.calls[0].to_json() if placer.calls else {}
        click.echo(
            json.dumps(
                {
                    **body,
                    "callback": {
                        "reference": reference,
                        "attempt": ticket.attempt,
                        "outcome": placed.outcome,
                        "detail": placed.detail,
                    },
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if placer.calls:
        show_new(placer.calls[0], 0, sys.stdout.isatty() and "NO_COLOR" not in os.environ, verbose)
    detail = f" ({placed.detail})" if placed.detail else ""
    click.echo(f"call-back {reference}, attempt {ticket.attempt}: {placed.outcome or 'in progress'}{detail}")


@main.command()
@_simulated_option
@click.argument("words", nargs=-1, metavar="[close|open] [SCHEDULE]")
@click.option("--at", "at_text", metavar="ISO-8601", help="The moment to ask about (default: now).")
@click.option("--reason", help="With close: why (operators and logs see it).")
@click.option("--flow", type=click.Path(dir_okay=False), help="Flow file (default: IVR_FLOW or the bundled hotline).")
def hours(words: tuple[str, ...], at_text: str | None, reason: str | None, flow: str | None) -> None:
    """Show whether a schedule is open and why; switch an emergency closure on or off.

    \b
    ivr hours [SCHEDULE] [--at ISO]         open or closed, why, and the next opening
    ivr hours close [SCHEDULE] --reason T   close now, without a restart, until `ivr hours open`
    ivr hours open [SCHEDULE]               lift the emergency closure
    """
    from ivr import clock
    from ivr.engine import speech

    action = words[0] if words and words[0] in ("close", "open") else "show"
    rest = list(words[1:] if action != "show" else words)
    if len(rest) > 1:
        raise click.UsageError(f"one schedule at a time; got {' '.join(rest)!r}")
    handler = _admin_app(flow).extensions["ivr"].handler
    model: Flow = handler.flow
    if not model.schedules:
        raise click.UsageError(f"the flow {model.path} declares no schedules")
    if rest:
        name = rest[0]
        if name not in model.schedules:
            known = ", ".join(model.schedules)
            raise click.BadParameter(f"{name!r} is not a schedule of the flow; known: {known}", param_hint="SCHEDULE")
    elif len(model.schedules) == 1:
        name = next(iter(model.schedules))
    else:
        raise click.UsageError(f"name a schedule: {', '.join(model.schedules)}")
    store = handler.store
    if action in ("close", "open") and at_text:
        raise click.UsageError(f"--at goes with asking about the hours; `ivr hours {action}` acts now")
    if action == "close":
        if not reason or not reason.strip():
            raise click.UsageError("say why with --reason, e.g. --reason 'office flooded'")
        store.close(name, reason.strip(), clock.now())
        click.echo(f"{name}: closed by an operator ({reason.strip()}); `ivr hours open {name}` lifts it.")
        return
    if action == "open":
        lifted = store.reopen(name)
        click.echo(f"{name}: emergency closure lifted." if lifted else f"{name}: was not closed by an operator.")
        return
    if reason:
        raise click.UsageError("--reason goes with `ivr hours close`")
    schedule = model.schedules[name]
    try:
        at = clock.parse(at_text, schedule.timezone) if at_text else clock.now()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    emergency = store.closures().get(name)
    status = schedule.status(at, emergency)
    local = at.astimezone(schedule.zone)
    calendar = f", calendar {schedule.country}" if schedule.country else ""
    click.echo(
        f"{name}: {'OPEN' if status.open else 'CLOSED'} at {local:%Y-%m-%d %H:%M %A} ({schedule.timezone}{calendar})"
    )
    click.echo(f"  why: {status.why}")
    if status.next_opening is None:
        click.echo("  next opening: none within a year")
    else:
        opening = status.next_opening
        spoken = speech.moment(opening, local)
        why = schedule.plan(opening.date()).why
        click.echo(f"  next opening: {opening:%Y-%m-%d %H:%M %A} ({why}); callers hear «{spoken}»")


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


@main.group()
def allowance() -> None:
    """Second-opinion and other allowances: show a policy's uses, give a use back."""


@allowance.command("show")
@_simulated_option
@click.argument("policy")
def allowance_show(policy: str) -> None:
    """Uses per period and the whole history of POLICY."""
    from ivr.store.allowance import history

    flow, store = _admin_store()
    with store.begin() as conn:
        uses, trail = history(conn, policy)
    if not trail:
        raise click.BadParameter(f"no allowance was ever asked for policy {policy!r}", param_hint="POLICY")
    click.echo(f"policy {policy}")
    for name, rule in flow.allowances.items():
        mine = [u for u in uses if u["allowance"] == name]
        periods = sorted({u["period_start"] for u in mine})
        if not periods:
            click.echo(f"  {name}: no use in force (limit {rule.limit} per {rule.period.replace('_', ' ')})")
        for start in periods:
            zone = ZoneInfo(rule.timezone)
            local = start.astimezone(zone)
            end = local.replace(year=local.year + 1)
            count = sum(1 for u in mine if u["period_start"] == start)
            click.echo(f"  {name} {local:%Y-%m-%d}..{end:%Y-%m-%d}: {count} of {rule.limit} used")
    click.echo("  history:")
    for row in trail:
        at = row["at"].astimezone(ZoneInfo(flow.settings.timezone))
        reference = f" {row['reference']}" if row["reference"] else ""
        click.echo(f"    {at:%Y-%m-%d %H:%M:%S} {row['action']:<7} {row['allowance']}{reference} ({row['reason']})")


@allowance.command("release")
@_simulated_option
@click.argument("reference")
@click.option("--reason", required=True, help="Why the use is given back (kept in the audit trail).")
def allowance_release(reference: str, reason: str) -> None:
    """Give back the allowance spent under REFERENCE."""
    from ivr import clock
    from ivr.store.allowance import UnknownReference, release

    _, store = _admin_store()
    if not reason.strip():
        raise click.BadParameter("say why the use is given back", param_hint="--reason")
    try:
        with store.begin() as conn:
            use = release(conn, reference, reason.strip(), clock.now())
    except UnknownReference as exc:
        raise click.BadParameter(str(exc), param_hint="REFERENCE") from None
    click.echo(f"released {use['allowance']} of policy {use['key']} (request {reference}): {reason.strip()}")


def _moment(at_text: str | None, flow: Flow, option: str = "--at") -> datetime:
    from ivr import clock

    try:
        return clock.parse(at_text, flow.settings.timezone) if at_text else clock.now()
    except ValueError as exc:
        raise click.BadParameter(_date_problem(at_text or "", exc), param_hint=option) from None


@main.group(invoke_without_command=True)
@_simulated_option
@click.option("--at", "at_text", metavar="ISO-8601", help="The moment to look from (default: now).")
@click.pass_context
def callbacks(ctx: click.Context, at_text: str | None) -> None:
    """Call-back requests: when each is due (at once for an open line, else at its next opening),
    and how placing it went (`ivr callbacks run` places the due ones)."""
    if ctx.invoked_subcommand is not None:
        if at_text:
            raise click.UsageError(f"give --at after `{ctx.invoked_subcommand}`")
        return
    from ivr.store import callbacks as cb

    flow, store = _admin_store()
    now = _moment(at_text, flow)
    with store.begin() as conn:
        found = cb.listed(conn, flow)
    if not found:
        click.echo("no call-back requests")
        return
    zone = ZoneInfo(flow.settings.timezone)
    for call in found:
        click.echo(cb.describe(call, now, zone))


@callbacks.command("run")
@_simulated_option
@click.argument("inputs", nargs=-1)
@click.option("--at", "at_text", metavar="ISO-8601", help="With --simulated or --dry-run: the moment to run at.")
@click.option("--dry-run", is_flag=True, help="Only say which call-backs would be placed.")
@click.option("--limit", type=click.IntRange(1, 1000), help="Place at most this many in this run.")
@click.option("--every", type=click.IntRange(5, 3600), metavar="SECONDS", help="Keep running: a run every SECONDS.")
@click.option(
    "--answer",
    type=click.Choice(["human", "machine", "busy", "no-answer", "failed"]),
    default="human",
    show_default=True,
    help="With --simulated: how the callee answers.",
)
@click.option(
    "--from", "from_", envvar="IVR_CALLBACK_FROM", help="The Twilio number calls come from (IVR_CALLBACK_FROM)."
)
@click.option("--public-url", envvar="IVR_PUBLIC_URL", help="The server's public https URL (IVR_PUBLIC_URL).")
def callbacks_run(
    inputs: tuple[str, ...],
    at_text: str | None,
    dry_run: bool,
    limit: int | None,
    every: int | None,
    answer: str,
    from_: str | None,
    public_url: str | None,
) -> None:
    """Place the call-backs that are due: through Twilio's REST API, or with --simulated in the
    simulator (INPUT: what the callee does once connected, default dial:completed).

    \b
    Safe from cron and as a worker (--every) on several instances: each attempt is claimed once.
    Real calls need TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, IVR_CALLBACK_FROM and IVR_PUBLIC_URL.
    """
    from ivr.simulator.console import parse_token
    from ivr.store import callbacks as cb

    simulated = bool(click.get_current_context().meta.get("ivr_simulated"))
    if at_text and not (simulated or dry_run):
        raise click.UsageError("--at goes with --simulated or --dry-run: real calls are placed on the real clock")
    if at_text and every:
        raise click.UsageError("--every runs on the real clock; it cannot go with --at")
    if (inputs or answer != "human") and not simulated:
        raise click.UsageError("INPUT and --answer say what a simulated callee does: add --simulated")
    try:
        tokens = tuple(parse_token(t) for t in (inputs or ("dial:completed",)))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    app = _admin_app()
    handler = app.extensions["ivr"].handler
    flow, store = handler.flow, handler.store
    if flow.callbacks is None:
        raise click.ClickException(f"the flow {flow.name!r} has no `callbacks:` section: it places no call-backs")
    placer: Any = None
    if simulated and not dry_run:
        from ivr.tools.placing import SimulatedPlacer

        placer = SimulatedPlacer(app, "machine_start" if answer == "machine" else answer, tokens)
    elif not dry_run:
        placer = _twilio_placer(handler, from_, public_url)
    zone = ZoneInfo(flow.settings.timezone)
    policy = flow.callbacks.policy

    def one_run() -> None:
        now = _moment(at_text, flow)
        if placer is not None and simulated:
            placer.at = now
        shown = len(getattr(placer, "calls", []))
        with _quiet():  # the webhooks' own log lines would drown the transcripts
            done = cb.run(store, flow, placer, now, limit=limit)
        if not done:
            click.echo(f"{now.astimezone(zone):%Y-%m-%d %H:%M}: no call-back is due")
        for placed in done:
            c = placed.callback
            head = f"{c.reference}  {c.line:<15} {c.phone:<16} attempt {placed.attempt} of {policy.attempts}"
            if placer is None:
                click.echo(f"{head}: would be placed (dry run)")
                continue
            calls = getattr(placer, "calls", [])
            if simulated and len(calls) > shown:
                from ivr.simulator.console import show_new

                click.echo(f"{head}: placed {placed.call_sid} (simulated, the callee answers: {answer})")
                show_new(calls[shown], 0, False)
                shown += 1
            ended = f" → {placed.outcome}" if placed.outcome else " (ringing; its status callback ends it)"
            detail = f": {placed.detail}" if placed.detail else ""
            click.echo(f"{head}: {'placed ' + placed.call_sid if placed.call_sid else 'not placed'}{ended}{detail}")

    if every is None:
        one_run()
        return
    cb.work(one_run, every, cb.stop_on_signals())


def _twilio_placer(handler: Any, from_: str | None, public_url: str | None) -> Any:
    from ivr.tools import twilio_setup
    from ivr.tools.placing import TwilioPlacer

    missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not os.environ.get(name)]
    missing += ["IVR_CALLBACK_FROM (or --from)"] if not from_ else []
    missing += ["IVR_PUBLIC_URL (or --public-url)"] if not public_url else []
    if missing:
        raise click.UsageError(
            f"set {', '.join(missing)} to place real calls (or add --dry-run, or --simulated for the simulator)"
        )
    assert from_ is not None and public_url is not None
    try:
        base = twilio_setup.check_public_url(public_url)
        number = twilio_setup.check_number(from_)
    except twilio_setup.SetupError as exc:
        raise click.UsageError(str(exc)) from None
    client = twilio_setup.make_client(os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"])
    return TwilioPlacer(client, handler, number, base)


@main.group()
def requests() -> None:
    """Registered requests: desk intake, second opinion, call-back."""


@requests.command("list")
@_simulated_option
@click.option("--kind", help="Only this kind: desk, second_opinion, callback.")
@click.option("--since", metavar="DATE", help="From this date (or ISO date-time) on, in the flow's time zone.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet.")
def requests_list(kind: str | None, since: str | None, as_csv: bool) -> None:
    """List registered requests, oldest first."""

    from ivr import clock
    from ivr.store.requests import list_requests

    flow, store = _admin_store()
    start = None
    if since:
        try:
            start = clock.parse(since, flow.settings.timezone)
        except ValueError as exc:
            raise click.BadParameter(_date_problem(since, exc), param_hint="--since") from None
    kinds = sorted({n.request for n in flow.nodes.values() if isinstance(n, Register | Allowance)})
    if kind and kind not in kinds:
        raise click.BadParameter(
            f"{kind!r} is not a kind of request of the flow; known: {', '.join(kinds)}", param_hint="--kind"
        )
    with store.begin() as conn:
        rows = list_requests(conn, kind, start)
    zone = ZoneInfo(flow.settings.timezone)
    fields = sorted({k for row in rows for k in row["data"]})
    if as_csv:
        from ivr.store.spreadsheet import rows_to_csv

        table = [["reference", "kind", "created_at", "call_sid", *fields]]
        for row in rows:
            created = row["created_at"].astimezone(zone).isoformat()
            table.append(
                [row["reference"], row["kind"], created, row["call_sid"], *(row["data"].get(f, "") for f in fields)]
            )
        click.echo(rows_to_csv(table), nl=False)
        return
    if not rows:
        click.echo("no requests" + (f" of kind {kind!r}" if kind else "") + (f" since {since}" if since else ""))
        return
    for row in rows:
        details = ", ".join(f"{k}={v}" for k, v in sorted(row["data"].items()))
        click.echo(
            f"{row['reference']}  {row['created_at'].astimezone(zone):%Y-%m-%d %H:%M}  {row['kind']:<14} {details}"
        )


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


@main.command()
@click.option("--url", help="Crawl a TwiML app over HTTP at this URL instead of the flow in-process.")
@click.option("--at", "times", multiple=True, metavar="ISO-8601", help="A simulated moment to crawl at (repeatable).")
@click.option("--flow", type=click.Path(dir_okay=False), help="In-process: the flow file to crawl.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def crawl(url: str | None, times: tuple[str, ...], flow: str | None, as_json: bool) -> None:
    """Walk every path of the phone tree and report coverage, dead ends and loops (exit 1 on a problem)."""
    from ivr.simulator import parse_at
    from ivr.tools.crawler import Crawler, default_scenarios

    for moment in times:
        try:
            parse_at(moment)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from None
    if url and flow:
        raise click.UsageError("--flow crawls in-process; it cannot go with --url")
    progress = _progress_line(_show_progress(as_json))
    with tempfile.TemporaryDirectory(prefix="ivr-crawl-") as scratch:
        if url:
            if not url.startswith(("http://", "https://")):
                raise click.BadParameter(f"{url!r} must start with http:// or https://", param_hint="--url")
            from ivr.simulator import Simulator

            probe = Simulator(url=url).call()  # before crawling: does anything answer there?
            if probe.exchanges and probe.exchanges[0].status == 0:
                reason = next((e["message"] for e in probe.events if e["type"] == "error"), "no answer")
                raise click.UsageError(f"{reason}: is the server running?")
            crawler = Crawler(url=url, scenarios=default_scenarios(None, list(times)), progress=progress)
            what = url
        else:
            scratch_db = f"sqlite:///{Path(scratch) / 'crawl.sqlite3'}"
            config: dict[str, Any] = {
                "DATABASE_URL": scratch_db,
                "SIMULATED_DATABASE_URL": scratch_db,
                "PUBLIC_URL": None,
                "STATE_KEYS": new_key(),  # a key for this crawl only: nothing is left behind
            }
            if flow:
                config["FLOW"] = flow
            with _quiet():
                app = _app_or_exit(config)
                model = app.extensions["ivr"].handler.flow
                logging.getLogger("ivr.webhook").setLevel(logging.WARNING)
                crawler = Crawler(
                    app=app, flow=model, scenarios=default_scenarios(model, list(times)), progress=progress
                )
                report = crawler.run()
            what = _shown(model.path)
        if url:
            report = crawler.run()
    if progress is not None:
        click.echo("\r".ljust(79) + "\r", nl=False, err=True)
    if url and report.webhooks and not report.states:
        raise click.UsageError(f"cannot crawl {url}")
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_crawl(what, report)
    sys.exit(0 if report.ok else 1)


def _print_crawl(what: str, report: Any) -> None:
    data = report.to_json()
    click.echo(f"crawl of {what}: {len(data['scenarios'])} scenarios in {data['seconds']} s")
    for name in data["scenarios"]:
        click.echo(f"  - {name}")
    nodes = data["nodes"]
    if nodes is not None:
        click.echo(f"nodes reached: {nodes['reached']} / {nodes['total']} ({nodes['coverage']:.0%})")
        if nodes["unreached"]:
            click.echo(f"  unreached: {', '.join(nodes['unreached'])}")
    click.echo(f"states: {data['states']}, edges: {data['edges']}, webhooks: {data['webhooks']}")
    for target, outcomes in data["terminals"]["transfers"].items():
        click.echo(f"transfer to {target}: outcomes tried {', '.join(outcomes) or 'none'}")
    for hangup in data["terminals"]["hangups"]:
        click.echo(f"hang-up ({hangup['how']}) after «{hangup['last_words']}»")
    for label, key in (
        ("dead ends", "dead_ends"),
        ("loops without exit", "loops_without_exit"),
        ("empty prompts", "empty_prompts"),
        ("overlong prompts", "overlong_prompts"),
    ):
        items = data[key]
        click.echo(f"{label}: {len(items) or 'none'}")
        for item in items[:10]:
            click.echo(f"  {item}")
    deepest = data["deepest"]
    if deepest:
        click.echo(
            f"deepest path: {deepest['key_presses']} key presses, about {deepest['speech_seconds']} s of speech "
            f"({deepest['scenario']}): {' '.join(deepest['inputs'])}"
        )
    if data["truncated"]:
        click.echo("the crawl was cut short (too many states or too deep): the report is partial")
    click.echo("OK" if report.ok else "PROBLEMS FOUND")


@main.command()
@click.argument("flow", required=False, type=click.Path(dir_okay=False))
@click.option("--flow", "flow_option", type=click.Path(dir_okay=False), help="Flow file (as everywhere else).")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph(flow: str | None, flow_option: str | None, fmt: str) -> None:
    """Draw the phone tree: keys on the edges, schedules and allowances in the nodes."""
    from ivr.flow import graph as drawing

    model = _flow_or_exit(_one_flow(flow, flow_option))
    click.echo(drawing.mermaid(model) if fmt == "mermaid" else drawing.dot(model), nl=False)


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--url", help="Run the scripts against a TwiML app over HTTP instead of in-process.")
@click.option(
    "--flow", type=click.Path(dir_okay=False, path_type=Path), help="In-process: the flow (default: bundled)."
)
def test_scripts(paths: tuple[Path, ...], url: str | None, flow: Path | None) -> None:
    """Run call scripts (*.call.yaml files, or folders of them) and report pass or fail."""
    from ivr.testing import scripts

    if url and not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} must start with http:// or https://", param_hint="--url")
    files = scripts.find(list(paths))
    if not files:
        raise click.UsageError(f"no *{scripts.SUFFIX} files in {', '.join(map(str, paths))}")
    passed = failed = skipped = 0
    progress = _show_progress(False)

    def report(text: str) -> None:
        click.echo(f"\r{text}".ljust(79) if progress else text)

    for index, path in enumerate(files, start=1):
        if progress:
            click.echo(f"\r  {index}/{len(files)} {path.name}".ljust(78), nl=False, err=True)
        try:
            with _quiet():
                outcome = scripts.run(scripts.load(path), url=url, flow=flow)
        except FlowError as exc:
            failed += 1
            report(f"FAIL {path}: {exc}")
            continue
        if outcome.skipped:
            skipped += 1
            report(f"SKIP {path}: {outcome.skipped}")
        elif outcome.passed:
            passed += 1
            report(f"PASS {path}: {outcome.script.name}")
        else:
            failed += 1
            report(f"FAIL {path}: {outcome.script.name}")
            for failure in outcome.failures:
                click.echo(f"    {failure}")
    click.echo(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.exit(1 if failed else 0)


@main.command()
def schema() -> None:
    """Print the JSON Schema of flow files (editors use it to complete and check them)."""
    from ivr.flow.flowfile import json_schema as flow_schema

    click.echo(json.dumps(flow_schema(), ensure_ascii=False, indent=2))


@main.command()
@click.argument("name")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
def new(name: str, root: Path) -> None:
    """Write a small working flow (flows/NAME.yaml) and its call scripts (calls/NAME/) to start from."""
    import re
    from importlib import resources

    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise click.BadParameter(
            f"{name!r} must be lower-case letters, digits and _, like my_hotline", param_hint="NAME"
        )
    templates = resources.files("ivr") / "templates"
    targets = {root / "flows" / f"{name}.yaml": "flow.yaml"}
    for script in ("01_hours", "02_operator", "03_closed"):
        targets[root / "calls" / name / f"{script}.call.yaml"] = f"{script}.call.yaml"
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise click.UsageError(f"{', '.join(existing)} already exist; choose another name or --dir")
    for path, template in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((templates / template).read_text(encoding="utf-8").replace("NAME", name), encoding="utf-8")
        click.echo(f"wrote {path}")
    schema_path = root / "schema" / "flow.schema.json"
    if not schema_path.exists():  # the flow's first line points editors at it
        from ivr.flow.flowfile import json_schema as flow_schema

        schema_path.parent.mkdir(parents=True, exist_ok=True)
        schema_path.write_text(json.dumps(flow_schema(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {schema_path}")
    flow_path = root / "flows" / f"{name}.yaml"
    click.echo(f"next: ivr check {flow_path} && ivr test {root / 'calls' / name} && ivr simulate --flow {flow_path}")


@main.command()
@_simulated_option
@click.option("--since", metavar="DATE", help="From this date (or ISO date-time) on, in the flow's time zone.")
@click.option("--until", metavar="DATE", help="Up to (not including) this date.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "html"]), default="table", show_default=True)
def report(since: str | None, until: str | None, fmt: str) -> None:
    """Calls by branch, where callers hang up, after-hours demand, second opinions, transfer outcomes."""
    from ivr import clock
    from ivr.store import report as reporting

    flow, store = _admin_store()
    bounds = []
    for name, text in (("--since", since), ("--until", until)):
        try:
            bounds.append(clock.parse(text, flow.settings.timezone) if text else None)
        except ValueError as exc:
            raise click.BadParameter(_date_problem(text or "", exc), param_hint=name) from None
    if bounds[0] and bounds[1] and bounds[0] >= bounds[1]:
        raise click.BadParameter(
            f"--since {since} is not before --until {until}: the period is empty", param_hint="--since"
        )
    with store.begin() as conn:
        data = reporting.build(conn, flow, bounds[0], bounds[1])
    if fmt == "csv":
        click.echo(reporting.to_csv(data), nl=False)
    elif fmt == "html":
        click.echo(reporting.to_html(data, f"{flow.name}: calls"), nl=False)
    else:
        click.echo(reporting.table(data), nl=False)


@main.command()
@_simulated_option
@click.option(
    "--days", type=click.IntRange(1, 36_500), default=None, help="Keep this many days (default IVR_JOURNAL_DAYS, 90)."
)
def purge(days: int | None) -> None:
    """Delete journal rows past the retention; close calls silent for a day; drop day-old stored answers."""
    from ivr import clock
    from ivr.store import journal

    app = _admin_app()
    keep = days or int(app.config.get("JOURNAL_DAYS", 90))
    handler = app.extensions["ivr"].handler
    deleted = journal.purge(handler.store, handler.flow, clock.now(), keep)
    click.echo(f"deleted {deleted} journal rows older than {keep} days")


@main.group()
def twilio() -> None:
    """Set up a Twilio number for this server."""


@twilio.command("connect")
@click.option("--number", required=True, help="The Twilio number, in E.164 like +15005550006.")
@click.option(
    "--public-url", required=True, envvar="IVR_PUBLIC_URL", help="Your https tunnel (default: IVR_PUBLIC_URL)."
)
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
def twilio_connect(number: str, public_url: str, dry_run: bool) -> None:
    """Point a number's voice webhook, its fallback and its status callback at this server."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    from ivr.tools import twilio_setup

    missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not os.environ.get(name)]
    if missing:
        raise click.UsageError(f"set {' and '.join(missing)} (Twilio console, Account info) and try again")
    try:
        twilio_setup.check_public_url(public_url)
        twilio_setup.check_number(number)
        client = twilio_setup.make_client(os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"])
        settings = twilio_setup.connect(client, number, public_url, dry_run)
    except twilio_setup.SetupError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:  # no network, a refused connection, a name that does not resolve
        raise click.ClickException(f"cannot reach Twilio's API: {reason(exc)} (is this machine online?)") from None
    except (TwilioRestException, TwilioException) as exc:
        # A REST error carries .status; a failed page fetch carries the response as its second argument.
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(exc, "status", None) or getattr(response, "status_code", None)
        if status is None:
            raise click.ClickException(f"cannot reach Twilio: {exc}") from None
        hint = " (are TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN right?)" if status in (401, 403) else ""
        detail = getattr(exc, "msg", None) or getattr(response, "text", "")[:200]
        raise click.ClickException(f"Twilio answered {status}: {detail}{hint}") from None
    verb = "would change" if dry_run else "changed"
    for setting in settings:
        if setting.changes:
            click.echo(f"{setting.name}: {setting.before or '(empty)'} -> {setting.after}  ({verb})")
        else:
            click.echo(f"{setting.name}: {setting.after}  (already set)")
    if dry_run:
        click.echo("dry run: nothing was changed")
    else:
        click.echo(
            f"call {number} now; the server must run with TWILIO_AUTH_TOKEN and IVR_PUBLIC_URL={public_url.rstrip('/')}"
        )
