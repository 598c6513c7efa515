"""Sorting the review queue (score, date, vendor, country, stage; either way): keyset pages
that carry the sort key give every entry exactly once, in order, forwards and back, on the web
page as in storage; an unknown key is refused; the queue downloads as CSV or JSON. What the
queue page counts ("51–100 of 1,234", per status, hidden) is right, cheap, and right again the
moment anyone decides something. The orders and pages run on SQLite and PostgreSQL; each
backend's planner is shown to walk the order's index without sorting (SQLite's EXPLAIN QUERY
PLAN, PostgreSQL's EXPLAIN (FORMAT JSON)). The web pages run on SQLite here (tests/test_web.py
has the app)."""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from schemafixtures import old_database
from starlette.testclient import TestClient
from webfixtures import PASSWORD, add_reviewers, seed_review_queue, story

from models.config import STAGES
from models.records import Article
from models.registry import QueueEntry
from pipeline.config import load_config
from pipeline.review import decisions
from pipeline.review.views import QUEUE_JSON_FIELDS
from pipeline.review.web import create_app, format_cursor, parse_cursor
from pipeline.review.web.queue import ViewCounts
from pipeline.storage import MIGRATIONS, QueueQuery, Store
from pipeline.storage.queue import cursor_of

VENDORS = ["zte", "huawei", None, "dahua", "hikvision"]
COUNTRIES = ["KE", "UG", None, "RS", "BO", "ET"]
STAGE_CYCLE = ["signed", "mou", None, "completed", "proposed", "unknown", "awarded"]

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


@pytest.fixture
def site(store_location: str, backend: str) -> SimpleNamespace:
    """The seeded queue and 60 more candidates whose vendors, countries, stages, dates and
    scores repeat (ties) and are sometimes missing; a few of them decided. The web app on
    SQLite only (tests marked so)."""
    with Store(store_location) as store:
        ids = seed_review_queue(store)
        for i in range(60):
            sentence = f"Deal number {i} was signed with a ministry."
            ids[f"n{i}"] = story(
                store, 100 + i, f"Lead {i}. {sentence}", sentence, vendor=VENDORS[i % 5],
                country=COUNTRIES[i % 6], stage=STAGE_CYCLE[i % 7], score=[0.9, 0.8, 0.7][i % 3],
                published=None if i % 11 == 0 else f"2025-{1 + i % 12:02d}-{1 + i % 3:02d}")
        for i in (3, 17, 40):
            decisions.decide(store, ids[f"n{i}"], "reject", "bob", reason="not_a_deal")
        add_reviewers(store, "alice")
    app = (create_app(load_config(), Path(store_location), secure_cookies=False)
           if backend == "sqlite" else None)
    return SimpleNamespace(ids=ids, db=store_location, app=app)


def value(entry: QueueEntry, sort: str) -> Any:
    if sort == "stage":
        return STAGES.index(entry.stage) if entry.stage in STAGES else None
    return {"score": entry.score, "date": entry.published, "vendor": entry.vendor,
            "country": entry.country}[sort]


def expected_order(entries: list[QueueEntry], sort: str, descending: bool) -> list[int]:
    """What the order should be, worked out apart from the code under test: values in order,
    the missing ones last either way, ties by id."""
    def compare(a: QueueEntry, b: QueueEntry) -> int:
        x, y = value(a, sort), value(b, sort)
        if (x is None) != (y is None):
            return 1 if x is None else -1
        if x is not None and x != y:
            return (-1 if x < y else 1) * (-1 if descending else 1)
        return -1 if a.id < b.id else 1

    return [e.id for e in sorted(entries, key=functools.cmp_to_key(compare))]


ORDERS = [(sort, desc) for sort in ("score", "date", "vendor", "country", "stage")
          for desc in (False, True)]


def add_hidden(store: Store) -> list[int]:
    """Candidates scored below the queue threshold (out of the default view), some of them
    without a vendor, a country, a stage or a date, one the copy of another's story."""
    ids = []
    for i in range(9):
        sentence = f"Hidden deal {i} was signed with a ministry."
        ids.append(story(store, 300 + i, f"Lead {i}. {sentence}", sentence,
                         vendor=VENDORS[i % 5], country=COUNTRIES[i % 6],
                         stage=STAGE_CYCLE[i % 7], score=[0.3, 0.2][i % 2], queued=False,
                         published=None if i % 4 == 0 else f"2025-{1 + i:02d}-02"))
    sentence = "Hidden deal 0 was signed with a ministry."
    ids.append(story(store, 320, f"Copy. {sentence}", sentence, vendor=VENDORS[0],
                     country=COUNTRIES[0], score=0.25, queued=False, cluster_of=ids[0]))
    return ids


@pytest.mark.parametrize(("sort", "descending"), ORDERS)
@pytest.mark.parametrize(("status", "hidden"), [("pending", False), (None, False),
                                                ("pending", True), (None, True)])
def test_pages_give_every_entry_once_in_order_both_ways(site, sort, descending, status,
                                                        hidden) -> None:
    query = QueueQuery(status=status, sort=sort, descending=descending, hidden=hidden)
    with Store(site.db) as store:
        below = add_hidden(store)
        everything = store.candidates.queue_page(QueueQuery(status=status, hidden=hidden), 10_000)
        assert bool(set(below) & {e.id for e in everything}) == hidden
        expected = expected_order(everything, sort, descending)
        seen: list[int] = []
        page = store.candidates.queue_page(query, 7)
        while page:
            seen += [e.id for e in page]
            page = store.candidates.queue_page(query, 7, after=cursor_of(page[-1], query))
        assert seen == expected and len(set(seen)) == len(everything)
        # back from the end, and "n of N": how many come before each entry
        last = next(e for e in everything if e.id == expected[-1])
        back = [last.id]
        page = store.candidates.queue_page(query, 7, before=cursor_of(last, query))
        while page:
            back = [e.id for e in page] + back
            page = store.candidates.queue_page(query, 7, before=cursor_of(page[0], query))
        assert back == expected
        for at in (0, 13, len(expected) - 1):
            entry = next(e for e in everything if e.id == expected[at])
            assert store.candidates.queue_count(query, before=cursor_of(entry, query)) == at
        assert [e.id for e in store.candidates.queue(query)] == expected


def test_cursors_carry_their_sort_key(site) -> None:
    with Store(site.db) as store:
        entries = store.candidates.queue_page(QueueQuery(), 1000)
    by_vendor = QueueQuery(sort="vendor")
    missing = next(e for e in entries if e.vendor is None)
    assert format_cursor(missing, by_vendor) == f"vendor:null:{missing.id}"
    for entry in entries:
        for sort in ("score", "date", "vendor", "country", "stage"):
            query = QueueQuery(sort=sort)
            assert parse_cursor(format_cursor(entry, query), query) == cursor_of(entry, query)
    # a cursor of another order, or of the wrong type, is no cursor
    assert parse_cursor('vendor:"zte":12', QueueQuery(sort="country")) is None
    assert parse_cursor("0.5:12", by_vendor) is None
    assert parse_cursor("stage:\"signed\":12", QueueQuery(sort="stage")) is None
    assert parse_cursor("stage:2:12", QueueQuery(sort="stage")) == (2, 12)
    # a rank no stage has is no cursor: a number past 64 bits made SQLite raise OverflowError
    assert parse_cursor("stage:1000000000000000000000:5", QueueQuery(sort="stage")) is None
    assert parse_cursor("stage:99:5", QueueQuery(sort="stage")) is None
    assert parse_cursor("vendor:[[[[[[:1", by_vendor) is None
    assert parse_cursor("vendor:" + "[" * 100_000 + ":1", by_vendor) is None


def logged_in(site: SimpleNamespace) -> TestClient:
    client = TestClient(site.app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    assert client.post("/login", data={"name": "alice", "password": PASSWORD,
                                       "csrf_token": token.group(1)}).status_code == 303
    return client


def rows(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-id="(\d+)"', html)]


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
@pytest.mark.parametrize(("sort", "order"), [("vendor", "desc"), ("date", "asc"),
                                             ("stage", "desc")])
def test_the_web_queue_pages_through_a_sorted_queue(site, sort, order) -> None:
    with Store(site.db) as store:
        expected = expected_order(store.candidates.queue_page(QueueQuery(), 10_000), sort,
                                  order == "desc")
    client = logged_in(site)
    seen: list[int] = []
    pages: list[str] = []
    url: str | None = f"/queue?sort={sort}&order={order}"
    while url:
        html = client.get(url).text
        pages.append(html)
        assert f"{len(seen) + 1}–{len(seen) + len(rows(html))} of {len(expected)}" in html
        seen += rows(html)
        url = link(html, "next")
        assert url is None or (f"sort={sort}" in url and f"after={sort}%3A" in url)
    assert seen == expected and len(pages) == 2
    back = link(pages[-1], "prev")
    assert back is not None and rows(client.get(back).text) == expected[:50]


@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
def test_headers_sort_and_say_so(site) -> None:
    client = logged_in(site)
    html = client.get("/queue").text
    assert re.search(r'aria-sort="descending"><a href="/queue\?sort=score&amp;order=asc"', html)
    assert "best score first" in html
    html = client.get("/queue?sort=country").text
    assert 'aria-sort="ascending">Candidate:' in html
    assert 'href="/queue?sort=country&amp;order=desc"' in html  # clicked again: the other way
    assert 'href="/queue?sort=date&amp;order=desc"' in html  # a date sorts newest first
    assert "by country code, A–Z" in html


@pytest.mark.parametrize(("url", "said"), [
    ("/queue?sort=price", "sort: &#39;price&#39; is no sort key: use one of score, date, vendor, "
                          "country, stage."),
    ("/queue?order=sideways", "order: &#39;sideways&#39; is no order: use one of asc, desc."),
    ("/queue?format=xlsx", "format: &#39;xlsx&#39; is no download format: use one of csv, json."),
])
@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
def test_an_unknown_sort_order_or_format_is_a_400(site, url, said) -> None:
    page = logged_in(site).get(url)
    assert page.status_code == 400 and said in page.text


@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
def test_the_queue_downloads_its_current_view(site) -> None:
    client = logged_in(site)
    with Store(site.db) as store:
        query = QueueQuery(vendor="zte", sort="date", descending=True)
        expected = store.candidates.queue(query)
    html = client.get("/queue?vendor=zte&sort=date").text
    csv_url = re.search(r'href="([^"]+)" id="download-csv"', html).group(1).replace("&amp;", "&")
    got = client.get(csv_url)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="dealwatch-queue-\d{4}-\d\d-\d\d\.csv"',
                        got.headers["content-disposition"])
    table = list(csv.DictReader(io.StringIO(got.text)))
    assert list(table[0]) == [*QUEUE_JSON_FIELDS, "matches"]
    assert [int(r["id"]) for r in table] == [e.id for e in expected] and len(table) > 10
    assert {r["vendor"] for r in table} == {"zte"}
    json_url = csv_url.replace("format=csv", "format=json")
    listed = client.get(json_url).json()
    assert [r["id"] for r in listed] == [e.id for e in expected]
    assert list(listed[0]) == [*QUEUE_JSON_FIELDS, "matches"]
    # logged out: no download
    assert TestClient(site.app, follow_redirects=False).get(json_url).status_code in (302, 303)


@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
def test_the_queue_download_says_which_deal_a_candidate_matches(site) -> None:
    sentence = "ZTE will extend Ethio Telecom's 5G network to Adama."
    with Store(site.db) as store:
        filed = decisions.decide(store, site.ids["zte-ET"], "confirm", "alice")
        deal = store.registry.deal(filed.deal_id)
        again = story(store, 200, f"ADDIS ABABA - {sentence}", sentence, vendor="zte",
                      country="ET", counterpart="Ethio Telecom", counterpart_type="soe",
                      deal_type="telecom_network")
    client = logged_in(site)
    listed = client.get("/queue?vendor=zte&format=json").json()
    matches = {r["id"]: r["matches"] for r in listed}
    assert matches[again] == deal.deal_id  # what the queue page shows on its row
    assert matches[site.ids["zte-BO"]] is None  # no deal of ZTE's in Bolivia
    table = list(csv.DictReader(io.StringIO(client.get("/queue?vendor=zte&format=csv").text)))
    assert {int(r["id"]): r["matches"] for r in table} == {
        ident: match or "" for ident, match in matches.items()}


def test_the_queue_and_the_deals_list_rank_stages_alike() -> None:
    from models.config import STAGE_RANK
    from models.registry import Deal, Triangulation
    from pipeline.review.views import DEAL_SORTS, WeighedDeal
    from pipeline.storage.queue import QUEUE_SORTS

    assert sorted(STAGE_RANK, key=STAGE_RANK.__getitem__) == list(STAGES)  # a deal's life
    weighed = Triangulation(1, 1, False, None, None, "C")
    for stage in STAGES:
        entry = QueueEntry(id=1, article_id=1, kind="deal", score=0.5, sentence="", stage=stage)
        deal = WeighedDeal(Deal(1, "dw-000001", stage=stage), weighed)
        assert QUEUE_SORTS["stage"].value(entry) == DEAL_SORTS["stage"](deal) == STAGE_RANK[stage]


# --- what the queue page counts ---------------------------------------------------------------


@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
@pytest.mark.parametrize("query", [QueueQuery(), QueueQuery(hidden=True), QueueQuery(status=None),
                                   QueueQuery(vendor="zte"), QueueQuery(source="wire")])
def test_the_counts_per_status_and_hidden_are_one_grouped_query(site, query) -> None:
    with Store(site.db) as store:
        add_hidden(store)
        store.db.execute("INSERT INTO sources (id, kind, urls, config, first_seen, updated_at) "
                         "VALUES ('wire', 'rss', '[]', '{}', '2026-01-01', '2026-01-01')")
        store.db.execute("UPDATE articles SET source_id = 'wire' WHERE id % 3 = 0")
        every = store.candidates.queue_page(QueueQuery(status=None, hidden=True), 10_000)
        copies = {i for e in every for i in store.candidates.cluster_group(e)}
        candidates = [store.candidates.candidate(i) for i in sorted(copies)]
        statements: list[str] = []
        store.db.conn.set_trace_callback(statements.append)
        counts = store.candidates.queue_counts(query)
        store.db.conn.set_trace_callback(None)
        sources = dict(store.db.execute("SELECT id, source_id FROM articles").fetchall())
        plan = " | ".join(r[3] for r in store.db.execute("EXPLAIN QUERY PLAN " + statements[0]))
    # worked out from every candidate apart from the code under test
    kept = [c for c in candidates if c is not None
            and (query.vendor is None or c.vendor == query.vendor)
            and (query.source is None or sources[c.article_id] == query.source)]
    below = [c for c in kept if c.status == "pending" and not c.queued]
    shown = [c for c in kept if query.hidden or c not in below]
    assert counts.statuses == {status: sum(c.status == status for c in shown)
                               for status in {c.status for c in shown}}
    assert counts.hidden == (0 if query.hidden else len(below)) and (query.hidden or below)
    assert len(statements) == 1  # per status and hidden at once
    if query.source is None:  # nothing on the article: an index counts it alone
        assert "COVERING INDEX" in plan, plan


def page_counts(html: str) -> tuple[int, dict[str, int], int]:
    """What the queue page says: its entries ("1–50 of N"), the count on each status tab and the
    hidden note's count (0 without one)."""
    found = re.search(r'id="page-range">\d+–\d+ of ([\d,]+)', html)
    assert found, html
    tabs = {status.lower(): int(n.replace(",", "")) for status, n in re.findall(
        r'class="tab tab-\w+[^"]*">(\w+) <span class="count">([\d,]+)</span>', html)}
    hidden = re.search(r'id="hidden-note">([\d,]+) pending', html)
    return (int(found.group(1).replace(",", "")), tabs,
            int(hidden.group(1).replace(",", "")) if hidden else 0)


@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
def test_the_queue_page_counts_right_after_any_decision(site) -> None:
    """The counts are kept a while between page loads; a decision, an undo, one taken elsewhere
    (the CLI, another server process) and a new candidate each show at once."""
    with Store(site.db) as store:
        hidden = len(add_hidden(store)) - 1  # the copy of a story counts as a candidate of its own
    client = logged_in(site)
    before = page_counts(client.get("/queue").text)
    assert before[2] == hidden + 1
    top = site.ids["n1"]  # a story of one copy, on the first page
    assert top in rows(client.get("/queue").text)
    with Store(site.db) as store:
        entry = store.candidates.candidate(top)
        assert entry is not None and len(store.candidates.cluster_group(entry)) == 1
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">',
                      client.get("/queue").text).group(1)
    assert client.post(f"/candidate/{top}/decide", data={
        "csrf_token": token, "decision": "reject", "reason": "not_a_deal",
        "version": entry.version, "return": "queue"}).status_code == 303
    after = page_counts(client.get("/queue").text)
    assert after[0] == before[0] - 1
    assert after[1]["pending"] == before[1]["pending"] - 1
    assert after[1]["rejected"] == before[1]["rejected"] + 1
    assert top not in rows(client.get("/queue").text)
    # undone in the app: back as it was
    assert client.post("/undo", data={"csrf_token": token, "back": "/queue"}).status_code == 303
    assert page_counts(client.get("/queue").text) == before
    # decided elsewhere, as the CLI would
    with Store(site.db) as store:
        decisions.decide(store, top, "defer", "bob")
    elsewhere = page_counts(client.get("/queue").text)
    assert elsewhere[0] == before[0] - 1 and elsewhere[1]["deferred"] == 1
    # processing adds a candidate
    with Store(site.db) as store:
        story(store, 500, "Lead. A new deal was signed.", "A new deal was signed.", score=0.95)
    assert page_counts(client.get("/queue").text)[0] == before[0]


@pytest.mark.backends("sqlite")  # the web app, or SQLite's own trace and plan
def test_a_views_counts_are_kept_until_something_changes(site) -> None:
    counted: list[str] = []
    kept = ViewCounts()
    with Store(site.db) as store:
        store.db.conn.set_trace_callback(counted.append)
        first = kept.of(store, QueueQuery())
        taken = sum("COUNT(*)" in sql for sql in counted)
        assert taken >= 2  # the entries, and the counts per status
        assert kept.of(store, QueueQuery(sort="vendor")) == first  # another order: the same view
        assert kept.of(store, QueueQuery()) == first
        assert sum("COUNT(*)" in sql for sql in counted) == taken
        decisions.decide(store, site.ids["n0"], "defer", "bob")
        again = kept.of(store, QueueQuery())
        assert sum("COUNT(*)" in sql for sql in counted) > taken
        assert again[0] == first[0] - 1
        store.db.conn.set_trace_callback(None)
    with Store(site.db) as store:  # a count kept no time is taken every time
        fresh = ViewCounts(seconds=0)
        fresh.of(store, QueueQuery())
        counted.clear()
        store.db.conn.set_trace_callback(counted.append)
        fresh.of(store, QueueQuery())
        store.db.conn.set_trace_callback(None)
        assert any("COUNT(*)" in sql for sql in counted)


def test_a_new_date_for_an_article_moves_its_candidates_in_the_date_order(site) -> None:
    url = "https://nairobi-wire.test/news/105"
    with Store(site.db) as store:
        moved = site.ids["n5"]
        assert store.candidates.queue_page(QueueQuery(sort="date"), 1)[0].id != moved
        text = store.db.execute("SELECT text FROM articles WHERE canonical_url = ?",
                                [url]).fetchone()[0]
        store.articles.save_article(None, None, Article(
            url=url, canonical_url=url, text=text, text_hash="text-105", title="Story 105",
            published="2031-01-01", site="nairobi-wire.test", language="en"))
        newest = store.candidates.queue_page(QueueQuery(sort="date"), 1)[0]
        assert (newest.id, newest.published) == (moved, "2031-01-01")
        # every entry's date is its article's
        dates = dict(store.db.execute("SELECT id, published FROM articles").fetchall())
        for entry in store.candidates.queue_page(QueueQuery(status=None, hidden=True), 10_000):
            assert entry.published == dates[entry.article_id]


def test_a_database_from_before_the_queue_indexes_gets_its_dates(db_path) -> None:
    with old_database(db_path, 14) as old:
        for n, published in enumerate(("2025-05-01", None, "2025-07-01"), 1):
            old.db.execute(
                "INSERT INTO articles (id, canonical_url, url, title, published, text, text_hash, "
                "extracted_at) VALUES (?, ?, ?, 'Story', ?, 'Text.', ?, '2026-01-01T00:00:00Z')",
                [n, f"https://news.test/{n}", f"https://news.test/{n}", published, f"h{n}"])
            old.db.execute(
                "INSERT INTO candidates (article_id, key, kind, score, sentence, created_at, "
                "updated_at) VALUES (?, ?, 'deal', 0.5, 'Text.', '2026-01-01', '2026-01-01')",
                [n, f"k{n}"])
        old.db.conn.commit()
    with Store(db_path) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
        newest_first = store.candidates.queue_page(QueueQuery(sort="date"), 10)
        assert [(e.article_id, e.published) for e in newest_first] == [
            (3, "2025-07-01"), (1, "2025-05-01"), (2, None)]


# --- PostgreSQL's plans ------------------------------------------------------------------------


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


@pytest.fixture
def big_queue(store: Store) -> Store:
    """20,000 candidates (a tenth of the stories syndicated twice, a few values missing, a few
    decided or below the threshold), analysed: enough rows that the planner weighs an index
    against a sort as it would on a real queue, instead of reading a small table whole."""
    db = store.database
    db.execute(
        "INSERT INTO articles (id, canonical_url, url, text, text_hash, extracted_at, cluster_id, "
        "published) SELECT g, 'https://news.test/' || g, 'https://news.test/' || g, "
        "'Story ' || g, 'h' || g, '2026-01-01', CASE WHEN g % 10 = 1 THEN g - 1 ELSE g END, "
        "CASE WHEN g % 13 = 0 THEN NULL ELSE '2025-' || lpad((1 + g % 12)::text, 2, '0') || "
        "'-01' END FROM generate_series(1, 20000) AS g")
    db.execute(
        "INSERT INTO candidates (article_id, key, kind, vendor, country, stage, score, queued, "
        "sentence, status, published, created_at, updated_at) "
        "SELECT a.id, 'k' || a.id, 'deal', (ARRAY['zte', 'huawei', NULL, 'dahua'])[1 + a.id % 4], "
        "(ARRAY['KE', 'UG', 'RS', NULL, 'BO'])[1 + a.id % 5], "
        "(ARRAY['signed', 'mou', NULL, 'completed', 'proposed', 'awarded'])[1 + a.id % 6], "
        "(a.id * 7919 % 1000) / 1000.0, CASE WHEN a.id % 9 = 0 THEN 0 ELSE 1 END, 'Text.', "
        "CASE WHEN a.id % 17 = 0 THEN 'confirmed' ELSE 'pending' END, a.published, "
        "'2026-01-01', '2026-01-01' FROM articles a")
    db.execute("ANALYZE")
    return store


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize(("sort", "descending"), ORDERS)
def test_postgresql_walks_each_orders_index_without_sorting(big_queue, sort, descending) -> None:
    """A page in each order, either way (the first page, and the page before a cursor, which
    walks the index backwards), is read along `candidates_by_<order>[_desc]`: no Sort node, no
    candidate read whole. The entries without a value (ordered by id) are read along an index
    in id order too: that index, or the primary key when so many lack a value that filtering
    it is cheaper (as here, a quarter). On its own statistics: no planner setting is changed."""
    from pipeline.storage.queue import queue_walks

    store = big_queue
    query = QueueQuery(sort=sort, descending=descending)
    entries = store.candidates.queue_page(query, 500)
    assert len(entries) == 500
    index = f"candidates_by_{sort}{'_desc' if query.desc else ''}"
    pages = [(walk, False) for walk in queue_walks(query, "c")]  # valued, then missing values
    pages += [(walk, True) for walk in queue_walks(query, "c", before=cursor_of(entries[-1],
                                                                                query))]
    for walk, backwards in pages:
        sql, params = store.candidates._queue_sql(query, 1, "c.*, a.url", walk)
        plan = store.database.execute(
            f"EXPLAIN (FORMAT JSON) {sql} ORDER BY {walk.order} LIMIT ?", [*params, 51]).fetchone()[0]
        nodes = _plan_nodes((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
        assert not [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")], plan
        assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], plan
        missing = walk.order.startswith("c.id")
        names = {index, "candidates_pkey"} if missing else {index}
        walked = [n for n in nodes if n.get("Index Name") in names
                  and n["Node Type"] in ("Index Scan", "Index Only Scan")]
        assert walked, (walk, [n.get("Index Name") for n in nodes])
        assert walked[0]["Scan Direction"] == ("Backward" if backwards else "Forward")
