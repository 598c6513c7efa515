"""Reports in real headless Chromium (Debian's, through Playwright): a reviewer confirms an
aggregate claim, follows the confirmation's message to its report, and sees the counts, the
outlet and the candidates it came from; the reports list shows it (filtered by a vendor's name
too, and downloaded as the export writes it) and the deals page does not; a rejected claim's
report says it was withdrawn, when and by whom, and comes back whole on undo."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from webfixtures import add_reviewers, browser_log_in, seed_review_queue, story

from pipeline.config import load_config
from pipeline.review import decisions
from pipeline.review.reports import ClaimReader, export_reports
from pipeline.review.web import create_app, running_server
from pipeline.review.web.pages import Pages
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
    assert response.status == 400
    assert "vendor: 'nobody' is no watchlist vendor; the vendor ids: " in page.inner_text("main")
    response = page.goto(f"{site.base}/reports?format=pdf")
    assert response.status == 400 and "format: 'pdf' is no download format" in \
        page.inner_text("main")


def confirm_aggregate(site: SimpleNamespace, reviewer: str = "alice") -> None:
    with Store(site.db) as store:
        decisions.decide(store, site.ids["aggregate"], "confirm", reviewer,
                         claims=ClaimReader(load_config()))


def test_a_vendors_name_filters_the_reports_and_the_downloads_are_the_export(browser,
                                                                            site) -> None:
    confirm_aggregate(site)
    page = open_page(browser)
    browser_log_in(page, site.base, "alice", "/reports?vendor=Huawei")  # its name, as typed
    assert page.locator("table.reports tbody tr").all_inner_texts()[0].startswith("rp-000001")
    assert "1 aggregate claim naming Huawei" in page.inner_text("h1")
    assert page.get_attribute("#download-csv", "href") == "/reports?vendor=huawei&format=csv"

    request = page.context.request  # the logged-in browser's cookies
    got = request.get(site.base + page.get_attribute("#download-csv", "href"))
    assert got.status == 200
    assert re.fullmatch(r'attachment; filename="dealwatch-reports-\d{4}-\d\d-\d\d\.csv"',
                        got.headers["content-disposition"])
    with Store(site.db) as store:
        exported_csv, _ = export_reports(store, "csv", "huawei")
        exported_json, _ = export_reports(store, "json")
    assert got.body() == exported_csv  # what `dealwatch reports export` writes
    rows = list(csv.DictReader(io.StringIO(got.text())))
    assert [(r["report_id"], r["counts"]) for r in rows] == [
        ("rp-000001", "70 deals; 41 countries")]
    got = request.get(site.base + page.get_attribute("#download-json", "href"))
    assert got.headers["content-disposition"].endswith('.json"')
    assert got.json() == json.loads(exported_json)
    assert page.context.request.get(f"{site.base}/reports?vendor=zte&format=json").json() == []


def test_a_withdrawn_report_says_so_and_undo_brings_it_back(browser, site) -> None:
    confirm_aggregate(site)
    page = open_page(browser)
    browser_log_in(page, site.base, "alice", "/report/rp-000001")
    agg = site.ids["aggregate"]
    page.click(f'.sources a[href="/candidate/{agg}"]')
    page.wait_for_url(f"{site.base}/candidate/{agg}")
    page.select_option("#reason", "not_a_deal")
    page.click("#btn-reject")
    page.wait_for_selector(".flash-ok")

    response = page.goto(f"{site.base}/report/rp-000001")
    assert response.status == 200  # the record links point to, saying it was withdrawn
    assert page.title().startswith("rp-000001 (withdrawn) ")
    notice = page.inner_text("#report-withdrawn")
    assert notice.startswith("Withdrawn ") and f"alice rejected #{agg} (not_a_deal)" in notice
    assert page.get_attribute("#report-withdrawn a", "href") == f"/candidate/{agg}"
    assert page.inner_text("#report-claim").strip() == CLAIM  # the claim it made, still shown
    page.goto(f"{site.base}/reports")
    assert "No reports yet" in page.inner_text("main")

    with Store(site.db) as store:
        decisions.undo(store, "alice", ClaimReader(load_config()))
    page.goto(f"{site.base}/report/rp-000001")
    assert page.locator("#report-withdrawn").count() == 0
    assert "Confirmed\nby alice" in page.inner_text("main")
    assert len(page.locator(".sources li").all_inner_texts()) == 2


def test_any_page_links_the_records_its_messages_name() -> None:
    # base.html's flash messages use the filter: Pages alone must render every page
    pages = Pages(load_config())
    html = pages.render(None, "error.html", title="Gone", message="nothing here").body.decode()
    assert "nothing here" in html
    linked = pages.env.filters["linked_names"]("filed as report rp-000001, not dw-000002 <b>")
    assert str(linked) == ('filed as report <a href="/report/rp-000001">rp-000001</a>, not '
                           '<a href="/deal/dw-000002">dw-000002</a> &lt;b&gt;')
