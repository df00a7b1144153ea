"""Waiting in a queue (<Enqueue>, <Leave>): the waitUrl's rounds, and how waiting ends, as Twilio
does it for the caller; other callers in the queue and the agent are not simulated."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET

from . import attrs
from .attrs import text as _attr
from .documents import document
from .line import Line, Waiting
from .urls import joined


def enqueue(call: Line, el: ET.Element) -> None:
    """The caller joins the queue and hears the first round of its wait music."""
    call.queue_sid, call.queued_at = "QU" + secrets.token_hex(16), call.elapsed
    call.add_event("enqueue", queue=(el.text or "").strip())
    call.add_event(
        "warning",
        message="other callers in the queue and the agent who takes the call are not simulated: "
        "queue:RESULT says how waiting ends (bridged, error, queue-full, system-shutdown)",
    )
    call.waiting = Waiting("enqueue", el, call.running.url, call.events[-1])
    hold(call)


def _params(call: Line) -> dict[str, str]:
    return {"QueueSid": call.queue_sid, "QueueTime": str(int(call.elapsed - call.queued_at))}


def hold(call: Line) -> None:
    """One round of the queue's waitUrl: Twilio requests it and plays what it answers; at its end
    the caller waits on (the next round comes with more waiting). <Leave> leaves the queue."""
    waiting = call.waiting
    assert waiting is not None
    el = waiting.element
    wait_url = _attr(el, "waitUrl")
    if not wait_url:
        call.add_event("play", url="(Twilio's default hold music)", digits=None)
        call.advance(30)
        return
    url, method = joined(waiting.document_url, wait_url), attrs.method(el, "waitUrlMethod")
    for _ in range(call.loop_limit):
        params = {**_params(call), "QueuePosition": "1", "CurrentQueueSize": "1", "AvgQueueTime": "0"}
        params["MaxQueueSize"] = _attr(el, "maxQueueSize", "100")
        reply = call.request(url, method, params)
        call.log_request(reply)
        root, code, problem = document(url, reply)
        if root is None:
            call.add_event("error", code=code, message=f"the queue's waitUrl failed: {problem}", url=url)
            left(call, waiting, "error")
            return
        for verb in root:
            if verb.tag in ("Say", "Play", "Pause"):
                call.speak(verb)
            elif verb.tag == "Leave":
                left(call, waiting, "leave")
                return
            elif verb.tag == "Hangup":
                call.add_event("hangup", by="app")
                left(call, waiting, "hangup", hung_up=True)
                return
            elif verb.tag == "Redirect":
                url = joined(url, (verb.text or "").strip() or url)
                method = attrs.method(verb)
                break
            else:
                call.add_event("warning", code="12200", message=f"<{verb.tag}> is not run in a queue's waitUrl")
        else:
            return  # played to its end: the caller waits for what happens next
    call.app_error(f"more than {call.loop_limit} waitUrl documents without caller input (a loop?)")


def ends(call: Line, waiting: Waiting, result: str) -> None:
    """Waiting ends as the caller's token says: bridged (an agent took the call), error ..."""
    if result == "bridged":
        call.advance(60)  # the conversation with the agent
    if waiting.event is not None:
        waiting.event["outcome"] = result
    left(call, waiting, result)


def left(call: Line, waiting: Waiting, result: str, hung_up: bool = False) -> None:
    """The caller is out of the queue: Enqueue's action with QueueResult, or the verbs after it."""
    el = waiting.element
    params = {**_params(call), "QueueResult": result}
    action = _attr(el, "action")
    if hung_up or call.ended:
        if action:  # Twilio still tells the action; its answer is not played
            target = joined(waiting.document_url, action)
            reply = call.request(target, attrs.method(el), params)
            call.log_request(reply)
        if not call.ended:
            call.finish("app-hangup")
        return
    if not action:
        call.continue_document()
        return
    call.submit(waiting, params)
