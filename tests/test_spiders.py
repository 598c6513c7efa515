"""Spiders, parsers, middleware and pipeline tested from in-memory responses, without a crawl."""

from __future__ import annotations

import gzip
import ipaddress
from pathlib import Path

import pytest
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
)
from scrapy.http import HtmlResponse, Request, Response, XmlResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

from models.config import CrawlSettings, Source
from models.records import Page
from pipeline.storage import Store
from pipeline.urls import canonical_url
from scrapers.middlewares import PrivateNetworkMiddleware, PrivateNetworkRefused, is_public_address
from scrapers.pipelines import StorePipeline
from scrapers.settings import crawl_settings, source_settings
from scrapers.spiders import SPIDER_CLASSES, spider_class
from scrapers.spiders.base import LinkPolicy, describe_failure
from scrapers.spiders.documents import (
    Listed,
    MalformedDocument,
    newest_first,
    normalise_date,
    parse_atom,
    parse_rss,
    parse_sitemap,
)

BASE = "https://news.example"


def source(kind: str = "rss", **fields: object) -> Source:
    data: dict[str, object] = {"id": f"test-{kind.replace('_', '-')}", "kind": kind,
                               "urls": [f"{BASE}/feed.xml"], "allowed_domains": ["news.example"]}
    data.update(fields)
    return Source.model_validate(data)


def request_for(url: str, role: str = "article", **meta: object) -> Request:
    return Request(url, meta={"dealwatch": {"role": role, "referrer": f"{BASE}/feed.xml", **meta}})


def xml_response(url: str, body: bytes, role: str = "feed") -> XmlResponse:
    return XmlResponse(url, body=body, request=request_for(url, role),
                       headers={"Content-Type": "application/xml"})


# --- feeds ------------------------------------------------------------------------------------

RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>T</title>
  <item><title>First</title><link>/a/1.html</link><pubDate>Tue, 10 Jun 2025 08:30:00 +0200</pubDate></item>
  <item><title>Second</title><guid>https://news.example/a/2.html</guid></item>
  <item><title>Not a link</title><guid isPermaLink="false">tag:news.example,2025:3</guid></item>
</channel></rss>"""


def test_rss_items_give_absolute_links_titles_and_utc_dates() -> None:
    assert parse_rss(RSS, f"{BASE}/feed.xml") == [
        Listed(f"{BASE}/a/1.html", "First", "2025-06-10T06:30:00Z"),
        Listed(f"{BASE}/a/2.html", "Second", None),
    ]


def test_rss_1_rdf_feeds_are_read() -> None:
    rdf = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
        xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
      <channel rdf:about="x"><title>T</title></channel>
      <item rdf:about="https://news.example/r/1"><title>R</title><link>https://news.example/r/1</link>
        <dc:date>2025-06-01T10:00:00+02:00</dc:date></item>
    </rdf:RDF>"""
    assert parse_rss(rdf, BASE) == [Listed(f"{BASE}/r/1", "R", "2025-06-01T08:00:00Z")]


def test_atom_links_resolve_against_xml_base_and_prefer_alternate_html() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://news.example/news/">
      <entry><title type="html">A &lt;i&gt;big&lt;/i&gt; deal</title>
        <link rel="self" href="/api/1"/><link rel="alternate" type="application/pdf" href="1.pdf"/>
        <link rel="alternate" type="text/html" href="1.html"/>
        <updated>2025-06-02T00:00:00Z</updated><published>2025-06-01T00:00:00Z</published></entry>
      <entry><title>No link</title></entry>
    </feed>"""
    assert parse_atom(atom, "https://other.example/feed") == [
        Listed(f"{BASE}/news/1.html", "A big deal", "2025-06-01T00:00:00Z")]


@pytest.mark.parametrize(("parse", "body", "message"), [
    (parse_rss, b"<rss><channel><item></channel></rss>", "not well-formed XML"),
    (parse_rss, b"", "empty document"),
    (parse_rss, b'<feed xmlns="http://www.w3.org/2005/Atom"/>', 'set kind = "atom"'),
    (parse_atom, b'<rss version="2.0"><channel/></rss>', 'set kind = "rss"'),
    (parse_rss, b'<rss version="2.0"/>', "without a <channel>"),
    (parse_sitemap, b"<html><body>Not found</body></html>", "expected a sitemap"),
])
def test_unreadable_documents_raise_malformed_with_a_reason(parse, body: bytes, message: str) -> None:
    with pytest.raises(MalformedDocument, match=message):
        parse(body, BASE)


def test_entities_are_never_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    xxe = f"""<?xml version="1.0"?>
    <!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>
    <rss version="2.0"><channel><item><title>&xxe;</title><link>/a</link></item></channel></rss>"""
    entries = parse_rss(xxe.encode(), BASE)
    assert "SECRET" not in (entries[0].title or "")
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    laughs = (f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(levels)}]>'
              '<rss version="2.0"><channel><item><title>&lol9;</title><link>/a</link>'
              "</item></channel></rss>")
    try:
        entries = parse_rss(laughs.encode(), BASE)
    except MalformedDocument as exc:  # libxml2's amplification guard refuses the document
        assert "amplification" in str(exc)
    else:
        assert len(entries[0].title or "") < 100  # a billion "lol"s were never built


# --- sitemaps ---------------------------------------------------------------------------------

NEWS_SITEMAP = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
    xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://news.example/n/1</loc><lastmod>2025-06-11</lastmod>
    <news:news><news:publication_date>2025-06-10T07:00:00+03:00</news:publication_date>
    <news:title>Five G</news:title></news:news></url>
  <url><loc>https://news.example/n/2</loc><lastmod>2025-06-09</lastmod></url>
</urlset>"""


def test_sitemap_urls_use_news_fields_then_lastmod() -> None:
    assert parse_sitemap(NEWS_SITEMAP, BASE) == [
        Listed(f"{BASE}/n/1", "Five G", "2025-06-10T04:00:00Z"),
        Listed(f"{BASE}/n/2", None, "2025-06-09"),
    ]


def test_sitemap_index_lists_child_sitemaps() -> None:
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://news.example/s/2025-05.xml</loc><lastmod>2025-05-31</lastmod></sitemap>
      <sitemap><loc>https://news.example/s/2025-06.xml</loc></sitemap></sitemapindex>"""
    assert parse_sitemap(index, BASE) == [
        Listed(f"{BASE}/s/2025-05.xml", None, "2025-05-31", role="sitemap"),
        Listed(f"{BASE}/s/2025-06.xml", None, None, role="sitemap")]


def test_a_link_that_makes_no_url_is_left_out_and_the_rest_are_read() -> None:
    sitemap = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>http://[::1/n/0</loc></url><url><loc>/n/1</loc></url></urlset>"""
    assert parse_sitemap(sitemap, BASE) == [Listed(f"{BASE}/n/1")]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://[::1/">
      <entry><link href="http://[::1/a/0"/></entry><entry><link href="/a/1"/></entry></feed>"""
    assert parse_atom(atom, BASE) == [Listed(f"{BASE}/a/1")]  # the broken xml:base is ignored


def test_gzipped_sitemap_is_decompressed() -> None:
    spider = spider_class("sitemap")(source=source("sitemap"))
    response = Response(f"{BASE}/sitemap.xml.gz", body=gzip.compress(NEWS_SITEMAP),
                        request=request_for(f"{BASE}/sitemap.xml.gz", "sitemap"))
    assert [e.url for e in spider.entries(response)] == [f"{BASE}/n/1", f"{BASE}/n/2"]


def test_child_sitemaps_are_read_one_at_a_time() -> None:
    spider = spider_class("sitemap")(source=source("sitemap", max_items=5))
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://news.example/s/old.xml</loc><lastmod>2025-05-31</lastmod></sitemap>
      <sitemap><loc>https://news.example/s/new.xml</loc><lastmod>2025-06-30</lastmod></sitemap>
      <sitemap><loc>https://elsewhere.example/s/x.xml</loc></sitemap></sitemapindex>"""
    out = list(spider.parse_entry(xml_response(f"{BASE}/feed.xml", index, "sitemap")))
    assert isinstance(out[0], Page) and out[0].role == "sitemap"
    assert [r.url for r in out[1:]] == [f"{BASE}/s/new.xml"]  # newest first, offsite dropped
    child = list(spider.parse_entry(xml_response(f"{BASE}/s/new.xml", NEWS_SITEMAP, "sitemap")))
    assert [r.url for r in child if isinstance(r, Request)] == [
        f"{BASE}/n/1", f"{BASE}/n/2", f"{BASE}/s/old.xml"]


# --- dates and order --------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("Tue, 10 Jun 2025 08:30:00 GMT", "2025-06-10T08:30:00Z"),
    ("2025-06-10T08:30:00+02:00", "2025-06-10T06:30:00Z"),
    ("2025-06-10T08:30:00Z", "2025-06-10T08:30:00Z"),
    ("2025-06-10T08:30:00", "2025-06-10T08:30:00Z"),
    ("2025-06-10", "2025-06-10"),
    ("last Tuesday", "last Tuesday"),
    ("  ", None),
    (None, None),
])
def test_listed_dates_are_normalised(raw: str | None, expected: str | None) -> None:
    assert normalise_date(raw) == expected


def test_newest_first_keeps_undated_entries_last_in_order() -> None:
    entries = [Listed("a", date="2025-05-01"), Listed("b"), Listed("c", date="2025-06-01T00:00:00Z"),
               Listed("d", date="soon"), Listed("e")]
    assert [e.url for e in newest_first(entries)] == ["c", "a", "b", "d", "e"]


def test_an_unreadable_date_is_no_date_whatever_it_starts_with() -> None:
    entries = [Listed("old", date="2025-05-01"), Listed("unread", date="3 Jun 2025"),
               Listed("new", date="2025-06-01T00:00:00Z"), Listed("impossible", date="2025-02-31")]
    assert [e.url for e in newest_first(entries)] == ["new", "old", "unread", "impossible"]


# --- following links --------------------------------------------------------------------------

def test_link_policy_verdicts() -> None:
    policy = LinkPolicy(source(allow=[r"/news/"], deny=[r"/news/tag/"]), max_items=2,
                        known_urls={f"{BASE}/news/known.html"})
    verdicts = [policy.decide(Listed(url))[0] for url in (
        "mailto:desk@news.example", "https://other.example/news/1", f"{BASE}/about",
        f"{BASE}/news/tag/cloud", f"{BASE}/news/known.html", f"{BASE}/news/1#comments",
        f"{BASE}/news/1", "https://www.news.example/news/2", f"{BASE}/news/3")]
    assert verdicts == ["not_http", "offsite", "not_allowed", "denied", "known", "follow", "seen",
                        "follow", "over_limit"]
    assert policy.full


def test_link_policy_refetches_known_urls_when_asked() -> None:
    policy = LinkPolicy(source(), max_items=5, known_urls={f"{BASE}/a"}, refetch_known=True)
    assert policy.decide(Listed(f"{BASE}/a")) == ("follow", f"{BASE}/a")


def test_listing_without_allowed_domains_stays_on_its_host() -> None:
    policy = LinkPolicy(source("listing", allowed_domains=[], urls=[f"{BASE}/world/"]), max_items=5)
    assert policy.decide(Listed("https://ads.example/x"))[0] == "offsite"
    assert policy.decide(Listed(f"{BASE}/world/"))[0] == "seen"  # the listing itself


def test_listing_spider_yields_its_page_then_matching_article_requests() -> None:
    spider = spider_class("listing")(source=source("listing", urls=[f"{BASE}/world/"],
                                                    allow=[r"/news/\d+"]))
    html = b"""<html><body><a href="/world/">World</a> <a href="/news/1"> Deal signed </a>
      <a href="/news/2.pdf">PDF</a> <a href="https://other.example/news/3">Other</a>
      <a href="news/4">Relative</a></body></html>"""
    response = HtmlResponse(f"{BASE}/world/", body=html,
                            request=request_for(f"{BASE}/world/", "listing"),
                            headers={"Content-Type": "text/html; charset=utf-8"})
    page, *requests = spider.parse_entry(response)
    assert (page.role, page.source_id, page.error) == ("listing", "test-listing", None)
    # the listing itself is seen, the PDF is no page, the other host is off-site
    assert [(r.url, r.meta["dealwatch"]["title"]) for r in requests] == [
        (f"{BASE}/news/1", "Deal signed"), (f"{BASE}/world/news/4", "Relative")]


def test_malformed_feed_becomes_a_failed_feed_page() -> None:
    spider = spider_class("rss")(source=source())
    out = list(spider.parse_entry(xml_response(f"{BASE}/feed.xml", b"<rss><channel>")))
    assert len(out) == 1
    assert out[0].role == "feed" and out[0].error.startswith("malformed_feed: ")
    assert out[0].body == b"<rss><channel>"


def test_non_html_article_is_skipped_with_its_content_type() -> None:
    spider = spider_class("rss")(source=source())
    url = f"{BASE}/report.pdf"
    response = Response(url, body=b"%PDF", request=request_for(url, title="Report"),
                        headers={"Content-Type": "application/pdf"})
    (page,) = spider.parse_article(response)
    assert page.error == "not_html: content type application/pdf"
    assert (page.body, page.listed_title, page.status) == (b"", "Report", 200)


def test_article_page_keeps_requested_url_after_a_redirect() -> None:
    spider = spider_class("atom")(source=source("atom"))
    request = request_for(f"{BASE}/new")
    request.meta["redirect_urls"] = [f"{BASE}/old"]
    response = HtmlResponse(f"{BASE}/new", body=b"<html><p>x</p></html>", request=request,
                            headers={"Content-Type": "text/html"})
    (page,) = spider.parse_article(response)
    assert (page.url, page.final_url, page.error) == (f"{BASE}/old", f"{BASE}/new", None)


def test_http_error_becomes_a_failed_article_page() -> None:
    spider = spider_class("rss")(source=source())
    request = request_for(f"{BASE}/gone", title="Gone")
    response = Response(f"{BASE}/gone", status=404, request=request)
    failure = Failure(HttpError(response, "Ignoring non-200 response"))
    failure.request = request  # type: ignore[attr-defined]
    (page,) = spider.on_error(failure)
    assert (page.status, page.error, page.listed_title) == (404, "http_404: 404 Not Found", "Gone")


def test_failed_refetch_of_a_stored_article_does_not_overwrite_it() -> None:
    url = f"{BASE}/a"
    spider = spider_class("rss")(source=source(), known_urls={url}, refetch_known=True)
    (request,) = [r for r in spider.parse_entry(xml_response(
        f"{BASE}/feed.xml", b"<rss><channel><item><link>/a</link></item></channel></rss>"))
        if isinstance(r, Request)]
    assert request.meta["dealwatch"]["known"] is True
    failure = Failure(HttpError(Response(url, status=503, request=request), "503"))
    failure.request = request  # type: ignore[attr-defined]
    assert list(spider.on_error(failure)) == []


@pytest.mark.parametrize(("exc", "code"), [
    (PrivateNetworkRefused("10.0.0.1"), "private_network"),
    (IgnoreRequest("Forbidden by robots.txt"), "robots"),
    (CannotResolveHostError("no such host"), "dns"),
    (DownloadTimeoutError("took longer than 30 seconds"), "timeout"),
    (DownloadCancelledError("Received 9 bytes which is larger than download max size (1)"),
     "too_large"),
    (ConnectionResetError("reset"), "download"),
])
def test_failures_map_to_reason_codes(exc: Exception, code: str) -> None:
    assert describe_failure(exc)[0] == code


def test_spider_classes_cover_every_source_kind() -> None:
    assert set(SPIDER_CLASSES) == {"rss", "atom", "sitemap", "news_sitemap", "listing"}
    spider = spider_class("news_sitemap")(source=source("news_sitemap"))
    assert spider.name == "test-news-sitemap"
    with pytest.raises(ValueError, match="not 'rss'"):
        spider_class("rss")(source=source("atom"))


# --- private networks -------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "public"), [
    ("93.184.215.14", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.10", False), ("172.16.5.4", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("fd00:ec2::254", False), ("fe80::1", False), ("::ffff:127.0.0.1", False),
    ("224.0.0.1", False),
])
def test_only_public_addresses_pass(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


async def _refuse(url: str, allow_private: bool = False) -> None:
    middleware = PrivateNetworkMiddleware.from_crawler(
        get_crawler(settings_dict={"DEALWATCH_ALLOW_PRIVATE_NETWORKS": allow_private}))
    await middleware.process_request(Request(url))


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:8000/feed", "non-public address"), ("http://[::1]/", "non-public address"),
    ("http://169.254.169.254/latest", "cloud metadata address"),
    ("http://[::ffff:10.0.0.1]/", "non-public address"),
])
def test_private_network_middleware_refuses_address_literals(url: str, reason: str) -> None:
    coroutine = _refuse(url)
    with pytest.raises(PrivateNetworkRefused, match=reason):
        coroutine.send(None)  # address literals are judged without a DNS lookup


def test_allowing_private_networks_still_refuses_metadata_addresses() -> None:
    with pytest.raises(StopIteration):  # loopback passes: the coroutine simply finishes
        _refuse("http://127.0.0.1:8000/feed", allow_private=True).send(None)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
                "http://100.100.100.200/", "http://169.254.1.1/", "http://0.0.0.0:8000/"):
        with pytest.raises(PrivateNetworkRefused):
            _refuse(url, allow_private=True).send(None)


# --- settings and the store pipeline ----------------------------------------------------------

def test_crawl_settings_map_settings_toml() -> None:
    settings = crawl_settings(CrawlSettings(download_delay=2.5, autothrottle=False, retry_times=1))
    assert settings["DOWNLOAD_DELAY"] == 2.5 and settings["AUTOTHROTTLE_ENABLED"] is False
    assert settings["RETRY_TIMES"] == 1 and settings["ROBOTSTXT_OBEY"] is True
    assert "dealwatch" in settings["USER_AGENT"]
    assert settings["DEALWATCH_ALLOW_PRIVATE_NETWORKS"] is False


def test_source_settings_override_politeness_and_headers() -> None:
    overrides = source_settings(source(download_delay=5, concurrent_requests_per_domain=1,
                                       autothrottle=False, max_items=7,
                                       headers={"User-Agent": "dw-test", "X-Key": "1"}),
                                {"Accept": "text/html"})
    assert overrides == {"DOWNLOAD_DELAY": 5, "AUTOTHROTTLE_START_DELAY": 5,
                         "CONCURRENT_REQUESTS_PER_DOMAIN": 1, "AUTOTHROTTLE_ENABLED": False,
                         "DEALWATCH_MAX_ITEMS": 7, "USER_AGENT": "dw-test",
                         "DEFAULT_REQUEST_HEADERS": {"Accept": "text/html", "X-Key": "1"}}
    assert source_settings(source()) == {}


def test_store_pipeline_saves_pages_and_counts_them_by_role(tmp_path: Path) -> None:
    db_path = tmp_path / "dealwatch.db"
    with Store(db_path) as store:
        store.runs.sync_sources([source()])
        run_id = store.runs.start_run("crawl")
        crawler = get_crawler(settings_dict={"DEALWATCH_RUN_ID": run_id})
        crawler.spider = spider_class("rss")(source=source(), store=store)
        pipeline = StorePipeline.from_crawler(crawler)
        page = Page(url=f"{BASE}/a", source_id="test-rss", status=200, body=b"<html></html>")
        assert pipeline.process_item(page) is page
        assert store.pages.known_article_urls() == {canonical_url(f"{BASE}/a")}
    assert crawler.stats.get_value("dealwatch/pages/article") == 1


def test_store_pipeline_is_off_without_a_database() -> None:
    with pytest.raises(NotConfigured):
        StorePipeline.from_crawler(get_crawler())
