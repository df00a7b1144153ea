"""Serving the webhooks in development (`ivr serve`) and the key ring that seals call state."""

from __future__ import annotations

from typing import Any

import click

from ivr.cli.base import _app_or_exit, _shown
from ivr.errors import reason


@click.group()
def keys() -> None:
    """The key ring that seals call state in action URLs (IVR_STATE_KEYS)."""


@keys.command("new")
def keys_new() -> None:
    """Print a new key. Put it first in IVR_STATE_KEYS on every instance; keep the old key after it
    (comma-separated) until the calls it sealed are over, then drop it."""
    from ivr.engine.seal import new_key  # the engine loads with it, only for this command

    click.echo(new_key())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--flow", type=click.Path(dir_okay=False), help="Flow file (default: IVR_FLOW or the bundled hotline).")
@click.option(
    "--allow-simulated-clock",
    is_flag=True,
    help="Honour X-Ivr-Clock from the simulator. Never in production.",
)
@click.option("--debug", is_flag=True, help="Flask debug mode with the reloader.")
@click.option("--simulator/--no-simulator", default=True, show_default=True, help="The web phone at /simulator.")
def serve(host: str, port: int, flow: str | None, allow_simulated_clock: bool, debug: bool, simulator: bool) -> None:
    """Run the development server (production: gunicorn "ivr:create_app()")."""
    config: dict[str, Any] = {}
    if flow:
        config["FLOW"] = flow
    if allow_simulated_clock:
        config["ALLOW_SIMULATED_CLOCK"] = True
    config["SIMULATOR"] = simulator
    config["WATCH_FLOW"] = True  # an edited flow file is taken at the next new call
    app = _app_or_exit(config, quiet=False)
    public = app.config.get("PUBLIC_URL")
    revisions = app.extensions["ivr"].handler.revisions
    _reload_on_sighup(revisions)
    click.echo(f"Serving flow {_shown(revisions.path)} (revision {revisions.revision}; edits are taken at once)")
    click.echo(f"Webhook for a local simulator: http://{host}:{port}/voice")
    if simulator:
        click.echo(f"Phone in the browser: http://{host}:{port}/simulator")
    if public:
        click.echo(f"Webhook to paste into Twilio (A call comes in, HTTP POST): {public.rstrip('/')}/voice")
    else:
        click.echo("Set IVR_PUBLIC_URL to your tunnel's https address to see the webhook to paste into Twilio.")
    checking = "ON" if app.config.get("TWILIO_AUTH_TOKEN") else "OFF (set TWILIO_AUTH_TOKEN)"
    click.echo(f"Signature checking: {checking}")
    runtime = app.extensions["ivr"]
    where = _location(runtime.handler.store.engine.url.render_as_string(hide_password=False))
    try:
        runtime.handler.store.ready()
        click.echo(f"Database: ready, {where}")
    except Exception as exc:
        click.echo(f"Database: NOT READY ({reason(exc)}), {where}; callers reach the operator until it is")
    click.echo(f"Simulated calls (`ivr calls --simulated`): {_location(runtime.sandbox_url)}")
    app.run(host=host, port=port, debug=debug, use_reloader=debug)


def _location(url: str) -> str:
    """A database as a user finds it: a SQLite file's path, else the URL (without its password)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return _shown(str(parsed.database))
    return parsed.render_as_string(hide_password=True)


def _reload_on_sighup(revisions: Any) -> None:
    """SIGHUP: read the flow file again at the next webhook (calls in progress keep their revision)."""
    import signal

    def asked(_signum: int, _frame: Any) -> None:
        revisions.reload_requested = True

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, asked)
