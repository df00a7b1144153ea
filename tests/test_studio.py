"""Prompts a studio can record: the script of every text, and recordings played with <Play>."""

from __future__ import annotations

import csv
import io
import wave
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main
from ivr.engine import studio
from ivr.flow.model import Flow
from ivr.simulator import Simulator
from tests.conftest import MONDAY_10


def _record(folder: Path, piece_id: str) -> Path:
    """A short silent WAV file, as a studio would deliver one."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{piece_id}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    return path


@pytest.fixture
def recorded_app(tmp_path: Path, ivr_config: dict[str, Any]) -> Any:
    prompts = tmp_path / "prompts"
    _record(prompts / "dms_hotline", "main.prompt")
    _record(prompts / "dms_hotline", "desk_registered.say.1")
    app = create_app({**ivr_config, "PROMPTS_DIR": str(prompts)})
    yield app
    app.extensions["ivr"].dispose()


def test_the_export_lists_every_prompt_of_the_hotline(hotline: Flow) -> None:
    result = CliRunner().invoke(main, ["prompts", "export"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    exported = {row["id"]: row for row in rows}
    spoken = " ".join(" ".join(row["text"].split()) for row in rows)
    for node in hotline.nodes.values():
        for field in ("prompt", "reprompt", "retry", "say"):
            template = getattr(node, field, None)
            if isinstance(template, str) and template.strip():
                for piece in studio._pieces("x", node.id, field, template):
                    assert piece.text in spoken, (node.id, field)
    for name, text in hotline.settings.texts.items():  # standard phrases, unless a node says the same
        for piece in studio._pieces("x", "texts", name, text):
            assert piece.text in spoken, name
    assert exported["main.prompt"]["text"].startswith("Чтобы организовать медицинскую помощь, нажмите 1.")
    registered = exported["desk_registered.say.1"]
    assert registered["then the system says"] == "{reference}" and "{" not in registered["text"]
    assert len(rows) == len(studio.catalogue(hotline)) and len(exported) == len(rows)


def test_the_printable_script_names_each_id_and_what_the_system_says(tmp_path: Path) -> None:
    out = tmp_path / "script.html"
    result = CliRunner().invoke(main, ["prompts", "export", "--format", "html", "--output", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "desk_registered.say.1" in page and "the request&#x27;s reference number" in page
    assert page.count("<tr>") == len(studio.catalogue(flows_load()))


def flows_load() -> Flow:
    from ivr.flow import loader as flows

    return flows.load(env={})


def test_a_recorded_prompt_is_played_and_the_rest_is_said(recorded_app: Any) -> None:
    sim = Simulator(recorded_app, auth_token="12345", status_callback="/voice/status")
    call = sim.call(at=MONDAY_10)
    document = call.exchanges[0].body
    assert "<Play>http://localhost/prompts/dms_hotline/main.prompt.wav</Play>" in document
    assert "Чтобы организовать медицинскую помощь" not in document  # played, not also said
    assert "Здравствуйте!" in document  # not recorded: the synthesised voice says it
    plays = [e for e in call.events if e["type"] == "play"]
    assert plays and plays[0]["text"].startswith("Чтобы организовать медицинскую помощь")
    assert "Чтобы организовать медицинскую помощь" in call.heard
    assert not [e for e in call.events if e["type"] == "warning"]


def test_a_value_in_a_recorded_prompt_keeps_the_synthesised_voice(recorded_app: Any) -> None:
    sim = Simulator(recorded_app, auth_token="12345", status_callback="/voice/status")
    call = sim.call(at=MONDAY_10)
    for token in ("1", "1234567#", "1"):
        call.press(token)
    call.say("Иванов Иван Иванович").press("1").say("болит голова").press("1")  # name read back; own number: 1
    document = call.exchanges[-1].body
    assert "<Play>http://localhost/prompts/dms_hotline/desk_registered.say.1.wav</Play>" in document
    after = document.split("desk_registered.say.1.wav</Play>", 1)[1]
    assert after.lstrip().startswith("<Say") and "Повторяю" in after  # the number, said, then the rest


def test_recordings_are_served_cached_and_only_the_catalogue_s(recorded_app: Any) -> None:
    client = recorded_app.test_client()
    ok = client.get("/prompts/dms_hotline/main.prompt.wav")
    assert ok.status_code == 200 and ok.mimetype == "audio/wav" and ok.data.startswith(b"RIFF")
    assert "max-age=3600" in ok.headers["Cache-Control"] and ok.headers.get("ETag")
    assert (
        client.get("/prompts/dms_hotline/main.prompt.wav", headers={"If-None-Match": ok.headers["ETag"]}).status_code
        == 304
    )
    for path in (
        "/prompts/dms_hotline/nothing.wav",
        "/prompts/other/main.prompt.wav",
        "/prompts/dms_hotline/..%2Fx.wav",
    ):
        assert client.get(path).status_code == 404, path


def test_without_recordings_every_prompt_is_said(ivr_simulator: Any) -> None:
    call = ivr_simulator.call(at=MONDAY_10)
    assert "<Play>" not in call.exchanges[0].body


def test_check_reports_missing_and_orphaned_recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = tmp_path / "prompts"
    _record(prompts / "dms_hotline", "main.prompt")
    _record(prompts / "dms_hotline", "main.promt")  # a typo: no prompt has this id
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(prompts))
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0
    assert "recordings: 1 of " in result.output
    assert "no prompt has the id 'main.promt' (orphaned recording)" in result.output
    assert "prompt 'main.reprompt' has no recording" in result.output


def test_the_export_takes_the_flow_as_check_and_graph_do(mini_flow: Any) -> None:
    positional = CliRunner().invoke(main, ["prompts", "export", str(mini_flow)])
    option = CliRunner().invoke(main, ["prompts", "export", "--flow", str(mini_flow)])
    assert positional.exit_code == 0, positional.output
    assert positional.output == option.output and "Привет." in positional.output
    both = CliRunner().invoke(main, ["prompts", "export", str(mini_flow), "--flow", "other.yaml"], prog_name="ivr")
    assert both.exit_code == 2 and "two flow files" in both.output
