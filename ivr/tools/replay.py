"""Replaying the journal's calls against a candidate flow: what callers who made the same choices
would have reached.

A journal row keeps a call's path of nodes, never its values. Read with the flow of the revision
the call was on, the path gives the caller's choices: the key whose option leads to the next node
(or a wrong key or a silence, when the next node is a fallback), each transfer's outcome, each
allowance's decision, and where the caller hung up. Both the call's own revision and the candidate
are then driven by the pure engine with those choices, at the moment the call started; questions
get synthetic valid answers (never the caller's: they are not stored). Anonymous calls (the
psychologist's) keep nothing to replay and are counted apart.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.engine import core as engine
from ivr.engine.turns import Dial, EffectOutcome, End, Input, RequestEffect, SpendEffect, Turn
from ivr.flow.model import Flow
from ivr.tools.paths import SYNTHETIC_CALLER, SYNTHETIC_REFERENCE

MOST_TURNS = 200

Move = tuple[str, str]  # ("key", "2"), ("wrong", ""), ("silence", ""), ("answer", ""), ("dial", "busy"), ("hangup", "")


@dataclass(frozen=True)
class Choices:
    """What the caller of one journal row did, as far as its path tells."""

    moves: tuple[Move, ...]
    granted: tuple[bool, ...]  # each allowance's decision, in order
    problem: str = ""  # why the path cannot be read as choices (then the call is not replayed)


def choices(flow: Flow, path: list[str], facts: list[dict[str, Any]]) -> Choices:
    """The choices behind `path`, read with `flow` (the revision the call was on)."""
    dials = [str(f.get("outcome", "")) for f in facts if f.get("type") == "dial"]
    granted = tuple(bool(f.get("granted")) for f in facts if f.get("type") == "allowance")
    moves: list[Move] = []
    for here, after in zip(path, [*path[1:], None], strict=True):
        node = flow.nodes.get(here)
        if node is None:
            return Choices((), granted, f"node {here!r} is not in the call's revision")
        if not node.holds:
            continue
        if after is None:
            moves.append(("hangup", "") if node.dials() is None else ("dial", dials.pop(0) if dials else "completed"))
            break
        move = move_between(flow, here, after, dials)
        if move is None:
            return Choices((), granted, f"no choice at {here!r} leads to {after!r}")
        moves.append(move)
    return Choices(tuple(moves), granted)


def move_between(flow: Flow, here: str, after: str, dials: list[str]) -> Move | None:
    """The choice at node `here` that leads to node `after` (`dials`: the call's recorded dial
    outcomes still to read, the first of which is taken by a transfer)."""
    node = flow.nodes[here]
    if node.dials() is not None:
        outcomes = {name.removeprefix("outcomes."): t for name, t in node.targets(flow)}
        recorded = dials.pop(0) if dials else ""
        # The engine's own reading of an outcome: its case, else `otherwise`, else `failed`.
        took = outcomes.get("completed" if recorded == "answered" else recorded) or outcomes.get("otherwise")
        status = recorded if recorded and took == after else next((s for s, t in outcomes.items() if t == after), None)
        return ("dial", status) if status is not None else None
    leading = [name for name, target in node.targets(flow) if target == after]
    for name in leading:
        if name.startswith("options."):
            return ("key", name.removeprefix("options."))
        if name.startswith("key 0"):
            return ("key", "0")
        if name == "next":
            return ("answer", "")
    if "invalid.fallback" in leading:
        return ("wrong", "")
    if "no_input.fallback" in leading:
        return ("silence", "")
    return None


@dataclass(frozen=True)
class Outcome:
    """Where a driven call ended up."""

    dialled: tuple[str, ...]  # contacts, in order
    registered: tuple[str, ...]
    end: str  # "goodbye at NODE", "hung up at NODE", "stuck at NODE: why"
    stuck: bool = False

    def __str__(self) -> str:
        parts = [f"transfer to {' then '.join(self.dialled)}"] if self.dialled else []
        parts += [f"registers {', '.join(self.registered)}"] if self.registered else []
        return ", ".join([*parts, self.end])


def drive(flow: Flow, made: Choices, now: datetime) -> Outcome:
    """Drive a call through `flow` with the caller's choices `made`, at `now`."""
    moves = list(made.moves)
    granted = list(made.granted)
    dialled: list[str] = []
    registered: list[str] = []
    turn = engine.start(flow, now, SYNTHETIC_CALLER)
    waited = ""  # the node the call last waited at: a question is answered once per visit
    for _ in range(MOST_TURNS):
        node = flow.nodes[turn.state.node]
        if turn.effect is not None:
            request = turn.effect if isinstance(turn.effect, RequestEffect) else turn.effect.request
            ok = granted.pop(0) if isinstance(turn.effect, SpendEffect) and granted else True
            registered += [request.kind] if ok else []
            outcome = EffectOutcome(ok, SYNTHETIC_REFERENCE if ok else None, None if ok else now)
            turn = engine.resume(flow, turn, outcome, now, SYNTHETIC_CALLER)
            continue
        if isinstance(turn.action, End) or turn.action is None:
            return Outcome(tuple(dialled), tuple(registered), f"goodbye at {node.id}")
        if isinstance(turn.action, Dial):
            dialled.append(node.dials() or "")
            status = moves.pop(0)[1] if moves and moves[0][0] == "dial" else "completed"
            turn = engine.step(flow, turn.state, Input("dial", status, SYNTHETIC_CALLER), now)
            continue
        given = _answer(node.id, flow, turn, moves, fresh=waited != node.id or turn.state.phase == "entry")
        waited = node.id
        if isinstance(given, str):
            stuck = given.startswith("stuck")
            return Outcome(tuple(dialled), tuple(registered), given.removeprefix("stuck: "), stuck=stuck)
        turn = engine.step(flow, turn.state, given, now)
    return Outcome(tuple(dialled), tuple(registered), f"stuck at {turn.state.node}: over {MOST_TURNS} turns", True)


def _answer(here: str, flow: Flow, turn: Turn, moves: list[Move], fresh: bool) -> Input | str:
    """What the caller does at a node that asks: the next choice, a synthetic answer to a question,
    or why the call ends here (a string: "hung up at ..." or "stuck: ...")."""
    node = flow.nodes[here]
    probes = node.probes(turn.state.phase) or []
    if node.keeps() is not None:  # a question: answered with a made-up valid value
        if moves and moves[0][0] == "answer" and fresh:
            moves.pop(0)
        elif moves and moves[0][0] in ("wrong", "silence"):
            return _failed(moves.pop(0)[0], probes)
        kind, text = probes[0]
        return Input("digits" if kind == "keys" else "speech", text, SYNTHETIC_CALLER)
    if not moves:
        return f"stuck: stuck at {here}: the caller's choices ran out"
    move, key = moves.pop(0)
    if move == "hangup":
        return f"hung up at {here}"
    if move in ("wrong", "silence"):
        return _failed(move, probes)
    offered = {text for kind, text in probes if kind == "keys"}
    if move != "key" or key not in offered:
        wanted = f"key {key}" if move == "key" else f"a {move}"
        return f"stuck: stuck at {here}: the caller would give {wanted}"
    return Input("digits", key, SYNTHETIC_CALLER)


def _failed(move: str, probes: list[tuple[str, str]]) -> Input:
    if move == "silence":
        return Input("silence", "", SYNTHETIC_CALLER)
    keys = [text for kind, text in probes if kind == "keys"]
    return Input("digits", keys[-1] if keys else "#", SYNTHETIC_CALLER)  # a menu's last probe is a wrong key


@dataclass(frozen=True)
class Replayed:
    """One journal call: its outcome on its own revision and on the candidate."""

    call_sid: str
    started_at: datetime
    before: Outcome
    after: Outcome

    @property
    def verdict(self) -> str:
        if self.after.stuck:
            return "stuck"
        return "same" if str(self.before) == str(self.after) else "different"

    def to_json(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "started_at": self.started_at.isoformat(),
            "verdict": self.verdict,
            "before": str(self.before),
            "after": str(self.after),
        }


@dataclass
class Replay:
    """Every call replayed, and the calls that were not."""

    calls: list[Replayed] = field(default_factory=list)
    anonymous: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (call_sid, why)

    @property
    def counts(self) -> Counter[str]:
        return Counter(c.verdict for c in self.calls)

    @property
    def changes(self) -> Counter[tuple[str, str]]:
        return Counter((str(c.before), str(c.after)) for c in self.calls if c.verdict != "same")

    @property
    def changed(self) -> bool:
        return any(c.verdict != "same" for c in self.calls)

    def to_json(self) -> dict[str, Any]:
        return {
            "replayed": len(self.calls),
            "same": self.counts["same"],
            "different": self.counts["different"],
            "stuck": self.counts["stuck"],
            "anonymous_not_replayed": self.anonymous,
            "unreadable": [{"call_sid": sid, "why": why} for sid, why in self.unreadable],
            "changes": [{"from": a, "to": b, "calls": n} for (a, b), n in self.changes.most_common()],
            "calls": [c.to_json() for c in self.calls],
        }


def replay(rows: Iterable[Mapping[str, Any]], flow_of: Any, candidate: Flow) -> Replay:
    """Replay journal `rows` (oldest first) on `candidate`; `flow_of(revision)` gives the flow a call
    was on (None when that revision is no longer known: the candidate's reading is used instead)."""
    out = Replay()
    for row in rows:
        if row["anonymous"]:
            out.anonymous += 1
            continue
        sid = str(row["call_sid"])
        own: Flow = flow_of(row["revision"]) or candidate
        made = choices(own, json.loads(row["path"] or "[]"), json.loads(row["facts"] or "[]"))
        if made.problem:
            out.unreadable.append((sid, made.problem))
            continue
        started = row["started_at"]
        out.calls.append(Replayed(sid, started, drive(own, made, started), drive(candidate, made, started)))
    return out
