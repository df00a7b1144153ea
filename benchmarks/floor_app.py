"""The floor under the hotline: the constant TwiML app plus one form parse and one durable journal
append per webhook, through the very write the hotline makes (`Store.append`), and nothing else.

The gap between the hotline and this app is everything that is not the one write: the seal, the
engine, TwiML, the signature check; the gap between this app and the constant one is the write.
"""

import itertools
import os

from constant_app import DOCUMENT
from flask import Flask, Response, request

from ivr.clock import now
from ivr.store import Event, Store

store = Store(os.environ["IVR_DATABASE_URL"])
app = Flask("floor")
# Every webhook appends a new row (the constant app sends every step to the same URL).
_steps = itertools.count(os.getpid() % 1000 * 10_000_000)


@app.route("/voice", methods=["GET", "POST"])
@app.route("/voice/<path:rest>", methods=["GET", "POST"])
def one_write(rest: str = "") -> Response:
    store.append(Event(request.form.get("CallSid", ""), next(_steps), now(), "digits", '["main"]'))
    return Response(DOCUMENT, mimetype="application/xml")
