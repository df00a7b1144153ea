"""Where callers go and where they give up, node by node: `ivr report --funnel`.

From the journal only. Each call's path is read with the flow of the revision it was on: how many
calls entered each node, how they left it (by key, answer or transfer outcome, or to a fallback),
how many hung up there, and the answers that did not lead on (silences, wrong answers, repeats);
transfer outcomes per line, the most common ways through the tree, and calls by hour of the day.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ivr.flow.model import Flow
from ivr.store.report import bars, page, period_of
from ivr.store.spreadsheet import rows_to_csv
from ivr.tools.replay import Move, choices, move_between

TOP_PATHS = 5


@dataclass
class NodeFigures:
    """What calls did at one node."""

    entered: int = 0  # calls that came here at least once
    visits: int = 0
    left: Counter[str] = field(default_factory=Counter)  # how they went on
    hung_up: int = 0  # calls that ended while waiting here
    silences: int = 0
    wrong: int = 0
    repeats: int = 0

    @property
    def failed(self) -> int:
        return self.silences + self.wrong


@dataclass
class Funnel:
    """The funnel of a period."""

    since: datetime | None
    until: datetime | None
    calls: int = 0
    anonymous: int = 0
    nodes: dict[str, NodeFigures] = field(default_factory=dict)
    transfers: Counter[tuple[str, str]] = field(default_factory=Counter)  # (line, outcome)
    paths: Counter[str] = field(default_factory=Counter)
    hours: Counter[int] = field(default_factory=Counter)  # calls by hour of the day, in the flow's zone

    def rows(self) -> list[tuple[str, str, str, int]]:
        """Every figure as (section, subject, measure, count): the CSV's rows."""
        out = [("calls", "all", "calls", self.calls), ("calls", "anonymous (psychologist)", "calls", self.anonymous)]
        for node_id, f in self.nodes.items():
            out += [
                ("node", node_id, "entered", f.entered),
                ("node", node_id, "visits", f.visits),
                ("node", node_id, "hung up here", f.hung_up),
                ("node", node_id, "silences", f.silences),
                ("node", node_id, "wrong answers", f.wrong),
                ("node", node_id, "repeats", f.repeats),
            ]
            out += [("node", node_id, f"left: {how}", n) for how, n in f.left.most_common()]
        out += [("transfer", line, outcome, n) for (line, outcome), n in sorted(self.transfers.items())]
        out += [("path", way, "calls", n) for way, n in self.paths.most_common(TOP_PATHS)]
        out += [("hour", f"{hour:02d}:00", "calls", n) for hour, n in sorted(self.hours.items())]
        return out


def _label(move: Move | None, after: str) -> str:
    if move is None:
        return f"→ {after}"
    kind, value = move
    said = {"key": f"key {value}", "dial": value, "answer": "answered", "wrong": "wrong answers", "silence": "silence"}
    return f"{said.get(kind, kind)} → {after}"


def _way(moves: Iterable[Move], end: str) -> str:
    said = {
        "key": "{}",
        "dial": "dial {}",
        "answer": "answer",
        "wrong": "wrong",
        "silence": "silence",
        "hangup": "hang up",
    }
    return " · ".join([*(said[kind].format(value) for kind, value in moves), end])


def build(
    rows: Iterable[Mapping[str, Any]],
    flow_of: Callable[[str | None], Flow | None],
    current: Flow,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Funnel:
    """The funnel of journal `rows`; `flow_of(revision)` gives the flow a call was on (None: the
    current flow reads it)."""
    zone = ZoneInfo(current.settings.timezone)
    out = Funnel(since, until)
    out.nodes = {node_id: NodeFigures() for node_id in current.nodes}
    for row in rows:
        out.calls += 1
        out.hours[row["started_at"].astimezone(zone).hour] += 1
        if row["anonymous"]:
            out.anonymous += 1
            continue
        flow = flow_of(row["revision"]) or current
        path: list[str] = json.loads(row["path"] or "[]")
        facts: list[dict[str, Any]] = json.loads(row["facts"] or "[]")
        dials = [str(f.get("outcome", "")) for f in facts if f.get("type") == "dial"]
        for here in dict.fromkeys(path):
            out.nodes.setdefault(here, NodeFigures()).entered += 1
        for index, here in enumerate(path):
            figures = out.nodes[here]
            figures.visits += 1
            if index + 1 < len(path):
                node = flow.nodes.get(here)
                move = move_between(flow, here, path[index + 1], dials) if node is not None and node.holds else None
                figures.left[_label(move, path[index + 1])] += 1
        if row["end"] == "abandoned" and row["last_node"]:
            out.nodes.setdefault(row["last_node"], NodeFigures()).hung_up += 1
        for fact in facts:
            kind, where = fact.get("type"), str(fact.get("node", ""))
            if kind in ("silence", "wrong", "repeat"):
                figures = out.nodes.setdefault(where, NodeFigures())
                figures.silences += kind == "silence"
                figures.wrong += kind == "wrong"
                figures.repeats += kind == "repeat"
            elif kind == "dial":
                out.transfers[(str(fact.get("contact")), str(fact.get("outcome")))] += 1
        made = choices(flow, path, facts)
        out.paths[_way(made.moves, str(row["end"] or "in progress"))] += 1
    out.nodes = {k: v for k, v in out.nodes.items() if v.entered}
    return out


def table(funnel: Funnel) -> str:
    """A plain-text funnel for a terminal: one line per node, then transfers, paths and hours."""
    lines = [period_of(funnel.since, funnel.until), f"{funnel.calls} calls, {funnel.anonymous} anonymous", ""]
    lines.append(f"{'node':<24} {'entered':>7} {'hung up':>7} {'silent':>6} {'wrong':>5} {'repeat':>6}  left by")
    for node_id, f in funnel.nodes.items():
        left = ", ".join(f"{how} {n}" for how, n in f.left.most_common(4))
        lines.append(
            f"{node_id:<24} {f.entered:>7} {f.hung_up:>7} {f.silences:>6} {f.wrong:>5} {f.repeats:>6}  {left}".rstrip()
        )
    if funnel.transfers:
        lines += ["", "transfers"]
        lines += [f"  {line + ':':<20} {outcome:<12} {n:>6}" for (line, outcome), n in sorted(funnel.transfers.items())]
    if funnel.paths:
        lines += ["", f"the {min(TOP_PATHS, len(funnel.paths))} most common ways"]
        lines += [f"  {n:>6}  {way}" for way, n in funnel.paths.most_common(TOP_PATHS)]
    if funnel.hours:
        lines += ["", "calls by hour"]
        lines += [f"  {hour:02d}:00 {n:>6}" for hour, n in sorted(funnel.hours.items())]
    return "\n".join(lines) + "\n"


def to_csv(funnel: Funnel) -> str:
    return rows_to_csv([("section", "subject", "measure", "count"), *funnel.rows()])


def to_html(funnel: Funnel, title: str) -> str:
    """One page: where calls entered, hung up and failed, per node; transfers; ways; hours."""
    nodes = funnel.nodes.items()
    sections = [
        bars("Calls that entered each node", [(k, f.entered) for k, f in nodes]),
        bars(
            "Hung up while waiting there",
            sorted(((k, f.hung_up) for k, f in nodes if f.hung_up), key=lambda x: -x[1]),
            "#c0392b",
        ),
        bars(
            "Silences and wrong answers",
            sorted(((k, f.failed) for k, f in nodes if f.failed), key=lambda x: -x[1]),
            "#d68910",
        ),
        bars("Asked to hear it again", [(k, f.repeats) for k, f in nodes if f.repeats], "#7f8c8d"),
        bars(
            "Transfer outcomes per line",
            [(f"{c}: {o}", v) for (c, o), v in sorted(funnel.transfers.items())],
            "#16a085",
        ),
        bars(f"The {TOP_PATHS} most common ways", funnel.paths.most_common(TOP_PATHS), "#6c5ce7"),
        bars("Calls by hour of the day", [(f"{h:02d}:00", n) for h, n in sorted(funnel.hours.items())], "#2980b9"),
    ]
    figures = [("calls", funnel.calls), ("anonymous", funnel.anonymous)]
    return page(title, period_of(funnel.since, funnel.until), figures, sections)
