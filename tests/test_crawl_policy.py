"""Incremental and polite crawling, unit by unit: link policy, entry records, retries, budget, resolver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scrapy.http import Request, Response, XmlResponse
from scrapy.settings import Settings
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from models.config import Source
from models.records import Page, PageCheck
from pipeline.storage import sha256_hex
from scrapers import middlewares
from scrapers.budget import BudgetExhausted, RunBudget
from scrapers.failures import REFUSED_HOSTS, OffsiteRedirect
from scrapers.middlewares import (
    AlreadyStored,
    BackoffRetryMiddleware,
    ConditionalGetMiddleware,
    KnownRedirectMiddleware,
    PrivateNetworkMiddleware,
    PrivateNetworkRefused,
    address_refusal,
    retry_after_seconds,
)
from scrapers.resolver import PublicOnlyResolver
from scrapers.spiders import spider_class
from scrapers.spiders.base import LinkPolicy, describe_failure, max_age_days, unwrap
from scrapers.spiders.documents import Listed

BASE = "https://news.example"
FEED = b"""<rss version="2.0"><channel>
  <item><link>https://news.example/a/1.html</link></item>
  <item><link>https://news.example/a/2.html</link></item>
</channel></rss>"""


def source(kind: str = "rss", **fields: object) -> Source:
    data: dict[str, object] = {"id": "test-src", "kind": kind, "urls": [f"{BASE}/feed.xml"],
                               "allowed_domains": ["news.example"]}
    data.update(fields)
    return Source.model_validate(data)


def feed_response(body: bytes = FEED, status: int = 200, stored: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> XmlResponse:
    meta: dict[str, Any] = {"role": "feed", "referrer": None}
    if stored is not None:
        meta["stored"] = stored
    request = Request(f"{BASE}/feed.xml", meta={"dealwatch": meta})
    return XmlResponse(f"{BASE}/feed.xml", status=status, body=body, request=request,
                       headers={"Content-Type": "application/xml", **(headers or {})})


# --- which links are followed ------------------------------------------------------------------

def test_known_urls_match_in_canonical_form() -> None:
    known = {"https://news.example/a/1"}  # as store.pages.known_article_urls() gives them
    policy = LinkPolicy(source(), max_items=10, known_urls=known)
    variants = ["http://news.example/a/1", "https://www.news.example/a/1/",
                "https://news.example/a/1?utm_source=rss&utm_medium=feed",
                "https://news.example/a/1#comments", "https://news.example/a/1/amp/",
                "https://amp.news.example/a/1?fbclid=x"]
    assert [policy.decide(Listed(u))[0] for u in variants] == ["known"] + ["seen"] * 5
    assert policy.decide(Listed("https://news.example/a/1?page=2"))[0] == "follow"  # a real parameter


def test_one_story_listed_by_two_sources_is_fetched_once_per_run() -> None:
    claimed: set[str] = set()
    first = LinkPolicy(source(), max_items=10, claimed=claimed)
    second = LinkPolicy(source(urls=[f"{BASE}/other.xml"]), max_items=10, claimed=claimed)
    assert first.decide(Listed(f"{BASE}/a/1?utm_campaign=x"))[0] == "follow"
    assert second.decide(Listed("http://news.example/a/1"))[0] == "seen"
    assert second.articles == 0  # it takes nothing from the second source's max_items


def test_redirect_targets_are_claimed_once() -> None:
    policy = LinkPolicy(source(), max_items=10, known_urls={f"{BASE}/stored"})
    assert policy.claim_redirect(f"{BASE}/stored") is False
    assert policy.claim_redirect(f"{BASE}/fresh") is True
    assert policy.claim_redirect(f"{BASE}/fresh") is False


def test_aggregator_click_links_are_unwrapped_without_a_request() -> None:
    bing = ("https://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=1&url="
            "https%3a%2f%2fwww.publisher.example%2f2025%2f06%2fdeal.html%3fx%3d1&c=42&mkt=en-us")
    assert unwrap(bing, "url") == "https://www.publisher.example/2025/06/deal.html?x=1"
    assert unwrap(bing, None) == bing
    assert unwrap("https://agg.example/click?url=javascript:alert(1)", "url") == \
        "https://agg.example/click?url=javascript:alert(1)"
    policy = LinkPolicy(source(allowed_domains=[], unwrap_param="url"), max_items=5)
    assert policy.decide(Listed(bing)) == ("follow",
                                           "https://www.publisher.example/2025/06/deal.html?x=1")


def test_a_link_that_makes_no_url_is_a_bad_url_and_the_rest_are_read() -> None:
    feed = b"""<rss version="2.0"><channel>
      <item><link>https://news.example:99999/a/1.html</link></item>
      <item><link>https://news.example:80a/a/2.html</link></item>
      <item><link>http://[::1/a/3.html</link></item>
      <item><link>https://news.example/a/4.html</link></item>
    </channel></rss>"""
    spider = spider_class("rss")(source=source())
    spider.crawler = get_crawler()
    page, *requests = spider.parse_entry(feed_response(feed))
    assert isinstance(page, Page) and page.error is None  # the feed is stored
    assert [r.url for r in requests] == [f"{BASE}/a/4.html"]
    stats = spider.crawler.stats
    # The broken IPv6 literal cannot even be made absolute: parsing leaves it out.
    assert stats.get_value("dealwatch/links/bad_url") == 2
    assert stats.get_value("dealwatch/links/follow") == 1
    policy = LinkPolicy(source(), max_items=5)
    assert policy.decide(Listed("http://news.example:99999/x")) == ("bad_url",
                                                                     "http://news.example:99999/x")


def test_links_older_than_the_window_are_too_old() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    policy = LinkPolicy(source("news_sitemap"), max_items=10, max_age_days=3, now=now)
    verdicts = [policy.decide(Listed(f"{BASE}/n/{i}", date=date))[0] for i, date in enumerate([
        "2026-11-28T23:00:00Z", "2026-11-26T11:59:00Z", "2026-11-26", "2026-11-25",
        "next week", None])]
    assert verdicts == ["follow", "too_old", "follow", "too_old", "follow", "follow"]
    index_child = Listed(f"{BASE}/sitemap-2026-10.xml", date="2026-10-31", role="sitemap")
    assert policy.decide(index_child)[0] == "too_old"
    assert LinkPolicy(source(), max_items=10, now=now).decide(
        Listed(f"{BASE}/old", date="2001-01-01"))[0] == "follow"  # 0: no window


def test_max_age_days_defaults_by_kind_and_per_source() -> None:
    def max_age(src: Source, **settings: object) -> int:
        return max_age_days(src, Settings({"DEALWATCH_NEWS_SITEMAP_MAX_AGE_DAYS": 3, **settings}))

    assert max_age(source("news_sitemap")) == 3
    assert max_age(source("news_sitemap"), DEALWATCH_NEWS_SITEMAP_MAX_AGE_DAYS=0) == 0
    assert max_age(source("rss")) == 0
    assert max_age(source("rss"), DEALWATCH_MAX_AGE_DAYS=30) == 30
    assert max_age(source("news_sitemap", max_age_days=0)) == 0


# --- entry documents: conditional GET, unchanged bodies, pending links -------------------------

def test_an_entry_with_links_to_fetch_is_stored_without_validators() -> None:
    spider = spider_class("rss")(source=source())
    page, *requests = spider.parse_entry(feed_response(headers={"ETag": '"v1"'}))
    assert isinstance(page, Page) and len(requests) == 2
    assert "ETag" not in page.headers and "Etag" not in page.headers  # next run reads it in full


def test_an_entry_whose_links_are_all_handled_keeps_its_validators() -> None:
    known = {f"{BASE}/a/1.html", f"{BASE}/a/2.html"}
    spider = spider_class("rss")(source=source(), known_urls=known)
    (page,) = spider.parse_entry(feed_response(headers={"ETag": '"v1"'}))
    assert isinstance(page, Page) and page.headers.get("Etag") == '"v1"'


def test_unchanged_entry_body_is_a_check_not_a_new_page() -> None:
    known = {f"{BASE}/a/1.html", f"{BASE}/a/2.html"}
    spider = spider_class("rss")(source=source(), known_urls=known)
    stored = {"etag": '"v1"', "last_modified": None, "content_hash": sha256_hex(FEED)}
    (check,) = spider.parse_entry(feed_response(stored=stored, headers={"ETag": '"v1"'}))
    assert check == PageCheck(f"{BASE}/feed.xml", "test-src", 200)
    # Same body, links still to fetch: read them, and keep the page without validators.
    spider = spider_class("rss")(source=source())
    page, *requests = spider.parse_entry(feed_response(stored=stored, headers={"ETag": '"v1"'}))
    assert isinstance(page, Page) and "Etag" not in page.headers and len(requests) == 2


def test_304_is_a_check_and_nothing_is_parsed() -> None:
    spider = spider_class("rss")(source=source())
    stored = {"etag": '"v1"', "last_modified": None, "content_hash": "abc"}
    assert list(spider.parse_entry(feed_response(b"", 304, stored))) == [
        PageCheck(f"{BASE}/feed.xml", "test-src", 304)]
    (failed,) = spider.parse_entry(feed_response(b"", 304))  # nobody asked for a 304
    assert isinstance(failed, Page) and failed.error and failed.error.startswith("http_304")


def test_a_failed_entry_fetch_keeps_the_good_copy() -> None:
    spider = spider_class("rss")(source=source())
    stored = {"etag": '"v1"', "last_modified": None, "content_hash": "abc"}
    request = feed_response(stored=stored).request
    assert request is not None
    failure = Failure(HttpError(Response(request.url, status=503, request=request), "503"))
    failure.request = request  # type: ignore[attr-defined]
    assert list(spider.on_error(failure)) == [PageCheck(f"{BASE}/feed.xml", "test-src", 503)]
    malformed = list(spider.parse_entry(feed_response(b"<rss><channel>", stored=stored)))
    assert malformed == [PageCheck(f"{BASE}/feed.xml", "test-src", 200)]


def test_conditional_get_middleware_sends_stored_validators(tmp_path) -> None:
    from pipeline.storage import Store

    with Store(tmp_path / "d.db") as store:
        store.runs.sync_sources([source()])
        store.pages.save_page(Page(url=f"{BASE}/feed.xml", source_id="test-src", status=200, role="feed",
                             headers={"ETag": '"v1"', "Last-Modified": "Sat, 01 Nov 2026 10:00:00 GMT"},
                             body=FEED))
        crawler = get_crawler()
        crawler.spider = spider_class("rss")(source=source(), store=store)
        middleware = ConditionalGetMiddleware.from_crawler(crawler)
        entry = Request(f"{BASE}/feed.xml", meta={"dealwatch": {"role": "feed"}})
        new_entry = Request(f"{BASE}/other.xml", meta={"dealwatch": {"role": "feed"}})
        article = Request(f"{BASE}/feed.xml", meta={"dealwatch": {"role": "article"}})
        for request in (entry, new_entry, article):
            middleware.process_request(request)
    assert entry.headers["If-None-Match"] == b'"v1"'
    assert entry.headers["If-Modified-Since"] == b"Sat, 01 Nov 2026 10:00:00 GMT"
    assert entry.meta["dealwatch"]["stored"]["content_hash"] == sha256_hex(FEED)
    assert new_entry.meta["dealwatch"]["stored"] is None and b"If-None-Match" not in new_entry.headers
    assert b"If-None-Match" not in article.headers and "stored" not in article.meta["dealwatch"]


def test_known_redirect_middleware_drops_redirects_to_stored_articles() -> None:
    crawler = get_crawler()
    crawler.spider = spider_class("rss")(source=source(allowed_domains=[]),
                                         known_urls={"https://publisher.example/story"})
    middleware = KnownRedirectMiddleware.from_crawler(crawler)

    def hop(url: str, *previous: str) -> Request:
        return Request(url, meta={"redirect_urls": list(previous),
                                  "dealwatch": {"role": "article", "canonical": "https://agg.example/c"}})

    with pytest.raises(AlreadyStored):
        middleware.process_request(hop("https://www.publisher.example/story?utm_source=agg",
                                       "https://agg.example/c"))
    fresh = hop("https://publisher.example/new", "https://agg.example/c")
    middleware.process_request(fresh)
    middleware.process_request(fresh.copy())  # its own retry passes
    middleware.process_request(hop("https://agg.example/c", "http://agg.example/c"))  # http->https
    with pytest.raises(AlreadyStored):
        middleware.process_request(hop("https://publisher.example/new", "https://agg.example/d"))
    assert describe_failure(AlreadyStored("x"))[0] == "known"


def test_listed_links_may_not_redirect_off_the_allowed_domains() -> None:
    crawler = get_crawler()
    crawler.spider = spider_class("listing")(source=source("listing", allowed_domains=[],
                                                            urls=[f"{BASE}/world/"]))
    middleware = KnownRedirectMiddleware.from_crawler(crawler)

    def hop(url: str, role: str, referrer: str | None) -> Request:
        return Request(url, meta={"redirect_urls": [f"{BASE}/go"],
                                  "dealwatch": {"role": role, "referrer": referrer}})

    with pytest.raises(OffsiteRedirect, match=r"redirected to https://elsewhere\.example/story"):
        middleware.process_request(hop("https://elsewhere.example/story", "article", BASE))
    middleware.process_request(hop("https://www.news.example/story", "article", BASE))  # a subdomain
    # The listing itself (an entry URL, no referrer) may move anywhere.
    middleware.process_request(hop("https://elsewhere.example/world/", "listing", None))
    assert describe_failure(OffsiteRedirect("x"))[0] == "offsite"
    # A feed that names no allowed domains may lead anywhere.
    crawler.spider = spider_class("rss")(source=source(allowed_domains=[]))
    KnownRedirectMiddleware.from_crawler(crawler).process_request(
        hop("https://elsewhere.example/story", "article", BASE))


# --- retries ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "seconds"), [
    (b"120", 120.0), ("0", 0.0), ("Sun, 29 Nov 2026 12:01:00 GMT", 60.0),
    ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0), ("soon", None), ("", None), (None, None),
])
def test_retry_after_header_in_seconds_or_as_a_date(value: bytes | str | None,
                                                    seconds: float | None) -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds(value, now=now) == seconds


def _retry_middleware(**settings: object) -> BackoffRetryMiddleware:
    crawler = get_crawler(settings_dict={"RETRY_TIMES": 3, "DEALWATCH_RETRY_BACKOFF_BASE": 0.01,
                                         "DEALWATCH_RETRY_BACKOFF_MAX": 0.03,
                                         "DEALWATCH_RETRY_AFTER_MAX": 0.5, **settings})
    spider = spider_class("rss")(source=source())
    spider.crawler = crawler
    crawler.spider = spider
    return BackoffRetryMiddleware.from_crawler(crawler)


def test_backoff_doubles_up_to_its_cap() -> None:
    middleware = _retry_middleware()
    waits = [middleware.backoff(Request(BASE, meta={"retry_times": n})) for n in range(4)]
    assert waits == [0.01, 0.02, 0.03, 0.03]


def test_retry_after_is_honoured_and_a_long_one_is_not_retried() -> None:
    middleware = _retry_middleware()
    request = Request(f"{BASE}/busy")

    def answer(status: int, retry_after: str | None = None) -> Any:
        headers = {"Retry-After": retry_after} if retry_after else {}
        response = Response(request.url, status=status, headers=headers, request=request)
        loop = asyncio.new_event_loop()
        try:
            started = loop.time()
            result = loop.run_until_complete(middleware.process_response(request, response))
            return result, loop.time() - started
        finally:
            loop.close()

    retried, _ = answer(429, "0")
    assert isinstance(retried, Request) and retried.meta["retry_times"] == 1
    retried, waited = answer(503)
    assert isinstance(retried, Request) and waited >= 0.01
    kept, _ = answer(503, "3600")  # longer than DEALWATCH_RETRY_AFTER_MAX: not retried now
    assert isinstance(kept, Response) and kept.status == 503
    assert middleware.crawler.stats.get_value("dealwatch/retry_after_too_long") == 1
    ok, _ = answer(404)
    assert isinstance(ok, Response)


def test_a_retry_wait_ends_when_the_budget_runs_out() -> None:
    middleware = _retry_middleware(DEALWATCH_RETRY_BACKOFF_BASE=30, DEALWATCH_RETRY_BACKOFF_MAX=30)
    now = [0.0]  # the budget's clock, in the test's hands
    middleware.budget = RunBudget(max_seconds=0.3, clock=lambda: now[0])
    assert middleware.budget.take()  # the request now retried was sent
    now[0] = 1.0  # and the budget ran out while the server asked to wait
    request = Request(f"{BASE}/busy")
    response = Response(request.url, status=503, request=request)
    loop = asyncio.new_event_loop()
    try:
        started = loop.time()
        result = loop.run_until_complete(middleware.process_response(request, response))
        waited = loop.time() - started
    finally:
        loop.close()
    assert isinstance(result, Response) and waited < 2


# --- budget -------------------------------------------------------------------------------------

def test_run_budget_counts_requests_and_time_across_crawlers() -> None:
    clock = [0.0]
    budget = RunBudget(max_requests=3, max_seconds=10, clock=lambda: clock[0])
    told: list[str] = []
    budget.on_exhausted(told.append)
    budget.on_exhausted(told.append)  # a second crawler
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    assert budget.reason == "max_requests_per_run (3) reached" and len(told) == 2
    timed = RunBudget(max_seconds=10, clock=lambda: clock[0])
    clock[0] = 100.0  # a slow start-up (a busy machine): not crawl time
    assert timed.seconds_left() == 10 and not timed.exhausted
    assert timed.take() and timed.seconds_left() == 10  # the clock starts with the first request
    clock[0] = 105.0
    assert timed.take() and timed.seconds_left() == 5
    clock[0] = 110.5
    assert not timed.take() and timed.reason == "max_run_seconds (10) reached"
    assert RunBudget().take() and RunBudget().seconds_left() is None
    assert describe_failure(BudgetExhausted("spent"))[0] == "budget"


# --- private networks at connection time --------------------------------------------------------

@pytest.mark.parametrize(("address", "allowed", "refused"), [
    ("93.184.215.14", False, None), ("127.0.0.1", True, None), ("10.0.0.8", True, None),
    ("127.0.0.1", False, "non-public"), ("169.254.169.254", True, "metadata"),
    ("fd00:ec2::254", True, "metadata"), ("100.100.100.200", True, "metadata"),
    ("168.63.129.16", True, "metadata"), ("169.254.10.1", True, "link-local"),
    ("fe80::1", True, "link-local"), ("::ffff:169.254.169.254", True, "metadata"),
    ("64:ff9b::a9fe:a9fe", True, "metadata"), ("2002:a9fe:a9fe::1", True, "metadata"),
    ("0.0.0.0", True, "unspecified"), ("2002:0a00:0001::1", False, "non-public"),
    ("2606:4700::6810:84e5", False, None), ("::1", False, "non-public"), ("::1", True, None),
    ("::", True, "unspecified"),
    # IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64 (well-known and
    # local-use): judged by the IPv4 address they carry
    ("::127.0.0.1", False, "non-public"), ("::127.0.0.1", True, None),
    ("::169.254.169.254", True, "metadata"), ("::10.1.2.3", False, "non-public"),
    ("::8.8.8.8", False, None), ("::ffff:0:a9fe:a9fe", True, "metadata"),
    ("::ffff:0:7f00:1", False, "non-public"), ("::ffff:0:808:808", False, None),
    ("64:ff9b::a00:1", False, "non-public"), ("64:ff9b::808:808", False, None),
    ("64:ff9b::169.254.10.1", True, "link-local"),
    ("64:ff9b:1::a9fe:a9fe", True, "metadata"), ("64:ff9b:1::a9fe:a9fe", False, "metadata"),
    # local-use NAT64 translates to whatever the local translator says: never public
    ("64:ff9b:1::808:808", False, "non-public"), ("64:ff9b:1::a00:1", True, None),
    # deprecated site-local (fec0::/10), unassigned and unique-local IPv6
    ("fec0::1", False, "site-local"), ("fec0::1", True, "site-local"),
    ("fe00::1", False, "non-public"), ("4000::1", False, "non-public"),
    ("fd12:3456::1", False, "non-public"), ("fd12:3456::1", True, None),
])
def test_address_refusal(address: str, allowed: bool, refused: str | None) -> None:
    import ipaddress

    reason = address_refusal(ipaddress.ip_address(address), allow_private=allowed)
    assert (reason is None) if refused is None else (reason is not None and refused in reason)


def test_address_refusal_names_the_setting_and_the_embedded_address() -> None:
    import ipaddress

    reason = address_refusal(ipaddress.ip_address("::127.0.0.1"))
    assert reason == ("non-public address ::7f00:1 (IPv4-compatible form of 127.0.0.1; "
                      "set crawl.allow_private_networks = true to allow)")
    always = address_refusal(ipaddress.ip_address("::ffff:0:a9fe:a9fe"), allow_private=True)
    assert always is not None and "IPv4-translated form of 169.254.169.254" in always
    assert "whatever crawl.allow_private_networks says" in always


class _FakeUpstream:
    """A name resolver whose answers the test chooses (and changes: DNS rebinding)."""

    def __init__(self, answers: dict[str, list[Any]]):
        self.answers = answers

    def resolveHostName(self, receiver: Any, host: str, port: int = 0, *args: Any) -> Any:
        receiver.resolutionBegan(object())
        for address in self.answers.get(host, []):
            receiver.addressResolved(address)
        receiver.resolutionComplete()
        return receiver


class _Receiver:
    def __init__(self) -> None:
        self.addresses: list[Any] = []
        self.done = False

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        self.done = True


def _resolve(resolver: PublicOnlyResolver, host: str) -> list[Any]:
    receiver = _Receiver()
    resolver.resolveHostName(receiver, host, 80)
    assert receiver.done
    return receiver.addresses


def test_resolver_refuses_non_public_answers_at_connection_time() -> None:
    upstream = _FakeUpstream({
        "news.example": [IPv4Address("TCP", "93.184.215.14", 80)],
        "rebind.example": [IPv4Address("TCP", "93.184.215.15", 80)],
        "mixed.example": [IPv4Address("TCP", "93.184.215.16", 80), IPv6Address("TCP", "::1", 80)],
        "meta.example": [IPv4Address("TCP", "169.254.169.254", 80)],
        "intranet.example": [IPv4Address("TCP", "10.1.2.3", 80)],
    })
    reactor = type("Reactor", (), {"nameResolver": upstream})()
    strict = PublicOnlyResolver(reactor, cache_size=0)
    assert [a.host for a in _resolve(strict, "news.example")] == ["93.184.215.14"]
    assert _resolve(strict, "mixed.example") == []
    assert _resolve(strict, "intranet.example") == []
    assert "non-public address 10.1.2.3" in REFUSED_HOSTS["intranet.example"]
    # The name answered a public address when the pre-check looked; now it points inside.
    assert _resolve(strict, "rebind.example") != []
    upstream.answers["rebind.example"] = [IPv4Address("TCP", "127.0.0.1", 80)]
    assert _resolve(strict, "rebind.example") == []
    lenient = PublicOnlyResolver(reactor, cache_size=0, allow_private=True)
    assert [a.host for a in _resolve(lenient, "intranet.example")] == ["10.1.2.3"]
    assert _resolve(lenient, "meta.example") == []
    assert "cloud metadata address" in REFUSED_HOSTS["meta.example"]


def test_resolver_checks_cached_answers_too() -> None:
    from scrapy.resolver import dnscache

    upstream = _FakeUpstream({"cached.example": [IPv4Address("TCP", "169.254.169.254", 80)]})
    reactor = type("Reactor", (), {"nameResolver": upstream})()
    resolver = PublicOnlyResolver(reactor, cache_size=100, allow_private=True)
    try:
        assert _resolve(resolver, "cached.example") == []
        assert "cached.example" in dnscache
        assert _resolve(resolver, "cached.example") == []  # the cache hit is checked as well
    finally:
        dnscache.pop("cached.example", None)


def test_one_lookup_per_host_name_for_every_crawler_of_the_process(monkeypatch) -> None:
    lookups: dict[str, Deferred[list[str] | None]] = {}

    def in_thread(resolve: Any, host: str, port: int) -> Deferred[list[str] | None]:
        assert host not in lookups, f"{host} looked up twice"
        lookups[host] = Deferred()
        return lookups[host]

    monkeypatch.setattr(middlewares, "deferToThread", in_thread)
    monkeypatch.setattr(middlewares, "_LOOKUPS", {})
    # Two sources, two crawlers: their middlewares share the lookups.
    first, second = (PrivateNetworkMiddleware.from_crawler(get_crawler()) for _ in range(2))

    async def crawl() -> list[Any]:
        asking = [asyncio.ensure_future(middleware.process_request(Request(f"http://{host}/{i}")))
                  for i, (middleware, host) in enumerate([
                      (first, "news.example"), (second, "news.example"), (first, "intranet.example"),
                      (second, "intranet.example"), (second, "news.example")])]
        await asyncio.sleep(0)  # every request is waiting on a lookup now
        lookups["news.example"].callback(["93.184.215.14"])
        lookups["intranet.example"].callback(["10.1.2.3"])
        answers = await asyncio.gather(*asking, return_exceptions=True)
        later = await asyncio.gather(first.process_request(Request("http://intranet.example/x")),
                                     return_exceptions=True)
        return answers + later

    answers = asyncio.run(crawl())
    assert sorted(lookups) == ["intranet.example", "news.example"]
    refused = [isinstance(a, PrivateNetworkRefused) for a in answers]
    assert refused == [False, False, True, True, False, True]  # every waiter got the answer


def test_dns_failure_of_a_refused_host_is_reported_as_private_network() -> None:
    from scrapy.exceptions import CannotResolveHostError

    REFUSED_HOSTS["refused.example"] = "refused.example resolves to cloud metadata address 169.254.169.254"
    spider = spider_class("rss")(source=source(allowed_domains=[]))
    request = Request("http://refused.example/x", meta={"dealwatch": {"role": "article"}})
    failure = Failure(CannotResolveHostError("Couldn't find the hostname 'refused.example'"))
    failure.request = request  # type: ignore[attr-defined]
    (page,) = spider.on_error(failure)
    assert page.error.startswith("private_network: refused.example resolves to cloud metadata")
    assert describe_failure(failure.value)[0] == "dns"  # without the request: no host to tell by


def test_budget_refusals_and_known_redirects_record_nothing() -> None:
    spider = spider_class("rss")(source=source())
    for exc in (BudgetExhausted("spent"), AlreadyStored("stored")):
        request = Request(f"{BASE}/a", meta={"dealwatch": {"role": "article"}})
        failure = Failure(exc)
        failure.request = request  # type: ignore[attr-defined]
        assert list(spider.on_error(failure)) == []


def test_empty_article_is_recorded_with_its_reason() -> None:
    from scrapy.http import HtmlResponse

    spider = spider_class("rss")(source=source())
    request = Request(f"{BASE}/a", meta={"dealwatch": {"role": "article"}})
    response = HtmlResponse(f"{BASE}/a", body=b"  \n", request=request,
                            headers={"Content-Type": "text/html"})
    (page,) = spider.parse_article(response)
    assert page.error == "empty: empty body"


def test_late_dates_fall_inside_the_window() -> None:
    now = datetime.now(UTC)
    policy = LinkPolicy(source("news_sitemap"), max_items=5, max_age_days=3)
    tomorrow = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert policy.decide(Listed(f"{BASE}/n/1", date=tomorrow))[0] == "follow"


# --- per-source options --------------------------------------------------------------------------

def test_a_source_language_becomes_its_accept_language() -> None:
    from scrapers.settings import source_settings

    base = {"Accept": "text/html", "Accept-Language": "en"}
    assert source_settings(source(language="es"), base)["DEFAULT_REQUEST_HEADERS"] == {
        "Accept": "text/html", "Accept-Language": "es"}
    own = source_settings(source(language="es", headers={"Accept-Language": "es-MX, es"}), base)
    assert own["DEFAULT_REQUEST_HEADERS"]["Accept-Language"] == "es-MX, es"


@pytest.mark.parametrize(("fields", "message"), [
    ({"unwrap_param": "url&x"}, "unwrap_param"), ({"max_age_days": -1}, "max_age_days"),
    ({"max_age": 3}, "max_age"),
])
def test_new_source_fields_are_validated(fields: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        source(**fields)
