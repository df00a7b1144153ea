"""The call journal and `ivr report`: where callers go, where they give up, what the psychologist keeps."""

import json
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.simulator import Simulator
from ivr.store.tables import journal
from tests.conftest import AUTH_TOKEN, MONDAY_10, SATURDAY_10, SignedClient


def rows(app: Any) -> list[dict[str, Any]]:
    store = app.extensions["ivr"].handler.store
    with store.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(journal).order_by(journal.c.id))]


def test_journal_keeps_path_branch_facts_and_how_the_call_ended(sim: Any, app: Any) -> None:
    sim.call(at=MONDAY_10).press("3").dial_outcome("busy").press("1").dial_outcome("completed")
    sim.call(at=MONDAY_10).press("6").hangup()
    sim.call(at="2021-03-01T19:30:00+03:00").press("2").press("2").press("1").hangup()
    first, second, third = rows(app)
    assert first["branch"] == "navigator_info" and first["end"] == "goodbye"
    assert json.loads(first["path"])[:4] == ["greeting", "main", "navigator_info", "navigator_transfer"]
    assert [f for f in json.loads(first["facts"]) if f["type"] == "dial"] == [
        {"type": "dial", "contact": "navigator", "outcome": "busy"},
        {"type": "dial", "contact": "navigator", "outcome": "completed"},
    ]
    assert (second["branch"], second["end"], second["last_node"]) == ("info_menu", "abandoned", "info_menu")
    facts = json.loads(third["facts"])
    assert {"type": "closed", "schedule": "representative", "at": "2021-03-01T19:30:00+03:00"} in facts
    assert {"type": "request", "kind": "callback"} in facts
    assert first["call_sid"] and first["ended_at"] is not None and first["duration"] >= 60


def test_a_psychologist_call_keeps_only_the_hour_it_happened(sim: Any, app: Any) -> None:
    sim.call(at="2021-03-01T10:42:17+03:00").press("5").press("1").dial_outcome("completed")
    (row,) = rows(app)
    assert row["anonymous"] and row["end"] == "anonymous"
    assert all(row[k] is None for k in ("call_sid", "branch", "path", "last_node", "facts", "ended_at", "duration"))
    assert row["started_at"].isoformat().startswith("2021-03-01 07:00:00".replace(" ", "T"))


@pytest.fixture
def busy_week(ivr_databases: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    url = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_SIMULATED_DATABASE_URL", url)  # a demo database: the simulated week is its data
    app = create_app({"LOG_LEVEL": "ERROR"})
    sim = Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status")
    sim.call(at=MONDAY_10).press("3").dial_outcome("completed")
    sim.call(at=SATURDAY_10).press("2").hangup()
    sim.call(at="2021-03-01T19:10:00+03:00").press("2").hangup()
    sim.call(at=MONDAY_10).press("5").press("2").press("555555#").press("1").press("1").dial_outcome("busy").hangup()
    sim.call(at="2021-03-02T10:00:00+03:00").press("5").press("2").press("555555#").press("1").press("1").hangup()
    sim.call(at=MONDAY_10).press("5").press("1").hangup()
    return app


def test_report_table(busy_week: Any) -> None:
    out = CliRunner().invoke(main, ["report"]).output
    assert out.startswith("Calls from the beginning until now\n")
    for line in [
        "  all                                                   6",
        "  anonymous (psychologist)                              1",
        "  5: help_menu                                          2",
        "  2: rep_hours                                          2",
        "  rep_closed                                            2",
        "  Mon 19:00                                             1",
        "  Sat 10:00                                             1",
        "  grant                                                 1",
        "  refuse                                                1",
        "  coordinator: busy                                     1",
        "  navigator: completed                                  1",
    ]:
        assert line + "\n" in out, line


def test_report_period_csv_and_html(busy_week: Any) -> None:
    runner = CliRunner()
    csv_out = runner.invoke(
        main, ["report", "--format", "csv", "--since", "2021-03-02", "--until", "2021-03-07"]
    ).output
    assert csv_out.splitlines()[:3] == ["section,label,count", "calls,all,2", "calls,anonymous (psychologist),0"]
    page = runner.invoke(main, ["report", "--format", "html"]).output
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 6
    assert "<script" not in page and 'src="' not in page and "<link" not in page  # one file, nothing fetched
    assert "After-hours demand: representative" in page and "Mon 19:00 — 1" in page


def test_report_refuses_a_bad_date(busy_week: Any) -> None:
    result = CliRunner().invoke(main, ["report", "--since", "last week"])
    assert result.exit_code == 2 and "'last week' is not a date like 2021-03-01" in result.output


def test_purge_keeps_the_retention(busy_week: Any) -> None:
    result = CliRunner().invoke(main, ["purge", "--days", "30"])
    assert result.output == "deleted 6 journal rows older than 30 days\n"  # the simulated calls are from 2021
    assert rows(busy_week) == []


def _failing(store: Any, statement: str) -> Any:
    """An engine event that fails the first statement starting with `statement`, as a crash would."""
    failed: list[str] = []

    def before(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.lstrip().upper().startswith(statement) and not failed:
            failed.append(sql)
            raise OSError("killed")

    sa.event.listen(store.engine, "before_cursor_execute", before)
    return before, failed


def _count_events(store: Any) -> int:
    from ivr.store.tables import events

    with store.begin() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() or 0)


@pytest.mark.parametrize("fails_at", ["INSERT", "DELETE"])
def test_a_status_callback_whose_write_fails_leaves_no_row_and_every_event(sim: Any, app: Any, fails_at: str) -> None:
    """The journal row and the forgetting of the call's events are one transaction: a failure at
    either statement leaves both undone, and the next status callback (or `ivr purge`) folds them."""
    from datetime import datetime, timedelta

    from ivr.store import journal as journal_

    handler = app.extensions["ivr"].handler
    store = handler.store
    call = sim.call(at=MONDAY_10).press("6")
    listener, failed = _failing(store, fails_at)
    call.hangup()  # its status callback fails
    sa.event.remove(store.engine, "before_cursor_execute", listener)
    assert failed and rows(app) == []
    assert _count_events(store) == 2  # the entry's and the key's
    journal_.purge(store, handler.flow, datetime.fromisoformat(MONDAY_10) + timedelta(days=2), keep_days=30)
    (written,) = rows(app)
    assert written["call_sid"] == call.call_sid and written["end"] == "abandoned"
    assert _count_events(store) == 0


def test_a_second_status_callback_keeps_the_row_the_first_wrote(sim: Any, app: Any) -> None:
    store = app.extensions["ivr"].handler.store
    call = sim.call(at=MONDAY_10).press("6")
    call.hangup()
    (first,) = rows(app)
    assert _count_events(store) == 0
    assert not store.fold(
        call.call_sid, lambda found, _row: {"call_sid": call.call_sid, "started_at": found[0].at} | _ROW
    )
    assert rows(app) == [first]


_ROW = {"anonymous": False, "path": "[]", "end": "abandoned"}


def test_racing_status_callbacks_of_anonymous_calls_leave_one_row_each(ivr_databases: Any) -> None:
    """Twilio may repeat a status callback; eight at once for each psychologist's call: one row."""
    import threading

    url = ivr_databases()
    app = create_app({"DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, "LOG_LEVEL": "ERROR"})
    sim = Simulator(app, auth_token=AUTH_TOKEN)  # no status callback: the test sends them
    sids = []
    for _ in range(10):
        call = sim.call(at=MONDAY_10).press("5").press("1")  # the psychologist: anonymous from here
        call.dial_outcome("completed")
        sids.append(call.call_sid)
    clock = {"ivr.clock": MONDAY_10, "ivr.simulated": True}
    barrier = threading.Barrier(8)

    def complete(sid: str) -> None:
        barrier.wait()
        form = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "60"}
        assert SignedClient(app).post("/voice/status", data=form, environ_base=clock).status_code == 200

    for sid in sids:
        racing = [threading.Thread(target=complete, args=(sid,)) for _ in range(8)]
        for thread in racing:
            thread.start()
        for thread in racing:
            thread.join()
    written = rows(app)
    assert len(written) == 10 and all(row["anonymous"] and row["call_sid"] is None for row in written)
    app.extensions["ivr"].dispose()


@pytest.mark.parametrize("callbacks_before", [1, 2])
def test_a_transfer_outcome_after_the_status_callback_updates_the_call_s_row(
    sim: Any, app: Any, callbacks_before: int
) -> None:
    """completed, then the Dial's action (the outcome), then completed again or `ivr purge`."""
    from datetime import datetime, timedelta

    from ivr.store import journal as journal_

    handler = app.extensions["ivr"].handler
    call = sim.call(at=MONDAY_10).press("3")  # put through to the navigator, waiting in the Dial
    clock = {"ivr.clock": MONDAY_10, "ivr.simulated": True}
    form = {"CallSid": call.call_sid, "CallStatus": "completed", "CallDuration": "90"}
    client = SignedClient(app)
    client.post("/voice/status", data=form, environ_base=clock)
    (closed,) = rows(app)
    assert [f for f in json.loads(closed["facts"]) if f["type"] == "dial"] == []
    call.dial_outcome("busy")  # the outcome arrives late
    if callbacks_before == 2:
        client.post("/voice/status", data=form, environ_base=clock)
    else:
        journal_.purge(handler.store, handler.flow, datetime.fromisoformat(MONDAY_10) + timedelta(days=2), 30)
    (updated,) = rows(app)
    assert updated["id"] == closed["id"] and updated["started_at"] == closed["started_at"]
    assert {"type": "dial", "contact": "navigator", "outcome": "busy"} in json.loads(updated["facts"])
    assert json.loads(updated["path"])[: len(json.loads(closed["path"]))] == json.loads(closed["path"])
    assert json.loads(updated["inputs"])[-1] == "dial"


def test_journal_keeps_where_answers_did_not_lead_on(sim: Any, app: Any) -> None:
    call = sim.call(at=MONDAY_10).silence().press("8").press("*").press("1")
    # A policy number too short, then one read back and entered again ("2"), then confirmed.
    call.press("1234#").press("123456#").press("2").press("123456#").press("1").hangup()
    (row,) = rows(app)
    answers = [f for f in json.loads(row["facts"]) if f["type"] in ("silence", "wrong", "repeat")]
    assert answers == [
        {"type": "silence", "node": "main"},
        {"type": "wrong", "node": "main"},
        {"type": "repeat", "node": "main"},
        {"type": "wrong", "node": "desk_policy"},
        {"type": "repeat", "node": "desk_policy"},
    ]
    assert "1234" not in row["facts"] and "123456" not in row["facts"]  # never what was typed
