"""Finding deals and queue entries in real headless Chromium (Debian's, through Playwright): the
deals page's search, filters and sortable headers, its downloads of the current view, and the
queue's sortable headers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from registryfixtures import searchable_registry
from webfixtures import add_reviewers, browser_log_in, seed_review_queue

from pipeline.config import load_config
from pipeline.review.web import create_app, running_server
from pipeline.storage import QueueQuery, Store

TIMEOUT_MS = 10_000


@pytest.fixture
def site(db_path: Path) -> Iterator[SimpleNamespace]:
    """The four deals of registryfixtures.searchable_registry, and the queue of the web tests
    (seed_review_queue) beside them."""
    with Store(db_path) as store:
        queue = seed_review_queue(store)
        searchable_registry(store)
        add_reviewers(store, "alice")
    with running_server(create_app(load_config(), db_path)) as base:
        yield SimpleNamespace(base=base, db=db_path, queue=queue)


def logged_in(browser: Any, site: SimpleNamespace, then: str = "/deals") -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    browser_log_in(page, site.base, "alice", then)
    return page


def deals(page: Any) -> list[str]:
    return page.eval_on_selector_all("#deals tbody tr", "trs => trs.map(t => t.dataset.deal)")


def numbers(*ids: int) -> list[str]:
    return [f"dw-{n:06d}" for n in ids]


def aria_sort(page: Any) -> dict[str, str]:
    """Each sortable header's aria-sort, by its column's sort key."""
    return dict(page.eval_on_selector_all(
        "#deals thead th", "ths => ths.filter(th => th.querySelector('a.sort')).map(th => "
        "[th.querySelector('a.sort').dataset.sort, th.getAttribute('aria-sort')])"))


def test_the_search_box_narrows_the_deals(browser, site) -> None:
    page = logged_in(browser, site)
    assert deals(page) == numbers(1, 2, 3, 4)
    assert page.inner_text("#deal-count") == "4 of 4 deals"
    page.fill("#search", "Kampala")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/deals\?q=Kampala"))
    assert deals(page) == numbers(2)
    assert page.inner_text("#deal-count") == "1 of 4 deals"
    assert page.input_value("#search") == "Kampala"
    page.fill("#search", "no. 7/2024")  # no article has it: the deal's notes ("Tender no. …")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=no.\+7%2F2024"))
    assert deals(page) == numbers(3)


def test_a_header_sorts_and_sorts_back(browser, site) -> None:
    page = logged_in(browser, site)
    assert aria_sort(page)["deal_id"] == "ascending"
    page.click('#deals th a[data-sort="country"]')
    page.wait_for_url(f"{site.base}/deals?sort=country&order=asc")
    assert deals(page) == numbers(3, 1, 4, 2)  # Ethiopia, Kenya, South Africa, Uganda
    sorted_by = aria_sort(page)
    assert sorted_by.pop("country") == "ascending" and set(sorted_by.values()) == {"none"}
    assert page.inner_text('#deals th a[data-sort="country"]').endswith("↑")
    page.click('#deals th a[data-sort="country"]')
    page.wait_for_url(f"{site.base}/deals?sort=country&order=desc")
    assert deals(page) == numbers(2, 4, 1, 3)
    assert aria_sort(page)["country"] == "descending"
    assert page.inner_text('#deals th a[data-sort="country"]').endswith("↓")
    # another column: its own order, and the filters stay
    page.select_option('#filters select[name="vendor"]', "huawei")
    page.click('#filters button[type="submit"]')
    page.wait_for_url(re.compile(r"vendor=huawei.*sort=country&order=desc"))
    assert deals(page) == numbers(2, 4, 1)
    page.click('#deals th a[data-sort="independent"]')
    page.wait_for_url(re.compile(r"vendor=huawei&sort=independent&order=asc"))
    assert deals(page) == numbers(2, 4, 1)  # 1, 1, 2 outlets: ties by id


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("vendor", "hikvision", (4,)),
    ("vendor", "huawei", (1, 2, 4)),
    ("country", "KE", (1,)),
    ("deal_type", "safe_city", (2, 4)),
    ("stage", "awarded", (3,)),
    ("year", "2026", (4,)),
])
def test_each_filter_narrows_the_deals(browser, site, name, value, expected) -> None:
    page = logged_in(browser, site)
    page.select_option(f'#filters select[name="{name}"]', value)
    page.click('#filters button[type="submit"]')
    page.wait_for_url(re.compile(rf"{name}={value}"))
    assert deals(page) == numbers(*expected)
    assert page.inner_text("#deal-count") == f"{len(expected)} of 4 deals"
    assert page.eval_on_selector(f'#filters select[name="{name}"]', "s => s.value") == value


def test_the_confidence_filter_keeps_the_others(browser, site) -> None:
    page = logged_in(browser, site, "/deals?vendor=huawei")
    page.click('nav.confidence-filter a:text-is("C")')
    page.wait_for_url(f"{site.base}/deals?vendor=huawei&confidence=C")
    assert deals(page) == numbers(2, 4)


def test_the_downloads_give_the_rows_of_the_current_view(browser, site) -> None:
    page = logged_in(browser, site, "/deals?vendor=huawei&sort=last_reported&order=desc")
    shown = deals(page)
    assert shown == numbers(4, 1, 2)
    request = page.context.request  # the logged-in browser's cookies
    got = request.get(site.base + page.get_attribute("#download-csv", "href"))
    assert got.status == 200
    assert re.fullmatch(r'attachment; filename="dealwatch-deals-\d{4}-\d\d-\d\d\.csv"',
                        got.headers["content-disposition"])
    table = list(csv.DictReader(io.StringIO(got.text())))
    assert [r["deal_id"] for r in table] == shown
    assert [r["confidence"] for r in table] == ["C", "B", "C"]
    got = request.get(site.base + page.get_attribute("#download-json", "href"))
    assert got.headers["content-disposition"].endswith('.json"')
    records = got.json()
    assert [r["deal_id"] for r in records] == shown
    assert records[0]["vendors"] == ["hikvision", "huawei"]
    assert [s["published"] for s in records[1]["sources"]] == [
        "2025-01-10", "2025-01-11", "2025-06-02"]  # the Kenyan cloud's, with their evidence
    # a new browser, not logged in, gets the login page, not the deals
    outsider = browser.new_context()
    refused = outsider.request.get(site.base + "/deals?format=json", max_redirects=0)
    assert refused.status == 303 and "/login" in refused.headers["location"]
    outsider.close()


def test_an_unknown_value_is_a_page_naming_the_valid_ones(browser, site) -> None:
    page = logged_in(browser, site)
    response = page.goto(f"{site.base}/deals?stage=finished")
    assert response.status == 400
    assert "stage: 'finished' is no stage: use one of proposed, mou, signed" in \
        page.inner_text("main")
    response = page.goto(f"{site.base}/deals?sort=price")
    assert response.status == 400 and "use one of deal_id, vendor, country" in \
        page.inner_text("main")


def queue_rows(page: Any) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all("#queue tbody tr",
                                                      "trs => trs.map(t => t.dataset.id)")]


def test_the_queues_headers_sort_it(browser, site) -> None:
    page = logged_in(browser, site, "/queue")
    with Store(site.db) as store:
        entries = store.candidates.queue(QueueQuery())
    published = {e.id: e.published for e in entries}
    assert page.get_attribute("#queue th.col-score", "aria-sort") == "descending"
    page.click('#queue th a[data-sort="date"]')
    page.wait_for_url(f"{site.base}/queue?sort=date&order=desc")  # newest first
    newest = queue_rows(page)
    assert [published[i] for i in newest] == sorted(published.values(), reverse=True)
    assert page.get_attribute("#queue th.col-source", "aria-sort") == "descending"
    assert page.get_attribute("#queue th.col-score", "aria-sort") == "none"
    assert "newest first" in page.inner_text("#page-range")
    page.click('#queue th a[data-sort="date"]')
    page.wait_for_url(f"{site.base}/queue?sort=date&order=asc")
    assert [published[i] for i in queue_rows(page)] == sorted(published.values())
    assert page.get_attribute("#queue th.col-source", "aria-sort") == "ascending"
    # an entry opened from the sorted queue steps through it in that order (j: next)
    page.click(f'#queue tr[data-id="{queue_rows(page)[0]}"] a.open')
    page.wait_for_url(re.compile(r"/candidate/\d+\?.*sort=date&order=asc"))
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf"/candidate/{queue_rows_after(site, 0)}\?"))


def queue_rows_after(site: SimpleNamespace, at: int) -> int:
    with Store(site.db) as store:
        return store.candidates.queue(QueueQuery(sort="date", descending=False))[at + 1].id
