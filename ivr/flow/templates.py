"""The syntax of prompt templates: `{reference}`, `{policy}`, `{contact:desk}` (filled by the engine)."""

from __future__ import annotations

import string

# Values the engine itself provides, beside the names that `ask` nodes store.
ENGINE_VALUES = frozenset(
    {"reference", "next_opening", "used_on", "next_period", "value", "last_transfer", "last_attempt"}
)


def placeholders(template: str) -> list[tuple[str, str]]:
    """(name, spec) of every `{name:spec}` in a template; raises ValueError on broken braces."""
    return [(name, spec or "") for _, name, spec, _ in string.Formatter().parse(template) if name is not None]
