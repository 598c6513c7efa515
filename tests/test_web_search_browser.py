"""Searching the queue in real headless Chromium: typing in the search box."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from webfixtures import add_reviewers, browser_log_in, seed_review_queue

from pipeline.config import load_config
from pipeline.review.web import create_app, running_server
from pipeline.storage import Store


@pytest.fixture
def site(db_path: Path) -> Iterator[SimpleNamespace]:
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice")
    with running_server(create_app(load_config(), db_path)) as base:
        yield SimpleNamespace(base=base, ids=ids)


def logged_in(browser: Any, site: SimpleNamespace) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    browser_log_in(page, site.base, "alice")
    return page


def rows(page: Any) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all("#queue tbody tr",
                                                      "trs => trs.map(t => t.dataset.id)")]


def test_typing_a_search_filters_the_queue(browser, site) -> None:
    page = logged_in(browser, site)
    assert len(rows(page)) == 7
    if not page.is_visible("#search"):  # folded where ::details-content is unknown
        page.click("#filters > summary")
    # "Kragujev" holds j and k, the queue's keys: typed into the box, they move nothing.
    page.click("#search")
    page.keyboard.type("Kragujev")
    assert page.url == f"{site.base}/queue"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.base}/queue?q=Kragujev&*")  # and the form's empty filters
    assert rows(page) == [site.ids["huawei-RS"]]
    assert page.input_value("#search") == "Kragujev"
    assert page.inner_text("#page-range").startswith("1–1 of 1")
    page.click(f'#queue tr[data-id="{site.ids["huawei-RS"]}"] a.open')
    page.wait_for_url(f"{site.base}/candidate/{site.ids['huawei-RS']}?q=Kragujev")
    assert not page.is_visible("#next-link") and not page.is_visible("#prev-link")

    page.goto(f"{site.base}/queue")
    if not page.is_visible("#search"):
        page.click("#filters > summary")
    page.fill("#search", 'disclosed" * -(')  # FTS syntax typed by a user breaks nothing
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.base}/queue?q=disclosed*")
    assert len(rows(page)) == 5 and page.inner_text("#page-range").startswith("1–5 of 5")
