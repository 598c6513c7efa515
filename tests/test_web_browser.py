"""The review UI in real headless Chromium (Debian's, through Playwright): what a reviewer does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from webfixtures import (
    XSS_IMG,
    XSS_SCRIPT,
    add_reviewers,
    browser_log_in,
    seed_review_queue,
)

from models.registry import QueueEntry
from pipeline.config import load_config
from pipeline.review.web import create_app, running_server
from pipeline.storage import Store

TIMEOUT_MS = 10_000


@pytest.fixture
def site(db_path: Path) -> Iterator[SimpleNamespace]:
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice", "bob")
    # The real app: Secure, __Host- cookies (Chromium keeps them on http://127.0.0.1).
    with running_server(create_app(load_config(), db_path)) as base:
        yield SimpleNamespace(base=base, ids=ids, db=db_path)


@pytest.fixture
def dialogs() -> list[str]:
    return []


def open_page(browser: Any, site: SimpleNamespace, dialogs: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    def on_dialog(dialog: Any) -> None:  # an alert() would mean injected script ran
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


def log_in(page: Any, site: SimpleNamespace, name: str) -> None:
    browser_log_in(page, site.base, name)


def row(site: SimpleNamespace, name: str) -> QueueEntry:
    with Store(site.db) as store:
        found = store.candidates.candidate(site.ids[name])
    assert found is not None
    return found


def current_id(page: Any) -> int:
    return int(page.get_attribute("#queue tr.current", "data-id"))


def test_log_in_with_a_wrong_then_the_right_password(browser, site, dialogs) -> None:
    page = open_page(browser, site, dialogs)
    page.goto(f"{site.base}/login")
    page.fill('input[name="name"]', "alice")
    page.fill('input[name="password"]', "not-my-password")
    page.click('button[type="submit"]')
    assert "Wrong name or password" in page.inner_text(".alert-error")
    log_in(page, site, "alice")
    assert page.inner_text(".who .user") == "alice"
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Host-dealwatch")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert "Pending" in page.inner_text(".tabs")


def test_triage_with_the_keyboard(browser, site, dialogs) -> None:
    page = open_page(browser, site, dialogs)
    log_in(page, site, "alice")
    order = [int(i) for i in page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => r.dataset.id)")]
    assert current_id(page) == order[0]
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert current_id(page) == order[1]
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/candidate/{order[1]}"))

    # d: defer, and the next candidate opens
    page.keyboard.press("d")
    page.wait_for_url(re.compile(rf"/candidate/{order[2]}"))
    assert "deferred" in page.inner_text(".flashes")
    with Store(site.db) as store:
        assert store.candidates.candidate(order[1]).status == "deferred"

    # r then 2: reject as "wrong vendor"
    page.keyboard.press("r")
    assert page.is_visible("#reject-dialog")
    page.keyboard.press("2")
    page.wait_for_url(re.compile(rf"/candidate/{order[3]}"))
    with Store(site.db) as store:
        rejected = store.candidates.candidate(order[2])
    assert (rejected.status, rejected.reason, rejected.reviewed_by) == \
        ("rejected", "wrong_vendor", "alice")

    # u: undo the rejection; back on that candidate, pending again
    page.keyboard.press("u")
    page.wait_for_url(re.compile(rf"/candidate/{order[2]}"))
    assert "Undone" in page.inner_text(".flashes")
    with Store(site.db) as store:
        assert store.candidates.candidate(order[2]).status == "pending"
        assert [r.decision for r in store.reviews.reviews_of(order[2])] == ["reject", "undo"]
    assert "undo by alice" in page.inner_text(".history").lower()

    # j / k move between candidates; c confirms from the queue and the selection advances
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf"/candidate/{order[3]}"))
    page.keyboard.press("g")
    page.wait_for_url(re.compile(r"/queue"))
    listed = [int(i) for i in page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => r.dataset.id)")]
    chosen = current_id(page)  # the queue remembers where the reviewer was
    following = listed[listed.index(chosen) + 1]
    page.keyboard.press("c")
    page.wait_for_selector(".flash-ok")
    with Store(site.db) as store:
        assert store.candidates.candidate(chosen).status == "confirmed"
    assert current_id(page) == following
    assert dialogs == []


def test_bulk_reject_a_selection(browser, site, dialogs) -> None:
    page = open_page(browser, site, dialogs)
    log_in(page, site, "alice")
    page.keyboard.press("j")
    page.keyboard.press("x")
    picked = [current_id(page)]
    page.keyboard.press("j")
    page.keyboard.press("x")
    picked.append(current_id(page))
    assert page.inner_text("#picked-count") == "2"
    page.select_option("#bulk-reason", "aggregate")
    page.click("#bulk-form button[type=submit]")
    page.wait_for_selector(".flash-ok")
    assert "Rejected 2 candidate(s) as Aggregate" in page.inner_text(".flashes")
    with Store(site.db) as store:
        assert {store.candidates.candidate(i).status for i in picked} == {"rejected"}
    shown = page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => Number(r.dataset.id))")
    assert not set(picked) & set(shown)


def test_edit_then_confirm_files_a_deal_with_its_stage_history(browser, site, dialogs) -> None:
    page = open_page(browser, site, dialogs)
    log_in(page, site, "alice")
    page.goto(f"{site.base}/candidate/{site.ids['zte-ET']}")
    page.keyboard.press("e")
    assert page.evaluate("document.getElementById('edit').open")
    assert page.evaluate("document.activeElement.name") == "vendor"
    page.select_option('select[name="stage"]', "awarded")
    page.fill('input[name="value"]', "310000000")
    page.fill('input[name="currency"]', "USD")
    page.fill('input[name="year"]', "2025")
    page.fill('textarea[name="note"]', "contract value from the operator's annual report")
    page.click("#btn-edit-confirm")
    page.wait_for_selector(".flash-ok")
    confirmed = row(site, "zte-ET")
    assert (confirmed.status, confirmed.stage, confirmed.value, confirmed.currency,
            confirmed.year) == ("confirmed", "awarded", 310_000_000.0, "USD", 2025)
    page.goto(f"{site.base}/candidate/{site.ids['zte-ET']}")
    history = page.inner_text(".history")
    assert "confirm by alice" in history.lower() and "awarded" in history and "annual report" in history
    page.click(".summary a[href^='/deal/']")
    assert "Stage history" in page.inner_text("main")
    assert "awarded" in page.inner_text(".stages")
    assert "USD 310 m" in page.inner_text("main")


def test_cluster_sources_are_listed_and_decided_once(browser, site, dialogs) -> None:
    page = open_page(browser, site, dialogs)
    log_in(page, site, "alice")
    queue = page.inner_text("#queue")
    assert "+1 copy" in queue
    page.click(f'tr[data-id="{site.ids["syndicated"]}"] a.open')
    sources = page.inner_text(".sources")
    assert "2 copies of this story" in sources
    assert "https://nairobi-wire.test/news/1" in sources
    assert "https://coastline-wire.test/news/2" in sources
    assert "deciding decides" in page.inner_text(".group-note")
    assert page.inner_text("#evidence").startswith("Kenya")
    assert page.locator(".article-text .ent-vendor").first.inner_text() == "Huawei"
    page.keyboard.press("c")
    page.wait_for_selector(".flash-ok")
    assert "with 1 copy" in page.inner_text(".flashes")
    lead, copy = row(site, "syndicated"), row(site, "copy")
    assert lead.status == copy.status == "confirmed"
    assert lead.deal_id == copy.deal_id


def test_script_in_an_article_stays_inert_text(browser, site, dialogs) -> None:
    page = open_page(browser, site, dialogs)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else None)
    log_in(page, site, "alice")
    assert XSS_SCRIPT in page.inner_text("#queue")
    page.goto(f"{site.base}/candidate/{site.ids['xss']}")
    text = page.inner_text("#article-text")
    assert XSS_SCRIPT in text and XSS_IMG in text and "onmouseover=alert(2)" in text
    assert XSS_SCRIPT in page.inner_text("h1")
    assert page.locator("#article-text img, #article-text script, #article-text a").count() == 0
    assert page.locator("main img").count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    page.hover("#article-text")
    page.wait_for_timeout(300)
    assert dialogs == []
    assert violations == []  # nothing of ours needed an exception to the policy


def test_a_post_without_the_csrf_token_is_refused(browser, site, dialogs) -> None:
    page = open_page(browser, site, dialogs)
    log_in(page, site, "alice")
    ident = site.ids["hikvision-ZA"]
    # with the reviewer's own session cookie, but no token
    response = page.request.post(f"{site.base}/candidate/{ident}/decide",
                                 form={"decision": "confirm", "version": "1"})
    assert response.status == 403
    # a form on another origin posting here: no token, and no cookie either (SameSite=Strict)
    page.set_content(f'<form method="post" action="{site.base}/candidate/{ident}/decide">'
                     '<input name="decision" value="confirm"><input name="version" value="1">'
                     '<button id="go">go</button></form>')
    with page.expect_response(f"{site.base}/candidate/{ident}/decide") as info:
        page.click("#go")
    assert info.value.status == 403
    assert row(site, "hikvision-ZA").status == "pending"


def test_two_reviewers_at_once_the_second_is_told(browser, site, dialogs) -> None:
    alice = open_page(browser, site, dialogs)
    bob = open_page(browser, site, dialogs)
    log_in(alice, site, "alice")
    log_in(bob, site, "bob")
    url = f"{site.base}/candidate/{site.ids['huawei-RS']}"
    alice.goto(url)
    bob.goto(url)
    alice.keyboard.press("c")
    alice.wait_for_selector(".flash-ok")
    bob.keyboard.press("r")
    bob.keyboard.press("1")
    bob.wait_for_selector("#conflict")
    told = bob.inner_text("#conflict")
    assert "Someone else decided first" in told and "alice" in told
    assert "confirmed" in bob.inner_text(".summary")
    decided = row(site, "huawei-RS")
    assert (decided.status, decided.reviewed_by) == ("confirmed", "alice")
    with Store(site.db) as store:
        assert [(r.reviewer, r.decision) for r in store.reviews.reviews_of(decided.id)] == [
            ("alice", "confirm")]
