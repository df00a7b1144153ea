"""Resolving the URLs a TwiML document names against the URL it came from, as Twilio does.

`urllib.parse.urljoin` parses both URLs in full every time; a crawl resolves thousands of action
URLs, nearly all of them paths from the root (`/voice/step/3/main?s=...`) against a plain http(s)
base. Those are joined directly, with the same result; every other pair goes to `urljoin`.
"""

from __future__ import annotations

import re
import urllib.parse

_BASE = re.compile(r"(https?://[A-Za-z0-9.:-]+)(?:/[\x21-\x7e]*)?")  # the scheme and host as urljoin keeps them
_ROOTED = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")  # printable ASCII but ";" (parameters, which urljoin splits off)


def joined(base: str, reference: str) -> str:
    """`urllib.parse.urljoin(base, reference)`."""
    root = _BASE.fullmatch(base)
    if (
        root is not None
        and _ROOTED.fullmatch(reference)
        and not reference.startswith("//")  # another host
        and "/." not in reference  # a dot segment, which urljoin removes
        and "?#" not in reference  # an empty query or fragment, which urljoin leaves out
        and not reference.endswith(("?", "#"))
    ):
        return root.group(1) + reference
    return urllib.parse.urljoin(base, reference)
