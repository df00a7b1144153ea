"""The README's promises that CI and newcomers rely on."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def test_readme_diagram_is_what_ivr_graph_draws_now() -> None:
    from ivr.flow import graph
    from ivr.flow import loader as flows

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- ivr graph: start -->\n```mermaid\n", 1)[1].split("```\n<!-- ivr graph: end -->", 1)[0]
    assert block == graph.mermaid(flows.load(env={})), "regenerate the README diagram with `ivr graph`"


def test_flow_reference_documents_every_node_kind_and_text() -> None:
    from ivr.flow.loader import DEFAULT_TEXTS, NODE_FIELDS

    doc = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    for kind in NODE_FIELDS:
        assert f"### {kind}\n" in doc, kind
    for name in DEFAULT_TEXTS:
        assert f"`{name}`" in doc, name
