"""Prompts a studio records: every text a caller can hear, as a script to export, and the recordings
played with <Play> in place of the synthesised voice where a file exists.

A prompt is cut where the system speaks a value (a reference number, a date, the next opening):
each run of the template's own words is one piece a voice talent records, with an id such as
`main.prompt` or `desk_registered.say.2`; the values keep the synthesised voice. Recordings live in
`prompts/<flow>/<id>.wav` (or .mp3) beside the `flows/` folder, or under IVR_PROMPTS_DIR.
"""

from __future__ import annotations

import csv
import html
import io
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ivr.flow.model import Flow

AUDIO_TYPES: Mapping[str, str] = MappingProxyType({".wav": "audio/wav", ".mp3": "audio/mpeg"})
_SPOKEN_FIELDS = ("prompt", "reprompt", "retry", "say")
_SYSTEM_VALUES = {
    "reference": "the request's reference number",
    "next_opening": "when the line opens next",
    "used_on": "the date the allowance was used",
    "next_period": "the date the allowance renews",
    "value": "what the caller entered",
    "last_transfer": "the line last called",
    "contact": "a contact's number",
}


@dataclass(frozen=True)
class Piece:
    """One recordable run of words of a prompt, and what the system says after it (if anything)."""

    id: str
    node: str  # the node, or "texts" for a standard phrase
    field: str
    text: str
    then: str  # the placeholder said next by the synthesised voice, e.g. {reference}; "" if none
    template: str  # the whole prompt, for the talent's context


def _pieces(base: str, node: str, field: str, template: str) -> list[Piece]:
    runs: list[list[str]] = []  # [words, placeholder after them]
    for literal, name, spec, _ in string.Formatter().parse(template):
        words = " ".join(literal.split())
        if words:
            runs.append([words, ""])
        if name is not None:
            holder = "{" + name + (f":{spec}" if spec else "") + "}"
            if runs and not runs[-1][1]:
                runs[-1][1] = holder
            else:
                runs.append(["", holder])
    recordable = [r for r in runs if r[0]]
    single = len(recordable) == 1 and len(runs) == 1
    return [
        Piece(base if single else f"{base}.{n}", node, field, words, then, template)
        for n, (words, then) in enumerate(recordable, start=1)
    ]


def catalogue(flow: Flow) -> list[Piece]:
    """Every piece a caller of the flow can hear, in the file's order, standard phrases last; a text
    used by several nodes is listed once, at its first use."""
    seen: set[str] = set()
    found: list[Piece] = []

    def add(base: str, node: str, field: str, template: str) -> None:
        for piece in _pieces(base, node, field, template):
            if piece.text not in seen:
                seen.add(piece.text)
                found.append(piece)

    for node in flow.nodes.values():
        for field in _SPOKEN_FIELDS:
            template = getattr(node, field, None)
            if isinstance(template, str) and template.strip():
                add(f"{node.id}.{field}", node.id, field, template)
    for name, template in flow.settings.texts.items():
        add(f"texts.{name}", "texts", name, template)
    return found


def folder(flow: Flow, root: str | Path | None = None) -> Path:
    """Where the flow's recordings are: <root or the flows folder's sibling `prompts`>/<flow name>."""
    base = Path(root) if root else Path(flow.path).resolve().parent.parent / "prompts"
    return base / flow.name


@dataclass(frozen=True)
class Recordings:
    """The recorded pieces of a flow: their words -> file name, read once at start-up."""

    folder: Path
    by_text: Mapping[str, str]  # piece words -> "<id>.wav"
    texts: Mapping[str, str]  # file name -> piece words

    @classmethod
    def scan(cls, flow: Flow, root: str | Path | None = None) -> Recordings:
        where = folder(flow, root)
        by_text: dict[str, str] = {}
        texts: dict[str, str] = {}
        for piece in catalogue(flow):
            for suffix in AUDIO_TYPES:
                path = where / f"{piece.id}{suffix}"
                if path.is_file():
                    by_text.setdefault(piece.text, path.name)
                    texts[path.name] = piece.text
                    break
        return cls(where, MappingProxyType(by_text), MappingProxyType(texts))

    def __bool__(self) -> bool:
        return bool(self.by_text)

    def file_for(self, words: str) -> str | None:
        return self.by_text.get(" ".join(words.split()))


def problems(flow: Flow, root: str | Path | None = None) -> list[str]:
    """Pieces without a recording while others have one, and files that are no piece's (orphans)."""
    where = folder(flow, root)
    if not where.is_dir():
        return []
    ids = {piece.id for piece in catalogue(flow)}
    files = {p.stem: p.name for p in where.iterdir() if p.suffix in AUDIO_TYPES}
    found = [f"{where / name}: no prompt has the id {stem!r} (orphaned recording)" for stem, name in files.items()]
    found = sorted(found)
    if files:
        missing = sorted(ids - set(files))
        found += [
            f"{where}: prompt {piece_id!r} has no recording (the synthesised voice says it)" for piece_id in missing
        ]
    return found


# ---------------------------------------------------------------- export

_COLUMNS = ("id", "node", "field", "text", "then the system says", "recorded")


def _rows(flow: Flow, recordings: Recordings) -> Iterator[tuple[str, ...]]:
    for piece in catalogue(flow):
        recorded = "yes" if recordings.file_for(piece.text) else ""
        yield (piece.id, piece.node, piece.field, piece.text, piece.then, recorded)


def export_csv(flow: Flow, recordings: Recordings) -> str:
    """The studio's script as CSV: one row per piece to record."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_COLUMNS)
    writer.writerows(_rows(flow, recordings))
    return out.getvalue()


def export_html(flow: Flow, recordings: Recordings) -> str:
    """The studio's script as a printable HTML page: each piece, with the whole prompt around it."""
    rows = []
    for piece in catalogue(flow):
        then = ""
        if piece.then:
            name = piece.then.strip("{}").partition(":")[0]
            then = f"<span class=sys>{html.escape(piece.then)} — {html.escape(_SYSTEM_VALUES.get(name, name))}</span>"
        context = "" if piece.template.strip() == piece.text else f"<div class=ctx>{html.escape(piece.template)}</div>"
        mark = " ✓" if recordings.file_for(piece.text) else ""
        rows.append(
            f"<tr><td class=id>{html.escape(piece.id)}{mark}</td>"
            f"<td><div class=say>{html.escape(piece.text)}</div>{then}{context}</td></tr>"
        )
    return (
        "<!doctype html><html lang=ru><meta charset=utf-8>"
        f"<title>{html.escape(flow.name)}: prompts to record</title>"
        "<style>body{font:14pt serif;margin:2cm}td{vertical-align:top;padding:.4em;border-bottom:1px solid #ccc}"
        ".id{font:10pt monospace;white-space:nowrap}.say{font-size:15pt}.sys{color:#a40;font-size:10pt}"
        ".ctx{color:#666;font-size:10pt}@media print{tr{page-break-inside:avoid}}</style>"
        f"<h1>{html.escape(flow.name)}</h1>"
        "<p>Record each text as one file named by its id (<code>ID.wav</code> or <code>ID.mp3</code>). "
        "What the system says between them (a number, a date) stays synthesised.</p>"
        f"<table>{''.join(rows)}</table></html>\n"
    )
