"""Call scripts: a call described in YAML (when, who, what the caller does, what must happen).

    name: The navigator is described and connected
    at: 2021-03-01T10:00:00+03:00
    steps:
      - press: "3"
      - expect: {heard: "медицинский навигатор", transferred_to: "+78007756610"}
      - dial: completed
      - expect: {hung_up: true}

A script may hold several calls (`calls:`, each with its own `at`, `from` and `steps`) sharing one
database, e.g. a second call that finds an allowance used up. Run them with `ivr test`, or let
pytest collect every `*.call.yaml` file through the plugin.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr import clock
from ivr.engine.seal import new_key
from ivr.errors import FlowError, FlowProblem
from ivr.flow.yamlsrc import Located, load_yaml
from ivr.simulator import DIAL_OUTCOMES, Call, Simulator, SimulatorError
from ivr.simulator.console import Token, perform

SUFFIX = ".call.yaml"
_ACTIONS = ("press", "say", "silence", "dial", "record", "hangup")
_EXPECTATIONS = ("heard", "not_heard", "transferred_to", "hung_up", "ended", "registered", "called_back")
_ANSWERS = ("human", "machine", "busy", "no-answer", "failed")


@dataclass(frozen=True)
class Step:
    """One thing the caller does, or one set of expectations."""

    kind: str
    value: Any
    line: int


@dataclass(frozen=True)
class ScriptCall:
    """One call of a script."""

    at: str | None
    from_: str
    steps: tuple[Step, ...]
    # A call the hotline places instead: the call-back of the last call-back request, answered so.
    answer: str | None = None
    params: tuple[tuple[str, str], ...] = ()  # Twilio's conditional parameters (ForwardedFrom, CallerName ...)


@dataclass(frozen=True)
class CallScript:
    """A parsed call script file."""

    path: Path
    name: str
    flow: Path | None
    closed_schedules: tuple[str, ...]
    calls: tuple[ScriptCall, ...]


@dataclass
class Outcome:
    """What running a script gave."""

    script: CallScript
    failures: list[str] = field(default_factory=list)
    skipped: str = ""  # why the script was not run (it needs the app in-process)

    @property
    def passed(self) -> bool:
        return not self.failures and not self.skipped


def _problem(path: Path, line: int | None, message: str) -> FlowError:
    return FlowError([FlowProblem(str(path), line, None, message)])


def _steps(path: Path, raw: Any, line: int) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise _problem(path, line, "`steps` must be a non-empty list")
    steps = []
    for item in raw:
        if not isinstance(item, Located) or len(item) != 1:
            raise _problem(path, getattr(item, "line", line), f"a step is one of {', '.join((*_ACTIONS, 'expect'))}")
        ((kind, value),) = item.items()
        where = item.line_of(kind)
        if kind == "expect":
            if not isinstance(value, Located) or not value:
                raise _problem(path, where, f"`expect` takes a mapping of {', '.join(_EXPECTATIONS)}")
            unknown = [k for k in value if k not in _EXPECTATIONS]
            if unknown:
                raise _problem(
                    path,
                    value.line_of(unknown[0]),
                    f"unknown expectation {unknown[0]!r}; use {', '.join(_EXPECTATIONS)}",
                )
            value = dict(value)
        elif kind not in _ACTIONS:
            raise _problem(path, where, f"unknown step {kind!r}; use {', '.join((*_ACTIONS, 'expect'))}")
        elif kind == "dial" and value not in DIAL_OUTCOMES:
            raise _problem(path, where, f"dial outcome {value!r} is not one of {', '.join(DIAL_OUTCOMES)}")
        elif kind in ("press", "say") and not isinstance(value, str | int):
            raise _problem(path, where, f'`{kind}` takes text, like {kind}: "5"')
        elif kind == "press" and not (str(value) and all(ch in "0123456789*#" for ch in str(value))):
            raise _problem(path, where, f'`press` takes keys 0-9, * and #, like press: "123456#"; not {value!r}')
        steps.append(Step(kind, str(value) if kind in ("press", "say", "record") else value, where))
    return tuple(steps)


def _params(path: Path, where: Located) -> tuple[tuple[str, str], ...]:
    raw = where.get("params")
    if raw is None:
        return ()
    if not isinstance(raw, Located) or not all(str(k).isidentifier() for k in raw):
        raise _problem(
            path,
            where.line_of("params"),
            "`params` maps Twilio's parameter names to values, like params: {ForwardedFrom: '+74951234567'}",
        )
    return tuple((str(k), str(v)) for k, v in raw.items())


def load(path: Path) -> CallScript:
    """Parse a call script; errors name the file and line."""
    doc = load_yaml(path)
    known = ("name", "flow", "at", "from", "params", "steps", "calls", "closed_schedules")
    call_keys = ("at", "from", "params", "steps", "callback", "answer")
    for key in doc:
        if key not in known:
            raise _problem(path, doc.line_of(key), f"unknown key {key!r}; use {', '.join(known)}")
    raw_calls = doc.get("calls")
    if raw_calls is None:
        if "steps" not in doc:
            raise _problem(path, doc.line, "a script needs `steps` (or `calls`, each with `steps`)")
        raw_calls = [doc]
    elif not isinstance(raw_calls, list) or not all(isinstance(c, Located) for c in raw_calls):
        raise _problem(path, doc.line_of("calls"), "`calls` must be a list of calls, each with `steps`")
    calls = []
    for raw in raw_calls:
        if raw is not doc:
            for key in raw:
                if key not in call_keys:
                    raise _problem(path, raw.line_of(key), f"unknown key {key!r} of a call; use {', '.join(call_keys)}")
        answer = None
        if "callback" in raw:
            answer = str(raw.get("answer", "human"))
            if raw["callback"] != "last":
                raise _problem(path, raw.line_of("callback"), "`callback` takes `last`: the last call-back request")
            if answer not in _ANSWERS:
                raise _problem(path, raw.line_of("answer"), f"`answer` is one of {', '.join(_ANSWERS)}")
        elif "answer" in raw:
            raise _problem(path, raw.line_of("answer"), "`answer` goes with `callback: last`")
        at = raw.get("at", doc.get("at"))
        if at is not None and not hasattr(at, "isoformat"):
            try:
                clock.parse(str(at), zone=None)
            except ValueError as exc:
                line = raw.line_of("at") if "at" in raw else doc.line_of("at")
                raise _problem(path, line, f"`at`: {exc}") from None
        calls.append(
            ScriptCall(
                at=None if at is None else str(at.isoformat() if hasattr(at, "isoformat") else at),
                from_=str(raw.get("from", doc.get("from", "+79161234567"))),
                steps=_steps(path, raw.get("steps"), raw.line_of("steps")),
                answer=answer,
                params=_params(path, raw if "params" in raw else doc),
            )
        )
    flow = doc.get("flow")
    closed = doc.get("closed_schedules", [])
    return CallScript(
        path=path,
        name=str(doc.get("name") or path.name.removesuffix(SUFFIX)),
        flow=(path.parent / str(flow)).resolve() if flow else None,
        closed_schedules=tuple(str(c) for c in closed) if isinstance(closed, list) else (str(closed),),
        calls=tuple(calls),
    )


def find(paths: list[Path]) -> list[Path]:
    """Script files named directly, and every *.call.yaml under named folders."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob(f"*{SUFFIX}")) if path.is_dir() else [path]
    return found


def _texts(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _check(
    expect: dict[str, Any],
    call: Call,
    registered: Callable[[], list[str]],
    called_back: Callable[[], str | None] = lambda: None,
) -> list[str]:
    problems = []
    heard = call.heard
    state = f"ended: {call.end}" if call.ended else "goes on"
    for text in _texts(expect.get("heard", [])):
        if text.lower() not in heard.lower():
            problems.append(f"expected to hear «{text}»; heard «{heard[:400]}»")
    for text in _texts(expect.get("not_heard", [])):
        if text.lower() in heard.lower():
            problems.append(f"expected not to hear «{text}»")
    if "transferred_to" in expect:
        want = expect["transferred_to"]
        want_list = [] if want is None else _texts(want)  # transferred_to: null (or []) is no transfer
        if call.dialed != want_list:
            problems.append(f"expected a transfer to {want_list}; the call dialled {call.dialed}")
    if "hung_up" in expect:
        ended_by_app = call.end == "app-hangup"
        if bool(expect["hung_up"]) != ended_by_app:
            problems.append(f"expected hung_up: {expect['hung_up']}; the call {state}")
    if "ended" in expect and bool(expect["ended"]) != call.ended:
        problems.append(f"expected ended: {expect['ended']}; the call {state}")
    if "called_back" in expect:
        found = called_back()
        if found != expect["called_back"]:
            problems.append(f"expected the call-back attempt to end {expect['called_back']!r}; it ended {found!r}")
    if "registered" in expect:
        kinds = registered()
        wanted = expect["registered"]
        wanted_list = [] if wanted in (None, False, []) else _texts(wanted)
        if sorted(kinds) != sorted(wanted_list):
            problems.append(f"expected requests registered in this call: {wanted_list}; found {kinds}")
    return problems


@contextmanager
def _simulator(script: CallScript, url: str | None, flow: Path | None) -> Iterator[tuple[Simulator, Any]]:
    if url:
        yield Simulator(url=url), None
        return
    from ivr import clock
    from ivr.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="ivr-script-") as scratch:
        scratch_db = f"sqlite:///{Path(scratch) / 'script.sqlite3'}"
        config = {
            "DATABASE_URL": scratch_db,
            "SIMULATED_DATABASE_URL": scratch_db,  # a throw-away database: the script's calls stay in it
            "STATE_KEYS": new_key(),  # and a key of its own: nothing is left behind
            "PUBLIC_URL": None,
            "LOG_LEVEL": "ERROR",
            "DEVELOPMENT": True,
        }
        chosen = script.flow or flow
        if chosen:
            config["FLOW"] = str(chosen)
        app = create_app(config)
        store = app.extensions["ivr"].handler.store
        for schedule in script.closed_schedules:
            store.close(schedule, "call script", clock.now())
        token = app.config.get("TWILIO_AUTH_TOKEN") or ""
        try:
            yield Simulator(app, auth_token=token, status_callback="/voice/status"), store
        finally:
            app.extensions["ivr"].dispose()


def _call_back(sim: Simulator, store: Any, scripted: ScriptCall) -> tuple[Call, tuple[str, int]] | str:
    """Place the call-back of the newest call-back request at the call's `at`, as `ivr callbacks run`
    would (it must be due then); the call, and (reference, attempt); or why it cannot be placed."""
    from ivr.store import callbacks as cb
    from ivr.tools.placing import SimulatedPlacer

    handler = sim.app.extensions["ivr"].handler
    flow = handler.flow
    if flow.callbacks is None:
        return "`callback: last`: the flow has no `callbacks:` section"
    now = clock.parse(scripted.at, flow.settings.timezone) if scripted.at else clock.now()
    last, ticket = cb.claim_now(store, flow, None, now, "call script")
    if last is None:
        return "`callback: last`: no call-back request was registered before"
    if ticket is None:
        return f"`callback: last`: call-back {last.reference} is not due at {now.isoformat()} ({last.status(now)})"
    answer = "machine_start" if scripted.answer == "machine" else str(scripted.answer)
    placer = SimulatedPlacer(sim.app, answer, (), now, hang_up=False)
    cb.place(store, flow, placer, last, ticket, now)
    return placer.calls[0], (ticket.reference, ticket.attempt)


def run(script: CallScript, url: str | None = None, flow: Path | None = None) -> Outcome:
    """Play every call of a script and check its expectations."""
    from ivr.store.requests import list_requests

    outcome = Outcome(script)
    if url:
        needs = ["closed_schedules"] if script.closed_schedules else []
        needs += ["`callback`"] if any(call.answer is not None for call in script.calls) else []
        needs += (
            ["`registered`"]
            if any(step.kind == "expect" and "registered" in step.value for call in script.calls for step in call.steps)
            else []
        )
        if needs:
            outcome.skipped = f"{' and '.join(needs)} need the app in-process (run without --url)"
            return outcome
    with _simulator(script, url, flow) as (sim, store):
        for number, scripted in enumerate(script.calls, start=1):
            prefix = f"call {number}, " if len(script.calls) > 1 else ""
            if scripted.answer is not None:
                placed = _call_back(sim, store, scripted)
                if isinstance(placed, str):
                    outcome.failures.append(f"{prefix}{placed}")
                    break
                call, attempt = placed
            else:
                call, attempt = sim.call(from_=scripted.from_, at=scripted.at, params=dict(scripted.params)), None

            def called_back(attempt: tuple[str, int] | None = attempt) -> str | None:
                from ivr.store.callbacks import attempt as attempt_of

                if attempt is None or store is None:
                    raise _problem(script.path, None, "`called_back` goes with a `callback: last` call")
                with store.begin() as conn:
                    mine = attempt_of(conn, *attempt)
                return str(mine["outcome"]) if mine and mine["outcome"] else None

            def registered(call: Call = call) -> list[str]:
                if store is None:
                    raise _problem(script.path, None, "`registered` needs the app in-process (no --url)")
                with store.begin() as conn:
                    return [r["kind"] for r in list_requests(conn) if r["call_sid"] == call.call_sid]

            for step in scripted.steps:
                where = f"{prefix}line {step.line}"
                if step.kind == "expect":
                    found = _check(step.value, call, registered, called_back)
                    if found and scripted.at and any("X-Ivr-Clock" in r for r in call.refused):
                        # The expectations were written for `at`; the server ran on the real clock.
                        found = [f"the server refused the simulated clock ({'; '.join(call.refused)}): {found[0]}"]
                    outcome.failures += [f"{where}: {p}" for p in found]
                    continue
                try:
                    # The same actions as `ivr simulate` tokens; a script says "press" for keys.
                    kind = "keys" if step.kind == "press" else step.kind
                    text = step.value if isinstance(step.value, str) else ""
                    perform(call, Token(kind, text))
                except SimulatorError as exc:
                    outcome.failures.append(f"{where}: {step.kind}: {exc}")
                    break
                if call.end == "app-error":
                    outcome.failures.append(f"{where}: the app failed: {call.heard}")
                    break
            if not call.ended:
                call.hangup()
    return outcome
