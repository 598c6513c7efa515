"""Peak memory of the processing stage over 10,000 article pages.

Usage: .venv/bin/python bench/process_memory.py [--articles 10000] [--model never|required]

Builds a database of N article pages in a temporary folder (the bundled demo site's stories,
each page made unique with its own paragraph and serial number, so every one is extracted,
signed for near-duplicates, tagged, detected and stored), then processes it in a fresh child
process and prints that process's peak resident memory (ru_maxrss) and its throughput.
Target: ≤ 500 MB without the statistical model.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from models.records import Page
from pipeline.demo import DEMO_SITE_DIR
from pipeline.storage import Store

WORDS = [
    "ministry", "network", "contract", "cloud", "regional", "officials", "said", "project", "data",
    "centre", "budget", "province", "operator", "fibre", "towers", "cameras", "loan", "lenders",
    "council", "tender", "upgrade",
]


def build(db_path: Path, n: int) -> None:
    expected = json.loads((DEMO_SITE_DIR / "_expected.json").read_text(encoding="utf-8"))
    templates = [(DEMO_SITE_DIR / e["path"].lstrip("/")).read_text(encoding="utf-8")
                 for e in expected if e["kind"] != "not_article"]
    rng = random.Random(1)
    with Store(db_path) as store, store.transaction():
        for i in range(n):
            html = templates[i % len(templates)]
            extra = " ".join(rng.choice(WORDS) for _ in range(60))
            # into the story's first long paragraph: inside the text that extraction keeps
            at = re.search(r"<p>[^<]{200,}(</p>)", html).start(1)  # type: ignore[union-attr]
            html = f"{html[:at]} Serial {i}: {extra}.{html[at:]}"
            store.pages.save_page(Page(url=f"https://bench.test/{i}.html", source_id=None, status=200,
                                 body=html.encode(), headers={"content-type": "text/html"}))


CHILD = """
import resource, sys, time
from pipeline.analysis.analyze import Analyzer
from pipeline.config import load_config
from pipeline.jobs.process import process_pages
from pipeline.storage import Store
analyzer = Analyzer.from_config(load_config(), use_model=sys.argv[2])
started = time.perf_counter()
with Store(sys.argv[1]) as store:
    report = process_pages(store, analyzer, batch_size=64)
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{report.counters['pages']} {report.counters['articles']} {elapsed:.1f} {peak:.0f}")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--model", default="never", choices=["never", "required"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "memory.db"
        started = time.perf_counter()
        build(db, args.articles)
        print(f"built {args.articles} pages in {time.perf_counter() - started:.0f}s")
        out = subprocess.run([sys.executable, "-c", CHILD, str(db), args.model],
                             capture_output=True, text=True, check=True)
        pages, articles, elapsed, peak = out.stdout.split()
    print(f"processed {pages} pages ({articles} articles) in {elapsed}s "
          f"({int(pages) / float(elapsed):.0f} pages/s), model {args.model}: "
          f"peak memory {peak} MB (target ≤ 500 MB without the model)")
    print(f"(this bench process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
