"""The ceiling of this stack: a Flask app that answers every webhook with one constant TwiML document.

Same framework, same server, same TwiML size as the hotline's main menu, and no work at all:
what the hotline reaches is read as a ratio of what this reaches.
"""

from flask import Flask, Response
from twilio.twiml.voice_response import VoiceResponse

_response = VoiceResponse()
_response.say(
    "Здравствуйте! Вы позвонили на круглосуточный медицинский пульт.", voice="Polly.Tatyana", language="ru-RU"
)
_gather = _response.gather(action="/voice/step/1/main", method="POST", input="dtmf speech", num_digits=1, timeout=6)
_gather.say("Чтобы организовать медицинскую помощь, нажмите 1. " * 6, voice="Polly.Tatyana", language="ru-RU")
_response.redirect("/voice/step/1/main", method="POST")
DOCUMENT = str(_response)

app = Flask("constant")


@app.route("/voice", methods=["GET", "POST"])
@app.route("/voice/<path:rest>", methods=["GET", "POST"])
def constant(rest: str = "") -> Response:
    return Response(DOCUMENT, mimetype="application/xml")
