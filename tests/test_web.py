"""The webhooks: valid TwiML whatever arrives, retries without repeated effects, signatures, status."""

import io
import logging
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator

from ivr import create_app
from ivr.store.tables import events, journal
from tests.conftest import MONDAY_10, SignedClient, action_of

CLOCK = {"ivr.clock": MONDAY_10}


def post(client: Any, path: str, **form: str) -> Any:
    return client.post(path, data=form, environ_base=CLOCK)


def follow(client: Any, response: Any, **form: str) -> Any:
    """Post `form` to where the answer sends the call next, as Twilio does."""
    return client.post(action_of(response), data=form, environ_base=CLOCK)


def unsealed(document: str) -> str:
    """The document with each sealed state (it differs in every call) and the flow's revision (it
    differs with every edit of the flow) written as SEALED."""
    return re.sub(r"\?s=[A-Za-z0-9_-]+(&amp;r=[0-9a-f]+)?", "?s=SEALED", document)


def parse(response: Any) -> ET.Element:
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


GOLDEN_ENTRY = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Say language="ru-RU" voice="Polly.Tatyana">Здравствуйте! Вы позвонили на круглосуточный медицинский пульт '
    "по программе добровольного медицинского страхования. Если есть угроза жизни, положите трубку и сразу звоните "
    "по номеру сто три или сто двенадцать: такая помощь оказывается экстренными службами.</Say>"
    '<Gather action="/voice/step/1/main?s=SEALED" actionOnEmptyResult="true" finishOnKey="" '
    'hints="помощь, врач, пульт, '
    "заболел, лечение, записаться, представитель, навигатор, лекарство, препарат, расширение, психолог, "
    'второе мнение, мнение, информация, справка, оператор" input="dtmf speech" language="ru-RU" method="POST" '
    'numDigits="1" speechTimeout="2" timeout="6"><Say language="ru-RU" voice="Polly.Tatyana">Чтобы '
    "организовать медицинскую помощь, нажмите 1. Региональный представитель — 2. Медицинский навигатор — 3. "
    "Расширение программы — 4. Психологическая помощь и второе медицинское мнение — 5. Справочная информация — 6. "
    "Оператор медицинского пульта — 0. Повторить меню — звёздочка.</Say></Gather>"
    '<Redirect method="POST">/voice/step/1/main?s=SEALED</Redirect></Response>'
)

GOLDEN_NAVIGATOR = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Say language="ru-RU" voice="Polly.Tatyana">Медицинский навигатор консультирует о назначенных лекарствах, '
    "их взаимодействии и аналогах, а также о медицинских организациях. Прямой номер навигатора: восемь, восемьсот, "
    "семьсот семьдесят пять, шестьдесят шесть, десять.</Say>"
    '<Say language="ru-RU" voice="Polly.Tatyana">Соединяю с медицинским навигатором.</Say>'
    '<Dial action="/voice/step/2/navigator_transfer?s=SEALED" method="POST" timeout="30">'
    "<Number>+78007756610</Number></Dial>"
    "</Response>"
)

GOLDEN_GOODBYE = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Say language="ru-RU" voice="Polly.Tatyana">Спасибо за звонок. Будьте здоровы! До свидания.</Say>'
    "<Hangup /></Response>"
)


def test_golden_entry_twiml(client: Any) -> None:
    assert unsealed(post(client, "/voice", CallSid="CA1", From="+79161234567").data.decode()) == GOLDEN_ENTRY


def test_golden_transfer_and_goodbye_twiml(client: Any) -> None:
    entry = post(client, "/voice", CallSid="CA1")
    navigator = follow(client, entry, CallSid="CA1", Digits="3")
    assert unsealed(navigator.data.decode()) == GOLDEN_NAVIGATOR
    done = follow(client, navigator, CallSid="CA1", DialCallStatus="completed")
    assert done.data.decode() == GOLDEN_GOODBYE


def test_the_gather_and_its_redirect_carry_the_same_sealed_state(client: Any) -> None:
    root = parse(post(client, "/voice", CallSid="CA1"))
    assert root.find("Gather").get("action") == root.find("Redirect").text  # type: ignore[union-attr]


def test_entry_answers_get_as_well(client: Any) -> None:
    root = parse(client.get("/voice?CallSid=CA9&From=%2B79161234567", environ_base=CLOCK))
    assert root.find("Gather") is not None


def test_retried_webhook_gets_the_same_twiml_and_registers_nothing_twice(
    sim: Any, client: Any, requests_of: Any
) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("1").press("123456#").press("1").say("Иванов Иван").press("1").say("кашель").press("1")
    assert call.dialed == ["+78002001441"] and len(requests_of("desk")) == 1
    last = call.exchanges[-1]
    path = last.url.removeprefix("http://localhost")
    again = client.post(path, data=last.params, environ_base=CLOCK)
    assert again.data.decode() == last.body
    assert len(requests_of("desk")) == 1


def test_unknown_call_sid_on_a_step_hears_the_main_menu(client: Any) -> None:
    root = parse(post(client, "/voice/step/7/main", CallSid="CAunknown", Digits="5"))
    assert root.find("Say").text.startswith("Извините")  # type: ignore[union-attr]
    assert root.find("Gather").get("action").startswith("/voice/step/8/main?s=")  # type: ignore[union-attr]


def test_a_seal_moved_to_another_step_node_or_call_is_a_lost_call_and_changes_nothing(
    client: Any, requests_of: Any
) -> None:
    entry = post(client, "/voice", CallSid="CA1")
    info = follow(client, entry, CallSid="CA1", Digits="6")
    seal = action_of(info).partition("?")[2]
    for forged, sid in (
        (f"/voice/step/5/help_menu?{seal}", "CA1"),  # another step and node
        (f"/voice/step/2/help_menu?{seal}", "CA1"),  # another node
        (action_of(info), "CA2"),  # another call's CallSid
        (action_of(info)[:-4] + "AAAA", "CA1"),  # a seal changed in its last characters
    ):
        lost = parse(client.post(forged, data={"CallSid": sid, "Digits": "1"}, environ_base=CLOCK))
        assert lost.find("Say").text.startswith("Извините")  # type: ignore[union-attr]
        assert "/main?s=" in lost.find("Gather").get("action")  # type: ignore[union-attr]
    assert requests_of() == []
    nxt = parse(follow(client, info, CallSid="CA1", Digits="1"))  # the real URL still works
    assert "полис ОМС" in nxt.find("Say").text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"CallSid": ""},
        {"CallSid": "CA1'; DROP TABLE ivr_calls;--"},
        {"CallSid": "x" * 500},
        {"CallSid": "CA1", "Digits": "\x00\x01" * 100},
        {"CallSid": "CA1", "SpeechResult": "я" * 10000},
        {"CallSid": "CA1", "DialCallStatus": "exploded"},
    ],
)
def test_garbage_still_gets_valid_twiml(client: Any, form: dict[str, str]) -> None:
    post(client, "/voice", CallSid="CA1")
    for path in ("/voice", "/voice/step/1/main", "/voice/step/abc/../../etc", "/voice/step/99999999999/main"):
        parse(post(client, path, **form))


def test_a_body_over_the_limit_is_not_read_and_still_gets_valid_twiml(client: Any) -> None:
    form = {"CallSid": "CA1", "SpeechResult": "a" * (70 * 1024)}  # over IVR_MAX_CONTENT_LENGTH (64 KiB)
    root = parse(client.post("/voice", data=form, environ_base=CLOCK))
    assert root.find("Dial/Number").text == "+78002001441"  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["multipart", "chunked"])
def test_a_body_twilio_does_not_send_is_read_all_the_same(client: Any, how: str) -> None:
    form = {"CallSid": "CA7", "From": "+79161234567"}
    signature = {"X-Twilio-Signature": client.validator.compute_signature("http://localhost/voice", form)}
    if how == "multipart":
        reply = client.client.post("/voice", data=form, content_type="multipart/form-data", headers=signature)
    else:  # no Content-Length: werkzeug reads the stream to its end
        reply = client.client.post(
            "/voice",
            input_stream=io.BytesIO(b"CallSid=CA7&From=%2B79161234567"),
            content_type="application/x-www-form-urlencoded",
            environ_base=CLOCK,
            environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
            headers={"Transfer-Encoding": "chunked", **signature},
        )
    assert parse(reply).find("Gather") is not None  # signed, read: greeted and given the main menu


def test_missing_call_sid_connects_the_caller_to_the_operator(client: Any) -> None:
    root = parse(post(client, "/voice"))
    assert root.find("Dial/Number").text == "+78002001441"  # type: ignore[union-attr]
    assert root.find("Dial").get("action") == "/voice/after-emergency"  # type: ignore[union-attr]
    bye = parse(post(client, "/voice/after-emergency"))
    assert bye.find("Hangup") is not None


def test_store_failure_apologises_and_connects_to_the_operator(app: Any, client: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="ivr")
    store = app.extensions["ivr"].handler.store
    store.dispose()
    store.engine = __import__("sqlalchemy").create_engine("sqlite:////nonexistent-dir/ivr.sqlite3")
    root = parse(post(client, "/voice", CallSid="CA1"))
    assert "технический сбой" in root.find("Say").text  # type: ignore[union-attr]
    assert root.find("Dial/Number").text == "+78002001441"  # type: ignore[union-attr]
    assert "webhooks fail; callers are connected to the operator" in caplog.text


def test_status_callback_folds_the_events_into_the_journal_and_forgets_them(app: Any, client: Any) -> None:
    entry = post(client, "/voice", CallSid="CA1")
    follow(client, entry, CallSid="CA1", Digits="6")
    store = app.extensions["ivr"].handler.store
    with store.engine.connect() as conn:
        assert [row.step for row in conn.execute(events.select())] == [0, 1]
        assert conn.execute(journal.select()).all() == []
    assert parse(post(client, "/voice/status", CallSid="CA1", CallStatus="completed")).findall("*") == []
    with store.engine.connect() as conn:
        assert conn.execute(events.select()).all() == []
        (row,) = conn.execute(journal.select()).all()
    assert row.call_sid == "CA1" and row.branch == "info_menu" and row.last_node == "info_menu"


@freeze_time("2021-03-01 07:00:00")  # 10:00 in Moscow; the server clock runs in UTC
def test_server_clock_is_used_when_no_simulated_time_is_given(ivr_databases: Any) -> None:
    client = SignedClient(create_app({"DATABASE_URL": ivr_databases()}))
    entry = client.post("/voice", data={"CallSid": "CA1"})
    reply = client.post(action_of(entry), data={"CallSid": "CA1", "Digits": "2"})
    assert b"<Dial" in reply.data and "представителем".encode() in reply.data


def test_simulated_clock_header_is_ignored_unless_allowed(ivr_databases: Any) -> None:
    for allowed, expect_open in ((False, False), (True, True)):
        app = create_app({"DATABASE_URL": ivr_databases(), "ALLOW_SIMULATED_CLOCK": allowed})
        client = SignedClient(app)
        headers = {"X-Ivr-Clock": MONDAY_10}
        with freeze_time("2021-03-06 07:00:00"):  # a Saturday: closed by the real clock
            entry = client.post("/voice", data={"CallSid": "CA1"}, headers=headers)
            reply = client.post(action_of(entry), data={"CallSid": "CA1", "Digits": "2"}, headers=headers)
        assert (b"<Dial" in reply.data) is expect_open


class TestSignatures:
    TOKEN = "12345"

    @pytest.fixture
    def signed_app(self, ivr_databases: Any) -> Any:
        return create_app(
            {
                "DATABASE_URL": ivr_databases(),
                "TWILIO_AUTH_TOKEN": self.TOKEN,
                "PUBLIC_URL": "https://abc.ngrok.example",
            }
        )

    def sign(self, url: str, form: dict[str, str]) -> str:
        return RequestValidator(self.TOKEN).compute_signature(url, form)

    def test_request_signed_for_the_public_url_is_accepted(self, signed_app: Any) -> None:
        form = {"CallSid": "CA1", "From": "+79161234567"}
        headers = {"X-Twilio-Signature": self.sign("https://abc.ngrok.example/voice", form)}
        reply = signed_app.test_client().post("/voice", data=form, headers=headers)
        assert reply.status_code == 200 and b"<Gather" in reply.data

    @pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "wrong-url"])
    def test_missing_or_bad_signature_is_refused(self, signed_app: Any, signature: str | None, caplog: Any) -> None:
        caplog.set_level(logging.WARNING, logger="ivr")
        form = {"CallSid": "CA1"}
        headers = {}
        if signature == "wrong-url":
            headers["X-Twilio-Signature"] = self.sign("https://elsewhere.example/voice", form)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        reply = signed_app.test_client().post("/voice", data=form, headers=headers)
        assert reply.status_code == 403
        assert "rejected POST /voice" in caplog.text


def test_a_write_conflict_rolls_back_the_effects_and_answers_again(sim: Any, app: Any, requests_of: Any) -> None:
    store = app.extensions["ivr"].handler.store
    real_save = store.save_turn
    conflicts = []

    def save_once_late(*args: Any, **kwargs: Any) -> None:
        if not conflicts:  # the first write finds that a twin of this webhook committed first
            conflicts.append(1)
            raise IntegrityError("INSERT INTO ivr_turns", {}, Exception("UNIQUE constraint failed"))
        real_save(*args, **kwargs)

    call = sim.call(at=MONDAY_10)
    call.press("1").press("123456#").press("1").say("Иванов").press("1").say("кашель")
    store.save_turn = save_once_late
    call.press("1")  # confirms the phone: registers the desk request
    assert conflicts and len(requests_of("desk")) == 1  # the conflicting attempt left nothing behind
    assert "Заявка зарегистрирована" in call.heard and call.dialed == ["+78002001441"]


def test_the_simulated_clock_is_never_taken_through_a_tunnel(ivr_databases: Any) -> None:
    app = create_app({"DATABASE_URL": ivr_databases(), "ALLOW_SIMULATED_CLOCK": True})
    client = SignedClient(app)
    with freeze_time("2021-03-06 07:00:00"):  # Saturday: closed by the real clock
        headers = {"X-Ivr-Clock": MONDAY_10, "X-Forwarded-For": "203.0.113.7"}
        entry = client.post("/voice", data={"CallSid": "CA1"}, headers=headers)
        reply = client.post(action_of(entry), data={"CallSid": "CA1", "Digits": "2"}, headers=headers)
    assert b"<Dial" not in reply.data


@pytest.mark.parametrize("step", ["²", "٣", "1²", "-1", "99999999"])
def test_a_step_number_that_is_no_plain_number_is_a_lost_call_said_politely(client: Any, step: str) -> None:
    root = parse(post(client, f"/voice/step/{step}/main", CallSid="CA1", Digits="1"))
    assert root.find("Say").text.startswith("Извините")  # type: ignore[union-attr]


def test_webhook_paths_answer_as_flask_routing_did(client: Any) -> None:
    """A trailing slash, HEAD and OPTIONS are answered as Flask's routing answers them, and other
    paths reach their own views."""
    plain, slashed = post(client, "/voice", CallSid="CA31"), post(client, "/voice/", CallSid="CA32")
    assert unsealed(plain.get_data(as_text=True)) == unsealed(slashed.get_data(as_text=True))
    assert parse(post(client, "/voice/status/", CallSid="CA31", CallStatus="completed")).find("*") is None
    signature = client.validator.compute_signature("http://localhost/voice?CallSid=CA33", {})
    head = client.client.head("/voice?CallSid=CA33", environ_base=CLOCK, headers={"X-Twilio-Signature": signature})
    assert (head.status_code, head.data, head.mimetype) == (200, b"", "application/xml")
    assert int(head.headers["Content-Length"]) > 0  # as long as the GET's answer
    options = client.client.options("/voice/step/1/main")
    assert (options.status_code, options.headers["Allow"]) == (200, "GET, HEAD, OPTIONS, POST")
    assert client.client.get("/healthz").json == {"status": "alive"}


def test_a_crash_outside_the_call_handler_still_answers_twiml(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(values: Any) -> Any:
        raise RuntimeError("broken parser")

    monkeypatch.setattr("ivr.web.voice.caller_input", broken)
    root = parse(post(client, "/voice/step/1/main", CallSid="CA34"))
    assert root.find("Dial/Number").text == "+78002001441"  # type: ignore[union-attr]
    assert "unexpected error on /voice/step/1/main" in caplog.text


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return digits[number] if number < 36 else _base36(number // 36) + digits[number % 36]


@pytest.mark.parametrize(
    "body",
    ["&".join(_base36(i) for i in range(14_000)), "&".join(["a"] * 20_000)],
    ids=["14000 distinct names", "20000 fields"],
)
def test_a_flood_of_form_fields_is_refused_before_the_signature_is_checked(
    ivr_databases: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    from ivr import create_app
    from ivr.web import voice

    app = create_app({"DATABASE_URL": ivr_databases(), "TWILIO_AUTH_TOKEN": "secret"})
    caplog.set_level("WARNING", logger="ivr")
    checked: list[str] = []
    monkeypatch.setattr(voice, "signature_problem", lambda *args: checked.append("signature") or "bad")
    assert len(body) < 64 * 1024  # under the size limit: only the count of fields refuses it
    reply = app.test_client().post(
        "/voice", data=body, content_type="application/x-www-form-urlencoded", headers={"X-Twilio-Signature": "x"}
    )
    assert checked == []  # no work on it: the signature is not even computed
    assert reply.status_code == 200 and b"<Dial" in reply.data  # still TwiML, like a body over the size limit
    assert f"{body.count('&') + 1} form fields, more than IVR_MAX_FORM_FIELDS=200" in caplog.text
    few = app.test_client().post("/voice", data={"CallSid": "CA1"}, headers={"X-Twilio-Signature": "x"})
    assert few.status_code == 403 and checked == ["signature"]  # an ordinary form is checked as before
