"""The package's layers import only downwards: flow ← engine ← store ← web ← tools ← testing ← cli.

The simulator stands alone (it imports nothing else of ivr), so a bug on one side of the wire shows
as a mismatch instead of cancelling out. Imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ivr"
# The top-level modules (errors, clock, settings) are the floor every layer may stand on.
LAYERS = ["", "flow", "engine", "store", "web", "tools", "testing", "cli"]
STANDALONE = "simulator"
FACE = {"ivr/__init__.py", "ivr/__main__.py"}  # the package's face re-exports from every layer
MOST_LINES = 500
MOST_TOP_MODULES = 6


def _layer(module: str) -> str:
    """The layer of a dotted module name of ivr ("" for the top-level modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""


def _rank(layer: str) -> float:
    # Nothing of ivr stands under the simulator; the web phone (web) and everything above may use it.
    return LAYERS.index(layer) if layer != STANDALONE else LAYERS.index("web") - 0.5


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of ivr in the file, relative ones resolved."""
    here = _name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            # `from ivr.x import y` may name a module y of package x: then y is what is imported
            named = [f"{module}.{alias.name}" for alias in node.names]
            modules = [name for name in named if _is_module(name)]
            found += [(node.lineno, name) for name in modules] if modules else [(node.lineno, module)]
    return [(line, m) for line, m in found if m == "ivr" or m.startswith("ivr.")]


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _upward(path: Path) -> list[str]:
    here = _layer(_name(path)) if path.name != "__init__.py" or _name(path).count(".") > 1 else ""
    if _name(path).count(".") == 1 and path.name == "__init__.py":
        here = _name(path).split(".")[1]
    wrong = []
    for line, module in _imports(path):
        if module == "ivr" or not _is_module(module):
            continue
        there = _layer(module) if module.count(".") > 1 else (module.split(".")[1] if _is_package(module) else "")
        if here == STANDALONE and there != STANDALONE:
            wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}: the simulator stands alone")
        elif there != here and _rank(there) >= _rank(here) and not (here == "" and there == ""):
            wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module} from a layer above or beside")
    return wrong


def _is_package(module: str) -> bool:
    return (PACKAGE.parent / Path(*module.split(".")) / "__init__.py").exists()


@pytest.mark.parametrize("path", [p for p in _modules() if str(p.relative_to(PACKAGE.parent)) not in FACE], ids=str)
def test_should_import_only_from_layers_below(path: Path) -> None:
    assert _upward(path) == []


def test_should_find_an_upward_import_when_there_is_one(tmp_path: Path) -> None:
    # The check itself can fail: the flow layer importing the store is caught.
    wrong = PACKAGE / "flow" / "_probe_upward.py"
    wrong.write_text("from ivr.store import database\n", encoding="utf-8")
    try:
        assert _upward(wrong) == ["ivr/flow/_probe_upward.py:1 imports ivr.store.database from a layer above or beside"]
    finally:
        wrong.unlink()


@pytest.mark.parametrize("path", _modules(), ids=str)
def test_should_keep_every_module_under_the_line_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MOST_LINES, f"{path.relative_to(PACKAGE.parent)} has {lines} lines"


def test_should_keep_few_modules_at_the_top_of_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MOST_TOP_MODULES, top
