"""The flow engine: a pure step function from (flow, call state, caller input, now) to a Turn.

Nothing here touches Flask, the database or the wall clock. Where a node needs the outside
world (registering a request, spending an allowance) the engine returns a Turn whose
`effect` says what to do; the caller performs it and hands the outcome to `resume`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ivr.engine import prompts, speech
from ivr.engine.understand import match_speech, normalise_phone, usable_caller, yes_no
from ivr.flow.model import (
    EMPTY,
    Allowance,
    Ask,
    Branch,
    Flow,
    Hangup,
    Menu,
    Message,
    Register,
    Transfer,
)

_MAX_HOPS = 200  # nodes passed in one turn; validation forbids loops, this guards regardless


@dataclass(frozen=True)
class CallState:
    """Where a call is in the flow and what it has collected."""

    node: str
    phase: Literal["entry", "confirm"] = "entry"
    invalid: int = 0
    silence: int = 0
    values: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    spoken: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    pending: str = ""
    anonymous: bool = False

    def pack(self) -> bytes:
        """Compact bytes for a sealed action URL: fields at their defaults and spoken forms equal to
        the value are left out (URLs stay short even with a name and complaints collected)."""
        data: dict[str, Any] = {"n": self.node}
        for short, name in _PACKED:
            value = getattr(self, name)
            if value != _DEFAULTS[name]:
                data[short] = value
        if self.values:
            data["v"] = dict(self.values)
        spoken = {k: v for k, v in self.spoken.items() if self.values.get(k) != v}
        if spoken:
            data["s"] = spoken
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def unpack(cls, raw: bytes) -> CallState:
        """The state `pack` wrote (raises ValueError, KeyError or TypeError on anything else)."""
        data = json.loads(raw)
        values = {str(k): str(v) for k, v in data.get("v", {}).items()}
        spoken = values | {str(k): str(v) for k, v in data.get("s", {}).items()}
        fields = {name: data[short] for short, name in _PACKED if short in data}
        return cls(node=str(data["n"]), values=MappingProxyType(values), spoken=MappingProxyType(spoken), **fields)

    def at(self, node: str, **reset: Any) -> CallState:
        """The same state at another node, with `reset` fields changed too."""
        unknown = reset.keys() - _DEFAULTS.keys()
        if unknown:
            raise TypeError(f"CallState has no field {sorted(unknown)[0]!r} to reset")
        return replace(self, node=node, **reset)

    def remember(self, name: str, value: str, spoken: str | None = None) -> CallState:
        values = MappingProxyType({**self.values, name: value})
        said = MappingProxyType({**self.spoken, name: value if spoken is None else spoken})
        return replace(self, values=values, spoken=said)


_PACKED = (("p", "phase"), ("i", "invalid"), ("q", "silence"), ("w", "pending"), ("a", "anonymous"))
_DEFAULTS: dict[str, Any] = {"phase": "entry", "invalid": 0, "silence": 0, "pending": "", "anonymous": False}


@dataclass(frozen=True)
class Input:
    """What the caller did: pressed keys, spoke, stayed silent, or how a transfer ended."""

    kind: Literal["digits", "speech", "silence", "dial"]
    text: str = ""
    caller: str = ""  # the caller's number as Twilio sends it in From


@dataclass(frozen=True)
class Gather:
    """Wait for keys or speech while saying `prompt` (the caller may interrupt it)."""

    prompt: tuple[str, ...]
    input: str
    timeout: int
    num_digits: int | None = None
    finish_on_key: str = ""
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dial:
    """Connect the caller to a target and come back with the outcome."""

    target: str
    timeout: int


@dataclass(frozen=True)
class End:
    """Hang up."""


@dataclass(frozen=True)
class RequestEffect:
    """Register a request of `kind` with `data`; the outcome carries its reference."""

    kind: str
    data: Mapping[str, str]


@dataclass(frozen=True)
class SpendEffect:
    """Spend one use of an allowance for `key` in [period_start, period_end) and register `request`."""

    allowance: str
    limit: int
    key: str
    period_start: datetime
    period_end: datetime
    request: RequestEffect


@dataclass(frozen=True)
class EffectOutcome:
    """What performing an effect gave: a reference, or a refusal with the time of the last use."""

    granted: bool
    reference: str | None = None
    used_at: datetime | None = None


Effect = RequestEffect | SpendEffect


@dataclass(frozen=True)
class Turn:
    """The engine's answer: what to say, then what to do; or an effect to perform first."""

    state: CallState
    say: tuple[str, ...] = ()
    action: Gather | Dial | End | None = None
    effect: Effect | None = None
    path: tuple[str, ...] = field(default=())


Closures = Mapping[str, str]  # schedule name -> reason of an emergency closure


@dataclass(frozen=True)
class World:
    """What the engine knows of the outside world: the time, and schedules closed by an operator."""

    now: datetime
    closures: Closures = field(default_factory=lambda: EMPTY)


# ---------------------------------------------------------------- entry points


def start(flow: Flow, now: datetime, caller: str = "", closures: Closures = EMPTY) -> Turn:
    """The first turn of a new call."""
    return _advance(flow, CallState(node=flow.settings.start), (), (), World(now, closures), caller)


def call_back(
    flow: Flow, line: str, reference: str, last_attempt: bool, machine: bool, now: datetime, closures: Closures = EMPTY
) -> Turn:
    """The first turn of a call the hotline placed to answer call-back request `reference` on `line`:
    the line's outbound start node, or the answering machine's node."""
    callbacks = flow.callbacks
    if callbacks is None:
        return lost(flow, now, "", closures)
    start = callbacks.machine if machine else callbacks.lines.get(line) or callbacks.lines[callbacks.default_line]
    state = CallState(node=start).remember("reference", reference, speech.digits(reference))
    state = state.remember("last_attempt", "yes" if last_attempt else "no")
    return _advance(flow, state, (), (), World(now, closures), "")


def lost(flow: Flow, now: datetime, caller: str = "", closures: Closures = EMPTY) -> Turn:
    """A call the server has no state for: apologise and offer the main menu."""
    say = (flow.text("lost_call"),)
    return _advance(flow, CallState(node=flow.settings.main_menu), say, (), World(now, closures), caller)


def repeat(flow: Flow, state: CallState, now: datetime, caller: str = "", closures: Closures = EMPTY) -> Turn:
    """Ask the current question again, changing nothing (a stale or out-of-order webhook)."""
    if state.node not in flow.nodes:
        return lost(flow, now, caller, closures)
    node = flow.nodes[state.node]
    if isinstance(node, Ask):
        return _ask_turn(flow, node, state, (), ())
    if isinstance(node, Menu):
        return _menu_turn(flow, node, state, (), ())
    return _advance(flow, state, (), (), World(now, closures), caller)


def step(flow: Flow, state: CallState, given: Input, now: datetime, closures: Closures = EMPTY) -> Turn:
    """React to the caller's input at the node the call waits in."""
    world = World(now, closures)
    if state.node not in flow.nodes:
        return lost(flow, now, given.caller, closures)
    node = flow.nodes[state.node]
    match node:
        case Menu():
            return _on_menu(flow, node, state, given, world)
        case Ask():
            return _on_ask(flow, node, state, given, world)
        case Transfer():
            status = given.text if given.kind == "dial" else ""
            if status == "answered":
                status = "completed"
            target = node.outcomes.get(status) or node.outcomes.get("otherwise") or node.outcomes["failed"]
            return _goto(flow, state, target, (), (node.id,), world, given.caller)
        case _:
            return _advance(flow, state, (), (), world, given.caller)


def resume(
    flow: Flow, turn: Turn, outcome: EffectOutcome, now: datetime, caller: str = "", closures: Closures = EMPTY
) -> Turn:
    """Go on after the effect of `turn` was performed with `outcome`."""
    node = flow.nodes[turn.state.node]
    state = turn.state
    if outcome.reference is not None:
        state = state.remember("reference", outcome.reference, speech.digits(outcome.reference))
    if isinstance(node, Allowance):
        if outcome.granted:
            target = node.granted
        else:
            zone = ZoneInfo(flow.allowances[node.allowance].timezone)
            period_end = turn.effect.period_end if isinstance(turn.effect, SpendEffect) else now
            used = speech.full_date(outcome.used_at.astimezone(zone).date()) if outcome.used_at else ""
            state = state.remember("used_on", used).remember(
                "next_period", speech.full_date(period_end.astimezone(zone).date())
            )
            target = node.used_up
    elif isinstance(node, Register):
        target = node.next
    else:
        raise ValueError(f"node {node.id!r} has no effect to resume")
    return _goto(flow, state, target, turn.say, turn.path, World(now, closures), caller)


# ---------------------------------------------------------------- walking


def _goto(
    flow: Flow,
    state: CallState,
    target: str,
    say: tuple[str, ...],
    path: tuple[str, ...],
    world: World,
    caller: str,
) -> Turn:
    fresh = state.at(target, phase="entry", invalid=0, silence=0, pending="")
    return _advance(flow, fresh, say, path, world, caller)


def _advance(
    flow: Flow, state: CallState, say: tuple[str, ...], path: tuple[str, ...], world: World, caller: str
) -> Turn:
    """Walk from state.node through nodes that need no caller input, up to one that does."""
    for _ in range(_MAX_HOPS):
        node = flow.nodes[state.node]
        path = (*path, node.id)
        match node:
            case Message():
                say = (*say, _render(flow, node.say, state))
                state = state.at(node.next)
            case Branch():
                state = state.at(_branch(flow, node, state, world))
                if isinstance(node, Branch) and node.on == "schedule" and state.node == node.cases.get("closed"):
                    state = _remember_opening(flow, node, state, world)
            case Register() | Allowance() if flow.programme is not None and not flow.programme.active(world.now):
                state = state.at(flow.programme.inactive)
            case Register():
                return Turn(state, say, None, _request(flow, node, state), path)
            case Allowance():
                return Turn(state, say, None, _spend(flow, node, state, world), path)
            case Menu():
                return _menu_turn(flow, node, state, say, path)
            case Ask():
                if node.input == "caller_number" and state.phase == "entry" and not state.pending:
                    number = usable_caller(caller)
                    if number:
                        state = replace(state, phase="confirm", pending=number)
                return _ask_turn(flow, node, state, say, path)
            case Transfer():
                state = replace(state.remember("last_transfer", node.id), anonymous=state.anonymous or node.anonymous)
                if node.say:
                    say = (*say, _render(flow, node.say, state))
                return Turn(state, say, Dial(flow.contacts[node.contact].target, node.timeout), None, path)
            case Hangup():
                return Turn(state, (*say, _render(flow, node.say, state)), End(), None, path)
    raise RuntimeError(f"more than {_MAX_HOPS} nodes without waiting for the caller: {' -> '.join(path[-8:])}")


def _branch(flow: Flow, node: Branch, state: CallState, world: World) -> str:
    if node.on == "schedule":
        emergency = world.closures.get(node.subject)
        if emergency is not None and "emergency" in node.cases:
            return node.cases["emergency"]
        case = "open" if flow.schedules[node.subject].is_open(world.now, emergency) else "closed"
    elif node.on == "programme":
        case = "active" if flow.programme is not None and flow.programme.active(world.now) else "inactive"
    else:
        case = state.values.get(node.subject, "")
    target = node.cases.get(case) or node.default
    assert target is not None, "validation guarantees a case or a default"
    return target


def _remember_opening(flow: Flow, node: Branch, state: CallState, world: World) -> CallState:
    schedule = flow.schedules[node.subject]
    opening = schedule.next_opening(world.now)
    if opening is None:
        return state.remember("next_opening", "")
    return state.remember("next_opening", speech.moment(opening, world.now.astimezone(schedule.zone)))


def _request(flow: Flow, node: Register | Allowance, state: CallState) -> RequestEffect:
    data = {name: state.values.get(name, "") for name in node.fields}
    if isinstance(node, Register) and node.contact:
        contact = node.contact
        if contact == "@last_transfer":
            last = flow.nodes.get(state.values.get("last_transfer", ""))
            contact = last.contact if isinstance(last, Transfer) else flow.settings.operator
        data["contact"] = contact
    return RequestEffect(kind=node.request, data=MappingProxyType(data))


def _spend(flow: Flow, node: Allowance, state: CallState, world: World) -> SpendEffect:
    rule = flow.allowances[node.allowance]
    start, end = rule.period_at(world.now)
    return SpendEffect(rule.name, rule.limit, state.values.get(node.key, ""), start, end, _request(flow, node, state))


def _render(flow: Flow, template: str, state: CallState, **extra: str) -> str:
    contacts = {name: c.target for name, c in flow.contacts.items()}
    return prompts.render(template, {**state.spoken, **extra}, contacts)


# ---------------------------------------------------------------- menus


def _menu_turn(
    flow: Flow, node: Menu, state: CallState, say: tuple[str, ...], path: tuple[str, ...], short: bool = False
) -> Turn:
    text = _render(flow, node.reprompt if short else node.prompt, state)
    hints = tuple(w for o in node.options for w in o.keywords)
    gather = Gather(
        prompt=(text,),
        input="dtmf speech" if node.speech else "dtmf",
        timeout=flow.settings.gather_timeout,
        num_digits=1,
        hints=hints,
    )
    return Turn(state, say, gather, None, path)


def _on_menu(flow: Flow, node: Menu, state: CallState, given: Input, world: World) -> Turn:
    if given.kind == "silence":
        return _failure(flow, node, state, "silence", world, given.caller)
    if given.kind == "digits":
        key: str | None = given.text[:1]
    elif given.kind == "speech":
        key = match_speech(node, given.text)
    else:
        key = None
    if key == "*":
        return _menu_turn(flow, node, state, (), (node.id,))
    option = node.option(key) if key else None
    if option is not None:
        return _goto(flow, state, option.to, (), (node.id,), world, given.caller)
    if key == "0" and flow.settings.operator:
        return _goto(flow, state, flow.settings.operator, (), (node.id,), world, given.caller)
    return _failure(flow, node, state, "invalid", world, given.caller)


def _failure(
    flow: Flow,
    node: Menu | Ask,
    state: CallState,
    what: Literal["invalid", "silence"],
    world: World,
    caller: str,
    rejected: str = "",
) -> Turn:
    """Count a wrong answer or a silence; re-prompt (shorter after the first) or fall back.

    `rejected` digits that were not acceptable are read back, so the caller hears what went wrong.
    """
    invalid = state.invalid + (what == "invalid")
    silence = state.silence + (what == "silence")
    rule = node.invalid if what == "invalid" else node.no_input
    count = invalid if what == "invalid" else silence
    notice = flow.text("not_recognised" if what == "invalid" else "no_input")
    if count >= rule.limit or invalid + silence >= flow.settings.attempts:
        turn = _goto(flow, state, rule.fallback, (), (node.id,), world, caller)
        if rule.fallback != flow.settings.operator:
            return turn
        # One announcement of the operator: the operator's own words when it has them (then the
        # caller hears why first), else the standard phrase.
        lead = (notice,) if turn.say else (flow.text("to_fallback"),)
        return replace(turn, say=(*lead, *turn.say))
    state = replace(state, invalid=invalid, silence=silence)
    if rejected:
        notice = _render(flow, flow.text("rejected_digits"), state, value=speech.digits(rejected))
    short = invalid + silence > 1
    if isinstance(node, Menu):
        return _menu_turn(flow, node, state, (notice,), (node.id,), short=short)
    return _ask_turn(flow, node, state, (notice,), (node.id,), retry=what == "invalid" or short)


# ---------------------------------------------------------------- asking for a value


def _spoken(node: Ask, value: str) -> str:
    if node.input == "caller_number":
        return speech.phone(value)
    if node.input == "digits":
        return speech.digits(value)
    return value


def _ask_turn(
    flow: Flow, node: Ask, state: CallState, say: tuple[str, ...], path: tuple[str, ...], retry: bool = False
) -> Turn:
    timeout = node.timeout or flow.settings.gather_timeout
    if state.phase == "confirm":
        template = {"digits": "confirm_digits", "speech": "confirm_speech", "caller_number": "confirm_phone"}
        text = _render(flow, flow.text(template[node.input]), state, value=_spoken(node, state.pending))
        gather = Gather((text,), "dtmf speech", timeout, num_digits=1, hints=("да", "нет"))
    elif node.input == "speech":
        text = _render(flow, node.retry if retry else node.prompt, state)
        gather = Gather((text,), "speech", timeout, hints=node.hints)
    else:
        text = _render(flow, node.retry if retry else node.prompt, state)
        gather = Gather((text,), "dtmf", timeout, finish_on_key=node.finish_on_key)
    return Turn(state, say, gather, None, path)


def _value(node: Ask, given: Input) -> str | None:
    """The value the caller gave, cleaned, or None when it is not acceptable."""
    if node.input == "speech":
        text = " ".join(given.text.split()) if given.kind == "speech" else ""
        return text[:200] if text else None
    if given.kind != "digits":
        return None
    digits = given.text.rstrip(node.finish_on_key) if node.finish_on_key else given.text
    if not digits.isdigit() or not node.min_length <= len(digits) <= node.max_length:
        return None
    return normalise_phone(digits) if node.input == "caller_number" else digits


def _on_ask(flow: Flow, node: Ask, state: CallState, given: Input, world: World) -> Turn:
    if given.kind == "silence":
        return _failure(flow, node, state, "silence", world, given.caller)
    if state.phase == "confirm":
        answer = yes_no(given.kind, given.text)
        if answer is None:
            return _failure(flow, node, state, "invalid", world, given.caller)
        if answer:
            stored = state.remember(node.store, state.pending, _spoken(node, state.pending))
            return _goto(flow, stored, node.next, (), (node.id,), world, given.caller)
        again = replace(state, phase="entry", pending="", invalid=0, silence=0)
        return _ask_turn(flow, node, again, (), (node.id,))
    value = _value(node, given)
    if value is None:
        typed = "".join(ch for ch in given.text if ch.isdigit())[:32] if given.kind == "digits" else ""
        return _failure(flow, node, state, "invalid", world, given.caller, rejected=typed)
    if node.confirm:
        confirming = replace(state, phase="confirm", pending=value, invalid=0, silence=0)
        return _ask_turn(flow, node, confirming, (), (node.id,))
    stored = state.remember(node.store, value, _spoken(node, value))
    return _goto(flow, stored, node.next, (), (node.id,), world, given.caller)
