"""The phone in the browser: its JSON API, and the page itself in a real headless Chromium."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr import create_app
from tests.conftest import serving

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("IVR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def phone_app(ivr_databases: Any) -> Any:
    return create_app({"DATABASE_URL": ivr_databases(), "SIMULATOR": True, "LOG_LEVEL": "ERROR"})


def test_the_web_phone_is_off_unless_asked_for(app: Any) -> None:
    assert app.test_client().get("/simulator").status_code == 404


def test_api_places_a_call_and_takes_keys_speech_silence_and_outcomes(phone_app: Any) -> None:
    client = phone_app.test_client()
    assert b"Phone simulator" in client.get("/simulator").data
    call = client.post("/simulator/api/calls", json={"from": "+79161234567", "at": "2021-03-06T10:00"}).get_json()
    assert call["clock"] == "2021-03-06T10:00:00+03:00" and call["waiting"]["verb"] == "gather"
    assert any("сто три" in e.get("text", "") for e in call["events"])
    assert call["exchanges"][0]["twiml"].startswith("<?xml")
    path = f"/simulator/api/calls/{call['id']}/input"
    closed = client.post(path, json={"kind": "keys", "text": "2"}).get_json()
    assert any("во вторник, 9 марта, в 9 часов" in e.get("text", "") for e in closed["events"])
    assert client.post(path, json={"kind": "say", "text": "главное меню"}).status_code == 200
    assert client.post(path, json={"kind": "silence"}).status_code == 200
    ringing = client.post(path, json={"kind": "keys", "text": "0"}).get_json()
    assert ringing["waiting"] == {"verb": "dial", "targets": ["+78002001441"]}
    refused = client.post(path, json={"kind": "keys", "text": "1"})
    assert refused.status_code == 409 and "waits in <Dial>" in refused.get_json()["error"]
    assert client.post(path, json={"kind": "dial", "text": "busy"}).get_json()["waiting"]["verb"] == "gather"
    bad = client.post(path, json={"kind": "dance"})
    assert bad.status_code == 400 and "is not something a caller can do" in bad.get_json()["error"]
    assert client.post("/simulator/api/calls/nope/input", json={"kind": "silence"}).status_code == 404
    whole = client.get(f"/simulator/api/calls/{call['id']}").get_json()
    assert len(whole["events"]) == whole["event_count"] > 10


def test_api_refuses_a_bad_moment(phone_app: Any) -> None:
    reply = phone_app.test_client().post("/simulator/api/calls", json={"at": "tomorrow"})
    assert reply.status_code == 400 and "is not an ISO-8601 date" in reply.get_json()["error"]


@pytest.fixture
def page(phone_app: Any) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("no Chromium here: install Debian's chromium (.ci/run does) or set IVR_CHROMIUM")
    with serving(phone_app) as voice_url, playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        tab = browser.new_page(viewport={"width": 1100, "height": 900})
        tab.goto(voice_url.removesuffix("/voice") + "/simulator")
        yield tab
        browser.close()


def transcript(tab: Any) -> str:
    return str(tab.locator("#transcript").inner_text())


def call_at(tab: Any, moment: str) -> None:
    tab.fill("#at", moment)
    tab.click("#dial")
    tab.wait_for_function("document.querySelector('#status').textContent.includes('Press a key')")


def test_saturday_press_2_shows_the_hours(page: Any) -> None:
    call_at(page, "2021-03-06T10:00")
    assert "сто три или сто двенадцать" in transcript(page)
    page.keyboard.press("2")  # the keyboard works as the keypad
    page.wait_for_function("document.querySelector('#transcript').textContent.includes('работает с 9 до 18')")
    assert "Он будет на связи во вторник, 9 марта, в 9 часов." in transcript(page)


def test_press_5_then_1_shows_the_transfer_and_its_outcome(page: Any) -> None:
    call_at(page, "2021-03-01T10:00")
    page.click("#keypad [data-key='5']")
    page.wait_for_function("document.querySelector('#transcript').textContent.includes('психолога')")
    page.click("#keypad [data-key='1']")
    page.wait_for_selector("#outcomes:not([hidden])")
    assert "Transfer to +78002001441" in transcript(page)
    assert page.is_visible("#outcomes")
    page.click("#outcomes [data-outcome='busy']")
    page.wait_for_function("document.querySelector('#transcript').textContent.includes('не может ответить')")
    assert "Transfer result: busy" in transcript(page)
    assert not page.is_visible("#outcomes")  # back in a menu: the keypad, not the outcomes


def test_changing_the_clock_opens_the_representative(page: Any) -> None:
    call_at(page, "2021-03-06T10:00")
    page.keyboard.press("2")
    page.wait_for_function("document.querySelector('#transcript').textContent.includes('работает с 9 до 18')")
    page.click("#hangup")
    page.select_option("#outcome", "completed")
    call_at(page, "2021-03-01T10:00")
    page.keyboard.press("2")
    page.wait_for_function("document.querySelector('#transcript').textContent.includes('региональным представителем')")
    page.wait_for_function("document.querySelector('#status').textContent.includes('Call ended')")
    assert "Transfer result: completed" in transcript(page)
    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "artifacts" / "simulator.png"), full_page=True)


def test_phone_sized_layout_and_typed_policy_number(page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    call_at(page, "2021-03-01T10:00")
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('#status').textContent.includes('Type the digits')")
    for digit in "123456":
        page.keyboard.press(digit)
    assert page.locator("#entry").inner_text() == "123456"
    page.keyboard.press("#")
    page.wait_for_function("document.querySelector('#transcript').textContent.includes('Вы ввели: один, два, три')")
    keypad_box = page.locator("#keypad").bounding_box()
    assert keypad_box is not None and keypad_box["width"] <= 390
    assert page.get_attribute("#transcript", "aria-live") == "polite"


@pytest.mark.parametrize(
    ("environ", "headers"),
    [
        ({"REMOTE_ADDR": "203.0.113.7"}, {}),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.7"}),  # through ngrok
        ({"REMOTE_ADDR": "127.0.0.1"}, {"Forwarded": "for=203.0.113.7"}),
    ],
)
def test_the_web_phone_is_refused_from_other_machines_and_through_tunnels(
    phone_app: Any, environ: dict[str, str], headers: dict[str, str]
) -> None:
    client = phone_app.test_client()
    assert client.get("/simulator", environ_base=environ, headers=headers).status_code == 403
    assert client.post("/simulator/api/calls", json={}, environ_base=environ, headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("path", "method", "body", "status", "says"),
    [
        ("/simulator/api/calls", "post", [1, 2], 400, "send a json object"),
        ("/simulator/api/calls", "post", {"from": {"a": 1}}, 400, "is not a phone number"),
        ("/simulator/api/calls", "post", {"from": "call me maybe"}, 400, "is not a phone number"),
        ("/simulator/api/calls", "get", None, 405, "method is not allowed"),
        ("/simulator/api/nowhere", "get", None, 404, "not found"),
    ],
)
def test_the_api_answers_every_error_in_json(
    phone_app: Any, path: str, method: str, body: Any, status: int, says: str
) -> None:
    client = phone_app.test_client()
    reply = getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path)
    assert reply.status_code == status and reply.mimetype == "application/json"
    assert says in reply.get_json()["error"].lower()


def test_an_unexpected_api_failure_is_json_and_logged(phone_app: Any, caplog: Any, monkeypatch: Any) -> None:
    from ivr.web import webphone

    monkeypatch.setattr(webphone, "_state", lambda *args: 1 / 0)
    reply = phone_app.test_client().post("/simulator/api/calls", json={})
    assert reply.status_code == 500 and reply.get_json() == {"error": "internal error (see the server log)"}
    assert "unexpected error on /simulator/api/calls" in caplog.text and "ZeroDivisionError" in caplog.text
