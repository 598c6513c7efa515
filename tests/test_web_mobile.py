"""The review UI on a 390 px phone and at desktop size, in headless Chromium: nothing scrolls
sideways, the decisions stay in reach, a candidate opens on its headline, highlights clip nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from webfixtures import (
    KENYA,
    add_reviewers,
    browser_log_in,
    seed_review_queue,
    story,
)

from pipeline.config import load_config
from pipeline.review import decisions as review
from pipeline.review.web import create_app, running_server
from pipeline.storage import Store

TIMEOUT_MS = 10_000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 1}
DESKTOP = {"viewport": {"width": 1400, "height": 900}}

MONEY_AND_DATES = ("On March 3 2026 Kenya's Ministry of ICT signed a $120 million contract with "
                   "Huawei to build a government cloud by 2027.")
DEEP = ("On Jan 19 Uganda's National Information Technology Authority signed a $28 million "
        "contract with Huawei to extend the national fibre backbone by 1,100 km.")
FILLER = ("The district offices had waited for years for a reliable connection, and the "
          "regional hospitals still depend on satellite links that fail in the rainy season. "
          "Engineers from the authority surveyed the planned route through the hills last "
          "autumn and reported that most of the existing ducts could be reused for the work. ")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The seeded queue, a confirmed deal, a candidate with money and dates in its evidence
    and one whose evidence is ten paragraphs down a long article."""
    db = tmp_path_factory.mktemp("mobile") / "review.db"
    with Store(db) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice")
        ids["money"] = story(
            store, 20, f"NAIROBI - {MONEY_AND_DATES}\n\nThe cloud will host 40 state departments.",
            MONEY_AND_DATES, title="Kenya signs a $120 million cloud deal", score=0.99,
            entities=[*KENYA, ("March 3 2026", "DATE", None), ("$120 million", "MONEY", None),
                      ("2027", "DATE", None)])
        long_text = "\n\n".join([f"KAMPALA - {FILLER}", *[FILLER] * 9, DEEP, FILLER])
        ids["deep"] = story(
            store, 21, long_text, DEEP, score=0.98, country="UG", site="kampala-ledger.test",
            title=("Uganda extends its national fibre backbone to the northeast with a $28 "
                   "million Huawei contract after a long tender"),
            entities=[("Huawei", "VENDOR", "huawei"), ("Uganda", "COUNTRY", "UG"),
                      ("National Information Technology Authority", "AGENCY", None),
                      ("Jan 19", "DATE", None), ("$28 million", "MONEY", None),
                      ("1,100 km", "QUANTITY", None)])
        review.decide(store, ids["zte-ET"], "confirm", "alice")
        deal = store.candidates.candidate(ids["zte-ET"])
        assert deal is not None and deal.deal_id is not None
        ids["deal"] = int(deal.deal_id)
        # a second deal, in another country: the merge page with its hardest warning
        review.decide(store, ids["huawei-RS"], "confirm", "alice", deal_id="new")
        other = store.candidates.candidate(ids["huawei-RS"])
        assert other is not None and other.deal_id is not None
        ids["other_deal"] = int(other.deal_id)
    with running_server(create_app(load_config(), db)) as base:
        yield SimpleNamespace(base=base, ids=ids, db=db)


def new_page(browser: Any, site: SimpleNamespace, *, log_in: bool = True, **options: Any) -> Any:
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    if log_in:
        browser_log_in(page, site.base, "alice")
    return page


@pytest.fixture(scope="module")
def phone(browser: Any, site: SimpleNamespace) -> Iterator[Any]:
    page = new_page(browser, site, **PHONE)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def desktop(browser: Any, site: SimpleNamespace) -> Iterator[Any]:
    page = new_page(browser, site, **DESKTOP)
    yield page
    page.context.close()


WIDER_THAN_THE_PAGE = """() => {
  const width = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll("body *"))
    .filter((el) => el.getBoundingClientRect().right > width + 0.5 && el.getClientRects().length)
    .slice(0, 8).map((el) => el.tagName.toLowerCase() + "." + el.className);
}"""


def sideways(page: Any) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def visible_whole(page: Any, selector: str) -> bool:
    """The element lies wholly inside the viewport, and a tap on it (on its first line, if it
    runs over several) would reach it, not something covering it."""
    return bool(page.eval_on_selector(selector, """(el) => {
      const r = el.getBoundingClientRect();
      if (!r.width || r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
      const first = el.getClientRects()[0];
      const hit = document.elementFromPoint(first.left + first.width / 2, first.top + first.height / 2);
      return !!hit && (hit === el || el.contains(hit));
    }"""))


def below_the_topbar(page: Any, selector: str) -> bool:
    """Not hidden under the sticky top bar."""
    return bool(page.eval_on_selector(selector, """(el) => el.getBoundingClientRect().top >=
      document.querySelector(".topbar").getBoundingClientRect().bottom"""))


PAGES = ["/queue", "/queue?status=all", "/candidate/{syndicated}", "/candidate/{deep}",
         "/candidate/{xss}", "/deals", "/deal/{deal}", "/deal/{deal}/merge?absorb={other_deal}",
         "/help", "/candidate/999999", "/queue?sort=date&order=asc",
         "/deals?vendor=huawei&sort=last_reported&order=desc", "/deals?q=nothing+at+all"]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_scrolls_sideways_on_a_phone(phone, site, path) -> None:
    response = phone.goto(site.base + path.format(**site.ids))
    assert response.status == (404 if "999999" in path else 200)
    scroll_width, client_width = sideways(phone)
    assert client_width == 390
    assert scroll_width <= client_width, f"{path} is {scroll_width} px wide: {phone.evaluate(WIDER_THAN_THE_PAGE)}"


def test_the_candidate_form_fits_a_phone_with_its_fields_open(phone, site) -> None:
    phone.goto(f"{site.base}/candidate/{site.ids['money']}")
    phone.click("#edit > summary")
    assert phone.is_visible('input[name="counterpart"]')
    scroll_width, client_width = sideways(phone)
    assert scroll_width <= client_width, phone.evaluate(WIDER_THAN_THE_PAGE)


def test_the_login_page_fits_a_phone(browser, site) -> None:
    page = new_page(browser, site, log_in=False, **PHONE)
    page.goto(f"{site.base}/login")
    scroll_width, client_width = sideways(page)
    assert scroll_width <= client_width == 390, page.evaluate(WIDER_THAN_THE_PAGE)
    assert visible_whole(page, 'button[type="submit"]')
    page.context.close()


def test_the_decisions_stay_in_reach_on_a_phone(browser, site) -> None:
    page = new_page(browser, site, **PHONE)
    page.goto(f"{site.base}/candidate/{site.ids['deep']}")
    assert page.evaluate("scrollY") == 0
    buttons = ("#btn-confirm", "#btn-defer", "#btn-reject", "#reason")
    for button in buttons:
        assert visible_whole(page, button), f"{button} is out of reach on opening"
    page.evaluate("window.scrollBy(0, 1500)")
    assert page.evaluate("scrollY") > 1000
    for button in buttons:
        assert visible_whole(page, button), f"{button} is out of reach halfway down"
    # the end of the page is not hidden under the bar
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert visible_whole(page, ".history h2")
    page.tap("#btn-defer")
    page.wait_for_selector(".flash-ok")
    with Store(site.db) as store:
        deferred = store.candidates.candidate(site.ids["deep"])
    assert deferred is not None and deferred.status == "deferred"
    page.context.close()


def test_reject_without_a_reason_asks_for_one(browser, site) -> None:
    page = new_page(browser, site, **PHONE)
    page.goto(f"{site.base}/candidate/{site.ids['dahua-PH']}")
    page.tap("#btn-reject")
    assert page.is_visible("#reject-dialog")
    page.click('#reject-dialog button[data-reason="not_a_deal"]')
    page.wait_for_selector(".flash-ok")
    with Store(site.db) as store:
        rejected = store.candidates.candidate(site.ids["dahua-PH"])
    assert rejected is not None and (rejected.status, rejected.reason) == ("rejected", "not_a_deal")
    page.context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_filters_are_folded_on_a_phone_and_open_on_a_tap(browser, site, javascript) -> None:
    page = new_page(browser, site, **PHONE)
    if not javascript:  # the same session, in a context without JavaScript
        cookies = page.context.cookies()
        page.context.close()
        page = new_page(browser, site, log_in=False, java_script_enabled=False, **PHONE)
        page.context.add_cookies(cookies)
        page.goto(f"{site.base}/queue")
    assert page.is_visible("#filters summary")
    assert not page.is_visible('select[name="vendor"]')
    page.click("#filters summary")
    assert page.is_visible('select[name="vendor"]')
    page.select_option('select[name="country"]', "KE")
    page.click('#filters button[type="submit"]')
    page.wait_for_url(re.compile(r"country=KE"))
    assert "1 on" in page.inner_text("#filters summary")  # folded again, saying a filter is set
    assert not page.is_visible('select[name="vendor"]')
    page.context.close()


def test_the_deals_filters_fold_on_a_phone_and_fit_it_open(phone, site) -> None:
    phone.goto(f"{site.base}/deals")
    assert phone.is_visible("#filters summary")
    assert not phone.is_visible('#filters select[name="stage"]')
    phone.click("#filters summary")
    for name in ("vendor", "country", "deal_type", "stage", "year"):
        assert phone.is_visible(f'#filters select[name="{name}"]')
    assert visible_whole(phone, "#search")
    scroll_width, client_width = sideways(phone)
    assert scroll_width <= client_width == 390, phone.evaluate(WIDER_THAN_THE_PAGE)
    phone.select_option('#filters select[name="country"]', "ET")
    phone.click('#filters button[type="submit"]')
    phone.wait_for_url(re.compile(r"country=ET"))
    assert "1 on" in phone.inner_text("#filters summary")
    assert phone.inner_text("#deal-count") == "1 of 2 deals"
    scroll_width, client_width = sideways(phone)
    assert scroll_width <= client_width, phone.evaluate(WIDER_THAN_THE_PAGE)


def test_filters_stay_open_on_a_desktop(desktop, site) -> None:
    desktop.goto(f"{site.base}/queue")
    assert desktop.is_visible('select[name="vendor"]')
    assert not desktop.is_visible("#filters summary")


@pytest.mark.parametrize("name", ["syndicated", "deep", "money"])
def test_a_candidate_opens_on_its_headline_then_the_evidence(desktop, site, name) -> None:
    desktop.goto(f"{site.base}/candidate/{site.ids[name]}")
    desktop.wait_for_load_state("load")
    for part in ("h1.article-title", ".article-meta .published", ".article-meta a.ext"):
        assert visible_whole(desktop, part), f"{part} is not in view on opening"
        assert below_the_topbar(desktop, part)
    assert "Open original" in desktop.inner_text(".article-meta a.ext")
    evidence = ".evidence-quote" if desktop.is_visible(".evidence-quote") else "#evidence"
    assert visible_whole(desktop, evidence)
    headline, meta, shown = (desktop.eval_on_selector(s, "el => el.getBoundingClientRect().top")
                             for s in ("h1.article-title", ".article-meta", evidence))
    assert headline < meta < shown


def test_deep_evidence_is_quoted_under_the_headline_and_links_to_its_place(desktop, phone,
                                                                          site) -> None:
    for page in (desktop, phone):
        page.goto(f"{site.base}/candidate/{site.ids['deep']}")
        assert page.inner_text(".evidence-quote mark").startswith("On Jan 19 Uganda")
        assert visible_whole(page, "h1.article-title") and visible_whole(page, ".evidence-quote")
        page.click(".evidence-quote a[href='#evidence']")
        page.wait_for_url(re.compile("#evidence$"))
        assert page.evaluate("scrollY") > 0
        assert visible_whole(page, "#evidence")
        assert below_the_topbar(page, "#evidence") or page.eval_on_selector(
            ".topbar", "el => getComputedStyle(el).position") == "static"
    # the lead's evidence is already in view: no quote
    desktop.goto(f"{site.base}/candidate/{site.ids['syndicated']}")
    assert desktop.locator(".evidence-quote").count() == 0


LAST_LETTER = """(el) => {
  el.scrollIntoView({block: "center"});
  const texts = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  let text = null;
  while (texts.nextNode()) if (texts.currentNode.length) text = texts.currentNode;
  const range = document.createRange();
  range.setStart(text, text.length - 1);
  range.setEnd(text, text.length);
  const r = range.getBoundingClientRect();
  return {x: r.x, y: r.y, width: r.width, height: r.height};
}"""


@pytest.mark.parametrize("name", ["money", "deep"])
def test_nothing_paints_over_the_last_letter_of_a_highlighted_entity(browser, site, name) -> None:
    """Raised above everything beside it, a highlight's last letter looks the same: no
    neighbour's background or shadow covers part of it."""
    page = new_page(browser, site, device_scale_factor=2, **DESKTOP)
    page.goto(f"{site.base}/candidate/{site.ids[name]}")
    assert page.locator("#evidence .ent").count() >= 4
    assert page.locator("#evidence .ent-extra").count() >= 2  # dates and money
    highlights = page.locator("#article-text .ent, #article-text mark")
    clipped = []
    for i in range(highlights.count()):
        element = highlights.nth(i)
        clip = element.evaluate(LAST_LETTER)
        as_shown = page.screenshot(clip=clip)
        element.evaluate("el => { el.style.position = 'relative'; el.style.zIndex = '5'; }")
        raised = page.screenshot(clip=clip)
        element.evaluate("el => { el.style.position = ''; el.style.zIndex = ''; }")
        if raised != as_shown:
            clipped.append(element.inner_text())
    assert clipped == []
    page.context.close()
