"""A YAML reader that keeps mapping keys as strings and remembers the line of every mapping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ivr.errors import FlowError


class Located(dict[str, Any]):
    """A mapping from a YAML file that knows its own line and the line of each key."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


# libyaml's parser when PyYAML was built with it (its wheels are), else PyYAML's own: the same
# events and marks, about eight times faster on the hotline's flow (every server start, every test).
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """safe_load semantics, but YAML 1.2 booleans only: `on`, `off`, `yes`, `no` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    result = Located()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        # Keys are kept exactly as written: `1:` is the key "1", `on:` is the key "on".
        key = str(key_node.value)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """A date as YAML writes it; one that is no real day (2026-13-01) stays text for the checks to name."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return str(node.value)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def read_text(path: Path) -> str:
    """A flow file's text; a file that cannot be read is a FlowError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError.single(str(path), None, None, f"cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise FlowError.single(str(path), None, None, "the file is not UTF-8 text") from exc


def load_yaml(path: Path, text: str | None = None) -> Located:
    """Read a YAML file (or its `text`, already read) whose top level is a mapping; a syntax error
    names file and line."""
    if text is None:
        text = read_text(path)
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise FlowError.single(str(path), line, None, f"invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise FlowError.single(str(path), None, None, f"invalid YAML: {exc}") from exc
    if not isinstance(data, Located):
        raise FlowError.single(str(path), 1, None, "the top level must be a mapping")
    return data
