"""ivr twilio connect against recorded Twilio API exchanges (the twilio client's HTTP client replaced)."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.cli import main
from tests.replay import Recorded

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "twilio_numbers.json").read_text(encoding="utf-8"))
ACCOUNT = RECORDED["account_sid"]


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    recorded = Recorded(monkeypatch, RECORDED, (ACCOUNT, "token"))
    yield recorded
    recorded.check()


def connect(*args: str) -> Any:
    return CliRunner().invoke(
        main, ["twilio", "connect", "--number", "+15005550006", "--public-url", "https://abc123.ngrok.example/", *args]
    )


def test_connect_points_the_number_at_the_tunnel_and_shows_what_was_there(replay: Any) -> None:
    replay("connect")
    result = connect()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "voice_url: https://demo.twilio.com/welcome/voice/ -> https://abc123.ngrok.example/voice  (changed)",
        "voice_method: POST  (already set)",
        "voice_fallback_url: (empty) -> https://abc123.ngrok.example/voice/fallback  (changed)",
        "voice_fallback_method: POST  (already set)",
        "status_callback: (empty) -> https://abc123.ngrok.example/voice/status  (changed)",
        "status_callback_method: POST  (already set)",
        "call +15005550006 now; the server must run with TWILIO_AUTH_TOKEN and IVR_PUBLIC_URL=https://abc123.ngrok.example",
    ]


def test_dry_run_only_reads(replay: Any) -> None:
    replay("dry_run")
    result = connect("--dry-run")
    assert result.exit_code == 0 and "(would change)" in result.output
    assert result.output.rstrip().endswith("dry run: nothing was changed")


def test_a_number_not_in_the_account_is_named_with_the_accounts_numbers(replay: Any) -> None:
    replay("not_in_account")
    result = CliRunner().invoke(
        main, ["twilio", "connect", "--number", "+15005550009", "--public-url", "https://abc123.ngrok.example"]
    )
    assert result.exit_code == 2
    assert "+15005550009 is not a number of this Twilio account (its numbers include: +15005550006)" in result.output


def test_bad_credentials_are_explained(replay: Any) -> None:
    replay("bad_credentials")
    result = connect()
    assert result.exit_code == 1
    assert (
        "Twilio answered 401" in result.output
        and "are TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN right?" in result.output
    )


def test_missing_credentials_and_plain_http_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    result = connect()
    assert result.exit_code == 2 and "set TWILIO_ACCOUNT_SID (Twilio console, Account info)" in result.output
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    plain = CliRunner().invoke(
        main, ["twilio", "connect", "--number", "+15005550006", "--public-url", "http://x.example"]
    )
    assert plain.exit_code == 2 and "must be an https:// address" in plain.output


def test_an_unreachable_api_is_one_line_without_the_http_client_s_debug_output(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.servers import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env |= {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "token", "HOME": str(tmp_path)}
    env["HTTPS_PROXY"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once
    command = [sys.executable, "-m", "ivr", "twilio", "connect", "--number", "+15005550006"]
    command += ["--public-url", "https://abc123.ngrok.example"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (
        "ivr: cannot reach Twilio's API: Connection refused (at the proxy HTTPS_PROXY names); is this machine online?\n"
    )
