"""Properties `ivr check` proves of a flow, beyond the rules every flow file must keep: each one
found broken is a Violation naming the node and a path from the greeting that shows it.

- `operator`: from every node that waits for the caller, the operator can be reached (opinion);
- `dead-end`: from every node, the call can reach a transfer or a goodbye (else it can only fall
  silent until the caller gives up);
- `retry-loop`: no menu or question falls back to itself on silence or wrong keys;
- `redial`: a transfer that is busy, unanswered or failed does not dial the same line again at once;
- `hours`: a transfer to a line that has hours (a schedule of the contact's name) is reached only
  through a branch on that schedule that found it open (opinion: it trusts the names);
- `anonymous`: under a node the flow file declares anonymous, nothing is asked, stored or
  registered, so the caller's number is never read; "under" ends where the caller chooses to leave
  the anonymous part: at the main menu and at the operator.
Time budgets (`properties.budgets`) need the prompts' spoken length: `ivr.tools.timing` checks them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivr.flow.model import Flow

OPINIONS = frozenset({"operator", "hours"})  # reported always, failing `ivr check` only with --strict


@dataclass(frozen=True)
class Violation:
    """A property that does not hold at `node`, shown by `path` (node ids from the start)."""

    rule: str
    node: str
    line: int | None
    message: str
    path: tuple[str, ...]

    @property
    def opinion(self) -> bool:
        return self.rule in OPINIONS

    def shown(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        way = f" (path: {' -> '.join(self.path)})" if self.path else ""
        return f"{where}: node {self.node!r}: [{self.rule}] {self.message}{way}"


def _edges(flow: Flow, skip: frozenset[tuple[str, str]] = frozenset()) -> dict[str, list[str]]:
    """Node id -> the nodes it leads to, without the (node, field) edges in `skip`."""
    return {
        node.id: [t for f, t in node.targets(flow) if t in flow.nodes and (node.id, f) not in skip]
        for node in flow.nodes.values()
    }


def _paths_from(
    edges: Mapping[str, list[str]], roots: Iterable[str], stop: frozenset[str] = frozenset()
) -> dict[str, tuple[str, ...]]:
    """The shortest path from one of `roots` to every node reached (not going on from `stop`)."""
    found: dict[str, tuple[str, ...]] = {}
    todo: deque[tuple[str, tuple[str, ...]]] = deque((r, (r,)) for r in roots)
    while todo:
        here, path = todo.popleft()
        if here in found:
            continue
        found[here] = path
        if here in stop and len(path) > 1:
            continue
        todo += ((t, (*path, t)) for t in edges.get(here, ()) if t not in found)
    return found


def _reaching(edges: Mapping[str, list[str]], goals: Iterable[str]) -> set[str]:
    """Every node from which one of `goals` can be reached."""
    back: dict[str, list[str]] = {}
    for here, targets in edges.items():
        for t in targets:
            back.setdefault(t, []).append(here)
    return set(_paths_from(back, goals))


def prove(flow: Flow) -> list[Violation]:
    """Every violation of the properties above, in the order of the flow file."""
    edges = _edges(flow)
    reached = _paths_from(edges, [flow.settings.start])
    out: list[Violation] = []

    def found(rule: str, node_id: str, message: str, path: tuple[str, ...] | None = None) -> None:
        out.append(
            Violation(rule, node_id, flow.nodes[node_id].line or None, message, path or reached.get(node_id, ()))
        )

    operator = flow.settings.operator
    to_operator = _reaching(edges, [operator]) if operator in flow.nodes else None
    endings = [n.id for n in flow.nodes.values() if not n.targets(flow) or n.dials() is not None]
    to_ending = _reaching(edges, endings)
    for node in flow.nodes.values():
        if node.id not in reached:
            continue  # unreachable nodes are refused by the flow's own rules
        if to_operator is not None and node.holds and node.dials() is None and node.id not in to_operator:
            found("operator", node.id, f"the operator ({operator!r}) cannot be reached from here")
        if node.id not in to_ending:
            found("dead-end", node.id, "no transfer or goodbye can be reached from here: the call can only fall silent")
        for field, target in node.targets(flow):
            if node.failure_rule(field) is not None and target == node.id:
                what = "silence" if field.startswith("no_input") else "wrong keys"
                found("retry-loop", node.id, f"{what} fall back to the node itself ({field})")
            failed = field.split(".")[-1] in ("busy", "no-answer", "failed", "otherwise")
            if node.dials() is not None and failed and target == node.id:
                found("redial", node.id, f"{field} dials the same line again at once")
    out += _unguarded(flow, reached)
    out += _not_anonymous(flow, edges, reached)
    return sorted(out, key=lambda v: (v.line or 0, v.rule))


def _unguarded(flow: Flow, reached: Mapping[str, tuple[str, ...]]) -> list[Violation]:
    out = []
    for name in flow.schedules:
        transfers = [n for n in flow.nodes.values() if n.dials() == name and n.id in reached]
        if not transfers or name not in flow.contacts:
            continue
        guards = frozenset((n.id, "cases.open") for n in flow.nodes.values() if n.schedule() == name)
        unguarded = _paths_from(_edges(flow, guards), [flow.settings.start])
        for t in transfers:
            if t.id in unguarded:
                message = f"dials {name!r}, which has hours, without a branch on schedule:{name} finding it open"
                out.append(Violation("hours", t.id, t.line or None, message, unguarded[t.id]))
    return out


def _not_anonymous(
    flow: Flow, edges: Mapping[str, list[str]], reached: Mapping[str, tuple[str, ...]]
) -> list[Violation]:
    out = []
    main = frozenset({flow.settings.main_menu, flow.settings.operator} - {""})
    for root in flow.properties.anonymous:
        if root not in flow.nodes:
            continue  # the flow's own rules name it
        lead = reached.get(root, (root,))[:-1]
        for node_id, path in _paths_from(edges, [root], stop=main).items():
            node = flow.nodes[node_id]
            if node_id in main:
                continue
            doing = [
                f"asks for and stores {node.keeps()!r}" if node.keeps() is not None else "",
                f"registers a {node.registers()!r} request" if node.registers() is not None else "",
            ]
            for what in filter(None, doing):
                message = f"under anonymous {root!r}, it {what}"
                out.append(Violation("anonymous", node_id, node.line or None, message, (*lead, *path)))
    return out
