"""Every path through a flow by the caller's choices, walked with the pure engine at one moment:
the menu keys pressed, what the caller hears on the way, and where the call ends up (the service:
a transfer, or a last message; with the requests registered on the way).

Questions get synthetic valid answers (the kind's own first probe: a made-up number, "yes"), so a
path is its menu keys alone. Registrations and allowances are granted. A key that leads back to a
menu already passed on the same path is a way back, not a path of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ivr.engine import core as engine
from ivr.engine.turns import Dial, EffectOutcome, End, Gather, Input, RequestEffect, Turn
from ivr.flow.model import Flow

SYNTHETIC_CALLER = "+79030000000"  # a made-up Russian mobile number, never a real caller's
SYNTHETIC_REFERENCE = "100001"
MOST_KEYS = 8  # menu choices on one path


@dataclass(frozen=True)
class Heard:
    """One prompt on the way: its text, and whether a key press may cut it short (it is the
    question a Gather asks), or the caller listens to its end (said before the question)."""

    text: str
    interruptible: bool


@dataclass(frozen=True)
class Path:
    """One way through the flow."""

    keys: tuple[str, ...]  # the menu choices, in order
    nodes: tuple[str, ...]  # every node passed
    end: str  # the node the call ends up at: a transfer or a hang-up
    transfer: str | None  # the contact it is connected to, if any
    registered: tuple[str, ...]  # requests registered on the way
    heard: tuple[Heard, ...]
    typed: int  # digits typed in answers to questions
    answers: int  # questions answered (each waits for the caller)

    @property
    def outcome(self) -> str:
        """Where the call ends up, in words: what a change of flow is judged by."""
        end = f"transfer to {self.transfer}" if self.transfer else f"ends at {self.end}"
        return f"{end}, registers {', '.join(self.registered)}" if self.registered else end

    @property
    def label(self) -> str:
        return " ".join(self.keys) if self.keys else "(no key)"


@dataclass
class _Walking:
    turn: Turn
    keys: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    registered: tuple[str, ...] = ()
    heard: tuple[Heard, ...] = ()
    typed: int = 0
    answers: int = 0
    menus: frozenset[str] = frozenset()
    known: int = 0  # of the turn's words and nodes, how many are already counted (a resumed turn repeats them)
    known_path: int = 0


def explore(flow: Flow, now: datetime, most_keys: int = MOST_KEYS) -> list[Path]:
    """Every path from the greeting, by menu keys, at the moment `now`."""
    found: list[Path] = []
    todo = [_Walking(engine.start(flow, now, SYNTHETIC_CALLER))]
    while todo:
        walking = todo.pop()
        turn = walking.turn
        walking.nodes += tuple(
            n for i, n in enumerate(turn.path[walking.known_path :]) if i or walking.nodes[-1:] != (n,)
        )
        walking.heard += tuple(Heard(text, False) for text in turn.say[walking.known :] if text)
        if turn.effect is not None:
            effect = turn.effect if isinstance(turn.effect, RequestEffect) else turn.effect.request
            walking.registered += (effect.kind,)
            outcome = EffectOutcome(True, SYNTHETIC_REFERENCE)
            walking.turn = engine.resume(flow, turn, outcome, now, SYNTHETIC_CALLER)
            walking.known, walking.known_path = len(turn.say), len(turn.path)
            todo.append(walking)
            continue
        action = turn.action
        node = flow.nodes[turn.state.node]
        if isinstance(action, Dial | End) or action is None:
            transfer = node.dials() if isinstance(action, Dial) else None
            found.append(_path(walking, node.id, transfer))
            continue
        assert isinstance(action, Gather)
        walking.heard += tuple(Heard(text, True) for text in action.prompt if text)
        if node.id in walking.menus:  # back at a menu of this path, after registering something
            found.append(_path(walking, node.id, None))
            continue
        is_menu = node.keeps() is None
        menus = walking.menus | {node.id} if is_menu else walking.menus
        onward = 0
        for kind, text in _choices(flow, node.id, turn, len(walking.keys) < most_keys):
            given = Input("digits" if kind == "keys" else "speech", text, SYNTHETIC_CALLER)
            after = engine.step(flow, turn.state, given, now)
            if after.effect is None and isinstance(after.action, Gather) and after.state.node in menus:
                continue  # back at a menu of this path: a way back, not a path of its own
            onward += 1
            todo.append(
                _Walking(
                    turn=after,
                    keys=(*walking.keys, text) if is_menu else walking.keys,
                    nodes=walking.nodes,
                    registered=walking.registered,
                    heard=walking.heard,
                    typed=walking.typed + (0 if is_menu or kind != "keys" else len(text)),
                    answers=walking.answers + (not is_menu),
                    menus=menus,
                )
            )
        if not onward:
            found.append(_path(walking, node.id, None))  # a last message that only leads back
    return sorted(found, key=lambda p: p.keys)


def _choices(flow: Flow, node_id: str, turn: Turn, may_press: bool) -> list[tuple[str, str]]:
    """What the explorer answers at a node that waits: each key a menu offers (and 0 for the
    operator), or a question's first, valid, probe."""
    node = flow.nodes[node_id]
    probes = node.probes(turn.state.phase) or []
    if node.keeps() is not None:
        return probes[:1]
    if not may_press:
        return []
    return [(kind, text) for kind, text in probes if kind == "keys" and text in _offered(flow, node_id)]


def _offered(flow: Flow, node_id: str) -> set[str]:
    """The keys a menu offers: its options, and 0 for the operator."""
    node = flow.nodes[node_id]
    keys = {field.removeprefix("options.") for field, _ in node.targets(flow) if field.startswith("options.")}
    return keys | ({"0"} if any(field.startswith("key 0") for field, _ in node.targets(flow)) else set())


def _path(walking: _Walking, end: str, transfer: str | None) -> Path:
    return Path(
        keys=walking.keys,
        nodes=walking.nodes,
        end=end,
        transfer=transfer,
        registered=walking.registered,
        heard=walking.heard,
        typed=walking.typed,
        answers=walking.answers,
    )
