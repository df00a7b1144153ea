"""Call-back requests: what is due, and placing the calls (`ivr callbacks run`)."""

from __future__ import annotations

import os
from typing import Any
from zoneinfo import ZoneInfo

import click

from ivr.cli.base import _admin_app, _admin_store, _moment, _quiet, _simulated_option


@click.group(invoke_without_command=True)
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
    click.echo(cb.LISTING_HEADER)
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
