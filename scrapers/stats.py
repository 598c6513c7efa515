"""The crawl's counters: Scrapy stats, counted only where a crawler has them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def inc_stat(crawler: Crawler | None, key: str) -> None:
    """Add one to the counter `key`; nothing for a component built without a crawler (or
    before the crawler has its stats), as in tests that parse without a crawl."""
    stats = crawler.stats if crawler is not None else None
    if stats is not None:
        stats.inc_value(key)
