"""Whole-flow checks: targets exist, nodes are reachable, menus lead back, no loop runs without waiting."""

from __future__ import annotations

from ivr.errors import FlowProblem
from ivr.flow import templates
from ivr.flow.fields import did_you_mean
from ivr.flow.model import (
    WAITING_KINDS,
    Allowance,
    AnyNode,
    Ask,
    Branch,
    Flow,
    Menu,
    Register,
    Transfer,
)
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
    if s.main_menu in flow.nodes and not isinstance(flow.nodes[s.main_menu], Menu):
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

    stored = {n.store for n in flow.nodes.values() if isinstance(n, Ask)}
    known_values = stored | templates.ENGINE_VALUES
    broken = False  # a target that is no node: the root cause of whatever then looks unreachable
    for node in flow.nodes.values():
        for field_name, target in targets(flow, node):
            if target and target not in flow.nodes:
                broken = True
                r.problem(node.line, node.id, f"{field_name}: no node {target!r}{did_you_mean(target, flow.nodes)}")
        _check_references(r, flow, node, stored, known_values)
        back = isinstance(node, Menu) and any(o.to == s.main_menu for o in node.options)
        if isinstance(node, Menu) and node.id != s.main_menu and s.main_menu and not back:
            r.problem(
                node.line,
                node.id,
                f"no way back to the main menu: add a key that leads to {s.main_menu!r}",
            )

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


def _check_references(r: _Problems, flow: Flow, node: AnyNode, stored: set[str], known_values: set[str]) -> None:
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
    match node:
        case Transfer() if node.contact not in flow.contacts:
            r.problem(node.line, node.id, f"contact {node.contact!r} is not in contacts")
        case Register() if node.contact not in (None, "@last_transfer") and node.contact not in flow.contacts:
            r.problem(node.line, node.id, f"contact {node.contact!r} is not in contacts")
        case Branch(on="schedule") if node.subject not in flow.schedules:
            r.problem(node.line, node.id, f"schedule {node.subject!r} is not in schedules")
        case Branch(on="schedule" | "programme"):
            expected = {"open", "closed"} if node.on == "schedule" else {"active", "inactive"}
            allowed = expected | ({"emergency"} if node.on == "schedule" else set())
            for case in sorted(set(node.cases) - allowed):
                r.problem(node.line, node.id, f"case {case!r} is not one of {', '.join(sorted(allowed))}")
            if node.on == "programme" and flow.programme is None:
                r.problem(node.line, node.id, "branch on programme, but the flow has no `programme`")
            missing = expected - set(node.cases)
            if missing and not node.default:
                r.problem(node.line, node.id, f"cases {', '.join(sorted(missing))} lead nowhere")
        case Branch(on="value") if not node.default:
            r.problem(node.line, node.id, "a branch on a value needs a `default`")
        case Allowance():
            if node.allowance not in flow.allowances:
                r.problem(node.line, node.id, f"allowance {node.allowance!r} is not in allowances")
            for name in (node.key, *node.fields):
                if name not in stored:
                    r.problem(node.line, node.id, f"{name!r} is not stored by any ask node")
        case Register():
            for name in node.fields:
                if name not in stored:
                    r.problem(node.line, node.id, f"{name!r} is not stored by any ask node")
