"""A JSON Schema of flow files, generated from the fields the flow loader accepts.

Editors that speak the YAML language server complete and check a flow file that starts with
`# yaml-language-server: $schema=../schema/flow.schema.json`. `ivr schema > schema/flow.schema.json`
regenerates it; a test keeps the committed copy current.
"""

from __future__ import annotations

from typing import Any

from .flows import DEFAULT_TEXTS, NODE_FIELDS, SCHEDULE_FIELDS
from .model import DIAL_STATUSES, PERIODS

_TEXT = {"type": "string", "minLength": 1}
_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
_INTERVALS = {
    "oneOf": [
        {"type": "string", "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"},
        {"type": "array", "items": {"type": "string", "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"}},
    ]
}
_FAILURES = {
    "type": "object",
    "properties": {"limit": {"type": "integer", "minimum": 1}, "fallback": _NAME},
    "additionalProperties": False,
}
_STRINGS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}

# What each field of each node kind holds, with a one-line description an editor shows.
FIELDS: dict[str, dict[str, Any]] = {
    "prompt": {**_TEXT, "description": "What the caller hears; may use {placeholders}."},
    "reprompt": {**_TEXT, "description": "The shorter prompt after a first wrong key or silence."},
    "retry": {**_TEXT, "description": "Said when the value given is not acceptable."},
    "say": {**_TEXT, "description": "What the caller hears."},
    "next": {**_NAME, "description": "The node that comes next."},
    "options": {
        "type": "object",
        "description": "Phone keys (0-9, #) to a node, or to {to: node, say: [spoken keywords]}.",
        "propertyNames": {"pattern": "^[0-9#]$"},
        "additionalProperties": {
            "oneOf": [
                _NAME,
                {
                    "type": "object",
                    "properties": {"to": _NAME, "say": _STRINGS},
                    "required": ["to"],
                    "additionalProperties": False,
                },
            ]
        },
    },
    "invalid": {**_FAILURES, "description": "Wrong answers allowed, then where the call goes."},
    "no_input": {**_FAILURES, "description": "Silences allowed, then where the call goes."},
    "speech": {"type": "boolean", "description": "Whether the menu listens for spoken keywords (default true)."},
    "input": {"enum": ["digits", "speech", "caller_number"], "description": "What the question collects."},
    "store": {**_NAME, "description": "The name the value is stored under, e.g. policy."},
    "confirm": {"type": "boolean", "description": "Read the value back and ask 1 = correct, 2 = re-enter."},
    "min_length": {"type": "integer", "minimum": 1},
    "max_length": {"type": "integer", "minimum": 1},
    "finish_on_key": {"type": "string", "maxLength": 1, "description": "The key that ends typed digits."},
    "hints": {**_STRINGS, "description": "Words that help speech recognition."},
    "timeout": {"type": "integer", "minimum": 1, "description": "Seconds to wait."},
    "on": {
        "type": "string",
        "pattern": "^(schedule:[A-Za-z0-9_]+|programme|value:[A-Za-z0-9_]+)$",
        "description": "schedule:NAME, programme or value:NAME.",
    },
    "cases": {
        "type": "object",
        "additionalProperties": _NAME,
        "description": "open/closed/emergency, active/inactive, or stored values, to nodes.",
    },
    "default": {**_NAME, "description": "Where any other case goes."},
    "allowance": {**_NAME, "description": "The allowance to spend (see allowances)."},
    "key": {**_NAME, "description": "The stored value the allowance is counted by."},
    "request": {**_NAME, "description": "The kind of request registered, e.g. desk."},
    "fields": {"type": "array", "items": _NAME, "description": "Stored values saved with the request."},
    "granted": _NAME,
    "used_up": _NAME,
    "contact": {"type": "string", "description": "A contact name; for register also @last_transfer."},
    "outcomes": {
        "type": "object",
        "propertyNames": {"enum": [*DIAL_STATUSES, "otherwise"]},
        "additionalProperties": _NAME,
        "description": "Dial outcomes to nodes; every outcome must lead somewhere.",
    },
    "anonymous": {"type": "boolean", "description": "Store and log nothing about this caller."},
}

_SCHEDULE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "timezone": {"type": "string", "description": "IANA time zone, e.g. Europe/Moscow."},
        "calendar": {"type": "string", "description": "Country of the production calendar, e.g. RU."},
        "hours": {
            "type": "object",
            "propertyNames": {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            "additionalProperties": _INTERVALS,
        },
        "working_on": {"type": "array", "items": {"type": "string", "format": "date"}},
        "closed_on": {"type": "array", "items": {"type": "string", "format": "date"}},
        "moved_workday": _INTERVALS,
        "overrides": {"type": "object", "additionalProperties": {"oneOf": [{"const": "closed"}, _INTERVALS]}},
        "shorten_before_holidays": {"type": "boolean"},
    },
    "required": ["hours"],
    "additionalProperties": False,
}


def _node_schema(kind: str) -> dict[str, Any]:
    properties = {"kind": {"const": kind}} | {name: FIELDS[name] for name in sorted(NODE_FIELDS[kind])}
    return {"type": "object", "properties": properties, "required": ["kind"], "additionalProperties": False}


def flow_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a flow file."""
    missing = sorted({f for fields in NODE_FIELDS.values() for f in fields} - set(FIELDS))
    if missing or set(_SCHEDULE["properties"]) != SCHEDULE_FIELDS:
        raise RuntimeError(f"schema fields out of date: {missing or sorted(SCHEDULE_FIELDS)}")
    contact = {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "properties": {"number": {"type": "string"}, "env": {"type": "string"}},
                "required": ["number"],
                "additionalProperties": False,
            },
        ]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ivr flow",
        "description": "A phone tree served by ivr. Reference: docs/flows.md.",
        "type": "object",
        "properties": {
            "flow": {"type": "string"},
            "settings": {
                "type": "object",
                "properties": {
                    "voice": {"type": "string"},
                    "language": {"type": "string"},
                    "timezone": {"type": "string"},
                    "start": _NAME,
                    "main_menu": _NAME,
                    "operator": _NAME,
                    "attempts": {"type": "integer", "minimum": 1},
                    "gather_timeout": {"type": "integer", "minimum": 1},
                    "dial_timeout": {"type": "integer", "minimum": 1},
                },
                "required": ["start", "main_menu"],
                "additionalProperties": False,
            },
            "texts": {
                "type": "object",
                "properties": {name: _TEXT for name in DEFAULT_TEXTS},
                "additionalProperties": False,
            },
            "contacts": {"type": "object", "additionalProperties": contact},
            "schedules": {"type": "object", "additionalProperties": _SCHEDULE},
            "allowances": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "limit": {"type": "integer", "minimum": 1},
                        "period": {"enum": list(PERIODS)},
                        "anchor": {"type": "string", "pattern": r"^\d{2}-\d{2}$"},
                        "timezone": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
            },
            "programme": {
                "type": "object",
                "properties": {"start": {"type": "string"}, "end": {"type": "string"}, "inactive": _NAME},
                "required": ["start", "end", "inactive"],
                "additionalProperties": False,
            },
            "nodes": {
                "type": "object",
                "additionalProperties": {"oneOf": [_node_schema(kind) for kind in NODE_FIELDS]},
            },
        },
        "required": ["settings", "contacts", "nodes"],
        "additionalProperties": False,
    }
