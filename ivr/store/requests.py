"""Registered requests (desk intake, second opinion, call-back): register, find, list."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ivr.engine.turns import RequestEffect
from ivr.store.tables import aware, requests, utc


def reference_for(number: int) -> str:
    """A reference number with a Luhn check digit, so a mistyped reference is caught: 1 -> '100016'."""
    body = str(10000 + number)  # no leading zeros for the caller to hear
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def register(conn: Connection, call_sid: str, effect: RequestEffect, now: datetime) -> str:
    """Insert a request and give it a reference number (in the caller's transaction)."""
    data = dict(effect.data)
    values = {
        "kind": effect.kind,
        "call_sid": call_sid,
        "policy": data.get("policy") or None,
        "data": json.dumps(data, ensure_ascii=False, sort_keys=True),
        "created_at": utc(now),
    }
    key = conn.execute(requests.insert().values(values)).inserted_primary_key
    assert key is not None  # an INSERT of one row
    row_id = int(key[0])
    reference = reference_for(row_id)
    conn.execute(requests.update().where(requests.c.id == row_id).values(reference=reference))
    return reference


def _as_dict(row: Any) -> dict[str, Any]:
    return {**row._mapping, "data": json.loads(row.data), "created_at": aware(row.created_at)}


def find(conn: Connection, reference: str) -> Mapping[str, Any] | None:
    """The request with this reference, or None."""
    row = conn.execute(sa.select(requests).where(requests.c.reference == reference)).first()
    return _as_dict(row) if row else None


def list_requests(conn: Connection, kind: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """Registered requests, oldest first, optionally of one kind and from a moment on."""
    query = sa.select(requests).order_by(requests.c.id)
    if kind:
        query = query.where(requests.c.kind == kind)
    if since is not None:
        query = query.where(requests.c.created_at >= utc(since))
    return [_as_dict(row) for row in conn.execute(query)]
