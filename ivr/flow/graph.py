"""The phone tree as a diagram: Mermaid (GitHub renders it) or Graphviz dot."""

from __future__ import annotations

from collections.abc import Mapping

from ivr.flow.model import EMPTY, AnyNode, Flow
from ivr.flow.validate import targets

_FAILURES = {"invalid.fallback": "wrong ×{n}", "no_input.fallback": "silent ×{n}"}


def _label(flow: Flow, node: AnyNode, notes: Mapping[str, str]) -> str:
    note = notes.get(node.id)
    return f"{node.label(flow)}\n{note}" if note else node.label(flow)


def _edges(flow: Flow, node: AnyNode) -> list[tuple[str, str, bool]]:
    """(label, target, is_fallback) of a node, fallbacks to the same target merged."""
    out: list[tuple[str, str, bool]] = []
    fallbacks: dict[str, list[str]] = {}
    for field_name, target in targets(flow, node):
        rule = node.failure_rule(field_name)
        if rule is not None and field_name in _FAILURES:
            fallbacks.setdefault(target, []).append(_FAILURES[field_name].format(n=rule.limit))
            continue
        out.append((node.edge(field_name), target, False))
    for target, labels in fallbacks.items():
        out.append((", ".join(labels), target, True))
    return out


def _quote(text: str) -> str:
    return text.replace('"', "'")


def _placed(flow: Flow) -> list[tuple[str, str]]:
    """(label, start node) of the calls the flow places itself: each line's call-back, and what an
    answering machine hears."""
    if flow.callbacks is None:
        return []
    found = [(f"call-back: {line}", node) for line, node in flow.callbacks.lines.items()]
    return [*found, ("call-back: answering machine", flow.callbacks.machine)]


def mermaid(flow: Flow, notes: Mapping[str, str] = EMPTY) -> str:
    """A Mermaid flowchart of the flow (`notes`: a second line for some nodes' boxes, by node id)."""
    lines = ["flowchart TD"]
    for node in flow.nodes.values():
        left, right = node.mermaid
        label = _quote(_label(flow, node, notes)).replace("\n", "<br/>")
        lines.append(f'    {node.id}{left}"{label}"{right}')
    for node in flow.nodes.values():
        for label, target, fallback in _edges(flow, node):
            arrow = "-.->" if fallback else "-->"
            text = f'|"{_quote(label)}"|' if label else ""
            lines.append(f"    {node.id} {arrow}{text} {target}")
    if flow.callbacks is not None:
        lines.append('    outbound>"☎ calls the hotline places (ivr callbacks run)"]')
        lines += [f'    outbound -->|"{_quote(label)}"| {node}' for label, node in _placed(flow)]
    return "\n".join(lines) + "\n"


def dot(flow: Flow, notes: Mapping[str, str] = EMPTY) -> str:
    """A Graphviz digraph of the flow (`notes`: a second line for some nodes' boxes, by node id)."""
    lines = [f'digraph "{flow.name}" {{', "    rankdir=TB;", '    node [fontname="sans-serif"];']
    for node in flow.nodes.values():
        label = _quote(_label(flow, node, notes)).replace("\n", "\\n")
        lines.append(f'    {node.id} [shape={node.dot}, label="{label}"];')
    for node in flow.nodes.values():
        for label, target, fallback in _edges(flow, node):
            style = ", style=dashed" if fallback else ""
            lines.append(f'    {node.id} -> {target} [label="{_quote(label)}"{style}];')
    if flow.callbacks is not None:
        lines.append('    outbound [shape=cds, label="calls the hotline places (ivr callbacks run)"];')
        lines += [f'    outbound -> {node} [label="{_quote(label)}"];' for label, node in _placed(flow)]
    lines.append("}")
    return "\n".join(lines) + "\n"
