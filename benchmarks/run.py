"""Measure the hotline against the ceiling of its own stack, and against a growing history.

    python benchmarks/run.py            # everything, a few minutes on 2 cores
    python benchmarks/run.py --quick    # smaller numbers, for a first look

Prints one table. Over HTTP both apps run under the same gunicorn (gthread, 2 workers x 8 threads)
and take the same load from client processes on this machine; the hotline's throughput is given as
a ratio of the constant-TwiML app's (the ceiling). Other rows: one webhook in-process (Flask test
client) against the same constant app; `ivr simulate` cold start; a crawl of the whole tree; p50
webhook latency with 1 thousand and 1 million stored rows in every history table.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
from constant_app import app as constant_app  # noqa: E402

from ivr import create_app  # noqa: E402
from ivr.crawler import Crawler, default_scenarios  # noqa: E402

CLOCK = {"ivr.clock": load.AT}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gunicorn:
    """A gunicorn we start and stop ourselves."""

    def __init__(self, target: str, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "gthread",
            "-w",
            "2",
            "--threads",
            "8",
            "-b",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            target,
        ]
        self.process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/voice/status", data=b"", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{target} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def in_process(app: object, requests: list[list[load.Request]], repeat: int) -> float:
    """Median microseconds per webhook through Flask's test client."""
    client = app.test_client()  # type: ignore[attr-defined]
    times = []
    for round_ in range(repeat):
        started = time.perf_counter()
        count = 0
        for index, call in enumerate(requests):
            sid = f"CA{round_:04d}{index:028x}"
            for request in call:
                client.post(
                    request.path, data={k: sid if v == "CALLSID" else v for k, v in request.form}, environ_base=CLOCK
                )
                count += 1
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


def crawl_seconds(url: str) -> float:
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "ERROR", "TWILIO_AUTH_TOKEN": None})
    flow = app.extensions["ivr"].handler.flow
    started = time.perf_counter()
    report = Crawler(app=app, flow=flow, scenarios=default_scenarios(flow)).run()
    assert report.ok
    return time.perf_counter() - started


def fill_history(url: str, rows: int) -> None:
    """Store `rows` finished calls in every history table: journal, requests, allowances, audit, state."""
    import sqlalchemy as sa

    from ivr.store import allowance_audit, allowance_uses, calls, journal, requests, turns

    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "ERROR", "TWILIO_AUTH_TOKEN": None})
    engine = app.extensions["ivr"].handler.store.engine
    old = datetime(2020, 12, 15, 12, 0)
    batch = 50_000
    with engine.begin() as conn:
        for start in range(0, rows, batch):
            ids = range(start, min(rows, start + batch))
            conn.execute(
                journal.insert(),
                [
                    {
                        "call_sid": f"CAold{i:029d}",
                        "started_at": old,
                        "anonymous": False,
                        "branch": "main",
                        "path": "[]",
                        "facts": "[]",
                    }
                    for i in ids
                ],
            )
            conn.execute(
                requests.insert(),
                [
                    {
                        "reference": f"9{i:09d}",
                        "kind": "desk",
                        "call_sid": f"CAold{i:029d}",
                        "policy": f"{i:010d}",
                        "data": "{}",
                        "created_at": old,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                allowance_uses.insert(),
                [
                    {
                        "allowance": "second_opinion",
                        "key": f"{i:010d}",
                        "period_start": datetime(2020, 11, 30, 21, 0),
                        "seq": 1,
                        "reference": f"9{i:09d}",
                        "call_sid": f"CAold{i:029d}",
                        "created_at": old,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                allowance_audit.insert(),
                [
                    {
                        "at": old,
                        "action": "grant",
                        "allowance": "second_opinion",
                        "key": f"{i:010d}",
                        "period_start": datetime(2020, 11, 30, 21, 0),
                        "call_sid": f"CAold{i:029d}",
                        "reason": "granted",
                    }
                    for i in ids
                ],
            )
            conn.execute(
                calls.insert(),
                [
                    {
                        "call_sid": f"CAold{i:029d}",
                        "step": 3,
                        "state": "{}",
                        "updated_at": datetime.now(UTC).replace(tzinfo=None),
                    }
                    for i in ids
                ],
            )
            conn.execute(
                turns.insert(), [{"call_sid": f"CAold{i:029d}", "step": 3, "twiml": "<Response/>"} for i in ids]
            )
    del sa
    engine.dispose()


def history_p50(url: str, requests: list[list[load.Request]]) -> float:
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "ERROR", "TWILIO_AUTH_TOKEN": None})
    client = app.test_client()
    latencies = []
    for index, call in enumerate(requests):
        sid = f"CAnew{index:029d}"
        for request in call:
            started = time.perf_counter()
            client.post(
                request.path, data={k: sid if v == "CALLSID" else v for k, v in request.form}, environ_base=CLOCK
            )
            latencies.append((time.perf_counter() - started) * 1000)
    return load.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmarks of the ivr hotline (see benchmarks/README.md).")
    parser.add_argument("--quick", action="store_true", help="smaller numbers for a first look")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--history", type=int, default=None, help="rows of stored history (default 1,000,000)")
    args = parser.parse_args()
    calls = 150 if args.quick else 600
    entries = 2000 if args.quick else 8000
    big = args.history or (100_000 if args.quick else 1_000_000)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as scratch:
        root = Path(scratch)
        mix = load.record_mix(calls, f"sqlite:///{root / 'record.sqlite3'}")
        webhooks = sum(len(c) for c in mix)
        env = {
            "IVR_DATABASE_URL": f"sqlite:///{root / 'served.sqlite3'}",
            "IVR_ALLOW_SIMULATED_CLOCK": "1",
            "IVR_LOG_LEVEL": "WARNING",
            "TWILIO_AUTH_TOKEN": "",
        }
        hotline = Gunicorn("ivr:create_app()", env, HERE.parent)
        constant = Gunicorn("constant_app:app", {}, HERE)
        try:
            load.replay(hotline.url, load.entry_only(300), args.connections, 4, "w")  # warm both up
            load.replay(constant.url, load.entry_only(300), args.connections, 4, "w")
            ceiling_entry = load.replay(constant.url, load.entry_only(entries), args.connections, 4, "c")
            ours_entry = load.replay(hotline.url, load.entry_only(entries), args.connections, 4, "e")
            ceiling_mix = load.replay(constant.url, mix, args.connections, 4, "d")
            ours_mix = load.replay(hotline.url, mix, args.connections, 4, "m")
        finally:
            hotline.stop()
            constant.stop()
        rows.append((f"constant TwiML, entry webhook ({args.connections} connections)", load.summary(ceiling_entry)))
        rows.append(("hotline, entry webhook", load.summary(ours_entry)))
        rows.append(("  ratio to the ceiling", f"{ours_entry.throughput / ceiling_entry.throughput:.2f}"))
        rows.append((f"constant TwiML, call mix ({calls} calls, {webhooks} webhooks)", load.summary(ceiling_mix)))
        rows.append(("hotline, realistic call mix", load.summary(ours_mix)))
        rows.append(("  ratio to the ceiling", f"{ours_mix.throughput / ceiling_mix.throughput:.2f}"))

        ours_app = create_app(
            {"DATABASE_URL": f"sqlite:///{root / 'inproc.sqlite3'}", "LOG_LEVEL": "WARNING", "TWILIO_AUTH_TOKEN": None}
        )
        sample = mix[:100]
        ours_us = in_process(ours_app, sample, 3)
        constant_us = in_process(constant_app, sample, 3)
        rows.append(
            (
                "in-process webhook (Flask test client)",
                f"hotline {ours_us:.0f} µs, constant {constant_us:.0f} µs, ratio {constant_us / ours_us:.2f}",
            )
        )
        rows.append(("`ivr simulate --json 3` cold start", f"{cold_start():.2f} s"))
        crawl_db = f"sqlite:///{root / 'crawl.sqlite3'}"
        rows.append(("crawl of the whole tree (4 scenarios)", f"{crawl_seconds(crawl_db):.1f} s"))

        small, large = f"sqlite:///{root / 'small.sqlite3'}", f"sqlite:///{root / 'large.sqlite3'}"
        fill_history(small, 1000)
        fill_history(large, big)
        p50_small = history_p50(small, mix[:150])
        p50_large = history_p50(large, mix[:150])
        rows.append(("p50 webhook, 1,000 stored rows per table", f"{p50_small:.3f} ms"))
        rows.append((f"p50 webhook, {big:,} stored rows per table", f"{p50_large:.3f} ms"))
        rows.append(("  ratio large / small", f"{p50_large / p50_small:.2f}"))
    print(
        f"ivr benchmarks, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
