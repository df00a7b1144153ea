"""One simulated phone call: executes TwiML the way Twilio does and records what happened.

The simulated clock (when the call has one) moves by what has a duration of its own: pauses,
Gather and Record timeouts, transfers and recordings. Speech takes no simulated time, so a call
placed at 17:59:59 presses its first key at 17:59:59.
"""

from __future__ import annotations

import copy
import secrets
import xml.etree.ElementTree as ET
from typing import Any

from . import dialing, legs, queues, schema
from .attrs import number as _int
from .attrs import text as _attr
from .attrs import true as _true
from .line import (
    DIAL_OUTCOMES,
    QUEUE_RESULTS,
    Document,
    Event,
    Line,
    SimulatorError,
    Waiting,
)
from .transport import Session
from .urls import joined


class Call(Line):
    """A call in progress; drive it with press, say, silence, dial_outcome, record and hangup."""

    @property
    def heard(self) -> str:
        """Everything said since the caller's last input, as one text."""
        return " ".join(self._heard)

    @property
    def dialed(self) -> list[str]:
        """The targets of a <Dial> met since the caller's last input ([] when nothing was dialled)."""
        return list(self._dialed)

    @property
    def transcript(self) -> list[Event]:
        """Every event of the call, in order."""
        return list(self.events)

    def to_json(self) -> dict[str, Any]:
        """The call as the `ivr simulate --json` object."""
        return {
            "call_sid": self.call_sid,
            "from": self.from_,
            "to": self.to,
            "at": self.started_at.isoformat() if self.started_at else None,
            "events": self.transcript,
            "end": self.end,
        }

    def clone(self, call_sid: str, session: Session) -> Call:
        """A copy of this call's caller side under another CallSid (the app must copy its own side)."""
        twin = copy.copy(self)
        twin.call_sid, twin.session = call_sid, session
        # Events are flat; only their own keys change later (a gather's `got`, a dial's `outcome`).
        twin.events = [dict(event) for event in self.events]
        twin.exchanges = list(self.exchanges)
        twin._heard = list(self._heard)
        twin._dialed = list(self._dialed)
        twin.running = Document(self.running.url, self.running.verbs, self.running.position)
        if self.waiting is not None:
            index = next((i for i, e in enumerate(self.events) if e is self.waiting.event), None)
            event = twin.events[index] if index is not None else None
            twin.waiting = Waiting(self.waiting.verb, self.waiting.element, self.waiting.document_url, event)
        return twin

    def press(self, keys: str) -> Call:
        """Press keys on the keypad (digits, * and #); `*` during a <Dial hangupOnStar> hangs up on
        the called party and the call goes on."""
        if self.waiting is not None and self.waiting.verb == "dial":
            dial = self.waiting.element
            if keys != "*" or not _true(dial, "hangupOnStar"):
                raise SimulatorError(
                    'cannot press keys: the call waits in <Dial>; only * with hangupOnStar="true" does anything'
                )
            found, _ = legs.legs(dial)
            self._input_begins()
            self.add_event("gather", input="dtmf", got="*", hangup_on_star=True)
            dialing.ends(self, self.waiting, found, "completed", None)
            return self
        waiting = self._expect("gather", "record", action="press keys")
        self._input_begins()
        if waiting.verb == "record":
            finish = (
                _attr(waiting.element, "finishOnKey", "1234567890*#")
                if "finishOnKey" in waiting.element.attrib
                else "1234567890*#"
            )
            key = next((k for k in keys if k in finish), None)
            if key is None:  # a key that does not end it is just sound in the recording
                self.add_event("warning", message=f"keys {keys!r} are not in finishOnKey {finish!r}: recording goes on")
                return self
            return self._finish_recording(waiting, text="", digits=key)
        gather = waiting.element
        if "dtmf" not in _attr(gather, "input", "dtmf"):
            self.add_event("gather", input=_attr(gather, "input", "dtmf"), got=None, ignored=keys)
            return self._nothing_gathered(waiting)
        finish = _attr(gather, "finishOnKey", "#") if "finishOnKey" in gather.attrib else "#"
        limit = _int(gather, "numDigits", 0)
        digits, finished_on = "", None
        for key in keys:
            if finish and key == finish:
                finished_on = key
                break
            digits += key
            if limit and len(digits) >= limit:
                break
        if not digits:
            self.add_event("gather", input=_attr(gather, "input", "dtmf"), got="")
            return self._nothing_gathered(waiting)
        self.add_event("gather", input=_attr(gather, "input", "dtmf"), got=digits)
        if not finished_on and not (limit and len(digits) >= limit):
            # Neither the finish key nor numDigits ended it: Twilio waits `timeout` seconds for
            # another key before it submits the keys pressed.
            self.advance(_int(gather, "timeout", 5))
        extra = {"Digits": digits}
        if finished_on:
            extra["FinishedOnKey"] = finished_on
        return self.submit(waiting, extra)

    def say(self, text: str, confidence: float = 0.92) -> Call:
        """Speak to a Gather that listens for speech."""
        waiting = self._expect("gather", action="speak")
        self._input_begins()
        gather = waiting.element
        if "speech" not in _attr(gather, "input", "dtmf"):
            self.add_event("gather", input=_attr(gather, "input", "dtmf"), got=None, ignored=text)
            return self._nothing_gathered(waiting)
        self.add_event("gather", input=_attr(gather, "input", "dtmf"), got=text)
        partial = _attr(gather, "partialResultCallback")
        if partial:
            # While the caller speaks, before the final result: what is recognised so far.
            words = text.split()
            method = _attr(gather, "partialResultCallbackMethod", "POST")
            for number in range(1, len(words) + 1):
                unstable = {"UnstableSpeechResult": " ".join(words[:number]), "Stability": "0.8"}
                unstable["SequenceNumber"] = str(number - 1)
                self.callback_later(waiting.document_url, partial, unstable, method)
            self.send_pending()
        return self.submit(waiting, {"SpeechResult": text, "Confidence": f"{confidence:.2f}"})

    def silence(self) -> Call:
        """Stay silent until the Gather or Record times out; in a queue, wait another round."""
        waiting = self._expect("gather", "record", "enqueue", action="stay silent")
        self._input_begins()
        if waiting.verb == "enqueue":
            queues.hold(self)
            return self
        if waiting.verb == "record":
            self.advance(_int(waiting.element, "timeout", 5))
            if waiting.event is not None:
                waiting.event["got"] = None
            self.continue_document()  # an empty recording: Twilio skips the action
            return self
        self.add_event("gather", input=_attr(waiting.element, "input", "dtmf"), got=None)
        return self._nothing_gathered(waiting)

    def dial_outcome(self, status: str = "completed", duration: int | None = None, screen: str | None = None) -> Call:
        """Decide how the transfer the call is ringing ends: completed, busy, no-answer, failed,
        canceled; `answered` for a <Conference>. `duration` is how long the parties talk; `screen`
        the keys the called party presses at a <Gather> of its <Number url> TwiML ("" for none)."""
        if status not in DIAL_OUTCOMES:
            raise SimulatorError(f"{status!r} is not a dial outcome; use one of {', '.join(DIAL_OUTCOMES)}")
        waiting = self._expect("dial", action="decide a transfer outcome")
        dial = waiting.element
        found, _ = legs.legs(dial)
        if status == "answered" and not any(leg.noun == "Conference" for leg in found):
            raise SimulatorError(
                "answered is what Twilio reports for a <Conference>; a number, SIP address or client that answers "
                "is `completed`"
            )
        self._input_begins()
        dialing.ends(self, waiting, found, status, duration, screen)
        return self

    def record(self, text: str = "", duration: int = 5) -> Call:
        """Leave a recording (with `text` as its transcription) at a <Record>."""
        waiting = self._expect("record", action="leave a recording")
        self._input_begins()
        return self._finish_recording(waiting, text=text, digits="", duration=duration)  # ended by silence

    def hangup(self, after: float = 0.0) -> Call:
        """The caller hangs up, `after` simulated seconds (say, of speaking into a <Record>)."""
        if self.ended:
            return self
        self.advance(max(after, 0.0))
        if self.waiting is not None and self.waiting.event is not None and self.waiting.verb == "dial":
            self.waiting.event["outcome"] = "caller-hangup"
        if self.waiting is not None and self.waiting.verb == "record":
            # Twilio still requests the action, with Digits=hangup; what it answers is not played.
            waiting, self._heard = self.waiting, []
            recorded = int(self.elapsed - self.recording_since)  # what was recorded until the hang-up
            self._finish_recording(waiting, text="", digits="hangup", duration=recorded, hung_up=True)
        self.add_event("hangup", by="caller")
        if self.waiting is not None and self.waiting.verb == "enqueue":
            waiting = self.waiting
            self.end = "caller-hangup"  # Twilio tells the Enqueue action (QueueResult=hangup), unplayed
            queues.left(self, waiting, "hangup", hung_up=True)
            self.end = None
        self.finish("caller-hangup")
        return self

    def _expect(self, *verbs: str, action: str) -> Waiting:
        if self.ended:
            raise SimulatorError(f"cannot {action}: the call has ended ({self.end})")
        if self.waiting is None or self.waiting.verb not in verbs:
            where = self.waiting.verb if self.waiting else "nothing"
            wanted = " or ".join(f"<{verb.capitalize()}>" for verb in verbs)
            raise SimulatorError(f"cannot {action}: the call waits in <{where.capitalize()}>, not in {wanted}")
        return self.waiting

    def _input_begins(self) -> None:
        self._heard = []
        self._dialed = []
        self._fetches_without_input = 0

    def _execute(self, el: ET.Element) -> None:
        tag = el.tag
        self.verbs_run += 1
        for problem in schema.problems(el):
            self.add_event("warning", code="12200", message=problem)
        if tag in ("Say", "Play", "Pause"):
            self.speak(el)
            if tag != "Pause" and _attr(el, "loop", "1") == "0":
                # Repeated until the caller hangs up: the verbs after it never run.
                self.waiting = Waiting("loop", el, self.running.url, self.events[-1])
        elif tag == "Gather":
            self._in_gather = True
            for child in el:
                if child.tag in ("Say", "Play", "Pause"):
                    self.speak(child)
                else:
                    self.add_event("warning", code="12200", message=f"<{child.tag}> is not allowed inside <Gather>")
            self._in_gather = False
            self.waiting = Waiting("gather", el, self.running.url)
        elif tag == "Dial":
            found, unknown = legs.legs(el)
            for noun in unknown:
                self.add_event("warning", code="12200", message=f"<{noun}> is no noun of <Dial>: Twilio ignores it")
            for leg in found:
                if leg.noun == "Conference":
                    self.add_event(
                        "warning",
                        message=f"{leg.target}: the other participants, beeps and wait music of a conference are "
                        "not simulated; its outcome is what you give (dial:answered)",
                    )
                if leg.noun == "Queue" and leg.element is not None and leg.element.get("url"):
                    self.add_event(
                        "warning", message=f"{leg.target}: the url played to the dequeued caller is not simulated"
                    )
            self._dialed = [leg.target for leg in found]
            self.add_event("dial", to=self._dialed, outcome=None)
            self.waiting = Waiting("dial", el, self.running.url, self.events[-1])
        elif tag == "Record":
            self.add_event("record", max_length=_int(el, "maxLength", 3600))
            self.waiting = Waiting("record", el, self.running.url, self.events[-1])
            self.recording_since = self.elapsed
        elif tag == "Redirect":
            target = (el.text or "").strip() or self.running.url
            self.add_event("redirect", url=joined(self.running.url, target))
            self._fetch(target, _attr(el, "method", "POST"), {})
        elif tag == "Hangup":
            self.add_event("hangup", by="app")
            self.finish("app-hangup")
        elif tag == "Reject" and (self.verbs_run > 1 or self.direction != "inbound"):
            # "Any other response will result in an answered call": after other verbs the call was
            # answered, and a <Reject> only hangs it up (the status callback says completed).
            self.add_event("warning", message="<Reject> after other verbs: the call was answered; Twilio hangs up")
            self.add_event("hangup", by="app")
            self.finish("app-hangup")
        elif tag == "Reject":
            reason = _attr(el, "reason", "rejected")
            self._rejected = "busy" if reason == "busy" else "rejected"  # the call ends busy or no-answer
            self.add_event("reject", reason=reason)
            self.finish("rejected")
        elif tag in ("Sms", "Message"):
            self.add_event("sms", to=_attr(el, "to", self.from_), text=(el.text or "").strip())
        elif tag == "Enqueue":
            queues.enqueue(self, el)
        elif tag == "Leave":
            self.add_event("warning", code="12200", message="<Leave> outside a queue's waitUrl: Twilio skips it")
        elif tag in schema.NOT_SIMULATED:
            self.add_event("warning", message=f"<{tag}> is TwiML the simulator does not run: skipped")
        else:
            self.add_event("warning", code="12200", message=f"unknown verb <{tag}> skipped")

    def queue_outcome(self, result: str) -> Call:
        """How waiting in a queue ends for the caller: bridged (an agent dequeued the call), error,
        queue-full or system-shutdown."""
        if result not in QUEUE_RESULTS:
            raise SimulatorError(f"{result!r} is not a queue result; use one of {', '.join(QUEUE_RESULTS)}")
        waiting = self._expect("enqueue", action="end waiting in a queue")
        self._input_begins()
        queues.ends(self, waiting, result)
        return self

    def _nothing_gathered(self, waiting: Waiting) -> Call:
        self.advance(_int(waiting.element, "timeout", 5))
        if _true(waiting.element, "actionOnEmptyResult"):
            return self.submit(waiting, {})
        self.continue_document()  # Twilio falls through to the next verb
        return self

    def _finish_recording(
        self, waiting: Waiting, text: str, digits: str, duration: int = 5, hung_up: bool = False
    ) -> Call:
        el = waiting.element
        limit = _int(el, "maxLength", 3600) or 3600
        duration = min(duration, limit)  # a recording stops at maxLength
        if not hung_up:  # a hang-up comes after the time recorded has passed
            self.advance(duration)
        sid = "RE" + secrets.token_hex(16)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        if waiting.event is not None:
            waiting.event.update(got=text or None, recording_url=url, duration=duration)
        recording = {"RecordingUrl": url, "RecordingSid": sid, "RecordingDuration": str(duration)}
        # Asynchronous on Twilio: they arrive after the step that made the recording.
        callback = _attr(el, "transcribeCallback")
        if callback and text:
            transcription = {
                **recording,
                "TranscriptionText": text,
                "TranscriptionStatus": "completed",
                "TranscriptionSid": "TR" + secrets.token_hex(16),
            }
            self.callback_later(waiting.document_url, callback, transcription)
        self.recording_status(el, waiting.document_url, recording, "RecordVerb")
        params = dict(recording, **({"Digits": digits} if digits else {}))
        if hung_up:
            action = _attr(el, "action") or waiting.document_url
            reply = self.request(joined(waiting.document_url, action), _attr(el, "method", "POST"), params)
            self.log_request(reply)
            return self
        self.submit(waiting, params)
        self.send_pending()
        return self
