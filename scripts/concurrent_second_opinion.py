"""Many callers ask for the same policy's second opinion at the same moment, each in its own process.

    python scripts/concurrent_second_opinion.py [--callers 16] [--database-url URL]

Each caller is a separate `python -m ivr simulate` process sharing one database (a fresh SQLite file
unless --database-url names another). Exactly one must be granted; every other must be refused
politely; none may hear an application error. Exit status 0 when that holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

GRANTED = "Заявка на второе медицинское мнение зарегистрирована"
REFUSED = "второе медицинское мнение в текущем году действия договора уже получено"
CALL = ["5", "2", "7700123456#", "1", "1"]  # second opinion, policy, confirm, "I have a first opinion"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'shared.sqlite3'}"
        command = [
            sys.executable,
            "-m",
            "ivr",
            "simulate",
            "--json",
            "--database-url",
            url,
            "--at",
            "2021-03-01T10:00:00+03:00",
            *CALL,
        ]
        # Create the schema once, so the racing processes race on the allowance, not on CREATE TABLE.
        subprocess.run([*command[: -len(CALL)], "hangup"], check=True, capture_output=True)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            outcomes = _race(command, args.callers, processes)
        finally:  # interrupted or failed: no caller is left running
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    print(
        f"{args.callers} callers, one policy: {outcomes['granted']} granted, {outcomes['refused']} refused, "
        f"{outcomes['other']} other"
    )
    return 0 if outcomes == {"granted": 1, "refused": args.callers - 1, "other": 0} else 1


def _race(command: list[str], callers: int, processes: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    for _ in range(callers):
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outcomes = {"granted": 0, "refused": 0, "other": 0}
    for process in processes:
        out, err = process.communicate(timeout=120)
        call = json.loads(out) if process.returncode == 0 else {"events": [], "end": err.decode()[-300:]}
        heard = " ".join(e.get("text", "") for e in call["events"] if e["type"] == "say")
        kind = "granted" if GRANTED in heard else "refused" if REFUSED in heard else "other"
        outcomes[kind] += 1
        if kind == "other":
            print(f"unexpected call: end={call['end']!r} heard={heard[-300:]!r}", file=sys.stderr)
    return outcomes


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: the callers are stopped; one line, no traceback
        print("interrupted", file=sys.stderr)
        sys.exit(130)
