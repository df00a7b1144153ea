"""Load a flow file into a validated, immutable Flow; every problem names file, line and node.

The file's shape is declared once in flowfile.py; here the validated shape becomes the model the
engine walks, with the defaults that come from `settings` and the contacts the environment overrides.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from ivr.errors import FlowError, FlowProblem
from ivr.flow import flowfile, schedule
from ivr.flow.fields import FailuresFile
from ivr.flow.flowfile import DEFAULT_TEXTS
from ivr.flow.kinds import BY_KIND, NODE_FIELDS, NodeFile
from ivr.flow.model import (
    AllowanceRule,
    AnyNode,
    CallbackPolicy,
    Callbacks,
    Contact,
    Failures,
    Flow,
    Programme,
    Properties,
    Settings,
)
from ivr.flow.problems import problems as problems_of
from ivr.flow.validate import validate
from ivr.flow.yamlsrc import Located, load_yaml, read_text

__all__ = ["BUNDLED_FLOW", "DEFAULT_TEXTS", "NODE_FIELDS", "load"]

BUNDLED_FLOW = Path(__file__).resolve().parents[2] / "flows" / "dms_hotline.yaml"
# A transfer target Twilio can dial: a number in E.164, or a SIP or Twilio Client address.
_DIALABLE = re.compile(r"\+[1-9][0-9]{6,14}|sip:\S+@\S+|client:[A-Za-z0-9_.-]+")


class _Builder:
    """Turns a validated FlowFile into the model, collecting what the shape alone cannot show."""

    def __init__(self, shape: flowfile.FlowFile, doc: Located, file: str, env: Mapping[str, str]) -> None:
        self.shape, self.doc, self.file, self.env = shape, doc, file, env
        self.problems: list[FlowProblem] = []
        self.settings = self.read_settings()

    def problem(self, line: int | None, node: str | None, message: str) -> None:
        self.problems.append(FlowProblem(self.file, line, node, message))

    def line(self, *keys: str) -> int | None:
        """The line of a key path in the file (the nearest mapping's line when a key is absent)."""
        current: object = self.doc
        line: int | None = self.doc.line
        for key in keys:
            if not isinstance(current, Located) or key not in current:
                break
            line, current = current.line_of(key), current[key]
        return line

    def read_settings(self) -> Settings:
        s = self.shape.settings
        return Settings(
            voice=s.voice,
            language=s.language,
            timezone=s.timezone,
            start=s.start,
            main_menu=s.main_menu,
            operator=s.operator or "",
            attempts=s.attempts,
            gather_timeout=s.gather_timeout,
            dial_timeout=s.dial_timeout,
            texts=MappingProxyType(self.shape.texts.model_dump()),
        )

    def contacts(self) -> dict[str, Contact]:
        result = {}
        for name, raw in self.shape.contacts.items():
            var = f"IVR_CONTACT_{name.upper()}"
            if isinstance(raw, flowfile.ContactFile):
                target, var = raw.number, raw.env or var
            else:
                target = raw
            overridden = self.env.get(var, "").strip()
            line = self.line("contacts", name)
            if not target.strip() and not overridden:
                self.problem(line, None, f"contact {name!r} has no number")
            elif not _DIALABLE.fullmatch(overridden or target.strip()):
                said = (
                    f"{var}={overridden!r} (overriding contact {name!r})"
                    if overridden
                    else f"contact {name!r}: {target!r}"
                )
                self.problem(line, None, f"{said} is not dialable: use E.164 like +78002001441, or sip:, client:")
            result[name] = Contact(name=name, target=(overridden or target).strip(), env=var)
        return result

    def schedules(self, default_tz: str) -> dict[str, schedule.Schedule]:
        result = {}
        for name, raw in self.shape.schedules.items():
            weekly = {schedule.WEEKDAYS.index(day): schedule.parse_intervals(v) for day, v in raw.hours.items()}
            moved = schedule.parse_intervals(raw.moved_workday) if raw.moved_workday else weekly.get(0, ())
            result[name] = schedule.Schedule(
                name=name,
                timezone=raw.timezone or default_tz,
                weekly=MappingProxyType(weekly),
                country=raw.calendar,
                working_on=frozenset(raw.working_on),
                closed_on=frozenset(raw.closed_on),
                moved_workday=moved,
                overrides=MappingProxyType({d: schedule.parse_day_hours(v) for d, v in raw.overrides.items()}),
                shorten_before_holidays=raw.shorten_before_holidays,
            )
        return result

    def allowances(self, default_tz: str) -> dict[str, AllowanceRule]:
        result = {}
        for name, raw in self.shape.allowances.items():
            month, day = (int(x) for x in raw.anchor.split("-"))
            result[name] = AllowanceRule(name, raw.limit, raw.period, month, day, raw.timezone or default_tz)
        return result

    def programme(self) -> Programme | None:
        p = self.shape.programme
        return None if p is None else Programme(start=p.start, end=p.end, inactive=p.inactive)

    def callbacks(self, settings: Settings) -> Callbacks | None:
        c = self.shape.callbacks
        if c is None:
            return None
        p = c.policy
        policy = CallbackPolicy(p.attempts, p.spacing, p.give_up, p.at_once)
        operator = self.shape.nodes.get(settings.operator)
        contact = str(getattr(operator, "contact", ""))
        default = contact if contact in c.lines else next(iter(c.lines))
        return Callbacks(MappingProxyType(dict(c.lines)), c.machine, policy, default)

    def failures(self, raw: FailuresFile | None, key: str, node: str) -> Failures:
        settings = self.settings
        limit = raw.limit if raw and raw.limit else settings.attempts
        fallback = (raw.fallback if raw else None) or settings.operator
        if not fallback:
            what = "silence" if key == "no_input" else "wrong input"
            fix = f"set `{key}.fallback` or settings.operator"
            self.problem(self.line("nodes", node), node, f"no {what} handling: {fix}")
        return Failures(limit=limit, fallback=fallback)

    def node(self, node_id: str, raw: NodeFile) -> AnyNode:
        """The model of one node, built by its kind."""
        base: dict[str, Any] = {"id": node_id, "line": self.line("nodes", node_id) or 0}
        node: AnyNode = BY_KIND[raw.kind].build(raw, base, self)  # type: ignore[assignment]
        return node


def revision_of(text: str) -> str:
    """The revision of a flow file: a short hash of its text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def load(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, text: str | None = None
) -> Flow:
    """Read and validate a flow file; raises FlowError listing every problem found.

    The shape is checked first, all of it at once; what needs the whole flow (targets, reachability)
    is checked once the shape is right, so a broken node is reported once, not again at every node
    that leads to it. `text` is the file's text when it is already read (an earlier revision kept in
    the database); its revision is the hash of that text.
    """
    env = os.environ if env is None else env
    source = Path(path) if path is not None else BUNDLED_FLOW
    file = str(source)
    if text is None:
        text = read_text(source)
    # A Flow is immutable: the same text read from the same file, with the same contact overrides
    # in the environment, is the same Flow (a server's revisions, each test's app, every CLI command).
    known = _LOADED.get((file, text))
    if known is not None and all(env.get(var, "") == value for var, value in known[1]):
        return known[0]
    flow = _build(source, text, env)
    overrides = tuple((c.env, env.get(c.env, "")) for c in flow.contacts.values() if c.env)
    with _LOADED_LOCK:
        _LOADED[(file, text)] = (flow, overrides)
        while len(_LOADED) > _LOADED_MAX:
            del _LOADED[next(iter(_LOADED))]  # the oldest first
    return flow


# Flows already built, by (file, text): the flow and the contact overrides it was built with.
_LOADED: dict[tuple[str, str], tuple[Flow, tuple[tuple[str, str], ...]]] = {}
_LOADED_MAX = 32
_LOADED_LOCK = threading.Lock()


def _build(source: Path, text: str, env: Mapping[str, str]) -> Flow:
    file = str(source)
    doc = load_yaml(source, text)
    try:
        shape = flowfile.FlowFile.model_validate(doc)
    except ValidationError as exc:
        raise FlowError(_sorted(problems_of(exc, doc, file))) from None
    b = _Builder(shape, doc, file, env)
    settings = b.settings
    flow = Flow(
        name=shape.flow or source.stem,
        path=file,
        settings=settings,
        contacts=MappingProxyType(b.contacts()),
        schedules=MappingProxyType(b.schedules(settings.timezone)),
        allowances=MappingProxyType(b.allowances(settings.timezone)),
        programme=b.programme(),
        callbacks=b.callbacks(settings),
        properties=Properties(tuple(shape.properties.anonymous), MappingProxyType(dict(shape.properties.budgets))),
        nodes=MappingProxyType({node_id: b.node(node_id, raw) for node_id, raw in shape.nodes.items()}),
        revision=revision_of(text),
    )
    problems = b.problems + validate(flow, doc, file)
    if problems:
        raise FlowError(_sorted(problems))
    return flow


def _sorted(problems: list[FlowProblem]) -> list[FlowProblem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.node or ""))
