"""Processing throughput (extract + tag + detect + store) against trafilatura's extraction alone.

Usage: .venv/bin/python bench/process_throughput.py [--data ../shared/eval/extraction] [--rounds 3]

On the 181 real pages of the article-extraction benchmark, in the same run: the time of
`trafilatura.extract(html, url=url)` over all pages (trafilatura's extraction alone, its
defaults), and the time of dealwatch's processing stage over the same pages stored in a
temporary database (extraction with metadata, near-duplicate clustering, tagging, detection and
every write), rule-only and with the statistical model when it is installed. Rounds alternate;
the median round counts. Prints pages per second and the ratio (target ≥ 0.75 rule-only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trafilatura

from models.records import Page
from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.tag import find_model
from pipeline.config import load_config
from pipeline.jobs.process import process_pages
from pipeline.storage import Store

REPO = Path(__file__).resolve().parent.parent


def load_pages(data: Path) -> list[tuple[str, bytes]]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    return [(item["url"], gzip.decompress((data / "html" / f"{key}.html.gz").read_bytes()))
            for key, item in truth.items()]


def time_trafilatura(pages: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    for url, body in pages:
        trafilatura.extract(body, url=url)
    return time.perf_counter() - started


def time_processing(pages: list[tuple[str, bytes]], analyzer: Analyzer, folder: Path) -> float:
    with Store(folder / f"bench-{time.monotonic_ns()}.db") as store:
        for url, body in pages:
            store.pages.save_page(Page(url=url, source_id=None, status=200, body=body,
                                 headers={"content-type": "text/html; charset=utf-8"}))
        started = time.perf_counter()
        report = process_pages(store, analyzer, batch_size=64)
        elapsed = time.perf_counter() - started
        assert report.counters["pages"] == len(pages), report.counters
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "extraction")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pages = load_pages(args.data)
    config = load_config()
    modes = ["never"] + (["required"] if find_model() else [])
    analyzers = {mode: Analyzer.from_config(config, use_model=mode) for mode in modes}
    for analyzer in analyzers.values():  # warm caches (lazy imports, first-call set-up)
        list(analyzer.analyze_many(["Huawei signed a deal with Kenya's ICT ministry."]))
    trafilatura.extract(pages[0][1])
    base: list[float] = []
    ours: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            base.append(time_trafilatura(pages))
            for mode, analyzer in analyzers.items():
                ours[mode].append(time_processing(pages, analyzer, Path(tmp)))
    base_s = statistics.median(base)
    print(f"pages: {len(pages)}; rounds: {args.rounds} (median)")
    print(f"trafilatura.extract alone: {base_s:.2f}s, {len(pages) / base_s:.1f} pages/s")
    for mode in modes:
        s = statistics.median(ours[mode])
        label = "rule-only" if mode == "never" else f"with {analyzers[mode].model_name}"
        print(f"dealwatch processing ({label}): {s:.2f}s, {len(pages) / s:.1f} pages/s, "
              f"ratio {base_s / s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
