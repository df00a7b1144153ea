"""Knowing what a flow change does before callers do: `ivr diff`, `ivr replay` and `ivr timing`."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from ivr.cli.base import (
    _admin_store,
    _fail,
    _flow_or_exit,
    _moment,
    _one_flow,
    _period,
    _quiet,
    _shown,
    _simulated_option,
    flow_file,
    flows_by_revision,
)

if TYPE_CHECKING:  # the command loads the flow when it runs, not when `ivr --help` lists it
    from ivr.flow.model import Flow

_REVISION = re.compile(r"^[0-9a-f]{8,64}$")


def _flow_or_revision(given: str, option: str) -> tuple[Flow, str]:
    """A flow file, or a revision kept in the database (as `ivr calls` shows them)."""
    if Path(given).exists() or not _REVISION.match(given):
        if not Path(given).exists():
            raise click.BadParameter(f"{given!r}: no such file, and no revision (hex digits)", param_hint=option)
        return _flow_or_exit(given), _shown(given)
    from ivr.errors import FlowError
    from ivr.flow import loader

    _, store = _admin_store()
    source = store.revision_source(given)
    if source is None:
        _fail(f"{option}: no revision {given!r} is kept in the database (`ivr calls` shows the revisions calls ran on)")
    try:
        return loader.load(os.environ.get("IVR_FLOW") or None, text=source), f"revision {given}"
    except FlowError as exc:
        _fail(f"{option}: revision {given} no longer loads: {exc}")


@click.command()
@click.argument("old")
@click.argument("new")
@click.option(
    "--at",
    "moments",
    multiple=True,
    metavar="ISO",
    help="Walk the paths at this moment (repeat for several; default: now), in the flow's time zone.",
)
@click.option(
    "--scripts",
    "script_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Call scripts (files or folders) to run on both flows: say which fail on the new one.",
)
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON document.")
def diff(old: str, new: str, moments: tuple[str, ...], script_paths: tuple[Path, ...], as_json: bool) -> None:
    """What changes from flow OLD to flow NEW (files, or revisions kept in the database): nodes,
    contacts, schedules and allowances changed, and every path by menu keys whose outcome changes."""
    from ivr.tools.diff import compare

    before, old_name = _flow_or_revision(old, "OLD")
    after, new_name = _flow_or_revision(new, "NEW")
    zone = ZoneInfo(after.settings.timezone)
    at = [_moment(m, after).astimezone(zone) for m in moments or (None,)]
    found = compare(before, after, at, old_name, new_name)
    if script_paths:
        found.scripts = _scripts(script_paths, old, new)
    if as_json:
        click.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=2))
    else:
        for line in found.lines():
            click.echo(line)


def _scripts(paths: tuple[Path, ...], old: str, new: str) -> list[dict[str, object]]:
    """The call scripts that fail on the new flow, and whether they passed on the old one."""
    from ivr.testing import scripts

    files = scripts.find(list(paths))
    if not files:
        raise click.BadParameter(f"no *{scripts.SUFFIX} files in {', '.join(map(str, paths))}", param_hint="--scripts")
    if not (Path(old).exists() and Path(new).exists()):
        raise click.BadParameter("call scripts run on flow files, not stored revisions", param_hint="--scripts")
    failing = []
    for path in files:
        script = scripts.load(path)
        with _quiet():  # each script on each flow, whatever flow it names itself
            now = scripts.run(dataclasses.replace(script, flow=Path(new)))
            if now.passed or now.skipped:
                continue
            was = scripts.run(dataclasses.replace(script, flow=Path(old)))
        failing.append({"path": _shown(str(path)), "newly": was.passed, "failures": now.failures})
    return failing


@click.command()
@flow_file
@click.option("--at", "at_text", metavar="ISO", help="Walk the paths at this moment (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Every service as JSON.")
@click.option("--espeak", is_flag=True, help="Cross-check: synthesise every prompt with espeak-ng and time it too.")
def timing(flow: str | None, flow_option: str | None, at_text: str | None, as_json: bool, espeak: bool) -> None:
    """How long a caller listens before reaching each service: every prompt heard in full, and
    with the caller pressing at the earliest moment (cutting short each question)."""
    from ivr.tools.timing import services, synthesized

    model = _flow_or_exit(_one_flow(flow, flow_option))
    found = services(model, _moment(at_text, model))
    spoken: dict[str, float | None] = {}
    if espeak:
        spoken = {s.service: synthesized(s, model.settings.language) for s in found}
        if any(v is None for v in spoken.values()):
            _fail("--espeak: espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    if as_json:
        rows = [s.to_json() | ({"espeak_seconds": round(spoken[s.service] or 0, 1)} if espeak else {}) for s in found]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'service':<32} {'keys':<8} {'barge-in':>9} {'full':>7}" + (f" {'espeak':>8}" if espeak else ""))
    for s in found:
        synth = f" {spoken[s.service] or 0:>7.1f}s" if espeak else ""
        click.echo(f"{s.service:<32} {s.keys:<8} {s.earliest:>8.1f}s {s.full:>6.1f}s{synth}")


@click.command()
@_simulated_option
@click.argument("candidate", type=click.Path(dir_okay=False))
@click.option("--since", metavar="DATE", help="Calls started from this date (or ISO date-time) on.")
@click.option("--until", metavar="DATE", help="Calls started before this date.")
@click.option("--accept", is_flag=True, help="Exit 0 even when outcomes change (the change is meant).")
@click.option("--json", "as_json", is_flag=True, help="Totals and every call as JSON.")
def replay(candidate: str, since: str | None, until: str | None, accept: bool, as_json: bool) -> None:
    """Replay the journal's calls on the CANDIDATE flow: callers making the same choices (menu keys,
    transfer outcomes; questions get made-up answers), and whether each reaches the same outcome.
    Exits 1 when an outcome changes or a call gets stuck, unless --accept."""
    from ivr.store.calls import finished_between
    from ivr.tools.replay import replay as replaying

    new = _flow_or_exit(candidate)
    current, store = _admin_store()
    start, end = _period(since, until, current)
    with store.read() as conn:
        rows = finished_between(conn, start, end)
    found = replaying(rows, flows_by_revision(current, store), new)
    if as_json:
        click.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=2))
    else:
        zone = ZoneInfo(current.settings.timezone)
        for call in found.calls:
            if call.verdict != "same":
                when = call.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                click.echo(f"{call.verdict:<9} {when} {call.call_sid}: {call.before} -> {call.after}")
        for sid, why in found.unreadable:
            click.echo(f"unread    {sid}: {why}")
        counts = found.counts
        click.echo(
            f"{len(found.calls)} calls replayed on {_shown(new.path)}: {counts['same']} same, "
            f"{counts['different']} different, {counts['stuck']} stuck"
            + (f"; {found.anonymous} anonymous not replayed" if found.anonymous else "")
            + (f"; {len(found.unreadable)} unreadable" if found.unreadable else "")
        )
        for (before, after), n in found.changes.most_common(5):
            click.echo(f"  {n} × {before} -> {after}")
    if found.changed and not accept:
        sys.exit(1)
