"""What TwiML Voice allows: each verb's attributes, and the verbs Twilio knows but the simulator
does not run. Anything else is Twilio's warning 12200 (schema validation): a misspelt verb or
attribute is skipped by Twilio, and said in the simulator's transcript."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .documents import FETCHED

ATTRIBUTES: dict[str, frozenset[str]] = {
    "Say": frozenset({"voice", "language", "loop"}),
    "Play": frozenset({"loop", "digits"}),
    "Pause": frozenset({"length"}),
    "Gather": frozenset(
        {
            "action",
            "method",
            "timeout",
            "finishOnKey",
            "numDigits",
            "input",
            "speechTimeout",
            "maxSpeechTime",
            "language",
            "hints",
            "profanityFilter",
            "partialResultCallback",
            "partialResultCallbackMethod",
            "actionOnEmptyResult",
            "speechModel",
            "enhanced",
            "bargeIn",
            "debug",
        }
    ),
    "Dial": frozenset(
        {
            "action",
            "method",
            "timeout",
            "hangupOnStar",
            "timeLimit",
            "callerId",
            "record",
            "trim",
            "recordingStatusCallback",
            "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent",
            "recordingTrack",
            "answerOnBridge",
            "ringTone",
            "sequential",
            "referUrl",
            "referMethod",
            "events",
        }
    ),
    "Record": frozenset(
        {
            "action",
            "method",
            "timeout",
            "finishOnKey",
            "maxLength",
            "playBeep",
            "trim",
            "recordingStatusCallback",
            "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent",
            "transcribe",
            "transcribeCallback",
            "storageUrl",
            "storageUrlMethod",
        }
    ),
    "Redirect": frozenset({"method"}),
    "Hangup": frozenset(),
    "Reject": frozenset({"reason"}),
    "Enqueue": frozenset({"action", "method", "waitUrl", "waitUrlMethod", "workflowSid", "maxQueueSize"}),
    "Leave": frozenset(),
    "Sms": frozenset({"to", "from", "action", "method", "statusCallback"}),
}
# Verbs of TwiML Voice the simulator does not run: each is skipped with a warning that says so.
NOT_SIMULATED = frozenset({"Connect", "Start", "Stop", "Pay", "Prompt", "Refer", "Siprec", "Stream", "Echo", "Queue"})


def problems(verb: ET.Element) -> list[str]:
    """What in a verb Twilio's schema does not know: unknown attributes (warning 12200)."""
    known = ATTRIBUTES.get(verb.tag)
    if known is None:
        return []
    return [
        f"<{verb.tag}> has no attribute {name!r}: Twilio ignores it"
        for name in verb.attrib
        if name not in known and not name.startswith("{") and name != FETCHED
    ]
