"""A node kind is declared in one place: its flow-file shape and model in `ivr/flow/kinds/`, how the
engine steps a call through it in `ivr/engine/kinds/`. Everything else (checks, diagrams, the
journal, the crawler, revisions, call-backs, reports) asks the node, never which kind it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ivr.engine.kinds import STEPS, Step
from ivr.flow import load
from ivr.flow.kinds import BY_KIND, KINDS, Failures

PACKAGE = Path(__file__).resolve().parents[1] / "ivr"
HOMES = (PACKAGE / "flow" / "kinds", PACKAGE / "engine" / "kinds")
CLASSES = {kind.__name__ for kind in KINDS}
NAMES = set(BY_KIND)


def test_every_kind_has_exactly_one_engine_step() -> None:
    assert set(STEPS) == NAMES
    for name, step in STEPS.items():
        assert step.kind is BY_KIND[name]
        assert type(step).enter is not Step.enter, f"{name}: its step does not say what entering it does"


def _matches_a_kind(tree: ast.AST) -> list[tuple[int, str]]:
    """Places where code asks which kind a node is: isinstance with a kind class, a `case Kind()`
    pattern, or `.kind` compared to a kind's name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)} if len(node.args) > 1 else set()
            if names & CLASSES:
                found.append((node.lineno, f"isinstance(..., {' | '.join(sorted(names & CLASSES))})"))
        elif isinstance(node, ast.MatchClass) and isinstance(node.cls, ast.Name) and node.cls.id in CLASSES:
            found.append((node.lineno, f"case {node.cls.id}()"))
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "kind":
            for right in node.comparators:
                literals = {n.value for n in ast.walk(right) if isinstance(n, ast.Constant)}
                if literals & NAMES:
                    found.append((node.lineno, f".kind compared to {sorted(literals & NAMES)}"))
    return found


def _outside_homes() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not any(home in p.parents for home in HOMES) and p.name != "model.py" and "migrations" not in p.parts
    ]


@pytest.mark.parametrize("path", _outside_homes(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_outside_the_kinds_asks_which_kind_a_node_is(path: Path) -> None:
    found = _matches_a_kind(ast.parse(path.read_text(encoding="utf-8")))
    assert not found, "; ".join(f"line {line}: {what}" for line, what in found) + " (ask the node instead)"


def test_the_check_would_see_kind_matching() -> None:
    code = "if isinstance(node, Menu | Ask): pass\nmatch node:\n    case Transfer(): pass\nif n.kind == 'menu': pass\n"
    assert sorted(what for _, what in _matches_a_kind(ast.parse(code))) == [
        ".kind compared to ['menu']",
        "case Transfer()",
        "isinstance(..., Ask | Menu)",
    ]


def test_what_kinds_tell_about_themselves_on_the_hotline() -> None:
    flow = load()
    kept = {node.keeps() for node in flow.nodes.values()} - {None}
    assert {"policy", "full_name", "complaints", "phone"} <= kept
    registered = {node.registers() for node in flow.nodes.values()} - {None}
    assert {"desk", "second_opinion"} <= registered
    menu = flow.main_menu
    assert menu is not None and menu.stranded(None) == f"{menu.id} (menu): gone"
    assert all(
        isinstance(node.failure_rule(field), Failures) == field.endswith(".fallback")
        for node in flow.nodes.values()
        for field, _ in node.targets(flow)
    )
    ended = {node.kind: node.ending for node in flow.nodes.values()}
    assert ended["hangup"] == "goodbye" and ended["transfer"] == "transferred" and ended["menu"] == "abandoned"
    assert ended["message"] is None and ended["branch"] is None
