"""Allowances in the database: spend a use (atomically, with its request), refuse, release, audit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ivr.engine.turns import EffectOutcome, SpendEffect
from ivr.errors import IvrError
from ivr.flow.model import PERIODS, AllowanceRule
from ivr.store.requests import register
from ivr.store.tables import allowance_audit, allowance_uses, aware, utc

__all__ = ["PERIODS", "AllowanceRule", "UnknownReference", "history", "release", "spend"]


# ---------------------------------------------------------------- the ledger in the database
#
# Spending is one transaction with registering the request (the caller's), guarded by the unique
# key (allowance, key, period_start, seq): two calls that both saw a free use cannot both take it;
# the loser's transaction fails with IntegrityError and its webhook is answered again from scratch.


_c = allowance_uses.c


def _audit(conn: Connection, action: str, effect_or_use: Mapping[str, Any], now: datetime, **fields: Any) -> None:
    conn.execute(
        allowance_audit.insert(),
        {
            "at": utc(now),
            "action": action,
            "allowance": effect_or_use["allowance"],
            "key": effect_or_use["key"],
            "period_start": utc(effect_or_use["period_start"]),
            "call_sid": None,
            "reference": None,
            **fields,
        },
    )


def spend(conn: Connection, call_sid: str, effect: SpendEffect, now: datetime) -> EffectOutcome:
    """Spend one use and register the request in the caller's transaction, or refuse; both audited."""
    period = {"allowance": effect.allowance, "key": effect.key, "period_start": utc(effect.period_start)}
    in_period = sa.and_(*(_c[name] == value for name, value in period.items()))
    mine = conn.execute(sa.select(_c.reference).where(in_period & (_c.call_sid == call_sid))).scalar()
    if mine is not None:
        return EffectOutcome(granted=True, reference=mine)  # the same call asking again spends nothing
    rows = conn.execute(sa.select(_c.seq, _c.created_at).where(in_period)).all()
    about = {"allowance": effect.allowance, "key": effect.key, "period_start": effect.period_start}
    free = sorted(set(range(1, effect.limit + 1)) - {seq for seq, _ in rows})
    if not free:
        last = max(created_at for _, created_at in rows)
        _audit(conn, "refuse", about, now, call_sid=call_sid, reason=f"limit of {effect.limit} reached")
        return EffectOutcome(granted=False, used_at=aware(last))
    reference = register(conn, call_sid, effect.request, now)
    use = period | {"seq": free[0], "reference": reference, "call_sid": call_sid, "created_at": utc(now)}
    conn.execute(allowance_uses.insert(), use)
    _audit(conn, "grant", about, now, call_sid=call_sid, reference=reference, reason="granted")
    return EffectOutcome(granted=True, reference=reference)


class UnknownReference(IvrError):
    """No allowance use carries this reference."""


def release(conn: Connection, reference: str, reason: str, now: datetime) -> Mapping[str, Any]:
    """Give back the use spent under `reference`; audited. Raises UnknownReference."""
    row = conn.execute(sa.select(allowance_uses).where(allowance_uses.c.reference == reference)).first()
    if row is None:
        raise UnknownReference(f"{reference!r} is not the reference of a spent allowance")
    use = dict(row._mapping)
    conn.execute(allowance_uses.delete().where(allowance_uses.c.id == row.id))
    _audit(conn, "release", use, now, call_sid=row.call_sid, reference=reference, reason=reason)
    return use


def history(conn: Connection, key: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(uses in force, audit trail) for a key such as a policy number, oldest first."""
    uses = conn.execute(
        sa.select(allowance_uses).where(allowance_uses.c.key == key).order_by(allowance_uses.c.created_at)
    )
    trail = conn.execute(sa.select(allowance_audit).where(allowance_audit.c.key == key).order_by(allowance_audit.c.id))
    fix = ("created_at", "period_start", "at")
    as_dicts = [
        [{k: aware(v) if k in fix and v is not None else v for k, v in row._mapping.items()} for row in rows]
        for rows in (uses, trail)
    ]
    return as_dicts[0], as_dicts[1]
