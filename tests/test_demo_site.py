"""The bundled demo news site: served for real, its feeds and listing reach every story it claims."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import tomllib
import urllib.error
import urllib.request
import urllib.robotparser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
from lxml import etree
from lxml import html as lxml_html

from models.config import COUNTERPART_TYPES, DEAL_TYPES, STAGES, Source, Sources
from pipeline.demo.server import serve

DEMO_SITE = Path(__file__).resolve().parent.parent / "pipeline" / "demo" / "site"
EXPECTED: list[dict[str, Any]] = json.loads((DEMO_SITE / "_expected.json").read_text(encoding="utf-8"))
# "ended": a story that a government ended an earlier deal (kept below the threshold, stage cancelled)
STORY_KINDS = {"deal", "negative", "aggregate", "ended"}
STORIES = [row for row in EXPECTED if row["kind"] in STORY_KINDS]
NOT_ARTICLES = [row for row in EXPECTED if row["kind"] == "not_article"]

RSS_NS = {"dc": "http://purl.org/dc/elements/1.1/"}
ATOM = "http://www.w3.org/2005/Atom"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS = "http://www.google.com/schemas/sitemap-news/0.9"
NS = {"atom": ATOM, "sm": SITEMAP, "news": NEWS}
# "NAIROBI, March 3 (Coastline Wire) –": city in capitals, date, agency, dash. The Spanish,
# Portuguese and French wires put the day first and may accent the city: "BOGOTÁ, 23 feb (Sierra
# Wire) –", "ABIDJAN, 27 fév (Lagune Presse) –".
DATELINE = re.compile(r"\b[A-ZÀ-Þ][A-ZÀ-Þ .'-]+, (?:[A-Z][a-z]{2,8}\.? \d{1,2}|\d{1,2} [a-zéû]{3,9}\.?) "
                      r"\([A-ZÀ-Þ][^)]+\) [–-]")
# What a page declares in <html lang>, og:locale and the news sitemap: the row's language.
LOCALES = {"en": None, "es": "es_ES", "pt": "pt_BR", "fr": "fr_FR"}
SITE_NAMES = {"/partner/coastline/": "Coastline Wire"}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serve(DEMO_SITE) as server:
        yield server.base_url


def get(url: str) -> Response:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return Response(resp.status, resp.read(), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, b"", "")


def get_ok(url: str) -> bytes:
    resp = get(url)
    assert resp.status == 200, f"{url} answered {resp.status}"
    return resp.body


def xml(base: str, path: str) -> etree._Element:
    return etree.fromstring(get_ok(base + path))


def page(base: str, path: str) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(get_ok(base + path))


def meta(doc: lxml_html.HtmlElement, key: str) -> str | None:
    found = doc.xpath(f'//meta[@property="{key}" or @name="{key}"]/@content')
    return str(found[0]) if found else None


def rendered_sources(base: str) -> list[Source]:
    text = (DEMO_SITE / "_sources.toml").read_text(encoding="utf-8").replace("{{base}}", base)
    return Sources.model_validate(tomllib.loads(text)).source


def links_of_source(base: str, source: Source) -> set[str]:
    """The story URLs a source would hand to the crawler, as the spider kinds define them."""
    found: set[str] = set()
    for url in source.urls:
        if source.kind == "rss":
            found |= {str(t).strip() for t in xml(base, url[len(base):]).xpath("/rss/channel/item/link/text()")}
        elif source.kind == "atom":
            doc = xml(base, url[len(base):])
            found |= {str(h) for h in doc.xpath('//atom:entry/atom:link[@rel="alternate"]/@href', namespaces=NS)}
        elif source.kind in ("sitemap", "news_sitemap"):
            found |= {str(t).strip() for t in xml(base, url[len(base):]).xpath("//sm:url/sm:loc/text()",
                                                                              namespaces=NS)}
        else:
            doc = page(base, url[len(base):])
            found |= {urldefrag(str(h))[0] for h in doc.xpath("//a/@href")}
    kept = set()
    for url in found:
        if source.allowed_domains and urlsplit(url).hostname not in source.allowed_domains:
            continue
        if source.allow and not any(re.search(p, url) for p in source.allow):
            continue
        if any(re.search(p, url) for p in source.deny):
            continue
        kept.add(url)
    return kept


def served_files() -> list[Path]:
    return [p for p in sorted(DEMO_SITE.rglob("*"))
            if p.is_file() and not any(part.startswith("_") for part in p.relative_to(DEMO_SITE).parts)]


def url_of(base: str, path: Path) -> str:
    rel = path.relative_to(DEMO_SITE).as_posix()
    if rel.endswith("index.html"):
        rel = rel[: -len("index.html")]
    return f"{base}/{rel}"


# --- the truth file -------------------------------------------------------------------------


def test_expected_covers_the_mix_a_demo_needs() -> None:
    kinds = [row["kind"] for row in EXPECTED]
    assert len(STORIES) >= 20
    assert kinds.count("deal") >= 8
    assert kinds.count("negative") >= 4
    assert kinds.count("aggregate") == 1
    assert kinds.count("not_article") >= 1
    assert kinds.count("ended") >= 1
    assert len({row["path"] for row in EXPECTED}) == len(EXPECTED), "duplicate paths"
    deals = [row for row in EXPECTED if row["kind"] == "deal"]
    assert len({row["vendor"] for row in deals}) >= 6
    assert len({row["country"] for row in deals}) >= 8
    assert {row["deal_type"] for row in deals} >= set(DEAL_TYPES) - {"other"}
    assert {row["stage"] for row in deals} >= {"mou", "signed", "awarded", "financed", "under_construction",
                                                "completed"}


def test_expected_rows_use_the_design_vocabularies() -> None:
    for row in EXPECTED:
        assert row["kind"] in STORY_KINDS | {"not_article"}, row["path"]
        assert row["deal_type"] in (*DEAL_TYPES, None), row["path"]
        assert row["stage"] in (*STAGES, None), row["path"]
        assert row["counterpart_type"] in (*COUNTERPART_TYPES, None), row["path"]
        assert row["country"] is None or re.fullmatch(r"[A-Z]{2}", row["country"]), row["path"]
        assert row["vendor"] is None or re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", row["vendor"]), row["path"]
        if row["kind"] in ("deal", "ended"):
            assert row["vendor"] and row["country"] and row["deal_type"] and row["stage"], row["path"]
        if row["kind"] == "ended":
            assert row["stage"] == "cancelled", row["path"]
        if row["kind"] == "negative":
            assert row["vendor"] and row["deal_type"] is None and row["stage"] is None, row["path"]


def test_exactly_one_syndicated_pair_points_both_ways() -> None:
    by_path = {row["path"]: row for row in EXPECTED}
    pairs = {frozenset((row["path"], row["syndicated_with"])) for row in EXPECTED if row["syndicated_with"]}
    assert len(pairs) == 1
    first, second = sorted(next(iter(pairs)))
    assert by_path[first]["syndicated_with"] == second
    assert by_path[second]["syndicated_with"] == first
    assert by_path[first]["site"] != by_path[second]["site"]


# --- feeds and sitemaps ---------------------------------------------------------------------


def test_rss_is_rss_2_with_complete_items(base: str) -> None:
    root = xml(base, "/rss.xml")
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = root.xpath("/rss/channel/item")
    assert items
    for item in items:
        for child in ("title", "link", "pubDate", "guid", "description"):
            assert (item.findtext(child) or "").strip(), f"RSS item lacks {child}"
        published = email.utils.parsedate_to_datetime(item.findtext("pubDate"))
        assert published.year in (2025, 2026)


def test_atom_is_atom_1_with_complete_entries(base: str) -> None:
    root = xml(base, "/atom.xml")
    assert root.tag == f"{{{ATOM}}}feed"
    entries = root.xpath("atom:entry", namespaces=NS)
    assert entries
    for entry in entries:
        for child in ("title", "id", "updated", "published"):
            assert entry.findtext(f"{{{ATOM}}}{child}"), f"Atom entry lacks {child}"
        assert entry.xpath('atom:link[@rel="alternate"]/@href', namespaces=NS)
        assert dt.datetime.fromisoformat(entry.findtext(f"{{{ATOM}}}published")).year in (2025, 2026)


def test_news_sitemap_has_google_news_fields(base: str) -> None:
    root = xml(base, "/news-sitemap.xml")
    assert root.tag == f"{{{SITEMAP}}}urlset"
    assert root.nsmap.get("news") == NEWS
    urls = root.xpath("sm:url", namespaces=NS)
    assert urls
    language_of = {row["path"]: row["language"] for row in EXPECTED}
    assert set(language_of.values()) >= {"en", "es", "pt", "fr"}
    for url in urls:
        assert url.findtext(f"{{{SITEMAP}}}loc")
        news = url.find(f"{{{NEWS}}}news")
        assert news is not None
        assert news.findtext(f"{{{NEWS}}}publication/{{{NEWS}}}name") == "The Meridian Ledger"
        path = url.findtext(f"{{{SITEMAP}}}loc")[len(base):]
        assert news.findtext(f"{{{NEWS}}}publication/{{{NEWS}}}language") == language_of[path], path
        assert news.findtext(f"{{{NEWS}}}title")
        assert dt.datetime.fromisoformat(news.findtext(f"{{{NEWS}}}publication_date")).year in (2025, 2026)


def test_plain_sitemap_is_a_urlset(base: str) -> None:
    root = xml(base, "/sitemap.xml")
    assert root.tag == f"{{{SITEMAP}}}urlset"
    assert len(root.xpath("sm:url/sm:loc", namespaces=NS)) > len(STORIES)


@pytest.mark.parametrize("path", ["/rss.xml", "/atom.xml", "/news-sitemap.xml", "/sitemap.xml",
                                  "/section/world.html"])
def test_every_link_in_feeds_sitemaps_and_section_resolves(base: str, path: str) -> None:
    if path.endswith(".html"):
        links = {urldefrag(str(h))[0] for h in page(base, path).xpath("//a/@href")}
    else:
        root = xml(base, path)
        links = {str(t).strip() for t in root.xpath("//link/text() | //sm:loc/text()", namespaces=NS)}
        links |= {str(h) for h in root.xpath("//atom:link/@href", namespaces=NS)}
    assert links
    statuses = {url: get(url).status for url in links}
    assert not {url: status for url, status in statuses.items() if status != 200}


def test_robots_allows_the_stories_and_names_the_news_sitemap(base: str) -> None:
    robots = urllib.robotparser.RobotFileParser(base + "/robots.txt")
    robots.read()
    assert not robots.can_fetch("dealwatch", base + "/private/draft.html")
    for row in EXPECTED:
        assert robots.can_fetch("dealwatch", base + row["path"]), row["path"]
    sitemaps = robots.site_maps() or []
    assert base + "/news-sitemap.xml" in sitemaps
    for url in sitemaps:
        assert get(url).status == 200


# --- sources.toml ---------------------------------------------------------------------------


def test_sources_template_renders_to_a_valid_local_config(base: str) -> None:
    sources = rendered_sources(base)
    assert {s.id: s.kind for s in sources} == {
        "demo-rss": "rss", "demo-atom": "atom", "demo-news-sitemap": "news_sitemap", "demo-section": "listing"}
    for source in sources:
        assert source.enabled
        assert source.allowed_domains == ["127.0.0.1"]
        assert source.download_delay == 0 and source.autothrottle is False
        assert source.concurrent_requests_per_domain == 8
        for url in source.urls:
            assert url.startswith(base) and get(url).status == 200


def test_sources_find_exactly_the_pages_in_expected(base: str) -> None:
    """Every story is reachable, the listing's filters keep tags and authors out, and found_by is true."""
    found_by: dict[str, set[str]] = {}
    for source in rendered_sources(base):
        for url in links_of_source(base, source):
            assert url.startswith(base + "/"), url
            found_by.setdefault(url[len(base):], set()).add(source.id)
    assert set(found_by) == {row["path"] for row in EXPECTED}
    for row in EXPECTED:
        assert found_by[row["path"]] == set(row["found_by"]), row["path"]
    only = {sid: [p for p, ids in found_by.items() if ids == {sid}] for sid in
            ("demo-rss", "demo-atom", "demo-news-sitemap", "demo-section")}
    assert all(only.values()), f"a source adds nothing of its own: {only}"


# --- the pages themselves -------------------------------------------------------------------


@pytest.mark.parametrize("row", STORIES, ids=[row["path"] for row in STORIES])
def test_story_pages_carry_the_metadata_extractors_read(base: str, row: dict[str, Any]) -> None:
    doc = page(base, row["path"])
    assert (doc.get("lang") or "").split("-")[0] == row["language"]
    assert meta(doc, "og:locale") == LOCALES[row["language"]]
    assert doc.findtext(".//title")
    assert doc.xpath('//link[@rel="canonical"]/@href') == [base + row["path"]]
    assert meta(doc, "og:title") == row["title"]
    assert meta(doc, "og:type") == "article"
    expected_site = next((name for prefix, name in SITE_NAMES.items() if row["path"].startswith(prefix)),
                         "The Meridian Ledger")
    assert meta(doc, "og:site_name") == expected_site == row["site"]
    published = dt.datetime.fromisoformat(meta(doc, "article:published_time") or "")
    assert published.year in (2025, 2026)
    assert published.strftime("/%Y/%m/%d/") in row["path"]
    assert meta(doc, "author")
    articles = doc.xpath("//article")
    assert len(articles) == 1
    assert articles[0].xpath(".//h1")[0].text_content() == row["title"]
    text = " ".join(p.text_content() for p in articles[0].xpath(".//p"))
    assert DATELINE.search(text), "no wire dateline"
    assert 250 <= len(text.split()) <= 650


def test_syndicated_copies_differ_in_dress_but_not_in_substance(base: str) -> None:
    first, second = (row for row in EXPECTED if row["syndicated_with"])

    def shingles(path: str) -> set[tuple[str, ...]]:
        words = " ".join(p.text_content() for p in page(base, path).xpath("//article//p")).split()
        return {tuple(words[i:i + 5]) for i in range(len(words) - 4)}

    a, b = shingles(first["path"]), shingles(second["path"])
    assert 0.6 <= len(a & b) / len(a | b) < 1.0
    assert first["title"] != second["title"]


@pytest.mark.parametrize("row", NOT_ARTICLES, ids=[row["path"] for row in NOT_ARTICLES])
def test_non_article_pages_look_like_what_they_are(base: str, row: dict[str, Any]) -> None:
    doc = page(base, row["path"])
    assert meta(doc, "og:type") != "article"
    assert meta(doc, "article:published_time") is None
    assert not doc.xpath("//article")


# --- the site as a whole --------------------------------------------------------------------


def test_no_placeholder_survives_in_served_pages(base: str) -> None:
    for path in served_files():
        if path.suffix in (".html", ".xml", ".txt"):
            assert b"{{base}}" not in get_ok(url_of(base, path)), path


def test_no_broken_internal_links_and_nothing_external(base: str) -> None:
    """The demo works offline: every link stays on the demo server and resolves."""
    checked: dict[str, int] = {}
    for path in served_files():
        if path.suffix != ".html":
            continue
        doc = lxml_html.fromstring(get_ok(url_of(base, path)))
        for ref in doc.xpath("//@href | //@src"):
            url = urldefrag(str(ref))[0]
            if not url:
                continue
            assert url.startswith(base + "/"), f"{path.name} links outside the demo: {ref}"
            if url not in checked:
                checked[url] = get(url).status
    assert not {url: status for url, status in checked.items() if status != 200}
