"""Which gunicorn settings hold calls best: the hotline under each, at Twilio's pace, in turn.

    python benchmarks/settings.py --settings 2x8,4x2 --calls 1900 --rounds 5

Each setting is WORKERSxTHREADS (`2x8` is gunicorn.conf.py's default on two cores). Every setting
gets a hotline of its own (gunicorn with the production settings, SQLite), all started at once;
then, round after round, each is measured with the same paced callers as `paced.py` (one step of
`--calls` concurrent calls), the order reversed every other round so that none always goes first.
The medians of the per-round figures close the report. Runs on a shared machine vary a lot: read
the medians, and the spread of the per-round p99s printed beside them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import paced  # noqa: E402
from run import Gunicorn, hotline_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="2x8,4x2", help="WORKERSxTHREADS, comma-separated.")
    parser.add_argument("--calls", type=int, default=1800, help="Concurrent calls of the step.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=45.0, help="Arrivals per step.")
    args = parser.parse_args()
    settings = []
    for item in args.settings.split(","):
        workers, _, threads = item.partition("x")
        if not (workers.isdigit() and threads.isdigit()):
            parser.error(f"{item!r} is not WORKERSxTHREADS, like 2x8")
        settings.append((int(workers), int(threads)))

    folder = Path(tempfile.mkdtemp(prefix="ivr-settings-"))
    calls = load.record_mix(400, f"sqlite:///{folder / 'recorded.sqlite3'}")
    servers: dict[str, Gunicorn] = {}
    try:
        for workers, threads in settings:
            name = f"{workers} workers x {threads} threads"
            env = {
                **hotline_env(f"sqlite:///{folder / f'{workers}x{threads}.sqlite3'}"),
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_CMD_ARGS": f"--threads {threads}",
            }
            servers[name] = Gunicorn("ivr:create_app()", env, folder, folder / "servers.log")
        steps: dict[str, list[paced.Step]] = {name: [] for name in servers}
        for round_number in range(args.rounds):
            order = list(servers.items())
            if round_number % 2:
                order.reverse()
            for name, server in order:
                tag = f"{round_number:x}{list(servers).index(name):x}"
                step = paced.measure(
                    name, [server.url], server.cpu_seconds, calls, args.calls, args.seconds, False, tag
                )
                steps[name].append(step)
                print(f"round {round_number + 1}  {step.line()}", flush=True)
        print(f"medians of {args.rounds} rounds")
        for name, taken in steps.items():
            spread = ", ".join(f"{s.percentile(99):.0f}" for s in taken)
            print(f"{paced.median_line(name, taken)}  (p99 of the rounds: {spread} ms)")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
