"""The end of a <Dial> as Twilio reports it: the called party's screening, the outcome, the
recording, and the call progress of every dialled party, after the step."""

from __future__ import annotations

import email.utils
import secrets
from datetime import UTC, datetime
from typing import Any

from . import legs
from .attrs import number as _int
from .attrs import text as _attr
from .documents import document
from .line import Line, Waiting
from .urls import joined


def ends(
    call: Line, waiting: Waiting, found: list[legs.Leg], status: str, duration: int | None, screen: str | None = None
) -> None:
    dial = waiting.element
    child = "CA" + secrets.token_hex(16)
    bridged = status in ("completed", "answered")
    caller_id = _attr(dial, "callerId") or call.from_
    if (
        bridged
        and found
        and found[0].url
        and not screened(call, found[0], child, waiting.document_url, caller_id, screen)
    ):
        status, bridged = "no-answer", False  # the called party declined before being connected
    talk = (duration if duration is not None else 60) if bridged else 0
    limit = _int(dial, "timeLimit", legs.TIME_LIMIT)
    if talk > limit:
        call.add_event("warning", message=f"the transfer is cut at timeLimit {limit} s, as Twilio cuts it")
        talk = limit
    ring = _int(dial, "timeout", 30) if status == "no-answer" else 0
    call.advance(talk + ring)
    if waiting.event is not None:
        waiting.event["outcome"] = status
    progress(call, found, child, status, talk, waiting.document_url)
    recording: dict[str, str] = {}
    if bridged and _attr(dial, "record", "do-not-record") in legs.DIAL_RECORD:
        sid = "RE" + secrets.token_hex(16)
        recording = {
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{call.account_sid}/Recordings/{sid}",
            "RecordingSid": sid,
            "RecordingDuration": str(talk),
        }
        call.recording_status(dial, waiting.document_url, recording, "DialVerb")
    action = _attr(dial, "action")
    if not action:
        # Without an action Twilio goes on with the verbs after <Dial>, whatever the outcome.
        call.continue_document()
        call.send_pending()
        return
    extra = {
        "DialCallStatus": status,
        "DialCallSid": child,
        "DialCallDuration": str(talk),
        "DialBridged": "true" if bridged else "false",
        **recording,
    }
    call.submit(waiting, extra)
    call.send_pending()


def screened(call: Line, leg: legs.Leg, child: str, base: str, caller_id: str, screen: str | None = None) -> bool:
    """Run a <Number url>'s TwiML on the called party's side (the caller still hears ringing);
    False when the called party declined (hung up, or the TwiML failed). The called party's leg is
    a call of its own: from the <Dial>'s callerId (Twilio presents it to the called party), without
    the caller's conditional parameters. `screen`: the keys the called party presses at a <Gather>
    there ("" for none); None when not said (then a <Gather> is taken as accepting, with a warning)."""
    assert leg.element is not None
    side = {
        "CallSid": child,
        "ParentCallSid": call.call_sid,
        "AccountSid": call.account_sid,
        "From": caller_id,
        "Caller": caller_id,
        "To": leg.target,
        "Called": leg.target,
        "Direction": "outbound-dial",
        "CallStatus": "in-progress",
        "ApiVersion": "2010-04-01",
    }
    method = _attr(leg.element, "method", "POST").upper()
    url = joined(base, leg.url)
    extra: dict[str, str] = {}
    for _ in range(10):  # documents on the called side, one per Gather answered
        reply = call.request(url, method if method in ("GET", "POST") else "POST", {**side, **extra}, own=False)
        call.log_request(reply, leg="callee")
        root, code, problem = document(url, reply)
        if root is None:
            call.add_event("warning", code=code, message=f"the screening TwiML failed ({problem}): not connected")
            return False
        url = reply.url or url
        answered = _callee_document(call, root, screen)
        if isinstance(answered, bool):
            return answered
        action, method, digits = answered
        url, extra = joined(url, action) if action else url, {"Digits": digits}
        screen = ""  # the keys are pressed once: a later Gather there hears none
    call.add_event("warning", message="more than 10 screening documents: Twilio would stop; not connected")
    return False


def _callee_document(call: Line, root: Any, screen: str | None) -> tuple[str, str, str] | bool:
    """Run one document on the called side: (action, method, digits) when a <Gather> got keys, else
    whether the called party is connected (True) or declined (False)."""
    for verb in root:
        if verb.tag == "Say":
            call.add_event("say", text=" ".join((verb.text or "").split()), leg="callee")
        elif verb.tag == "Play":
            call.add_event("play", url=(verb.text or "").strip(), leg="callee")
        elif verb.tag == "Pause":
            call.advance(_int(verb, "length", 1))
        elif verb.tag in ("Hangup", "Reject"):
            call.add_event("hangup", by="callee")
            return False
        elif verb.tag == "Gather":
            for child in verb:
                if child.tag == "Say":
                    call.add_event("say", text=" ".join((child.text or "").split()), leg="callee")
            if screen is None:
                call.add_event(
                    "warning",
                    message="the called party's keys at a screening <Gather> were not given (dial:STATUS+KEYS): "
                    "taken as accepting",
                )
                return True
            if screen:
                call.add_event("keys", digits=screen, leg="callee")
                return _attr(verb, "action"), _attr(verb, "method", "POST").upper(), screen
            call.advance(_int(verb, "timeout", 5))  # silence: Twilio goes on with the next verb
        elif verb.tag == "Dial":
            call.add_event(
                "error", code="13201", message="a <Number url> document cannot <Dial> (Twilio's 13201): not connected"
            )
            return False
        else:
            call.add_event("warning", code="12200", message=f"<{verb.tag}> is not run on the called party's side")
    return True


def progress(call: Line, found: list[legs.Leg], child: str, status: str, talk: int, base: str) -> None:
    """The dialled parties' status callbacks (statusCallbackEvent), after the step, as on Twilio."""
    for index, leg in enumerate(found):
        if not leg.status_callback or leg.element is None:
            continue
        sid = child if index == 0 else "CA" + secrets.token_hex(16)
        # Twilio hangs up the others once one answers; when none answers they all end alike.
        outcome = status if index == 0 or status not in ("completed", "answered") else "canceled"
        moment = (call.clock or datetime.now(UTC)).astimezone(UTC)
        for number, event in enumerate(e for e in leg.events() if legs.reached(outcome, e)):
            params = {
                "CallSid": sid,
                "ParentCallSid": call.call_sid,
                "To": leg.target,
                "Called": leg.target,
                "Direction": "outbound-dial",
                "CallStatus": legs.leg_status(event, outcome),
                "Timestamp": email.utils.format_datetime(moment),
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(number),
            }
            if event == "completed":
                params["CallDuration"] = str(talk if index == 0 else 0)
            method = _attr(leg.element, "statusCallbackMethod", "POST")
            call.callback_later(base, leg.status_callback, params, method)
