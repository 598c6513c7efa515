"""Bench: the review queue's keyset paging and the web queue page on 100,000 candidates, and
the candidate page's highlighting of a long article."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from models.records import Entity
from pipeline.storage import QueueQuery, Store

VENDORS = ["huawei", "zte", "hikvision", "dahua", "china-mobile", "inspur"]
COUNTRIES = ["KE", "UG", "EG", "ZA", "NG", "PK", "RS", "EC", "BO", "ID", "MY", "LA"]
TYPES = ["cloud", "data_centre", "e_government", "telecom_network", "safe_city", "smart_city"]
STAGES = ["proposed", "mou", "signed", "awarded", "completed"]


def seed(path: Path, candidates: int, seed_value: int = 7) -> None:
    """Fill a database with synthetic articles and candidates (one in ten stories syndicated)."""
    rng = random.Random(seed_value)
    now = "2026-01-01T00:00:00Z"
    with Store(path) as store:
        db = store.db
        with store.transaction():
            db.execute("INSERT OR IGNORE INTO sources (id, kind, urls, config, first_seen, updated_at)"
                       " VALUES ('wire', 'rss', '[]', '{}', ?, ?), ('ledger', 'rss', '[]', '{}', ?, ?)",
                       [now, now, now, now])
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
                cands.append((article_id, f"k{n}", "deal", vendor, json.dumps([vendor]), country,
                              "Ministry of ICT", "ministry", dtype, json.dumps([dtype]),
                              rng.choice(STAGES), round(rng.random(), 4), text, 0, len(text),
                              rng.choice(["pending"] * 8 + ["confirmed", "rejected"]), now, now))
            db.conn.executemany(
                "INSERT INTO articles (id, canonical_url, url, source_id, title, published, site,"
                " text, text_hash, cluster_id, extracted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                articles)
            db.conn.executemany(
                "INSERT INTO candidates (article_id, key, kind, vendor, vendors, country,"
                " counterpart, counterpart_type, deal_type, deal_types, stage, score, sentence,"
                ' start, "end", status, created_at, updated_at)'
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cands)
        db.execute("ANALYZE")


def timed(label: str, fn, repeat: int = 5) -> object:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    print(f"{label:<48} {best * 1000:8.1f} ms")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None, help="keep the seeded database here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            started = time.perf_counter()
            seed(path, args.candidates)
            print(f"seeded {args.candidates:,} candidates in {time.perf_counter() - started:.1f}s")
        with Store(path) as store:
            pending = QueueQuery()
            first = timed("first page (50)", lambda: store.candidates.queue_page(pending, 51))
            # walk 1,000 pages deep by cursor, then time the page there
            cursor_row = store.db.execute(
                "SELECT score, id FROM candidates WHERE status = 'pending' "
                "ORDER BY score DESC, id LIMIT 1 OFFSET 50000").fetchone()
            after = (cursor_row[0], cursor_row[1])
            timed("page at entry 50,000 (keyset)", lambda: store.candidates.queue_page(pending, 51, after))
            timed("previous page at entry 50,000",
                  lambda: store.candidates.queue_page(pending, 51, None, after))
            timed("filter vendor=zte", lambda: store.candidates.queue_page(QueueQuery(vendor="zte"), 51))
            timed("filter vendor+country", lambda: store.candidates.queue_page(
                QueueQuery(vendor="zte", country="KE"), 51))
            timed("filter deal_type=safe_city", lambda: store.candidates.queue_page(
                QueueQuery(deal_type="safe_city"), 51))
            timed("filter source+date range", lambda: store.candidates.queue_page(
                QueueQuery(source="wire", date_from="2025-03-01", date_to="2025-03-31"), 51))
            timed("status all (first page)", lambda: store.candidates.queue_page(QueueQuery(status=None), 51))
            timed("status all (at entry 50,000)", lambda: store.candidates.queue_page(
                QueueQuery(status=None), 51, after))
            timed("counts per status", lambda: store.candidates.queue_status_counts(QueueQuery()))
            timed("counts per status, source filter", lambda: store.candidates.queue_status_counts(
                QueueQuery(source="wire")))
            timed("distinct countries", store.candidates.candidate_countries)
            assert isinstance(first, list) and len(first) == 51
        web_page(path)
    segments()
    return 0


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


def web_page(path: Path) -> None:
    """The whole GET /queue round trip through the app (TestClient, no network)."""
    from starlette.testclient import TestClient

    from pipeline.config import load_config
    from pipeline.review import accounts
    from pipeline.review.web import create_app

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
    cursor = page.text.split('" rel="next"')[0].rsplit('href="', 1)[1].replace("&amp;", "&")
    timed("GET /queue (next page, whole request)", lambda: client.get(cursor))
    timed("GET /queue?vendor=zte&deal_type=cloud", lambda: client.get("/queue?vendor=zte&deal_type=cloud"))


if __name__ == "__main__":
    sys.exit(main())
