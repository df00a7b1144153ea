"""`ivr report`: where callers went, from the journal."""

from __future__ import annotations

import click

from ivr.cli.base import _admin_store, _date_problem, _simulated_option


@click.command()
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
