"""Proving the tree: the crawler (`ivr crawl`) and call scripts (`ivr test`)."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from ivr.cli.base import _app_or_exit, _progress_line, _quiet, _show_progress, _shown, scratch_config
from ivr.errors import FlowError


@click.command()
@click.option("--url", help="Crawl a TwiML app over HTTP at this URL instead of the flow in-process.")
@click.option("--at", "times", multiple=True, metavar="ISO-8601", help="A simulated moment to crawl at (repeatable).")
@click.option("--flow", type=click.Path(dir_okay=False), help="In-process: the flow file to crawl.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def crawl(url: str | None, times: tuple[str, ...], flow: str | None, as_json: bool) -> None:
    """Walk every path of the phone tree and report coverage, dead ends and loops (exit 1 on a problem)."""
    from ivr.simulator import parse_at
    from ivr.tools.crawler import Crawler
    from ivr.tools.scenarios import default_scenarios

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
            config = scratch_config(f"sqlite:///{Path(scratch) / 'crawl.sqlite3'}", flow)
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


@click.command("test")
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
