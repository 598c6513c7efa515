"""Triangulation in real headless Chromium (Debian's, through Playwright): the deals page filters
by confidence, and marking a source official on a deal's page raises its grade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from registryfixtures import kenya_and_uganda
from webfixtures import add_reviewers, browser_log_in

from pipeline.config import load_config
from pipeline.review.web import create_app, running_server
from pipeline.storage import Store

TIMEOUT_MS = 10_000


@pytest.fixture
def site(db_path: Path) -> Iterator[SimpleNamespace]:
    """dw-000001: Kenya's cloud, reported by two outlets (B); dw-000002: Uganda's safe city,
    one outlet (C)."""
    with Store(db_path) as store:
        ids = kenya_and_uganda(store)
        add_reviewers(store, "alice")
    with running_server(create_app(load_config(), db_path)) as base:
        yield SimpleNamespace(base=base, ids=ids, db=db_path)


def test_filter_by_confidence_and_mark_a_source_official(browser: Any, site) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    browser_log_in(page, site.base, "alice", "/deals")
    rows = page.locator("table.deals tbody tr")
    assert rows.count() == 2

    page.click('nav.confidence-filter a:text-is("C")')
    page.wait_for_url(f"{site.base}/deals?confidence=C")
    assert rows.count() == 1 and "dw-000002" in rows.first.inner_text()

    page.click('nav.confidence-filter a:text-is("all")')
    page.click('a[href="/deal/dw-000001"]')
    assert "B" in page.locator("#deal-confidence").inner_text()
    page.click(f'button[form="official-{site.ids["signed"]}"][value="yes"]')
    page.wait_for_url(f"{site.base}/deal/dw-000001")
    confidence = page.locator("#deal-confidence").inner_text()
    assert confidence.startswith("A") and "an official statement among them" in confidence
    assert page.locator("li .tag.official").count() == 1

    page.goto(f"{site.base}/deals?confidence=A")
    assert rows.count() == 1 and "dw-000001" in rows.first.inner_text()
    context.close()
