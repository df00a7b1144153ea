"""Measure the hotline against the ceiling of its own stack, the floor of one write, and a growing history.

    python benchmarks/run.py            # everything, a few minutes on 2 cores
    python benchmarks/run.py --quick    # smaller numbers, for a first look

Over HTTP every app runs under the same gunicorn with the production settings (`gunicorn.conf.py`)
and takes the same load from client processes on this machine that follow each answer's action URL
as Twilio does. The apps are measured in alternating rounds of one run each, and each figure is
the median over the rounds of the per-round ratio to the ceiling (the constant-TwiML app), so that
what the shared machine does meanwhile hits both sides of a ratio alike. Other rows: one webhook
in-process against the same constant app; `ivr simulate` cold start; a crawl of the whole tree;
p50 webhook latency with 1 thousand and 1 million stored rows in every history table; two hotline
instances sharing PostgreSQL against one on SQLite.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
from constant_app import app as constant_app  # noqa: E402

from ivr import create_app  # noqa: E402
from ivr.engine.seal import new_key  # noqa: E402
from ivr.tools.crawler import Crawler  # noqa: E402
from ivr.tools.scenarios import default_scenarios  # noqa: E402

CLOCK = {"ivr.clock": load.AT}
STATE_KEYS = new_key()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gunicorn:
    """A gunicorn we start and stop ourselves, with the production settings."""

    def __init__(self, target: str, env: dict[str, str], cwd: Path, log: Path | None = None) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "-b",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            target,
        ]
        output = open(log, "ab") if log is not None else None  # noqa: SIM115 (the server's until it stops)
        self.process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stderr=output, stdout=output)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/voice/status", data=b"", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{target} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def cpu_seconds(self) -> float | None:
        """CPU time (user and system) its workers have used so far, or None where /proc is not."""
        return cpu_seconds(lambda parent, _name: parent == self.process.pid)


def cpu_seconds(chosen: Callable[[int, str], bool]) -> float | None:
    """CPU time (user and system) used so far by the processes `chosen(parent pid, name)` picks,
    from /proc; None where there is no /proc or it picks none."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, found = 0, False
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                name, _, rest = stat.read().partition(" (")[2].rpartition(")")
        except OSError:
            continue  # gone meanwhile
        fields = rest.split()
        if chosen(int(fields[1]), name):
            total += int(fields[11]) + int(fields[12])
            found = True
    return total / ticks if found else None


def database_cpu_seconds() -> float | None:
    """CPU time used so far by the PostgreSQL server's processes on this machine (None if none here)."""
    return cpu_seconds(lambda _parent, name: name == "postgres")


def hotline_env(database_url: str) -> dict[str, str]:
    return {
        "IVR_DATABASE_URL": database_url,
        "IVR_ALLOW_SIMULATED_CLOCK": "1",
        "IVR_LOG_LEVEL": "WARNING",
        "IVR_STATE_KEYS": STATE_KEYS,
        "TWILIO_AUTH_TOKEN": "",
    }


def in_process(app: Any, calls: list[list[load.Request]], repeat: int, tag: str) -> float:
    """Median microseconds per webhook through Flask's test client, following action URLs; CallSids
    fresh for each `tag` and repeat."""
    client = app.test_client()

    def send(path: str, form: list[tuple[str, str]]) -> bytes:
        return bytes(client.post(path, data=dict(form), environ_base=CLOCK).data)

    times = []
    for round_ in range(repeat):
        started = time.perf_counter()
        sids = (f"CA{tag}{round_:02d}{index:024x}" for index in range(len(calls)))
        count = sum(load.play(send, call, sid) for call, sid in zip(calls, sids, strict=True))
        times.append((time.perf_counter() - started) / count * 1e6)
    return load.median(times)


def cold_start() -> float:
    """Median seconds of `ivr simulate --json 3`, a new process each time."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ivr", "simulate", "--json", "--at", load.AT, "3"], check=True, capture_output=True
        )
        runs.append(time.perf_counter() - started)
    return load.median(runs)


def quiet_app(url: str) -> Any:
    return create_app({"DATABASE_URL": url, "LOG_LEVEL": "ERROR", "TWILIO_AUTH_TOKEN": None, "STATE_KEYS": STATE_KEYS})


def crawl_seconds(url: str) -> float:
    app = quiet_app(url)
    flow = app.extensions["ivr"].handler.flow
    started = time.perf_counter()
    report = Crawler(app=app, flow=flow, scenarios=default_scenarios(flow)).run()
    assert report.ok
    return time.perf_counter() - started


def fill_history(url: str, rows: int) -> None:
    """Store `rows` of history in every table that grows: events, turns, journal, requests, allowances."""
    from ivr.store.tables import allowance_audit, allowance_uses, events, journal, requests, turns

    app = quiet_app(url)
    engine = app.extensions["ivr"].handler.store.engine
    old = datetime(2020, 12, 15, 12, 0)
    period = datetime(2020, 11, 30, 21, 0)
    batch = 50_000
    with engine.begin() as conn:
        for start in range(0, rows, batch):
            ids = range(start, min(rows, start + batch))
            sids = [f"CAold{i:029d}" for i in ids]
            conn.execute(
                journal.insert(),
                [{"call_sid": s, "started_at": old, "anonymous": False, "path": "[]", "facts": "[]"} for s in sids],
            )
            conn.execute(
                requests.insert(),
                [
                    {"reference": f"9{i:09d}", "kind": "desk", "call_sid": s, "policy": f"{i:010d}", "data": "{}"}
                    | {"created_at": old}
                    for i, s in zip(ids, sids, strict=True)
                ],
            )
            conn.execute(
                allowance_uses.insert(),
                [
                    {"allowance": "second_opinion", "key": f"{i:010d}", "period_start": period, "seq": 1}
                    | {"reference": f"9{i:09d}", "call_sid": s, "created_at": old}
                    for i, s in zip(ids, sids, strict=True)
                ],
            )
            conn.execute(
                allowance_audit.insert(),
                [
                    {"at": old, "action": "grant", "allowance": "second_opinion", "key": f"{i:010d}"}
                    | {"period_start": period, "call_sid": s, "reason": "granted"}
                    for i, s in zip(ids, sids, strict=True)
                ],
            )
            conn.execute(
                events.insert(),
                [{"call_sid": s, "step": 3, "at": old, "input": "digits", "path": '["main"]'} for s in sids],
            )
            conn.execute(
                turns.insert(), [{"call_sid": s, "step": 3, "twiml": "<Response/>", "created_at": old} for s in sids]
            )
    engine.dispose()


def history_p50(app: Any, calls: list[list[load.Request]], tag: str) -> float:
    client = app.test_client()
    latencies = []

    def send(path: str, form: list[tuple[str, str]]) -> bytes:
        started = time.perf_counter()
        answer = bytes(client.post(path, data=dict(form), environ_base=CLOCK).data)
        latencies.append((time.perf_counter() - started) * 1000)
        return answer

    for index, call in enumerate(calls):
        load.play(send, call, f"CA{tag}{index:029d}"[:34])
    return load.median(latencies)


def postgres_database(base: str) -> tuple[str, Callable[[], None]] | None:
    """A fresh schema on the PostgreSQL server at `base` (dropped by the returned function), or None."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(base)
        name = "ivr_bench_" + secrets.token_hex(4)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    except Exception as exc:  # no server, no driver: the row says so
        print(f"(PostgreSQL at {base} not used: {str(exc).splitlines()[0]})", file=sys.stderr)
        return None
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(False)

    def drop() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        engine.dispose()

    return url, drop


def replaying(
    server: Gunicorn | list[Gunicorn],
    calls: list[list[load.Request]],
    connections: int,
    tag: str,
    database: bool = False,
) -> Callable[[], load.Result]:
    """A contender for `rounds_of`: `calls` replayed against `server` (or several instances) with
    fresh CallSids in every round (a round that repeated another's calls would find their answers
    stored and their rows written), and the servers' CPU time per request (`database`: the local
    PostgreSQL server's too)."""
    servers = server if isinstance(server, list) else [server]
    rounds = itertools.count()

    def cpu() -> float | None:
        used = [s.cpu_seconds() for s in servers]
        return None if None in used else sum(u for u in used if u is not None)

    def database_cpu() -> float | None:
        return database_cpu_seconds() if database else None

    def one() -> load.Result:
        before = cpu(), database_cpu()
        result = load.replay([s.url for s in servers], calls, connections, 4, f"{tag}{next(rounds):03d}")
        after = cpu(), database_cpu()
        if not result.requests:
            return result
        server_us, database_us = (
            None if start is None or end is None else (end - start) / result.requests * 1e6
            for start, end in zip(before, after, strict=True)
        )
        return dataclasses.replace(result, server_cpu_us=server_us, database_cpu_us=database_us)

    return one


@dataclasses.dataclass
class Rounds:
    """Per-round ratios to the baseline (throughput, p99, server CPU per request) and the last round."""

    ratios: dict[str, list[float]]
    p99: dict[str, list[float]]
    cpu: dict[str, list[float]]
    results: dict[str, list[load.Result]]  # every round's, of every contender

    @property
    def last(self) -> dict[str, load.Result]:
        """The last round's result of every contender."""
        return {name: found[-1] for name, found in self.results.items()}


def rounds_of(rounds: int, contenders: dict[str, Callable[[], load.Result]], baseline: str) -> Rounds:
    """Run each contender once per round, the order alternating; per-round ratios to the baseline."""
    names = list(contenders)
    others = [name for name in names if name != baseline]
    found = Rounds({n: [] for n in others}, {n: [] for n in others}, {n: [] for n in others}, {n: [] for n in names})
    for number in range(rounds):
        order = names if number % 2 == 0 else names[::-1]
        results = {name: contenders[name]() for name in order}
        for name, result in results.items():
            found.results[name].append(result)
        base = results[baseline]
        for name in others:
            found.ratios[name].append(results[name].throughput / base.throughput)
            found.p99[name].append(results[name].percentile(99) / base.percentile(99))
            cpu, base_cpu = results[name].server_cpu_us, base.server_cpu_us
            if cpu is not None and base_cpu:
                found.cpu[name].append(cpu / base_cpu)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmarks of the ivr hotline (see benchmarks/README.md).")
    parser.add_argument("--quick", action="store_true", help="smaller numbers for a first look")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--history", type=int, default=None, help="rows of stored history (default 1,000,000)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server for the two-instance rows ('' to skip)",
    )
    args = parser.parse_args()
    calls = 150 if args.quick else 600
    entries = 2000 if args.quick else 6000
    big = args.history or (100_000 if args.quick else 1_000_000)
    conns = args.connections
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as scratch:
        root = Path(scratch)
        mix = load.record_mix(calls, f"sqlite:///{root / 'record.sqlite3'}")
        webhooks = sum(len(c) for c in mix)
        floor_env = {"IVR_DATABASE_URL": f"sqlite:///{root / 'floor.sqlite3'}"}
        raw_floor_env = {"IVR_DATABASE_URL": f"sqlite:///{root / 'raw-floor.sqlite3'}"}
        servers = {
            "constant": Gunicorn("constant_app:app", {}, HERE),
            "floor": Gunicorn("floor_app:app", floor_env, HERE),
            "raw floor": Gunicorn("floor_app:raw", raw_floor_env, HERE),
            "hotline": Gunicorn("ivr:create_app()", hotline_env(f"sqlite:///{root / 'served.sqlite3'}"), ROOT),
        }
        try:
            for server in servers.values():  # warm up
                load.replay(server.url, load.entry_only(300), conns, 4, "w")

            entry = rounds_of(
                args.rounds,
                {n: replaying(s, load.entry_only(entries), conns, n[0]) for n, s in servers.items()},
                "constant",
            )
            mixed = rounds_of(args.rounds, {n: replaying(s, mix, conns, n[:2]) for n, s in servers.items()}, "constant")
        finally:
            for server in servers.values():
                server.stop()
        med = load.median
        for label, found, size in (
            ("entry webhook", entry, f"{entries} calls"),
            ("call mix", mixed, f"{calls} calls, {webhooks} webhooks"),
        ):
            ratios, p99, last = found.ratios, found.p99, found.last
            rows.append(
                (f"constant TwiML (ceiling), {label} ({size}, {conns} connections)", load.summary(last["constant"]))
            )
            rows.append((f"floor: constant + one journal append, {label}", load.summary(last["floor"])))
            rows.append((f"raw floor: the same without Flask, {label}", load.summary(last["raw floor"])))
            rows.append((f"hotline, {label}", load.summary(last["hotline"])))
            rows.append(
                (
                    f"  median of {args.rounds} per-round ratios to the ceiling",
                    f"hotline {med(ratios['hotline']):.2f} (rounds "
                    + ", ".join(f"{r:.2f}" for r in ratios["hotline"])
                    + f"), floor {med(ratios['floor']):.2f}, raw floor {med(ratios['raw floor']):.2f}; "
                    + f"p99 hotline/ceiling {med(p99['hotline']):.2f}",
                )
            )
            if found.cpu["hotline"]:
                rows.append(
                    (
                        "  median of per-round ratios of server CPU per request to the ceiling's",
                        f"hotline {med(found.cpu['hotline']):.2f}, floor {med(found.cpu['floor']):.2f}, "
                        f"raw floor {med(found.cpu['raw floor']):.2f}",
                    )
                )

        pg = postgres_database(args.postgres) if args.postgres else None
        if pg is not None:
            pg_url, drop = pg
            quiet_app(pg_url)  # the schema, before two instances start on it
            # Two instances on this machine's cores share them: each runs a worker per core it has
            # (half of them), as the production settings do, not a worker per core of the machine.
            half = {"WEB_CONCURRENCY": str(max(1, (os.cpu_count() or 2) // 2))}
            two = [Gunicorn("ivr:create_app()", hotline_env(pg_url) | half, ROOT) for _ in range(2)]
            one = Gunicorn("ivr:create_app()", hotline_env(f"sqlite:///{root / 'one.sqlite3'}"), ROOT)
            try:
                load.replay([s.url for s in two], load.entry_only(300), conns, 4, "w")
                load.replay(one.url, load.entry_only(300), conns, 4, "w")
                shared = rounds_of(
                    args.rounds,
                    {
                        "sqlite": replaying(one, mix, conns, "s"),
                        "postgres": replaying(two, mix, conns, "p", database=True),
                    },
                    "sqlite",
                )
            finally:
                for server in (*two, one):
                    server.stop()
                drop()
            rows.append(("hotline, call mix, one instance on SQLite", load.summary(shared.last["sqlite"])))
            rows.append(("hotline, call mix, two instances sharing PostgreSQL", load.summary(shared.last["postgres"])))
            cpu = shared.cpu["postgres"]
            rows.append(
                (
                    "  median ratio PostgreSQL (two) / SQLite (one)",
                    f"{med(shared.ratios['postgres']):.2f}"
                    + (f"; app servers' CPU per request {med(cpu):.2f} (not the database's)" if cpu else ""),
                )
            )
            database_cpu = [r.database_cpu_us for r in shared.results["postgres"] if r.database_cpu_us is not None]
            if database_cpu:
                rows.append(
                    (
                        "  PostgreSQL server's own CPU per request, on the same cores",
                        f"median {med(database_cpu):.0f} µs over {len(database_cpu)} rounds",
                    )
                )

        ours_app = quiet_app(f"sqlite:///{root / 'inproc.sqlite3'}")
        sample = mix[:100]
        in_process(ours_app, sample[:10], 1, "w")  # warm up: the first webhook compiles and caches
        times: dict[str, list[float]] = {"hotline": [], "constant": []}
        for number in range(max(args.rounds, 5)):  # alternating rounds, as over HTTP; fresh calls in each
            order = [("hotline", ours_app), ("constant", constant_app)]
            for name, app in order if number % 2 == 0 else order[::-1]:
                times[name].append(in_process(app, sample, 1, f"{name[0]}{number:02d}"))
        per_round = [ours / constant for ours, constant in zip(times["hotline"], times["constant"], strict=True)]
        rows.append(
            (
                "in-process webhook (Flask test client)",
                f"hotline {med(times['hotline']):.0f} µs, constant {med(times['constant']):.0f} µs, "
                f"median of {len(per_round)} per-round ratios {med(per_round):.2f}",
            )
        )
        rows.append(("`ivr simulate --json 3` cold start", f"{cold_start():.2f} s"))
        # Each crawl with a new app on a new database, as `ivr crawl` runs; the median of five, since
        # one crawl on a shared machine can take half as long again as the next.
        crawls = sorted(crawl_seconds(f"sqlite:///{root / f'crawl{n}.sqlite3'}") for n in range(5))
        rows.append(
            (
                "crawl of the whole tree (every default scenario)",
                f"{med(crawls):.2f} s (median of {len(crawls)}; {crawls[0]:.2f}–{crawls[-1]:.2f} s)",
            )
        )

        small, large = f"sqlite:///{root / 'small.sqlite3'}", f"sqlite:///{root / 'large.sqlite3'}"
        fill_history(small, 1000)
        fill_history(large, big)
        histories = {"small": quiet_app(small), "large": quiet_app(large)}
        p50s: dict[str, list[float]] = {"small": [], "large": []}
        for number in range(max(args.rounds, 5)):  # alternating rounds, fresh calls in each
            names = ["small", "large"] if number % 2 == 0 else ["large", "small"]
            for name in names:
                p50s[name].append(history_p50(histories[name], mix[:150], f"{name[0]}{number:02d}"))
        growth = [large / small for small, large in zip(p50s["small"], p50s["large"], strict=True)]
        rows.append(("p50 webhook, 1,000 stored rows per table", f"{med(p50s['small']):.3f} ms"))
        rows.append((f"p50 webhook, {big:,} stored rows per table", f"{med(p50s['large']):.3f} ms"))
        rows.append((f"  median of {len(growth)} per-round ratios large / small", f"{med(growth):.2f}"))
    print(
        f"ivr benchmarks, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after, Python {platform.python_version()}"
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
