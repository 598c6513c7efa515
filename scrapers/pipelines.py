"""Item pipeline that stores every fetched page (articles, feeds, sitemaps, listings) in the store."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any, Self

from scrapy.exceptions import DropItem, NotConfigured

from models.records import Page, PageCheck
from pipeline.store import Store, StoreError

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


def store_settings(settings: BaseSettings) -> tuple[str, int]:
    """(database path, busy timeout in ms) of the crawl's store; NotConfigured without one."""
    db_path = settings.get("DEALWATCH_DB")
    if not db_path:
        raise NotConfigured("DEALWATCH_DB is not set")
    return str(db_path), settings.getint("DEALWATCH_BUSY_TIMEOUT_MS", 10_000)


class StorePipeline:
    """Saves Page items with Store.save_page under the run id, and notes PageCheck items (a stored
    page fetched again, unchanged or failed) with Store.record_check; off when DEALWATCH_DB is
    unset."""

    def __init__(self, crawler: Crawler, db_path: str, run_id: int | None, busy_timeout_ms: int):
        self.crawler = crawler
        self.db_path = db_path
        self.run_id = run_id
        self.busy_timeout_ms = busy_timeout_ms
        self.store: Store | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        db_path, busy_timeout_ms = store_settings(crawler.settings)
        run_id = crawler.settings.get("DEALWATCH_RUN_ID")
        return cls(crawler, db_path, int(run_id) if run_id is not None else None, busy_timeout_ms)

    def open_spider(self) -> None:
        # One connection per crawler; all of them write from the reactor thread, one at a time.
        self.store = Store(self.db_path, busy_timeout_ms=self.busy_timeout_ms)

    def close_spider(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Page | PageCheck) or self.store is None:
            return item
        stats = self.crawler.stats
        try:
            if isinstance(item, PageCheck):
                self.store.record_check(item.url, item.status, self.run_id)
                return item
            self.store.save_page(item, self.run_id)
        except (StoreError, sqlite3.Error) as exc:
            if stats is not None:
                stats.inc_value("dealwatch/errors/store")
            logger.error("cannot store page %s: %s", item.url, exc)
            raise DropItem(f"cannot store page {item.url}: {exc}") from None
        if stats is not None:
            stats.inc_value(f"dealwatch/pages/{item.role}")
        return item
