"""What a flow change does: nodes added, removed and changed (field by field), contacts, schedules
and allowances changed, and every path by menu keys whose outcome changes, found by walking both
flows at the same moments (`ivr.tools.paths`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from ivr.flow.model import Flow
from ivr.tools.paths import Path, explore

_SHOWN = 70  # characters of a changed value shown in text


@dataclass(frozen=True)
class Change:
    """A node (or contact, schedule, allowance) added, removed or changed."""

    what: str  # "node", "contact", "schedule", "allowance"
    name: str
    change: str  # "added", "removed", "changed"
    kind: str = ""  # a node's kind (its new kind when it changed kind)
    fields: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (before, after)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"what": self.what, "name": self.name, "change": self.change}
        if self.kind:
            out["kind"] = self.kind
        if self.fields:
            out["fields"] = {k: {"before": a, "after": b} for k, (a, b) in self.fields.items()}
        return out


@dataclass(frozen=True)
class PathChange:
    """A path by menu keys whose outcome differs at moment `at` (None: no such path on that side)."""

    keys: tuple[str, ...]
    at: datetime
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "at": self.at.isoformat(), "before": self.before, "after": self.after}

    def sentence(self) -> str:
        keys = "key " + " then ".join(self.keys) if self.keys else "no key"
        if self.before is None:
            return f"{keys}: new, {self.after}"
        if self.after is None:
            return f"{keys}: gone, was {self.before}"
        return f"{keys}: was {self.before}, now {self.after}"


@dataclass
class FlowDiff:
    """Everything `compare` found."""

    old: str
    new: str
    moments: list[datetime]
    changes: list[Change] = field(default_factory=list)
    paths: list[PathChange] = field(default_factory=list)
    paths_compared: int = 0
    scripts: list[dict[str, Any]] = field(default_factory=list)  # call scripts that fail on the new flow

    @property
    def same(self) -> bool:
        return not self.changes and not self.paths and not any(s["newly"] for s in self.scripts)

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "moments": [m.isoformat() for m in self.moments],
            "same": self.same,
            "changes": [c.to_json() for c in self.changes],
            "paths_compared": self.paths_compared,
            "paths": [p.to_json() for p in self.paths],
            "scripts": self.scripts,
        }

    def lines(self) -> list[str]:
        out = [f"--- {self.old}", f"+++ {self.new}"]
        for c in self.changes:
            kind = f" ({c.kind})" if c.kind else ""
            sign = {"added": "+", "removed": "-", "changed": "~"}[c.change]
            out.append(f"{sign} {c.what} {c.name}{kind}: {c.change}")
            out += [f"    {name}: {_short(a)} -> {_short(b)}" for name, (a, b) in c.fields.items()]
        moments = ", ".join(m.isoformat(timespec="minutes") for m in self.moments)
        if self.paths:
            out.append(f"paths whose outcome changes (of {self.paths_compared}, at {moments}):")
            out += [
                f"  {p.sentence()}" + (f" (at {p.at:%H:%M %a})" if len(self.moments) > 1 else "") for p in self.paths
            ]
        else:
            out.append(f"no path changes its outcome ({self.paths_compared} compared at {moments})")
        for script in self.scripts:
            state = "now fails" if script["newly"] else "fails on both"
            out.append(f"call script {script['path']}: {state}")
            out += [f"    {failure}" for failure in script["failures"]]
        return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _plain(value: Any) -> Any:
    """A value as JSON would hold it, for comparing and showing."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")}
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A plain value as dotted paths to its leaves; a list of items with a `key` (a menu's options)
    is indexed by those keys, so a changed option is named, not the whole list."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flat(v, f"{prefix}{k}.")
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and "key" in v for v in value):
        return _flat({str(v["key"]): {k: x for k, x in v.items() if k != "key"} for v in value}, prefix)
    return {prefix.rstrip("."): value}


def _fields(before: Any, after: Any, skip: frozenset[str] = frozenset({"id", "line", "name"})) -> dict[str, Any]:
    a = {k: v for k, v in _flat(_plain(before)).items() if k.split(".")[0] not in skip}
    b = {k: v for k, v in _flat(_plain(after)).items() if k.split(".")[0] not in skip}
    return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}


def _compare_named(what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    out = []
    for name in dict.fromkeys([*old, *new]):
        kind = getattr(new.get(name) or old.get(name), "kind", "") if what == "node" else ""
        if name not in new:
            out.append(Change(what, name, "removed", kind))
        elif name not in old:
            out.append(Change(what, name, "added", kind))
        else:
            before, after = old[name], new[name]
            changed = _fields(before, after)
            if what == "node" and before.kind != after.kind:
                changed = {"kind": (before.kind, after.kind), **changed}
            if changed:
                out.append(Change(what, name, "changed", kind, changed))
    return out


def compare(old: Flow, new: Flow, moments: Sequence[datetime], old_name: str = "", new_name: str = "") -> FlowDiff:
    """What changes from flow `old` to flow `new`; paths are walked at each of `moments`."""
    diff = FlowDiff(old_name or old.path, new_name or new.path, list(moments))
    diff.changes += _compare_named("node", old.nodes, new.nodes)
    diff.changes += _compare_named("contact", old.contacts, new.contacts)
    diff.changes += _compare_named("schedule", old.schedules, new.schedules)
    diff.changes += _compare_named("allowance", old.allowances, new.allowances)
    for at in moments:
        before = _by_keys(explore(old, at))
        after = _by_keys(explore(new, at))
        diff.paths_compared += len(before.keys() | after.keys())
        for keys in sorted(before.keys() | after.keys()):
            was = before[keys].outcome if keys in before else None
            now = after[keys].outcome if keys in after else None
            if was != now:
                diff.paths.append(PathChange(keys, at, was, now))
    return diff


def _by_keys(paths: list[Path]) -> dict[tuple[str, ...], Path]:
    return {p.keys: p for p in paths}
