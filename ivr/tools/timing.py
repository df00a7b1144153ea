"""Time to each service: how long a caller listens from the greeting to a transfer or a last
message, every prompt heard in full, and with the caller pressing at the earliest moment.

A prompt's spoken length is estimated from its text at a speaking rate per language (characters
per second, spaces and punctuation included), plus a pause per sentence. The Russian rate was
fitted to a real synthesis of the hotline's own prompts by espeak-ng's Russian voice
(`python benchmarks/speech_rate.py` measures it again; docs/timing.md has the figures).
Pressing early cuts short only a question's own prompt (Twilio's Gather stops speaking
at the first key); what is said before the question is heard to its end. Typing a value costs a
second per digit; a spoken answer, its words at the same rate.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.flow.model import Flow
from ivr.flow.properties import Violation
from ivr.tools.paths import Path, explore

# Characters per second by language (the flow's settings.language), and a pause per sentence.
RATES = {"ru-RU": 15.9}
DEFAULT_RATE = 15.9
SENTENCE_PAUSE = 0.2  # seconds between sentences
DIGIT_SECONDS = 1.0  # typing one digit of an answer
EARLIEST_KEY = 0.5  # seconds a caller who knows the menu needs to press once a question starts
SENTENCE_END = re.compile(r"[.!?…]+(\s|$)")


def spoken_seconds(text: str, language: str = "ru-RU") -> float:
    """The estimated time to say `text` in `language`."""
    words = " ".join(text.split())
    if not words:
        return 0.0
    sentences = max(1, len(SENTENCE_END.findall(words)))
    return len(words) / RATES.get(language, DEFAULT_RATE) + SENTENCE_PAUSE * (sentences - 1)


def synthesized_seconds(text: str, language: str = "ru-RU") -> float | None:
    """How long espeak-ng takes to say `text` in `language`'s voice (None when it is not installed)."""
    program = shutil.which("espeak-ng")
    if program is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        voice = language.split("-")[0].lower()
        subprocess.run([program, "-v", voice, "-w", out.name, " ".join(text.split())], check=True, timeout=60)
        with wave.open(out.name) as sound:
            frames: int = sound.getnframes()
            rate: int = sound.getframerate()
    return frames / rate


@dataclass(frozen=True)
class ServiceTime:
    """How long the way to one service takes."""

    service: str  # "transfer to desk", "ends at goodbye"
    node: str
    keys: str
    full: float  # seconds, every prompt heard to its end
    earliest: float  # seconds, each question cut short by the caller's answer
    answers: int
    nodes: tuple[str, ...] = ()
    heard: tuple[str, ...] = ()  # every prompt on the way, in order
    answering: float = 0.0  # seconds spent pressing and typing

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "node": self.node,
            "keys": self.keys,
            "full_seconds": round(self.full, 1),
            "earliest_seconds": round(self.earliest, 1),
            "answers": self.answers,
        }


def answering_seconds(path: Path) -> float:
    """Seconds the caller spends pressing menu keys and typing answers along `path`."""
    return path.typed * DIGIT_SECONDS + len(path.keys) * EARLIEST_KEY


def path_seconds(path: Path, language: str) -> tuple[float, float]:
    """(full, earliest) seconds of listening and answering along `path`."""
    full = earliest = 0.0
    for heard in path.heard:
        seconds = spoken_seconds(heard.text, language)
        full += seconds
        earliest += min(seconds, EARLIEST_KEY) if heard.interruptible else seconds
    answering = answering_seconds(path)
    return full + answering, earliest + answering


def _every_way(flow: Flow, now: datetime) -> list[ServiceTime]:
    out = []
    for path in explore(flow, now):
        full, earliest = path_seconds(path, flow.settings.language)
        service = f"transfer to {path.transfer}" if path.transfer else f"ends at {path.end}"
        answering = answering_seconds(path)
        heard = tuple(h.text for h in path.heard)
        out.append(
            ServiceTime(service, path.end, path.label, full, earliest, path.answers, path.nodes, heard, answering)
        )
    return out


def _quickest(ways: list[ServiceTime], by: str) -> dict[str, ServiceTime]:
    best: dict[str, ServiceTime] = {}
    for way in ways:
        key = getattr(way, by)
        if key not in best or way.earliest < best[key].earliest:
            best[key] = way
    return best


def services(flow: Flow, now: datetime) -> list[ServiceTime]:
    """For each service (each transfer and each last message), the quickest way to it at `now`."""
    return sorted(_quickest(_every_way(flow, now), "service").values(), key=lambda s: s.earliest)


def by_node(flow: Flow, now: datetime) -> dict[str, ServiceTime]:
    """The quickest way to each node a call ends up at, by node id (for diagrams and budgets)."""
    return _quickest(_every_way(flow, now), "node")


def synthesized(way: ServiceTime, language: str) -> float | None:
    """The full time of `way` with every prompt synthesised by espeak-ng (None: not installed)."""
    total = way.answering
    for text in way.heard:
        seconds = synthesized_seconds(text, language)
        if seconds is None:
            return None
        total += seconds
    return total


def notes(flow: Flow, now: datetime) -> dict[str, str]:
    """What `ivr graph` writes on each node a call ends up at: seconds pressing at once / hearing all."""
    return {node: f"⏱ {t.earliest:.0f} s / {t.full:.0f} s" for node, t in by_node(flow, now).items()}


def over_budget(flow: Flow, now: datetime, quickest: dict[str, ServiceTime] | None = None) -> list[Violation]:
    """The nodes of `properties.budgets` that a caller pressing at once reaches later than their
    budget allows, at `now` (a node no path reaches at that moment is not judged)."""
    if quickest is None:
        quickest = by_node(flow, now) if flow.properties.budgets else {}
    out = []
    for node_id, budget in flow.properties.budgets.items():
        way = quickest.get(node_id)
        if way is not None and way.earliest > budget:
            message = (
                f"reached in {way.earliest:.1f} s by keys {way.keys} pressing at once, over its budget of {budget} s"
            )
            out.append(Violation("budget", node_id, flow.nodes[node_id].line or None, message, way.nodes))
    return out
