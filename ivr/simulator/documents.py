"""A webhook's answer as Twilio reads it: TwiML, audio to play, text to say, or one of Twilio's errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .transport import Reply

MAX_DOCUMENT = 64 * 1024  # Twilio's limit on a TwiML document (error 11750)
# "TwiML Voice: Your Response": what Twilio does with each type of answer.
TWIML_TYPES = ("text/xml", "application/xml", "text/html")
# <Play>'s supported types (TwiML Voice: <Play>); other audio is Twilio's error 13420 (13325 in <Gather>).
AUDIO_TYPES = (
    "audio/mpeg",
    "audio/wav",
    "audio/wave",
    "audio/x-wav",
    "audio/aiff",
    "audio/x-aifc",
    "audio/x-aiff",
    "audio/x-gsm",
    "audio/gsm",
    "audio/ulaw",
)
FOLLOWED_REDIRECTS = (301, 302, 303, 307)  # error 11216: Twilio follows only these
MAX_REDIRECTS = 10  # then error 11215, "HTTP too many redirects"


def document(url: str, reply: Reply) -> tuple[ET.Element | None, str, str]:
    """The TwiML document of a reply, or None with Twilio's error code and what went wrong. An
    audio answer is played and a text/plain one said, then the call ends, as Twilio does."""
    if reply.error:
        return None, reply.code, reply.error
    if len(reply.body) > MAX_DOCUMENT:
        return None, "11750", f"the answer from {url} is {len(reply.body)} bytes: Twilio takes at most 64 kB"
    if not 200 <= reply.status < 300:
        hint = ""
        if reply.status == 403:
            hint = " (a refused signature? sign with the server's token: --auth-token or TWILIO_AUTH_TOKEN)"
        return None, "11200", f"HTTP {reply.status} from {url}{hint}"
    kind = reply.content_type.split(";")[0].strip().lower()
    if kind in AUDIO_TYPES:
        root = ET.Element("Response")
        ET.SubElement(root, "Play", {FETCHED: "1"}).text = url
        return root, "", ""
    if kind == "text/plain":
        root = ET.Element("Response")
        ET.SubElement(root, "Say").text = reply.body.decode("utf-8", errors="replace")
        return root, "", ""
    if kind not in TWIML_TYPES:
        what = f"Content-Type {kind}" if kind else "no Content-Type (Twilio's debugger shows 502 Bad Gateway)"
        return (
            None,
            "12300",
            f"the answer from {url} has {what}: Twilio takes TwiML (text/xml, application/xml, text/html), "
            "audio or text/plain",
        )
    try:
        root = ET.fromstring(reply.body)
    except ET.ParseError as exc:
        return None, "12100", f"invalid XML from {url}: {exc}"
    if root.tag != "Response":
        return None, "12100", f"the document's root is <{root.tag}>, not <Response>"
    return root, "", ""


FETCHED = "ivr-answered-with-audio"  # a <Play> of the answer itself: nothing to fetch again
