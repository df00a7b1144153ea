"""Call-backs: due at once for an open line, else at the line's next opening; placed by
`ivr callbacks run` (Twilio's REST API, or the simulator), retried by the flow's policy, given up."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from twilio.request_validator import RequestValidator

from ivr import create_app
from ivr.cli import main
from ivr.engine.seal import KeyRing
from ivr.flow import loader as flows
from ivr.simulator import Simulator
from ivr.store import Store, callbacks
from ivr.store.callbacks import CallBack, Ticket
from tests.conftest import AUTH_TOKEN, STATE_KEY, action_of
from tests.replay import Recorded

SATURDAY = "2021-03-13T11:00:00+03:00"  # the representative is closed until Monday 15 March, 9:00
MONDAY_9 = "2021-03-15T09:00:00+03:00"
RECORDED = json.loads((Path(__file__).parent / "fixtures" / "twilio_calls.json").read_text(encoding="utf-8"))
PUBLIC = "https://abc123.ngrok.example"


@pytest.fixture
def url(ivr_databases: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """One database for real and simulated calls alike (`--simulated` reads the same one)."""
    database: str = ivr_databases()
    monkeypatch.setenv("IVR_DATABASE_URL", database)
    monkeypatch.setenv("IVR_SIMULATED_DATABASE_URL", database)
    return database


def _ask_the_representative_to_call_back(url: str, at: str) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SIMULATED_DATABASE_URL": url})
    call = Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status").call(at=at)
    call.press("2")  # the representative
    if call.waiting is not None and call.waiting.verb == "dial":
        call.dial_outcome("no-answer")  # open, but nobody picks up
    call.press("2")  # "call me back"
    call.press("1")  # the number I call from is right
    assert "зарегистрирована" in call.heard
    call.hangup()
    app.extensions["ivr"].dispose()


def _run(*args: str) -> Any:
    result = CliRunner().invoke(main, ["callbacks", "run", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _listed(at: str) -> str:
    result = CliRunner().invoke(main, ["callbacks", "--at", at])
    assert result.exit_code == 0, result.output
    return str(result.output)


def _attempts(url: str) -> list[dict[str, Any]]:
    store = Store(url)
    try:
        with store.begin() as conn:
            return callbacks.attempts_of(conn, "100016")
    finally:
        store.dispose()


# ---------------------------------------------------------------- when a call-back is due


def test_a_call_back_asked_for_on_saturday_is_due_at_monday_nine_moscow(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    early = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-15T08:59:00+03:00"])
    assert early.exit_code == 0, early.output
    assert "representative" in early.output and "waiting  2021-03-15 09:00" in early.output
    due = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-15T09:00:00+03:00"])
    header, row = due.output.splitlines()
    assert header.split() == ["request", "line", "phone", "state", "due", "at"]
    assert row.split()[1:] == ["representative", "+79161234567", "due", "2021-03-15", "09:00"]


def test_a_holiday_monday_moves_the_call_back_to_the_next_working_day(url: str) -> None:
    _ask_the_representative_to_call_back(url, "2021-03-06T11:00:00+03:00")  # Monday 8 March is a holiday
    listed = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-08T12:00:00+03:00"])
    assert "waiting  2021-03-09 09:00" in listed.output


def test_a_call_back_to_an_open_line_is_due_at_once(url: str) -> None:
    _ask_the_representative_to_call_back(url, "2021-03-15T10:00:00+03:00")  # open, but the line is busy
    listed = CliRunner().invoke(main, ["callbacks", "--at", "2021-03-15T10:05:00+03:00"])
    assert "due      2021-03-15 10:00" in listed.output


def test_no_call_backs_says_so(url: str) -> None:
    assert CliRunner().invoke(main, ["callbacks"]).output == "no call-back requests\n"


# ---------------------------------------------------------------- placed in the simulator


def test_a_saturday_call_back_is_placed_at_monday_nine_answered_and_connected(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    assert "no call-back is due" in _run("--simulated", "--at", "2021-03-15T08:59:00+03:00")
    placed = _run("--simulated", "--at", MONDAY_9)
    assert "100016  representative  +79161234567     attempt 1 of 3: placed CA" in placed
    assert "Вам звонит медицинский пульт ДМС по вашей заявке на обратный звонок регионального представителя" in placed
    assert "Номер заявки: один, ноль, ноль, ноль, один, шесть." in placed
    assert "☎  transfer to +78002001441 → completed" in placed and placed.rstrip().endswith("→ connected")
    assert "answered 2021-03-15 09:00; attempts 1, last connected" in _listed("2021-03-15T09:05:00+03:00")
    (attempt,) = _attempts(url)
    assert attempt["answered_by"] == "human" and attempt["outcome"] == "connected"
    assert "no call-back is due" in _run("--simulated", "--at", "2021-03-15T10:00:00+03:00")  # never again


def test_an_unanswered_call_back_is_retried_by_the_policy_and_then_given_up(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    assert _run("--simulated", "--at", MONDAY_9, "--answer", "no-answer").rstrip().endswith("→ no-answer")
    assert "failed   2021-03-15 09:00; attempts 1, last no-answer; next 2021-03-15 09:30" in _listed(
        "2021-03-15T09:10:00+03:00"
    )
    assert "no call-back is due" in _run("--simulated", "--at", "2021-03-15T09:29:00+03:00")
    machine = _run("--simulated", "--at", "2021-03-15T09:30:00+03:00", "--answer", "machine")
    assert (
        "attempt 2 of 3" in machine and "Мы перезвоним ещё раз." in machine and machine.rstrip().endswith("→ machine")
    )
    last = _run("--simulated", "--at", "2021-03-15T10:00:00+03:00", "dial:busy")  # answered, the line is busy
    assert "attempt 3 of 3" in last and "Пожалуйста, позвоните на круглосуточный медицинский пульт" in last
    assert "Мы перезвоним" not in last and last.rstrip().endswith("→ not-connected")
    assert "given-up 2021-03-15 09:00; attempts 3, last not-connected" in _listed("2021-03-15T11:00:00+03:00")
    assert "no call-back is due" in _run("--simulated", "--at", "2021-03-16T09:00:00+03:00")
    assert [(a["attempt"], a["answered_by"], a["outcome"]) for a in _attempts(url)] == [
        (1, None, "no-answer"),
        (2, "machine_start", "machine"),
        (3, "human", "not-connected"),
    ]
    report = CliRunner().invoke(main, ["report", "--simulated"]).output
    attempts = report.split("call-back attempts\n", 1)[1]
    assert all(f"  {outcome}" in attempts for outcome in ("no-answer", "machine", "not-connected")), report


def test_a_retry_that_would_fall_after_hours_waits_for_the_next_opening(url: str) -> None:
    _ask_the_representative_to_call_back(url, "2021-03-12T17:40:00+03:00")  # Friday, open until 18:00
    _run("--simulated", "--at", "2021-03-12T17:45:00+03:00", "--answer", "busy")
    assert "next 2021-03-15 09:00" in _listed("2021-03-12T17:50:00+03:00")  # 18:15 is closed: Monday 9:00


def test_a_dry_run_says_what_would_be_placed_and_places_nothing(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    said = _run("--dry-run", "--at", MONDAY_9)
    assert "100016  representative  +79161234567     attempt 1 of 3: would be placed (dry run)" in said
    assert "due      2021-03-15 09:00" in _listed(MONDAY_9) and _attempts(url) == []


def test_simulate_callback_places_one_request_as_the_hotline_would(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    result = CliRunner().invoke(main, ["simulate", "--callback", "100016", "--at", MONDAY_9, "dial:completed"])
    assert result.exit_code == 0, result.output
    assert "по вашей заявке на обратный звонок регионального представителя" in result.output
    assert "call-back 100016, attempt 1: connected" in result.output
    machine = CliRunner().invoke(main, ["simulate", "--callback", "100016", "--at", MONDAY_9, "answer:machine"])
    assert machine.exit_code == 1 and "call-back 100016 is answered already" in machine.output


def test_simulate_callback_of_an_unknown_request_says_so(url: str) -> None:
    result = CliRunner().invoke(main, ["simulate", "--callback", "999999"])
    assert result.exit_code == 2 and "no call-back request 999999" in result.output


# ---------------------------------------------------------------- placed through Twilio's REST API


def _signed_post(client: Any, url: str, data: dict[str, str]) -> Any:
    """A webhook as Twilio sends it to the public URL, signed for that URL."""
    url = PUBLIC + url if url.startswith("/") else url
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, data)
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.post(path, data=data, base_url=PUBLIC, headers={"X-Twilio-Signature": signature})


def _real_call_back_request(url: str, public: bool = True) -> Any:
    """A real caller (no simulator) asks for the representative's call-back on Saturday."""
    app = create_app({"TESTING": True, "DATABASE_URL": url, "PUBLIC_URL": PUBLIC if public else None})
    client = app.test_client()
    sid = "CA" + "3" * 32
    caller = {"CallSid": sid, "From": "+79161234567", "To": "+78002001441", "CallStatus": "in-progress"}
    with freeze_time("2021-03-13T08:00:00Z"):
        answer = _signed_post(client, f"{PUBLIC}/voice", caller)
        for key in ("2", "2", "1"):
            answer = _signed_post(client, action_of(answer), {**caller, "Digits": key})
        assert "зарегистрирована" in answer.data.decode()
        _signed_post(client, f"{PUBLIC}/voice/status", {**caller, "CallStatus": "completed"})
    return app


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", RECORDED["account_sid"])
    monkeypatch.setenv("IVR_CALLBACK_FROM", "+15005550006")
    monkeypatch.setenv("IVR_PUBLIC_URL", PUBLIC)
    recorded = Recorded(monkeypatch, RECORDED, (RECORDED["account_sid"], AUTH_TOKEN))
    yield recorded
    recorded.check()


def test_a_real_call_back_is_placed_through_twilio_with_machine_detection_and_closed_by_its_callbacks(
    url: str, twilio: Any
) -> None:
    app = _real_call_back_request(url)
    twilio("placed")  # calls.create: the webhook and status callback at the tunnel, MachineDetection=Enable
    with freeze_time("2021-03-15T06:00:00Z"):  # Monday 9:00 Moscow
        said = _run()
    assert said.rstrip().endswith(
        "attempt 1 of 3: placed CA22222222222222222222222222222222 (ringing; its status callback ends it)"
    )
    assert "placed   2021-03-15 09:00; attempts 1, last in progress" in _listed(MONDAY_9)
    # Twilio calls the callee; a person answers, hears who calls and why, and is connected.
    call = {"CallSid": "CA" + "2" * 32, "From": "+15005550006", "To": "+79161234567", "Direction": "outbound-api"}
    webhook = RECORDED["placed"][0]["request"]["data"]
    client = app.test_client()
    with freeze_time("2021-03-15T06:00:20Z"):
        answer = _signed_post(client, webhook["Url"], {**call, "CallStatus": "in-progress", "AnsweredBy": "human"})
        assert "регионального представителя" in answer.data.decode() and "<Number>+78002001441</Number>" in (
            answer.data.decode()
        )
        goodbye = _signed_post(client, action_of(answer), {**call, "DialCallStatus": "completed"})
        assert "До свидания" in goodbye.data.decode()
    with freeze_time("2021-03-15T06:05:00Z"):
        _signed_post(client, webhook["StatusCallback"], {**call, "CallStatus": "completed", "CallDuration": "280"})
    assert "answered 2021-03-15 09:00; attempts 1, last connected" in _listed("2021-03-15T09:06:00+03:00")
    (attempt,) = _attempts(url)
    assert attempt["call_sid"] == "CA" + "2" * 32 and attempt["answered_by"] == "human"
    app.extensions["ivr"].dispose()


def test_a_call_twilio_refuses_is_an_attempt_that_failed_and_is_tried_again(url: str, twilio: Any) -> None:
    _real_call_back_request(url).extensions["ivr"].dispose()
    twilio("refused")
    with freeze_time("2021-03-15T06:00:00Z"):
        said = _run()
    assert (
        "attempt 1 of 3: not placed → error: Twilio refused the call: Unable to create record: Account not authorized"
        in said
    )
    assert "(error 21215, HTTP 400)" in said
    assert "failed   2021-03-15 09:00; attempts 1, last error; next 2021-03-15 09:30" in _listed(MONDAY_9)


def test_real_calls_need_the_twilio_settings_and_say_which(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_CALLBACK_FROM", raising=False)
    monkeypatch.delenv("IVR_PUBLIC_URL", raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", RECORDED["account_sid"])
    result = CliRunner().invoke(main, ["callbacks", "run"])
    assert result.exit_code == 2
    assert "set IVR_CALLBACK_FROM (or --from), IVR_PUBLIC_URL (or --public-url) to place real calls" in result.output
    moved = CliRunner().invoke(main, ["callbacks", "run", "--at", MONDAY_9])
    assert moved.exit_code == 2 and "real calls are placed on the real clock" in moved.output
    callee = CliRunner().invoke(main, ["callbacks", "run", "--answer", "machine"])
    assert callee.exit_code == 2 and "add --simulated" in callee.output


# ---------------------------------------------------------------- claimed once, bounded, lost, broken


class _Placer:
    """Places nothing: remembers the attempts, and may hold the first until told to go on."""

    def __init__(self, hold: threading.Event | None = None, entered: threading.Event | None = None) -> None:
        self.placed: list[Ticket] = []
        self.hold, self.entered = hold, entered

    def place(self, callback: CallBack, ticket: Ticket, to: str) -> str:
        self.placed.append(ticket)
        if self.entered is not None:
            self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(10), "the other worker never finished"
        return f"CA{ticket.attempt:032d}"


def test_two_workers_at_once_place_each_attempt_once(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    flow = flows.load(env={})
    now = flows_moment(MONDAY_9)
    first_store, second_store = Store(url), Store(url)  # two instances on one database
    hold, entered = threading.Event(), threading.Event()
    first, second = _Placer(hold, entered), _Placer()
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(callbacks.run(first_store, flow, first, now, "one")))
    worker.start()
    assert entered.wait(10)  # the first worker holds its claim while it places the call
    assert callbacks.run(second_store, flow, second, now, "two") == []
    hold.set()
    worker.join(10)
    assert [t.attempt for t in first.placed] == [1] and second.placed == []
    assert [(a["worker"], a["call_sid"]) for a in _attempts(url)] == [("one", "CA" + "0" * 31 + "1")]
    first_store.dispose()
    second_store.dispose()


def test_no_more_calls_run_at_once_than_the_policy_allows(url: str) -> None:
    for minute in ("11:00", "11:10", "11:20"):
        _ask_the_representative_to_call_back(url, f"2021-03-13T{minute}:00+03:00")
    flow, store, placer = flows.load(env={}), Store(url), _Placer()
    now = flows_moment(MONDAY_9)
    assert [p.callback.reference for p in callbacks.run(store, flow, placer, now)] == ["100016", "100024"]
    assert callbacks.run(store, flow, placer, now) == []  # two are ringing: the policy's at_once
    with store.begin() as conn:
        callbacks.finish_attempt(conn, flow, "100016", 1, "connected", now)
    assert [p.callback.reference for p in callbacks.run(store, flow, placer, now)] == ["100032"]
    store.dispose()


def test_a_placed_call_never_heard_of_again_counts_as_failed_once_its_claim_runs_out(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    flow, store, placer = flows.load(env={}), Store(url), _Placer()
    callbacks.run(store, flow, placer, flows_moment(MONDAY_9))
    assert callbacks.run(store, flow, placer, flows_moment("2021-03-15T10:59:00+03:00")) == []  # still its claim
    assert callbacks.run(store, flow, placer, flows_moment("2021-03-15T11:01:00+03:00")) == []  # lost: 30 min on
    assert "last lost; next 2021-03-15 11:31" in _listed("2021-03-15T11:02:00+03:00")
    again = callbacks.run(store, flow, placer, flows_moment("2021-03-15T11:31:00+03:00"))
    assert [p.attempt for p in again] == [2]
    assert [(a["attempt"], a["outcome"]) for a in _attempts(url)] == [(1, "lost"), (2, None)]
    store.dispose()


def test_a_repeated_status_callback_ends_the_attempt_once(url: str) -> None:
    _ask_the_representative_to_call_back(url, SATURDAY)
    flow, store, placer = flows.load(env={}), Store(url), _Placer()
    now = flows_moment(MONDAY_9)
    callbacks.run(store, flow, placer, now)
    with store.begin() as conn:
        assert callbacks.finish_attempt(conn, flow, "100016", 1, "no-answer", now)
        assert not callbacks.finish_attempt(conn, flow, "100016", 1, "connected", now)
    assert [(a["attempt"], a["outcome"]) for a in _attempts(url)] == [(1, "no-answer")]
    store.dispose()


def test_a_number_that_cannot_be_called_back_is_given_up_at_once(url: str) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SIMULATED_DATABASE_URL": url})
    call = Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status").call(at=SATURDAY)
    for key in ("2", "2", "2", "012345678901#"):  # another number, typed: twelve digits starting with 0
        call.press(key)
    call.press("1")
    app.extensions["ivr"].dispose()
    placed = callbacks.run(Store(url), flows.load(env={}), _Placer(), flows_moment(MONDAY_9))
    assert [(p.outcome, p.detail) for p in placed] == [
        ("undialable", "'+012345678901' is not a number that can be called back")
    ]
    assert "given-up" in _listed(MONDAY_9)


def test_a_forged_ticket_is_a_lost_call_not_anyone_s_call_back(client: Any) -> None:
    answer = client.post("/voice/callback?t=forged", {"CallSid": "CA" + "4" * 32, "AnsweredBy": "human"})
    assert answer.status_code == 200 and "связь с меню прервалась" in answer.data.decode()


def test_a_ticket_opens_only_with_the_ring_that_sealed_it() -> None:
    ticket = Ticket("100016", "representative", 2, True)
    ring = KeyRing.parse(STATE_KEY)
    assert Ticket.open(ring, ticket.seal(ring)) == ticket
    from ivr.engine.seal import new_key

    assert Ticket.open(KeyRing.parse(new_key()), ticket.seal(ring)) is None


@pytest.mark.parametrize(
    ("typed", "called"),
    [("89161234567", "+79161234567"), ("+79161234567", "+79161234567"), ("9161234567", "+79161234567"), ("123", None)],
)
def test_the_number_called_back_is_e164(typed: str, called: str | None) -> None:
    assert callbacks.dialable(typed) == called


def test_the_worker_runs_until_it_is_stopped_and_survives_a_failing_run() -> None:
    class Instant(threading.Event):
        """Waits for nothing: no sleeping in tests."""

        def wait(self, timeout: float | None = None) -> bool:
            return self.is_set()

    stop = Instant()
    runs: list[int] = []

    def one_run() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("the database restarts")
        if len(runs) == 3:
            stop.set()

    assert callbacks.work(one_run, 60, stop) == 3 and runs == [0, 1, 2]


def flows_moment(text: str) -> Any:
    from ivr import clock

    return clock.parse(text, "Europe/Moscow")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["simulate", "answer:machine"], "answer:HOW says how the callee of a call the hotline places answers"),
        (["simulate", "--callback", "100016", "--url", "http://127.0.0.1:5000/voice"], "cannot go with --url"),
        (["simulate", "--callback", "100016", "answer:robot"], "how the callee answers must be one of machine"),
        (["callbacks", "--at", MONDAY_9, "run"], "give --at after `run`"),
        (["callbacks", "run", "--simulated", "--every", "60", "--at", MONDAY_9], "--every runs on the real clock"),
    ],
)
def test_call_back_commands_misused_say_what_to_do(url: str, args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and says in result.output, result.output


def test_a_call_back_webhook_that_failed_is_answered_by_the_fallback_from_its_ticket(url: str) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": url, "PUBLIC_URL": PUBLIC})
    ticket = Ticket("100016", "navigator", 1, False).seal(KeyRing.parse(STATE_KEY))
    form = {"CallSid": "CA" + "5" * 32, "ErrorCode": "11205", "ErrorUrl": f"{PUBLIC}/voice/callback?t={ticket}"}
    answer = _signed_post(app.test_client(), f"{PUBLIC}/voice/fallback", form).data.decode()
    assert "обратный звонок медицинского навигатора" in answer and "<Number>+78007756610</Number>" in answer
    app.extensions["ivr"].dispose()


@pytest.mark.parametrize(
    ("named", "line"), [("representative", "representative"), ("desk_operator", "desk"), ("", "desk")]
)
def test_a_request_s_line_is_its_contact_or_the_contact_of_the_transfer_it_names(named: str, line: str) -> None:
    assert callbacks.line_of(flows.load(env={}), {"contact": named}) == line
