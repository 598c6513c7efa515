"""Measure deal detection on labelled passages (the shared dev sets), with and without the spaCy model.

Usage: .venv/bin/python bench/eval_dev.py [GOLD.jsonl ...] [--model auto|never|required|both]
                                          [--threshold X] [--json] [-v]
Without files it reads ../shared/eval/deal_passages_dev.jsonl and deal_passages_dev2.jsonl. Each
file is scored on its own (full report), then one summary line per file and path. The passages
stay where they are; nothing of their text enters the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from models.errors import DealwatchError
from models.records import passage_of
from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.evaluate import PRECISION_AT, evaluate, format_report, load_gold
from pipeline.analysis.tag import find_model
from pipeline.config import load_config

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "eval"
DEV_SETS = [SHARED / "deal_passages_dev.jsonl", SHARED / "deal_passages_dev2.jsonl"]
SUMMARY = [("recall", "recall"), ("fp_rate", "fp"), ("average_precision", "AP"),
           *((f"precision_at_{k}", f"P@{k}") for k in PRECISION_AT),
           ("country_accuracy", "country"), ("deal_type_accuracy", "type"),
           ("counterpart_accuracy", "cpart"), ("counterpart_type_accuracy", "cp type"),
           ("stage_accuracy", "stage"), ("aggregate_accuracy", "aggr"),
           ("aggregate_spurious_rate", "spur")]


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def summary_table(rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    """One line per (file, model path): the headline figures side by side."""
    width = max(len(name) for name, _, _ in rows)
    head = f"{'file':<{width}}  {'model':<8}  {'n':>4}  {'excl':>4}  " + "  ".join(
        f"{title:>7}" for _, title in SUMMARY)
    lines = [head, "-" * len(head)]
    for name, mode, m in rows:
        c = m["counts"]
        lines.append(f"{name:<{width}}  {mode:<8}  {c['passages']:>4}  {c['excluded_yes']:>4}  "
                     + "  ".join(f"{_cell(m[key]):>7}" for key, _ in SUMMARY))
    return "\n".join(lines) + f"\n(threshold {rows[0][2]['threshold']:.2f}; excl = deal passages " \
        "naming no watchlist vendor, left out)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", nargs="*", default=[str(p) for p in DEV_SETS])
    parser.add_argument("--model", default="both", choices=["auto", "never", "required", "both"])
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--json", action="store_true", help="all metrics as one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every passage's candidates")
    args = parser.parse_args()
    try:
        sets = [(Path(path).name, load_gold(path)) for path in args.gold]
    except DealwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    modes = ["never", "required"] if args.model == "both" else [args.model]
    if "required" in modes and find_model() is None:
        print("model not installed: measuring the rule-only path only", file=sys.stderr)
        modes = ["never"]
    config = load_config()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for mode in modes:
        analyzer = Analyzer.from_config(config, use_model=mode)
        for name, records in sets:
            started = time.perf_counter()
            metrics = evaluate(records, analyzer, threshold=args.threshold)
            rows.append((name, mode, metrics))
            if args.json:
                continue
            print(f"== {name}, model: {mode} ({time.perf_counter() - started:.1f}s)")
            print(format_report(metrics))
            if args.verbose:
                _print_candidates(analyzer, records)
            print()
    if args.json:
        print(json.dumps({f"{name} {mode}": m for name, mode, m in rows}, indent=2,
                         ensure_ascii=False))
    else:
        print(summary_table(rows))
    return 0


def _print_candidates(analyzer: Analyzer, records: list[dict[str, Any]]) -> None:
    for record, analysis in zip(records, analyzer.analyze_many(map(passage_of, records)),
                                strict=True):
        print(f"-- {record['id']} {record['is_deal']} {record['vendors']} {record['countries']}")
        for c in analysis.candidates:
            shown = {k: v for k, v in c.to_json(with_signals=True).items()
                     if k not in ("sentence", "start", "end")}
            print("   ", json.dumps(shown, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
