"""The JSON Schema of flow files: current, and right about the shipped flow and a broken one."""

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ivr.flow.flowfile import json_schema as flow_schema

ROOT = Path(__file__).resolve().parent.parent


def as_json(value: Any) -> Any:
    """YAML as an editor's language server sees it: timestamps are strings."""
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def load(path: Path) -> Any:
    from ivr.flow.yamlsrc import load_yaml

    return as_json(load_yaml(path))


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "schema" / "flow.schema.json").read_text(encoding="utf-8"))
    assert committed == flow_schema(), "regenerate it: ivr schema > schema/flow.schema.json"


@pytest.mark.parametrize("path", sorted((ROOT / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flows_are_valid_and_point_at_the_schema(path: Path) -> None:
    jsonschema.validate(load(path), flow_schema())
    assert path.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=../schema/flow.schema.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda doc: doc["nodes"]["main"].update(promt="x"), "Additional properties"),
        (lambda doc: doc["nodes"]["main"]["options"].update({"*": "main"}), "does not match"),
        (lambda doc: doc["nodes"]["desk_operator"]["outcomes"].update(maybe="main"), "is not valid"),
        (lambda doc: doc["schedules"]["representative"]["hours"].update(funday="09:00-10:00"), "is not one of"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(change: Any, message: str) -> None:
    doc = load(ROOT / "flows" / "dms_hotline.yaml")
    change(doc)
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate(doc, flow_schema())
    assert message in str(info.value) or "is not valid under any of the given schemas" in str(info.value)
