"""One spider class per source kind; `spider_class(kind)` picks the one for a source."""

from __future__ import annotations

from scrapers.spiders.base import SourceSpider
from scrapers.spiders.feeds import AtomSpider, RssSpider
from scrapers.spiders.listing import ListingSpider
from scrapers.spiders.sitemaps import NewsSitemapSpider, SitemapSpider

SPIDER_CLASSES: dict[str, type[SourceSpider]] = {
    cls.kind: cls
    for cls in (RssSpider, AtomSpider, SitemapSpider, NewsSitemapSpider, ListingSpider)
}


def spider_class(kind: str) -> type[SourceSpider]:
    """The spider class for a source kind (KeyError for an unknown kind)."""
    return SPIDER_CLASSES[kind]


__all__ = ["SPIDER_CLASSES", "AtomSpider", "ListingSpider", "NewsSitemapSpider", "RssSpider",
           "SitemapSpider", "SourceSpider", "spider_class"]
