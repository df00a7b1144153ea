"""The `ivr` group: the commands of every module of `ivr.cli` under one name."""

from __future__ import annotations

import logging

import click

from ivr.cli import callbacks, changes, database, flows, operations, reports, server, simulate, testing, twilio
from ivr.cli.base import Commands


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ivr")
@click.option("--debug", is_flag=True, help="Show the traceback when something fails.")
def main(debug: bool) -> None:
    """Voice menus on Twilio: serve the hotline, check flows, simulate calls."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # `ivr db upgrade` says what it did itself
    logging.getLogger("twilio").setLevel(logging.WARNING)  # its client logs every API request at INFO


for command in (
    flows.check,
    changes.diff,
    changes.replay,
    changes.timing,
    flows.graph,
    flows.new,
    flows.prompts,
    flows.schema,
    server.serve,
    server.keys,
    simulate.simulate,
    database.db,
    database.purge,
    operations.hours,
    operations.allowance,
    operations.requests,
    callbacks.callbacks,
    testing.crawl,
    testing.test_scripts,
    reports.report,
    reports.calls,
    twilio.twilio,
):
    main.add_command(command)
