"""The IVR_* settings with their kinds and ranges, checked once at start-up: one table, one check.

A value out of range fails the start with `IVR_NAME='value': what would be right`, never later in
a call (IVR_MAX_CALL_STEPS=0 would hang up on every caller; IVR_JOURNAL_DAYS=0 would delete the
journal of calls made a minute ago).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from ivr.errors import ConfigError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Setting:
    """One IVR_* setting: its kind (int, float, flag or one of `choices`), range and default."""

    name: str
    kind: str  # "int", "float", "flag", "choice"
    default: Any
    meaning: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def read(self, raw: Any) -> Any:
        """The value, or ConfigError naming the variable, the value and what would be right."""
        key = f"IVR_{self.name}"
        if self.kind == "flag":
            text = str(raw).strip().lower() if raw is not None else ""
            if isinstance(raw, bool) or text in _TRUE or text in _FALSE:
                return raw if isinstance(raw, bool) else text in _TRUE
            raise ConfigError(key, raw, "must be 1 or 0 (true/false, yes/no, on/off)")
        if self.kind == "choice":
            text = str(raw).strip().upper()
            if text in self.choices:
                return text
            raise ConfigError(key, raw, "must be one of " + ", ".join(self.choices))
        try:
            value = int(str(raw).strip()) if self.kind == "int" else float(str(raw).strip())
        except ValueError:
            value = None
        below = value is not None and self.low is not None and value < self.low
        above = value is not None and self.high is not None and value > self.high
        if value is None or below or above:
            what = "a whole number" if self.kind == "int" else "a number"
            raise ConfigError(key, raw, f"must be {what} from {_shown(self.low)} to {_shown(self.high)}")
        return value


def _shown(number: float | None) -> str:
    if number is None:
        return "any"
    return str(int(number)) if number == int(number) else f"{number:g}"


SETTINGS = (
    Setting("MAX_CALL_STEPS", "int", 500, "webhooks in one call before it is ended politely", 3, 100_000),
    Setting("MAX_CONTENT_LENGTH", "int", 64 * 1024, "largest webhook body in bytes", 4096, 10 * 1024 * 1024),
    Setting(
        "MAX_FORM_FIELDS", "int", 200, "most form fields a webhook may carry (Twilio sends a few dozen)", 50, 10_000
    ),
    Setting("DB_BUSY_TIMEOUT", "float", 5.0, "seconds a webhook waits for a locked SQLite database", 0.01, 60),
    Setting("JOURNAL_DAYS", "int", 90, "days the call journal keeps a call (`ivr purge`)", 1, 36_500),
    Setting("TRUST_PROXY", "int", 0, "proxies in front whose X-Forwarded-* headers are believed", 0, 5),
    Setting("LOG_LEVEL", "choice", "INFO", "level of the ivr loggers", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("ALLOW_SIMULATED_CLOCK", "flag", False, "honour X-Ivr-Clock from this machine (never in production)"),
    Setting("SIMULATOR", "flag", False, "the web phone at /simulator"),
)


def defaults() -> dict[str, Any]:
    return {setting.name: setting.default for setting in SETTINGS}


def check(config: MutableMapping[str, Any]) -> None:
    """Replace each setting in `config` by its checked value (raises ConfigError on the first bad one)."""
    for setting in SETTINGS:
        config[setting.name] = setting.read(config.get(setting.name, setting.default))


def table() -> list[Mapping[str, str]]:
    """The settings as rows of the serving docs: name, meaning, range, default."""
    rows: list[Mapping[str, str]] = []
    for s in SETTINGS:
        allowed = (
            ", ".join(s.choices)
            if s.kind == "choice"
            else "1/0"
            if s.kind == "flag"
            else f"{_shown(s.low)}–{_shown(s.high)}"
        )
        default = (
            ("1" if s.default else "0")
            if s.kind == "flag"
            else f"{s.default:g}"
            if s.kind == "float"
            else str(s.default)
        )
        rows.append({"name": f"IVR_{s.name}", "meaning": s.meaning, "allowed": allowed, "default": default})
    return rows
