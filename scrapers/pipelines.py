"""Item pipeline that stores every fetched page (articles, feeds, sitemaps, listings) in the store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Self

from scrapy.exceptions import DropItem, NotConfigured

from models.records import Page, PageCheck
from pipeline.storage import StoreError
from pipeline.storage.database import is_driver_error
from scrapers.stats import inc_stat

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from pipeline.storage import Store

logger = logging.getLogger(__name__)


class StorePipeline:
    """Saves Page items with store.pages.save_page under the run id (DEALWATCH_RUN_ID), and notes
    PageCheck items (a stored page fetched again, unchanged or failed) with store.pages.record_check.

    The store is the spider's (`store`): scrapers.run opens one for the whole crawl and hands
    it to every spider, so all sources write through one connection, from the reactor thread.
    Off when the spider has no store.
    """

    def __init__(self, crawler: Crawler, store: Store, run_id: int | None):
        self.crawler = crawler
        self.store = store
        self.run_id = run_id

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        store = getattr(crawler.spider, "store", None)
        if store is None:
            raise NotConfigured("the spider has no store")
        run_id = crawler.settings.get("DEALWATCH_RUN_ID")
        return cls(crawler, store, int(run_id) if run_id is not None else None)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Page | PageCheck):
            return item
        try:
            if isinstance(item, PageCheck):
                self.store.pages.record_check(item.url, item.status, self.run_id)
                return item
            self.store.pages.save_page(item, self.run_id)
        except Exception as exc:  # the store's error, or its driver's
            if not isinstance(exc, StoreError) and not is_driver_error(exc):
                raise
            inc_stat(self.crawler, "dealwatch/errors/store")
            logger.error("cannot store page %s: %s", item.url, exc)
            raise DropItem(f"cannot store page {item.url}: {exc}") from None
        inc_stat(self.crawler, f"dealwatch/pages/{item.role}")
        return item
