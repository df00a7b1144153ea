"""Load generation: realistic calls recorded in-process, replayed over HTTP by many connections.

A replayed call goes where each answer sends it, as Twilio does: the entry webhook first, then the
action URL of the answer's Gather or Dial (it carries the call's sealed state), then the status
callback; only the caller's part (keys, speech, transfer outcomes) is recorded.
"""

from __future__ import annotations

import html
import http.client
import multiprocessing
import random
import re
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from ivr import create_app
from ivr.simulator import Simulator, SimulatorError
from ivr.simulator.console import parse_token, perform

# A realistic mix of calls: (weight, tokens). Same paths as scripts/simulate_week.py, shorter.
MIX: list[tuple[int, list[str]]] = [
    (20, ["1", "7700123456#", "1", "say:Иванов Иван Иванович", "1", "say:болит горло", "1", "dial:completed"]),
    (18, ["2", "dial:completed"]),
    (12, ["3", "dial:busy", "1", "dial:completed"]),
    (5, ["4", "dial:completed"]),
    (6, ["5", "1", "dial:completed"]),
    (6, ["5", "2", "POLICY#", "1", "1", "dial:completed"]),
    (8, ["6", "1", "2", "9", "hangup"]),
    (4, ["0", "dial:completed"]),
    (4, ["-", "-", "-", "dial:completed"]),
]
AT = "2021-03-01T10:00:00+03:00"


STEP = "STEP"  # a recorded request that goes to the previous answer's action URL
_ACTION = re.compile(rb'<(?:Gather|Dial) action="([^"]*)"')


@dataclass(frozen=True)
class Request:
    """One webhook of a recorded call: /voice, /voice/status or STEP; CALLSID in the form is
    replaced at replay."""

    path: str
    form: tuple[tuple[str, str], ...]


def next_path(answer: bytes, current: str) -> str:
    """Where the caller's next input goes after `answer` (its Gather's or Dial's action)."""
    found = _ACTION.search(answer)
    return html.unescape(found.group(1).decode()) if found else current


def play(send: Callable[[str, list[tuple[str, str]]], bytes], call: list[Request], sid: str) -> int:
    """Play one recorded call through `send(path, form) -> answer`; returns the webhooks sent."""
    path = "/voice"
    for request in call:
        form = [(k, sid if v == "CALLSID" else v) for k, v in request.form]
        answer = send(path if request.path == STEP else request.path, form)
        path = next_path(answer, path)
    return len(call)


def record_mix(calls: int, database_url: str, seed: int = 1) -> list[list[Request]]:
    """Play `calls` calls of the mix in-process and keep the webhook requests of each."""
    rng = random.Random(seed)
    config = {"DATABASE_URL": database_url, "SIMULATED_DATABASE_URL": database_url}  # the calls stay in it
    app = create_app({**config, "LOG_LEVEL": "ERROR", "TWILIO_AUTH_TOKEN": None, "TESTING": True})
    sim = Simulator(app, auth_token="", status_callback="/voice/status")
    weights = [w for w, _ in MIX]
    recorded = []
    for index in range(calls):
        _, tokens = rng.choices(MIX, weights=weights)[0]
        call = sim.call(at=AT, call_sid=f"CA{index:032x}")
        for token in tokens:
            if call.ended:
                break
            try:
                perform(call, parse_token(token.replace("POLICY", str(1_000_000 + index))))
            except SimulatorError:
                break
        if not call.ended:
            call.hangup()
        recorded.append(
            [
                Request(
                    _kind(urllib.parse.urlsplit(x.url).path),
                    tuple((k, "CALLSID" if k == "CallSid" else v) for k, v in x.params.items()),
                )
                for x in call.exchanges
            ]
        )
    return recorded


def _kind(path: str) -> str:
    return path if path in ("/voice", "/voice/status") else STEP


def entry_only(calls: int) -> list[list[Request]]:
    """Calls that are nothing but the entry webhook (the greeting and main menu)."""
    form = (("CallSid", "CALLSID"), ("From", "+79161234567"), ("To", "+78002001441"), ("CallStatus", "ringing"))
    return [[Request("/voice", form)] for _ in range(calls)]


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_us: float | None = None  # the server's CPU time per request (its workers', from /proc)
    database_cpu_us: float | None = None  # the database server's, where it runs on this machine

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _worker(args: tuple[str, list[list[Request]], int, str, float]) -> tuple[int, int, list[float], float, float]:
    """One client process: `threads` connections, each playing whole calls one after another."""
    base, calls, threads, tag, start_at = args
    host, port = urllib.parse.urlsplit(base).hostname or "127.0.0.1", urllib.parse.urlsplit(base).port
    queue = list(enumerate(calls))
    lock = threading.Lock()
    latencies: list[float] = []
    counts = [0, 0]
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.time()

    def run() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=15)
        mine: list[float] = []
        done = errors = 0
        while True:
            with lock:
                if not queue:
                    break
                index, call = queue.pop()
            sid = f"CA{tag}{index:024x}"[:34]
            path = "/voice"
            for request in call:
                body = urllib.parse.urlencode([(k, sid if v == "CALLSID" else v) for k, v in request.form])
                headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Ivr-Clock": AT}
                target = path if request.path == STEP else request.path
                started = time.perf_counter()
                payload = b""
                try:
                    connection.request("POST", target, body, headers)
                    response = connection.getresponse()
                    payload = response.read()
                    ok = response.status == 200 and "технический сбой".encode() not in payload
                except (OSError, http.client.HTTPException):
                    ok = False
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=15)
                mine.append((time.perf_counter() - started) * 1000)
                done += 1
                errors += not ok
                path = next_path(payload, target)
        with lock:
            latencies.extend(mine)
            counts[0] += done
            counts[1] += errors

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return counts[0], counts[1], latencies, began, time.time()


def replay(base: str | list[str], calls: list[list[Request]], connections: int, processes: int, tag: str) -> Result:
    """Replay calls against `base` (or several instances, the client processes spread over them)
    with `connections` connections spread over client processes."""
    bases = [base] if isinstance(base, str) else base
    chunks = [calls[i::processes] for i in range(processes)]
    start_at = time.time() + 1.0  # every client process starts at the same moment
    jobs = [
        (bases[i % len(bases)], chunk, connections // processes, f"{tag}{i}", start_at)
        for i, chunk in enumerate(chunks)
    ]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_worker, jobs)
    seconds = max(p[4] for p in parts) - min(p[3] for p in parts)
    latencies = [x for p in parts for x in p[2]]
    return Result(sum(p[0] for p in parts), sum(p[1] for p in parts), seconds, latencies)


def summary(result: Result) -> str:
    return (
        f"{result.throughput:8.0f} req/s  p50 {result.percentile(50):6.2f} ms  p95 {result.percentile(95):6.2f} ms  "
        f"p99 {result.percentile(99):6.2f} ms  errors {result.errors}/{result.requests}"
        + (f"  server CPU {result.server_cpu_us:4.0f} µs/req" if result.server_cpu_us is not None else "")
        + (f", database {result.database_cpu_us:4.0f}" if result.database_cpu_us is not None else "")
    )


def median(values: list[float]) -> float:
    return statistics.median(values)
