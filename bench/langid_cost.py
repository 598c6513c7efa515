"""What language identification costs, as a share of processing, on the 181 benchmark pages.

Usage: .venv/bin/python bench/langid_cost.py [--data ../shared/eval/extraction] [--rounds 3]
       [--model never|auto] [--config DIR]

Processing is the whole stage as `dealwatch process` runs it (extraction with metadata and
language identification, near-duplicate signatures, tagging, detection, every write) over the
pages stored in a temporary database; identification is `pipeline.language.identify` timed
inside that very run (every call, wrapped), and again alone over the extracted texts with their
declared languages. Prints both shares, the identifier's one-time load, the languages found and
how each was decided. Target: identification under 5% of processing time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "bench"))

from process_throughput import load_pages, time_processing  # noqa: E402

import pipeline.ingest.extract as extract_module  # noqa: E402
from pipeline import language  # noqa: E402
from pipeline.analysis.analyze import Analyzer  # noqa: E402
from pipeline.config import load_config  # noqa: E402


class Timed:
    """identify, timed call by call."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.guesses: list[language.LanguageGuess] = []
        self.inputs: list[tuple[str, str | None]] = []

    def __call__(self, text: str, declared: str | None = None) -> language.LanguageGuess:
        started = time.perf_counter()
        guess = language.identify(text, declared)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        self.guesses.append(guess)
        self.inputs.append((text, declared))
        return guess


def one_round(pages: list[tuple[str, bytes]], analyzer: Analyzer, folder: Path
              ) -> tuple[float, Timed]:
    """One processing run (bench/process_throughput.py's), extraction's identify timed."""
    timed = Timed()
    extract_module.identify = timed  # type: ignore[assignment]  # what extraction calls
    try:
        return time_processing(pages, analyzer, folder), timed
    finally:
        extract_module.identify = language.identify


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "extraction")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", choices=("never", "auto"), default="never")
    parser.add_argument("--config", type=Path, default=None, help="a config dir (default: shipped)")
    args = parser.parse_args()
    pages = load_pages(args.data)
    started = time.perf_counter()
    language.identifiable_languages()  # the identifier's model, loaded once per process
    load = time.perf_counter() - started
    analyzer = Analyzer.from_config(load_config(args.config), use_model=args.model)
    results: list[tuple[float, Timed]] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            results.append(one_round(pages, analyzer, Path(folder)))
    texts = results[-1][1].inputs
    processing = statistics.median(e for e, _ in results)
    inside = statistics.median(t.seconds for _, t in results)
    alone: list[float] = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for text, declared in texts:
            language.identify(text, declared)
        alone.append(time.perf_counter() - started)
    timed = results[-1][1]
    chars = sum(len(t) for t, _ in texts)
    print(f"pages {len(pages)}, articles {len(texts)} ({chars / 1e6:.2f} M characters), "
          f"analyser {'rule-only' if args.model == 'never' else analyzer.version}, "
          f"{args.rounds} rounds, medians")
    print(f"processing (extract + identify + cluster + analyse + store): {processing:.2f} s")
    print(f"identification inside processing: {inside * 1000:.0f} ms over {timed.calls} "
          f"articles ({inside / max(timed.calls, 1) * 1000:.2f} ms each): "
          f"{inside / processing:.1%} of processing")
    print(f"identification alone over the stored texts: {statistics.median(alone) * 1000:.0f} ms "
          f"({statistics.median(alone) / processing:.1%} of processing)")
    print(f"identifier load, once per process: {load * 1000:.0f} ms "
          f"({load / processing:.1%} of one processing run of these pages)")
    outcomes: Counter[Any] = Counter((g.source, g.code) for g in timed.guesses)
    print("decided:", ", ".join(f"{code or 'none'} {source} {n}"
                                for (source, code), n in outcomes.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
