"""Running the hotline: business hours and closures, allowances, registered requests."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from ivr.cli.base import _admin_app, _admin_store, _date, _simulated_option, same_database

if TYPE_CHECKING:  # the command loads the flow when it runs, not when `ivr --help` lists it
    from ivr.flow.model import Flow


@click.command()
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
        lift = f"ivr hours open {name}{same_database()}"
        click.echo(f"{name}: closed by an operator ({reason.strip()}); `{lift}` lifts it.")
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


@click.group()
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
        hint = f"; see `ivr requests list{same_database()}` for references"
        raise click.BadParameter(f"{exc}{hint}", param_hint="REFERENCE") from None
    click.echo(f"released {use['allowance']} of policy {use['key']} (request {reference}): {reason.strip()}")


@click.group()
def requests() -> None:
    """Registered requests: desk intake, second opinion, call-back."""


@requests.command("list")
@_simulated_option
@click.option("--kind", help="Only this kind: desk, second_opinion, callback.")
@click.option("--since", metavar="DATE", help="From this date (or ISO date-time) on, in the flow's time zone.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet.")
def requests_list(kind: str | None, since: str | None, as_csv: bool) -> None:
    """List registered requests, oldest first."""

    from ivr.store.requests import list_requests

    flow, store = _admin_store()
    start = _date(since, flow, "--since")
    kinds = sorted({made for n in flow.nodes.values() if (made := n.registers()) is not None})
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
