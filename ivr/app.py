"""The application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from . import flows
from .calls import CallHandler
from .store import Store
from .web import Runtime, bp

log = logging.getLogger("ivr")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app: defaults, then IVR_* environment, then `config`; load and check the flow."""
    app = Flask("ivr", instance_relative_config=True)
    app.config.from_mapping(
        FLOW=None,
        DATABASE_URL=None,
        PUBLIC_URL=None,
        ALLOW_SIMULATED_CLOCK=False,
        TWILIO_AUTH_TOKEN=os.environ.get("TWILIO_AUTH_TOKEN") or None,
        TWILIO_ACCOUNT_SID=os.environ.get("TWILIO_ACCOUNT_SID") or None,
    )
    app.config.from_prefixed_env("IVR", loads=str)
    if config:
        app.config.update(config)

    flow = flows.load(app.config["FLOW"], env=app.config.get("ENV_OVERRIDES") or os.environ)
    url = app.config["DATABASE_URL"]
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'ivr.sqlite3'}"
    store = Store(url)
    allow_clock = str(app.config["ALLOW_SIMULATED_CLOCK"]).lower() in ("1", "true", "yes", "on")
    app.extensions["ivr"] = Runtime(CallHandler(flow, store), allow_simulated_clock=allow_clock)
    app.register_blueprint(bp)

    if not app.config["TWILIO_AUTH_TOKEN"]:
        log.warning(
            "TWILIO_AUTH_TOKEN is not set: webhook signatures are NOT checked and anyone can call this "
            "server. Set it before pointing a real number here."
        )
    if allow_clock:
        log.warning("the simulated clock is allowed (X-Ivr-Clock): never run like this in production")
    return app
