"""Flows changed while calls run: a call finishes on the revision it started on, new calls get the new one."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.cli.server import _reload_on_sighup
from ivr.simulator import Simulator
from ivr.store.tables import journal
from tests.conftest import MINI_FLOW, MONDAY_10

# The new revision: the menu is worded anew, key 1 now leads to a new node, `info` is gone.
NEW_FLOW = (
    MINI_FLOW.replace("prompt: Один — справка, два — оператор.", "prompt: Новое меню. Один — новости, два — оператор.")
    .replace('"1": {to: info, say: [справка]}', '"1": {to: news, say: [новости]}')
    .replace(
        "      info:\n        kind: message\n        say: Справка.\n",
        "      news:\n        kind: message\n        say: Новости.\n",
    )
)


@pytest.fixture
def flow_file(write_flow: Callable[[str], Path]) -> Path:
    return write_flow(MINI_FLOW)


def _app(flow: Path, url: str, **extra: Any) -> Any:
    return create_app({"TESTING": True, "FLOW": str(flow), "DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, **extra})


def _sim(app: Any) -> Simulator:
    return Simulator(app, auth_token="12345", status_callback="/voice/status")


def test_a_call_finishes_on_its_revision_while_a_new_call_hears_the_new_menu(
    flow_file: Path, ivr_databases: Any
) -> None:
    app = _app(flow_file, ivr_databases(), WATCH_FLOW=True)
    old = app.extensions["ivr"].handler.revisions.revision
    before = _sim(app).call(at=MONDAY_10)
    assert "Один — справка" in before.heard

    flow_file.write_text(textwrap.dedent(NEW_FLOW).lstrip(), encoding="utf-8")
    after = _sim(app).call(at=MONDAY_10)
    assert "Новое меню" in after.heard
    new = app.extensions["ivr"].handler.revisions.revision
    assert new != old

    before.press("1")  # on its own revision key 1 is still `info`
    assert "Справка." in before.heard and "Новое меню" not in before.heard
    after.press("1")
    assert "Новости." in after.heard
    before.hangup()
    after.hangup()
    with app.extensions["ivr"].handler.store.engine.connect() as conn:
        revisions = {row.call_sid: row.revision for row in conn.execute(sa.select(journal))}
    assert revisions == {before.call_sid: old, after.call_sid: new}
    app.extensions["ivr"].dispose()


def test_another_instance_with_the_new_file_serves_a_call_on_the_old_revision(
    flow_file: Path, write_flow: Callable[..., Path], ivr_databases: Any
) -> None:
    url = ivr_databases()
    first = _app(flow_file, url)
    call = _sim(first).call(at=MONDAY_10)  # its revision is kept in the shared database
    second = _app(write_flow(NEW_FLOW, "new.yaml"), url)  # restarted, or another machine
    call.session = _sim(second)._session()  # the call's next webhook reaches the other instance
    call.press("1")
    assert "Справка." in call.heard and "выбор не распознан" not in call.heard.lower()
    first.extensions["ivr"].dispose()
    second.extensions["ivr"].dispose()


def test_a_revision_no_one_kept_is_a_lost_call_said_politely(
    flow_file: Path, write_flow: Callable[..., Path], ivr_databases: Any
) -> None:
    call = _sim(_app(flow_file, ivr_databases())).call(at=MONDAY_10)
    elsewhere = _app(write_flow(NEW_FLOW, "new.yaml"), ivr_databases())  # a database that never saw it
    call.session = _sim(elsewhere)._session()
    call.press("1")
    assert "связь с меню прервалась" in call.heard and "Новое меню" in call.heard


def test_a_forged_revision_in_the_action_url_breaks_the_seal(flow_file: Path, ivr_databases: Any) -> None:
    app = _app(flow_file, ivr_databases())
    call = _sim(app).call(at=MONDAY_10)
    action = call.waiting.element.get("action")
    call.waiting.element.set("action", action.rsplit("&r=", 1)[0] + "&r=0123456789ab")
    call.press("1")
    assert "связь с меню прервалась" in call.heard


def test_a_broken_edit_keeps_the_running_revision(flow_file: Path, ivr_databases: Any, caplog: Any) -> None:
    app = _app(flow_file, ivr_databases(), WATCH_FLOW=True)
    revision = app.extensions["ivr"].handler.revisions.revision
    flow_file.write_text(flow_file.read_text(encoding="utf-8").replace("next: main", "next: nowhere"), encoding="utf-8")
    call = _sim(app).call(at=MONDAY_10)
    assert "Один — справка" in call.heard
    assert app.extensions["ivr"].handler.revisions.revision == revision
    assert "does not load" in caplog.text and "no node 'nowhere'" in caplog.text


def test_sighup_reloads_the_flow_at_the_next_webhook(flow_file: Path, ivr_databases: Any) -> None:
    app = _app(flow_file, ivr_databases())  # not watching: production, reloaded on a signal
    revisions = app.extensions["ivr"].handler.revisions
    flow_file.write_text(textwrap.dedent(NEW_FLOW).lstrip(), encoding="utf-8")
    assert "Один — справка" in _sim(app).call(at=MONDAY_10).heard
    previous = signal.getsignal(signal.SIGHUP)
    try:
        _reload_on_sighup(revisions)
        os.kill(os.getpid(), signal.SIGHUP)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert "Новое меню" in _sim(app).call(at=MONDAY_10).heard


def test_check_against_the_running_file_says_where_calls_would_be_stranded(
    flow_file: Path, write_flow: Callable[..., Path]
) -> None:
    new = write_flow(NEW_FLOW, "new.yaml")
    result = CliRunner().invoke(main, ["check", str(new), "--against", str(flow_file)])
    assert result.exit_code == 0, result.output
    assert "stranded: info" not in result.output  # a message: no call waits there
    same = CliRunner().invoke(main, ["check", str(flow_file), "--against", str(flow_file)])
    assert "no call in progress could be stranded" in same.output
    without_operator = (
        MINI_FLOW.replace('          "2": operator\n', "")
        .replace("operator: operator", "operator: bye")
        .replace(
            "      operator:\n        kind: transfer\n        contact: desk\n        say: Соединяю.\n"
            "        outcomes: {completed: bye, otherwise: main}\n",
            "",
        )
    )
    gone = write_flow(without_operator, "gone.yaml")
    said = CliRunner().invoke(main, ["check", str(gone), "--against", str(flow_file)])
    assert "stranded: operator (transfer): gone" in said.output
    assert "stranded: main: key 2 no longer offered" in said.output


def test_purge_forgets_revisions_no_call_is_on(flow_file: Path, ivr_databases: Any) -> None:
    from datetime import timedelta

    from ivr.simulator.simulator import parse_at
    from ivr.store import journal as call_journal
    from ivr.store.tables import flow_revisions

    monday = parse_at(MONDAY_10)
    assert monday is not None
    app = _app(flow_file, ivr_databases(), WATCH_FLOW=True)
    handler = app.extensions["ivr"].handler
    _sim(app).call(at=monday).hangup()  # the first revision is kept from Monday 10:00
    waiting = _sim(app).call(at=monday + timedelta(hours=20))  # still on it, a day later
    flow_file.write_text(textwrap.dedent(NEW_FLOW).lstrip(), encoding="utf-8")
    _sim(app).call(at=monday + timedelta(hours=21)).hangup()

    def kept() -> set[str]:
        with handler.store.engine.connect() as conn:
            return {row.revision for row in conn.execute(sa.select(flow_revisions))}

    call_journal.purge(handler.store, handler.flow, monday + timedelta(hours=26), keep_days=90)
    assert len(kept()) == 2  # a call is still on the first revision
    waiting.hangup()
    call_journal.purge(handler.store, handler.flow, monday + timedelta(hours=27), keep_days=90)
    assert kept() == {handler.flow.revision}
    app.extensions["ivr"].dispose()
