"""`ivr report` and `ivr calls`: where callers went, from the journal."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import click

from ivr.cli.base import _admin_store, _date, _period, _simulated_option, flows_by_revision


@click.command()
@_simulated_option
@click.option("--since", metavar="DATE", help="From this date (or ISO date-time) on, in the flow's time zone.")
@click.option("--until", metavar="DATE", help="Up to (not including) this date.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "html"]), default="table", show_default=True)
@click.option(
    "--funnel",
    is_flag=True,
    help="Node by node: calls that entered, how they left, hung up, silences, wrong answers, repeats; "
    "transfer outcomes, the most common ways, calls by hour.",
)
def report(since: str | None, until: str | None, fmt: str, funnel: bool) -> None:
    """Calls by branch, where callers hang up, after-hours demand, second opinions, transfer outcomes
    (with --funnel: the same node by node)."""
    from ivr.store import report as reporting

    flow, store = _admin_store()
    bounds = _period(since, until, flow)
    if funnel:
        _funnel(flow, store, bounds, fmt)
        return
    with store.begin() as conn:
        data = reporting.build(conn, flow, bounds[0], bounds[1])
    _show(reporting, data, fmt, f"{flow.name}: calls")


def _show(kind: Any, data: Any, fmt: str, title: str) -> None:
    """A report in the format asked for: `kind` is its module (table, to_csv, to_html)."""
    shown = kind.to_csv(data) if fmt == "csv" else kind.to_html(data, title) if fmt == "html" else kind.table(data)
    click.echo(shown, nl=False)


def _funnel(flow: Any, store: Any, bounds: tuple[Any, Any], fmt: str) -> None:
    from ivr.store.calls import finished_between
    from ivr.tools import funnel as funnels

    with store.read() as conn:
        rows = finished_between(conn, *bounds)
    found = funnels.build(rows, flows_by_revision(flow, store), flow, *bounds)
    _show(funnels, found, fmt, f"{flow.name}: the funnel")


@click.command()
@_simulated_option
@click.argument("call_sid", required=False, metavar="[CALLSID]")
@click.option("--since", metavar="DATE", help="Calls started from this date (or ISO date-time) on.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many calls.")
def calls(call_sid: str | None, since: str | None, limit: int) -> None:
    """The latest calls, or one call's journal: its path, the kind of each input, its effects, its end.

    \b
    Never what a caller typed or said; a call that turned anonymous (the psychologist) is only counted.
      ivr calls                      the latest 20 calls, newest first
      ivr calls --simulated          the simulators' calls (`ivr simulate --url`, the web phone)
      ivr calls CA0123...            one call
    """
    from ivr.store import calls as lookup

    flow, store = _admin_store()
    zone = ZoneInfo(flow.settings.timezone)
    if call_sid is not None:
        if since is not None:
            raise click.UsageError("--since lists calls; with a CALLSID the one call is shown")
        with store.read() as conn:
            record = lookup.one(conn, call_sid)
        if record is None:
            raise click.ClickException(f"no call {call_sid} in this database (anonymous calls are not kept by id)")
        click.echo(_one_call(record, zone), nl=False)
        return
    with store.read() as conn:
        listing = lookup.recent(conn, _date(since, flow, "--since"), limit)
    click.echo(_listing(listing, zone), nl=False)


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _length(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds // 60}:{seconds % 60:02d}"


def _listing(listing: Any, zone: Any) -> str:
    if not listing.calls:
        lines = ["no calls yet"]
    else:
        header = ("started", "call", "length", "branch", "end")
        rows = [header]
        for record in listing.calls:
            end = f"in progress, at {record.where}" if record.in_progress else (record.end or "")
            rows.append(
                (_local(record.started_at, zone), record.call_sid, _length(record.duration), record.branch or "", end)
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if listing.anonymous:
        lines.append(f"and {listing.anonymous} anonymous call(s), not shown")
    return "\n".join(lines) + "\n"


def _fact(fact: dict[str, Any]) -> str:
    match fact.get("type"):
        case "request":
            return f"request registered: {fact.get('kind')}"
        case "dial":
            return f"transfer to {fact.get('contact')}: {fact.get('outcome')}"
        case "allowance":
            return f"allowance {fact.get('allowance')}: {'granted' if fact.get('granted') else 'refused'}"
        case "closed":
            return f"schedule {fact.get('schedule')} closed"
        case "silence" | "wrong" | "repeat" as what:
            said = {"silence": "no answer", "wrong": "a wrong answer", "repeat": "asked to hear it again"}[what]
            return f"{said} at {fact.get('node')}"
        case _:
            return str(fact)


def _one_call(record: Any, zone: Any) -> str:
    lines = [f"call      {record.call_sid}", f"started   {_local(record.started_at, zone)} ({zone})"]
    if record.in_progress:
        lines.append(f"now       in progress, waiting at {record.where}")
    else:
        ended = _local(record.ended_at, zone) if record.ended_at else "?"
        lines.append(f"ended     {ended}, after {_length(record.duration)}: {record.end}")
        if record.branch:
            lines.append(f"branch    {record.branch}")
    if record.revision:
        lines.append(f"revision  {record.revision}")
    lines.append("path      " + " > ".join(record.path))
    if record.inputs:  # the first webhook is the call arriving, not something the caller did
        lines.append("inputs    " + ", ".join(("call", *record.inputs[1:])))
    effects = [_fact(fact) for fact in record.facts]
    lines += [("effects   " if i == 0 else "          ") + effect for i, effect in enumerate(effects)]
    if not effects:
        lines.append("effects   none")
    for index, step in enumerate(record.steps):
        nodes = " > ".join(step.path)
        said = "call" if index == 0 else step.input
        lines.append(f"  step {step.step:>3}  {_local(step.at, zone)}  {said:<8}  {nodes}")
    return "\n".join(lines) + "\n"
