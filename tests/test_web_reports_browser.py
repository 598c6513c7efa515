"""Reports in real headless Chromium (Debian's, through Playwright): a reviewer confirms an
aggregate claim, follows the confirmation's message to its report, and sees the counts, the
outlet and the candidates it came from; the reports list shows it and the deals page does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from webfixtures import add_reviewers, browser_log_in, seed_review_queue, story

from pipeline.config import load_config
from pipeline.review.web import create_app, running_server
from pipeline.storage import Store

TIMEOUT_MS = 10_000
CLAIM = ("A think tank counted 70 surveillance deals by Huawei in 41 countries across Africa "
         "since 2008.")
AGGREGATE = dict(kind="aggregate", country=None, counterpart=None, counterpart_type=None,
                 stage="unknown", deal_type="safe_city", score=0.99)


@pytest.fixture
def site(db_path: Path) -> Iterator[SimpleNamespace]:
    """The review queue, topped by an aggregate claim and its syndicated copy."""
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        ids["aggregate"] = story(store, 20, f"LONDON - {CLAIM}\n\nThe study is online.", CLAIM,
                                 title="Mapping surveillance exports", site="policy-review.test",
                                 **AGGREGATE)
        ids["aggregate-copy"] = story(store, 21, f"PARIS - {CLAIM}", CLAIM, site="relay.test",
                                      cluster_of=ids["aggregate"], **AGGREGATE)
        add_reviewers(store, "alice")
    with running_server(create_app(load_config(), db_path)) as base:
        yield SimpleNamespace(base=base, ids=ids, db=db_path)


def open_page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"unexpected dialog: {dialog.message}"))
    return page


def test_confirming_an_aggregate_files_a_report_the_reviewer_can_open(browser, site) -> None:
    page = open_page(browser)
    agg = site.ids["aggregate"]
    browser_log_in(page, site.base, "alice", f"/candidate/{agg}")
    assert page.inner_text("#report-note") == \
        "Confirm files this as a report (an aggregate claim), not a deal."
    assert page.locator(".deal-choice").count() == 0  # no deal to pick

    page.click("#btn-confirm")
    page.wait_for_selector(".flash-ok")
    assert f"#{agg} confirmed with 1 copy, filed as report rp-000001" in \
        page.inner_text(".flash-ok")
    page.click('.flash-ok a[href="/report/rp-000001"]')
    page.wait_for_url(f"{site.base}/report/rp-000001")

    assert page.inner_text("h1").startswith("rp-000001")
    assert page.inner_text("#report-claim").strip() == CLAIM
    assert page.locator("#report-claim mark.claim-count").all_inner_texts() == [
        "70 surveillance deals", "41 countries"]
    assert page.inner_text("#report-counts") == "70 deals, 41 countries"
    main = page.inner_text("main")
    assert "Scope\nAfrica" in main and "Confirmed\nby alice" in main
    assert page.inner_text("#report-outlet").startswith("policy-review.test")
    assert page.get_attribute("#report-outlet a", "href") == "https://policy-review.test/news/20"
    filed_from = page.locator(".sources li").all_inner_texts()
    assert [line.split(" · ")[0] for line in filed_from] == [
        f"#{agg}", f"#{site.ids['aggregate-copy']}"]

    page.goto(f"{site.base}/report/1")  # the bare number shows it too
    assert page.inner_text("h1").startswith("rp-000001")

    page.click('nav.nav a[href="/reports"]')
    page.wait_for_url(f"{site.base}/reports")
    row = page.locator("table.reports tbody tr")
    assert row.count() == 1
    assert row.first.inner_text().split("\t")[:7] == [
        "rp-000001", "Huawei", "70 deals · 41 countries", "70", "41", "Africa",
        "policy-review.test"]

    page.click('nav.nav a[href="/deals"]')
    page.wait_for_url(f"{site.base}/deals")
    deals = page.inner_text("main")
    assert "No deals yet" in deals and "rp-000001" not in deals


def test_an_unknown_report_or_vendor_is_refused(browser, site) -> None:
    page = open_page(browser)
    browser_log_in(page, site.base, "alice", "/reports")
    assert "No reports yet" in page.inner_text("main")
    response = page.goto(f"{site.base}/report/rp-000007")
    assert response.status == 404 and "There is no report rp-000007." in page.inner_text("main")
    response = page.goto(f"{site.base}/report/rp-x")
    assert response.status == 404
    response = page.goto(f"{site.base}/reports?vendor=nobody")
    assert response.status == 400 and "vendor=nobody is no watchlist vendor id" in \
        page.inner_text("main")
