"""Spiders for RSS and Atom feeds: each item's link is an article to fetch."""

from __future__ import annotations

from scrapy.http import Response

from scrapers.spiders.base import SourceSpider
from scrapers.spiders.documents import Listed, parse_atom, parse_rss


class RssSpider(SourceSpider):
    """RSS 2.0 and RSS 1.0 (RDF) feeds."""

    kind = "rss"
    entry_role = "feed"

    def entries(self, response: Response) -> list[Listed]:
        return parse_rss(response.body, response.url)


class AtomSpider(SourceSpider):
    """Atom feeds."""

    kind = "atom"
    entry_role = "feed"

    def entries(self, response: Response) -> list[Listed]:
        return parse_atom(response.body, response.url)
