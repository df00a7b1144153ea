"""`ivr simulate`: a call into a flow in-process, or into any TwiML app over HTTP."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from ivr.cli.base import _admin_app, _app_or_exit, _moment, _quiet, scratch_config
from ivr.errors import ConfigError


@click.command()
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
@click.option(
    "--status-callback",
    help="URL for the final status callback (default: the app's /voice/status, as `ivr twilio connect` sets it).",
)
@click.option(
    "--no-status-callback",
    is_flag=True,
    help="Send no status callback: the call stays in progress in the app's journal.",
)
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
    no_status_callback: bool,
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
      dial:completed+1   ... and the called party presses 1 at its screening <Gather> (+ alone: no keys)
      record:TEXT    a recording with that transcription
      queue:RESULT   how waiting in an <Enqueue> ends (bridged, error, queue-full, system-shutdown)
      *              during a <Dial hangupOnStar="true">: hang up on the called party
      hangup         hang up (Twilio still requests what follows a hang-up: Record and Enqueue actions)
      answer:HOW     first, with --callback: human, machine, busy, no-answer, failed
    When the tokens run out the caller hangs up. Tokens may also be piped in, one per line.
    """
    from ivr import clock
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
    try:  # as every other --at says it; without an offset it is left for the flow's time zone
        at = clock.parse(at_text, None) if at_text is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    if url and not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} must start with http:// or https://", param_hint="--url")
    if database_url:
        from ivr.web.config import check_database_url

        try:
            check_database_url(database_url, "--database-url")
        except ConfigError as exc:
            raise click.BadParameter(f"{database_url!r}: {exc.reason}", param_hint="--database-url") from None
    if status_callback and no_status_callback:
        raise click.UsageError("--status-callback and --no-status-callback contradict each other; give one")
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
                    status_callback=None if no_status_callback else status_callback or _status_of(url),
                    fallback_url=fallback_url,
                    params=conditional,
                )
            else:
                # A throw-away database, or the one --database-url names to keep state in.
                config = scratch_config(database_url or f"sqlite:///{Path(scratch) / 'simulated.sqlite3'}", flow)
                if auth_token:
                    config["TWILIO_AUTH_TOKEN"] = auth_token
                sim = Simulator(
                    _app_or_exit(config),
                    method=method,
                    auth_token=auth_token,
                    status_callback=None if no_status_callback else status_callback or "/voice/status",
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


def _status_of(url: str) -> str | None:
    """The status callback URL of an app laid out as ivr's (its entry at .../voice), as a number
    pointed at it by `ivr twilio connect` has; None for another app (it may have none)."""
    from urllib.parse import urlsplit

    path = urlsplit(url).path.rstrip("/")
    return url.split("?", 1)[0].rstrip("/") + "/status" if path.endswith("/voice") else None


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
