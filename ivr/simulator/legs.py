"""The other party of a <Dial>: its nouns as targets, and what Twilio reports of that leg."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

NOUNS = ("Number", "Sip", "Client", "Conference", "Queue")
# Call progress events a <Number>, <Sip> or <Client> may ask for (statusCallbackEvent), in order,
# with the CallStatus each reports.
LEG_EVENTS = (("initiated", "initiated"), ("ringing", "ringing"), ("answered", "in-progress"), ("completed", ""))
DIAL_RECORD = (
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
    "true",
)
TIME_LIMIT = 14400  # seconds: <Dial timeLimit>'s default, four hours


@dataclass(frozen=True)
class Leg:
    """One target of a <Dial>: what is dialled, and the noun's own attributes."""

    noun: str  # Number, Sip, Client, Conference, Queue; "" for a number written straight in <Dial>
    target: str  # as the transcript shows it: +7..., sip:..., client:jane, conference:room, queue:support
    element: ET.Element | None = None

    @property
    def url(self) -> str:
        """The TwiML run on the called party's side before the parties are connected (screening)."""
        return "" if self.element is None else self.element.get("url", "").strip()

    @property
    def status_callback(self) -> str:
        return "" if self.element is None else self.element.get("statusCallback", "").strip()

    def events(self) -> list[str]:
        """The call progress events this leg reports (Twilio's default: completed only)."""
        if self.element is None:
            return []
        wanted = self.element.get("statusCallbackEvent", "completed").replace(",", " ").split()
        return [name for name, _ in LEG_EVENTS if name in wanted]


def legs(dial: ET.Element) -> tuple[list[Leg], list[str]]:
    """The targets of a <Dial>, and what in it is no noun Twilio knows (warning 12200)."""
    found: list[Leg] = []
    unknown: list[str] = []
    text = (dial.text or "").strip()
    if text:
        found.append(Leg("", text))
    for child in dial:
        if child.tag not in NOUNS:
            unknown.append(child.tag)
            continue
        name = (child.text or "").strip()
        if child.tag == "Client":
            identity = child.find("Identity")
            name = "client:" + ((identity.text or "") if identity is not None else name).strip()
        elif child.tag in ("Conference", "Queue"):
            name = f"{child.tag.lower()}:{name}"
        found.append(Leg(child.tag, name, child))
    return found, unknown


def leg_status(event: str, outcome: str) -> str:
    """The CallStatus a leg's status callback carries for `event` when the dial ended `outcome`."""
    status = dict(LEG_EVENTS)[event]
    return status or ("completed" if outcome == "answered" else outcome)


def reached(outcome: str, event: str) -> bool:
    """Whether a leg that ended `outcome` went through `event` (a busy line never answered)."""
    if event in ("initiated", "completed"):
        return True
    if event == "ringing":
        return outcome not in ("failed", "busy")
    return outcome in ("completed", "answered")
