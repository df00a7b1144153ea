"""The crawler: walks every path of a phone tree through the simulator and reports what it found.

In-process it knows the flow: it tries each key a menu accepts plus a wrong one, each spoken
keyword, silence, a valid and an invalid value for each question, each transfer outcome, and it
forks a call at every state (its sealed state sealed anew for a new CallSid), so each branch costs
one webhook. States are deduplicated by the call state the action URL carries, so it ends.
Over HTTP it knows nothing of the app: it tries every key, a few phrases, silence and every dial
outcome, replays each path from a fresh call, and dedupes by the TwiML the caller is waiting in.
"""

from __future__ import annotations

import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivr.flow.model import Flow
from ivr.simulator import DIAL_OUTCOMES, Call, Simulator, SimulatorError
from ivr.simulator.console import Token, perform
from ivr.simulator.transport import InProcessSession
from ivr.tools.scenarios import Scenario
from ivr.web.calls import Opened

SPEECH_CHARS_PER_SECOND = 14  # a rough pace of synthesised Russian speech
OVERLONG_PROMPT = 600  # characters, about 45 seconds of speech
_STEP_IN_URL = re.compile(r"/step/\d+/")


@dataclass
class _State:
    call: Call
    inputs: tuple[Token, ...]
    presses: int
    speech_chars: int


@dataclass
class Report:
    """What a crawl found."""

    scenarios: list[str] = field(default_factory=list)
    states: int = 0
    webhooks: int = 0
    edges: set[tuple[str, str, str]] = field(default_factory=set)  # (from, input, to) signatures
    node_edges: set[tuple[str, str]] = field(default_factory=set)
    nodes_total: list[str] | None = None
    nodes_reached: set[str] = field(default_factory=set)
    transfers: dict[str, set[str]] = field(default_factory=dict)  # target -> outcomes tried
    hangups: dict[str, str] = field(default_factory=dict)  # last words -> how
    dead_ends: list[dict[str, Any]] = field(default_factory=list)
    no_exit: list[dict[str, Any]] = field(default_factory=list)
    empty_prompts: list[dict[str, Any]] = field(default_factory=list)
    overlong_prompts: list[dict[str, Any]] = field(default_factory=list)
    deepest: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False
    seconds: float = 0.0

    @property
    def coverage(self) -> float | None:
        if not self.nodes_total:
            return None
        return len(self.nodes_reached & set(self.nodes_total)) / len(self.nodes_total)

    @property
    def ok(self) -> bool:
        full = self.coverage is None or self.coverage == 1.0
        return full and not self.dead_ends and not self.no_exit and not self.truncated

    def to_json(self) -> dict[str, Any]:
        unreached = sorted(set(self.nodes_total or []) - self.nodes_reached)
        return {
            "ok": self.ok,
            "scenarios": self.scenarios,
            "nodes": None
            if self.nodes_total is None
            else {
                "reached": len(set(self.nodes_total) & self.nodes_reached),
                "total": len(self.nodes_total),
                "coverage": self.coverage,
                "unreached": unreached,
            },
            "states": self.states,
            "edges": len(self.edges),
            "webhooks": self.webhooks,
            "terminals": {
                "transfers": {target: sorted(outcomes) for target, outcomes in sorted(self.transfers.items())},
                "hangups": [{"last_words": words, "how": how} for words, how in sorted(self.hangups.items())],
            },
            "dead_ends": self.dead_ends,
            "loops_without_exit": self.no_exit,
            "empty_prompts": self.empty_prompts,
            "overlong_prompts": self.overlong_prompts,
            "deepest": self.deepest,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 2),
        }


class _Backend(Protocol):
    def start(self, scenario: Scenario) -> Call: ...
    def apply(self, state: _State, token: Token) -> Call: ...
    def signature(self, call: Call) -> Hashable: ...
    def tokens(self, call: Call) -> list[Token]: ...
    def finish(self, scenario: Scenario) -> None: ...


def last_words(text: str, limit: int = 80) -> str:
    """The end of what was heard, about `limit` characters from the start of the word the limit falls
    in (an ellipsis says something came before), never from the middle of a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    start = text.rfind(" ", 0, len(text) - limit) + 1
    return "…" + text[start:]


def _waiting_xml(call: Call) -> str:
    import xml.etree.ElementTree as ET

    if call.waiting is None:
        return ""
    return _STEP_IN_URL.sub("/step/N/", ET.tostring(call.waiting.element, encoding="unicode"))


def _generic_tokens(call: Call) -> list[Token]:
    if call.waiting is None:
        return []
    if call.waiting.verb == "dial":
        conference = call.waiting.element.find("Conference") is not None
        return [Token("dial", o) for o in DIAL_OUTCOMES if o != "answered" or conference]
    if call.waiting.verb == "record":
        return [Token("record", "проверка"), Token("silence")]
    if call.waiting.verb == "enqueue":
        return [Token("queue", "bridged"), Token("silence")]
    if call.waiting.verb == "loop":
        return []  # only hanging up ends it
    el = call.waiting.element
    modes = el.get("input", "dtmf").split()
    found = [Token("silence")]
    if "dtmf" in modes:
        if el.get("numDigits") == "1":
            found += [Token("keys", k) for k in "1234567890*#"]
        else:
            found += [Token("keys", "1234567#"), Token("keys", "1#")]
    if "speech" in modes:
        found += [Token("say", phrase) for phrase in ("да", "нет", "оператор", "абракадабра")]
    return found


class _HttpBackend:
    """Any TwiML app over HTTP: every path is replayed from a fresh call."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.webhooks = 0

    def start(self, scenario: Scenario) -> Call:
        call = self.simulator.call(at=scenario.at)
        self.webhooks += len(call.exchanges)
        return call

    def apply(self, state: _State, token: Token) -> Call:
        call = self.simulator.call(at=state.call.started_at)
        for past in (*state.inputs, token):
            if call.ended:
                break
            perform(call, past)
        self.webhooks += len(call.exchanges)
        return call

    def signature(self, call: Call) -> Hashable:
        return (call.heard, _waiting_xml(call), call.end)

    def tokens(self, call: Call) -> list[Token]:
        return _generic_tokens(call)

    def finish(self, scenario: Scenario) -> None:
        pass


class _InProcessBackend:
    """The app in this process: calls are forked with their server-side state at every branch."""

    def __init__(self, app: Any, flow: Flow, on_nodes: Callable[[str, tuple[str, ...]], None]) -> None:
        from ivr.web.runtime import Runtime

        self.app = app
        self.flow = flow
        runtime: Runtime = app.extensions["ivr"]
        # The crawler's calls are simulated: answered, and their scenarios' closures set, in the
        # sandbox, never in the database of real calls.
        self.handler = runtime.sandbox()
        self.store = self.handler.store
        self.simulator = Simulator(app, auth_token=app.config.get("TWILIO_AUTH_TOKEN") or "")
        self.webhooks = 0
        self._states: dict[tuple[str, str], Opened | None] = {}
        runtime.listeners.append(self._heard)
        self.on_nodes = on_nodes

    def _heard(self, call_sid: str, answer: Any) -> None:
        self.webhooks += 1
        self.on_nodes(call_sid, answer.path)
        if answer.action and answer.next is not None:  # what its action URL carries, without opening it
            self._remember((answer.action, call_sid), answer.next)

    def start(self, scenario: Scenario) -> Call:
        from ivr import clock

        for schedule in scenario.closures:
            self.store.close(schedule, "crawler scenario", clock.now())
        if scenario.callback is not None:
            from ivr.store.callbacks import Ticket

            line, answered_by, last = scenario.callback
            url, _ = self.handler.callback_urls("", Ticket("0", line, 1, last))
            return self.simulator.outbound(url, to="+79161234567", answer=answered_by, at=scenario.at)
        return self.simulator.call(at=scenario.at)

    def finish(self, scenario: Scenario) -> None:
        for schedule in scenario.closures:
            self.store.reopen(schedule)

    def apply(self, state: _State, token: Token) -> Call:
        sid = "CA" + secrets.token_hex(16)
        twin = state.call.clone(sid, InProcessSession(self.app))
        waiting = twin.waiting
        if waiting is not None:
            # The call's state rides sealed in the action URL, bound to the CallSid: seal it anew.
            # A new element with the same children (the simulator never changes an element) and
            # attributes of its own: only its action changes.
            element = ET.Element(waiting.element.tag, dict(waiting.element.attrib))
            element.text, element.tail = waiting.element.text, waiting.element.tail
            element.extend(waiting.element)
            opened = self._opened(state.call)
            if opened is not None:
                element.set("action", self.handler.reseal(opened, sid))
            waiting.element = element
        perform(twin, token)
        return twin

    def _opened(self, call: Call) -> Opened | None:
        """What the action URL a call waits on carries: as the app's answer said it (`_heard`), or
        opened once per call and URL. A call's signature, its tokens and each of its forks ask."""
        action = call.waiting.element.get("action") if call.waiting is not None else None
        if not action:
            return None
        key = (action, call.call_sid)
        if key in self._states:
            return self._states[key]
        found = self.handler.opened(action, call.call_sid)
        self._remember(key, found)
        return found

    def _remember(self, key: tuple[str, str], found: Opened | None) -> None:
        if len(self._states) > 1024:
            self._states.clear()
        self._states[key] = found

    def _server_state(self, call: Call) -> tuple[str, str, int, int]:
        found = self._opened(call)
        if found is None:
            return ("", "", 0, 0)
        state = found.state
        return (state.node, state.phase, state.invalid, state.silence)

    def signature(self, call: Call) -> Hashable:
        if call.ended:
            return ("ended", call.end, call.heard[-80:])
        node, phase, invalid, silence = self._server_state(call)
        verb = call.waiting.verb if call.waiting else ""
        return (node, phase, invalid, silence, verb)

    def tokens(self, call: Call) -> list[Token]:
        if call.waiting is None:
            return []
        if call.waiting.verb != "gather":
            return _generic_tokens(call)
        node_id, phase, _, _ = self._server_state(call)
        node = self.flow.nodes.get(node_id)
        probes = node.probes(phase) if node is not None else None
        if probes is None:
            return _generic_tokens(call)
        return [Token("silence"), *(Token(kind, text) for kind, text in probes)]


def _heard_events(call: Call, since: int) -> list[dict[str, Any]]:
    return [e for e in call.events[since:] if e["type"] in ("say", "dial", "hangup", "error", "reject")]


class Crawler:
    """Explores a phone tree in several scenarios and builds a Report."""

    def __init__(
        self,
        *,
        app: Any = None,
        url: str | None = None,
        flow: Flow | None = None,
        scenarios: Iterable[Scenario],
        max_states: int = 20_000,
        max_depth: int = 60,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.report = Report(nodes_total=list(flow.nodes) if flow is not None else None)
        self._node_of_sid: dict[str, str] = {}
        if app is not None:
            assert flow is not None
            self.backend: _Backend = _InProcessBackend(app, flow, self._nodes)
        else:
            assert url is not None
            self.backend = _HttpBackend(Simulator(url=url))
        self.scenarios = list(scenarios)
        self.max_states = max_states
        self.max_depth = max_depth
        self.progress = progress

    def _nodes(self, call_sid: str, path: tuple[str, ...]) -> None:
        self.report.nodes_reached.update(path)
        previous = self._node_of_sid.get(call_sid)
        for a, b in zip((previous, *path), path, strict=False):
            if a is not None and a != b:
                self.report.node_edges.add((a, b))
        if path:
            self._node_of_sid[call_sid] = path[-1]

    def run(self) -> Report:
        started = time.perf_counter()
        for scenario in self.scenarios:
            self.report.scenarios.append(scenario.name)
            try:
                self._crawl(scenario)
            finally:
                self.backend.finish(scenario)
        self.report.webhooks = getattr(self.backend, "webhooks", 0)
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _observe(self, call: Call, since: int, state_key: str) -> None:
        report = self.report
        for event in _heard_events(call, since):
            if event["type"] == "say":
                text = event["text"]
                where = {"scenario": report.scenarios[-1], "state": state_key, "text": text[:120]}
                if not text.strip():
                    report.empty_prompts.append(where)
                elif len(text) > OVERLONG_PROMPT and where not in report.overlong_prompts:
                    report.overlong_prompts.append(where)
            elif event["type"] == "dial":
                for target in event["to"]:
                    report.transfers.setdefault(target, set())
                    if event.get("outcome"):
                        report.transfers[target].add(event["outcome"])
        if call.ended:
            last = last_words(call.heard) or (call.events[-1].get("message", "") if call.events else "")
            report.hangups.setdefault(last, call.end or "")

    def _crawl(self, scenario: Scenario) -> None:
        backend, report = self.backend, self.report
        first = backend.start(scenario)
        root_key = repr(backend.signature(first))
        self._observe(first, 0, root_key)
        seen: dict[str, _State] = {root_key: _State(first, (), 0, len(first.heard))}
        graph: dict[str, set[str]] = {root_key: set()}
        terminal: set[str] = set()
        queue = deque([root_key])
        while queue:
            key = queue.popleft()
            state = seen[key]
            if state.call.ended:
                terminal.add(key)
                if state.call.end not in ("app-hangup", "caller-hangup", "rejected"):
                    report.dead_ends.append(self._where(scenario, state) | {"end": state.call.end})
                continue
            if state.call.waiting is not None and state.call.waiting.verb == "dial":
                terminal.add(key)  # a transfer is a way on
            if len(state.inputs) >= self.max_depth:
                report.truncated = True
                continue
            for token in backend.tokens(state.call):
                try:
                    call = backend.apply(state, token)
                except SimulatorError:
                    continue
                since = len(state.call.events)
                child = repr(backend.signature(call))
                self._observe(call, since, child)
                if token.kind == "dial":
                    for target in state.call.dialed:
                        report.transfers.setdefault(target, set()).add(token.text)
                report.edges.add((key, str(token), child))
                graph.setdefault(key, set()).add(child)
                if child not in seen:
                    if len(seen) >= self.max_states:
                        report.truncated = True
                        continue
                    presses = state.presses + (token.kind == "keys")
                    seen[child] = _State(call, (*state.inputs, token), presses, state.speech_chars + len(call.heard))
                    graph.setdefault(child, set())
                    queue.append(child)
            if self.progress is not None:
                self.progress(scenario.name, len(seen), len(queue))
        report.states += len(seen)
        self._find_loops(scenario, seen, graph, terminal)
        deepest = max(seen.values(), key=lambda s: (s.presses, s.speech_chars))
        candidate = {
            "scenario": scenario.name,
            "key_presses": deepest.presses,
            "inputs": [str(t) for t in deepest.inputs],
            "speech_seconds": round(deepest.speech_chars / SPEECH_CHARS_PER_SECOND),
        }
        if not report.deepest or candidate["key_presses"] > report.deepest["key_presses"]:
            report.deepest = candidate

    @staticmethod
    def _where(scenario: Scenario, state: _State) -> dict[str, Any]:
        return {
            "scenario": scenario.name,
            "inputs": [str(t) for t in state.inputs],
            "heard": last_words(state.call.heard, 120),
        }

    def _find_loops(
        self, scenario: Scenario, seen: dict[str, _State], graph: dict[str, set[str]], terminal: set[str]
    ) -> None:
        """States from which no transfer or hang-up can be reached: the caller is stuck for ever."""
        reverse: dict[str, set[str]] = {}
        for src, targets in graph.items():
            for dst in targets:
                reverse.setdefault(dst, set()).add(src)
        can_exit = set(terminal)
        todo = list(terminal)
        while todo:
            for src in reverse.get(todo.pop(), ()):
                if src not in can_exit:
                    can_exit.add(src)
                    todo.append(src)
        for key, state in seen.items():
            if key not in can_exit and not state.call.ended:
                self.report.no_exit.append(self._where(scenario, state))
