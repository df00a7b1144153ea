"""How the server's log lines look under gunicorn (`logconfig_dict` in gunicorn.conf.py): every
line with its time and level, and each webhook's line one JSON object a log pipeline can read."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class WebhookFormatter(logging.Formatter):
    """A webhook's line (`ivr.webhook`, whose message is a JSON object) with `time` and `level`
    added to the object; any other message as the object's `message`."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        head = {"time": moment, "level": record.levelname}
        message = record.getMessage()
        try:
            body = json.loads(message)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"logger": record.name, "message": message}
        return json.dumps(head | body, ensure_ascii=False)


PLAIN = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def config() -> dict[str, object]:
    """The logging configuration of a production server (gunicorn's loggers included)."""
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": PLAIN, "datefmt": "%Y-%m-%d %H:%M:%S %z"},
            "webhook": {"()": WebhookFormatter},
        },
        "handlers": {
            "plain": stream | {"formatter": "plain"},
            "webhook": stream | {"formatter": "webhook"},
        },
        "root": {"level": "INFO", "handlers": ["plain"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["plain"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["plain"], "propagate": False},
            "alembic": {"level": "WARNING"},  # a schema made or upgraded is said by the app itself
            # Its level is the ivr logger's (IVR_LOG_LEVEL), set by the app.
            "ivr.webhook": {"handlers": ["webhook"], "propagate": False},
        },
    }
