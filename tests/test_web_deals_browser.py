"""Correcting the registry in real headless Chromium (Debian's, through Playwright): a merge is
shown and confirmed first (and warns harder across countries), undo takes it back, and a deal's
fields are edited on its page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from webfixtures import add_reviewers, browser_log_in, seed_review_queue

from models.registry import Deal
from pipeline.config import load_config
from pipeline.review import decisions
from pipeline.review.web import create_app, running_server
from pipeline.storage import Store

TIMEOUT_MS = 10_000


@pytest.fixture
def site(db_path: Path) -> Iterator[SimpleNamespace]:
    """Three deals: dw-000001 and dw-000002 both Huawei's cloud work in Kenya (one deal recorded
    twice), dw-000003 Huawei's safe city in Uganda."""
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice", "bob")
        for name, edits in (("syndicated", {}), ("huawei-RS", {"country": "KE"}), ("xss", {})):
            decisions.decide(store, ids[name], "confirm", "bob", deal_id="new", edits=edits)
    # The real app: Secure, __Host- cookies (Chromium keeps them on http://127.0.0.1).
    with running_server(create_app(load_config(), db_path)) as base:
        yield SimpleNamespace(base=base, ids=ids, db=db_path)


@pytest.fixture
def dialogs() -> list[str]:
    return []


def open_page(browser: Any, dialogs: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    def on_dialog(dialog: Any) -> None:  # no step here may hang on a JS confirm() or alert()
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


def log_in(page: Any, site: SimpleNamespace, name: str, then: str) -> None:
    browser_log_in(page, site.base, name, then)


def deal(site: SimpleNamespace, deal_id: int) -> Deal:
    with Store(site.db) as store:
        found = store.registry.deal(deal_id)
    assert found is not None
    return found


def sources(site: SimpleNamespace, deal_id: int) -> list[int]:
    with Store(site.db) as store:
        return sorted(s.candidate_id for s in store.registry.deal_sources(deal_id))


def test_merge_is_confirmed_first_and_undo_takes_it_back(browser, site, dialogs) -> None:
    page = open_page(browser, dialogs)
    log_in(page, site, "alice", "/deals")
    page.click('a[href="/deal/dw-000001"]')
    page.wait_for_url(f"{site.base}/deal/dw-000001")
    page.select_option('#merge-form select[name="absorb"]', "dw-000002")  # offered: same place
    page.click("#merge-form button[type=submit]")
    # a page that says what will happen; nothing is merged yet
    page.wait_for_selector("#merge-confirm")
    assert page.inner_text("h1") == "Merge dw-000002 into dw-000001?"
    assert "its 1 source(s)" in page.inner_text("main")
    assert not page.is_visible("#merge-danger")  # one place, one vendor: no alarm
    assert deal(site, 2).merged_into is None
    page.click("#btn-merge")
    page.wait_for_url(f"{site.base}/deal/dw-000001")
    assert "Merged dw-000002 into dw-000001 (3 sources now)" in page.inner_text(".flashes")
    assert deal(site, 2).merged_into == 1
    assert sources(site, 1) == sorted([site.ids["syndicated"], site.ids["copy"],
                                       site.ids["huawei-RS"]])
    assert "the merge of dw-000002 into dw-000001" in page.inner_text("#corrections")

    page.keyboard.press("u")  # Undo: the last change was this merge
    page.wait_for_selector(".flash-ok >> text=Undone: the merge of dw-000002 into dw-000001.")
    assert deal(site, 2).merged_into is None
    assert sources(site, 2) == [site.ids["huawei-RS"]]
    assert "(undone)" in page.inner_text("#corrections")
    assert dialogs == []


def test_merge_across_countries_warns_harder(browser, site, dialogs) -> None:
    page = open_page(browser, dialogs)
    log_in(page, site, "alice", "/deal/dw-000001")
    assert page.locator('#merge-form option[value="dw-000003"]').count() == 0  # not offered
    page.fill('#merge-form input[name="other"]', "dw-000003")
    page.click("#merge-form button[type=submit]")
    page.wait_for_selector("#merge-danger")
    danger = page.inner_text("#merge-danger")
    assert "These look like two different deals." in danger
    assert "The countries differ: dw-000001 is in Kenya (KE), dw-000003 in Uganda (UG)." in danger
    assert page.get_attribute("#btn-merge", "class") == "btn danger"
    # the box must be ticked: the browser will not send the form without it
    page.click("#btn-merge")
    assert "/merge" in page.url and deal(site, 3).merged_into is None
    page.check("#merge-checked")
    page.click("#btn-merge")
    page.wait_for_url(f"{site.base}/deal/dw-000001")
    assert deal(site, 3).merged_into == 1
    # the deal's page offers to undo it
    assert "Your last registry correction: the merge of dw-000003 into dw-000001." in \
        page.inner_text("#undo-correction")
    page.click("#undo-correction button")
    page.wait_for_selector(".flash-ok >> text=Undone: the merge of dw-000003 into dw-000001.")
    assert deal(site, 3).merged_into is None
    assert not page.is_visible("#undo-correction")
    assert dialogs == []


def test_edit_a_deals_fields_on_its_page(browser, site, dialogs) -> None:
    page = open_page(browser, dialogs)
    log_in(page, site, "alice", "/deal/1")  # the bare number works too
    before = deal(site, 1)
    page.click("#deal-edit summary")
    page.select_option('#deal-edit-form select[name="stage"]', "completed")
    page.check('#deal-edit-form input[name="deal_types"][value="data_centre"]')
    page.fill('#deal-edit-form input[name="year"]', "2025")
    page.fill('#deal-edit-form textarea[name="notes"]', "Phase one handed over.")
    page.click("#btn-deal-save")
    page.wait_for_url(f"{site.base}/deal/dw-000001")
    flash = page.inner_text(".flash-ok")
    assert flash.startswith("Saved dw-000001:") and "stage: signed → completed" in flash
    edited = deal(site, 1)
    assert (edited.stage, edited.year, edited.notes) == ("completed", 2025, "Phase one handed over.")
    assert edited.deal_types == ["cloud", "data_centre"]
    assert (edited.value, edited.currency, edited.counterpart) == (
        before.value, before.currency, before.counterpart)  # untouched fields stay as stored
    assert "set by hand" in page.inner_text(".stages")
    assert "Phase one handed over." in page.inner_text("dl.fields")

    # a bad value is refused on the page, the form still holding what was typed
    page.click("#deal-edit summary")
    page.fill('#deal-edit-form input[name="country"]', "K3")
    page.fill('#deal-edit-form input[name="counterpart"]', "Ministry of ICT and Innovation")
    page.click("#btn-deal-save")
    page.wait_for_selector(".alert-error")
    assert "country: an ISO 3166-1 alpha-2 code such as KE, not 'K3'" in \
        page.inner_text(".alert-error")
    assert page.input_value('#deal-edit-form input[name="country"]') == "K3"
    assert page.input_value('#deal-edit-form input[name="counterpart"]') == \
        "Ministry of ICT and Innovation"
    assert deal(site, 1).country == "KE" and deal(site, 1).version == edited.version

    page.goto(f"{site.base}/deal/dw-000001")
    page.keyboard.press("u")  # takes the edit back
    page.wait_for_selector(".flash-ok >> text=Undone: the edit of dw-000001")
    restored = deal(site, 1)
    assert restored.fields() == before.fields() and restored.notes == before.notes
    assert dialogs == []
