"""Sealed call state: bound to its call, step and node; keys rotate without dropping calls."""

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr import ConfigError, create_app
from ivr.cli import main
from ivr.engine.seal import KeyRing, new_key
from tests.conftest import MONDAY_10, SignedClient, action_of

CLOCK = {"ivr.clock": MONDAY_10}


def ring(*keys: str) -> KeyRing:
    return KeyRing.parse(",".join(keys))


def test_a_seal_opens_only_for_what_it_was_bound_to() -> None:
    keys = ring(new_key())
    token = keys.seal(b"state", b"CA1\x002\x00main")
    assert keys.open(token, b"CA1\x002\x00main") == b"state"
    for other in (b"CA2\x002\x00main", b"CA1\x003\x00main", b"CA1\x002\x00help_menu"):
        assert keys.open(token, other) is None


@pytest.mark.parametrize("change", ["flip a character", "cut short", "not base64", "empty"])
def test_a_broken_seal_opens_to_nothing(change: str) -> None:
    keys = ring(new_key())
    token = keys.seal(b"state", b"x")
    broken = {
        "flip a character": token[:5] + ("A" if token[5] != "A" else "B") + token[6:],
        "cut short": token[:10],
        "not base64": "%%%" + token,
        "empty": "",
    }[change]
    assert keys.open(broken, b"x") is None


def test_the_same_state_seals_the_same_so_a_retry_gets_the_same_twiml() -> None:
    keys = ring(new_key())
    assert keys.seal(b"state", b"x") == keys.seal(b"state", b"x")
    assert keys.seal(b"state", b"x") != keys.seal(b"state", b"y")


def test_keys_rotate_without_dropping_calls_in_progress() -> None:
    old, new = new_key(), new_key()
    sealed_before = ring(old).seal(b"state", b"x")
    assert ring(new, old).open(sealed_before, b"x") == b"state"  # the old key still opens
    assert ring(new).open(sealed_before, b"x") is None  # once dropped, it does not
    assert ring(old).open(ring(new, old).seal(b"s", b"x"), b"x") is None  # the newest seals


def test_a_call_started_before_a_rotation_finishes_after_it(ivr_databases: Any) -> None:
    database = ivr_databases()
    old, new = new_key(), new_key()
    before = SignedClient(create_app({"DATABASE_URL": database, "STATE_KEYS": old}))
    after = SignedClient(create_app({"DATABASE_URL": database, "STATE_KEYS": f"{new},{old}"}))
    entry = before.post("/voice", data={"CallSid": "CA1"}, environ_base=CLOCK)
    navigator = after.post(action_of(entry), data={"CallSid": "CA1", "Digits": "3"}, environ_base=CLOCK)
    assert "навигатор".encode() in navigator.data and b"<Dial" in navigator.data


A_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdCE"


@pytest.mark.parametrize(
    "text", ["short", A_KEY[:-2], f"{A_KEY},", f"{A_KEY}, nope", "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!"]
)
def test_a_malformed_key_ring_is_refused_with_what_to_do(text: str) -> None:
    with pytest.raises(ConfigError, match=r"IVR_STATE_KEYS.*ivr keys new"):
        KeyRing.parse(text)


def test_production_refuses_to_start_without_a_key_ring(ivr_databases: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("IVR_STATE_KEYS")
    with pytest.raises(ConfigError, match="IVR_STATE_KEYS"):
        create_app({"DATABASE_URL": ivr_databases(), "TWILIO_AUTH_TOKEN": "secret"})


def test_development_keeps_one_key_for_every_process_of_the_machine(tmp_path: Path) -> None:
    first = KeyRing.for_development(tmp_path)
    second = KeyRing.for_development(tmp_path)
    assert second.open(first.seal(b"state", b"x"), b"x") == b"state"
    assert stat.S_IMODE(os.stat(tmp_path / "state-keys").st_mode) == 0o600


def test_ivr_keys_new_prints_a_key_the_ring_accepts() -> None:
    result = CliRunner().invoke(main, ["keys", "new"])
    assert result.exit_code == 0
    KeyRing.parse(result.output.strip())
    assert result.output != CliRunner().invoke(main, ["keys", "new"]).output


def test_an_answer_says_what_its_action_url_carries_as_the_seal_opens_it(ivr_databases: Any) -> None:
    app = create_app({"DATABASE_URL": ivr_databases(), "TESTING": True})
    runtime = app.extensions["ivr"]
    answers: list[Any] = []
    runtime.listeners.append(lambda sid, answer: answers.append((sid, answer)))
    client = SignedClient(app)
    entry = client.post("/voice", data={"CallSid": "CA1"}, environ_base=CLOCK)
    client.post(action_of(entry), data={"CallSid": "CA1", "Digits": "6"}, environ_base=CLOCK)
    assert len(answers) == 2
    for (sid, answer), step in zip(answers, (1, 2), strict=True):
        assert answer.action in answer.twiml.replace("&amp;", "&")  # the URL the TwiML sends Twilio to
        opened = runtime.handler.opened(answer.action, sid)
        assert opened is not None and opened == answer.next and opened.step == step
        assert opened.state.node == answer.node
