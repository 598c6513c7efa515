"""Known deals in real headless Chromium (Debian's, through Playwright): a queue row of a known
deal's new candidate says "matches dw-000001 · known", its page offers that deal with its external
id, and confirming it files it there; the deal's page shows where it was imported from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from registryfixtures import story
from webfixtures import add_reviewers, browser_log_in

from pipeline.config import load_config
from pipeline.review.imports import import_known_deals
from pipeline.review.web import create_app, running_server
from pipeline.storage import Store

TIMEOUT_MS = 10_000


@pytest.fixture
def site(db_path: Path, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """dw-000001: a known deal (EX-1, Huawei's cloud for Kenya's Ministry of ICT); two pending
    candidates, one of that deal and one of a Ugandan safe city."""
    known = tmp_path / "known.csv"
    known.write_text("external_id,vendor,country,counterpart,deal_type,stage,source_url\n"
                     "EX-1,Huawei,KE,Ministry of ICT,cloud,signed,"
                     "https://registry.example.org/deals/1\n", encoding="utf-8")
    config = load_config()
    with Store(db_path) as store:
        import_known_deals(store, known, config.watchlist, "ann")
        cloud = story(store, "Kenya's Ministry of ICT and Huawei signed the contract for the "
                      "government cloud.", stage="signed", score=0.95)
        uganda = story(store, "Huawei will install CCTV cameras for the Uganda Police Force.",
                       country="UG", counterpart="Uganda Police Force", deal_type="safe_city",
                       score=0.9)
        add_reviewers(store, "alice")
    with running_server(create_app(config, db_path)) as base:
        yield SimpleNamespace(base=base, db=db_path, cloud=cloud, uganda=uganda)


def test_a_known_deals_candidate_says_so_and_confirms_into_it(browser: Any, site) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    browser_log_in(page, site.base, "alice", "/queue")

    cloud_row = page.locator(f'tr[data-id="{site.cloud}"]')
    mark = cloud_row.locator("a.tag-match")
    assert mark.inner_text() == "matches dw-000001 · known"
    assert mark.get_attribute("href") == "/deal/dw-000001"
    assert page.locator(f'tr[data-id="{site.uganda}"] a.tag-match').count() == 0

    cloud_row.locator("a.open").click()
    page.wait_for_url(f"{site.base}/candidate/{site.cloud}*")
    assert page.locator("#auto-deal").inner_text() == "dw-000001 (known · EX-1)"
    assert page.locator(".suggestion .tag-known").inner_text() == "known · EX-1"
    page.click("#btn-confirm")
    page.wait_for_url(lambda url: f"/candidate/{site.cloud}" not in url)
    assert "filed under deal dw-000001" in page.locator("body").inner_text()

    page.goto(f"{site.base}/deal/dw-000001")
    known = page.locator("#deal-known").inner_text()
    assert "EX-1" in known and "imported from known.csv" in known
    assert "https://registry.example.org/deals/1" in known
    assert "2 source(s), 2 independent" in page.locator("#deal-confidence").inner_text()
    context.close()
