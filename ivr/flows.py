"""Load a flow file into a validated, immutable Flow; every problem names file, line and node."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import prompts, schedule
from .errors import FlowError, FlowProblem
from .model import (
    DIAL_STATUSES,
    PERIODS,
    Allowance,
    AllowanceRule,
    AnyNode,
    Ask,
    Branch,
    Contact,
    Failures,
    Flow,
    Hangup,
    Menu,
    Message,
    Option,
    Programme,
    Register,
    Settings,
    Transfer,
)
from .validate import validate
from .yamlsrc import Located, load_yaml

BUNDLED_FLOW = Path(__file__).resolve().parent.parent / "flows" / "dms_hotline.yaml"
DTMF_KEYS = frozenset("0123456789#")

# Standard phrases; a flow's `texts:` overrides any of them.
DEFAULT_TEXTS: Mapping[str, str] = MappingProxyType(
    {
        "not_recognised": "Выбор не распознан.",
        "rejected_digits": "Вы ввели: {value}.",
        "no_input": "Я вас не слышу.",
        "to_fallback": "Соединяю с оператором.",
        "confirm_digits": "Вы ввели: {value}. Если верно, нажмите 1. Чтобы ввести заново, нажмите 2.",
        "confirm_speech": "Вы сказали: {value}. Если верно, нажмите 1. Чтобы повторить, нажмите 2.",
        "confirm_phone": (
            "Ваш номер телефона: {value}. Если по нему можно перезвонить, нажмите 1. "
            "Чтобы ввести другой номер, нажмите 2."
        ),
        "lost_call": "Извините, связь с меню прервалась. Возвращаю вас в главное меню.",
        "technical_failure": ("Извините, произошёл технический сбой. Соединяю с оператором."),
        "too_long": "Извините, звонок длится слишком долго. Пожалуйста, позвоните ещё раз. До свидания.",
        "goodbye_after_failure": ("Не удалось соединить с оператором. Пожалуйста, перезвоните позже. До свидания."),
    }
)

NODE_FIELDS: Mapping[str, frozenset[str]] = {
    "menu": frozenset({"prompt", "reprompt", "options", "invalid", "no_input", "speech"}),
    "message": frozenset({"say", "next"}),
    "ask": frozenset(
        {
            "input",
            "store",
            "prompt",
            "confirm",
            "retry",
            "next",
            "invalid",
            "no_input",
            "min_length",
            "max_length",
            "finish_on_key",
            "hints",
            "timeout",
        }
    ),
    "branch": frozenset({"on", "cases", "default"}),
    "allowance": frozenset({"allowance", "key", "request", "fields", "granted", "used_up"}),
    "register": frozenset({"request", "fields", "contact", "next"}),
    "transfer": frozenset({"contact", "say", "timeout", "outcomes", "anonymous"}),
    "hangup": frozenset({"say"}),
}


_SETTINGS_KEYS = (
    "voice",
    "language",
    "timezone",
    "start",
    "main_menu",
    "operator",
    "attempts",
    "gather_timeout",
    "dial_timeout",
)
# A transfer target Twilio can dial: a number in E.164, or a SIP or Twilio Client address.
_DIALABLE = re.compile(r"\+[1-9][0-9]{6,14}|sip:\S+@\S+|client:[A-Za-z0-9_.-]+")

SCHEDULE_FIELDS = frozenset(
    {
        "timezone",
        "calendar",
        "hours",
        "working_on",
        "closed_on",
        "moved_workday",
        "overrides",
        "shorten_before_holidays",
    }
)


class _Reader:
    """Collects problems while building the model, so one run reports them all."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)
        self.problems: list[FlowProblem] = []

    def problem(self, line: int | None, node: str | None, message: str) -> None:
        self.problems.append(FlowProblem(self.file, line, node, message))

    def section(self, doc: Located, key: str, required: bool = True) -> Located:
        value = doc.get(key)
        if isinstance(value, Located):
            return value
        if value is not None or required:
            self.problem(doc.line_of(key), None, f"`{key}` must be a mapping")
        empty = Located()
        empty.line, empty.key_lines = doc.line_of(key), {}
        return empty

    def get(
        self,
        m: Located,
        key: str,
        kind: type | tuple[type, ...],
        node: str | None,
        default: Any = ...,
    ) -> Any:
        if key not in m or m[key] is None:
            if default is ...:
                self.problem(m.line, node, f"missing `{key}`")
                return None
            return default
        value = m[key]
        if isinstance(value, bool) and kind is int:
            self.problem(m.line_of(key), node, f"`{key}` must be a number, not {value!r}")
            return default if default is not ... else None
        if not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.problem(m.line_of(key), node, f"`{key}` must be a {want}, not {value!r}")
            return default if default is not ... else None
        return value

    def text(self, m: Located, key: str, node: str | None, default: Any = ...) -> Any:
        value = self.get(m, key, str, node, default)
        if isinstance(value, str):
            if not value.strip():
                self.problem(m.line_of(key), node, f"`{key}` is empty: the caller would hear nothing")
            try:
                prompts.placeholders(value)
            except ValueError as exc:
                self.problem(m.line_of(key), node, f"`{key}` has a broken placeholder: {exc}")
        return value

    def unknown_keys(self, m: Located, known: Iterable[str], what: str) -> None:
        """Report each key of `m` that is not `known`, once, at its line, with a likely fix."""
        from .validate import did_you_mean

        for key in m:
            if key not in known:
                hint = did_you_mean(str(key), known) or f"; known: {', '.join(sorted(known))}"
                self.problem(m.line_of(key), None, f"{what}: unknown key {key!r}{hint}")

    def check(self, m: Located, key: str, node: str | None, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(m[key])
        except ValueError as exc:
            self.problem(m.line_of(key), node, f"`{key}`: {exc}")
            return None


def _settings(r: _Reader, doc: Located) -> Settings:
    s = r.section(doc, "settings")
    texts = dict(DEFAULT_TEXTS)
    t = r.section(doc, "texts", required=False)
    for key in t:
        if key not in DEFAULT_TEXTS:
            r.problem(t.line_of(key), None, f"unknown text {key!r}; known: {', '.join(DEFAULT_TEXTS)}")
        else:
            texts[key] = r.text(t, key, None, DEFAULT_TEXTS[key])
    # A bad zone is reported; UTC stands in so the rest of the file can still be checked.
    r.unknown_keys(s, _SETTINGS_KEYS, "settings")
    tz = r.check(s, "timezone", None, schedule.check_timezone) if "timezone" in s else "UTC"
    ranges = {"attempts": (3, 1, 10), "gather_timeout": (5, 1, 60), "dial_timeout": (30, 5, 600)}
    numbers = {}
    for key, (default, low, high) in ranges.items():
        value = r.get(s, key, int, None, default)
        if value is not None and not low <= value <= high:
            r.problem(s.line_of(key), None, f"settings.{key}: {value} is not from {low} to {high}")
            value = default  # reported here once, not again at every node that relies on it
        numbers[key] = value or default
    return Settings(
        voice=r.get(s, "voice", str, None, "Polly.Tatyana"),
        language=r.get(s, "language", str, None, "ru-RU"),
        timezone=tz or "UTC",
        start=r.get(s, "start", str, None) or "",
        main_menu=r.get(s, "main_menu", str, None) or "",
        operator=r.get(s, "operator", str, None, "") or "",
        attempts=numbers["attempts"],
        gather_timeout=numbers["gather_timeout"],
        dial_timeout=numbers["dial_timeout"],
        texts=MappingProxyType(texts),
    )


def _contacts(r: _Reader, doc: Located, env: Mapping[str, str]) -> dict[str, Contact]:
    result = {}
    section = r.section(doc, "contacts")
    for name, raw in section.items():
        var = f"IVR_CONTACT_{name.upper()}"
        if isinstance(raw, str):
            target = raw
        elif isinstance(raw, Located):
            target = r.get(raw, "number", str, name) or ""
            var = r.get(raw, "env", str, name, var)
        else:
            r.problem(section.line_of(name), None, f"contact {name!r} must be a number or a mapping")
            continue
        overridden = env.get(var, "").strip()
        if isinstance(raw, Located):
            r.unknown_keys(raw, ("number", "env"), f"contact {name!r}")
        if not target.strip() and not overridden:
            r.problem(section.line_of(name), None, f"contact {name!r} has no number")
        elif not _DIALABLE.fullmatch(overridden or target.strip()):
            said = (
                f"{var}={overridden!r} (overriding contact {name!r})" if overridden else f"contact {name!r}: {target!r}"
            )
            r.problem(
                section.line_of(name), None, f"{said} is not dialable: use E.164 like +78002001441, or sip:, client:"
            )
        result[name] = Contact(name=name, target=(overridden or target).strip(), env=var)
    return result


def _named(r: _Reader, doc: Located, key: str, what: str) -> Iterator[tuple[str, Located]]:
    """(name, mapping) of an optional section of named mappings; anything else is reported."""
    section = r.section(doc, key, required=False)
    for name, raw in section.items():
        if isinstance(raw, Located):
            yield name, raw
        else:
            r.problem(section.line_of(name), None, f"{what} {name!r} must be a mapping")


def _schedules(r: _Reader, doc: Located, default_tz: str) -> dict[str, schedule.Schedule]:
    result = {}
    for name, raw in _named(r, doc, "schedules", "schedule"):
        tz = r.check(raw, "timezone", None, schedule.check_timezone) if "timezone" in raw else default_tz
        hours = r.section(raw, "hours")
        weekly = {}
        for day in hours:
            if day not in schedule.WEEKDAYS:
                r.problem(
                    hours.line_of(day),
                    None,
                    f"schedule {name!r}: unknown weekday {day!r}; use {', '.join(schedule.WEEKDAYS)}",
                )
                continue
            intervals = r.check(hours, day, None, schedule.parse_intervals)
            if intervals is not None:
                weekly[schedule.WEEKDAYS.index(day)] = intervals
        moved = weekly.get(0, ())
        if "moved_workday" in raw:
            moved = r.check(raw, "moved_workday", None, schedule.parse_intervals) or ()
        overrides = {}
        raw_overrides = r.section(raw, "overrides", required=False)
        for day_text, value in raw_overrides.items():
            try:
                overrides[schedule.parse_date(day_text)] = schedule.parse_day_hours(value)
            except ValueError as exc:
                r.problem(raw_overrides.line_of(day_text), None, f"schedule {name!r}: override {day_text}: {exc}")
        for key in raw:
            if key not in SCHEDULE_FIELDS:
                known = ", ".join(sorted(SCHEDULE_FIELDS))
                r.problem(raw.line_of(key), None, f"schedule {name!r}: unknown field {key!r}; known: {known}")
        result[name] = schedule.Schedule(
            name=name,
            timezone=tz or default_tz,
            weekly=MappingProxyType(weekly),
            country=r.check(raw, "calendar", None, schedule.check_country) if "calendar" in raw else None,
            working_on=(r.check(raw, "working_on", None, schedule.parse_dates) or frozenset())
            if "working_on" in raw
            else frozenset(),
            closed_on=(r.check(raw, "closed_on", None, schedule.parse_dates) or frozenset())
            if "closed_on" in raw
            else frozenset(),
            moved_workday=moved,
            overrides=MappingProxyType(overrides),
            shorten_before_holidays=bool(r.get(raw, "shorten_before_holidays", bool, None, False)),
        )
    return result


def _allowances(r: _Reader, doc: Located, default_tz: str) -> dict[str, AllowanceRule]:
    result = {}
    for name, raw in _named(r, doc, "allowances", "allowance"):
        r.unknown_keys(raw, ("limit", "period", "anchor", "timezone"), f"allowance {name!r}")
        limit = r.get(raw, "limit", int, None, 1)
        if limit is not None and limit < 1:
            r.problem(raw.line_of("limit"), None, f"allowance {name!r}: limit must be at least 1")
        period = r.get(raw, "period", str, None, "policy_year")
        if period not in PERIODS:
            r.problem(
                raw.line_of("period"),
                None,
                f"allowance {name!r}: period {period!r} is not one of {', '.join(PERIODS)}",
            )
        anchor = str(r.get(raw, "anchor", str, None, "01-01"))
        try:
            month, day = (int(x) for x in anchor.split("-"))
            datetime(2001, month, day)
        except ValueError:
            r.problem(raw.line_of("anchor"), None, f"allowance {name!r}: anchor {anchor!r} is not MM-DD")
            month, day = 1, 1
        tz = r.check(raw, "timezone", None, schedule.check_timezone) if "timezone" in raw else default_tz
        result[name] = AllowanceRule(name, limit or 1, period or "policy_year", month, day, tz or default_tz)
    return result


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):  # YAML reads 2020-12-01 as a date: say it as written, not as Python
        raise ValueError(f"{value.isoformat()} needs a time and a UTC offset, like {value.isoformat()}T00:00:00+03:00")
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date-time like 2020-12-01T00:00:00+03:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} needs a UTC offset, like {moment.isoformat()}+03:00")
    return moment


def _programme(r: _Reader, doc: Located) -> Programme | None:
    if "programme" not in doc:
        return None
    p = r.section(doc, "programme")
    r.unknown_keys(p, ("start", "end", "inactive"), "programme")
    for key in ("start", "end"):
        if key not in p:
            r.problem(p.line, None, f"programme: missing `{key}`")
    start = r.check(p, "start", None, _moment) if "start" in p else None
    end = r.check(p, "end", None, _moment) if "end" in p else None
    inactive = r.get(p, "inactive", str, None) or ""
    if start is None or end is None:
        return None
    if end <= start:
        r.problem(p.line_of("end"), None, "programme: `end` must come after `start`")
    return Programme(start=start, end=end, inactive=inactive)


def _failures(r: _Reader, m: Located, key: str, node: str, settings: Settings) -> Failures:
    raw = m.get(key)
    limit, fallback = settings.attempts, settings.operator
    if isinstance(raw, Located):
        limit = r.get(raw, "limit", int, node, limit)
        fallback = r.get(raw, "fallback", str, node, fallback)
    elif raw is not None:
        r.problem(m.line_of(key), node, f"`{key}` must be a mapping with `limit` and `fallback`")
    if not fallback:
        what = "silence" if key == "no_input" else "wrong input"
        r.problem(m.line, node, f"no {what} handling: set `{key}.fallback` or settings.operator")
    if limit is not None and limit < 1:
        r.problem(m.line_of(key), node, f"`{key}.limit` must be at least 1")
    return Failures(limit=limit or 1, fallback=fallback or "")


def _options(r: _Reader, m: Located, node: str) -> tuple[Option, ...]:
    raw = r.get(m, "options", Located, node)
    if raw is None:
        return ()
    options = []
    for key, value in raw.items():
        if key == "*":
            r.problem(raw.line_of(key), node, "key '*' is reserved: it repeats the menu")
            continue
        if key not in DTMF_KEYS:
            r.problem(raw.line_of(key), node, f"key {key!r} is not a phone key (0-9, #)")
            continue
        if isinstance(value, str):
            options.append(Option(key=key, to=value))
        elif isinstance(value, Located):
            words = value.get("say", [])
            if isinstance(words, str):
                words = [words]
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                r.problem(value.line_of("say"), node, f"key {key!r}: `say` must be a list of words")
                words = []
            to = r.get(value, "to", str, node) or ""
            options.append(Option(key=key, to=to, keywords=tuple(w.lower() for w in words)))
        else:
            r.problem(
                raw.line_of(key),
                node,
                f"key {key!r} must lead to a node name or {{to: ..., say: [...]}}",
            )
    if not options:
        r.problem(m.line_of("options"), node, "a menu needs at least one option")
    return tuple(options)


def _strings(r: _Reader, m: Located, key: str, node: str) -> tuple[str, ...]:
    raw = m.get(key, [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        r.problem(m.line_of(key), node, f"`{key}` must be a list of names")
        return ()
    return tuple(raw)


def _node(r: _Reader, node_id: str, m: Located, line: int, settings: Settings) -> AnyNode | None:
    kind = str(m.get("kind"))
    if kind not in NODE_FIELDS:
        r.problem(line, node_id, f"unknown kind {kind!r}; use one of {', '.join(NODE_FIELDS)}")
        return None
    for key in m:
        if key != "kind" and key not in NODE_FIELDS[kind]:
            known = ", ".join(sorted(NODE_FIELDS[kind]))
            r.problem(m.line_of(key), node_id, f"unknown field {key!r} for a {kind}; known: {known}")
    m.line = line  # problems with the node as a whole point at its name
    n = node_id
    base: dict[str, Any] = {"id": node_id, "line": line}
    if kind == "menu":
        prompt = r.text(m, "prompt", n) or ""
        return Menu(
            **base,
            prompt=prompt,
            reprompt=r.text(m, "reprompt", n, prompt) or prompt,
            options=_options(r, m, n),
            invalid=_failures(r, m, "invalid", n, settings),
            no_input=_failures(r, m, "no_input", n, settings),
            speech=r.get(m, "speech", bool, n, True),
        )
    if kind == "message":
        return Message(**base, say=r.text(m, "say", n) or "", next=r.get(m, "next", str, n) or "")
    if kind == "ask":
        source = r.get(m, "input", str, n)
        if source not in ("digits", "speech", "caller_number"):
            r.problem(m.line_of("input"), n, f"`input` {source!r} is not digits, speech or caller_number")
            source = "digits"
        prompt = r.text(m, "prompt", n) or ""
        ask = Ask(
            **base,
            input=source,
            store=r.get(m, "store", str, n) or "",
            prompt=prompt,
            confirm=r.get(m, "confirm", bool, n, source != "speech"),
            retry=r.text(m, "retry", n, prompt) or prompt,
            next=r.get(m, "next", str, n) or "",
            invalid=_failures(r, m, "invalid", n, settings),
            no_input=_failures(r, m, "no_input", n, settings),
            min_length=r.get(m, "min_length", int, n, 1),
            max_length=r.get(m, "max_length", int, n, 32),
            finish_on_key=r.get(m, "finish_on_key", str, n, "#"),
            hints=_strings(r, m, "hints", n),
            timeout=r.get(m, "timeout", int, n, None),
        )
        if ask.min_length > ask.max_length:
            r.problem(m.line_of("min_length"), n, "`min_length` is greater than `max_length`")
        return ask
    if kind == "branch":
        on = str(r.get(m, "on", str, n) or "")
        what, _, subject = on.partition(":")
        if what not in ("schedule", "programme", "value") or (what != "programme") != bool(subject):
            r.problem(m.line_of("on"), n, f"`on` {on!r} must be schedule:NAME, programme or value:NAME")
        cases = r.get(m, "cases", Located, n) or {}
        bad = [k for k, v in cases.items() if not isinstance(v, str)]
        for k in bad:
            r.problem(cases.line_of(k), n, f"case {k!r} must name a node")  # type: ignore[union-attr]
        return Branch(
            **base,
            on=what,
            subject=subject,
            cases=MappingProxyType({k: v for k, v in cases.items() if k not in bad}),
            default=r.get(m, "default", str, n, None),
        )
    if kind == "allowance":
        return Allowance(
            **base,
            allowance=r.get(m, "allowance", str, n) or "",
            key=r.get(m, "key", str, n) or "",
            request=r.get(m, "request", str, n) or "",
            fields=_strings(r, m, "fields", n),
            granted=r.get(m, "granted", str, n) or "",
            used_up=r.get(m, "used_up", str, n) or "",
        )
    if kind == "register":
        return Register(
            **base,
            request=r.get(m, "request", str, n) or "",
            fields=_strings(r, m, "fields", n),
            contact=r.get(m, "contact", str, n, None),
            next=r.get(m, "next", str, n) or "",
        )
    if kind == "transfer":
        raw = r.get(m, "outcomes", Located, n) or Located()
        outcomes = {}
        for status, target in raw.items():
            if status not in (*DIAL_STATUSES, "otherwise"):
                r.problem(
                    raw.line_of(status),
                    n,
                    f"unknown dial outcome {status!r}; use {', '.join(DIAL_STATUSES)} or otherwise",
                )
            elif not isinstance(target, str):
                r.problem(raw.line_of(status), n, f"outcome {status!r} must name a node")
            else:
                outcomes[status] = target
        missing = [s for s in DIAL_STATUSES if s != "answered" and s not in outcomes]
        if missing and "otherwise" not in outcomes:
            r.problem(
                m.line_of("outcomes"),
                n,
                f"dial outcomes {', '.join(missing)} lead nowhere: add them or `otherwise`",
            )
        return Transfer(
            **base,
            contact=r.get(m, "contact", str, n) or "",
            say=r.text(m, "say", n, "") or "",
            timeout=r.get(m, "timeout", int, n, settings.dial_timeout),
            outcomes=MappingProxyType(outcomes),
            anonymous=r.get(m, "anonymous", bool, n, False),
        )
    return Hangup(**base, say=r.text(m, "say", n) or "")


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Flow:
    """Read and validate a flow file; raises FlowError listing every problem found."""
    env = os.environ if env is None else env
    source = Path(path) if path is not None else BUNDLED_FLOW
    r = _Reader(source)
    doc = load_yaml(source)
    for key in doc:
        if key not in (
            "flow",
            "settings",
            "texts",
            "contacts",
            "schedules",
            "allowances",
            "programme",
            "nodes",
        ):
            r.problem(doc.line_of(key), None, f"unknown section {key!r}")
    settings = _settings(r, doc)
    nodes_raw = r.section(doc, "nodes")
    nodes: dict[str, AnyNode] = {}
    for node_id, raw in nodes_raw.items():
        if not isinstance(raw, Located):
            r.problem(nodes_raw.line_of(node_id), node_id, "a node must be a mapping with a `kind`")
            continue
        node = _node(r, node_id, raw, nodes_raw.line_of(node_id), settings)
        if node is not None:
            nodes[node_id] = node
    if not nodes:
        r.problem(nodes_raw.line, None, "the flow has no nodes")
    flow = Flow(
        name=str(doc.get("flow") or source.stem),
        path=str(source),
        settings=settings,
        contacts=MappingProxyType(_contacts(r, doc, env)),
        schedules=MappingProxyType(_schedules(r, doc, settings.timezone)),
        allowances=MappingProxyType(_allowances(r, doc, settings.timezone)),
        programme=_programme(r, doc),
        nodes=MappingProxyType(nodes),
    )
    problems = validate(flow, doc, r.file)
    r.problems.extend(problems)
    if r.problems:
        raise FlowError(sorted(r.problems, key=lambda p: (p.line or 0, p.node or "")))
    return flow
