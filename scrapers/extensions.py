"""Scrapy extensions: each source's progress, reported on stdout while it crawls."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from scrapers.progress import SourceProgress, progress_of

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.utils.asyncio import AsyncioLoopingCall
    from twisted.internet.task import LoopingCall


def _print(line: str) -> None:
    # stdout also carries the run's report, last; a line is written whole from the reactor thread
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class ProgressReporter:
    """Writes the source's progress (scrapers.progress) when it opens, every
    DEALWATCH_PROGRESS_INTERVAL seconds while something changed, and when it closes.

    One per crawler, so one per source; off while the setting is 0 (the default): the process
    that launches the crawl switches it on when someone is watching (`--progress-every`).
    """

    def __init__(self, crawler: Crawler, interval: float,
                 write: Callable[[str], None] = _print):
        self.crawler = crawler
        self.interval = interval
        self.write = write
        self.task: AsyncioLoopingCall | LoopingCall | None = None
        self._last: SourceProgress | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        interval = crawler.settings.getfloat("DEALWATCH_PROGRESS_INTERVAL")
        if interval <= 0:
            raise NotConfigured
        reporter = cls(crawler, interval)
        crawler.signals.connect(reporter.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(reporter.spider_closed, signal=signals.spider_closed)
        return reporter

    def spider_opened(self, spider: Spider) -> None:
        self.task = create_looping_call(self.report, spider)
        self.task.start(self.interval, now=True)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        self.report(spider, reason)

    def report(self, spider: Spider, finish_reason: str | None = None) -> None:
        progress = self.progress(spider, finish_reason)
        if progress != self._last:
            self._last = progress
            self.write(progress.to_line())

    def progress(self, spider: Spider, finish_reason: str | None = None) -> SourceProgress:
        stats: dict[str, Any] = self.crawler.stats.get_stats() if self.crawler.stats else {}
        budget = getattr(spider, "budget", None)
        requests_left = seconds_left = None
        if budget is not None:
            if budget.max_requests:
                requests_left = max(0, budget.max_requests - budget.requests)
            seconds_left = budget.seconds_left()
        return progress_of(spider.name, stats, requests_left, seconds_left, finish_reason)
