"""Page metadata from meta tags, JSON-LD and <time>: what a reviewer sees next to the article."""

from __future__ import annotations

from datetime import date

import lxml.html
import pytest

from pipeline.ingest.metadata import page_metadata


def meta_of(html: str, url: str = "https://www.harbour-times.test/2026/05/05/cranes", headers=None):
    return page_metadata(lxml.html.fromstring(html), url, headers)


def test_open_graph_and_article_tags() -> None:
    m = meta_of("""<html lang="en-GB"><head>
        <title>Cranes ordered | Harbour Times</title>
        <meta property="og:title" content="Port authority orders six cranes">
        <meta property="og:site_name" content="Harbour Times">
        <meta property="article:published_time" content="2026-05-05T09:12:00+03:00">
        <meta name="author" content="By Amina Odhiambo">
        <link rel="canonical" href="https://harbour-times.test/2026/05/05/cranes">
        </head><body><h1>Port authority orders six cranes</h1></body></html>""")
    assert m.title == "Port authority orders six cranes"
    assert m.site == "Harbour Times"
    assert m.published == "2026-05-05"
    assert m.author == "Amina Odhiambo"
    assert m.canonical == "https://harbour-times.test/2026/05/05/cranes"
    assert m.language == "en"


def test_json_ld_graph() -> None:
    m = meta_of("""<html><head><title>x</title>
        <script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
          {"@type": "NewsMediaOrganization", "name": "Pacific Ledger"},
          {"@type": "NewsArticle", "headline": "Cable landing station opens",
           "datePublished": "2026-03-01", "author": [{"@type": "Person", "name": "Sione Taufa"},
                                                      {"@type": "Person", "name": "Mere Tora"}],
           "publisher": {"@type": "Organization", "name": "Pacific Ledger"}}]}</script>
        <script type="application/ld+json">{not json</script>
        </head><body></body></html>""")
    assert m.title == "Cable landing station opens"
    assert m.published == "2026-03-01"
    assert m.author == "Sione Taufa; Mere Tora"
    assert m.site == "Pacific Ledger"


def test_fallbacks_title_tag_time_element_and_host() -> None:
    m = meta_of("""<html><head><title>Budget approved - Daily Courier</title>
        <meta property="og:url" content="https://dailycourier.test/budget"></head>
        <body><article><time datetime="2026-02-03T08:00">3 Feb</time><p>Text.</p></article>
        </body></html>""", url="https://www.dailycourier.test/budget?utm_source=x")
    assert m.title == "Budget approved"
    assert m.published == "2026-02-03"
    assert m.site == "dailycourier.test"
    assert m.canonical == "https://dailycourier.test/budget"
    assert m.author is None and m.language is None


@pytest.mark.parametrize(("byline", "name"), [
    ("By TOM WERE", "TOM WERE"),
    ("by Ana Ruiz @anaruiz Nov 18, 2025 at 9:24 am", "Ana Ruiz"),
    ("Ana Ruiz", "Ana Ruiz"),
])
def test_bylines_are_cleaned(byline: str, name: str) -> None:
    m = meta_of(f'<html><head><meta name="author" content="{byline}"></head><body></body></html>')
    assert m.author == name


def test_author_urls_are_not_names() -> None:
    m = meta_of('<html><head><meta property="article:author" content="https://social.test/ana">'
                '</head><body><a rel="author" href="/ana">Ana Ruiz</a></body></html>')
    assert m.author == "Ana Ruiz"


@pytest.mark.parametrize("value", ["2026-13-45", "2024-02-31"])
def test_impossible_dates_are_ignored(value: str) -> None:
    m = meta_of(f'<html><head><meta name="date" content="{value}"></head><body></body></html>')
    assert m.published != value
    assert m.published is None or date.fromisoformat(m.published)


def test_language_from_header() -> None:
    assert meta_of("<html><body></body></html>", headers={"content-language": "fr-FR"}).language == "fr"
