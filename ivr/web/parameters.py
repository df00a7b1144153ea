"""Twilio's parameters of one webhook, parsed once: the query (our sealed state) and the form body.

Twilio posts `application/x-www-form-urlencoded` bodies of a few hundred bytes. They are read once
and split as the standard library's `parse_qsl` splits them, a field unquoted only when it has
something to unquote (werkzeug's general form parser, with its stream wrappers and multipart
machinery, costs as much again; `parse_qsl` itself unquotes every field, twice the time). The
signature check, the webhook and the status callback all read the same parsed values. Any other
body (multipart, none) goes through werkzeug's parser as before. Limits hold as before: a body over
MAX_CONTENT_LENGTH is refused (413), which the webhook paths answer with TwiML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote_plus

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

_FORM = "application/x-www-form-urlencoded"
_BODY, _VALUES = "ivr.form", "ivr.values"  # where a request keeps them, in its WSGI environ


_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")  # a run of escaped bytes, one UTF-8 text


def _unescaped(run: re.Match[str]) -> str:
    return bytes.fromhex(run.group().replace("%", "")).decode("utf-8", "replace")


def _unquoted(text: str) -> str:
    """`urllib.parse.unquote_plus(text, errors="replace")`, each run of escapes decoded at once (the
    standard library takes them one by one: a caller's words in Russian are dozens of them). An
    ASCII character ends a broken UTF-8 sequence either way, so the texts are the same."""
    text = text.replace("+", " ")
    return _ESCAPES.sub(_unescaped, text) if "%" in text else text


def pairs(text: str) -> list[tuple[str, str]]:
    """`urllib.parse.parse_qsl(text, keep_blank_values=True, errors="replace")`, in a fraction of the
    time for Twilio's parameters, most of which have nothing to unquote."""
    found = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "%" in field or "+" in field:
            name, value = _unquoted(name), _unquoted(value)
        found.append((name, value))
    return found


_AS_IS = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus leaves as it is


def encoded(fields: Mapping[str, str]) -> str:
    """`urllib.parse.urlencode(fields)`, in a fraction of the time for Twilio's parameters (the
    simulator sends them so): most have nothing to quote, and the rest (the caller's number, what
    a simulated caller says) come back call after call."""
    return "&".join(
        (name if _AS_IS.fullmatch(name) else _quoted(name))
        + "="
        + (value if _AS_IS.fullmatch(value) else _quoted(value))
        for name, value in fields.items()
    )


# Only the simulator encodes (the app decodes): what it quotes is simulated, never a caller's.
_quoted = lru_cache(maxsize=4096)(quote_plus)


def _body_pairs(request: Request) -> list[tuple[str, str]]:
    environ = request.environ
    if environ.get("REQUEST_METHOD") != "POST":
        return []
    if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != _FORM:
        return list(request.form.items(multi=True))  # multipart, or none: werkzeug's parser
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit():  # Twilio's: read straight, as werkzeug's stream wrappers cost a tenth of a webhook
        size, limit = int(length), request.max_content_length
        if limit is not None and size > limit:
            raise RequestEntityTooLarge()
        data = environ["wsgi.input"].read(size)
    else:  # chunked, or a length that is no number: werkzeug reads it
        data = request.get_data(cache=True)
    return pairs(data.decode("utf-8", "replace"))


class Parameters(dict[str, str]):
    """Parameters by name, with the first value of a repeated one (as werkzeug's MultiDict gives
    it), and every one of them in `pairs`, in order (the signature check reads them all). A plain
    dict, built at once: a MultiDict costs a webhook several microseconds more to build and read."""

    __slots__ = ("pairs",)

    def __init__(self, found: list[tuple[str, str]]) -> None:
        super().__init__(reversed(found))  # the first of a repeated name is written last: it stays
        self.pairs = found

    def getlist(self, name: str) -> list[str]:
        """Every value of `name`, in order."""
        return [value for key, value in self.pairs if key == name]

    getall = getlist  # the name twilio's RequestValidator asks for first


def form(request: Request) -> Parameters:
    """The body's parameters (none for a GET)."""
    found: Parameters | None = request.environ.get(_BODY)
    if found is None:
        found = request.environ[_BODY] = Parameters(_body_pairs(request))
    return found


def values(request: Request) -> Parameters:
    """The query's parameters, then the body's (a name in both: the query's value comes first)."""
    environ = request.environ
    found: Parameters | None = environ.get(_VALUES)
    if found is None:
        # WSGI gives the query as latin-1 text of its bytes; Twilio's are UTF-8 (percent-encoded).
        query = environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", "replace")
        both = pairs(query)
        body: Parameters | None = environ.get(_BODY)
        both += body.pairs if body is not None else _body_pairs(request)
        found = environ[_VALUES] = Parameters(both)
    return found
