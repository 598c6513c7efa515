"""The spider every source kind shares: which links to follow, and how fetches become pages."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Collection, Iterator
from typing import Any, ClassVar, Self
from urllib.parse import urldefrag, urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import HtmlResponse, Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.response import response_status_message
from twisted.python.failure import Failure
from w3lib.url import safe_url_string

from models.config import Source
from models.records import Page
from scrapers.middlewares import PrivateNetworkRefused
from scrapers.settings import source_settings
from scrapers.spiders.documents import Listed, MalformedDocument, newest_first

logger = logging.getLogger(__name__)

# Failures that are deliberate skips, not signs that a source is broken.
SKIP_CODES = frozenset({"robots", "not_html"})
HTML_TYPES = ("text/html", "application/xhtml+xml")


def host_matches(host: str, domains: Collection[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


class LinkPolicy:
    """Decides which listed links a source's crawl follows; one instance per crawl of a source.

    Article links must be http(s), on an allowed domain (when the source names any), match one
    `allow` pattern (when there are any) and no `deny` pattern, be new to this run, not be
    stored already (unless refetching), and fit within max_items. Child sitemaps of an index
    only need the domain check and fit within max_sitemaps.
    """

    def __init__(self, source: Source, max_items: int, known_urls: Collection[str] = (),
                 refetch_known: bool = False, max_sitemaps: int = 20):
        domains = [d.lower().strip(".") for d in source.allowed_domains]
        if not domains and source.kind == "listing":
            # A listing page links everywhere (nav, ads, other sites): never leave its site.
            domains = sorted({(urlsplit(u).hostname or "").lower() for u in source.urls} - {""})
        self.allowed_domains = domains
        self.allow = [re.compile(p) for p in source.allow]
        self.deny = [re.compile(p) for p in source.deny]
        self.max_items = max_items
        self.max_sitemaps = max_sitemaps
        self.known = known_urls
        self.refetch_known = refetch_known
        self.seen: set[str] = {clean_url(u) for u in source.urls}
        self.articles = 0
        self.sitemaps = 0

    @property
    def full(self) -> bool:
        """True once max_items article links have been followed."""
        return self.articles >= self.max_items

    def decide(self, listed: Listed) -> tuple[str, str]:
        """(verdict, cleaned url); the verdict is "follow" or why the link is left alone."""
        url = clean_url(listed.url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "not_http", url
        if self.allowed_domains and not host_matches(parts.hostname, self.allowed_domains):
            return "offsite", url
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
        if url in self.seen:
            return "seen", url
        if url in self.known and not self.refetch_known:
            self.seen.add(url)
            return "known", url
        if self.full:
            return "over_limit", url
        self.seen.add(url)
        self.articles += 1
        return "follow", url


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
    if isinstance(exc, IgnoreRequest):
        text = str(exc)
        if "robots.txt" in text:
            return "robots", "forbidden by robots.txt"
        if "offsite" in text.lower():
            return "offsite", text
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


def request_of(response: Response) -> Request:
    """The request a response answers (Scrapy always sets it on responses it downloads)."""
    if response.request is None:
        return Request(response.url)
    return response.request


class SourceSpider(scrapy.Spider):
    """Fetches a source's entry documents, follows the links they list, yields every fetch as a Page.

    Subclasses say how an entry document lists links (`entries`); they never look inside
    article pages (extraction is a later stage).
    """

    kind: ClassVar[str]
    entry_role: ClassVar[str]  # feed | sitemap | listing

    def __init__(self, source: Source, known_urls: Collection[str] = (), max_items: int = 200,
                 refetch_known: bool = False, max_sitemaps: int = 20, **kwargs: Any):
        if source.kind != self.kind:
            raise ValueError(f"source {source.id!r} is of kind {source.kind!r}, "
                             f"not {self.kind!r}")
        super().__init__(name=source.id, **kwargs)
        self.source = source
        self.known_urls = known_urls
        self.policy = LinkPolicy(source, max_items, known_urls, refetch_known, max_sitemaps)

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
        return super().from_crawler(crawler, *args, **kwargs)

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
        return Request(url, callback=self.parse_entry, errback=self.on_error,
                       dont_filter=dont_filter,
                       meta={"dealwatch": {"role": role, "referrer": referrer}})

    def follow(self, listed: Listed, referrer: str) -> Request | None:
        verdict, url = self.policy.decide(listed)
        self._count(f"dealwatch/links/{verdict}")
        if verdict != "follow":
            return None
        if listed.role == "sitemap":
            return self.entry_request(url, "sitemap", referrer)
        known = url in self.known_urls
        return Request(url, callback=self.parse_article, errback=self.on_error,
                       meta={"dealwatch": {"role": "article", "referrer": referrer,
                                           "title": listed.title, "date": listed.date,
                                           "known": known}})

    # -- callbacks --

    def parse_entry(self, response: Response) -> Iterator[Any]:
        role = response.meta["dealwatch"]["role"]
        try:
            listed = newest_first(self.entries(response))
        except MalformedDocument as exc:
            # Keep the body: whoever looks into the failure wants to see what was served.
            yield from self.failure(request_of(response), role, f"malformed_{role}", str(exc),
                                    response, keep_body=True)
            return
        yield self.page(response, role)
        for entry in listed:
            request = self.follow(entry, response.url)
            if request is not None:
                yield request

    def parse_article(self, response: Response) -> Iterator[Page]:
        meta = response.meta["dealwatch"]
        if not is_html(response):
            yield from self.failure(request_of(response), "article", "not_html",
                                    f"content type {content_type(response) or 'unknown'}", response)
            return
        self._count("dealwatch/articles_ok")
        if not meta.get("known"):
            self._count("dealwatch/articles_new")
        yield self.page(response, "article")

    def on_error(self, failure: Failure) -> Iterator[Page | Request]:
        request: Request = failure.request  # type: ignore[attr-defined]
        role = request.meta.get("dealwatch", {}).get("role", "article")
        code, detail = describe_failure(failure.value)
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
                response: Response | None = None, keep_body: bool = False) -> Iterator[Page]:
        """Count and log a failed or skipped fetch, and yield the page that records it.

        An article stored before (fetched again because refetch_known_articles is on) yields
        nothing: recording the failure would overwrite the good copy in the store.
        """
        self._count(f"dealwatch/errors/{code}")
        if role != "article":
            self._count("dealwatch/entry_errors")
        elif code not in SKIP_CODES:
            self._count("dealwatch/article_failures")
        level = logging.INFO if code in SKIP_CODES else logging.WARNING
        logger.log(level, "%s: %s %s: %s: %s", self.name, role, request.url, code, detail)
        if not request.meta.get("dealwatch", {}).get("known"):
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
