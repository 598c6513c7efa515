"""The spider every source kind shares: which links to follow, and how fetches become pages."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urldefrag, urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    StopDownload,
)
from scrapy.http import HtmlResponse, Request, Response
from scrapy.http.headers import Headers
from scrapy.settings import BaseSettings
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.response import response_status_message
from twisted.python.failure import Failure
from w3lib.url import safe_url_string

from models.config import Source
from models.records import Page, PageCheck
from pipeline.dedup import canonical_url
from pipeline.store import sha256_hex
from scrapers.budget import BudgetExhausted, RunBudget
from scrapers.middlewares import (
    AlreadyStored,
    PrivateNetworkRefused,
    has_validators,
    refused_host_reason,
)
from scrapers.settings import source_settings
from scrapers.spiders.documents import Listed, MalformedDocument, newest_first

logger = logging.getLogger(__name__)

# Failures that are deliberate skips, not signs that a source is broken.
SKIP_CODES = frozenset({"robots", "not_html"})
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Verdicts on a listed link that leave work for a later run (the link is neither stored nor
# ruled out), so the entry listing it must be read again next time.
PENDING_VERDICTS = frozenset({"follow", "over_limit"})
VALIDATOR_HEADERS = frozenset({"etag", "last-modified"})


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


def listed_datetime(date: str | None) -> datetime | None:
    """A listed date (as normalise_date leaves it) as an aware datetime; None when unreadable."""
    if not date or not date[:1].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(date)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class LinkPolicy:
    """Decides which listed links a source's crawl follows; one instance per crawl of a source.

    An aggregator's click-through link is first unwrapped to the publisher's URL (the
    source's `unwrap_param`). Links dated before the max_age_days window are too old. Article
    links must be http(s), on an allowed domain (when the source names any), match one
    `allow` pattern (when there are any) and no `deny` pattern, not be stored already (unless
    refetching), not be taken by this run already (by this source or, through the shared
    `claimed` set, another one), and fit within max_items. Stored and taken are judged on
    canonical URLs (pipeline.dedup.canonical_url): tracking parameters, fragments, `www.`,
    http/https and AMP variants make no new article. Child sitemaps of an index only need
    the domain and date checks and fit within max_sitemaps.
    """

    def __init__(self, source: Source, max_items: int, known_urls: Collection[str] = (),
                 refetch_known: bool = False, max_sitemaps: int = 20, max_age_days: int = 0,
                 claimed: set[str] | None = None, now: datetime | None = None):
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
        self.claimed: set[str] = claimed if claimed is not None else set()
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

    def decide(self, listed: Listed) -> tuple[str, str]:
        """(verdict, cleaned url); the verdict is "follow" or why the link is left alone."""
        url = clean_url(unwrap(listed.url, self.unwrap_param))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "not_http", url
        if self.allowed_domains and not host_matches(parts.hostname, self.allowed_domains):
            return "offsite", url
        if self.too_old(listed.date):
            return "too_old", url
        if listed.role == "sitemap":
            if url in self.seen:
                return "seen", url
            if self.sitemaps >= self.max_sitemaps:
                return "over_limit", url
            self.seen.add(url)
            self.sitemaps += 1
            return "follow", url
        if self.allow and not any(p.search(url) for p in self.allow):
            return "not_allowed", url
        if any(p.search(url) for p in self.deny):
            return "denied", url
        canonical = canonical_url(url)
        if canonical in self.handled:
            return "seen", url
        if canonical in self.known and not self.refetch_known:
            self.handled.add(canonical)
            return "known", url
        if canonical in self.claimed:
            self.handled.add(canonical)
            return "seen", url
        if self.full:
            return "over_limit", url
        self.handled.add(canonical)
        self.claimed.add(canonical)
        self.articles += 1
        return "follow", url

    def claim_redirect(self, canonical: str) -> bool:
        """Take the target of an article request's redirect for this run; False when it is
        stored already (and not refetched) or taken in this run already."""
        if (canonical in self.known and not self.refetch_known) or canonical in self.claimed:
            return False
        self.claimed.add(canonical)
        return True


def clean_url(url: str) -> str:
    """The URL as it is requested and stored: percent-encoded, without its #fragment."""
    return urldefrag(safe_url_string(url.strip()))[0]


def requested_url(request: Request) -> str:
    """The URL first asked for, before any redirect."""
    return str(request.meta.get("redirect_urls", [request.url])[0])


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """(reason code, detail) for a failed request; the code keys the error counters."""
    if isinstance(exc, HttpError) and exc.response is not None:
        return f"http_{exc.response.status}", response_status_message(exc.response.status)
    if isinstance(exc, PrivateNetworkRefused):
        return "private_network", str(exc)
    if isinstance(exc, BudgetExhausted):
        return "budget", str(exc)
    if isinstance(exc, AlreadyStored):
        return "known", str(exc)
    if isinstance(exc, IgnoreRequest):
        text = str(exc)
        if "robots.txt" in text:
            return "robots", "forbidden by robots.txt"
        if "offsite" in text.lower():
            return "offsite", text
        if "max redirections" in text:
            return "too_many_redirects", text
        return "ignored", text or type(exc).__name__
    if isinstance(exc, CannotResolveHostError):
        return "dns", str(exc) or "cannot resolve host"
    if isinstance(exc, DownloadTimeoutError):
        return "timeout", str(exc)
    if isinstance(exc, DownloadConnectionRefusedError):
        return "connection", str(exc) or "connection refused"
    if isinstance(exc, DownloadCancelledError) and "max size" in str(exc):
        return "too_large", str(exc)
    if isinstance(exc, ResponseDataLossError):
        return "data_loss", str(exc)
    return "download", f"{type(exc).__name__}: {exc}"


def content_type(response: Response) -> str:
    """The Content-Type header as served ("" when there is none)."""
    value = response.headers.get("Content-Type")
    return value.decode("latin-1") if value else ""


def is_html(response: Response) -> bool:
    served = content_type(response)
    if served:
        return served.split(";", 1)[0].strip().lower() in HTML_TYPES
    return isinstance(response, HtmlResponse)


def header_dict(response: Response) -> dict[str, str]:
    return {str(k): str(v) for k, v in response.headers.to_unicode_dict().items()}


def validators_of(headers: dict[str, str]) -> tuple[str | None, str | None]:
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
                 claimed: set[str] | None = None, budget: RunBudget | None = None,
                 **kwargs: Any):
        if source.kind != self.kind:
            raise ValueError(f"source {source.id!r} is of kind {source.kind!r}, "
                             f"not {self.kind!r}")
        super().__init__(name=source.id, **kwargs)
        self.source = source
        self.known_urls = known_urls  # canonical URLs of stored articles
        self.budget = budget  # read by BudgetMiddleware and BackoffRetryMiddleware
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
        verdict, url = self.policy.decide(listed)
        self._count(f"dealwatch/links/{verdict}")
        if verdict != "follow":
            return verdict, None
        if listed.role == "sitemap":
            return verdict, self.entry_request(url, "sitemap", referrer)
        canonical = canonical_url(url)
        known = canonical in self.known_urls
        return verdict, Request(url, callback=self.parse_article, errback=self.on_error,
                                meta={"dealwatch": {"role": "article", "referrer": referrer,
                                                    "title": listed.title, "date": listed.date,
                                                    "known": known, "canonical": canonical}})

    def headers_received(self, headers: Headers, body_length: int, request: Request,
                         spider: scrapy.Spider) -> None:
        """Stop downloading an article as soon as its headers say it is not HTML (a PDF, a
        video): parse_article records it as skipped, without its body."""
        if spider is not self or request.meta.get("dealwatch", {}).get("role") != "article":
            return
        served = headers.get("Content-Type")
        if served and served.decode("latin-1").split(";", 1)[0].strip().lower() not in HTML_TYPES:
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
            if (stored.get("etag"), stored.get("last_modified")) == validators_of(page.headers):
                return PageCheck(page.url, self.name, response.status)
        return page

    def parse_article(self, response: Response) -> Iterator[Page | PageCheck]:
        meta = response.meta["dealwatch"]
        request = request_of(response)
        if not is_html(response):
            yield from self.failure(request, "article", "not_html",
                                    f"content type {content_type(response) or 'unknown'}", response)
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
        code, detail = describe_failure(failure.value)
        if code == "budget":
            # Not tried: nothing to record, the next run sends it.
            self._count("dealwatch/budget_skipped")
            return
        if code == "known":
            self._count("dealwatch/links/known")
            return
        if code == "dns" and (refused := refused_host_reason(urlsplit(request.url).hostname)):
            code, detail = "private_network", refused
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
        crawler = getattr(self, "crawler", None)
        if crawler is not None and crawler.stats is not None:
            crawler.stats.inc_value(key)
