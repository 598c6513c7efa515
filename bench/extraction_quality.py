"""Extraction quality on the shared article-extraction benchmark pages (F1 over 4-gram shingles).

Usage: .venv/bin/python bench/extraction_quality.py [--data ../shared/eval/extraction] [--raw]

Prints precision, recall and F1 as the benchmark defines them: 4-gram shingles over lower-cased
\\w+ tokens, multiset counts, precision and recall averaged over documents, F1 of the averages.
`--raw` also scores plain trafilatura.extract() with its defaults, for comparison.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.ingest.extract import extract_article  # noqa: E402

TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = TOKEN.findall(text.lower())
    return Counter(tuple(tokens[i:i + n]) for i in range(max(len(tokens) - n + 1, 0)))


def score(pred: str, gold: str) -> tuple[float, float]:
    p, g = shingles(pred), shingles(gold)
    overlap = sum((p & g).values())
    precision = overlap / sum(p.values()) if p else (1.0 if not g else 0.0)
    recall = overlap / sum(g.values()) if g else 1.0
    return precision, recall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "extraction")
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()
    truth = json.loads((args.data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {k: gzip.decompress((args.data / "html" / f"{k}.html.gz").read_bytes()) for k in truth}
    systems = {"dealwatch extract_article": lambda body, url: (
        r.article.text if (r := extract_article(body, url, min_text_chars=0)).article else "")}
    if args.raw:
        import trafilatura

        systems["trafilatura.extract (defaults)"] = lambda body, url: (
            trafilatura.extract(body, url=url) or "")
    for name, fn in systems.items():
        precisions, recalls, empty = [], [], 0
        started = time.perf_counter()
        for key, item in truth.items():
            text = fn(pages[key], item["url"])
            empty += not text
            p, r = score(text, item["articleBody"])
            precisions.append(p)
            recalls.append(r)
        elapsed = time.perf_counter() - started
        P, R = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
        F = 2 * P * R / (P + R) if P + R else 0.0
        print(f"{name}: pages={len(truth)} precision={P:.3f} recall={R:.3f} F1={F:.3f} "
              f"empty={empty} seconds={elapsed:.1f}")
    # Every benchmark page is an article: how many would processing call "not an article"?
    rejected = Counter()
    for key, item in truth.items():
        result = extract_article(pages[key], item["url"])
        if result.article is None:
            rejected[result.reason] += 1
    print(f"not-an-article verdicts at the default min_text_chars: {sum(rejected.values())} of "
          f"{len(truth)} {dict(rejected)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
