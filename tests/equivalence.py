"""600 deterministic calls into the hotline, and a snapshot of what they leave in the store.

The fixture `tests/fixtures/equivalence_600.json` was recorded with the call-state-in-the-database
path (before the state moved into sealed action URLs), by

    python -m tests.equivalence > tests/fixtures/equivalence_600.json

`test_equivalence.py` plays the same calls (same CallSids, inputs and clock) through today's path
and compares: requests, allowance uses, audit rows and journal rows must be the same.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ivr.simulator import Simulator, SimulatorError
from ivr.simulator.console import parse_token, perform
from ivr.store.tables import allowance_audit, allowance_uses, journal, requests

MSK = ZoneInfo("Europe/Moscow")
CALLS = 600
SEED = 20211130
OUTCOMES = ["completed"] * 6 + ["busy", "no-answer", "failed", "canceled"]

# (weight, inputs); None hangs up there. POLICY is a policy number from a small set, so that
# second opinions of the same policy meet (granted once per policy year, then refused).
PATHS: list[tuple[int, list[str | None]]] = [
    (16, ["1", "POLICY#", "1", "say:Иванов Иван Иванович", "1", "say:болит горло", "1", "DIAL"]),
    (4, ["1", "POLICY#", "2", "POLICY#", "1", "say:Петрова Анна", "2", "say:Петрова Анна", "1", "say:кашель", "2"]),
    (4, ["1", "12#", "POLICY#", "1", None]),
    (14, ["2", "DIAL", "1", "DIAL"]),
    (6, ["2", "2", "1"]),
    (4, ["2", "1", "DIAL"]),
    (10, ["3", "DIAL", "2"]),
    (4, ["4", "DIAL"]),
    (6, ["5", "1", "DIAL", "9", "hangup"]),
    (10, ["5", "2", "POLICY#", "1", "1", "DIAL"]),
    (3, ["5", "2", "POLICY#", "1", "2", None]),
    (6, ["6", "1", "2", "3", "4", "5", "9", None]),
    (4, ["7", "8", "*", "say:навигатор", "DIAL"]),
    (4, ["0", "DIAL"]),
    (4, ["-", "-", "-", "DIAL"]),
    (2, [None]),
]


def _moment(rng: random.Random) -> datetime:
    # Mostly a spring week (open and closed hours, a weekend), some calls after the programme ended.
    base = datetime(2021, 11, 29, tzinfo=MSK) if rng.random() < 0.1 else datetime(2021, 3, 1, tzinfo=MSK)
    return base + timedelta(days=rng.randrange(7), hours=rng.randrange(24), minutes=rng.randrange(60))


def place_calls(app: Any, calls: int = CALLS, seed: int = SEED, token: str = "") -> None:
    """Play the calls into `app` in-process; every call ends with Twilio's status callback."""
    rng = random.Random(seed)
    sim = Simulator(app, auth_token=token, status_callback="/voice/status")
    weights = [w for w, _ in PATHS]
    for number in range(calls):
        _, inputs = rng.choices(PATHS, weights=weights)[0]
        caller = f"+7916{rng.randrange(10**7):07d}" if rng.random() < 0.9 else "anonymous"
        policy = str(1_000_000 + rng.randrange(25))
        call = sim.call(from_=caller, at=_moment(rng).isoformat(), call_sid=f"CA{number:032d}")
        for token_ in inputs:
            if call.ended or token_ is None:
                break
            text = f"dial:{rng.choice(OUTCOMES)}" if token_ == "DIAL" else token_.replace("POLICY", policy)
            try:
                perform(call, parse_token(text))  # the same actions as `ivr simulate` tokens
            except SimulatorError:
                break  # the call went another way than this path expects: this caller gives up
        if not call.ended:
            call.hangup()


def _utc(moment: datetime) -> datetime:
    # PostgreSQL gives moments back with their offset, SQLite without: both are UTC.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _rows(conn: sa.Connection, table: sa.Table, order: Any, drop: tuple[str, ...] = ("id",)) -> list[dict[str, Any]]:
    out = []
    for row in conn.execute(sa.select(table).order_by(*order)):
        values = {k: v for k, v in row._mapping.items() if k not in drop}
        out.append({k: (_utc(v).isoformat() if isinstance(v, datetime) else v) for k, v in values.items()})
    return out


def snapshot(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    """What the calls left: requests, allowance uses and audit, journal rows (stable order, no ids)."""
    j = journal.c
    with engine.connect() as conn:
        return {
            "requests": _rows(conn, requests, [requests.c.id]),
            "allowance_uses": _rows(conn, allowance_uses, [allowance_uses.c.id]),
            "allowance_audit": _rows(conn, allowance_audit, [allowance_audit.c.id]),
            # The flow revision a call was on is newer than the recording: not compared.
            "journal": _rows(conn, journal, [j.anonymous, j.call_sid, j.started_at], drop=("id", "revision")),
        }


def main() -> None:
    import tempfile

    from ivr import create_app

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/eq.sqlite3"
        app = create_app(
            {"DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, "LOG_LEVEL": "ERROR", "TWILIO_AUTH_TOKEN": None}
        )
        place_calls(app)
        json.dump(snapshot(app.extensions["ivr"].handler.store.engine), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
