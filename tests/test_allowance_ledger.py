"""The second-opinion allowance in the database: once per policy year, audited, released, race-proof."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.engine.turns import RequestEffect, SpendEffect
from ivr.flow.model import AllowanceRule
from ivr.store import Store, allowance
from tests.conftest import MONDAY_10

MSK = ZoneInfo("Europe/Moscow")
RULE = AllowanceRule("second_opinion", 1, "policy_year", 12, 1, "Europe/Moscow")
ROOT = Path(__file__).resolve().parent.parent


def effect(at: datetime, policy: str = "555555") -> SpendEffect:
    start, end = RULE.period_at(at)
    request = RequestEffect("second_opinion", MappingProxyType({"policy": policy}))
    return SpendEffect(RULE.name, RULE.limit, policy, start, end, request)


@pytest.fixture
def store(ivr_databases: Any) -> Store:
    return Store(ivr_databases())


def spend(store: Store, sid: str, at: datetime, policy: str = "555555") -> Any:
    with store.begin() as conn:
        return allowance.spend(conn, sid, effect(at, policy), at)


def test_grants_at_the_last_and_first_second_of_two_policy_years(store: Store) -> None:
    last = datetime(2022, 11, 30, 23, 59, 59, tzinfo=MSK)
    first = datetime(2022, 12, 1, 0, 0, 0, tzinfo=MSK)
    assert spend(store, "CA1", last).granted
    assert spend(store, "CA2", first).granted
    assert not spend(store, "CA3", first).granted


def test_the_same_call_asking_again_gets_the_same_reference_and_spends_nothing(store: Store) -> None:
    at = datetime(2021, 3, 1, 10, tzinfo=MSK)
    first, again = spend(store, "CA1", at), spend(store, "CA1", at)
    assert first.granted and again.granted and first.reference == again.reference
    with store.begin() as conn:
        uses, trail = allowance.history(conn, "555555")
    assert len(uses) == 1 and [t["action"] for t in trail] == ["grant"]


def test_refusal_says_when_it_was_used_and_is_audited(store: Store) -> None:
    used_at = datetime(2021, 1, 15, 12, tzinfo=MSK)
    spend(store, "CA1", used_at)
    refused = spend(store, "CA2", datetime(2021, 6, 1, 9, tzinfo=MSK))
    assert not refused.granted and refused.used_at == used_at.astimezone(UTC)
    with store.begin() as conn:
        _, trail = allowance.history(conn, "555555")
    assert [(t["action"], t["call_sid"], t["reason"]) for t in trail] == [
        ("grant", "CA1", "granted"),
        ("refuse", "CA2", "limit of 1 reached"),
    ]


def test_release_gives_the_use_back_and_is_audited(store: Store) -> None:
    at = datetime(2021, 3, 1, 10, tzinfo=MSK)
    granted = spend(store, "CA1", at)
    with store.begin() as conn:
        allowance.release(conn, granted.reference, "the coordinator could not take the case", at)
    assert spend(store, "CA2", at).granted
    with store.begin() as conn:
        _, trail = allowance.history(conn, "555555")
    assert [t["action"] for t in trail] == ["grant", "release", "grant"]
    assert trail[1]["reason"] == "the coordinator could not take the case"


def test_release_of_an_unknown_reference_is_refused(store: Store) -> None:
    with (
        store.begin() as conn,
        pytest.raises(allowance.UnknownReference, match="'999999' is not the reference of a spent allowance"),
    ):
        allowance.release(conn, "999999", "why", datetime(2021, 3, 1, tzinfo=MSK))


def test_policy_typed_wrong_is_read_back_then_asked_again_at_most_twice(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("5").press("2").press("12#")
    assert call.heard.startswith("Вы ввели: один, два. Номер полиса — от шести до двадцати цифр.")
    call.press("1234567890123456789012345#")
    assert call.heard.startswith("Вы ввели: один, два, три")
    call.press("9#")
    assert "Соединяю с оператором" in call.heard and call.dialed == ["+78002001441"]


@pytest.fixture
def admin(ivr_databases: Any, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("IVR_DATABASE_URL", ivr_databases())
    return CliRunner()


def second_opinion(policy: str, at: str = MONDAY_10) -> list[str]:
    return ["simulate", "--database-url", os.environ["IVR_DATABASE_URL"], "--at", at, "5", "2", f"{policy}#", "1", "1"]


def test_admin_show_release_and_list(admin: CliRunner) -> None:
    assert admin.invoke(main, second_opinion("4455667")).exit_code == 0
    listing = admin.invoke(main, ["requests", "list", "--kind", "second_opinion"])
    reference = listing.output.split()[0]
    assert listing.output == f"{reference}  2021-03-01 10:00  second_opinion policy=4455667\n"

    shown = admin.invoke(main, ["allowance", "show", "4455667"])
    assert shown.exit_code == 0
    assert shown.output.splitlines()[:2] == [
        "policy 4455667",
        "  second_opinion 2020-12-01..2021-12-01: 1 of 1 used",
    ]
    assert f"grant   second_opinion {reference} (granted)" in shown.output

    released = admin.invoke(main, ["allowance", "release", reference, "--reason", "duplicate request"])
    assert released.output == f"released second_opinion of policy 4455667 (request {reference}): duplicate request\n"
    after = admin.invoke(main, ["allowance", "show", "4455667"])
    assert "  second_opinion: no use in force (limit 1 per policy year)" in after.output
    assert f"release second_opinion {reference} (duplicate request)" in after.output

    csv_out = admin.invoke(main, ["requests", "list", "--csv", "--since", "2021-03-01"]).output.splitlines()
    assert csv_out[0] == "reference,kind,created_at,call_sid,policy"
    assert csv_out[1].startswith(f"{reference},second_opinion,2021-03-01T10:00:00+03:00,CA")
    assert admin.invoke(main, ["requests", "list", "--since", "2021-03-02"]).output == "no requests since 2021-03-02\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["allowance", "show", "000000"], "no allowance was ever asked for policy '000000'"),
        (["allowance", "release", "123"], "'123' is not the reference of a spent allowance"),
        (["allowance", "release", "123"], "Missing option '--reason'"),
        (["requests", "list", "--since", "yesterday"], "'yesterday' is not a date like 2021-03-01"),
    ],
)
def test_admin_misuse_is_explained(admin: CliRunner, args: list[str], message: str) -> None:
    if args[:2] == ["allowance", "release"] and "Missing" not in message:
        args = [*args, "--reason", "test"]
    result = admin.invoke(main, args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.slow
def test_sixteen_processes_asking_for_one_policy_get_exactly_one_grant(ivr_databases: Any) -> None:
    script = ROOT / "scripts" / "concurrent_second_opinion.py"
    command = [sys.executable, str(script), "--callers", "16", "--database-url", ivr_databases()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "16 callers, one policy: 1 granted, 15 refused, 0 other"
