"""Twilio's parameters of one webhook, parsed once: the query (our sealed state) and the form body.

Twilio posts `application/x-www-form-urlencoded` bodies of a few hundred bytes. They are read once
and split with the standard library's `parse_qsl` (werkzeug's general form parser, with its stream
wrappers and multipart machinery, costs as much again); the signature check, the webhook and the
status callback all read the same parsed values. Any other body (multipart, none) goes through
werkzeug's parser as before. Limits hold as before: a body over MAX_CONTENT_LENGTH is refused by
`get_data` (413), which the webhook paths answer with TwiML.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict

_FORM = "application/x-www-form-urlencoded"
_QUERY, _BODY = "ivr.query", "ivr.form"


def _pairs(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text, keep_blank_values=True, errors="replace")


def form(request: Request) -> MultiDict[str, str]:
    """The body's parameters (none for a GET)."""
    cached: MultiDict[str, str] | None = request.environ.get(_BODY)
    if cached is not None:
        return cached
    if request.method != "POST":
        found: MultiDict[str, str] = MultiDict()
    elif request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() == _FORM:
        found = MultiDict(_pairs(request.get_data(cache=True).decode("utf-8", "replace")))
    else:
        found = MultiDict(request.form)
    request.environ[_BODY] = found
    return found


def values(request: Request) -> MultiDict[str, str]:
    """The query's parameters, then the body's (a name in both: the query's value comes first)."""
    cached: MultiDict[str, str] | None = request.environ.get(_QUERY)
    if cached is not None:
        return cached
    query = request.environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", "replace")  # as WSGI gives it
    found: MultiDict[str, str] = MultiDict(_pairs(query))
    for key, value in form(request).items(multi=True):
        found.add(key, value)
    request.environ[_QUERY] = found
    return found
