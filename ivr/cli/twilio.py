"""`ivr twilio connect`: point a Twilio number's webhooks at this server."""

from __future__ import annotations

import os

import click


@click.group()
def twilio() -> None:
    """Set up a Twilio number for this server."""


@twilio.command("connect")
@click.option("--number", required=True, help="The Twilio number, in E.164 like +15005550006.")
@click.option(
    "--public-url", required=True, envvar="IVR_PUBLIC_URL", help="Your https tunnel (default: IVR_PUBLIC_URL)."
)
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
def twilio_connect(number: str, public_url: str, dry_run: bool) -> None:
    """Point a number's voice webhook, its fallback and its status callback at this server."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    from ivr.tools import twilio_setup

    missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not os.environ.get(name)]
    if missing:
        raise click.UsageError(f"set {' and '.join(missing)} (Twilio console, Account info) and try again")
    try:
        twilio_setup.check_public_url(public_url)
        twilio_setup.check_number(number)
        client = twilio_setup.make_client(os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"])
        settings = twilio_setup.connect(client, number, public_url, dry_run)
    except twilio_setup.SetupError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:  # no network, a refused connection, a name that does not resolve
        said = twilio_setup.network_reason(exc)
        raise click.ClickException(f"cannot reach Twilio's API: {said}; is this machine online?") from None
    except (TwilioRestException, TwilioException) as exc:
        # A REST error carries .status; a failed page fetch carries the response as its second argument.
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(exc, "status", None) or getattr(response, "status_code", None)
        if status is None:
            raise click.ClickException(f"cannot reach Twilio: {exc}") from None
        hint = " (are TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN right?)" if status in (401, 403) else ""
        detail = getattr(exc, "msg", None) or getattr(response, "text", "")[:200]
        raise click.ClickException(f"Twilio answered {status}: {detail}{hint}") from None
    verb = "would change" if dry_run else "changed"
    for setting in settings:
        if setting.changes:
            click.echo(f"{setting.name}: {setting.before or '(empty)'} -> {setting.after}  ({verb})")
        else:
            click.echo(f"{setting.name}: {setting.after}  (already set)")
    if dry_run:
        click.echo("dry run: nothing was changed")
    else:
        click.echo(
            f"call {number} now; the server must run with TWILIO_AUTH_TOKEN and IVR_PUBLIC_URL={public_url.rstrip('/')}"
        )
