"""The same 600 calls through the sealed-state path leave what the database-state path left."""

import json
from pathlib import Path
from typing import Any

import pytest

from ivr import create_app
from tests.conftest import AUTH_TOKEN
from tests.equivalence import place_calls, snapshot

RECORDED = Path(__file__).parent / "fixtures" / "equivalence_600.json"
NEWER_COLUMNS = {"journal": {"inputs"}}
# Facts the journal has kept since the recording: answers that did not lead on (each is a silence,
# a wrong answer or a repeat at a node, tested in test_journal_report.py). Every recorded fact is
# still compared, in order.
NEWER_FACTS = {"silence", "wrong", "repeat"}


def _facts(row: dict[str, Any]) -> list[Any]:
    return [f for f in json.loads(row["facts"] or "[]") if f["type"] not in NEWER_FACTS]


@pytest.mark.slow
def test_600_calls_leave_the_same_requests_allowances_audit_and_journal(ivr_databases: Any) -> None:
    url = ivr_databases()
    app = create_app({"DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, "LOG_LEVEL": "ERROR", "TESTING": True})
    place_calls(app, token=AUTH_TOKEN)
    now = snapshot(app.extensions["ivr"].handler.store.engine)
    app.extensions["ivr"].dispose()
    before = json.loads(RECORDED.read_text(encoding="utf-8"))
    for table in ("requests", "allowance_uses", "allowance_audit", "journal"):
        assert len(now[table]) == len(before[table]), table
        for index, (ours, theirs) in enumerate(zip(now[table], before[table], strict=True)):
            # Columns added since the recording (the journal's input kinds, 0006) are not in it.
            assert set(ours) - set(theirs) <= NEWER_COLUMNS.get(table, set()), f"{table} row {index}"
            if table == "journal":
                assert _facts(ours) == _facts(theirs), f"journal row {index}: facts"
                ours, theirs = {**ours, "facts": None}, {**theirs, "facts": None}
            assert {k: ours[k] for k in theirs} == theirs, f"{table} row {index}"
