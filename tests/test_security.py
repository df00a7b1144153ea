"""A public number is hit by anyone: signatures, hostile input, failing storage, anonymity, limits."""

import json
import logging
import os
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from twilio.request_validator import RequestValidator

from ivr import create_app
from ivr.simulator import Simulator
from tests.conftest import AUTH_TOKEN, MONDAY_10, SignedClient

EXAMPLES = int(os.environ.get("IVR_HYPOTHESIS_EXAMPLES", "1500" if os.environ.get("CI") else "150"))
CLOCK = {"ivr.clock": MONDAY_10}
PUBLIC = "https://abc123.ngrok.example"


def sign(url: str, form: dict[str, str]) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(url, form)


def continues_or_ends_politely(response: Any) -> ET.Element:
    assert response.status_code == 200, response.data[:200]
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    assert root.find("Gather") is not None or root.find("Dial") is not None or root.find("Hangup") is not None
    return root


# ---------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("config", "environ", "signed_for", "status"),
    [
        ({}, {}, "http://localhost/voice", 200),
        ({}, {}, f"{PUBLIC}/voice", 403),
        ({"PUBLIC_URL": PUBLIC}, {}, f"{PUBLIC}/voice", 200),
        (
            {"PUBLIC_URL": PUBLIC},
            {"HTTP_X_FORWARDED_FOR": "203.0.113.7"},
            "http://localhost/voice",
            403,
        ),  # via a tunnel
        # ngrok in front: it forwards https://abc123.ngrok.example as X-Forwarded-Proto and -Host.
        (
            {"TRUST_PROXY": 1},
            {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "abc123.ngrok.example"},
            f"{PUBLIC}/voice",
            200,
        ),
        (
            {},
            {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "abc123.ngrok.example"},
            f"{PUBLIC}/voice",
            403,
        ),  # forwarded headers are not trusted unless told
        (
            {"TRUST_PROXY": "1"},
            {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "evil.example"},
            f"{PUBLIC}/voice",
            403,
        ),
    ],
)
def test_signature_is_checked_against_the_public_url(
    ivr_databases: Any, config: dict[str, Any], environ: dict[str, str], signed_for: str, status: int
) -> None:
    app = create_app({"DATABASE_URL": ivr_databases(), **config})
    form = {"CallSid": "CA1", "From": "+79161234567"}
    headers = {"X-Twilio-Signature": sign(signed_for, form)}
    reply = app.test_client().post("/voice", data=form, headers=headers, environ_base={**CLOCK, **environ})
    assert reply.status_code == status


def test_rejection_is_logged_with_the_reason_never_the_body(ivr_databases: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    app = create_app({"DATABASE_URL": ivr_databases()})
    form = {"CallSid": "CA1", "From": "+79995550123", "SpeechResult": "Секретная жалоба"}
    reply = app.test_client().post("/voice", data=form, headers={"X-Twilio-Signature": "forged"})
    assert reply.status_code == 403
    assert "rejected POST /voice: signature does not match 'http://localhost/voice'" in caplog.text
    assert "79995550123" not in caplog.text and "Секретная" not in caplog.text


def test_no_token_warns_loudly_at_start_up(ivr_databases: Any, caplog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    caplog.set_level(logging.WARNING, logger="ivr")
    create_app({"DATABASE_URL": ivr_databases()})
    assert "signatures are NOT checked and anyone can call this server" in caplog.text


# ---------------------------------------------------------------- hostile input


@pytest.fixture(scope="module")
def hostile_app(ivr_databases: Any) -> Any:
    app = create_app({"DATABASE_URL": ivr_databases()})
    SignedClient(app).post("/voice", data={"CallSid": "CAknown", "From": "+79161234567"}, environ_base=CLOCK)
    return app


TWILIO_KEYS = [
    "CallSid",
    "From",
    "To",
    "Digits",
    "SpeechResult",
    "Confidence",
    "DialCallStatus",
    "CallStatus",
    "AccountSid",
    "Caller",
    "RecordingUrl",
]
anything = (
    st.text(max_size=300)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=20_000)
    | st.sampled_from(
        [
            "",
            "CAknown",
            "1",
            "#",
            "*",
            "0" * 5000,
            "completed",
            "busy",
            "\x00\x1b[2J",
            "../../etc/passwd",
            "'; DROP TABLE",
        ]
    )
)
forms = st.dictionaries(st.sampled_from(TWILIO_KEYS) | st.text(max_size=30), anything, max_size=12)
paths = st.sampled_from(["/voice", "/voice/status", "/voice/after-emergency"]) | st.builds(
    "/voice/step/{}/{}".format,
    st.integers(min_value=-5, max_value=10**12) | st.text(max_size=12),
    st.sampled_from(["main", "desk_policy", "so_allowance", "psych_transfer", "nope"])
    | st.text(min_size=1, max_size=40),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, form=forms, method=st.sampled_from(["POST", "GET"]))
def test_any_signed_webhook_gets_valid_twiml(hostile_app: Any, path: str, form: dict[str, str], method: str) -> None:
    client = SignedClient(hostile_app)
    if "?" in path or "#" in path or any(ord(ch) < 32 for ch in path):
        path = "/voice/step/1/" + path.encode("utf-8", "replace").hex()[:40]
    reply = (
        client.post(path, data=form, environ_base=CLOCK) if method == "POST" else client.get(path, environ_base=CLOCK)
    )
    if path in ("/voice/status",):
        assert reply.status_code == 200 and ET.fromstring(reply.data).tag == "Response"
    else:
        continues_or_ends_politely(reply)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=4000), path=st.sampled_from(["/voice", "/voice/step/1/main", "/voice/step/x/y"]))
def test_raw_bytes_and_non_utf8_bodies_get_valid_twiml(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, path: str, app_without_token: Any
) -> None:
    app = app_without_token  # no token: the bytes reach the webhook itself
    reply = app.test_client().post(
        path, data=body, content_type="application/x-www-form-urlencoded", environ_base=CLOCK
    )
    continues_or_ends_politely(reply)


@pytest.fixture(scope="module")
def app_without_token(ivr_databases: Any) -> Any:
    return create_app({"DATABASE_URL": ivr_databases(), "TWILIO_AUTH_TOKEN": None})


def test_steps_out_of_order_and_another_calls_sid_keep_the_caller_on_a_sensible_path(sim: Any, client: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("5")  # in the help menu now
    sid = call.call_sid
    waiting = call.exchanges[-1].body
    # A step from the future with a tampered node: its seal does not fit, so it is a lost call.
    tampered = {"CallSid": sid, "Digits": "1"}
    root = continues_or_ends_politely(client.post("/voice/step/9/so_allowance", data=tampered, environ_base=CLOCK))
    assert root.find("Say").text.startswith("Извините")  # type: ignore[union-attr]
    assert root.find("Gather").get("action").startswith("/voice/step/10/main?s=")  # type: ignore[union-attr]
    # The entry webhook again (a retry) is answered exactly as the first time.
    assert client.post("/voice", data={"CallSid": sid}, environ_base=CLOCK).data.decode() == call.exchanges[0].body
    # This call's step URL under a foreign CallSid: the seal is bound to the call, so a lost call.
    action = ET.fromstring(waiting).find("Gather").get("action")  # type: ignore[union-attr]
    other = {"CallSid": "CAother", "Digits": "2"}
    foreign = continues_or_ends_politely(client.post(action, data=other, environ_base=CLOCK))
    assert foreign.find("Say").text.startswith("Извините")  # type: ignore[union-attr]
    call.press("1")  # the real call goes on where it was
    assert "анонимна" in call.heard


# ---------------------------------------------------------------- failing storage


def test_locked_database_apologises_connects_to_the_desk_and_logs_once(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    db = tmp_path / "db.sqlite3"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "DB_BUSY_TIMEOUT": 0.05})
    client = SignedClient(app)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for sid in ("CA1", "CA2", "CA3"):
            root = continues_or_ends_politely(client.post("/voice", data={"CallSid": sid}, environ_base=CLOCK))
            assert "технический сбой" in root.find("Say").text  # type: ignore[union-attr]
            assert root.find("Dial/Number").text == "+78002001441"  # type: ignore[union-attr]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert caplog.text.count("webhooks fail; callers are connected to the operator") == 1
    continues_or_ends_politely(client.post("/voice", data={"CallSid": "CA4"}, environ_base=CLOCK))
    assert "over: the store works again after 3 failures" in caplog.text
    with sqlite3.connect(db) as conn:  # nothing half-written: only the call that got through
        assert [row[0] for row in conn.execute("SELECT call_sid FROM ivr_events")] == ["CA4"]


def test_unreachable_database_apologises(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    store = app.extensions["ivr"].handler.store
    store.dispose()
    (tmp_path / "db.sqlite3").unlink()
    (tmp_path / "db.sqlite3").mkdir()  # the file is now a directory: nothing can open it
    root = continues_or_ends_politely(SignedClient(app).post("/voice", data={"CallSid": "CA1"}, environ_base=CLOCK))
    assert root.find("Dial/Number").text == "+78002001441"  # type: ignore[union-attr]


# ---------------------------------------------------------------- anonymity and logs


def test_psychologist_call_leaves_no_trace_of_the_caller(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "db.sqlite3"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}"})
    sim = Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status")
    call = sim.call(from_="+79997771234", at=MONDAY_10)
    call.press("5").press("1").dial_outcome("busy").press("1").dial_outcome("completed")
    assert call.ended
    app.extensions["ivr"].dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for trace in ("79997771234", "9997771234", call.call_sid):
        assert trace.encode() not in stored, trace
        assert trace not in caplog.text, trace


def test_one_json_line_per_webhook(client: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="ivr.webhook")
    entry = client.post("/voice", data={"CallSid": "CA1", "From": "+79161234567"}, environ_base=CLOCK)
    action = ET.fromstring(entry.data).find("Gather").get("action")  # type: ignore[union-attr]
    client.post(action, data={"CallSid": "CA1", "Digits": "6"}, environ_base=CLOCK)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ivr.webhook"]
    assert [(x["step"], x["node"], x["outcome"]) for x in lines] == [(0, "main", "new"), (1, "info_menu", "step")]
    assert lines[0]["call"] == lines[1]["call"] != "CA1" and lines[0]["call"].startswith("call-")
    assert all(isinstance(x["latency_ms"], float) for x in lines)
    assert "79161234567" not in caplog.text


# ---------------------------------------------------------------- limits


def test_a_body_too_large_still_gets_twiml(client: Any) -> None:
    reply = client.post("/voice", data={"CallSid": "CA1", "SpeechResult": "я" * 100_000}, environ_base=CLOCK)
    assert reply.status_code == 200 and b"<Dial" in reply.data


def test_unknown_webhook_path_and_method_get_twiml(client: Any) -> None:
    for reply in (client.post("/voice/nowhere", environ_base=CLOCK), client.client.put("/voice", environ_base=CLOCK)):
        assert reply.status_code in (200, 403)
    reply = client.post("/voice/nowhere", data={"CallSid": "CA1"}, environ_base=CLOCK)
    continues_or_ends_politely(reply)


def test_an_endless_call_is_ended_politely(ivr_databases: Any) -> None:
    app = create_app({"DATABASE_URL": ivr_databases(), "MAX_CALL_STEPS": 4})
    call = Simulator(app, auth_token=AUTH_TOKEN).call(at=MONDAY_10)
    for _ in range(4):
        call.press("*")
    assert not call.ended
    call.press("*")
    assert call.ended and "звонок длится слишком долго" in call.heard


@pytest.mark.parametrize("path", ["/voice/step/0//main", "/voice/", "/voice//", "/voice/step/1/main/"])
def test_odd_slashes_get_twiml_not_a_redirect(client: Any, path: str) -> None:
    continues_or_ends_politely(client.post(path, data={"CallSid": "CA1"}, environ_base=CLOCK))


def test_a_desk_call_logs_no_policy_name_or_phone(sim: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    call = sim.call(from_="+79995554433", at=MONDAY_10)
    call.press("1").press("88776655#").press("1").say("Кузнецова Мария").press("1").say("боль в груди").press("1")
    assert call.dialed == ["+78002001441"]
    for secret in ("88776655", "9995554433", "Кузнецова", "боль в груди", call.call_sid):
        assert secret not in caplog.text, secret


def test_a_local_simulator_is_accepted_beside_the_public_url(ivr_databases: Any) -> None:
    app = create_app({"DATABASE_URL": ivr_databases(), "PUBLIC_URL": PUBLIC})
    form = {"CallSid": "CA1"}
    local = {"X-Twilio-Signature": sign("http://localhost/voice", form)}
    assert app.test_client().post("/voice", data=form, headers=local, environ_base=CLOCK).status_code == 200
    relayed = {**local, "X-Forwarded-For": "203.0.113.7"}  # the same signature through the tunnel: refused
    assert app.test_client().post("/voice", data=form, headers=relayed, environ_base=CLOCK).status_code == 403


def test_a_webhook_after_the_call_ended_is_answered_without_an_incident(client: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="ivr")
    client.post("/voice", data={"CallSid": "CA1"}, environ_base=CLOCK)
    client.post("/voice/status", data={"CallSid": "CA1", "CallStatus": "completed"}, environ_base=CLOCK)
    root = continues_or_ends_politely(
        client.post("/voice/step/1/main", data={"CallSid": "CA1", "Digits": "3"}, environ_base=CLOCK)
    )
    assert root.find("Say").text.startswith("Извините, связь с меню прервалась")  # type: ignore[union-attr]
    assert "incident" not in caplog.text


class WebhookSequences(RuleBasedStateMachine):
    """Calls that start, step with any input, get retried, end, and come back, in any order:
    every answer is valid TwiML that goes on or ends politely, and no store incident is ever raised."""

    def __init__(self) -> None:
        super().__init__()
        self.client = SignedClient(_STATEFUL_APP)
        self.next_url: dict[str, str] = {}  # where each call's next webhook goes (the sealed action URL)
        self.incidents_before = _STATEFUL_APP.extensions["ivr"].incidents.failures

    sids = Bundle("sids")

    @rule(target=sids, sid=st.sampled_from([f"CAseq{i}" for i in range(4)]))
    def place_a_call(self, sid: str) -> str:
        root = continues_or_ends_politely(self.client.post("/voice", data={"CallSid": sid}, environ_base=CLOCK))
        self._remember(sid, root)
        return sid

    @rule(sid=sids, digits=st.sampled_from(["1", "2", "3", "5", "6", "9", "0", "*", "#", "123456#", "89031234567#"]))
    def press(self, sid: str, digits: str) -> None:
        url = self.next_url.get(sid, "/voice/step/1/main")
        data = {"CallSid": sid, "Digits": digits, "From": "+79161234567"}
        root = continues_or_ends_politely(self.client.post(url, data=data, environ_base=CLOCK))
        self._remember(sid, root)

    @rule(sid=sids, outcome=st.sampled_from(["completed", "busy", "no-answer", "failed", "canceled", ""]))
    def transfer_ends(self, sid: str, outcome: str) -> None:
        url = self.next_url.get(sid, "/voice/step/1/main")
        data = {"CallSid": sid, "DialCallStatus": outcome}
        root = continues_or_ends_politely(self.client.post(url, data=data, environ_base=CLOCK))
        self._remember(sid, root)

    @rule(sid=sids)
    def silence_or_retry(self, sid: str) -> None:
        url = self.next_url.get(sid, "/voice/step/1/main")
        answers = []
        for _ in range(2):  # the same webhook twice: a Twilio retry
            reply = self.client.post(url, data={"CallSid": sid}, environ_base=CLOCK)
            answers.append(reply.data)
            root = continues_or_ends_politely(reply)
        assert answers[0] == answers[1]  # a retry is answered with the very same TwiML
        self._remember(sid, root)

    @rule(sid=sids)
    def call_ends(self, sid: str) -> None:
        reply = self.client.post("/voice/status", data={"CallSid": sid, "CallStatus": "completed"}, environ_base=CLOCK)
        assert reply.status_code == 200

    def _remember(self, sid: str, root: ET.Element) -> None:
        for element in (root.find("Gather"), root.find("Dial")):
            if element is not None and element.get("action", "").startswith("/voice/step/"):
                self.next_url[sid] = element.get("action", "")

    @invariant()
    def no_incident(self) -> None:
        assert _STATEFUL_APP.extensions["ivr"].incidents.failures == 0


_STATEFUL_APP: Any = None


@pytest.fixture
def stateful_app(ivr_databases: Any) -> Iterator[Any]:
    global _STATEFUL_APP
    _STATEFUL_APP = create_app({"DATABASE_URL": ivr_databases(), "LOG_LEVEL": "ERROR"})
    yield _STATEFUL_APP
    _STATEFUL_APP = None


def test_webhook_sequences_in_any_order(stateful_app: Any) -> None:
    run_state_machine_as_test(
        WebhookSequences, settings=settings(max_examples=EXAMPLES // 10, stateful_step_count=25, deadline=None)
    )


def test_an_outage_is_one_line_when_it_starts_and_one_when_it_is_over(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    db = tmp_path / "db.sqlite3"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "DB_BUSY_TIMEOUT": 0.05})
    client = SignedClient(app)
    for sid in ("CA1", "CA2"):  # two calls in progress
        client.post("/voice", data={"CallSid": sid}, environ_base=CLOCK)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for sid in ("CA1", "CA2", "CA3", "CA4"):
            client.post("/voice", data={"CallSid": sid + "x"}, environ_base=CLOCK)
            done = client.post("/voice/status", data={"CallSid": sid, "CallStatus": "completed"}, environ_base=CLOCK)
            assert done.status_code == 200
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    client.post("/voice/status", data={"CallSid": "CA1", "CallStatus": "completed"}, environ_base=CLOCK)
    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.web" and "incident" in r.getMessage()]
    # Four new calls and the status callbacks of the two calls in progress failed; CA3 and CA4 were
    # never calls: their status callbacks had nothing to write, so nothing failed and nothing "worked".
    assert (
        len(lines) == 2 and "webhooks fail" in lines[0] and "over: the store works again after 6 failures" in lines[1]
    )
    assert sum(1 for r in caplog.records if r.exc_info) == 1  # one traceback for six failures
