"""Extraction on our own fixture pages (golden files) and URL/text identity rules."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipeline.ingest.dedup import text_hash
from pipeline.ingest.extract import extract_article, html_to_passage, html_to_text
from pipeline.urls import canonical_url

FIXTURES = Path(__file__).parent / "fixtures" / "extraction"
PAGES = sorted(FIXTURES.glob("*.html"))
# Headers each fixture is served with (what a web server would have said).
HEADERS = {
    "cp1252-no-meta.html": {"content-type": "text/html; charset=windows-1252"},
}
URLS = {
    "wire-with-boilerplate.html": "https://www.copperbelt-courier.test/business/2026/02/17/zambia-ict-agency-data-centre?utm_source=rss&page=1",
    "canonical-home.html": "https://diario-andino.test/seguridad/2026/01/09/convenio-videovigilancia",
}


def _extract(page: Path) -> dict:
    url = URLS.get(page.name, f"https://fixtures.test/{page.name}")
    result = extract_article(page.read_bytes(), url, HEADERS.get(page.name, {}), min_text_chars=200)
    out = {"status": result.status, "reason": result.reason}
    if result.article:
        a = result.article
        out.update(title=a.title, author=a.author, published=a.published, site=a.site,
                   language=a.language, language_declared=a.language_declared,
                   language_source=a.language_source, canonical_url=a.canonical_url, text=a.text)
    return out


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_extraction_matches_golden(page: Path, update_goldens: bool) -> None:
    got = _extract(page)
    golden = page.with_suffix(".expected.json")
    if update_goldens:
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not golden.exists():
        # Written only on request, so that a new fixture's output is read by someone before it counts.
        pytest.fail(f"{golden} is missing: run `make golden` (pytest --update-goldens) to write it, "
                    f"check it against {page.name} by hand and commit it with the page", pytrace=False)
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_article_text_without_boilerplate() -> None:
    got = _extract(FIXTURES / "wire-with-boilerplate.html")
    assert got["status"] == "article"
    assert got["text"].splitlines()[1].startswith("LUSAKA, Feb 17 (Copperbelt Courier)")
    assert "Huawei did not respond" in got["text"]
    for junk in ("We use cookies", "Related stories", "Sign up for our newsletter",
                 "All rights reserved", "Subscribe today"):
        assert junk not in got["text"]
    assert got["title"] == "Zambia's ICT agency signs data centre agreement with Huawei"
    assert got["author"] == "Mwila Banda"
    assert got["published"] == "2026-02-17"
    assert got["site"] == "The Copperbelt Courier"
    assert got["language"] == "en"
    # the page's own canonical link, without tracking parameters or www.
    assert got["canonical_url"] == ("https://copperbelt-courier.test/business/2026/02/17/"
                                    "zambia-ict-agency-data-centre")


def test_index_page_is_not_an_article() -> None:
    got = _extract(FIXTURES / "index-page.html")
    assert got["status"] == "not_article"
    assert got["reason"]


def test_canonical_link_to_home_page_is_ignored() -> None:
    got = _extract(FIXTURES / "canonical-home.html")
    assert got["status"] == "article"
    assert got["canonical_url"] == URLS["canonical-home.html"]
    assert got["language"] == "es"


def test_declared_charset_decodes_the_page() -> None:
    got = _extract(FIXTURES / "cp1252-no-meta.html")
    assert "Owners of cafés" in got["text"]
    assert "“We cannot pass this on" in got["text"]


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\x01\x02\xff" * 50, b"<html></html>"])
def test_empty_or_garbage_bodies_are_not_articles(body: bytes) -> None:
    result = extract_article(body, "https://fixtures.test/x")
    assert result.status == "not_article" and result.article is None and result.reason


def test_html_to_text_for_short_snippets() -> None:
    assert html_to_text("<p>Huawei signed a deal.</p><p>ZTE did too.</p><script>x()</script>") == (
        "Huawei signed a deal.\nZTE did too.")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://www.News.test/a/b/?utm_source=x&id=3#top", "https://news.test/a/b?id=3"),
        ("https://news.test:443/a?b=2&a=1&fbclid=zz", "https://news.test/a?a=1&b=2"),
        ("https://news.test/story/amp/", "https://news.test/story"),
        ("https://amp.news.test/story.amp.html", "https://news.test/story.html"),
        ("http://127.0.0.1:8711/2026/03/04/x.html", "https://127.0.0.1:8711/2026/03/04/x.html"),
        ("http://[::1]:80/x", "https://[::1]/x"),
        ("http://news.test:99999/x", "http://news.test:99999/x"),  # no URL: left as it is
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_text_hash_ignores_case_and_spacing() -> None:
    assert text_hash("Huawei  signed\n a deal.") == text_hash("huawei signed a deal.")
    assert text_hash("Huawei signed a deal.") != text_hash("ZTE signed a deal.")


WALLS = FIXTURES.parent / "walls"


@pytest.mark.parametrize(("page", "reason"), [
    ("cloudflare-challenge.html", "bot challenge (cloudflare)"),
    ("consent-wall.html", "consent wall"),
])
def test_bot_and_consent_walls_are_recorded_as_blocked(page: str, reason: str) -> None:
    result = extract_article((WALLS / page).read_bytes(), "https://newsdesk.test/2026/05/05/story")
    assert (result.status, result.reason, result.article) == ("blocked", reason, None)


def test_an_article_with_a_consent_banner_is_still_an_article() -> None:
    result = extract_article((WALLS / "article-with-consent-banner.html").read_bytes(),
                             "https://harbour.test/2026/05/05/cranes", min_text_chars=200)
    assert result.status == "article"
    assert "six ship-to-shore cranes" in result.article.text


def _article_page(head: str) -> str:
    body = "".join(f"<p>KAMPALA – Paragraph {i} of a story about a new fibre line, long enough to "
                   "read as an article and end with a full stop.</p>" for i in range(5))
    return f"<html><head>{head}</head><body><article><h1>Fibre</h1>{body}</article></body></html>"


@pytest.mark.parametrize("head", [
    '<link rel="canonical" href="https://news.test:99999/1">',
    '<link rel="canonical" href="https://[x/broken">',
    '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "A \\ud800 b"}</script>',
    '<script type="application/ld+json">' + "[" * 5000 + "]" * 5000 + "</script>",
])
def test_one_bad_metadata_value_never_loses_the_article(head: str) -> None:
    result = extract_article(_article_page(head), "https://news.test/2026/05/05/fibre")
    assert result.status == "article"
    assert result.article.canonical_url == "https://news.test/2026/05/05/fibre"
    assert "\ud800" not in (result.article.title or "")
    result.article.title and result.article.title.encode("utf-8")  # storable


def test_a_page_url_that_is_no_url_gives_one_line_not_a_traceback(caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="pipeline.ingest.extract"):
        extract_article(_article_page(""), "http://[::1")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "http://[::1: cannot read the page's metadata: ValueError: Invalid IPv6 URL"]
    assert warnings[0].exc_info is None  # the traceback is kept for -vv (DEBUG) only
    with pytest.raises(ValueError, match=r"^not a URL: http://\[::1 \(Invalid IPv6 URL\)$"):
        html_to_passage(_article_page(""), "http://[::1")
