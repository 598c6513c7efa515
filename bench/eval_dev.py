"""Measure deal detection on the shared labelled dev passages, with and without the spaCy model.

Usage: .venv/bin/python bench/eval_dev.py [GOLD.jsonl] [--model auto|never|required|both] [-v]
The passages stay where they are (../shared/eval); nothing of their text enters the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pipeline.analyze import Analyzer
from pipeline.config import load_config
from pipeline.evaluate import evaluate, format_report, load_gold
from pipeline.tag import find_model

REPO = Path(__file__).resolve().parent.parent
DEV_SET = REPO.parent / "shared" / "eval" / "deal_passages_dev.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", nargs="?", default=str(DEV_SET))
    parser.add_argument("--model", default="both", choices=["auto", "never", "required", "both"])
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every passage's candidates")
    args = parser.parse_args()
    records = load_gold(args.gold)
    modes = ["never", "required"] if args.model == "both" else [args.model]
    if "required" in modes and find_model() is None:
        print("model not installed: measuring the rule-only path only", file=sys.stderr)
        modes = ["never"]
    config = load_config()
    for mode in modes:
        started = time.perf_counter()
        analyzer = Analyzer.from_config(config, use_model=mode)
        metrics = evaluate(records, analyzer, threshold=args.threshold)
        print(f"== model: {mode} ({time.perf_counter() - started:.1f}s)")
        print(format_report(metrics))
        if args.verbose:
            for record, analysis in zip(records, analyzer.analyze_many(r["text"] for r in records),
                                        strict=True):
                print(f"-- {record['id']} {record['is_deal']} {record['vendors']} {record['countries']}")
                for c in analysis.candidates:
                    shown = {k: v for k, v in c.to_json(with_signals=True).items()
                             if k not in ("sentence", "start", "end")}
                    print("   ", json.dumps(shown, ensure_ascii=False))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
