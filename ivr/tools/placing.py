"""Who places a call-back's call: Twilio's REST API for real requests, the simulator for simulated ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.store.callbacks import CallBack, PlaceError, Ticket
from ivr.tools.twilio_setup import network_reason
from ivr.web.calls import CallHandler

RING_SECONDS = 30  # how long Twilio lets the callee's phone ring before no-answer


@dataclass
class TwilioPlacer:
    """Places calls with `calls.create`: the call-back webhook and status callback at `public_url`,
    machine detection on, so an answering machine hears a short message instead of a transfer."""

    client: Any  # twilio.rest.Client
    handler: CallHandler
    from_number: str  # a number of the Twilio account the call comes from
    public_url: str

    def place(self, callback: CallBack, ticket: Ticket, to: str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        url, status = self.handler.callback_urls(self.public_url, ticket)
        try:
            call = self.client.calls.create(
                to=to,
                from_=self.from_number,
                url=url,
                method="POST",
                status_callback=status,
                status_callback_method="POST",
                # When the call-back webhook fails, Twilio asks the fallback, which answers from the ticket.
                fallback_url=f"{self.public_url}/voice/fallback",
                fallback_method="POST",
                machine_detection="Enable",
                timeout=RING_SECONDS,
            )
        except TwilioRestException as exc:
            raise PlaceError(f"Twilio refused the call: {exc.msg} (error {exc.code}, HTTP {exc.status})") from None
        except (TwilioException, OSError) as exc:
            raise PlaceError(f"cannot reach Twilio: {network_reason(exc)}") from None
        return str(call.sid)


@dataclass
class SimulatedPlacer:
    """Places each call in the simulator against the app in this process: the callee answers as
    `answer` says, then does what `tokens` say; the call's webhooks and status callback run the
    same code as Twilio's would."""

    app: Any
    answer: str = "human"
    tokens: tuple[Any, ...] = ()  # simulator.console.Token
    at: datetime | None = None
    calls: list[Any] = field(default_factory=list)  # the simulated calls, for their transcripts
    hang_up: bool = True  # False: the call is left waiting after the tokens, for a script to go on with

    def place(self, callback: CallBack, ticket: Ticket, to: str) -> str:
        from ivr.simulator import Simulator, SimulatorError
        from ivr.simulator.console import perform

        handler: CallHandler = self.app.extensions["ivr"].handler
        url, status = handler.callback_urls("", ticket)
        token = self.app.config.get("TWILIO_AUTH_TOKEN") or ""
        simulator = Simulator(self.app, auth_token=token)
        call = simulator.outbound(url, to=to, answer=self.answer, at=self.at, status_callback=status)
        for step in self.tokens:
            if call.ended:
                break
            try:
                perform(call, step)
            except SimulatorError:
                break
        if not call.ended and self.hang_up:
            call.hangup()
        self.calls.append(call)
        return call.call_sid
