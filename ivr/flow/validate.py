"""Whole-flow checks: targets exist, nodes are reachable, menus lead back, no loop runs without waiting."""

from __future__ import annotations

from ivr.errors import FlowProblem
from ivr.flow import templates
from ivr.flow.fields import did_you_mean
from ivr.flow.model import WAITING_KINDS, AnyNode, Flow
from ivr.flow.yamlsrc import Located


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[FlowProblem] = []

    def problem(self, line: int | None, node: str | None, message: str) -> None:
        self.problems.append(FlowProblem(self.file, line, node, message))


def validate(flow: Flow, doc: Located, file: str) -> list[FlowProblem]:
    """Every problem of a built flow that no single node shows on its own."""
    r = _Problems(file)
    _validate(r, flow, doc)
    return r.problems


def targets(flow: Flow, node: AnyNode) -> list[tuple[str, str]]:
    """Every (field, node id) a node can lead to, the implicit ones included."""
    return node.targets(flow)


def _validate(r: _Problems, flow: Flow, doc: Located) -> None:
    nodes_section = doc.get("nodes")
    node_lines = nodes_section.key_lines if isinstance(nodes_section, Located) else {}
    s = flow.settings
    for field_name, target in (
        ("start", s.start),
        ("main_menu", s.main_menu),
        ("operator", s.operator),
    ):
        if target and target not in flow.nodes:
            r.problem(
                doc["settings"].line_of(field_name),
                None,
                f"settings.{field_name}: no node {target!r}",
            )
    if s.main_menu in flow.nodes and flow.main_menu is None:
        r.problem(
            doc["settings"].line_of("main_menu"),
            None,
            f"settings.main_menu: {s.main_menu!r} is not a menu",
        )
    if flow.programme and flow.programme.inactive not in flow.nodes:
        r.problem(
            doc["programme"].line_of("inactive"),
            None,
            f"programme.inactive: no node {flow.programme.inactive!r}",
        )

    props = doc.get("properties")
    for part in ("anonymous", "budgets"):
        named = props.get(part) if isinstance(props, Located) else None
        part_line = props.line_of(part) if isinstance(props, Located) else None
        names = flow.properties.anonymous if part == "anonymous" else tuple(flow.properties.budgets)
        for name in names:
            if name not in flow.nodes:
                where = named.line_of(name) if isinstance(named, Located) and part == "budgets" else part_line
                r.problem(where, None, f"properties.{part}: no node {name!r}{did_you_mean(name, flow.nodes)}")

    roots = [s.start]
    if flow.callbacks is not None:
        section = doc.get("callbacks")
        lines_doc = section.get("lines") if isinstance(section, Located) else None
        for line, start in flow.callbacks.lines.items():
            where = lines_doc.line_of(line) if isinstance(lines_doc, Located) else None
            if line not in flow.contacts:
                known = did_you_mean(line, flow.contacts)
                r.problem(where, None, f"callbacks.lines: {line!r} is not a contact{known}")
            if start not in flow.nodes:
                r.problem(where, None, f"callbacks.lines.{line}: no node {start!r}{did_you_mean(start, flow.nodes)}")
            roots.append(start)
        machine = flow.callbacks.machine
        if machine not in flow.nodes:
            where = section.line_of("machine") if isinstance(section, Located) else None
            r.problem(where, None, f"callbacks.machine: no node {machine!r}{did_you_mean(machine, flow.nodes)}")
        roots.append(machine)

    stored = frozenset(kept for n in flow.nodes.values() if (kept := n.keeps()) is not None)
    known_values = stored | templates.ENGINE_VALUES
    broken = False  # a target that is no node: the root cause of whatever then looks unreachable
    for node in flow.nodes.values():
        for field_name, target in targets(flow, node):
            if target and target not in flow.nodes:
                broken = True
                r.problem(node.line, node.id, f"{field_name}: no node {target!r}{did_you_mean(target, flow.nodes)}")
        _check_references(r, flow, node, known_values)
        for message in node.problems(flow, stored):
            r.problem(node.line, node.id, message)

    # Reachability from the start node (and the call-back calls' starts).
    seen: set[str] = set()
    todo = [root for root in roots if root in flow.nodes] if s.start in flow.nodes else []
    while todo:
        reached = todo.pop()
        if reached in seen:
            continue
        seen.add(reached)
        todo += [t for _, t in targets(flow, flow.nodes[reached]) if t in flow.nodes]
    for node_id in flow.nodes:
        if s.start in flow.nodes and node_id not in seen and not broken:
            r.problem(
                node_lines.get(node_id),
                node_id,
                f"unreachable: no path from {' or '.join(repr(x) for x in dict.fromkeys(roots))} leads here",
            )

    # A loop of nodes that never wait for the caller would spin forever inside one webhook.
    def quiet_next(node_id: str) -> list[str]:
        return [
            t
            for _, t in targets(flow, flow.nodes[node_id])
            if t in flow.nodes and flow.nodes[t].kind not in WAITING_KINDS
        ]

    for node in flow.nodes.values():
        if node.kind in WAITING_KINDS:
            continue
        paths, seen_quiet = [[node.id]], {node.id}
        while paths:
            path = paths.pop()
            for nxt in quiet_next(path[-1]):
                if nxt == node.id:
                    r.problem(node.line, node.id, f"loop that never waits for the caller: {' -> '.join([*path, nxt])}")
                    paths = []
                    break
                if nxt not in seen_quiet:
                    seen_quiet.add(nxt)
                    paths.append([*path, nxt])


def _check_references(r: _Problems, flow: Flow, node: AnyNode, known_values: frozenset[str]) -> None:
    for field_name in ("prompt", "reprompt", "retry", "say"):
        template = getattr(node, field_name, None)
        if not isinstance(template, str):
            continue
        for name, spec in templates.placeholders(template):
            if name == "contact":
                if spec not in flow.contacts:
                    r.problem(node.line, node.id, f"{field_name}: {{contact:{spec}}} names no contact")
            elif name not in known_values:
                r.problem(node.line, node.id, f"{field_name}: unknown placeholder {{{name}}}")
