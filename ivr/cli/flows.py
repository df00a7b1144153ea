"""Writing a flow: check, graph, schema, new, and the studio's prompt list."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ivr.cli.base import _flow_or_exit, _moment, _one_flow, _shown, flow_file

if TYPE_CHECKING:  # the command loads the flow when it runs, not when `ivr --help` lists it
    from ivr.flow.model import Flow
    from ivr.flow.properties import Violation


@click.command()
@flow_file
@click.option(
    "--against",
    type=click.Path(dir_okay=False),
    help="The revision now serving calls: say where its calls in progress would be stranded.",
)
@click.option("--strict", is_flag=True, help="Fail on the properties that are opinions too (operator, hours).")
@click.option("--at", "at_text", metavar="ISO", help="Judge time budgets at this moment (default: now).")
def check(flow: str | None, flow_option: str | None, against: str | None, strict: bool, at_text: str | None) -> None:
    """Validate a flow file (default: the bundled DMS hotline), prove its properties (a way to
    the operator, no dead ends, silences and wrong keys handled, transfers' failures and hours,
    anonymous parts, time budgets) and print a summary."""
    model = _flow_or_exit(_one_flow(flow, flow_option))
    from ivr.flow.properties import prove
    from ivr.tools.timing import by_node, over_budget

    now = _moment(at_text, model)
    quickest = by_node(model, now) if model.properties.budgets else {}  # one walk for budgets and summary
    violations = prove(model) + over_budget(model, now, quickest)
    failing = [v for v in violations if strict or not v.opinion]
    for v in violations:
        click.echo(("error: " if v in failing else "warning: ") + v.shown(_shown(model.path)), err=True)
    if failing:
        click.echo(f"{len(failing)} propert{'y' if len(failing) == 1 else 'ies'} broken.", err=True)
        sys.exit(1)
    previous = _flow_or_exit(against) if against else None
    kinds = Counter(node.kind for node in model.nodes.values())
    click.echo(f"{_shown(model.path)}: OK, flow {model.name!r}, revision {model.revision}")
    click.echo(f"  nodes: {len(model.nodes)} (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")")
    from ivr.flow.model import Menu

    menus = [n.id for n in model.nodes.values() if n.kind == Menu.kind]
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
    _say_proved(model, violations, quickest, now)
    if previous is not None:
        _say_stranded(previous, model)


def _say_proved(model: Flow, violations: list[Violation], quickest: Mapping[str, Any], now: datetime) -> None:
    proved = "a way to the operator, no dead ends, silences and wrong keys handled, no redial at once, hours kept"
    anonymous = model.properties.anonymous
    proved += f", nothing asked under {', '.join(anonymous)}" if anonymous else ""
    broken = f" ({len(violations)} not: above)" if violations else ""
    click.echo(f"  proved: {proved}{broken}")
    for node, budget in model.properties.budgets.items():
        way = quickest.get(node)
        took = f"{way.earliest:.1f} s by keys {way.keys}" if way else f"not reached at {now:%Y-%m-%d %H:%M}"
        click.echo(f"  budget {node}: {took}, of {budget} s")


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


@click.group()
def prompts() -> None:
    """Every text a caller can hear: a script for a studio, and which are recorded."""


@prompts.command("export")
@flow_file
@click.option("--format", "fmt", type=click.Choice(["csv", "html"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def prompts_export(flow: str | None, flow_option: str | None, fmt: str, output: str | None) -> None:
    """Write the studio's script: one row per piece to record (id, node, text, what the system says
    after it, whether it is recorded), as CSV or as a printable HTML page."""
    from ivr.engine import studio

    model = _flow_or_exit(_one_flow(flow, flow_option))
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


@click.command()
@flow_file
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@click.option("--at", "at_text", metavar="ISO", help="Time the ways to each service at this moment (default: now).")
def graph(flow: str | None, flow_option: str | None, fmt: str, at_text: str | None) -> None:
    """Draw the phone tree: keys on the edges, schedules and allowances in the nodes, and on each
    service the seconds from the greeting (pressing at once / hearing every prompt)."""
    from ivr.flow import graph as drawing
    from ivr.tools.timing import notes as timing_notes

    model = _flow_or_exit(_one_flow(flow, flow_option))
    notes = timing_notes(model, _moment(at_text, model))
    click.echo(drawing.mermaid(model, notes) if fmt == "mermaid" else drawing.dot(model, notes), nl=False)


@click.command()
def schema() -> None:
    """Print the JSON Schema of flow files (editors use it to complete and check them)."""
    from ivr.flow.flowfile import json_schema as flow_schema

    click.echo(json.dumps(flow_schema(), ensure_ascii=False, indent=2))


@click.command()
@click.argument("name")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
def new(name: str, root: Path) -> None:
    """Write a small working flow (flows/NAME.yaml), its first tests (tests/test_NAME.py), its call
    scripts (calls/NAME/) and a pytest.ini naming the flow: `pytest` passes at once."""
    import re
    from importlib import resources

    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise click.BadParameter(
            f"{name!r} must be lower-case letters, digits and _, like my_hotline", param_hint="NAME"
        )
    templates = resources.files("ivr") / "templates"
    flow_path = root / "flows" / f"{name}.yaml"
    targets = {flow_path: "flow.yaml", root / "tests" / f"test_{name}.py": "test_flow.py.txt"}
    for script in ("01_hours", "02_operator", "03_closed"):
        targets[root / "calls" / name / f"{script}.call.yaml"] = f"{script}.call.yaml"
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        several = "exist" if len(existing) > 1 else "exists"
        raise click.UsageError(f"{', '.join(existing)} already {several}; choose another name or --dir")
    ini = root / "pytest.ini"
    configured = _pytest_configured(root)
    if configured is None:
        targets[ini] = "pytest.ini.txt"
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
    if configured is not None:
        click.echo(f"note: {configured} configures pytest already: add `ivr_flow = flows/{name}.yaml` to it")
    click.echo(f"next: ivr simulate --flow {flow_path}, then pytest" + (f" (in {root})" if root != Path(".") else ""))


def _pytest_configured(root: Path) -> Path | None:
    """The file that configures pytest in `root` already, if one does (then it is not overwritten)."""
    for name, marker in (
        ("pytest.ini", ""),
        ("pyproject.toml", "[tool.pytest.ini_options]"),
        ("tox.ini", "[pytest]"),
        ("setup.cfg", "[tool:pytest]"),
    ):
        path = root / name
        if path.is_file() and marker in path.read_text(encoding="utf-8", errors="replace"):
            return path
    return None
