"""Time Analyzer.analyze_many alone (tag + detect, no store) on the texts of the 181 benchmark pages.

Usage: .venv/bin/python bench/analyzer_speed.py [--data ../shared/eval/extraction]
       [--model never|required|both] [--repeat 5] [--long] [--profile] [--dump OUT.jsonl]

The pages are extracted once with pipeline.ingest.extract.extract_article (timed, for scale); then each
analyser path runs over all texts once from cold and `--repeat` more times, and the first-pass,
best and median wall times are printed. `--long` also times the rule-only path on one text made
of all of them and the labelled deal passages of pipeline/analysis/data/gold, and on that text twice over: the
time must double, not quadruple (a crawled page may hold 10 MB of text).
`--profile` prints the top of a cProfile of one pass; `--dump` writes every text's entities and
candidates, to diff two versions of the analyser and make sure a speed-up changed nothing it finds.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.errors import DealwatchError  # noqa: E402
from pipeline.analysis.analyze import Analyzer  # noqa: E402
from pipeline.analysis.tag import find_model  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.ingest.extract import extract_article  # noqa: E402
from pipeline.jsonl import read_jsonl  # noqa: E402


def load_texts(data: Path) -> tuple[list[str], float]:
    """The extracted texts of the benchmark pages, and the seconds extraction took."""
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [(gzip.decompress((data / "html" / f"{key}.html.gz").read_bytes()), item["url"])
             for key, item in truth.items()]
    started = time.perf_counter()
    results = [extract_article(body, url, min_text_chars=0) for body, url in pages]
    seconds = time.perf_counter() - started
    return [r.article.text for r in results if r.article], seconds


def time_pass(analyzer: Analyzer, texts: list[str]) -> tuple[float, int, int]:
    started = time.perf_counter()
    entities = candidates = 0
    for analysis in analyzer.analyze_many(texts):
        entities += len(analysis.entities)
        candidates += len(analysis.candidates)
    return time.perf_counter() - started, entities, candidates


def time_long(analyzer: Analyzer, texts: list[str]) -> None:
    gold = REPO / "pipeline" / "analysis" / "data" / "gold"
    passages = [record["text"] for path in sorted(gold.glob("*.jsonl"))
                for _, record in read_jsonl(path, DealwatchError)]
    text = "\n\n".join(texts + passages)
    seconds = []
    for long_text in (text, text + "\n\n" + text):
        started = time.perf_counter()
        analysis = analyzer.analyze(long_text)
        seconds.append(time.perf_counter() - started)
    print(f"one text of {len(text) / 1e6:.2f} M characters: {seconds[0]:.3f}s; twice as long: "
          f"{seconds[1]:.3f}s ({len(analysis.candidates)} candidates)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "extraction")
    parser.add_argument("--model", default="both", choices=["never", "required", "both"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--long", action="store_true",
                        help="also time one long text on the rule-only path")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dump", type=Path)
    args = parser.parse_args()
    texts, extract_seconds = load_texts(args.data)
    chars = sum(len(t) for t in texts)
    print(f"{len(texts)} texts, {chars / 1e6:.2f} M characters; extract_article took "
          f"{extract_seconds:.2f}s")
    modes = ["never", "required"] if args.model == "both" else [args.model]
    if "required" in modes and find_model() is None:
        print("model not installed: timing the rule-only path only", file=sys.stderr)
        modes = ["never"]
    config = load_config()
    for mode in modes:
        analyzer = Analyzer.from_config(config, use_model=mode)
        # The first pass meets every word for the first time (spaCy creates a lexeme for each),
        # as one `dealwatch process` run does; later passes show the steady state.
        first, entities, candidates = time_pass(analyzer, texts)
        runs = [time_pass(analyzer, texts) for _ in range(max(args.repeat, 1))]
        seconds = [r[0] for r in runs]
        print(f"model {mode:8s}  first pass {first:.3f}s  then best {min(seconds):.3f}s, median "
              f"{statistics.median(seconds):.3f}s ({len(texts) / min(seconds):.0f} texts/s; "
              f"{entities} entities, {candidates} candidates)")
        if args.long and mode == "never":
            time_long(analyzer, texts)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            time_pass(analyzer, texts)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        if args.dump:
            out = args.dump.with_suffix(f".{mode}.jsonl")
            with out.open("w", encoding="utf-8") as f:
                for i, analysis in enumerate(analyzer.analyze_many(texts)):
                    f.write(json.dumps({
                        "i": i,
                        "entities": [e.to_json() for e in analysis.entities],
                        "candidates": [c.to_json() for c in analysis.candidates],
                    }, ensure_ascii=False, default=str) + "\n")
            print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
