"""The simulator as a stand-in for Twilio, against small TwiML apps written here (not the hotline):
every test runs twice, with the app in-process and served over real HTTP."""

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from flask import Flask, Response, request
from hypothesis import example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ivr import simulator as _simulator
from ivr.simulator import SimulatorError
from ivr.simulator.line import sign
from tests.conftest import serving

_servers: ExitStack | None = None  # set while a test runs over HTTP: the apps it serves


def Simulator(app: Any = None, *, path: str = "/voice", **options: Any) -> _simulator.Simulator:
    """The simulator of the test's transport: the app in-process, or served on a loopback port."""
    if app is None or _servers is None:
        return _simulator.Simulator(app, path=path, **options)
    base = _servers.enter_context(serving(app)).removesuffix("/voice")
    return _simulator.Simulator(url=base + path, **options)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Both transports, but for a test about the in-process transport's own URL."""
    only = metafunc.definition.get_closest_marker("in_process_only")
    metafunc.parametrize("transport", ["in-process"] if only else ["in-process", "http"], indirect=True)


@pytest.fixture(autouse=True)
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    global _servers
    with ExitStack() as stack:
        _servers = stack if request.param == "http" else None
        try:
            yield request.param
        finally:
            _servers = None


def twiml_app(routes: dict[str, str | Any], log: list[dict[str, Any]] | None = None) -> Flask:
    """A Flask app answering each path with fixed TwiML (or a function's result), recording requests."""
    app = Flask("tiny")
    seen = log if log is not None else []

    def handler(path: str = "") -> Response:
        seen.append(
            {
                "path": "/" + path,
                "method": request.method,
                "values": request.values.to_dict(),
                "headers": dict(request.headers),
                "cookies": dict(request.cookies),
            }
        )
        body = routes.get("/" + path)
        if body is None:
            return Response("not found", status=404)
        if callable(body):
            body = body()
        if isinstance(body, Response):
            return body
        return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', mimetype="text/xml")

    app.add_url_rule("/<path:path>", "any", handler, methods=["GET", "POST"])
    return app


def test_twilio_parameters_are_sent_on_every_request() -> None:
    log: list[dict[str, Any]] = []
    sim = Simulator(twiml_app({"/voice": "<Say>hi</Say>"}, log))
    call = sim.call(from_="+79160000001", to="+78000000002")
    values = log[0]["values"]
    assert values["From"] == values["Caller"] == "+79160000001"
    assert values["To"] == values["Called"] == "+78000000002"
    assert values["CallSid"] == call.call_sid and values["CallSid"].startswith("CA") and len(values["CallSid"]) == 34
    assert values["AccountSid"].startswith("AC") and values["Direction"] == "inbound"
    assert values["ApiVersion"] == "2010-04-01" and values["CallStatus"] == "ringing"
    assert call.ended and call.end == "completed" and call.heard == "hi"


def test_get_entry_puts_parameters_in_the_query() -> None:
    log: list[dict[str, Any]] = []
    Simulator(twiml_app({"/voice": "<Say>hi</Say>"}, log), method="GET").call()
    assert log[0]["method"] == "GET" and log[0]["values"]["Direction"] == "inbound"


def test_relative_actions_resolve_against_the_current_document() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app(
        {"/ivr/voice": '<Gather action="next" numDigits="1"><Say>press</Say></Gather>', "/ivr/next": "<Say>next</Say>"},
        log,
    )
    call = Simulator(app, path="/ivr/voice").call()
    call.press("5")
    assert log[1]["path"] == "/ivr/next" and log[1]["values"]["Digits"] == "5"
    assert log[1]["values"]["CallStatus"] == "in-progress"


def test_gather_without_action_posts_to_the_current_document() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app(
        {
            "/voice": lambda: (
                "<Say>got</Say>" if request.values.get("Digits") else '<Gather numDigits="1"><Say>press</Say></Gather>'
            )
        },
        log,
    )
    call = Simulator(app).call()
    call.press("7")
    assert call.heard == "got" and log[1]["path"] == "/voice"


def test_gather_timeout_falls_through_to_the_next_verb() -> None:
    app = twiml_app({"/voice": '<Gather action="/a"><Say>press</Say></Gather><Say>nothing pressed</Say>'})
    call = Simulator(app).call()
    call.silence()
    assert call.heard == "nothing pressed" and call.ended


def test_action_on_empty_result_posts_without_digits() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app(
        {
            "/voice": '<Gather action="/a" actionOnEmptyResult="true"><Say>p</Say></Gather><Say>x</Say>',
            "/a": "<Say>empty</Say>",
        },
        log,
    )
    call = Simulator(app).call()
    call.silence()
    assert call.heard == "empty" and "Digits" not in log[1]["values"]


def test_finish_on_key_ends_input_and_is_not_sent() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": '<Gather action="/a"><Say>p</Say></Gather>', "/a": "<Hangup/>"}, log)
    Simulator(app).call().press("1234#99")
    assert log[1]["values"]["Digits"] == "1234" and log[1]["values"]["FinishedOnKey"] == "#"


def test_num_digits_stops_collecting() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app(
        {"/voice": '<Gather action="/a" numDigits="2" finishOnKey=""><Say>p</Say></Gather>', "/a": "<Hangup/>"}, log
    )
    Simulator(app).call().press("#987")
    assert log[1]["values"]["Digits"] == "#9"


def test_only_the_finish_key_is_an_empty_result() -> None:
    app = twiml_app({"/voice": '<Gather action="/a"><Say>p</Say></Gather><Say>fell through</Say>'})
    call = Simulator(app).call().press("#")
    assert call.heard == "fell through"


def test_speech_sends_speech_result_and_confidence() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": '<Gather input="speech" action="/a"><Say>p</Say></Gather>', "/a": "<Hangup/>"}, log)
    Simulator(app).call().say("психолог")
    assert log[1]["values"]["SpeechResult"] == "психолог" and float(log[1]["values"]["Confidence"]) > 0.5


def test_keys_are_ignored_by_a_speech_only_gather() -> None:
    app = twiml_app({"/voice": '<Gather input="speech" action="/a"><Say>p</Say></Gather><Say>timeout</Say>'})
    call = Simulator(app).call().press("1")
    assert call.heard == "timeout" and call.transcript[-3]["ignored"] == "1"


@pytest.mark.parametrize("status", ["completed", "busy", "no-answer", "failed", "canceled"])
def test_dial_with_action_reports_the_outcome(status: str) -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app(
        {
            "/voice": '<Dial action="/after" timeout="20"><Number>+78007756610</Number></Dial><Say>no</Say>',
            "/after": "<Hangup/>",
        },
        log,
    )
    call = Simulator(app).call()
    assert call.dialed == ["+78007756610"] and not call.ended
    call.dial_outcome(status)
    values = log[1]["values"]
    assert values["DialCallStatus"] == status and values["DialCallSid"].startswith("CA")
    assert int(values["DialCallDuration"]) == (60 if status == "completed" else 0)
    assert call.heard == "" and call.ended
    assert next(e for e in call.transcript if e["type"] == "dial")["outcome"] == status


@pytest.mark.parametrize("status", ["completed", "busy"])
def test_dial_without_action_goes_on_with_the_next_verb(status: str) -> None:
    app = twiml_app({"/voice": "<Dial>+78007756610</Dial><Say>after the call</Say>"})
    call = Simulator(app).call()
    assert call.dialed == ["+78007756610"]
    call.dial_outcome(status)
    assert call.heard == "after the call"


def test_dial_targets_of_every_noun() -> None:
    nouns = (
        "<Number>+7800</Number><Sip>sip:a@b.test</Sip><Client>alice</Client>"
        "<Client><Identity>jane</Identity></Client><Conference>room</Conference><Queue>support</Queue>"
    )
    app = twiml_app({"/voice": f"<Dial>{nouns}</Dial>"})
    dialed = ["+7800", "sip:a@b.test", "client:alice", "client:jane", "conference:room", "queue:support"]
    assert Simulator(app).call().dialed == dialed


def test_record_with_action_and_transcription() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app(
        {
            "/voice": '<Record action="/saved" transcribeCallback="/text" maxLength="30"/>',
            "/saved": "<Say>saved</Say>",
            "/text": "",
        },
        log,
    )
    call = Simulator(app).call()
    call.record("болит голова", duration=7)
    paths = [entry["path"] for entry in log]
    assert paths == ["/voice", "/saved", "/text"]  # the transcription is asynchronous: after the action
    assert log[1]["values"]["RecordingDuration"] == "7" and log[1]["values"]["RecordingUrl"].startswith("https://")
    assert "Digits" not in log[1]["values"]  # ended by silence, not by a key
    text = log[2]["values"]
    assert text["TranscriptionText"] == "болит голова" and text["TranscriptionStatus"] == "completed"
    assert text["TranscriptionSid"].startswith("TR") and text["RecordingSid"] == log[1]["values"]["RecordingSid"]
    assert call.heard == "saved"


def test_record_without_action_requests_the_current_document_again() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": lambda: "<Say>thanks</Say>" if request.values.get("RecordingUrl") else "<Record/>"}, log)
    call = Simulator(app).call().record("hello")
    assert call.heard == "thanks" and [e["path"] for e in log] == ["/voice", "/voice"]


def test_empty_recording_skips_the_action() -> None:
    app = twiml_app({"/voice": '<Record action="/saved"/><Say>nothing recorded</Say>', "/saved": "<Say>x</Say>"})
    call = Simulator(app).call().silence()
    assert call.heard == "nothing recorded"


def test_redirect_follows_its_method() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": '<Redirect method="GET">/other?x=1</Redirect>', "/other": "<Say>here</Say>"}, log)
    call = Simulator(app).call()
    assert call.heard == "here" and log[1]["method"] == "GET" and log[1]["values"]["x"] == "1"


def test_endless_redirects_are_stopped() -> None:
    call = Simulator(twiml_app({"/voice": "<Redirect>/voice</Redirect>"}), loop_limit=10).call()
    assert call.end == "app-error" and "loop" in call.transcript[-3]["message"]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Response("boom", status=500), "HTTP 500"),
        (Response("nope", status=404), "HTTP 404"),
        (Response("<Response><Say>unclosed</Response>", mimetype="text/xml"), "invalid XML"),
        (Response("<html>hi</html>", mimetype="text/html"), "not <Response>"),
    ],
)
def test_app_errors_end_the_call_like_twilio(route: Response, message: str) -> None:
    call = Simulator(twiml_app({"/voice": lambda: route})).call()
    errors = [e for e in call.transcript if e["type"] == "error"]
    assert call.end == "app-error" and message in errors[0]["message"]
    assert "an application error has occurred" in call.heard


def test_cookies_are_kept_for_the_call_only() -> None:
    log: list[dict[str, Any]] = []

    def entry() -> Response:
        response = Response('<Response><Gather action="/a" numDigits="1"/></Response>', mimetype="text/xml")
        response.set_cookie("session", "abc")
        return response

    sim = Simulator(twiml_app({"/voice": entry, "/a": "<Hangup/>"}, log))
    sim.call().press("1")
    assert log[1]["cookies"] == {"session": "abc"}
    sim.call()
    assert log[2]["cookies"] == {}


def test_hangup_and_reject_end_the_call() -> None:
    assert Simulator(twiml_app({"/voice": "<Hangup/><Say>never</Say>"})).call().end == "app-hangup"
    rejected = Simulator(twiml_app({"/voice": '<Reject reason="busy"/>'})).call()
    assert rejected.end == "rejected" and rejected.transcript[-1]["reason"] == "busy"


def test_unknown_verbs_are_reported_and_skipped() -> None:
    call = Simulator(twiml_app({"/voice": "<Dance/><Say>still here</Say>"})).call()
    assert call.transcript[1] == {"type": "warning", "code": "12200", "message": "unknown verb <Dance> skipped"}
    assert call.heard == "still here"


def test_say_loop_pause_and_play_are_recorded() -> None:
    app = twiml_app(
        {
            "/voice": '<Say loop="2" voice="Polly.Tatyana" language="ru-RU">Алло</Say><Pause length="3"/>'
            '<Play>https://example.test/a.mp3</Play><Sms to="+7900">text</Sms>'
        }
    )
    call = Simulator(app).call(at="2021-03-01T10:00:00+03:00")
    kinds = [e["type"] for e in call.transcript]
    assert kinds == ["request", "say", "pause", "warning", "play", "sms", "hangup"]  # the mp3 is elsewhere
    assert call.transcript[1] == {
        "type": "say",
        "text": "Алло",
        "voice": "Polly.Tatyana",
        "language": "ru-RU",
        "loop": 2,
        "at": "2021-03-01T10:00:00+03:00",
    }
    assert call.transcript[-1]["at"] == "2021-03-01T10:00:03+03:00"  # the pause took three simulated seconds
    assert call.heard == "Алло Алло"


def test_status_callback_is_posted_when_the_call_ends() -> None:
    log: list[dict[str, Any]] = []
    sim = Simulator(twiml_app({"/voice": '<Gather action="/a"/>', "/status": ""}, log), status_callback="/status")
    sim.call().hangup()
    assert log[-1]["path"] == "/status" and log[-1]["values"]["CallStatus"] == "completed"


def test_signature_follows_the_twilio_published_vector() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert sign("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign("12345", url, {**params, "Digits": "9999"}) != "RSOYDt4T1cUTdK1PDd93/VVr8B8="


@pytest.mark.in_process_only
def test_requests_are_signed_when_a_token_is_given() -> None:
    log: list[dict[str, Any]] = []
    sim = Simulator(twiml_app({"/voice": '<Gather action="/a?x=1"/>', "/a": "<Hangup/>"}, log), auth_token="12345")
    sim.call().press("3")
    validator = RequestValidator("12345")
    for entry, url in zip(log, ["http://localhost/voice", "http://localhost/a?x=1"], strict=True):
        form = {k: v for k, v in entry["values"].items() if k != "x"}
        assert validator.validate(url, form, entry["headers"]["X-Twilio-Signature"])


def test_wrong_input_for_the_waiting_verb_is_refused() -> None:
    call = Simulator(twiml_app({"/voice": "<Dial>+7800</Dial>"})).call()
    with pytest.raises(SimulatorError, match="waits in <Dial>"):
        call.press("1")
    with pytest.raises(SimulatorError, match="not a dial outcome"):
        call.dial_outcome("exploded")
    call.hangup()
    with pytest.raises(SimulatorError, match="has ended"):
        call.silence()


def test_unreachable_url_is_an_application_error() -> None:
    call = Simulator(url="http://127.0.0.1:9/voice").call()
    assert call.end == "app-error" and "cannot reach" in call.transcript[0].get("message", "") + str(call.transcript)


def test_record_ends_only_on_a_finish_key_and_stops_at_max_length() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": '<Record action="/saved" finishOnKey="#" maxLength="10"/>', "/saved": "<Hangup/>"}, log)
    call = Simulator(app).call()
    call.press("5")  # not a finish key: just sound in the recording
    assert call.waiting is not None and call.waiting.verb == "record" and len(log) == 1
    call.press("#")
    assert log[1]["values"]["Digits"] == "#"
    long = Simulator(app).call().record("a long message", duration=60)
    assert long.ended and log[-1]["values"]["RecordingDuration"] == "10"


def test_hanging_up_during_a_recording_still_requests_the_action_with_digits_hangup() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app(
        {
            "/voice": '<Record action="/saved" recordingStatusCallback="/rec"/>',
            "/saved": "<Say>never</Say>",
            "/rec": "",
        },
        log,
    )
    call = Simulator(app).call().hangup()
    assert [e["path"] for e in log] == ["/voice", "/saved", "/rec"]
    assert log[1]["values"]["Digits"] == "hangup" and log[2]["values"]["RecordingStatus"] == "completed"
    assert "never" not in call.heard and call.end == "caller-hangup"


def test_say_with_loop_0_repeats_until_the_caller_hangs_up() -> None:
    call = Simulator(twiml_app({"/voice": '<Say loop="0">hold on</Say><Say>after</Say>'})).call()
    assert call.waiting is not None and call.waiting.verb == "loop" and "after" not in call.heard
    with pytest.raises(SimulatorError):
        call.press("1")
    assert call.hangup().end == "caller-hangup"


@pytest.mark.parametrize(("reason", "status"), [("busy", "busy"), ("rejected", "no-answer")])
def test_a_rejected_call_ends_busy_or_no_answer_as_twilio_says(reason: str, status: str) -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": f'<Reject reason="{reason}"/>', "/status": ""}, log)
    Simulator(app, status_callback="/status").call()
    assert log[1]["values"]["CallStatus"] == status and log[1]["values"]["CallDuration"] == "0"


def test_the_status_callback_carries_twilio_s_parameters_and_the_simulated_duration() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": '<Pause length="12"/><Say>bye</Say>', "/status": ""}, log)
    Simulator(app, status_callback="/status").call()  # no --at: the duration still counts
    values = log[1]["values"]
    assert values["CallStatus"] == "completed" and values["CallDuration"] == "12"
    assert values["CallbackSource"] == "call-progress-events" and values["SequenceNumber"] == "0"
    assert values["Timestamp"].endswith("+0000") or values["Timestamp"].endswith("GMT")


def test_twilio_s_conditional_parameters_are_sent_when_given() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/voice": '<Gather action="/next" numDigits="1"/>', "/next": "<Hangup/>"}, log)
    call = Simulator(app, params={"ForwardedFrom": "+74951234567", "CallerName": "IVANOV"}).call()
    call.press("1")
    assert all(e["values"]["ForwardedFrom"] == "+74951234567" for e in log)
    assert log[1]["values"]["CallerName"] == "IVANOV"


def test_the_param_option_sends_them_and_refuses_what_is_not_name_value() -> None:
    from click.testing import CliRunner

    from ivr.cli import main

    good = CliRunner().invoke(main, ["simulate", "--param", "FromCountry=RU", "--json", "3"])
    assert good.exit_code == 0
    bad = CliRunner().invoke(main, ["simulate", "--param", "nonsense", "3"])
    assert bad.exit_code == 2 and "'nonsense' is not NAME=VALUE" in bad.output


def test_a_document_over_64_kb_is_twilio_s_error_11750() -> None:
    call = Simulator(twiml_app({"/voice": "<Say>" + "а" * 40_000 + "</Say>"})).call()
    errors = [e for e in call.transcript if e["type"] == "error"]
    assert call.end == "app-error" and errors[0]["code"] == "11750"


def test_an_outbound_call_sends_answered_by_with_its_first_webhook_and_in_its_status_callback() -> None:
    log: list[dict[str, Any]] = []
    app = twiml_app({"/out": "<Say>Здравствуйте</Say>", "/status": ""}, log)
    call = Simulator(app).outbound(
        "/out", to="+79160000001", from_="+15005550006", answer="machine_start", status_callback="/status"
    )
    first, status = log[0]["values"], log[-1]["values"]
    assert first["Direction"] == "outbound-api" and first["AnsweredBy"] == "machine_start"
    assert first["To"] == "+79160000001" and first["From"] == "+15005550006"
    assert status["CallStatus"] == "completed" and status["AnsweredBy"] == "machine_start"
    assert call.heard == "Здравствуйте" and call.end == "completed"


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
def test_an_outbound_call_nobody_answers_requests_no_webhook_only_its_status_callback(outcome: str) -> None:
    log: list[dict[str, Any]] = []
    call = Simulator(twiml_app({"/out": "<Say>никто</Say>", "/status": ""}, log)).outbound(
        "/out", to="+79160000001", answer=outcome, status_callback="/status"
    )
    assert [entry["path"] for entry in log] == ["/status"]
    assert log[0]["values"]["CallStatus"] == outcome and log[0]["values"]["CallDuration"] == "0"
    assert call.ended and call.end == outcome and call.heard == ""


def test_an_outbound_call_refuses_an_answer_twilio_does_not_give() -> None:
    with pytest.raises(ValueError, match="answer 'robot' is not one of human, machine_start"):
        Simulator(twiml_app({})).outbound("/out", to="+79160000001", answer="robot")


_URL_PIECES = ["/", ".", "..", "?", "#", ";", ":", "//", "a", "Z9", "%2F", "-_~", "@", " ", "\t", "&s=", "voice", "é"]


@settings(max_examples=600, deadline=None)
@example(base="http://localhost/voice", reference="/a?#b")
@example(base="http://localhost/voice", reference="/a;p?x")
@example(base="http://localhost/voice", reference="/a?")
@example(base="http://localhost/voice", reference="/a/..#")
@example(base="http://localhost/voice", reference="//elsewhere/a")
@given(
    base=st.sampled_from(
        ["http://localhost/voice", "https://Example.org:8443/a/b?x=1#f", "HTTP://h/x", "http://[::1]/v", "/rel", ""]
    )
    | st.lists(st.sampled_from(_URL_PIECES), max_size=6).map(lambda p: "http://h" + "".join(p)),
    reference=st.lists(st.sampled_from(_URL_PIECES), max_size=8).map("".join),
)
def test_urls_are_joined_as_urljoin_joins_them(base: str, reference: str) -> None:
    import urllib.parse

    from ivr.simulator.urls import joined

    try:
        expected = urllib.parse.urljoin(base, reference)
    except ValueError as exc:  # an invalid host: the same error
        with pytest.raises(ValueError, match=str(exc)):
            joined(base, reference)
        return
    assert joined(base, reference) == expected


def test_a_path_from_the_root_is_joined_to_the_base_s_host() -> None:
    from ivr.simulator.urls import joined

    assert joined("http://localhost/voice/step/2/main?s=x", "/voice/step/3/help?s=y&r=z") == (
        "http://localhost/voice/step/3/help?s=y&r=z"
    )
    assert joined("http://localhost/a/b", "/x/./y/../z") == "http://localhost/x/z"
