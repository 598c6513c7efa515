"""The spider every source kind shares: which links to follow, and how fetches become pages."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urldefrag, urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import StopDownload
from scrapy.http import HtmlResponse, Request, Response
from scrapy.http.headers import Headers
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure
from w3lib.url import safe_url_string

from models.config import Source
from models.records import Page, PageCheck
from pipeline.dates import listed_datetime
from pipeline.storage import Store, sha256_hex
from pipeline.storage.frontier import SharedUrls
from pipeline.urls import canonical_url
from scrapers.budget import RunBudget
from scrapers.failures import describe_failure
from scrapers.middlewares import has_validators, requested_url
from scrapers.reasons import SKIP_CODES
from scrapers.settings import source_settings
from scrapers.spiders.documents import Listed, MalformedDocument, newest_first
from scrapers.stats import inc_stat

logger = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
# Verdicts on a listed link that leave work for a later run (the link is neither stored nor
# ruled out), so the entry listing it must be read again next time.
PENDING_VERDICTS = frozenset({"follow", "over_limit"})
VALIDATOR_HEADERS = frozenset({"etag", "last-modified"})
# The article URLs taken in this run: a set in one crawl, or shared by crawl workers through Redis
# (pipeline.storage.frontier.SharedUrls, whose `take` is an atomic test-and-set).
Claims = set[str] | SharedUrls


def host_matches(host: str, domains: Collection[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def unwrap(url: str, param: str | None) -> str:
    """The publisher URL an aggregator's click-through link carries in its query parameter
    `param` (Bing News: apiclick.aspx?...&url=https%3a%2f%2f...), else the link itself."""
    if not param:
        return url
    values = parse_qs(urlsplit(url.strip()).query).get(param)
    if values and re.match(r"^https?://[^/\s]+", values[0], re.IGNORECASE):
        return values[0]
    return url


@dataclass(frozen=True, slots=True)
class Decision:
    """The link policy's verdict on a listed link ("follow", or why the link is left alone)."""

    verdict: str
    url: str  # as it is requested and stored (clean_url); the link as listed when "bad_url"
    canonical: str | None = None  # of an article link followed
    refetch: bool = False  # an article link followed although stored already (refetch_known)


class LinkPolicy:
    """Decides which listed links a source's crawl follows; one instance per crawl of a source.

    An aggregator's click-through link is first unwrapped to the publisher's URL (the
    source's `unwrap_param`). Links dated before the max_age_days window are too old. Article
    links must be http(s), on an allowed domain (when the source names any), match one
    `allow` pattern (when there are any) and no `deny` pattern, not be stored already (unless
    refetching), not be taken by this run already (by this source or, through the shared
    `claimed` set, another one), and fit within max_items. Stored and taken are judged on
    canonical URLs (pipeline.urls.canonical_url): tracking parameters, fragments, `www.`,
    http/https and AMP variants make no new article. Child sitemaps of an index only need
    the domain and date checks and fit within max_sitemaps. A link that makes no URL at all
    is a "bad_url", and only that link is lost. Where a followed link redirects to is checked
    too (scrapers.middlewares.KnownRedirectMiddleware: `offsite`, `claim_redirect`).
    """

    def __init__(self, source: Source, max_items: int, known_urls: Collection[str] = (),
                 refetch_known: bool = False, max_sitemaps: int = 20, max_age_days: int = 0,
                 claimed: Claims | None = None, now: datetime | None = None):
        domains = [d.lower().strip(".") for d in source.allowed_domains]
        if not domains and source.kind == "listing":
            # A listing page links everywhere (nav, ads, other sites): never leave its site.
            domains = sorted({(urlsplit(u).hostname or "").lower() for u in source.urls} - {""})
        self.allowed_domains = domains
        self.allow = [re.compile(p) for p in source.allow]
        self.deny = [re.compile(p) for p in source.deny]
        self.unwrap_param = source.unwrap_param
        self.max_items = max_items
        self.max_sitemaps = max_sitemaps
        self.known = known_urls  # canonical URLs of stored articles
        self.refetch_known = refetch_known
        # Canonical article URLs fetched (or being fetched) in this run, by any source.
        self.claimed: Claims = claimed if claimed is not None else set()
        # Canonical URLs this source has decided on already (its own entry URLs included).
        self.handled: set[str] = {canonical_url(u) for u in source.urls}
        self.seen: set[str] = {clean_url(u) for u in source.urls}  # entries and sitemaps
        self.cutoff = ((now or datetime.now(UTC)) - timedelta(days=max_age_days)
                       if max_age_days else None)
        self.articles = 0
        self.sitemaps = 0

    @property
    def full(self) -> bool:
        """True once max_items article links have been followed."""
        return self.articles >= self.max_items

    def too_old(self, date: str | None) -> bool:
        """True when a listed date lies before the window (an unreadable date never does)."""
        if self.cutoff is None:
            return False
        when = listed_datetime(date)
        if when is None:
            return False
        if date is not None and len(date) == 10:  # a day without a time: judge the day
            return when.date() < self.cutoff.date()
        return when < self.cutoff

    def offsite(self, url: str) -> bool:
        """True when the URL's host lies outside the allowed domains (when there are any)."""
        if not self.allowed_domains:
            return False
        return not host_matches(urlsplit(url).hostname or "", self.allowed_domains)

    def decide(self, listed: Listed) -> tuple[str, str]:
        """(verdict, url) of judge(): "follow", or why the link is left alone."""
        decision = self.judge(listed)
        return decision.verdict, decision.url

    def judge(self, listed: Listed) -> Decision:
        """The verdict on a listed link; a link that makes no URL (a port out of range, a
        broken IPv6 literal) is "bad_url", and the other links of its entry are read on."""
        try:
            url = clean_url(unwrap(listed.url, self.unwrap_param))
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError:
            return Decision("bad_url", listed.url)
        if parts.scheme not in ("http", "https") or not hostname:
            return Decision("not_http", url)
        if self.offsite(url):
            return Decision("offsite", url)
        if self.too_old(listed.date):
            return Decision("too_old", url)
        if listed.role == "sitemap":
            if url in self.seen:
                return Decision("seen", url)
            if self.sitemaps >= self.max_sitemaps:
                return Decision("over_limit", url)
            self.seen.add(url)
            self.sitemaps += 1
            return Decision("follow", url)
        if self.allow and not any(p.search(url) for p in self.allow):
            return Decision("not_allowed", url)
        if any(p.search(url) for p in self.deny):
            return Decision("denied", url)
        canonical = canonical_url(url)
        if canonical in self.handled:
            return Decision("seen", url)
        stored = canonical in self.known
        if stored and not self.refetch_known:
            self.handled.add(canonical)
            return Decision("known", url)
        if canonical in self.claimed:
            self.handled.add(canonical)
            # taken: by another crawl worker this night (the shared set); seen: by another source
            return Decision("seen" if isinstance(self.claimed, set) else "taken", url)
        if self.full:
            return Decision("over_limit", url)
        self.handled.add(canonical)
        if not self._take(canonical):  # another crawl worker took it since the check above
            return Decision("taken", url)
        self.articles += 1
        return Decision("follow", url, canonical, refetch=stored)

    def claim_redirect(self, canonical: str) -> bool:
        """Take the target of an article request's redirect for this run; False when it is
        stored already (and not refetched) or taken in this run already."""
        if (canonical in self.known and not self.refetch_known) or canonical in self.claimed:
            return False
        return self._take(canonical)

    def _take(self, canonical: str) -> bool:
        """Claim the URL for this run; False when another crawl worker got it first."""
        if isinstance(self.claimed, set):
            self.claimed.add(canonical)
            return True
        return self.claimed.take(canonical)


def clean_url(url: str) -> str:
    """The URL as it is requested and stored: percent-encoded, without its #fragment."""
    return urldefrag(safe_url_string(url.strip()))[0]


def content_type(headers: Headers) -> str:
    """The Content-Type header as served ("" when there is none)."""
    value = headers.get("Content-Type")
    return value.decode("latin-1") if value else ""


def is_html_type(served: str) -> bool:
    """True when a Content-Type value names HTML (whatever its parameters)."""
    return served.split(";", 1)[0].strip().lower() in HTML_TYPES


def is_html(response: Response) -> bool:
    """True for an HTML response: by its Content-Type, or as Scrapy guessed without one."""
    served = content_type(response.headers)
    return is_html_type(served) if served else isinstance(response, HtmlResponse)


def header_dict(response: Response) -> dict[str, str]:
    return {str(k): str(v) for k, v in response.headers.to_unicode_dict().items()}


def header_validators(headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(etag, last_modified) of a header dict, whatever the case of its names."""
    lower = {k.lower(): v for k, v in headers.items()}
    return lower.get("etag"), lower.get("last-modified")


def request_of(response: Response) -> Request:
    """The request a response answers (Scrapy always sets it on responses it downloads)."""
    if response.request is None:
        return Request(response.url)
    return response.request


def max_age_days(source: Source, settings: BaseSettings) -> int:
    """The source's date window in days (0: none): its own, else the one for its kind."""
    if source.max_age_days is not None:
        return source.max_age_days
    if source.kind == "news_sitemap":
        return settings.getint("DEALWATCH_NEWS_SITEMAP_MAX_AGE_DAYS", 3)
    return settings.getint("DEALWATCH_MAX_AGE_DAYS", 0)


class SourceSpider(scrapy.Spider):
    """Fetches a source's entry documents, follows the links they list, yields every fetch as a Page.

    Subclasses say how an entry document lists links (`entries`); they never look inside
    article pages (extraction is a later stage).

    Entry documents are fetched conditionally (scrapers.middlewares.ConditionalGetMiddleware).
    A 304 or a body identical to the stored one yields a PageCheck, not a new Page. An entry is
    stored with its validators (ETag, Last-Modified) only when every link it lists has been
    dealt with: stored, ruled out, or too old. While links are pending (followed in this
    run, over max_items, failed) it is stored without them, so the next run reads it in full
    and picks up what is left, even after a crawl that was killed or ran out of budget.
    """

    kind: ClassVar[str]
    entry_role: ClassVar[str]  # feed | sitemap | listing

    def __init__(self, source: Source, known_urls: Collection[str] = (), max_items: int = 200,
                 refetch_known: bool = False, max_sitemaps: int = 20, max_age_days: int = 0,
                 claimed: Claims | None = None, budget: RunBudget | None = None,
                 store: Store | None = None, **kwargs: Any):
        if source.kind != self.kind:
            raise ValueError(f"source {source.id!r} is of kind {source.kind!r}, "
                             f"not {self.kind!r}")
        super().__init__(name=source.id, **kwargs)
        self.source = source
        self.budget = budget  # read by BudgetMiddleware and BackoffRetryMiddleware
        # Read by ConditionalGetMiddleware and StorePipeline; the crawl stores nothing without.
        self.store = store
        self.policy = LinkPolicy(source, max_items, known_urls, refetch_known, max_sitemaps,
                                 max_age_days, claimed)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        source: Source = kwargs["source"]
        # Scrapy freezes a crawler's settings only after creating its spider, so the source's
        # own politeness settings still apply to this crawler (and its download slots) here.
        base_headers = crawler.settings.getdict("DEFAULT_REQUEST_HEADERS")
        crawler.settings.setdict(source_settings(source, base_headers), priority="spider")
        settings = crawler.settings
        kwargs.setdefault("max_items", settings.getint("DEALWATCH_MAX_ITEMS", 200))
        kwargs.setdefault("refetch_known", settings.getbool("DEALWATCH_REFETCH_KNOWN"))
        kwargs.setdefault("max_sitemaps", settings.getint("DEALWATCH_MAX_SITEMAPS", 20))
        kwargs.setdefault("max_age_days", max_age_days(source, settings))
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.headers_received, signal=signals.headers_received)
        return spider

    # -- what subclasses provide --

    def entries(self, response: Response) -> list[Listed]:
        """The links an entry document lists; raise MalformedDocument when it cannot be read."""
        raise NotImplementedError

    # -- requests --

    async def start(self) -> AsyncIterator[Any]:
        for url in self.source.urls:
            yield self.entry_request(clean_url(url), self.entry_role, referrer=None,
                                     dont_filter=True)

    def entry_request(self, url: str, role: str, referrer: str | None,
                      dont_filter: bool = False) -> Request:
        # A 304 answers our conditional GET; it reaches parse_entry instead of failing.
        return Request(url, callback=self.parse_entry, errback=self.on_error,
                       dont_filter=dont_filter,
                       meta={"dealwatch": {"role": role, "referrer": referrer},
                             "handle_httpstatus_list": [304]})

    def follow(self, listed: Listed, referrer: str) -> tuple[str, Request | None]:
        """(verdict, request): the policy's verdict on a listed link, and the request to send."""
        decision = self.policy.judge(listed)
        verdict = decision.verdict
        self._count(f"dealwatch/links/{verdict}")
        if verdict == "bad_url":
            logger.info("%s: unreadable link %r in %s", self.name, listed.url, referrer)
        if verdict != "follow":
            return verdict, None
        if listed.role == "sitemap":
            # The policy has seen to it that each child is asked for once. Scrapy's dupefilter
            # must not drop one (a URL that an earlier child redirected to): a dropped request
            # gets no callback, and the next child sitemap is only sent from a callback.
            return verdict, self.entry_request(decision.url, "sitemap", referrer,
                                               dont_filter=True)
        return verdict, Request(decision.url, callback=self.parse_article, errback=self.on_error,
                                meta={"dealwatch": {"role": "article", "referrer": referrer,
                                                    "title": listed.title, "date": listed.date,
                                                    "known": decision.refetch,
                                                    "canonical": decision.canonical}})

    def headers_received(self, headers: Headers, body_length: int, request: Request,
                         spider: scrapy.Spider) -> None:
        """Stop downloading an article as soon as its headers say it is not HTML (a PDF, a
        video): parse_article records it as skipped, without its body."""
        if spider is not self or request.meta.get("dealwatch", {}).get("role") != "article":
            return
        served = content_type(headers)
        if served and not is_html_type(served):
            raise StopDownload(fail=False)

    # -- callbacks --

    def parse_entry(self, response: Response) -> Iterator[Any]:
        meta = response.meta["dealwatch"]
        role = meta["role"]
        request = request_of(response)
        stored = meta.get("stored")
        if response.status == 304:
            if has_validators(stored):  # the answer to our conditional request
                self._count("dealwatch/not_modified")
                yield PageCheck(requested_url(request), self.name, 304)
            else:
                yield from self.failure(request, role, "http_304",
                                        "304 Not Modified to an unconditional request", response)
            return
        try:
            listed = newest_first(self.entries(response))
        except MalformedDocument as exc:
            # Keep the body: whoever looks into the failure wants to see what was served.
            yield from self.failure(request, role, f"malformed_{role}", str(exc),
                                    response, keep_body=True)
            return
        pending = False
        requests = []
        for entry in listed:
            verdict, follow_request = self.follow(entry, response.url)
            pending = pending or verdict in PENDING_VERDICTS
            if follow_request is not None:
                requests.append(follow_request)
        yield self.entry_record(response, role, stored, pending)
        yield from requests

    def entry_record(self, response: Response, role: str, stored: dict[str, Any] | None,
                     pending: bool) -> Page | PageCheck:
        """The fetched entry as a Page to store, or a PageCheck when the store has it already."""
        page = self.page(response, role)
        if pending:
            page.headers = {k: v for k, v in page.headers.items()
                            if k.lower() not in VALIDATOR_HEADERS}
        if stored is not None and stored.get("content_hash") == sha256_hex(page.body):
            self._count("dealwatch/unchanged")
            if (stored.get("etag"), stored.get("last_modified")) == header_validators(page.headers):
                return PageCheck(page.url, self.name, response.status)
        return page

    def parse_article(self, response: Response) -> Iterator[Page | PageCheck]:
        meta = response.meta["dealwatch"]
        request = request_of(response)
        if not is_html(response):
            yield from self.failure(request, "article", "not_html",
                                    f"content type {content_type(response.headers) or 'unknown'}",
                                    response)
            return
        if not response.body.strip():
            yield from self.failure(request, "article", "empty", "empty body", response)
            return
        self._count("dealwatch/articles_ok")
        if not meta.get("known"):
            self._count("dealwatch/articles_new")
        yield self.page(response, "article")

    def on_error(self, failure: Failure) -> Iterator[Page | PageCheck | Request]:
        request: Request = failure.request  # type: ignore[attr-defined]
        role = request.meta.get("dealwatch", {}).get("role", "article")
        code, detail = describe_failure(failure.value, request)
        if code == "budget":
            # Not tried: nothing to record, the next run sends it.
            self._count("dealwatch/budget_skipped")
            return
        if code == "known":
            self._count("dealwatch/links/known")
            return
        yield from self.failure(request, role, code, detail,
                                getattr(failure.value, "response", None))

    # -- pages --

    def page(self, response: Response, role: str) -> Page:
        meta = response.meta.get("dealwatch", {})
        return Page(url=requested_url(request_of(response)), source_id=self.name,
                    status=response.status, final_url=response.url, role=role,
                    headers=header_dict(response), body=response.body,
                    referrer=meta.get("referrer"), listed_title=meta.get("title"),
                    listed_date=meta.get("date"))

    def failure(self, request: Request, role: str, code: str, detail: str,
                response: Response | None = None, keep_body: bool = False
                ) -> Iterator[Page | PageCheck]:
        """Count and log a failed or skipped fetch, and yield the record of it.

        What was stored before is never overwritten by a failure: an article stored before
        (fetched again because refetch_known_articles is on) yields nothing, and an entry
        document stored before yields a PageCheck with the failed status, so its good copy
        and validators stay. Anything else yields a failed Page.
        """
        self._count(f"dealwatch/errors/{code}")
        if role != "article":
            self._count("dealwatch/entry_errors")
        elif code not in SKIP_CODES:
            self._count("dealwatch/article_failures")
        level = logging.INFO if code in SKIP_CODES else logging.WARNING
        logger.log(level, "%s: %s %s: %s: %s", self.name, role, request.url, code, detail)
        meta = request.meta.get("dealwatch", {})
        if meta.get("known"):
            return
        if role != "article" and meta.get("stored"):
            yield PageCheck(requested_url(request), self.name,
                            response.status if response is not None else 0)
            return
        yield self.failed_page(request, role, code, detail, response, keep_body)

    def failed_page(self, request: Request, role: str, code: str, detail: str,
                    response: Response | None = None, keep_body: bool = False) -> Page:
        """A page recording why a fetch failed or was skipped (error = "code: detail")."""
        meta = request.meta.get("dealwatch", {})
        return Page(url=requested_url(request), source_id=self.name,
                    status=response.status if response is not None else 0,
                    final_url=response.url if response is not None else request.url, role=role,
                    headers=header_dict(response) if response is not None else {},
                    body=response.body if keep_body and response is not None else b"",
                    error=f"{code}: {detail}", referrer=meta.get("referrer"),
                    listed_title=meta.get("title"), listed_date=meta.get("date"))

    def _count(self, key: str) -> None:
        # A spider built without a crawler (parsing tests) simply counts nothing.
        inc_stat(getattr(self, "crawler", None), key)
