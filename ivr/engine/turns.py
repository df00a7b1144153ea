"""What the engine hands around: a call's state, the caller's input, and the Turn it answers with
(what to say, then a Gather, Dial or End, or an effect for the caller of the engine to perform)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from ivr.flow.model import EMPTY


@dataclass(frozen=True)
class CallState:
    """Where a call is in the flow and what it has collected."""

    node: str
    phase: Literal["entry", "confirm"] = "entry"
    invalid: int = 0
    silence: int = 0
    values: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    spoken: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    pending: str = ""
    anonymous: bool = False

    def pack(self) -> bytes:
        """Compact bytes for a sealed action URL: fields at their defaults and spoken forms equal to
        the value are left out (URLs stay short even with a name and complaints collected)."""
        data: dict[str, Any] = {"n": self.node}
        for short, name in _PACKED:
            value = getattr(self, name)
            if value != _DEFAULTS[name]:
                data[short] = value
        if self.values:
            data["v"] = dict(self.values)
        spoken = {k: v for k, v in self.spoken.items() if self.values.get(k) != v}
        if spoken:
            data["s"] = spoken
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def unpack(cls, raw: bytes) -> CallState:
        """The state `pack` wrote (raises ValueError, KeyError or TypeError on anything else)."""
        data = json.loads(raw)
        values = {str(k): str(v) for k, v in data.get("v", {}).items()}
        spoken = values | {str(k): str(v) for k, v in data.get("s", {}).items()}
        fields = {name: data[short] for short, name in _PACKED if short in data}
        return cls(node=str(data["n"]), values=MappingProxyType(values), spoken=MappingProxyType(spoken), **fields)

    def at(self, node: str, **reset: Any) -> CallState:
        """The same state at another node, with `reset` fields changed too."""
        unknown = reset.keys() - _DEFAULTS.keys()
        if unknown:
            raise TypeError(f"CallState has no field {sorted(unknown)[0]!r} to reset")
        return replace(self, node=node, **reset)

    def remember(self, name: str, value: str, spoken: str | None = None) -> CallState:
        values = MappingProxyType({**self.values, name: value})
        said = MappingProxyType({**self.spoken, name: value if spoken is None else spoken})
        return replace(self, values=values, spoken=said)


_PACKED = (("p", "phase"), ("i", "invalid"), ("q", "silence"), ("w", "pending"), ("a", "anonymous"))
_DEFAULTS: dict[str, Any] = {"phase": "entry", "invalid": 0, "silence": 0, "pending": "", "anonymous": False}


@dataclass(frozen=True)
class Input:
    """What the caller did: pressed keys, spoke, stayed silent, or how a transfer ended."""

    kind: Literal["digits", "speech", "silence", "dial"]
    text: str = ""
    caller: str = ""  # the caller's number as Twilio sends it in From


@dataclass(frozen=True)
class Gather:
    """Wait for keys or speech while saying `prompt` (the caller may interrupt it)."""

    prompt: tuple[str, ...]
    input: str
    timeout: int
    num_digits: int | None = None
    finish_on_key: str = ""
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dial:
    """Connect the caller to a target and come back with the outcome."""

    target: str
    timeout: int


@dataclass(frozen=True)
class End:
    """Hang up."""


@dataclass(frozen=True)
class RequestEffect:
    """Register a request of `kind` with `data`; the outcome carries its reference."""

    kind: str
    data: Mapping[str, str]


@dataclass(frozen=True)
class SpendEffect:
    """Spend one use of an allowance for `key` in [period_start, period_end) and register `request`."""

    allowance: str
    limit: int
    key: str
    period_start: datetime
    period_end: datetime
    request: RequestEffect


@dataclass(frozen=True)
class EffectOutcome:
    """What performing an effect gave: a reference, or a refusal with the time of the last use."""

    granted: bool
    reference: str | None = None
    used_at: datetime | None = None


Effect = RequestEffect | SpendEffect


@dataclass(frozen=True)
class Turn:
    """The engine's answer: what to say, then what to do; or an effect to perform first."""

    state: CallState
    say: tuple[str, ...] = ()
    action: Gather | Dial | End | None = None
    effect: Effect | None = None
    path: tuple[str, ...] = field(default=())


Closures = Mapping[str, str]  # schedule name -> reason of an emergency closure


@dataclass(frozen=True)
class World:
    """What the engine knows of the outside world: the time, and schedules closed by an operator."""

    now: datetime
    closures: Closures = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True)
class Pass:
    """A node the call passes through without waiting: where it goes on, and what it said there."""

    state: CallState
    say: tuple[str, ...] = ()
