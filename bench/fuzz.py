"""The fuzz suite (tests/test_fuzz.py) at length: crashes, cases, the slowest case, peak memory.

Usage: .venv/bin/python bench/fuzz.py [--examples 1300]

Runs every Hypothesis property of tests/test_fuzz.py with --examples cases each (derandomized:
the same cases every run; 8 properties x 1,500, a few fewer where a property runs out of
distinct cases) in this process, then prints how many properties found a crash (with its
smallest failing case), how many cases ran, the slowest case and the process's peak resident
memory (ru_maxrss, so no single case used more). Targets (issue 12): at least 10,000 cases,
0 crashes, no case over 10 s, peak under 1 GB. Exit 1 when one is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"


class Crashes:
    """pytest plugin: the properties that failed, with the start of their report."""

    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            text = str(report.longrepr).strip().splitlines()
            self.failed.append((report.nodeid, " | ".join(text[-3:])[:400]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_500, help="cases per property")
    args = parser.parse_args()
    os.environ["DEALWATCH_FUZZ_EXAMPLES"] = str(args.examples)
    import pytest  # after the environment is set: the module reads it when imported

    crashes = Crashes()
    started = time.perf_counter()
    pytest.main(["-q", "-p", "no:cacheprovider", "-W", "ignore", str(TESTS / "test_fuzz.py")],
                plugins=[crashes])
    elapsed = time.perf_counter() - started
    module = sys.modules.get("test_fuzz") or sys.modules["tests.test_fuzz"]
    seconds: list[float] = module.CASE_SECONDS
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fuzz: {len(seconds):,} cases ({args.examples:,} per property) in {elapsed:.0f} s; "
          f"crashes: {len(crashes.failed)}; slowest case {max(seconds, default=0):.2f} s; "
          f"peak memory {peak_mb:,.0f} MB")
    for nodeid, summary in crashes.failed:
        print(f"  crash: {nodeid}: {summary}")
    ok = len(seconds) >= 10_000 and not crashes.failed and max(seconds, default=0) <= 10 and peak_mb <= 1024
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
