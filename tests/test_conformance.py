"""The simulator against small TwiML documents served over real HTTP, one test per row of
docs/twilio-conformance.md that no other test holds (the table names each row's test)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request

from ivr.simulator import Simulator, SimulatorError
from tests.conftest import serving

ROOT = Path(__file__).resolve().parent.parent
AT = "2021-03-01T10:00:00+03:00"
Body = str | Response | Callable[[], Any]


class TwimlServer:
    """A TwiML app over HTTP: each path answers fixed TwiML (or a function's answer); every request
    is logged with its method, path, values and headers."""

    def __init__(self) -> None:
        self.routes: dict[str, Body] = {}
        self.log: list[dict[str, Any]] = []
        self.base = ""
        self.release = threading.Event()  # lets a deliberately slow answer go at the end of the test

    def url(self, path: str = "/voice") -> str:
        return self.base + path

    def sim(self, **kwargs: Any) -> Simulator:
        return Simulator(url=self.url(kwargs.pop("path", "/voice")), **kwargs)

    def paths(self) -> list[str]:
        return [entry["path"] for entry in self.log]

    def values(self, path: str) -> list[dict[str, str]]:
        return [entry["values"] for entry in self.log if entry["path"] == path]

    def app(self) -> Flask:
        app = Flask("conformance")

        def handler(path: str = "") -> Any:
            self.log.append(
                {
                    "path": "/" + path,
                    "method": request.method,
                    "values": request.values.to_dict(),
                    "form": request.form.to_dict(),
                    "args": request.args.to_dict(),
                    "query": request.query_string.decode(),
                    "headers": dict(request.headers),
                }
            )
            body = self.routes.get("/" + path)
            if body is None:
                return Response("not found", status=404)
            if not isinstance(body, Response) and callable(body):
                body = body()
            if isinstance(body, Response):
                return body
            xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
            return Response(xml, mimetype="text/xml")

        app.add_url_rule("/<path:path>", "any", handler, methods=["GET", "POST"])
        return app


@pytest.fixture
def twiml() -> Iterator[TwimlServer]:
    server = TwimlServer()
    with serving(server.app()) as url:
        server.base = url.removesuffix("/voice")
        yield server
        server.release.set()


def _types(call: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in call.transcript if e["type"] == kind]


def _codes(call: Any) -> list[str]:
    return [str(e.get("code")) for e in call.transcript if e["type"] in ("warning", "error") and e.get("code")]


# ---------------------------------------------------------------- Say, Play, Pause


def test_play_loop_0_plays_until_the_caller_hangs_up(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Play loop="0">https://cdn.example/hold.mp3</Play><Say>never</Say>'
    call = twiml.sim().call()
    assert not call.ended and "never" not in call.heard
    call.hangup()
    assert call.end == "caller-hangup" and "never" not in call.heard


def test_play_digits_sends_tones_without_a_url(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Play digits="ww1234#"/>'
    (play,) = _types(twiml.sim().call(), "play")
    assert play["digits"] == "ww1234#" and play["url"] == ""


def test_play_of_a_type_twilio_does_not_play_is_13420_and_skipped(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = f"<Play>{twiml.url('/page')}</Play><Say>after</Say>"
    twiml.routes["/page"] = Response("<html></html>", mimetype="text/html")
    call = twiml.sim().call()
    assert _codes(call) == ["13420"] and call.heard == "after" and not _types(call, "play")


def test_play_in_a_gather_of_a_type_twilio_does_not_play_is_13325(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = f'<Gather numDigits="1"><Play>{twiml.url("/doc")}</Play></Gather>'
    twiml.routes["/doc"] = Response("{}", mimetype="application/json")
    assert _codes(twiml.sim().call()) == ["13325"]


def test_play_that_cannot_be_fetched_is_11200_and_skipped(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = f"<Play>{twiml.url('/missing.mp3')}</Play><Say>after</Say>"
    call = twiml.sim().call()
    assert _codes(call) == ["11200"] and call.heard == "after" and not _types(call, "play")


def test_a_relative_play_url_is_warned_about(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Play>/hello.wav</Play>"
    twiml.routes["/hello.wav"] = Response(b"RIFF", mimetype="audio/wav")
    call = twiml.sim().call()
    assert "is not an absolute URL" in _types(call, "warning")[0]["message"] and len(_types(call, "play")) == 1


def test_media_at_other_hosts_is_not_fetched_and_says_so(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Play>https://cdn.example/a.mp3</Play><Play>https://cdn.example/b.mp3</Play>"
    call = twiml.sim().call()
    (warning,) = _types(call, "warning")  # once per call
    assert "not fetched" in warning["message"] and len(_types(call, "play")) == 2


def test_pause_moves_the_simulated_clock_by_its_length(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Pause length="7"/><Pause/><Gather/>'
    call = twiml.sim().call(at=AT)
    assert call.clock == datetime.fromisoformat("2021-03-01T10:00:08+03:00")


# ---------------------------------------------------------------- Gather


def test_gather_method_get_puts_digits_in_the_query(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Gather action="/next?x=1" method="GET" numDigits="1"/>'
    twiml.routes["/next"] = "<Say>ok</Say>"
    twiml.sim().call().press("5")
    (last,) = [e for e in twiml.log if e["path"] == "/next"]
    assert last["method"] == "GET" and last["values"]["Digits"] == "5" and last["values"]["x"] == "1"


def test_gather_timeout_starts_after_its_nested_verbs(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Gather timeout="4"><Pause length="3"/></Gather><Say>no input</Say><Gather/>'
    call = twiml.sim().call(at=AT)
    assert call.clock == datetime.fromisoformat("2021-03-01T10:00:03+03:00")  # the pause, then it waits
    call.silence()
    assert call.heard == "no input" and call.clock == datetime.fromisoformat("2021-03-01T10:00:07+03:00")


def test_an_empty_finish_on_key_sends_the_hash_too(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Gather finishOnKey="" action="/next"/>'
    twiml.routes["/next"] = ""
    twiml.sim().call().press("12#")
    assert twiml.values("/next")[0]["Digits"] == "12#"


def test_a_gather_that_times_out_at_the_end_of_the_document_ends_the_call(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Gather/>"
    call = twiml.sim().call()
    call.silence()
    assert call.end == "completed" and twiml.paths() == ["/voice"]


def test_partial_results_arrive_while_the_caller_speaks(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Gather input="speech" action="/final" partialResultCallback="/partial"/>'
    twiml.routes["/partial"] = ""
    twiml.routes["/final"] = ""
    twiml.sim().call().say("второе медицинское мнение")
    assert twiml.paths() == ["/voice", "/partial", "/partial", "/partial", "/final"]
    partials = twiml.values("/partial")
    assert [p["UnstableSpeechResult"] for p in partials] == [
        "второе",
        "второе медицинское",
        "второе медицинское мнение",
    ]
    assert [p["SequenceNumber"] for p in partials] == ["0", "1", "2"] and "Stability" in partials[0]
    assert twiml.values("/final")[0]["SpeechResult"] == "второе медицинское мнение"


def test_a_verb_gather_does_not_allow_is_warning_12200(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Gather><Dial>+7800</Dial><Say>menu</Say></Gather>"
    call = twiml.sim().call()
    assert _codes(call) == ["12200"] and call.heard == "menu" and call.waiting is not None


# ---------------------------------------------------------------- Dial


def test_dial_action_says_whether_the_parties_were_bridged(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial action="/after">+78002001441</Dial>'
    twiml.routes["/after"] = ""
    twiml.sim().call().dial_outcome("completed")
    twiml.sim().call().dial_outcome("busy")
    bridged, busy = twiml.values("/after")
    assert (bridged["DialCallStatus"], bridged["DialBridged"], bridged["DialCallDuration"]) == (
        "completed",
        "true",
        "60",
    )
    assert (busy["DialCallStatus"], busy["DialBridged"], busy["DialCallDuration"]) == ("busy", "false", "0")
    assert bridged["DialCallSid"].startswith("CA") and bridged["DialCallSid"] != bridged["CallSid"]


def test_no_answer_rings_for_the_dial_timeout(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial timeout="12">+78002001441</Dial><Gather/>'
    call = twiml.sim().call(at=AT).dial_outcome("no-answer")
    assert call.clock == datetime.fromisoformat("2021-03-01T10:00:12+03:00")


def test_time_limit_cuts_the_transfer(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial timeLimit="90" action="/after">+78002001441</Dial>'
    twiml.routes["/after"] = ""
    call = twiml.sim().call().dial_outcome("completed", duration=600)
    assert twiml.values("/after")[0]["DialCallDuration"] == "90"
    assert any("timeLimit 90" in e["message"] for e in _types(call, "warning"))


def test_star_with_hangup_on_star_ends_the_transfer_and_the_call_goes_on(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial hangupOnStar="true" action="/after">+78002001441</Dial>'
    twiml.routes["/after"] = "<Say>back in the menu</Say>"
    call = twiml.sim().call().press("*")
    assert call.heard == "back in the menu"
    after = twiml.values("/after")[0]
    assert after["DialCallStatus"] == "completed" and after["DialBridged"] == "true"


def test_star_without_hangup_on_star_is_refused(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Dial>+78002001441</Dial>"
    call = twiml.sim().call()
    with pytest.raises(SimulatorError, match='only \\* with hangupOnStar="true"'):
        call.press("*")


def test_a_recorded_transfer_gives_the_recording_to_the_action(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = (
        '<Dial record="record-from-answer" recordingStatusCallback="/recorded" action="/after">+7800</Dial>'
    )
    twiml.routes["/after"] = ""
    twiml.routes["/recorded"] = ""
    twiml.sim().call().dial_outcome("completed", duration=42)
    assert twiml.paths() == ["/voice", "/after", "/recorded"]  # the recording is ready after the step
    after, recorded = twiml.values("/after")[0], twiml.values("/recorded")[0]
    assert after["RecordingUrl"].startswith("https://api.twilio.com/") and after["RecordingDuration"] == "42"
    assert recorded["RecordingSid"] == after["RecordingSid"] and recorded["RecordingSource"] == "DialVerb"


def test_number_url_runs_on_the_called_party_before_connecting(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial action="/after"><Number url="/whisper">+78002001441</Number></Dial>'
    twiml.routes["/whisper"] = "<Say>Звонок с горячей линии</Say>"
    twiml.routes["/after"] = ""
    call = twiml.sim().call().dial_outcome("completed")
    whisper, after = twiml.values("/whisper")[0], twiml.values("/after")[0]
    assert whisper["Direction"] == "outbound-dial" and whisper["ParentCallSid"] == call.call_sid
    assert whisper["CallSid"] == after["DialCallSid"] and after["DialCallStatus"] == "completed"
    said = [e for e in _types(call, "say") if e.get("leg") == "callee"]
    assert [e["text"] for e in said] == ["Звонок с горячей линии"]
    assert "Звонок с горячей линии" not in call.heard  # the caller hears ringing meanwhile


def test_a_called_party_hanging_up_on_screening_declines_the_call(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial action="/after"><Number url="/screen">+78002001441</Number></Dial>'
    twiml.routes["/screen"] = "<Hangup/>"
    twiml.routes["/after"] = ""
    twiml.sim().call().dial_outcome("completed")
    after = twiml.values("/after")[0]
    assert after["DialCallStatus"] == "no-answer" and after["DialBridged"] == "false"


def test_the_called_party_sees_the_dial_s_caller_id_not_the_caller_s_number(twiml: TwimlServer) -> None:
    dial = '<Dial callerId="+15005550006" action="/after"><Number url="/whisper">+78002001441</Number></Dial>'
    twiml.routes["/voice"] = dial
    twiml.routes["/whisper"] = "<Say>Звонок с горячей линии</Say>"
    twiml.routes["/after"] = ""
    twiml.sim(params={"ForwardedFrom": "+74951234567"}).call(from_="+79161234567").dial_outcome("completed")
    (whisper,) = twiml.values("/whisper")
    assert whisper["From"] == whisper["Caller"] == "+15005550006" and whisper["To"] == "+78002001441"
    assert "ForwardedFrom" not in whisper  # the caller's conditional parameters stay on the caller's leg
    assert twiml.values("/voice")[0]["ForwardedFrom"] == "+74951234567"


SCREEN = '<Gather numDigits="1" action="/accepted" timeout="4"><Say>Нажмите 1, чтобы принять</Say></Gather><Hangup/>'


@pytest.mark.parametrize(("keys", "status"), [("1", "completed"), ("", "no-answer")])
def test_the_called_party_answers_a_screening_gather_with_keys_or_silence(
    twiml: TwimlServer, keys: str, status: str
) -> None:
    twiml.routes["/voice"] = '<Dial action="/after"><Number url="/screen">+78002001441</Number></Dial>'
    twiml.routes["/screen"] = SCREEN
    twiml.routes["/accepted"] = "<Say>Соединяю</Say>"  # the document ends: the parties are connected
    twiml.routes["/after"] = ""
    call = twiml.sim().call(at=AT)
    from ivr.simulator.console import parse_token, perform

    perform(call, parse_token(f"dial:completed+{keys}"))
    accepted = twiml.values("/accepted")
    assert ([a["Digits"] for a in accepted] == ["1"]) if keys else (accepted == [])
    if keys:
        assert accepted[0]["Direction"] == "outbound-dial" and accepted[0]["CallSid"] != call.call_sid
    assert twiml.values("/after")[0]["DialCallStatus"] == status


def test_a_dial_from_the_called_party_s_side_is_13201_and_not_connected(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial action="/after"><Number url="/screen">+78002001441</Number></Dial>'
    twiml.routes["/screen"] = "<Dial>+79990000000</Dial>"
    twiml.routes["/after"] = ""
    call = twiml.sim().call().dial_outcome("completed")
    assert _codes(call) == ["13201"] and twiml.values("/after")[0]["DialCallStatus"] == "no-answer"


def test_number_status_callback_events_arrive_after_the_step(twiml: TwimlServer) -> None:
    number = (
        '<Number statusCallback="/progress" statusCallbackEvent="initiated ringing answered completed">+7800</Number>'
    )
    twiml.routes["/voice"] = f'<Dial action="/after">{number}</Dial>'
    twiml.routes["/progress"] = ""
    twiml.routes["/after"] = ""
    twiml.sim().call().dial_outcome("completed", duration=30)
    assert twiml.paths() == ["/voice", "/after", "/progress", "/progress", "/progress", "/progress"]
    events = twiml.values("/progress")
    assert [e["CallStatus"] for e in events] == ["initiated", "ringing", "in-progress", "completed"]
    assert [e["SequenceNumber"] for e in events] == ["0", "1", "2", "3"] and events[-1]["CallDuration"] == "30"
    assert {e["CallSid"] for e in events} == {twiml.values("/after")[0]["DialCallSid"]}
    assert all(e["CallbackSource"] == "call-progress-events" and e["Timestamp"] for e in events)


def test_of_several_numbers_the_others_are_canceled_when_one_answers(twiml: TwimlServer) -> None:
    numbers = "".join(f'<Number statusCallback="/progress/{n}">+7800000000{n}</Number>' for n in (1, 2))
    twiml.routes["/voice"] = f"<Dial>{numbers}</Dial>"
    twiml.routes["/progress/1"] = twiml.routes["/progress/2"] = ""
    twiml.sim().call().dial_outcome("completed")
    assert twiml.values("/progress/1")[0]["CallStatus"] == "completed"
    assert twiml.values("/progress/2")[0]["CallStatus"] == "canceled"


def test_a_conference_is_answered_and_other_dials_refuse_answered(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Dial action="/after"><Conference>room</Conference></Dial>'
    twiml.routes["/after"] = ""
    twiml.routes["/plain"] = "<Dial>+7800</Dial>"
    call = twiml.sim().call()
    assert any("conference" in e["message"] for e in _types(call, "warning"))  # what is not simulated, said
    call.dial_outcome("answered")
    assert twiml.values("/after")[0]["DialCallStatus"] == "answered"
    with pytest.raises(SimulatorError, match="answered is what Twilio reports for a <Conference>"):
        twiml.sim(path="/plain").call().dial_outcome("answered")


def test_sip_and_client_run_their_url_and_status_callback_as_a_number_does(twiml: TwimlServer) -> None:
    client = '<Client url="/whisper" statusCallback="/progress"><Identity>jane</Identity></Client>'
    twiml.routes["/voice"] = f'<Dial action="/after">{client}</Dial>'
    twiml.routes["/whisper"] = "<Say>Звонок с линии</Say>"
    twiml.routes["/progress"] = twiml.routes["/after"] = ""
    call = twiml.sim().call()
    assert call.dialed == ["client:jane"]
    call.dial_outcome("completed")
    assert twiml.paths() == ["/voice", "/whisper", "/after", "/progress"]
    assert (
        twiml.values("/whisper")[0]["To"] == "client:jane" and twiml.values("/progress")[0]["CallStatus"] == "completed"
    )


# ---------------------------------------------------------------- Record


def test_a_silent_record_waits_its_timeout_and_skips_the_action(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Record timeout="7" action="/saved"/><Say>nothing recorded</Say><Gather/>'
    call = twiml.sim().call(at=AT).silence()
    assert call.heard == "nothing recorded" and call.clock == datetime.fromisoformat("2021-03-01T10:00:07+03:00")
    assert "/saved" not in twiml.paths()


# ---------------------------------------------------------------- Enqueue, Leave


def test_enqueue_plays_the_wait_url_and_leave_goes_to_the_action(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Enqueue waitUrl="/wait" action="/left">support</Enqueue>'
    rounds = iter(['<Say>Вы в очереди</Say><Pause length="20"/>', "<Leave/>"])
    twiml.routes["/wait"] = lambda: Response(f"<Response>{next(rounds)}</Response>", mimetype="text/xml")
    twiml.routes["/left"] = "<Say>Оставьте сообщение</Say>"
    call = twiml.sim().call()
    assert call.heard == "Вы в очереди" and call.waiting is not None and call.waiting.verb == "enqueue"
    call.silence()  # wait on: the next round of the wait music
    assert call.heard == "Оставьте сообщение"
    first, second = twiml.values("/wait")
    assert first["QueuePosition"] == "1" and first["QueueSid"].startswith("QU") and second["QueueTime"] == "20"
    left = twiml.values("/left")[0]
    assert left["QueueResult"] == "leave" and left["QueueSid"] == first["QueueSid"]


def test_an_agent_taking_the_call_is_queue_result_bridged(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Enqueue action="/left">support</Enqueue>'
    twiml.routes["/left"] = "<Hangup/>"
    call = twiml.sim().call()
    assert any("hold music" in e["url"] for e in _types(call, "play"))  # no waitUrl: Twilio's own music
    assert any("agent who takes the call are not simulated" in e["message"] for e in _types(call, "warning"))
    call.queue_outcome("bridged")
    assert twiml.values("/left")[0]["QueueResult"] == "bridged" and call.end == "app-hangup"


def test_hanging_up_in_a_queue_still_tells_the_enqueue_action(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Enqueue waitUrl="/wait" action="/left">support</Enqueue>'
    twiml.routes["/wait"] = "<Say>Ждите</Say>"
    twiml.routes["/left"] = "<Say>never played</Say>"
    call = twiml.sim().call().hangup()
    assert twiml.values("/left")[0]["QueueResult"] == "hangup"
    assert "never played" not in call.heard and call.end == "caller-hangup"


def test_enqueue_without_action_goes_on_after_leave(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Enqueue waitUrl="/wait">support</Enqueue><Say>after the queue</Say>'
    twiml.routes["/wait"] = "<Leave/>"
    assert twiml.sim().call().heard == "after the queue"


def test_leave_outside_a_queue_is_warning_12200(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Leave/><Say>still here</Say>"
    call = twiml.sim().call()
    assert _codes(call) == ["12200"] and call.heard == "still here"


# ---------------------------------------------------------------- schema


def test_an_unknown_attribute_is_warning_12200(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Say voise="alice">hello</Say>'
    call = twiml.sim().call()
    assert _codes(call) == ["12200"] and "'voise'" in _types(call, "warning")[0]["message"] and call.heard == "hello"


def test_verbs_the_simulator_does_not_run_are_skipped_with_a_warning(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Connect><Stream url="wss://x.example"/></Connect><Pay/><Say>after</Say>'
    call = twiml.sim().call()
    messages = [e["message"] for e in _types(call, "warning")]
    assert messages == [
        "<Connect> is TwiML the simulator does not run: skipped",
        "<Pay> is TwiML the simulator does not run: skipped",
    ]
    assert call.heard == "after"


def test_sms_is_shown_with_its_recipient(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = '<Sms to="+79160000000">Номер заявки 100016</Sms>'
    (sms,) = _types(twiml.sim().call(), "sms")
    assert sms == {"type": "sms", "to": "+79160000000", "text": "Номер заявки 100016"}


# ---------------------------------------------------------------- HTTP


def test_a_303_is_followed_with_get(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = Response("", status=303, headers={"Location": "/moved"})
    twiml.routes["/moved"] = "<Gather action='relative'/>"
    call = twiml.sim().call()
    assert [(e["path"], e["method"]) for e in twiml.log] == [("/voice", "POST"), ("/moved", "GET")]
    assert call.waiting is not None and call.waiting.document_url == twiml.url("/moved")


def _clock(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["headers"]["X-Ivr-Clock"])


@pytest.mark.parametrize(("keys", "waited"), [("12", 7), ("12#", 0), ("1234", 0)])
def test_keys_without_a_finish_key_are_submitted_after_the_gather_s_timeout(
    twiml: TwimlServer, keys: str, waited: int
) -> None:
    """ "If 'timeout' is '10', Twilio will wait ten seconds for the caller to press another key
    before submitting the previously entered digits" (TwiML <Gather>)."""
    gather = (
        '<Gather timeout="7" action="/got"/>' if keys != "1234" else '<Gather timeout="7" numDigits="4" action="/got"/>'
    )
    twiml.routes["/voice"] = gather
    twiml.routes["/got"] = ""
    twiml.sim().call(at=AT).press(keys)
    entry, got = twiml.log[0], twiml.log[1]
    assert (_clock(got) - _clock(entry)).total_seconds() == waited


@pytest.mark.parametrize(
    ("document", "status", "end"),
    [
        ('<Reject reason="busy"/>', "busy", "rejected"),
        ('<Say>Минуту</Say><Reject reason="busy"/>', "completed", "app-hangup"),
    ],
)
def test_only_a_reject_as_the_first_verb_leaves_the_call_unanswered(
    twiml: TwimlServer, document: str, status: str, end: str
) -> None:
    """ "Any other response will result in an answered call" (TwiML <Reject>)."""
    twiml.routes["/voice"] = document
    twiml.routes["/status"] = ""
    call = twiml.sim(status_callback=twiml.url("/status")).call(at=AT)
    (callback,) = twiml.values("/status")
    assert callback["CallStatus"] == status and call.end == end


@pytest.mark.parametrize("after", [0, 12])
def test_a_hang_up_during_record_reports_the_time_actually_recorded_and_no_transcription(
    twiml: TwimlServer, after: int
) -> None:
    twiml.routes["/voice"] = '<Record action="/saved" transcribe="true" transcribeCallback="/text"/>'
    twiml.routes["/saved"] = ""
    twiml.routes["/text"] = ""
    twiml.sim().call(at=AT).hangup(after=after)
    (saved,) = twiml.values("/saved")
    assert saved["RecordingDuration"] == str(after) and saved["Digits"] == "hangup"
    assert twiml.values("/text") == []  # nothing was said to transcribe


def _sent(twiml: TwimlServer) -> list[tuple[str, str, dict[str, str]]]:
    """What the server received: method, absolute URL as sent, and the parameters Twilio sends (a
    POST's form; a GET's query, less what the URL itself carried)."""
    received = []
    for entry in twiml.log:
        query = entry["query"]
        url = twiml.url(entry["path"]) + (f"?{query}" if query else "")
        params = entry["form"] if entry["method"] == "POST" else {k: v for k, v in entry["args"].items() if k != "x"}
        received.append((entry["method"], url, params))
    return received


def _said(call: Any) -> list[tuple[str, str, dict[str, str]]]:
    return [(e["method"], e["url"], e["params"]) for e in call.transcript if e["type"] == "request"]


def test_the_transcript_says_what_was_sent_across_a_redirect_chain_and_every_verb(twiml: TwimlServer) -> None:
    """Every request event is the request on the wire: its method (a 302 turns POST into GET), the
    absolute URL as sent (a relative action resolved, a GET's parameters in the query), its parameters."""
    twiml.routes["/voice"] = Response("", status=302, headers={"Location": "/moved?x=1"})
    twiml.routes["/moved"] = "<Gather action='gathered' numDigits='1'/>"
    twiml.routes["/gathered"] = "<Redirect method='GET'>/again</Redirect>"
    twiml.routes["/again"] = Response("", status=307, headers={"Location": "/kept"})
    twiml.routes["/kept"] = "<Record action='recorded' maxLength='5'/>"
    twiml.routes["/recorded"] = "<Dial action='dialled'>+79160000000</Dial>"
    twiml.routes["/dialled"] = "<Enqueue action='left'>support</Enqueue>"
    twiml.routes["/left"] = "<Say>bye</Say>"
    twiml.routes["/status"] = ""
    call = twiml.sim(status_callback=twiml.url("/status")).call(at=AT)
    call.press("5").record("привет").dial_outcome("completed").queue_outcome("bridged")
    assert call.ended
    assert _said(call) == _sent(twiml)
    methods = [(method, url.split("?")[0].removeprefix(twiml.base)) for method, url, _ in _said(call)]
    assert methods[:3] == [("POST", "/voice"), ("GET", "/moved"), ("POST", "/gathered")]
    assert ("GET", "/again") in methods and ("GET", "/kept") in methods  # a 307 keeps the method


def test_a_hang_up_during_record_shows_the_absolute_action_url(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Record action='saved'/>"
    twiml.routes["/saved"] = ""
    call = twiml.sim().call(at=AT)
    call.hangup()
    (*_, last) = _said(call)
    assert last[1] == twiml.url("/saved") and _said(call) == _sent(twiml)


@pytest.mark.parametrize("status", [301, 302])
def test_a_301_or_302_is_followed_with_get_as_a_browser_does(twiml: TwimlServer, status: int) -> None:
    twiml.routes["/voice"] = Response("", status=status, headers={"Location": twiml.url("/moved")})
    twiml.routes["/moved"] = "<Say>moved</Say>"
    assert twiml.sim().call().heard == "moved" and twiml.log[1]["method"] == "GET"


def test_a_307_is_followed_keeping_the_method_and_body(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = Response("", status=307, headers={"Location": "/moved"})
    twiml.routes["/moved"] = "<Say>moved</Say>"
    call = twiml.sim(auth_token="12345").call()
    moved = twiml.log[1]
    assert moved["method"] == "POST" and moved["form"]["CallSid"] == call.call_sid and call.heard == "moved"
    assert moved["headers"]["X-Twilio-Signature"] != twiml.log[0]["headers"]["X-Twilio-Signature"]  # signed anew


@pytest.mark.parametrize("answer", [Response("", status=308, headers={"Location": "/x"}), Response("", status=302)])
def test_a_308_or_a_redirect_without_location_is_11216(twiml: TwimlServer, answer: Response) -> None:
    twiml.routes["/voice"] = answer
    call = twiml.sim().call()
    assert call.end == "app-error" and _codes(call) == ["11216"]


def test_more_than_ten_redirects_is_11215(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = Response("", status=302, headers={"Location": "/voice"})
    call = twiml.sim().call()
    assert call.end == "app-error" and _codes(call) == ["11215"] and len(twiml.log) == 11


def test_an_audio_answer_is_played_and_the_call_ends(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = Response(b"ID3", mimetype="audio/mpeg")
    call = twiml.sim().call()
    assert [e["url"] for e in _types(call, "play")] == [twiml.url("/voice")] and call.end == "completed"
    assert twiml.paths() == ["/voice"]  # played as it came: not fetched again


def test_a_plain_text_answer_is_said_and_the_call_ends(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = Response("Линия временно не работает.", mimetype="text/plain")
    call = twiml.sim().call()
    assert call.heard == "Линия временно не работает." and call.end == "completed"


@pytest.mark.parametrize("content_type", ["application/json", ""])
def test_an_answer_of_another_type_is_12300(twiml: TwimlServer, content_type: str) -> None:
    answer = Response("<Response><Say>hi</Say></Response>")
    if content_type:
        answer.headers["Content-Type"] = content_type
    else:
        del answer.headers["Content-Type"]
    twiml.routes["/voice"] = answer
    call = twiml.sim().call()
    assert call.end == "app-error" and _codes(call) == ["12300"]


def test_a_root_that_is_not_response_is_12100(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = Response("<Reply><Say>hi</Say></Reply>", mimetype="text/xml")
    assert _codes(twiml.sim().call()) == ["12100"]


def test_a_webhook_slower_than_its_read_timeout_is_11205_and_goes_to_the_fallback(twiml: TwimlServer) -> None:
    def slow() -> str:
        twiml.release.wait(10)  # answers only once the test is over
        return "<Say>too late</Say>"

    twiml.routes["/voice"] = slow
    twiml.routes["/fallback"] = "<Say>Извините, сбой.</Say>"
    call = Simulator(url=twiml.url("/voice#rt=300&tt=300"), fallback_url="/fallback").call()
    (error,) = _types(call, "error")
    assert error["code"] == "11205" and "did not answer within 300 ms" in error["message"]
    assert call.heard == "Извините, сбой."
    fallback = twiml.values("/fallback")[0]
    assert fallback["ErrorCode"] == "11205" and fallback["ErrorUrl"] == twiml.url("/voice")


def test_connection_overrides_retry_as_the_url_says(twiml: TwimlServer) -> None:
    answers = iter([Response("busy", status=503), "<Say>second try</Say>"])
    twiml.routes["/voice"] = lambda: next(answers)
    call = Simulator(url=twiml.url("/voice#rc=1&rp=5xx")).call()
    assert call.heard == "second try" and twiml.paths() == ["/voice", "/voice"]
    twiml.routes["/once"] = Response("busy", status=503)
    once = twiml.sim(path="/once").call()  # by default only a failed connection is retried
    assert _codes(once) == ["11200"] and twiml.paths().count("/once") == 1


def test_edge_and_sni_overrides_are_not_simulated_and_say_so(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Say>hi</Say>"
    call = Simulator(url=twiml.url("/voice#e=frankfurt")).call()
    assert any("#e" in e["message"] and "not simulated" in e["message"] for e in _types(call, "warning"))


def test_requests_over_http_are_signed_for_the_url_requested(twiml: TwimlServer) -> None:
    from twilio.request_validator import RequestValidator

    twiml.routes["/voice"] = '<Gather action="/next?x=1"/>'
    twiml.routes["/next"] = "<Hangup/>"
    twiml.sim(auth_token="12345").call().press("3")
    validator = RequestValidator("12345")
    for entry, url in zip(twiml.log, [twiml.url("/voice"), twiml.url("/next?x=1")], strict=True):
        assert validator.validate(url, entry["form"], entry["headers"]["X-Twilio-Signature"])


def test_cookies_are_kept_over_http(twiml: TwimlServer) -> None:
    first = Response('<Response><Gather action="/next"/></Response>', mimetype="text/xml")
    first.set_cookie("session", "abc")
    twiml.routes["/voice"] = first
    twiml.routes["/next"] = lambda: f"<Say>{request.cookies.get('session')}</Say>"
    assert twiml.sim().call().press("1").heard == "abc"


def test_an_error_is_reported_with_its_code_and_url(twiml: TwimlServer) -> None:
    twiml.routes["/voice"] = "<Redirect>/broken</Redirect>"
    twiml.routes["/broken"] = Response("<Response><Say>", mimetype="text/xml")
    call = twiml.sim().call()
    error = _types(call, "error")[0]
    assert error["code"] == "12100" and error["url"] == twiml.url("/broken")
    assert call.heard == "We are sorry, an application error has occurred. Goodbye." and call.end == "app-error"


# ---------------------------------------------------------------- the table itself


def _rows() -> list[list[str]]:
    text = (ROOT / "docs" / "twilio-conformance.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| behaviour")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows if not set(row) <= set("|- ")]


def test_the_conformance_table_has_a_row_per_behaviour_and_each_names_a_test_that_exists() -> None:
    rows = _rows()
    assert len(rows) >= 60, len(rows)
    tests = {
        name
        for path in (ROOT / "tests").glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    for row in rows:
        assert len(row) == 5, row
        named = re.findall(r"`(test_\w+)`", row[4])
        assert named, f"no test named for {row[0]}"
        assert set(named) <= tests, f"{row[0]}: {set(named) - tests} do not exist"
