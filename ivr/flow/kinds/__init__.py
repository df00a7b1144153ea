"""The node kinds a flow is made of, one module each. A new kind is a new module here (its shape,
model, build, targets and label) and one line in KINDS; the loader, the checks, the JSON Schema and
the diagrams read everything else from it."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Union

from pydantic import Field

from ivr.flow.kinds.allowance import Allowance, AllowanceNodeFile
from ivr.flow.kinds.ask import Ask, AskFile
from ivr.flow.kinds.base import Builder, Failures, Node
from ivr.flow.kinds.branch import Branch, BranchFile
from ivr.flow.kinds.hangup import Hangup, HangupFile
from ivr.flow.kinds.menu import Menu, MenuFile, Option
from ivr.flow.kinds.message import Message, MessageFile
from ivr.flow.kinds.register import Register, RegisterFile
from ivr.flow.kinds.transfer import DIAL_STATUSES, DialOutcome, Transfer, TransferFile

KINDS: tuple[type[Node], ...] = (Menu, Message, Ask, Branch, Allowance, Register, Transfer, Hangup)
BY_KIND: Mapping[str, type[Node]] = MappingProxyType({kind.kind: kind for kind in KINDS})

AnyNode = Menu | Message | Ask | Branch | Allowance | Register | Transfer | Hangup
# A node in a flow file: the mapping its `kind` names (pydantic picks the shape by it).
NodeFile = Annotated[
    Union[  # noqa: UP007 (a tagged union reads better spelled out)
        MenuFile, MessageFile, AskFile, BranchFile, AllowanceNodeFile, RegisterFile, TransferFile, HangupFile
    ],
    Field(discriminator="kind"),
]
NODE_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {kind.kind: frozenset(kind.shape.model_fields) - {"kind"} for kind in KINDS}
)
WAITING_KINDS = frozenset(kind.kind for kind in KINDS if kind.waits)

__all__ = [
    "BY_KIND",
    "DIAL_STATUSES",
    "KINDS",
    "NODE_FIELDS",
    "WAITING_KINDS",
    "Allowance",
    "AnyNode",
    "Ask",
    "Branch",
    "Builder",
    "DialOutcome",
    "Failures",
    "Hangup",
    "Menu",
    "Message",
    "Node",
    "NodeFile",
    "Option",
    "Register",
    "Transfer",
]
