"""What the real test servers cost the suite: start and stop of PostgreSQL and of Redis.

Usage: .venv/bin/python bench/server_startup.py [--rounds 5]

Starts each server the way the `postgres_url` and `redis_url` fixtures do (tests/servers.py:
initdb, start, the `dealwatch` role and database; redis-server without persistence), waits until
it answers, stops it and removes its folder. Prints the median and the slowest round of each,
in seconds: the fixtures are session-scoped, so the suite pays this once per run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import postgres_missing, postgres_server, redis_missing, redis_server  # noqa: E402


def time_rounds(server: Callable[[], AbstractContextManager[str]],
                rounds: int) -> tuple[list[float], list[float]]:
    """Seconds from asking to answering, and from leaving to gone, for each round."""
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        with server():
            up = time.perf_counter()
        starts.append(up - began)
        stops.append(time.perf_counter() - up)
    return starts, stops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name, server, missing in (("PostgreSQL", postgres_server, postgres_missing()),
                                  ("Redis", redis_server, redis_missing())):
        if missing:
            print(f"{name}: not measured: {missing}")
            continue
        starts, stops = time_rounds(server, args.rounds)
        print(f"{name}: start {statistics.median(starts):.2f} s (slowest {max(starts):.2f}), "
              f"stop {statistics.median(stops):.2f} s (slowest {max(stops):.2f}), {args.rounds} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
