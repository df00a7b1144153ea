"""The engine's side of each node kind: how a call is stepped at it. A kind declared in
`ivr.flow.kinds` has one module here with its Step, and one line in STEPS."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ivr.engine.kinds.allowance import AllowanceStep
from ivr.engine.kinds.ask import AskStep
from ivr.engine.kinds.base import Step, Walk
from ivr.engine.kinds.branch import BranchStep
from ivr.engine.kinds.hangup import HangupStep
from ivr.engine.kinds.menu import MenuStep
from ivr.engine.kinds.message import MessageStep
from ivr.engine.kinds.register import RegisterStep
from ivr.engine.kinds.transfer import TransferStep
from ivr.flow.model import Node

_ALL: tuple[Step[Any], ...] = (
    MenuStep(),
    MessageStep(),
    AskStep(),
    BranchStep(),
    AllowanceStep(),
    RegisterStep(),
    TransferStep(),
    HangupStep(),
)
STEPS: Mapping[str, Step[Any]] = MappingProxyType({step.kind.kind: step for step in _ALL})


def step_for(node: Node) -> Step[Any]:
    """The engine's step for `node`'s kind."""
    return STEPS[node.kind]


__all__ = ["STEPS", "Step", "Walk", "step_for"]
