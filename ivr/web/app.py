"""The application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr import settings
from ivr.engine.seal import KeyRing
from ivr.errors import ConfigError, reason
from ivr.store.database import Store
from ivr.store.revisions import Revisions
from ivr.web import config as config_checks
from ivr.web import errors, probes, voice
from ivr.web.calls import CallHandler
from ivr.web.paths import Paths, StepConverter
from ivr.web.runtime import Runtime

log = logging.getLogger("ivr")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app: defaults, then IVR_* environment, then `config`; load and check the flow."""
    app = Flask("ivr", instance_relative_config=True)
    app.config.from_mapping(
        FLOW=None,
        DATABASE_URL=None,
        SIMULATED_DATABASE_URL=None,  # where simulated calls are kept, apart from real ones
        PUBLIC_URL=None,
        TWILIO_AUTH_TOKEN=os.environ.get("TWILIO_AUTH_TOKEN") or None,
        TWILIO_ACCOUNT_SID=os.environ.get("TWILIO_ACCOUNT_SID") or None,
        STATE_KEYS=None,  # the key ring sealing call state in action URLs, newest first
        PROMPTS_DIR=None,  # recorded prompts: <dir>/<flow>/<id>.wav (default: `prompts` beside `flows`)
        WATCH_FLOW=False,  # `ivr serve`: a changed flow file is taken at the next new call
        DEVELOPMENT=False,  # `ivr serve` and the local tools: a missing key ring is made, not refused
        **settings.defaults(),  # the checked ones: kinds and ranges in ivr/settings.py
    )
    app.config.from_prefixed_env("IVR", loads=str)
    if config:
        app.config.update(config)

    settings.check(app.config)
    for key in ("DATABASE_URL", "SIMULATED_DATABASE_URL"):
        if app.config[key]:
            config_checks.check_database_url(str(app.config[key]), f"IVR_{key}")
    if app.config["PUBLIC_URL"]:
        config_checks.check_public_url(str(app.config["PUBLIC_URL"]))
    env = app.config.get("ENV_OVERRIDES") or os.environ
    revisions = Revisions(app.config["FLOW"], env, app.config["PROMPTS_DIR"], watch=_flag(app.config["WATCH_FLOW"]))
    url = database_url({"DATABASE_URL": app.config["DATABASE_URL"], "INSTANCE_PATH": app.instance_path})
    # Twilio does not follow redirects on webhooks: never answer "/voice//x" or "/voice/" with a 308.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.converters["step"] = StepConverter
    app.register_blueprint(voice.bp)
    app.register_blueprint(probes.bp)
    errors.register(app)
    prepared = os.environ.get(config_checks.PREPARED) == url  # by gunicorn's master, before forking
    store = Store(url, busy_timeout=app.config["DB_BUSY_TIMEOUT"], file_prepared=prepared)
    allow_clock = app.config["ALLOW_SIMULATED_CLOCK"]
    keys, max_steps, paths = _state_keys(app), app.config["MAX_CALL_STEPS"], Paths(app.url_map)
    handler = CallHandler(revisions, store, keys, paths, max_steps=max_steps)
    sandbox_url = simulated_database_url(
        {"DATABASE_URL": url, "SIMULATED_DATABASE_URL": app.config["SIMULATED_DATABASE_URL"]}, app.instance_path
    )

    def make_sandbox() -> CallHandler:
        sandbox = Store(sandbox_url, busy_timeout=store.busy_timeout)
        return CallHandler(revisions, sandbox, keys, paths, max_steps=max_steps)

    app.extensions["ivr"] = Runtime(
        handler,
        allow_simulated_clock=allow_clock,
        make_sandbox=None if sandbox_url == url else make_sandbox,
        sandbox_url=sandbox_url,
    )
    if app.config["SIMULATOR"]:
        from ivr.web import webphone

        webphone.install(app)
    proxies = app.config["TRUST_PROXY"]
    if proxies:
        # Honour X-Forwarded-Proto/Host/Port from exactly this many proxies, so the URL checked
        # against X-Twilio-Signature is the public https one Twilio signed.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies, x_prefix=proxies
        )
    logging.getLogger("ivr").setLevel(app.config["LOG_LEVEL"])

    if not app.config["TWILIO_AUTH_TOKEN"]:
        log.warning(
            "TWILIO_AUTH_TOKEN is not set: webhook signatures are NOT checked and anyone can call this "
            "server. Set it before pointing a real number here."
        )
    if allow_clock:
        log.warning("the simulated clock is allowed (X-Ivr-Clock): never run like this in production")
    try:  # workers boot without the database: a problem here is said once, and retried per webhook
        store.ready()
    except Exception as exc:
        log.warning("the database is not ready yet (%s); callers reach the operator until it is", reason(exc))
    return app


def database_url(config: Mapping[str, Any]) -> str:
    """IVR_DATABASE_URL, or the SQLite file in the instance folder (made if missing)."""
    if config.get("DATABASE_URL"):
        return str(config["DATABASE_URL"])
    folder = Path(config["INSTANCE_PATH"])
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'ivr.sqlite3'}"


def simulated_database_url(config: Mapping[str, Any], instance_path: str) -> str:
    """Where simulated calls are kept: IVR_SIMULATED_DATABASE_URL; else, beside a SQLite database, a
    file of the same name ending in -simulated; else ivr-simulated.sqlite3 in the instance folder."""
    if config.get("SIMULATED_DATABASE_URL"):
        return str(config["SIMULATED_DATABASE_URL"])
    url = str(config["DATABASE_URL"])
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        path = Path(url.removeprefix("sqlite:///"))
        return f"sqlite:///{path.with_name(path.stem + '-simulated' + path.suffix)}"
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'ivr-simulated.sqlite3'}"


def _state_keys(app: Flask) -> KeyRing:
    """The key ring from IVR_STATE_KEYS; without one, a key kept in the instance folder (shared by
    every process of this machine) unless this app answers a real number in production."""
    text = app.config["STATE_KEYS"]
    if text:
        return KeyRing.parse(str(text))
    production = app.config["TWILIO_AUTH_TOKEN"] and not (app.testing or _flag(app.config["DEVELOPMENT"]))
    if production:
        raise ConfigError(
            "IVR_STATE_KEYS",
            "",
            "is not set: every instance needs the same key ring to read calls in progress; "
            "make one with `ivr keys new` and set it in the environment of every instance",
        )
    return KeyRing.for_development(Path(app.instance_path))


def _flag(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")
