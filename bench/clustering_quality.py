"""Near-duplicate clustering on the demo corpus and synthetic syndicated copies of it.

Usage: .venv/bin/python bench/clustering_quality.py [--seed N]

For every demo story, makes partner copies with edits of growing strength, clusters everything
with the settings.toml [dedup] defaults, and prints how many copies joined their original's
cluster per kind of edit, and how many unrelated stories were merged (must be 0).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from models.config import DedupSettings
from pipeline.demo import DEMO_SITE_DIR
from pipeline.ingest.dedup import NearDuplicateIndex, resemblance, signature
from pipeline.ingest.extract import extract_article


def drop_paragraph(text: str, rng: random.Random) -> str:
    paras = text.split("\n")
    del paras[rng.randrange(1, max(len(paras) - 1, 2))]
    return "\n".join(paras)


def light_edit(text: str, rng: random.Random) -> str:
    words = drop_paragraph(text, rng).split(" ")
    for i in rng.sample(range(len(words)), k=len(words) // 30):
        words[i] = rng.choice(["the", "a", "said", "on", "new"])
    return " ".join(words) + "\nAdditional reporting by our correspondent."


def heavy_edit(text: str, rng: random.Random) -> str:
    paras = text.split("\n")
    for _ in range(min(2, len(paras) - 2)):
        del paras[rng.randrange(1, len(paras) - 1)]
    words = "\n".join(paras).split(" ")
    for i in rng.sample(range(len(words)), k=len(words) // 12):
        words[i] = rng.choice(["the", "a", "said", "on", "new", "officials", "project"])
    return "New headline for the partner site\n" + " ".join(words)


def first_half(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    return " ".join(words[: len(words) // 2])


EDITS: dict[str, Callable[[str, random.Random], str]] = {
    "one paragraph dropped": drop_paragraph,
    "light edit (paragraph dropped, 3% of words changed, tagline added)": light_edit,
    "heavy edit (two paragraphs dropped, 8% of words changed, new headline)": heavy_edit,
    "first half only": first_half,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shingle-words", type=int, default=None)
    parser.add_argument("--jaccard", type=float, default=None)
    parser.add_argument("--containment", type=float, default=None)
    parser.add_argument("--real", type=Path, default=None, metavar="DIR",
                        help="also print the highest resemblance between the unrelated real "
                             "articles of an article-extraction-benchmark folder "
                             "(e.g. ../shared/eval/extraction)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    overrides = {k: v for k, v in (("shingle_words", args.shingle_words), ("jaccard", args.jaccard),
                                   ("containment", args.containment)) if v is not None}
    settings = DedupSettings(**overrides)
    print(f"settings: {settings.model_dump()}")
    expected = json.loads((DEMO_SITE_DIR / "_expected.json").read_text(encoding="utf-8"))
    stories = [e for e in expected if e["kind"] != "not_article"]
    texts: dict[int, str] = {}
    for n, e in enumerate(stories, 1):
        body = (DEMO_SITE_DIR / e["path"].lstrip("/")).read_bytes()
        result = extract_article(body, "http://demo.test" + e["path"])
        assert result.article is not None
        texts[n] = result.article.text
    pair = {n for n, e in enumerate(stories, 1) if e.get("syndicated_with")}
    started = time.perf_counter()
    index = NearDuplicateIndex(settings.num_perm, settings.jaccard, settings.containment)
    for n, text in texts.items():
        index.assign(n, signature(text, settings.num_perm, settings.shingle_words))
    joined: Counter[str] = Counter()
    copy_of: dict[int, int] = {}
    next_id = 1000
    for name, edit in EDITS.items():
        for n, text in texts.items():
            next_id += 1
            copy_of[next_id] = n
            cluster_id, _ = index.assign(next_id, signature(edit(text, rng), settings.num_perm,
                                                            settings.shingle_words))
            joined[name] += cluster_id == index.cluster_of[n]
    elapsed = time.perf_counter() - started
    # A false merge: two different original stories in one cluster (the real syndicated pair
    # on the demo site is one story).
    clusters: dict[int, set[int]] = {}
    for article_id, cluster_id in index.cluster_of.items():
        clusters.setdefault(cluster_id, set()).add(copy_of.get(article_id, article_id))
    false_merges = sum(1 for members in clusters.values()
                       if len(members) > 1 and members != pair)
    pair_clustered = len({index.cluster_of[n] for n in pair}) == 1
    print(f"stories: {len(texts)}; syndicated pair on the demo site clustered: {pair_clustered}")
    for name in EDITS:
        print(f"  copies joined their story ({name}): {joined[name]}/{len(texts)}")
    print(f"clusters holding unrelated stories: {false_merges}")
    print(f"signatures + LSH for {len(index)} texts: {elapsed:.2f}s")
    if args.real:
        truth = json.loads((args.real / "ground-truth.json").read_text(encoding="utf-8"))
        sigs = [signature(v["articleBody"], settings.num_perm, settings.shingle_words)
                for v in truth.values()]
        pairs = [resemblance(a, b) for a, b in itertools.combinations(sigs, 2)]
        print(f"{len(sigs)} unrelated real articles, {len(pairs)} pairs: highest jaccard "
              f"{max(p[0] for p in pairs):.2f} (threshold {settings.jaccard}), highest containment "
              f"{max(p[1] for p in pairs):.2f} (threshold {settings.containment})")
    return 0 if pair_clustered and false_merges == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
