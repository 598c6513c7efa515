"""Spiders for XML sitemaps, sitemap indexes and Google News sitemaps (gzipped or not)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from scrapy.http import Request, Response
from scrapy.utils.gz import gunzip
from twisted.python.failure import Failure

from models.records import Page, PageCheck
from scrapers.spiders.base import SourceSpider
from scrapers.spiders.documents import Listed, MalformedDocument, parse_sitemap


class SitemapSpider(SourceSpider):
    """Sitemaps and sitemap indexes: an index's child sitemaps are fetched (role sitemap) in turn.

    Child sitemaps are read one at a time, newest (by lastmod) first, and no more are read
    once max_items articles are on their way: an index of many monthly sitemaps then costs a
    request or two a night, and the cap keeps the latest articles rather than whichever
    sitemap happened to answer first.
    """

    kind = "sitemap"
    entry_role = "sitemap"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._child_sitemaps: deque[Request] = deque()

    def entries(self, response: Response) -> list[Listed]:
        body = response.body
        # A .xml.gz file served without Content-Encoding arrives still compressed.
        if body[:3] == b"\x1f\x8b\x08":
            settings = getattr(self, "settings", None)  # absent on a spider built without a crawl
            max_size = settings.getint("DOWNLOAD_MAXSIZE") if settings is not None else 0
            try:
                body = gunzip(body, max_size=max_size)
            except (OSError, EOFError, ValueError) as exc:
                raise MalformedDocument(f"cannot decompress gzipped sitemap: {exc}") from None
        return parse_sitemap(body, response.url)

    def follow(self, listed: Listed, referrer: str) -> tuple[str, Request | None]:
        verdict, request = super().follow(listed, referrer)
        if request is not None and listed.role == "sitemap":
            self._child_sitemaps.append(request)
            return verdict, None
        return verdict, request

    def parse_entry(self, response: Response) -> Iterator[Any]:
        yield from super().parse_entry(response)
        yield from self._next_sitemap()

    def on_error(self, failure: Failure) -> Iterator[Page | PageCheck | Request]:
        yield from super().on_error(failure)
        if failure.request.meta.get("dealwatch", {}).get("role") == "sitemap":  # type: ignore[attr-defined]
            yield from self._next_sitemap()

    def _next_sitemap(self) -> Iterator[Request]:
        if self._child_sitemaps and not self.policy.full:
            yield self._child_sitemaps.popleft()


class NewsSitemapSpider(SitemapSpider):
    """Google News sitemaps: news:title and news:publication_date become the listed title and date.

    The parsing is the same as for sitemaps (which use the news fields too when a site puts them
    there); the kind says what the source promises: only recent articles, dated.
    """

    kind = "news_sitemap"
