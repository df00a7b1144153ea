"""The README's promises that CI and newcomers rely on."""

import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIAGRAM_AT = "2021-03-01T10:00:00+03:00"  # a working Monday morning: every line open


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines() if line]


def test_quickstart_is_exactly_two_commands_install_and_run() -> None:
    first, second = quickstart_commands()
    assert "pip install -e ." in first and "ivr simulate" in first
    assert "pip install -e '.[test]'" in second and "pytest" in second


def test_ci_runs_the_readme_test_command() -> None:
    script = ROOT / ".ci" / "run"
    extracted = subprocess.run(
        ["bash", "-c", re.search(r"test_command=\$\((.*)\)\n", script.read_text()).group(1)],  # type: ignore[union-attr]
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert extracted.stdout.strip() == quickstart_commands()[1]


def test_hotline_diagram_is_what_ivr_graph_draws_now() -> None:
    from ivr.flow import graph
    from ivr.flow import loader as flows

    text = (ROOT / "docs" / "hotline.md").read_text(encoding="utf-8")
    from ivr.tools.timing import notes

    block = text.split("<!-- ivr graph: start -->\n```mermaid\n", 1)[1].split("```\n<!-- ivr graph: end -->", 1)[0]
    hotline = flows.load(env={})
    drawn = graph.mermaid(hotline, notes(hotline, datetime.fromisoformat(DIAGRAM_AT)))
    assert block == drawn, f"regenerate the diagram in docs/hotline.md with `ivr graph --at {DIAGRAM_AT}`"


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve()
        if not found.exists():
            broken.append(target)
        elif anchor and found.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", found.read_text(encoding="utf-8"), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
            if anchor not in slugs:
                broken.append(target)
    assert broken == []


def test_readme_is_short_and_talks_to_users() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "source .venv/bin/activate" in text


def test_flow_reference_documents_every_node_kind_and_text() -> None:
    from ivr.flow.loader import DEFAULT_TEXTS, NODE_FIELDS

    doc = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    for kind in NODE_FIELDS:
        assert f"### {kind}\n" in doc, kind
    for name in DEFAULT_TEXTS:
        assert f"`{name}`" in doc, name
