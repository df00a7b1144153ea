"""The simulator in a terminal: input tokens, scripted runs, the interactive keypad, readable output."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from .call import Call
from .line import ANSWERED_BY, DIAL_OUTCOMES, QUEUE_RESULTS, UNANSWERED, Event, SimulatorError

_KEYS = re.compile(r"[0-9*#]+")

TOKEN_HELP = (
    "Tokens, one per place the call waits: 5 or 123# (keys), - (silence until timeout), "
    "say:TEXT (speech), dial:STATUS (transfer outcome: " + ", ".join(DIAL_OUTCOMES) + "; dial:completed+1: "
    "the called party presses 1 at its screening <Gather>), "
    "record:TEXT (a recording with that transcription), queue:RESULT (bridged, error, queue-full, "
    "system-shutdown: how waiting in an <Enqueue> ends), hangup; first, for a call the hotline places: "
    "answer:human, answer:machine, answer:busy, answer:no-answer."
)


@dataclass(frozen=True)
class Token:
    """One thing the caller does."""

    kind: str  # keys, silence, say, dial, record, queue, hangup; answer (how an outbound call's callee answers)
    text: str = ""

    def __str__(self) -> str:
        return {"keys": self.text, "silence": "-", "hangup": "hangup"}.get(self.kind, f"{self.kind}:{self.text}")


def parse_token(raw: str) -> Token:
    """A command-line input token; raises ValueError saying what is wrong and what would be right."""
    text = raw.strip()
    if text == "-":
        return Token("silence")
    if text.lower() == "hangup":
        return Token("hangup")
    kind, sep, rest = text.partition(":")
    if sep and kind.lower() in ("say", "record"):
        if kind.lower() == "say" and not rest.strip():
            raise ValueError(f"{raw!r}: say: needs the words, e.g. say:психолог")
        return Token(kind.lower(), rest.strip())
    if sep and kind.lower() == "answer":
        answer = rest.strip().lower()
        answer = "machine_start" if answer == "machine" else answer
        if answer not in ANSWERED_BY + UNANSWERED:
            choices = ", ".join(("machine", *ANSWERED_BY, *UNANSWERED))
            raise ValueError(f"{raw!r}: how the callee answers must be one of {choices}")
        return Token("answer", answer)
    if sep and kind.lower() == "queue":
        result = rest.strip().lower()
        if result not in QUEUE_RESULTS:
            raise ValueError(f"{raw!r}: how waiting in the queue ends must be one of {', '.join(QUEUE_RESULTS)}")
        return Token("queue", result)
    if sep and kind.lower() == "dial":
        status, plus, keys = rest.strip().lower().partition("+")
        if status not in DIAL_OUTCOMES:
            raise ValueError(f"{raw!r}: the transfer outcome must be one of {', '.join(DIAL_OUTCOMES)}")
        if plus and keys and not _KEYS.fullmatch(keys):  # + alone: the called party presses nothing
            raise ValueError(f"{raw!r}: after + come the keys the called party presses, like dial:completed+1")
        return Token("dial", status + plus + keys)
    if _KEYS.fullmatch(text):
        return Token("keys", text)
    raise ValueError(f"{raw!r} is not an input token. {TOKEN_HELP}")


def perform(call: Call, token: Token, show: bool = False) -> None:
    """Do what a token says; raises SimulatorError when the call is not waiting for that.

    The outcome of a transfer completes an event already shown, so it gets a line of its own.
    """
    if token.kind == "answer":
        raise SimulatorError(f"{token}: how the callee answers is said first, for a call the hotline places")
    if token.kind == "dial":
        targets = ", ".join(call.dialed)
        status, plus, keys = token.text.partition("+")
        call.dial_outcome(status, screen=keys if plus else None)
        if show:
            click.echo(f"  ☎  transfer to {targets} → {token.text}")
        return
    actions: dict[str, Callable[[], Any]] = {
        "keys": lambda: call.press(token.text),
        "silence": call.silence,
        "say": lambda: call.say(token.text),
        "record": lambda: call.record(token.text),
        "queue": lambda: call.queue_outcome(token.text),
        "hangup": call.hangup,
    }
    actions[token.kind]()


def waiting_for(call: Call, interactive: bool = False) -> str:
    """A short description of what the call waits for, for prompts and errors, in the form of
    input each place takes: `say TEXT` at the interactive prompt, `say:TEXT` as a token."""
    sep = " " if interactive else ":"
    if call.ended or call.waiting is None:
        return "nothing (the call has ended)"
    el = call.waiting.element
    if call.waiting.verb == "dial":
        return f"the outcome of a transfer to {', '.join(call.dialed)} (dial{sep}STATUS)"
    if call.waiting.verb == "record":
        return f"a recording (record{sep}TEXT, {'Enter' if interactive else '-'} for none; keys in finishOnKey end it)"
    if call.waiting.verb == "enqueue":
        return f"an agent to take the call (queue{sep}bridged), {'Enter' if interactive else '-'} to wait on, or hangup"
    if call.waiting.verb == "loop":
        return 'nothing but hangup (a loop="0" plays until the caller hangs up)'
    modes = el.get("input", "dtmf").split()
    what = []
    if "dtmf" in modes:
        n = el.get("numDigits")
        finish = el.get("finishOnKey", "#")
        what.append(f"{n} key{'s' if n != '1' else ''}" if n else f"keys ending with {finish}" if finish else "keys")
    if "speech" in modes:
        what.append(f"speech (say{sep}TEXT)")
    return " or ".join(what)


def describe(event: Event, colour: bool) -> str | None:
    """One transcript event as a line of text, or None for events not worth a line."""

    def paint(text: str, **style: Any) -> str:
        return click.style(text, **style) if colour else text

    kind = str(event["type"])
    if kind == "say":
        side = paint("  (to the called party)", dim=True) if event.get("leg") == "callee" else ""
        return paint("  🔊 ", fg="cyan") + str(event["text"]) + side
    if kind == "play":
        if event.get("text"):
            return paint("  🔊 ", fg="cyan") + str(event["text"]) + paint("  (recorded)", dim=True)
        return paint("  ♪  play ", fg="cyan") + str(event["url"])
    if kind == "enqueue":
        return (
            paint("  ⏳  waiting in queue ", fg="magenta")
            + str(event["queue"])
            + (f" → {event['outcome']}" if event.get("outcome") else "")
        )
    if kind == "unanswered":
        return paint("  ☎  ", fg="magenta") + f"the callee did not answer ({event['outcome']})"
    if kind == "pause":
        return paint(f"  …  pause {event['length']} s", dim=True)
    if kind == "gather":
        got = event.get("got")
        heard = "(silence)" if got is None else got if got else "(nothing)"
        if event.get("ignored"):  # spoken to a prompt that takes keys only: Twilio hears silence
            heard = f"said «{event['ignored']}», but this prompt takes keys only: heard as silence"
        return paint("  ⌨  caller: ", fg="yellow", bold=True) + heard
    if kind == "dial":
        outcome = event.get("outcome")
        return (
            paint("  ☎  transfer to ", fg="magenta", bold=True)
            + ", ".join(event["to"])
            + (f" → {outcome}" if outcome else "")
        )
    if kind == "record":
        return paint("  ●  recording", fg="red") + (f": {event['got']}" if event.get("got") else "")
    if kind == "redirect":
        return paint(f"  ↪  redirect {event['url']}", dim=True)
    if kind == "sms":
        return paint(f"  ✉  sms to {event['to']}: ", fg="blue") + str(event["text"])
    if kind == "hangup":
        return paint(f"  ✖  {event['by']} hung up", fg="red", bold=True)
    if kind == "reject":
        return paint("  ✖  call rejected", fg="red", bold=True)
    if kind in ("error", "warning"):
        code = f" {event['code']}" if event.get("code") else ""
        url = str(event.get("url") or "")
        where = f" ({url})" if url and url not in str(event["message"]) else ""
        return paint(f"  !  {kind}{code}: {event['message']}{where}", fg="red")
    return None  # requests are shown only with --verbose


def show_new(call: Call, shown: int, colour: bool, verbose: bool = False) -> int:
    """Print the events after the first `shown`; return the new count."""
    for event in call.events[shown:]:
        line = describe(event, colour)
        if line is None and verbose and event["type"] == "request":
            line = (
                click.style(f"  →  {event['method']} {event['url']} {event['status']}", dim=True)
                if colour
                else (f"  →  {event['method']} {event['url']} {event['status']}")
            )
        if line is not None:
            click.echo(line)
    return len(call.events)


INTERACTIVE_HELP = """\
  keys      type digits, * and # and press Enter (e.g. 5 or 123456#)
  (Enter)   an empty line is silence until the timeout
  say TEXT  speak (when the menu listens for speech); plain words are speech too
  dial STATUS  how a transfer ends: completed, busy, no-answer, failed, canceled (answered: a conference);
            completed+1: the called party presses 1 at its screening <Gather>
  record TEXT  leave a recording
  queue RESULT how waiting in a queue ends: bridged, error, queue-full, system-shutdown
  hangup    hang up (also q or Ctrl-D)
  ?         this help"""


def interactive_token(line: str) -> Token | None:
    """A line typed at the interactive prompt as a token; None for help."""
    text = line.strip()
    if text == "?":
        return None
    if text == "":
        return Token("silence")
    if text.lower() in ("q", "quit", "exit", "hangup"):
        return Token("hangup")
    word, _, rest = text.partition(" ")
    if word.lower() in ("say", "dial", "record", "queue"):
        return parse_token(f"{word.lower()}:{rest}")
    if _KEYS.fullmatch(text):
        return Token("keys", text)
    if all(part.isalpha() for part in text.replace("-", " ").split()):
        return Token("say", text)  # words are speech: `психолог` as `say психолог`
    raise ValueError(f"{text!r} is neither keys (0-9, * and #) nor words to say; ? shows what you can type")


def run_interactive(call: Call, colour: bool, verbose: bool) -> None:
    """Step through the call at a terminal until it ends."""
    click.echo(click.style("Type ? for help. Keys and Enter to press; an empty line is silence.", dim=True))
    shown = show_new(call, 0, colour, verbose)
    while not call.ended:
        try:
            line = click.prompt(
                click.style(f"[{waiting_for(call, True)}]", fg="green") if colour else f"[{waiting_for(call, True)}]",
                default="",
                show_default=False,
                prompt_suffix=" > ",
            )
        except (click.Abort, EOFError):
            line = "hangup"
            click.echo()
        try:
            token = interactive_token(line)
            if token is None:
                click.echo(INTERACTIVE_HELP)
                continue
            perform(call, token, show=True)
        except (ValueError, SimulatorError) as exc:
            click.echo(click.style(f"  {exc}", fg="red") if colour else f"  {exc}")
            continue
        shown = show_new(call, shown, colour, verbose)
