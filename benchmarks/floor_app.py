"""The floors under the hotline: the constant TwiML document plus one form parse and one durable
journal append per webhook, through the very write the hotline makes (`Store.append`), and nothing
else; served two ways.

- `app`: a Flask app, as the ceiling (`constant_app.py`) is: the gap between the hotline and this
  app is everything that is not the one write; the gap between this app and the constant one is
  the write.
- `raw`: the same parse (werkzeug's form) and write answered by a plain WSGI callable: what Flask's
  own request handling costs beside them.
"""

import itertools
import os
from collections.abc import Callable, Iterable
from typing import Any

from constant_app import DOCUMENT
from flask import Flask, Request, Response, request

from ivr.clock import now
from ivr.store import Store
from ivr.store.tables import Event

store = Store(os.environ["IVR_DATABASE_URL"])
app = Flask("floor")
# Every webhook appends a new row (the constant app sends every step to the same URL).
_steps = itertools.count(os.getpid() % 1000 * 10_000_000)
_BODY = DOCUMENT.encode()
_HEADERS = [("Content-Type", "application/xml; charset=utf-8"), ("Content-Length", str(len(_BODY)))]


def _append(call_sid: str) -> None:
    store.append(Event(call_sid, next(_steps), now(), "digits", '["main"]'))


@app.route("/voice", methods=["GET", "POST"])
@app.route("/voice/<path:rest>", methods=["GET", "POST"])
def one_write(rest: str = "") -> Response:
    _append(request.form.get("CallSid", ""))
    return Response(DOCUMENT, mimetype="application/xml")


def raw(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The same write, without Flask."""
    _append(Request(environ).form.get("CallSid", ""))
    start_response("200 OK", _HEADERS)
    return [_BODY]
