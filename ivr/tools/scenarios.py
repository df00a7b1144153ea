"""The worlds a crawl walks the flow in: simulated moments that open and close its schedules and
its programme, an operator's emergency closure, and the call-backs the hotline places."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.flow.model import Flow


@dataclass(frozen=True)
class Scenario:
    """One world to crawl in: a simulated moment, and schedules an operator has closed."""

    name: str
    at: str | None
    closures: tuple[str, ...] = ()
    # A call-back call the hotline places instead of a caller's call: (line, AnsweredBy, last attempt).
    callback: tuple[str, str, bool] | None = None


def default_scenarios(flow: Flow | None, times: list[str] | None = None) -> list[Scenario]:
    """Moments that reach open and closed schedules and both sides of the programme period, each
    labelled with what holds then for this flow (over HTTP the flow is unknown: only the moment)."""
    moments = times or ["2021-03-01T10:00:00+03:00", "2021-03-06T10:00:00+03:00", "2022-01-10T10:00:00+03:00"]
    scenarios = [Scenario(_label(flow, moment), moment) for moment in moments]
    if not times and flow is not None and flow.schedules:
        names = tuple(flow.schedules)
        scenarios.append(Scenario(_label(flow, moments[0], "emergency closure of every schedule"), moments[0], names))
    if not times and flow is not None and flow.callbacks is not None:
        # The calls the hotline places: each line's, and what an answering machine and a last attempt hear.
        for line in flow.callbacks.lines:
            scenarios.append(Scenario(f"call-back of {line}, answered", moments[0], (), (line, "human", False)))
        line = next(iter(flow.callbacks.lines))
        for answered_by, last, what in (
            ("human", True, "answered on the last attempt"),
            ("machine_start", False, "an answering machine"),
            ("machine_start", True, "an answering machine on the last attempt"),
        ):
            scenarios.append(Scenario(f"call-back of {line}, {what}", moments[0], (), (line, answered_by, last)))
    return scenarios


def _label(flow: Flow | None, moment: str, closure: str = "") -> str:
    from ivr import clock

    at = clock.parse(moment, flow.settings.timezone if flow is not None else "UTC")
    parts = [f"{at:%a %Y-%m-%d %H:%M}"]
    if flow is not None and flow.programme is not None:
        parts.append("programme in force" if flow.programme.active(at) else "programme not in force")
    if closure:
        parts.append(closure)
    elif flow is not None and flow.schedules:
        states = {name: schedule.is_open(at, None) for name, schedule in flow.schedules.items()}
        if all(states.values()) or not any(states.values()):
            parts.append("schedules open" if all(states.values()) else "schedules closed")
        else:
            parts.append(", ".join(f"{name} {'open' if state else 'closed'}" for name, state in states.items()))
    return ", ".join(parts)
