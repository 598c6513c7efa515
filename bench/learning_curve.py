"""Learning curve of the ranker: simulated reviewers decide k candidates, the ranker learns from them,
and the ranking of the other passages is measured (average precision).

Usage: .venv/bin/python bench/learning_curve.py [--splits 5] [--model never|auto]

The pool is the project's own labelled passages (pipeline/analysis/data/gold) and the shared dev sets
(../shared/eval/deal_passages_dev.jsonl and dev2.jsonl, read by path, never copied). Each passage
is analysed once (the detector's rule score kept); then for each split the passages are shuffled,
reviewers decide every candidate of the first passages until k decisions are made, a ranker is
trained on those decisions alone, and the remaining passages are ranked by their best deal
candidate's score (as `dealwatch eval` ranks them: `yes` passages are the positives; passages
whose vendors are not on the watchlist are left out). k = 0 is the detector's rule score.

A second table trains on one batch and measures on another (dev2 -> dev, dev -> dev2, both dev
sets -> the frozen test set): the rule score, the shipped ranker (trained on the project's own
passages only), the shipped data plus the batch (`dealwatch train --gold BATCH`), and the batch
alone.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.analysis import rank  # noqa: E402
from pipeline.analysis.analyze import Analyzer  # noqa: E402
from pipeline.analysis.evaluate import average_precision, load_gold, resolve_names  # noqa: E402
from pipeline.config import SHIPPED_CONFIG_DIR, load_config  # noqa: E402

SHARED = REPO.parent / "shared" / "eval"
FROZEN = REPO / "tests" / "data" / "deal_passages_frozen.jsonl"


@dataclass
class Passage:
    set_name: str
    label: str  # yes | no | aggregate
    eligible: bool  # its vendors are on the watchlist (ranked, as in dealwatch eval)
    examples: list[rank.Example]  # its candidates, labelled as examples_from_gold labels them


def load_pool(analyzer: Analyzer, files: Sequence[tuple[str, Path]]) -> list[Passage]:
    pool: list[Passage] = []
    for set_name, path in files:
        records = load_gold(path)
        vendor_ids = resolve_names(analyzer, (v for r in records for v in r["vendors"]), "VENDOR")
        for record, examples in zip(records, rank.examples_by_passage(records, analyzer, set_name),
                                    strict=True):
            eligible = any(vendor_ids.get(v) for v in record["vendors"])
            pool.append(Passage(set_name, record["is_deal"], eligible, examples))
    return pool


def passage_score(passage: Passage, ranker: rank.Ranker | None) -> float:
    deals = [e for e in passage.examples if e.features.get("kind=deal")]
    if ranker is None:
        return max((rank.rule_score_of(e) for e in deals), default=0.0)
    return max((rank.score_features(ranker, e.features, e.words) for e in deals), default=0.0)


def ranking_ap(passages: Sequence[Passage], ranker: rank.Ranker | None) -> float | None:
    ranked = [p for p in passages if p.eligible]
    return average_precision([passage_score(p, ranker) for p in ranked],
                             [p.label == "yes" for p in ranked])


def learning_curve(pool: list[Passage], ks: Sequence[int], splits: int) -> None:
    sets = ", ".join(f"{n}: {sum(p.set_name == n for p in pool)}"
                     for n in sorted({p.set_name for p in pool}))
    print(f"pool: {len(pool)} passages, {sum(len(p.examples) for p in pool)} candidates ({sets})")
    print()
    print("| decisions k | passages trained on | AP on the rest, rule score | AP on the rest, ranker "
          "trained on k | splits |")
    print("| --- | --- | --- | --- | --- |")
    for k in ks:
        rule_aps, ranker_aps, used = [], [], []
        for seed in range(splits):
            order = pool[:]
            random.Random(seed).shuffle(order)
            train: list[rank.Example] = []
            n = 0
            while n < len(order) and len(train) < k:
                train += order[n].examples
                n += 1
            if k and len(train) < k:
                break  # the pool has fewer decisions than k
            rest = order[n:]
            rule_aps.append(ranking_ap(rest, None))
            labels = {e.label for e in train}
            ranker = rank.train(train) if k and len(labels) == 2 else None
            ranker_aps.append(ranking_ap(rest, ranker))
            used.append(n)
        if not rule_aps:
            break
        print(f"| {k} | {statistics.mean(used):.0f} | {_mean(rule_aps)} | {_mean(ranker_aps)} | "
              f"{len(rule_aps)} |")


def _mean(values: Sequence[float | None]) -> str:
    real = [v for v in values if v is not None]
    if not real:
        return "n/a"
    spread = f" ± {statistics.stdev(real):.3f}" if len(real) > 1 else ""
    return f"{statistics.mean(real):.3f}{spread}"


def cross_batch(analyzer: Analyzer, base: list[rank.Example]) -> None:
    """Train on one batch of reviewed passages, measure the ranking on another: dev2 -> dev,
    dev -> dev2, and both dev sets -> the frozen test set (measured, never trained or tuned on)."""
    batches = {name: load_pool(analyzer, [(name, path)]) for name, path in (
        ("dev", SHARED / "deal_passages_dev.jsonl"), ("dev2", SHARED / "deal_passages_dev2.jsonl"),
        ("frozen", FROZEN))}
    directions = [(["dev2"], "dev"), (["dev"], "dev2"), (["dev", "dev2"], "frozen")]
    print()
    print("| trained on | measured on | rule score | shipped ranker | shipped + batch | batch alone |")
    print("| --- | --- | --- | --- | --- | --- |")
    shipped = rank.train(base)
    for trained, measured in directions:
        batch = [e for name in trained for p in batches[name] for e in p.examples]
        rankers = [None, shipped, rank.train(base + batch), rank.train(batch)]
        cells = [ranking_ap(batches[measured], ranker) for ranker in rankers]
        print(f"| {' + '.join(trained)} | {measured} | "
              + " | ".join("n/a" if ap is None else f"{ap:.3f}" for ap in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--model", choices=("never", "auto", "required"), default="never")
    parser.add_argument("--k", type=int, nargs="*", default=[0, 25, 50, 100, 200, 300, 400])
    args = parser.parse_args()
    analyzer = Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), args.model, ranker=None)
    print(f"analyser {analyzer.version}, model path: {args.model}")
    gold = [(f"gold:{name}", path) for name, path in rank.shipped_gold()]
    shared = [(name, SHARED / f"deal_passages_{name}.jsonl") for name in ("dev", "dev2")]
    pool = load_pool(analyzer, gold + shared)
    learning_curve(pool, args.k, args.splits)
    base = [e for p in pool if p.set_name.startswith("gold:") for e in p.examples]
    cross_batch(analyzer, base)


if __name__ == "__main__":
    main()
