"""A pydantic ValidationError of a flow file said as the file's problems: `file:line: node 'id':
message`, in words a flow's author acts on (what is allowed, the nearest known name)."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    Tag,
    ValidationError,
)
from pydantic_core import ErrorDetails

from ivr.errors import FlowProblem
from ivr.flow.fields import Said, did_you_mean
from ivr.flow.flowfile import NODE_SHAPES, FlowFile
from ivr.flow.yamlsrc import Located

_KINDS = ", ".join(NODE_SHAPES)
_TYPES = {
    "int_type": "a whole number",
    "string_type": "text",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "date_type": "a date like 2021-02-20",
    "datetime_type": "a date-time like 2020-12-01T00:00:00+03:00",
}


def problems(exc: ValidationError, doc: Located, file: str) -> list[FlowProblem]:
    """Each of pydantic's errors as one `file:line: node 'id': message`, duplicates once."""
    found: dict[tuple[int | None, str | None, str], None] = {}
    errors = exc.errors()
    # A misspelt key is one mistake: its "unknown key" says the fix, so the "missing" it causes is not said too.
    meant = {
        (error["loc"][:-1], close[0])
        for error in errors
        if error["type"] == "extra_forbidden"
        for close in [difflib.get_close_matches(str(error["loc"][-1]), _known_fields(error["loc"]), 1, 0.7)]
        if close
    }
    for error in errors:
        if error["type"] == "missing" and (error["loc"][:-1], error["loc"][-1]) in meant:
            continue
        cause = error.get("ctx", {}).get("error")
        loc = error["loc"] + ((cause.key,) if isinstance(cause, Said) and cause.key else ())
        line, node, keys = _locate(doc, loc)
        if isinstance(cause, Said):
            found[(line, node, str(cause))] = None
            continue
        found[(line, node, _message(error, keys, node))] = None
    return [FlowProblem(file, line, node, message) for line, node, message in found]


def _locate(doc: Located, loc: tuple[int | str, ...]) -> tuple[int | None, str | None, list[str]]:
    """The line an error is at, its node, and the keys written in the file on the way there."""
    current: Any = doc
    line: int | None = doc.line
    keys: list[str] = []
    for part in loc:
        if isinstance(current, Located) and isinstance(part, str) and part in current:
            line = current.line_of(part)
            current = current[part]
            keys.append(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
            keys.append(f"[{part}]")
        # else a union's tag or a key's own check: the line stays where the file says
    node = keys[1] if len(keys) > 1 and keys[0] == "nodes" else None
    return line, node, keys


_NAMED = {"schedules": "schedule", "allowances": "allowance", "contacts": "contact"}


def _namer(keys: list[str], node: str | None) -> Any:
    """How the keys after a prefix are said: `field` in a node, settings.field, schedule 'x': field."""
    if node:
        return 2, lambda d: f"`{d}`" if d else "the node"
    if keys and keys[0] in _NAMED and len(keys) > 1:
        prefix = f"{_NAMED[keys[0]]} {keys[1]!r}"
        return 2, lambda d: f"{prefix}: {d}" if d else prefix
    if keys:
        return 1, lambda d: f"{keys[0]}.{d}" if d else keys[0]
    return 0, lambda d: d or "the file"


def _message(error: ErrorDetails, keys: list[str], node: str | None) -> str:
    kind, loc, value = error["type"], error["loc"], error.get("input")
    skip, name = _namer(keys, node)
    field = _dotted(keys[skip:])
    if kind == "missing":
        if not keys:
            return f"missing section `{loc[-1]}`"
        return f"{name(field)}: missing `{loc[-1]}`" if field or not node else f"missing `{loc[-1]}`"
    if kind == "extra_forbidden":
        key, parent = str(loc[-1]), _dotted(keys[skip:-1])
        known = sorted(k for k in _known_fields(loc) if k != "kind")
        hint = did_you_mean(key, known) or f"; known: {', '.join(known)}"
        if node and not parent:
            hint = did_you_mean(key, known) or f"; known: {', '.join(known)}"
            kind_of = _node_kind(loc)
            article = "an" if kind_of[0] in "aeiou" else "a"
            return f"unknown field {key!r} for {article} {kind_of}{hint}"
        if len(keys) == 1:
            return f"unknown section {key!r}{hint}"
        return f"{name(parent)}: unknown key {key!r}{hint}"
    if kind == "union_tag_invalid":
        written = value.get("kind") if isinstance(value, Mapping) else None
        return f"unknown kind {_shown(written)}; use one of {_KINDS}"
    if kind == "union_tag_not_found":
        if not isinstance(value, Mapping):
            return "a node must be a mapping with a `kind`"
        return f"missing `kind`: use one of {_KINDS}"
    subject = name(field)
    if kind in ("value_error", "assertion_error"):
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{subject} {reason}" if reason.startswith(("is ", "has ")) else f"{subject}: {reason}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        if loc[-1] == "[key]":
            hint = did_you_mean(str(value), _literal_words(expected))
            return f"{name(_dotted(keys[skip:-1]))}: unknown key {value!r}{hint}; use {expected}"
        return f"{subject}: {_shown(value)} is not one of {expected}"
    if kind == "string_pattern_mismatch":
        return f"{subject}: {value!r} is not a node name (letters, digits and _, not first a digit)"
    if kind == "too_short":
        if keys == ["nodes"]:
            return "the flow has no nodes"
        return "a menu needs at least one option" if keys[-1:] == ["options"] else f"{subject} must not be empty"
    if kind == "string_too_long":
        return f"{subject} must be one character, not {value!r}"
    if kind in _TYPES:
        return f"{subject} must be {_TYPES[kind]}, not {_shown(value)}"
    return f"{subject}: {error['msg']}"


def _dotted(keys: list[str]) -> str:
    return ".".join(keys).replace(".[", "[")


def _shown(value: Any) -> str:
    """A value as the file wrote it (YAML dates as dates, not as Python)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _literal_words(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _node_kind(loc: tuple[int | str, ...]) -> str:
    return str(loc[2]) if len(loc) > 2 else "node"


def _known_fields(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the mapping holding loc[-1] accepts, found by walking the declared shape."""
    shape: Any = FlowFile
    for part in loc[:-1]:
        shape = _step(shape, part)
        if shape is None:
            return []
    shape = _plain(shape)
    return list(shape.model_fields) if isinstance(shape, type) and issubclass(shape, BaseModel) else []


def _plain(shape: Any) -> Any:
    """Without Annotated[...] and `| None`."""
    while True:
        if get_origin(shape) is Annotated:
            shape = get_args(shape)[0]
        elif _is_union(shape) and type(None) in get_args(shape) and len(get_args(shape)) == 2:
            shape = next(a for a in get_args(shape) if a is not type(None))
        else:
            return shape


def _is_union(shape: Any) -> bool:
    return get_origin(shape) in (Union, types.UnionType)


def _step(shape: Any, part: int | str) -> Any:
    shape = _plain(shape)
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        field = shape.model_fields.get(str(part))
        return field.annotation if field else None
    origin = get_origin(shape)
    if origin is dict:
        return get_args(shape)[1]
    if origin is list:
        return get_args(shape)[0]
    if _is_union(shape):
        for member in get_args(shape):
            annotated = get_origin(member) is Annotated
            tags = [m.tag for m in get_args(member)[1:] if isinstance(m, Tag)] if annotated else []
            plain = _plain(member)
            kind = getattr(plain, "model_fields", {}).get("kind")
            if part in tags or (kind is not None and part in get_args(kind.annotation)):
                return plain
    return None
