"""How long training the ranker takes on 5,000 labelled examples (target: under 2 minutes on 2 cores).

Usage: .venv/bin/python bench/train_speed.py [--examples 5000] [--model never|auto]

Two timings. `dealwatch train` end to end: the labelled passages of the pool (pipeline/analysis/data/gold
and the shared dev sets, read by path) repeated up to --examples passages, analysed and labelled
(examples_from_gold), then fitted. And the fit alone on --examples candidate examples, made from
the pool's candidates with their words perturbed (each copy drops a random third of its words)
so the vocabulary and the matrix are as large as real data of that size would make them.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.analysis import rank  # noqa: E402
from pipeline.analysis.analyze import Analyzer  # noqa: E402
from pipeline.analysis.evaluate import load_gold  # noqa: E402
from pipeline.config import SHIPPED_CONFIG_DIR, load_config  # noqa: E402

SHARED = REPO.parent / "shared" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--model", choices=("never", "auto", "required"), default="never")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; model path: {args.model}")
    analyzer = Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), args.model, ranker=None)
    records = [r for _, path in rank.shipped_gold() for r in load_gold(path)]
    records += [r for name in ("dev", "dev2") for r in load_gold(SHARED / f"deal_passages_{name}.jsonl")]
    passages = [dict(r, id=f"{r['id']}-{i}") for i in range(args.examples // len(records) + 1)
                for r in records][:args.examples]

    started = time.perf_counter()
    examples = rank.examples_from_gold(passages, analyzer, "bench")
    analysed = time.perf_counter() - started
    ranker = rank.train(examples)
    total = time.perf_counter() - started
    print(f"end to end: {len(passages)} labelled passages -> {len(examples)} candidates: "
          f"analysed and labelled in {analysed:.1f} s, fitted in {total - analysed:.1f} s, "
          f"{total:.1f} s in all ({len(ranker.feature_names)} features)")

    pool = rank.examples_from_gold(records, analyzer, "bench")
    rng = random.Random(0)
    perturbed = []
    while len(perturbed) < args.examples:
        e = pool[len(perturbed) % len(pool)]
        words = frozenset(w for w in e.words if rng.random() > 1 / 3)
        perturbed.append(rank.Example(e.features, e.label, e.source, words))
    started = time.perf_counter()
    ranker = rank.train(perturbed)
    fitted = time.perf_counter() - started
    print(f"fit alone: {len(perturbed)} candidate examples in {fitted:.1f} s "
          f"({len(ranker.feature_names)} features, {len(ranker.vocabulary)} words)")


if __name__ == "__main__":
    main()
