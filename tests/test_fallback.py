"""The fallback URL: what a failed webhook would have answered, and nothing promised is lost."""

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ivr.engine import speech
from ivr.simulator import Simulator
from tests.conftest import AUTH_TOKEN, MONDAY_10

GRANTED = "Заявка на второе медицинское мнение зарегистрирована"


class LosesOneAnswer:
    """WSGI middleware: the app handles the request (and commits), but its answer never arrives."""

    def __init__(self, app: Any, path_part: str) -> None:
        self.app, self.path_part, self.lost = app, path_part, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.path_part in environ["PATH_INFO"] and not self.lost:
            self.lost += 1
            for _ in self.app(environ, lambda *args: None):  # the webhook runs to its end
                pass
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [b"worker died"]
        return self.app(environ, start_response)


def test_a_grant_committed_but_not_heard_is_repeated_by_the_fallback(app: Any, requests_of: Any) -> None:
    app.wsgi_app = LosesOneAnswer(app.wsgi_app, "/so_first_opinion")
    sim = Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status", fallback_url="/voice/fallback")
    call = sim.call(at=MONDAY_10).press("5").press("2").press("4455667#").press("1")
    call.press("1")  # "I have a first opinion": the grant is committed, the answer lost
    (granted,) = requests_of("second_opinion")
    assert app.wsgi_app.lost == 1
    assert GRANTED in call.heard and call.dialed == ["+78002001441"]
    assert speech.digits(granted["reference"]) in call.heard  # the very reference, read digit by digit
    errors = [e for e in call.transcript if e["type"] == "error"]
    assert errors and errors[0]["code"] == "11200" and errors[0]["fallback"] is True
    assert call.end is None  # the call goes on


def test_without_a_fallback_url_the_caller_hears_twilio_s_application_error(app: Any, requests_of: Any) -> None:
    app.wsgi_app = LosesOneAnswer(app.wsgi_app, "/so_first_opinion")
    sim = Simulator(app, auth_token=AUTH_TOKEN, status_callback="/voice/status")
    call = sim.call(at=MONDAY_10).press("5").press("2").press("4455667#").press("1").press("1")
    assert call.end == "app-error" and "an application error has occurred" in call.heard
    assert len(requests_of("second_opinion")) == 1  # spent, and unheard: why the fallback URL matters


def test_a_failed_entry_or_an_unknown_url_is_greeted(client: Any) -> None:
    for failed in ("https://x.example/voice", "https://x.example/elsewhere", ""):
        form = {"CallSid": "CA1", "ErrorCode": "11200", "ErrorUrl": failed}
        answer = client.post("/voice/fallback", data=form, environ_base={"ivr.clock": MONDAY_10})
        assert answer.status_code == 200 and "Здравствуйте".encode() in answer.data


def test_a_fallback_with_a_forged_seal_is_a_lost_call_politely(client: Any) -> None:
    form = {"CallSid": "CA1", "ErrorCode": "11205", "ErrorUrl": "https://x.example/voice/step/4/so_allowance?s=AAAA"}
    answer = client.post("/voice/fallback", data=form, environ_base={"ivr.clock": MONDAY_10})
    assert answer.status_code == 200 and "Извините".encode() in answer.data


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    while len(body) < length:
        body += conn.recv(65536)


@pytest.fixture
def cut_off_server() -> Iterator[str]:
    """A server that promises 500 bytes, sends 20 and closes: the answer cut off mid-body."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            _read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 500\r\n\r\n<Response><Say>cut")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/voice"
    listener.close()


def test_an_answer_cut_off_mid_body_is_twilio_s_application_error(cut_off_server: str) -> None:
    call = Simulator(url=cut_off_server, auth_token="").call()
    errors = [e for e in call.transcript if e["type"] == "error"]
    assert call.end == "app-error" and errors[0]["code"] == "11205" and "broke off" in errors[0]["message"]
