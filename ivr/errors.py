"""Errors that callers of the package can act on."""

from __future__ import annotations

from dataclasses import dataclass


def reason(exc: BaseException) -> str:
    """The first line of what went wrong (the driver's own message for a database error)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class IvrError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class FlowProblem:
    """One thing wrong with a flow file, located by file, line and node."""

    file: str
    line: int | None
    node: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        subject = f" node {self.node!r}:" if self.node else ""
        return f"{where}:{subject} {self.message}"


class FlowError(IvrError):
    """A flow file cannot be used; carries every problem found, each with file, line and node."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, line: int | None, node: str | None, message: str) -> FlowError:
        return cls([FlowProblem(file, line, node, message)])


class ConfigError(IvrError):
    """A configuration key holds a value the application cannot use."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"{key}={value!r}: {reason}")


class StoreUnavailable(IvrError):
    """The call store could not be read or written."""


class SchemaOutdated(StoreUnavailable):
    """The database's schema is older than the code: `ivr db upgrade` is the deploy step that fixes it."""
