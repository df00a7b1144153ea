"""A week of simulated calls into the hotline, to fill a journal for `ivr report`.

    python scripts/simulate_week.py --database-url sqlite:///week.sqlite3 [--calls 300] [--seed 7]
    IVR_DATABASE_URL=sqlite:///week.sqlite3 ivr report --format html > report.html

Callers follow a realistic mix of paths (the desk, the representative at all hours, the navigator,
second opinions, the psychologist, information), some give up half-way, some transfers fail.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ivr import create_app
from ivr.simulator import Simulator, SimulatorError
from ivr.simulator.console import parse_token, perform

MSK = ZoneInfo("Europe/Moscow")
OUTCOMES = ["completed"] * 7 + ["busy", "no-answer", "failed"]

# (weight, inputs); a None input means the caller hangs up there.
PATHS: list[tuple[int, list[str | None]]] = [
    (20, ["1", "POLICY#", "1", "say:Иванов Иван Иванович", "1", "say:болит горло и температура", "1", "DIAL"]),
    (5, ["1", "POLICY#", "1", None]),
    (18, ["2", "DIAL"]),
    (6, ["2", "2", "1"]),
    (12, ["3", "DIAL"]),
    (5, ["4", "DIAL"]),
    (6, ["5", "1", "DIAL"]),
    (6, ["5", "2", "POLICY#", "1", "1", "DIAL"]),
    (3, ["5", "2", "POLICY#", "1", "2", None]),
    (8, ["6", "1", "9", None]),
    (4, ["6", "3", None]),
    (4, ["0", "DIAL"]),
    (4, ["-", "-", "-", "DIAL"]),
    (3, [None]),
]


def moment(rng: random.Random, monday: datetime) -> datetime:
    day = rng.choices(range(7), weights=[18, 16, 15, 15, 14, 12, 10])[0]
    hour = rng.choices(
        range(24), weights=[1, 1, 1, 1, 1, 2, 3, 6, 9, 12, 12, 11, 10, 10, 10, 10, 9, 8, 7, 6, 5, 4, 2, 1]
    )[0]
    return monday + timedelta(days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # The week's calls are simulated, and this database is where they are meant to be: a demo.
    url = args.database_url
    app = create_app(
        {"DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, "LOG_LEVEL": "ERROR", "TWILIO_AUTH_TOKEN": None}
    )
    sim = Simulator(app, auth_token="", status_callback="/voice/status")
    monday = datetime(2021, 3, 1, tzinfo=MSK)
    weights = [w for w, _ in PATHS]
    for _ in range(args.calls):
        _, inputs = rng.choices(PATHS, weights=weights)[0]
        caller = f"+7916{rng.randrange(10**7):07d}"
        call = sim.call(from_=caller, at=moment(rng, monday).isoformat())
        for token in inputs:
            if call.ended or token is None:
                break
            if token == "DIAL":
                text = f"dial:{rng.choice(OUTCOMES)}"
            elif token == "-" or token.startswith("say:"):
                text = token
            else:  # a policy number is drawn for every key press, as the seed's week was made
                text = token.replace("POLICY", str(rng.randrange(10**6, 10**6 + 60)))
            try:
                perform(call, parse_token(text))  # the same actions as `ivr simulate` tokens
            except SimulatorError:
                break  # the call went another way (closed hours, a used allowance): this caller gives up
        if not call.ended:
            call.hangup()
    print(f"{args.calls} calls placed in the week of {monday:%d.%m.%Y}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: what was placed stays in the database; one line, no traceback
        print("interrupted", file=sys.stderr)
        sys.exit(130)
