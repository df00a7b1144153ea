"""Calls held at Twilio's pace: how many concurrent calls one instance answers quickly.

Virtual callers arrive at random (a Poisson process: an open loop, arrivals do not wait for
answers) and walk the hotline's real branches as recorded in-process (`load.MIX`: desk intake with
its questions and registration, the representative, the navigator with a busy line, the second
opinion with its allowance, the psychologist, information, silences): each webhook goes to the
previous answer's action URL, then the caller listens and presses for 2-6 s (uniformly at random)
before the next one, and a status callback ends the call. Every webhook opens a new connection, as
Twilio does (`--keep-alive`: connections are pooled and reused, as a proxy in front would).

The arrival rate is stepped up so that the calls in progress reach each `--calls` figure; per step,
in the steady window (after one mean call length, until arrivals stop), it reports the concurrent
calls measured, webhooks/s, latency p50/p99/max, errors, and the CPU per webhook of the server and
of the client itself (the client's share of the two cores is what the servers cannot have). The
hotline (gunicorn with the production settings, SQLite) and the ceiling (`constant_app.py`, a Flask
app answering constant TwiML under the same gunicorn) are measured step by step in turn, the order
alternating; so is, once per step, a static answer from a bare asyncio server, the client's own
floor. The knee is the most concurrent calls held with p99 <= 100 ms and no errors. After each
hotline step it checks that every finished call has its journal row and every registration its
request. `--postgres URL` adds two instances sharing a PostgreSQL database. With `--rounds N`
the report ends with the medians of the per-round figures: each server's steps, its knee, and the
ratio of the hotline's knee to the constant app's.

    python benchmarks/paced.py --quick               # three steps, about 6 minutes on 2 cores
    python benchmarks/paced.py --calls 1000,2000,3000,4000,5000,6000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from run import Gunicorn, hotline_env, postgres_database  # noqa: E402

THINK = (2.0, 6.0)  # seconds a caller listens and presses between two webhooks
KNEE_P99_MS = 100.0
STATIC = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/step" input="dtmf" numDigits="1">'
    + "<Say>Чтобы организовать медицинскую помощь, нажмите 1.</Say>".encode() * 6
    + b"</Gather></Response>"
)


# ---------------------------------------------------------------- the client


class Http:
    """A minimal HTTP/1.1 client: a new connection per request, or a pool of kept ones."""

    def __init__(self, host: str, port: int, keep_alive: bool) -> None:
        self.host, self.port, self.keep_alive = host, port, keep_alive
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.keep_alive and self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nX-Ivr-Clock: {load.AT}\r\n"
            f"Connection: {'keep-alive' if self.keep_alive else 'close'}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            headers = await reader.readuntil(b"\r\n\r\n")
            status = int(headers.split(b" ", 2)[1])
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            payload = await (reader.readexactly(length) if length is not None else reader.read())
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            return 0, b""
        if self.keep_alive and length is not None and b"connection: close" not in headers.lower():
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status, payload


@dataclass
class Step:
    """What one step of arrivals gave, on one server."""

    server: str
    target_calls: int
    calls_started: int = 0
    calls_finished: int = 0
    concurrent: float = 0.0  # calls in progress, averaged over the window
    webhooks_per_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    requests: int = 0
    cpu_us: float | None = None  # the server's CPU per webhook, over the whole step
    client_cpu_us: float = 0.0  # the client's own CPU per webhook, over the whole step
    accounted: str = ""  # "ok", or what is missing from the database

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def held(self) -> bool:
        return self.errors == 0 and self.percentile(99) <= KNEE_P99_MS and bool(self.latencies_ms)

    def line(self) -> str:
        return (
            f"{self.server:<26} {self.concurrent:>7.0f} {self.webhooks_per_s:>7.0f}/s "
            f"{self.percentile(50):>7.1f} {self.percentile(99):>7.1f} {max(self.latencies_ms, default=0):>7.0f} ms "
            f"{self.errors:>5}  "
            + (f"{self.cpu_us:>6.0f} µs" if self.cpu_us is not None else "     ? µs")
            + f"  {self.client_cpu_us:>6.0f} µs"
            + (f"  {self.accounted}" if self.accounted else "")
        )


async def _drive(
    urls: list[str], calls: list[list[load.Request]], target: int, seconds: float, keep_alive: bool, tag: str, seed: int
) -> dict[str, object]:
    """Arrivals for `seconds` at the rate that keeps `target` calls in progress (each call on one of
    `urls`, in turn); then every call started is played to its end."""
    clients = [
        Http(urllib.parse.urlsplit(url).hostname or "127.0.0.1", urllib.parse.urlsplit(url).port or 80, keep_alive)
        for url in urls
    ]
    rng = random.Random(seed)
    cpu_began = time.process_time()
    mean_length = statistics.mean((len(c) - 1) * sum(THINK) / 2 for c in calls)
    rate = target / mean_length
    warm = min(mean_length, seconds / 2)
    began = time.monotonic()
    window: list[tuple[float, float, bool]] = []  # (sent at, latency ms, ok)
    in_progress = [0]
    samples: list[int] = []
    finished = [0]
    tasks: list[asyncio.Task[None]] = []

    async def one_call(index: int, template: list[load.Request]) -> None:
        in_progress[0] += 1
        client = clients[index % len(clients)]
        sid = f"CA{tag}{index:026x}"[:34]
        path = "/voice"
        try:
            for number, request in enumerate(template):
                if number:
                    await asyncio.sleep(rng.uniform(*THINK))
                target_path = path if request.path == load.STEP else request.path
                body = urllib.parse.urlencode([(k, sid if v == "CALLSID" else v) for k, v in request.form]).encode()
                sent = time.monotonic()
                status, payload = await client.post(target_path, body)
                ok = status == 200 and "технический сбой".encode() not in payload
                window.append((sent - began, (time.monotonic() - sent) * 1000, ok))
                path = load.next_path(payload, target_path)
        finally:
            in_progress[0] -= 1
            finished[0] += 1

    async def sample() -> None:
        while time.monotonic() - began < seconds:
            await asyncio.sleep(0.5)
            if time.monotonic() - began >= warm:
                samples.append(in_progress[0])

    sampler = asyncio.create_task(sample())
    index = 0
    next_at = 0.0
    while next_at < seconds:
        delay = began + next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_call(index, calls[index % len(calls)])))
        index += 1
        next_at += rng.expovariate(rate)
    await sampler
    await asyncio.gather(*tasks)
    steady = [(at, ms, ok) for at, ms, ok in window if warm <= at < seconds]
    return {
        "started": index,
        "finished": finished[0],
        "concurrent": statistics.mean(samples) if samples else 0.0,
        "webhooks_per_s": len(steady) / (seconds - warm) if seconds > warm else 0.0,
        "latencies": [ms for _, ms, _ in steady],
        "errors": sum(not ok for _, _, ok in window),
        "requests": len(window),
        "client_cpu": time.process_time() - cpu_began,
    }


def _client(args: tuple[list[str], list[list[load.Request]], int, float, bool, str, int]) -> dict[str, object]:
    return asyncio.run(_drive(*args))


def measure(
    name: str,
    urls: list[str],
    cpu: object,
    calls: list[list[load.Request]],
    target: int,
    seconds: float,
    keep_alive: bool,
    tag: str,
) -> Step:
    """One step against one server, the client in a process of its own (so that the figures are
    the server's and the client's, not this script's)."""
    before = cpu() if callable(cpu) else None
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply(_client, ((urls, calls, target, seconds, keep_alive, tag, sum(map(ord, tag))),))
    after = cpu() if callable(cpu) else None
    step = Step(name, target)
    step.calls_started, step.calls_finished = int(got["started"]), int(got["finished"])  # type: ignore[call-overload]
    step.concurrent = float(got["concurrent"])  # type: ignore[arg-type]
    step.webhooks_per_s = float(got["webhooks_per_s"])  # type: ignore[arg-type]
    step.latencies_ms = list(got["latencies"])  # type: ignore[call-overload]
    step.errors, step.requests = int(got["errors"]), int(got["requests"])  # type: ignore[call-overload]
    if before is not None and after is not None and step.requests:
        step.cpu_us = (after - before) / step.requests * 1e6
    if step.requests:
        step.client_cpu_us = float(got["client_cpu"]) / step.requests * 1e6  # type: ignore[arg-type]
    return step


# ---------------------------------------------------------------- servers


def static_server(port_out: multiprocessing.Queue[int]) -> None:
    """A bare asyncio server answering every request with the same TwiML: the client's floor."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(x.split(b":", 1)[1]) for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:")),
                    0,
                )
                await reader.readexactly(length)
                close = b"connection: close" in head.lower()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n%s\r\n"
                    % (len(STATIC), b"Connection: close\r\n" if close else b"")
                    + STATIC
                )
                await writer.drain()
                if close:
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=4096)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


# A second opinion is granted once per policy and year: replayed calls reuse the recorded policy
# numbers, so only the registrations that spend no allowance are predictable.
PREDICTABLE = "kind <> 'second_opinion'"


def counts(database_url: str) -> tuple[int, int]:
    """(journal rows, requests that spend no allowance) in the hotline's database."""
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM ivr_journal").scalar_one()
        requests = conn.exec_driver_sql(f"SELECT count(*) FROM ivr_requests WHERE {PREDICTABLE}").scalar_one()
    engine.dispose()
    return int(rows), int(requests)


def registrations(calls: list[list[load.Request]], started: int, registering: set[int]) -> int:
    """Requests the first `started` calls register (the templates that did when recorded)."""
    return sum(1 for index in range(started) if index % len(calls) in registering)


HOTLINE, CEILING = "hotline, SQLite", "constant TwiML (ceiling)"


def knee_ratio(knee: dict[str, int], above: set[str]) -> tuple[float, str]:
    """The hotline's knee over the constant app's, and what it is: "" exact, "<=" or ">=" a bound
    (a knee above the highest step is only known to be at least that step), "?" unknown."""
    if not knee.get(CEILING):
        return 0.0, "?"
    value = knee.get(HOTLINE, 0) / knee[CEILING]
    if CEILING in above and HOTLINE in above:
        return value, "?"
    return value, "<=" if CEILING in above else ">=" if HOTLINE in above else ""


def median_line(name: str, steps: list[Step]) -> str:
    """One server's row of a step, as `Step.line` prints it, from the medians of several rounds."""
    med = statistics.median
    cpu = [s.cpu_us for s in steps if s.cpu_us is not None]
    return (
        f"{name:<26} {med(s.concurrent for s in steps):>7.0f} {med(s.webhooks_per_s for s in steps):>7.0f}/s "
        f"{med(s.percentile(50) for s in steps):>7.1f} {med(s.percentile(99) for s in steps):>7.1f} "
        f"{med(max(s.latencies_ms, default=0) for s in steps):>7.0f} ms {med(s.errors for s in steps):>5.0f}  "
        + (f"{med(cpu):>6.0f} µs" if cpu else "     ? µs")
        + f"  {med(s.client_cpu_us for s in steps):>6.0f} µs"
    )


def summary(
    steps_of: dict[tuple[str, int], list[Step]],
    knees: dict[str, list[int]],
    open_ended: dict[str, int],
    ratios: list[tuple[float, str]],
) -> None:
    """Medians of the per-round figures: each server's steps, its knee, and the knees' ratio."""
    print(f"medians of {len(ratios)} rounds")
    for (name, _), steps in steps_of.items():
        print(median_line(name, steps))
    known = [value for value, kind in ratios if kind != "?"]
    bounds = "/".join(sorted({kind for _, kind in ratios if kind in ("<=", ">=")}))
    print(
        f"knee (p99 <= {KNEE_P99_MS:.0f} ms, no errors), median of rounds: "
        + ", ".join(
            f"{name} {'>=' if open_ended.get(name) else ''}{statistics.median(values):.0f} calls"
            for name, values in knees.items()
        )
        + "; ratio to the constant app "
        + (f"{bounds}{statistics.median(known):.2f}" if known else "?")
        + (" (>=: above the highest step in some round; <= and >=: the ratio is a bound)" if open_ended else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="1000,2000,3000,4000,5000,6000", help="Concurrent calls per step.")
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="Arrivals per step (the steady window is the later part)."
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep-alive", action="store_true", help="Reuse connections instead of one per webhook.")
    parser.add_argument("--postgres", default="", help="Also two instances sharing this PostgreSQL server.")
    parser.add_argument("--quick", action="store_true", help="Steps of 1,000, 2,000 and 4,000 calls, 40 s each.")
    args = parser.parse_args()
    steps = [1000, 2000, 4000] if args.quick else [int(x) for x in args.calls.split(",")]
    seconds = 40.0 if args.quick else args.seconds

    folder = Path(tempfile.mkdtemp(prefix="ivr-paced-"))
    recorded_url = f"sqlite:///{folder / 'recorded.sqlite3'}"
    calls = load.record_mix(400, recorded_url)
    engine = sa.create_engine(recorded_url)
    with engine.connect() as conn:
        sids = [r[0] for r in conn.exec_driver_sql(f"SELECT call_sid FROM ivr_requests WHERE {PREDICTABLE}")]
    engine.dispose()
    registering = {int(sid[2:], 16) for sid in sids if sid}
    hotline_url = f"sqlite:///{folder / 'hotline.sqlite3'}"
    logs = folder / "servers.log"  # their access logs: the production settings, kept out of the table
    hotline = Gunicorn("ivr:create_app()", hotline_env(hotline_url), folder, logs)
    constant = Gunicorn("constant_app:app", {"PYTHONPATH": str(HERE), "IVR_LOG_LEVEL": "WARNING"}, HERE, logs)
    queue: multiprocessing.Queue[int] = multiprocessing.get_context("fork").Queue()
    static = multiprocessing.get_context("fork").Process(target=static_server, args=(queue,), daemon=True)
    static.start()
    static_url = f"http://127.0.0.1:{queue.get(timeout=10)}"
    pair = None
    if args.postgres:
        made = postgres_database(args.postgres)
        if made is not None:
            pg_url, drop = made
            env = {**hotline_env(pg_url), "WEB_CONCURRENCY": "1"}
            pair = ([Gunicorn("ivr:create_app()", env, folder, logs) for _ in range(2)], drop)
    mode = "keep-alive" if args.keep_alive else "a new connection per webhook"
    print(f"paced callers: think {THINK[0]:.0f}-{THINK[1]:.0f} s, {mode}, {seconds:.0f} s of arrivals per step")
    print(
        f"{'server':<26} {'calls':>7} {'webhooks':>9} {'p50':>7} {'p99':>7} {'max':>7}    "
        f"{'errors':>5}  {'server CPU':>9}  {'client CPU':>9}  (per webhook)"
    )
    knees: dict[str, list[int]] = {}
    open_ended: dict[str, int] = {}  # rounds in which a server held even the highest step
    ratios: list[tuple[float, str]] = []
    steps_of: dict[tuple[str, int], list[Step]] = {}  # every round's step, by server and target
    try:
        for round_number in range(args.rounds):
            knee: dict[str, int] = {}
            for target in steps:
                order = [(HOTLINE, hotline), (CEILING, constant)]
                if (round_number + steps.index(target)) % 2:
                    order.reverse()
                tag = f"{round_number:x}{target:x}"
                for name, server in order:
                    before = counts(hotline_url) if server is hotline else None
                    step = measure(
                        name,
                        [server.url],
                        server.cpu_seconds,
                        calls,
                        target,
                        seconds,
                        args.keep_alive,
                        f"{tag}{name[0]}",
                    )
                    if before is not None:
                        rows, requests = counts(hotline_url)
                        want = registrations(calls, step.calls_started, registering)
                        missing = (step.calls_finished - (rows - before[0]), want - (requests - before[1]))
                        step.accounted = (
                            "all accounted for"
                            if missing == (0, 0)
                            else f"missing rows {missing[0]}, requests {missing[1]}"
                        )
                    print(step.line(), flush=True)
                    steps_of.setdefault((name, target), []).append(step)
                    if step.held:
                        knee[name] = max(knee.get(name, 0), round(step.concurrent))
                if pair is not None:
                    servers = pair[0]

                    def both(servers: list[Gunicorn] = servers) -> float | None:
                        used = [s.cpu_seconds() for s in servers]
                        return None if None in used else sum(u or 0.0 for u in used)

                    name = "hotline, 2 × PostgreSQL"
                    step = measure(
                        name, [s.url for s in servers], both, calls, target, seconds, args.keep_alive, f"{tag}p"
                    )
                    print(step.line(), flush=True)
                    steps_of.setdefault((name, target), []).append(step)
                    if step.held:
                        knee[name] = max(knee.get(name, 0), round(step.concurrent))
                if round_number == 0:
                    name = "static answer (client floor)"
                    floor = measure(name, [static_url], None, calls, target, seconds, args.keep_alive, f"{tag}s")
                    print(floor.line(), flush=True)
            above = {name for (name, target), taken in steps_of.items() if target == steps[-1] and taken[-1].held}
            for name in dict.fromkeys(n for n, _ in steps_of):  # a server that held no step: knee 0
                knees.setdefault(name, []).append(knee.get(name, 0))
                open_ended[name] = open_ended.get(name, 0) + (name in above)
            ratio = knee_ratio(knee, above)
            ratios.append(ratio)
            print(
                f"round {round_number + 1}: knee (p99 <= {KNEE_P99_MS:.0f} ms, no errors): "
                + ", ".join(f"{k} {'>=' if k in above else ''}{v} calls" for k, v in knee.items())
                + f"; ratio {ratio[1]}{ratio[0]:.2f}"
                + (" (>=: held even the highest step; its knee lies above it)" if above else ""),
                flush=True,
            )
        if args.rounds > 1:
            summary(steps_of, knees, open_ended, ratios)
    finally:
        hotline.stop()
        constant.stop()
        static.terminate()
        if pair is not None:
            for server in pair[0]:
                server.stop()
            pair[1]()


if __name__ == "__main__":
    main()
