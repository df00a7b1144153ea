"""The `ivr` group: the commands of every module of `ivr.cli` under one name.

A command's module is imported when that command runs (or help lists them all): `ivr simulate`
does not pay for the imports of `ivr twilio` or `ivr diff`.
"""

from __future__ import annotations

import logging

import click

from ivr.cli.base import Commands

# name -> "module:attribute" of the click command
COMMANDS = {
    "check": "ivr.cli.flows:check",
    "diff": "ivr.cli.changes:diff",
    "replay": "ivr.cli.changes:replay",
    "timing": "ivr.cli.changes:timing",
    "graph": "ivr.cli.flows:graph",
    "new": "ivr.cli.flows:new",
    "prompts": "ivr.cli.flows:prompts",
    "schema": "ivr.cli.flows:schema",
    "serve": "ivr.cli.server:serve",
    "keys": "ivr.cli.server:keys",
    "simulate": "ivr.cli.simulate:simulate",
    "db": "ivr.cli.database:db",
    "purge": "ivr.cli.database:purge",
    "hours": "ivr.cli.operations:hours",
    "allowance": "ivr.cli.operations:allowance",
    "requests": "ivr.cli.operations:requests",
    "callbacks": "ivr.cli.callbacks:callbacks",
    "crawl": "ivr.cli.testing:crawl",
    "test": "ivr.cli.testing:test_scripts",
    "report": "ivr.cli.reports:report",
    "calls": "ivr.cli.reports:calls",
    "twilio": "ivr.cli.twilio:twilio",
}


@click.group(cls=Commands, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ivr")
@click.option("--debug", is_flag=True, help="Show the traceback when something fails.")
def main(debug: bool) -> None:
    """Voice menus on Twilio: serve the hotline, check flows, simulate calls."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # `ivr db upgrade` says what it did itself
    logging.getLogger("twilio").setLevel(logging.WARNING)  # its client logs every API request at INFO
