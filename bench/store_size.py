"""How much database a processed article takes, on PostgreSQL and on SQLite: the sizing figure of
docs/scaling.md's arithmetic for a million articles a night.

Usage: .venv/bin/python bench/store_size.py [--data ../shared/eval/extraction]

Stores the real article pages of the extraction benchmark, processes them rule-only, and prints,
per backend: the bytes of each table with its indexes (PostgreSQL:
`pg_total_relation_size`, TOAST included; SQLite: the file, from `dbstat` when available), the
bytes per article with the raw HTML kept, and again after the HTML is dropped as
`[retention] html_days` drops it (PostgreSQL: VACUUM FULL, so that the freed space is counted).
The size of an empty, migrated database is taken off the whole (PostgreSQL's catalog alone is
about 7.5 MB).
PostgreSQL is a throwaway server started as the tests start one (tests/servers.py).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from servers import PostgresDatabases, postgres_server  # noqa: E402

from models.records import Page  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.jobs.analyzer import build_analyzer  # noqa: E402
from pipeline.jobs.process import process_pages  # noqa: E402
from pipeline.storage import Store  # noqa: E402


def load_pages(data: Path) -> list[Page]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    return [Page(url=item["url"], source_id=None, status=200,
                 body=gzip.decompress((data / "html" / f"{key}.html.gz").read_bytes()),
                 headers={"content-type": "text/html; charset=utf-8"})
            for key, item in truth.items()]


def fill(store: Store, pages: list[Page]) -> int:
    for page in pages:
        store.pages.save_page(page)
    analyzer = build_analyzer(load_config(), "never", ranker=None)
    process_pages(store, analyzer, batch_size=64)
    return store.count("articles")


def postgres_sizes(store: Store) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in store.database.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname IN ('public', 'accounts') AND c.relkind = 'r' ORDER BY 2 DESC").fetchall()}


def sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def show(title: str, articles: int, total: int, without_html: int, tables: dict[str, int]) -> None:
    print(f"\n{title}: {articles} articles")
    for name, size in list(tables.items())[:6]:
        print(f"  {name:<22} {size / 1e6:8.2f} MB  {size / articles / 1e3:7.1f} kB an article")
    print(f"  whole database, net    {total / 1e6:8.2f} MB  {total / articles / 1e3:7.1f} kB an article")
    print(f"  HTML dropped           {without_html / 1e6:8.2f} MB  "
          f"{without_html / articles / 1e3:7.1f} kB an article")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "extraction")
    args = parser.parse_args()
    pages = load_pages(args.data)
    print(f"{len(pages)} pages, {sum(len(p.body) for p in pages) / len(pages) / 1e3:.1f} kB of HTML "
          "a page on average")

    with postgres_server() as url:
        databases = PostgresDatabases(url)
        location = databases.new()
        with Store(location) as store:
            empty = int(store.database.execute(
                "SELECT pg_database_size(current_database())").fetchone()[0])
            articles = fill(store, pages)
            store.database.execute("VACUUM FULL")
            tables = postgres_sizes(store)
            total = int(store.database.execute("SELECT pg_database_size(current_database())").fetchone()[0])
            store.database.execute("UPDATE pages SET html = NULL")
            store.database.execute("VACUUM FULL")
            without = int(store.database.execute(
                "SELECT pg_database_size(current_database())").fetchone()[0])
        show("PostgreSQL", articles, total - empty, without - empty, tables)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "size.db"
        with Store(path) as store:
            store.database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            empty = sqlite_size(path)
            articles = fill(store, pages)
            store.database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            try:
                tables = {row[0]: int(row[1]) for row in store.database.execute(
                    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()}
            except Exception:  # dbstat is a compile-time option of SQLite
                tables = {}
        total = sqlite_size(path)
        with Store(path) as store:
            store.database.execute("UPDATE pages SET html = NULL")
            store.database.execute("VACUUM")
            store.database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        show("SQLite", articles, total - empty, sqlite_size(path) - empty, tables)


if __name__ == "__main__":
    main()
