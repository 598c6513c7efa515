"""Bench: the review queue's keyset paging in every order, its counts, and the web queue page
on 100,000 candidates, and the candidate page's highlighting of a long article.

On SQLite (the default), or on PostgreSQL: `--db postgresql://…` (an empty database is seeded,
a seeded one used as it is), or `--backend postgresql`, which starts a throwaway server the way
the tests do (tests/servers.py: fsync off, shared_buffers 32MB) and seeds it. Every figure is
the median of --repeat runs (the machine is shared: a median is steadier than a best or a
mean). --explain prints PostgreSQL's plan of each order's first page and of the count."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from models.records import Entity
from pipeline.storage import QueueQuery, Store
from pipeline.storage.queue import QUEUE_SORTS, Walk, cursor_of, queue_walks
from pipeline.urls import is_database_url

REPO = Path(__file__).resolve().parent.parent

VENDORS = ["huawei", "zte", "hikvision", "dahua", "china-mobile", "inspur"]
COUNTRIES = ["KE", "UG", "EG", "ZA", "NG", "PK", "RS", "EC", "BO", "ID", "MY", "LA"]
TYPES = ["cloud", "data_centre", "e_government", "telecom_network", "safe_city", "smart_city"]
STAGES = ["proposed", "mou", "signed", "awarded", "completed"]


def seed(path: str, candidates: int, seed_value: int = 7) -> None:
    """Fill a database with synthetic articles and candidates (one in ten stories syndicated;
    a score under 0.1 is below the queue threshold: hidden from the default view)."""
    rng = random.Random(seed_value)
    now = "2026-01-01T00:00:00Z"
    with Store(path) as store:
        db = store.database
        with store.transaction():
            db.execute("INSERT INTO sources (id, kind, urls, config, first_seen, updated_at)"
                       " VALUES ('wire', 'rss', '[]', '{}', ?, ?), ('ledger', 'rss', '[]', '{}', ?, ?)"
                       " ON CONFLICT DO NOTHING", [now, now, now, now])
            articles, cands = [], []
            for n in range(candidates):
                article_id = n + 1
                cluster = article_id - 1 if n % 10 == 1 else article_id
                day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                text = f"Story {n}: {rng.choice(VENDORS)} signs a deal in {rng.choice(COUNTRIES)}."
                articles.append((article_id, f"https://news.test/{n}", f"http://news.test/{n}",
                                 rng.choice(["wire", "ledger"]), f"Story {n}", day, "News Test",
                                 text, f"h{n}", cluster, now))
                vendor, country = rng.choice(VENDORS), rng.choice(COUNTRIES)
                if n % 10 == 1:  # a syndicated copy: same story as the previous candidate
                    vendor, country = cands[-1][3], cands[-1][5]
                dtype = rng.choice(TYPES)
                score = round(rng.random(), 4)
                cands.append((article_id, f"k{n}", "deal", vendor, json.dumps([vendor]), country,
                              "Ministry of ICT", "ministry", dtype, json.dumps([dtype]),
                              rng.choice(STAGES), score, int(score >= 0.1), text, 0, len(text),
                              rng.choice(["pending"] * 8 + ["confirmed", "rejected"]), day, now,
                              now))
            db.executemany(
                "INSERT INTO articles (id, canonical_url, url, source_id, title, published, site,"
                " text, text_hash, cluster_id, extracted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                articles)
            db.executemany(
                "INSERT INTO candidates (article_id, key, kind, vendor, vendors, country,"
                " counterpart, counterpart_type, deal_type, deal_types, stage, score, queued,"
                ' sentence, start, "end", status, published, created_at, updated_at)'
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cands)
            if db.dialect.postgres:  # ids were given: the identities go on past them
                for table in ("articles", "candidates"):
                    db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT MAX(id) FROM {table}))")
        # Statistics for the planner now, as after any bulk load (autovacuum would take them a
        # little later on PostgreSQL; SQLite has no such thing).
        db.execute("ANALYZE")


REPEAT = 5  # runs per figure (--repeat)


def timed(label: str, fn, repeat: int | None = None) -> object:  # type: ignore[no-untyped-def]
    """Run fn `repeat` times; print the median and the spread; return its last result."""
    times, result = [], None
    for _ in range(repeat or REPEAT):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    print(f"{label:<52} {statistics.median(times) * 1000:8.1f} ms"
          f"   ({min(times) * 1000:.1f}–{max(times) * 1000:.1f})")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="keep the seeded database here: a file, or "
                        "a postgresql:// URL (the bench defers a few candidates in it)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="without --db: a temporary file, or a throwaway PostgreSQL server")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="runs per figure (median)")
    parser.add_argument("--depth", type=int, default=50_000,
                        help="the entry the deep pages start at")
    parser.add_argument("--explain", action="store_true",
                        help="print PostgreSQL's plans (EXPLAIN ANALYZE) of the queue's queries")
    args = parser.parse_args()
    globals()["REPEAT"] = args.repeat
    with database(args.db, args.backend) as location:
        if not seeded(location):
            started = time.perf_counter()
            seed(location, args.candidates)
            print(f"seeded {args.candidates:,} candidates in {time.perf_counter() - started:.1f}s")
        with Store(location) as store:
            if args.explain:
                explain(store)
            pending = QueueQuery()
            first = timed("first page (50)", lambda: store.candidates.queue_page(pending, 51))
            # a cursor deep in the pending candidates, then the page there
            cursor_row = store.database.execute(
                "SELECT score, id FROM candidates WHERE status = 'pending' "
                "ORDER BY score DESC, id LIMIT 1 OFFSET ?", [args.depth]).fetchone()
            after = (cursor_row[0], cursor_row[1])
            timed(f"page at entry {args.depth:,} (keyset)",
                  lambda: store.candidates.queue_page(pending, 51, after))
            timed(f"previous page at entry {args.depth:,}",
                  lambda: store.candidates.queue_page(pending, 51, None, after))
            timed("filter vendor=zte", lambda: store.candidates.queue_page(QueueQuery(vendor="zte"), 51))
            timed("filter vendor+country", lambda: store.candidates.queue_page(
                QueueQuery(vendor="zte", country="KE"), 51))
            timed("filter deal_type=safe_city", lambda: store.candidates.queue_page(
                QueueQuery(deal_type="safe_city"), 51))
            timed("filter source+date range", lambda: store.candidates.queue_page(
                QueueQuery(source="wire", date_from="2025-03-01", date_to="2025-03-31"), 51))
            timed("search 'huawei KE' (1,000 entries)", lambda: store.candidates.queue_page(
                QueueQuery(search="huawei KE"), 51))
            timed("search 'nowhere' (no entry: every one read)", lambda: store.candidates.queue_page(
                QueueQuery(search="nowhere"), 51))
            timed("status all (first page)", lambda: store.candidates.queue_page(QueueQuery(status=None), 51))
            timed(f"status all (at entry {args.depth:,})", lambda: store.candidates.queue_page(
                QueueQuery(status=None), 51, after))
            timed("counts per status", lambda: store.candidates.queue_status_counts(QueueQuery()))
            timed("counts per status, source filter", lambda: store.candidates.queue_status_counts(
                QueueQuery(source="wire")))
            timed("distinct countries", store.candidates.candidate_countries)
            assert isinstance(first, list) and len(first) == 51
            orders(store, args.depth)
            counts(store)
        web_page(location, args.depth)
    segments()
    return 0


@contextmanager
def database(db: str | None, backend: str) -> Iterator[str]:
    """Where the bench's database is: --db as given, else a temporary file or a new server."""
    if db is not None:
        yield db
        return
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield str(Path(tmp) / "bench.db")
        return
    sys.path.insert(0, str(REPO / "tests"))
    from servers import postgres_missing, postgres_server

    missing = postgres_missing()
    if missing:
        raise SystemExit(f"--backend postgresql: {missing}")
    with postgres_server() as url:
        print("a throwaway PostgreSQL server (tests/servers.py: fsync off, shared_buffers 32MB)")
        yield url


def seeded(location: str) -> bool:
    """Whether the database is there and holds candidates already."""
    if not is_database_url(location) and not Path(location).exists():
        return False
    with Store(location) as store:
        return store.count("candidates") > 0


def explain(store: Store) -> None:
    """PostgreSQL's plan, with times, of each order's first page and of the default view's count."""
    db = store.database
    if not db.dialect.postgres:
        print("--explain: PostgreSQL only (SQLite's plans are pinned by tests/test_queue_sort.py)")
        return
    for sort in QUEUE_SORTS:
        query = QueueQuery(sort=sort)
        first = queue_walks(query, "c")[0]
        sql, params = store.candidates._queue_sql(query, 1, "c.id", first)
        plan = db.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql} ORDER BY {first.order} LIMIT ?",
                          [*params, 51]).fetchall()
        print(f"--- {sort}: first page\n" + "\n".join(r[0] for r in plan))
    sql, params = store.candidates._queue_sql(QueueQuery(), 1, "COUNT(*)", Walk("TRUE", [], ""))
    plan = db.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params).fetchall()
    print("--- count of the default view\n" + "\n".join(r[0] for r in plan))


def orders(store: Store, depth: int) -> None:
    """Every sort order both ways: the first page, a page deep in it (by its cursor) and the
    page before that, and the position of that deep page's first entry ("50,001–50,050")."""
    for sort in QUEUE_SORTS:
        for descending in (False, True):
            query = QueueQuery(sort=sort, descending=descending)
            name = f"{sort} {'desc' if descending else 'asc'}"
            timed(f"{name}: first page", lambda q=query: store.candidates.queue_page(q, 51))
            # the cursor of the entry at `depth`, found once (the slow way is fine here)
            deep = store.candidates.queue_page(query, depth + 1)
            assert len(deep) == depth + 1, f"the queue has fewer than {depth + 1:,} entries"
            at = cursor_of(deep[-1], query)
            timed(f"{name}: page at entry {depth:,}",
                  lambda q=query, a=at: store.candidates.queue_page(q, 51, a))
            timed(f"{name}: page before entry {depth:,}",
                  lambda q=query, a=at: store.candidates.queue_page(q, 51, None, a))
            timed(f"{name}: position of entry {depth:,}",
                  lambda q=query, a=at: store.candidates.queue_count(q, before=a))


def counts(store: Store) -> None:
    """What the queue page counts: all its entries ("of 73,577"), the candidates per status and
    the hidden ones below the threshold."""
    query = QueueQuery()
    timed("count: entries in the default view", lambda: store.candidates.queue_count(query))
    timed("count: entries, status all", lambda: store.candidates.queue_count(
        replace(query, status=None)))
    timed("count: entries, vendor=zte", lambda: store.candidates.queue_count(
        replace(query, vendor="zte")))
    timed("count: entries, source=wire", lambda: store.candidates.queue_count(
        replace(query, source="wire")))
    timed("counts per status and hidden", lambda: status_counts(store, query))
    timed("counts per status and hidden, source=wire",
          lambda: status_counts(store, replace(query, source="wire")))


def status_counts(store: Store, query: QueueQuery) -> object:
    """The per-status counts and the hidden count, as the queue page takes them (one grouped
    query since migration 15; two counts before)."""
    return store.candidates.queue_counts(query)


def segments(entities: int = 3_000) -> None:
    """Highlighting an article tagged all over (one pass over the entities, not one a cut)."""
    from pipeline.review.web import article_segments

    rng = random.Random(3)
    text = " ".join(f"word{i}" for i in range(entities * 4))
    spans = []
    for _ in range(entities):
        start = rng.randrange(len(text) - 40)
        end = start + rng.randint(3, 40)
        spans.append(Entity(text=text[start:end], label=rng.choice(["VENDOR", "ORG", "GPE", "DATE"]),
                            start=start, end=end))
    timed(f"article_segments, {entities:,} entities",
          lambda: article_segments(text, (100, 400), spans))


def web_page(path: str, depth: int) -> None:
    """The whole GET /queue round trip through the app (TestClient, no network)."""
    from starlette.testclient import TestClient

    from pipeline.config import load_config
    from pipeline.review import accounts
    from pipeline.review.web import create_app, format_cursor

    with Store(path) as store:
        if store.accounts.user("bench") is None:
            accounts.add_user(store, "bench", "bench-password-1")
    client = TestClient(create_app(load_config(), path, secure_cookies=False))
    login = client.get("/login")
    token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"name": "bench", "password": "bench-password-1",
                                "csrf_token": token})
    timed("GET /queue (page 1, whole request)", lambda: client.get("/queue"))
    page = client.get("/queue")
    cursor = next_link(page.text)
    timed("GET /queue (next page, whole request)", lambda: client.get(cursor))
    timed("GET /queue?vendor=zte&deal_type=cloud", lambda: client.get("/queue?vendor=zte&deal_type=cloud"))
    for sort in QUEUE_SORTS:
        for order in ("asc", "desc"):
            url = f"/queue?sort={sort}&order={order}"
            timed(f"GET {url}", lambda u=url: client.get(u))
            after = next_link(client.get(url).text)
            timed(f"GET {url} (next page)", lambda a=after: client.get(a))

    with Store(path) as store:  # a page deep in the queue, reached by its cursor
        query = QueueQuery()
        deep = store.candidates.queue_page(query, depth + 1)[-1]
    url = f"/queue?after={format_cursor(deep, query)}"
    timed(f"GET /queue at entry {depth:,} (its position counted)", lambda: client.get(url))

    def after_a_decision() -> object:
        """The queue page right after a decision (a candidate deferred), as a reviewer sees it."""
        page = client.get("/queue").text
        ident = int(page.split('<tr data-id="')[1].split('"')[0])
        with Store(path) as store:
            entry = store.candidates.candidate(ident)
        assert entry is not None
        token = page.split('<meta name="csrf-token" content="')[1].split('"')[0]
        client.post(f"/candidate/{ident}/decide", follow_redirects=False, data={
            "csrf_token": token, "decision": "defer", "version": entry.version})
        started = time.perf_counter()
        client.get("/queue")
        return time.perf_counter() - started

    waits = [after_a_decision() for _ in range(REPEAT)]
    print(f"{'GET /queue right after a decision':<52} {statistics.median(waits) * 1000:8.1f} ms"
          f"   ({min(waits) * 1000:.1f}–{max(waits) * 1000:.1f})")
    if is_database_url(path):  # the app's connection pool, before the server goes
        from pipeline.storage.postgres import close_pools

        close_pools()


def next_link(html: str) -> str:
    """The page's "next" link."""
    return html.split('" rel="next"')[0].rsplit('href="', 1)[1].replace("&amp;", "&")


if __name__ == "__main__":
    sys.exit(main())
