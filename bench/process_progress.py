"""What processing's per-source progress costs: bench/process_throughput.py with it on.

Usage: .venv/bin/python bench/process_progress.py [--rounds 3] 2>/dev/null   # cron: plain lines
       script -qec ".venv/bin/python bench/process_progress.py" /dev/null      # a terminal: rich

Each processing run of bench/process_throughput.py goes through `dealwatch process`'s display
(pipeline.cli.common.processing_display: rich's rows on a terminal, plain lines elsewhere). Prints
that benchmark's figures, then the time spent in the progress code of the processing loop (the
tally: its grouped count query and a record after each batch, and the display's handling of each
record), and the CPU time rich's drawing thread took (it shares the GIL with processing).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.live import Live

import pipeline.jobs.process as process
from pipeline.cli.common import processing_display

sys.path.insert(0, str(Path(__file__).resolve().parent))
import process_throughput as bench

in_progress = [0.0, 0]  # seconds, calls
drawing = [0.0, 0]  # CPU seconds of rich's refresh thread, refreshes
runs: list[tuple[float, float]] = []  # (seconds in progress code, seconds of the run)


def _timed(method: Callable[..., Any], spent: list[Any], clock: Callable[[], float]
           ) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return method(*args, **kwargs)
        finally:
            spent[0] += clock() - started
            spent[1] += 1

    return timed


for name in ("__init__", "batch_done", "run_done"):
    setattr(process.SourceProgressTally, name,
            _timed(getattr(process.SourceProgressTally, name), in_progress, time.perf_counter))
# thread CPU time: waiting for the GIL or for the terminal is not the drawing's cost
Live.refresh = _timed(Live.refresh, drawing, time.thread_time)  # type: ignore[method-assign]
process_pages = bench.process_pages


def with_progress(*args: Any, **kwargs: Any) -> process.ProcessReport:
    before, started = in_progress[0], time.perf_counter()
    with processing_display() as on_progress:
        report = process_pages(*args, on_progress=on_progress, **kwargs)
    runs.append((in_progress[0] - before, time.perf_counter() - started))
    return report


def main() -> int:
    bench.process_pages = with_progress  # type: ignore[assignment]
    sys.argv = ["process_throughput.py", *sys.argv[1:]]
    code = bench.main()
    worst = max(runs, key=lambda run: run[0] / run[1])
    print(f"progress in the loop: {in_progress[0] * 1000:.1f} ms in {in_progress[1]} calls over "
          f"{len(runs)} processing runs; at most {worst[0] * 1000:.1f} ms of a {worst[1]:.2f}s "
          f"run ({worst[0] / worst[1]:.2%})")
    print(f"rich's drawing: {drawing[0] * 1000:.1f} ms of CPU in {drawing[1]} refreshes over "
          f"{sum(run[1] for run in runs):.1f}s of processing")
    return code


if __name__ == "__main__":
    sys.exit(main())
