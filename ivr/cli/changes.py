"""Knowing what a flow change does before callers do: `ivr diff` and `ivr timing`."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import click

from ivr.cli.base import _fail, _flow_or_exit, _moment, _one_flow, _quiet, _shown, flow_file
from ivr.flow.model import Flow

_REVISION = re.compile(r"^[0-9a-f]{8,64}$")


def _flow_or_revision(given: str, option: str) -> tuple[Flow, str]:
    """A flow file, or a revision kept in the database (as `ivr calls` shows them)."""
    if Path(given).exists() or not _REVISION.match(given):
        if not Path(given).exists():
            raise click.BadParameter(f"{given!r}: no such file, and no revision (hex digits)", param_hint=option)
        return _flow_or_exit(given), _shown(given)
    from ivr.cli.base import _admin_store
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
    at = [_moment(m, after) for m in moments] or [_moment(None, after)]
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
@click.option("--json", "as_json", is_flag=True, help="Every service and prompt as JSON.")
def timing(flow: str | None, flow_option: str | None, at_text: str | None, as_json: bool) -> None:
    """How long a caller listens before reaching each service: every prompt heard in full, and
    with the caller pressing at the earliest moment (cutting short each question)."""
    from ivr.tools.timing import services

    model = _flow_or_exit(_one_flow(flow, flow_option))
    found = services(model, _moment(at_text, model))
    if as_json:
        click.echo(json.dumps([s.to_json() for s in found], ensure_ascii=False, indent=2))
        return
    click.echo(f"{'service':<44} {'keys':<10} {'full':>7} {'barge-in':>9}")
    for s in found:
        click.echo(f"{s.service:<44} {s.keys:<10} {s.full:>6.1f}s {s.earliest:>8.1f}s")
