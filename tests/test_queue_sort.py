"""Sorting the review queue (score, date, vendor, country, stage; either way): keyset pages
that carry the sort key give every entry exactly once, in order, forwards and back, on the web
page as in storage; an unknown key is refused; the queue downloads as CSV or JSON."""

from __future__ import annotations

import csv
import functools
import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient
from webfixtures import PASSWORD, add_reviewers, seed_review_queue, story

from models.config import STAGES
from models.registry import QueueEntry
from pipeline.config import load_config
from pipeline.review import decisions
from pipeline.review.views import QUEUE_JSON_FIELDS
from pipeline.review.web import create_app, format_cursor, parse_cursor
from pipeline.storage import QueueQuery, Store
from pipeline.storage.queue import cursor_of

VENDORS = ["zte", "huawei", None, "dahua", "hikvision"]
COUNTRIES = ["KE", "UG", None, "RS", "BO", "ET"]
STAGE_CYCLE = ["signed", "mou", None, "completed", "proposed", "unknown", "awarded"]


@pytest.fixture
def site(db_path: Path) -> SimpleNamespace:
    """The seeded queue and 60 more candidates whose vendors, countries, stages, dates and
    scores repeat (ties) and are sometimes missing; a few of them decided."""
    with Store(db_path) as store:
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
    return SimpleNamespace(ids=ids, db=db_path,
                           app=create_app(load_config(), db_path, secure_cookies=False))


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


@pytest.mark.parametrize(("sort", "descending"), ORDERS)
@pytest.mark.parametrize("status", ["pending", None])
def test_pages_give_every_entry_once_in_order_both_ways(site, sort, descending, status) -> None:
    query = QueueQuery(status=status, sort=sort, descending=descending)
    with Store(site.db) as store:
        everything = store.candidates.queue_page(QueueQuery(status=status), 10_000)
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
def test_an_unknown_sort_order_or_format_is_a_400(site, url, said) -> None:
    page = logged_in(site).get(url)
    assert page.status_code == 400 and said in page.text


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
