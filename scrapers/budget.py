"""The per-run budget of requests and time, shared by every source's crawler in the crawl process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.asyncio import CallLaterResult, call_later
from scrapy.utils.defer import deferred_from_coro
from twisted.python.failure import Failure

from scrapers.stats import inc_stat

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

BUDGET_EXHAUSTED = "budget_exhausted"  # the finish reason of a crawler the budget stopped


class BudgetExhausted(IgnoreRequest):
    """A request was not sent because the run's budget is spent; the next run sends it."""


class RunBudget:
    """At most max_requests requests and max_seconds of wall time for one crawl (0: no limit).

    The time counts from the first request: starting Python, Scrapy and the spiders is not
    crawling, and on a busy machine it may take seconds. One instance serves all crawlers of a
    run (scrapers.run hands it to every spider), so the limits hold across sources. When either
    runs out, every registered crawler is stopped.
    """

    def __init__(self, max_requests: int = 0, max_seconds: float = 0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.clock = clock
        self.started: float | None = None  # when the first request was taken
        self.requests = 0
        self.reason: str | None = None  # why the budget ran out; None while it lasts
        self._listeners: list[Callable[[str], None]] = []

    @property
    def exhausted(self) -> bool:
        if self.reason is None and self.max_seconds and self.seconds_left() == 0:
            self.exhaust(f"max_run_seconds ({self.max_seconds:g}) reached")
        return self.reason is not None

    def seconds_left(self) -> float | None:
        """Seconds until the time budget runs out (None: no time limit)."""
        if not self.max_seconds:
            return None
        if self.started is None:
            return float(self.max_seconds)
        return max(0.0, self.max_seconds - (self.clock() - self.started))

    def take(self) -> bool:
        """Spend one request; False (and nothing spent) when the budget is exhausted."""
        if self.started is None:
            self.started = self.clock()
        if self.exhausted:
            return False
        if self.max_requests and self.requests >= self.max_requests:
            self.exhaust(f"max_requests_per_run ({self.max_requests}) reached")
            return False
        self.requests += 1
        return True

    def exhaust(self, reason: str) -> None:
        """Mark the budget spent (the first reason sticks) and tell every listener once."""
        if self.reason is not None:
            return
        self.reason = reason
        logger.warning("crawl budget exhausted: %s; stopping every source", reason)
        for listener in self._listeners:
            listener(reason)

    def on_exhausted(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)


class BudgetMiddleware:
    """Downloader middleware: spends the run's budget per request, stops the crawler when spent.

    The budget comes from the spider (its `budget` attribute, set by scrapers.run); off
    without one. Requests refused for the budget fail with BudgetExhausted, which the spider
    records as nothing: they were not tried, and the next run picks them up.
    """

    def __init__(self, crawler: Crawler, budget: RunBudget):
        self.crawler = crawler
        self.budget = budget
        self._timer: CallLaterResult | None = None
        self._closing = False
        budget.on_exhausted(self._stop)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        budget = getattr(crawler.spider, "budget", None)
        if budget is None or not (budget.max_requests or budget.max_seconds):
            raise NotConfigured
        middleware = cls(crawler, budget)
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def spider_opened(self) -> None:
        self._arm()

    def _arm(self) -> None:
        # A crawl waiting on slow servers sends no requests; the timer stops it anyway. Timers
        # may fire a little early: then it is set again for what is left.
        left = self.budget.seconds_left()
        if left is not None and not self._closing and not self.budget.exhausted:
            self._timer = call_later(max(left, 0.01), self._arm)

    def spider_closed(self) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def process_request(self, request: Request) -> None:
        if not self.budget.take():
            inc_stat(self.crawler, "dealwatch/budget_refused")
            raise BudgetExhausted(f"crawl budget exhausted: {self.budget.reason}")

    def _stop(self, reason: str) -> None:
        engine = self.crawler.engine
        if self._closing or engine is None or engine.spider is None:
            return
        self._closing = True
        if self.budget.seconds_left() == 0:
            # Out of time: stop now. (Out of requests: those admitted are within the count.)
            self._drop_queued(engine.downloader, reason)
        deferred_from_coro(engine.close_spider_async(reason=BUDGET_EXHAUSTED))

    @staticmethod
    def _drop_queued(downloader: Any, reason: str) -> None:
        """Fail the requests waiting in the downloader's per-site queues.

        Requests pass the middlewares when they enter the downloader, then wait there for
        their site's delay (a second or more, longer under AutoThrottle); closing the spider
        would let every one of them go out first. Relies on Scrapy's Slot.queue of
        (request, deferred) pairs; without it the waiting requests go out as before.
        """
        for slot in getattr(downloader, "slots", {}).values():
            queue = getattr(slot, "queue", None)
            while queue:
                _request, deferred = queue.popleft()
                deferred.errback(Failure(BudgetExhausted(f"crawl budget exhausted: {reason}")))
