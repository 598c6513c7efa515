"""Crawl workers over the shared crawl frontier on Redis (pipeline.storage.frontier).

`dealwatch enqueue` queues the night's sources; each `dealwatch crawl --worker` takes one source
at a time, crawls it as `dealwatch crawl --source ID` would (a recorded run, Scrapy in a
subprocess), its article URLs taken in the night's shared set so that no article is fetched by
two workers, and takes the next until the queue is empty.

Politeness holds because a source is crawled by one worker at a time: the worker's Scrapy keeps
the source's own delay and concurrency, exactly as a crawl on one machine does (there too each
source has its own crawler and download slots). The claim on a source lasts CLAIM_TTL seconds
and is renewed while the crawl runs; a worker that dies loses it, and the next worker to find
the queue empty crawls the source again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from models.errors import DealwatchError
from pipeline.config import Config
from pipeline.ingest.crawl import CrawlReport, SharedUrlsAt, run_crawl
from pipeline.jobs.runs import CrawlDisplay, check_source_ids, no_display, run_row
from pipeline.storage import Store
from pipeline.storage.frontier import Frontier, connect
from pipeline.storage.lock import RunLock
from pipeline.storage.servers import check_redis, redact
from scrapers.sources import select_sources

logger = logging.getLogger(__name__)

# Seconds a worker's claim on a source lasts unless renewed (it is renewed every third of it):
# how long a dead worker's source waits before another worker crawls it.
CLAIM_TTL = 120


class FrontierError(DealwatchError):
    """The crawl frontier's Redis went away while a worker used it."""


def open_frontier(redis_url: str) -> Frontier:
    """The frontier on the Redis at redis_url; ServerError in one line when it does not answer."""
    check_redis(redis_url)
    return Frontier(connect(redis_url))


@contextmanager
def _redis_trouble(redis_url: str) -> Iterator[None]:
    """A Redis error becomes one line naming the URL without its password."""
    import redis  # loaded by connect() already

    try:
        yield
    except redis.RedisError as exc:
        raise FrontierError(f"lost Redis at {redact(redis_url)}: "
                            f"{str(exc).replace(redis_url, redact(redis_url))}") from None


def tonight() -> str:
    return datetime.now(UTC).date().isoformat()


def enqueue(config: Config, redis_url: str, source_ids: list[str] | None = None,
            ) -> tuple[list[str], list[str], str]:
    """Queue the enabled (or the named) sources on the frontier: (the sources queued, those
    waiting or being crawled already, the night)."""
    check_source_ids(config, source_ids)
    wanted = [s.id for s in select_sources(config, source_ids or None)]
    frontier = open_frontier(redis_url)
    with _redis_trouble(redis_url):
        added, night = frontier.enqueue(wanted, tonight())
    return added, [sid for sid in wanted if sid not in added], night


@dataclass
class WorkerReport:
    """What a worker crawled: (source id, run id, report) in order, and sources it let go."""

    worker: str
    crawled: list[tuple[str, int, CrawlReport]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # queued, but not in this worker's config

    @property
    def ok(self) -> bool:
        return all(report.ok for _, _, report in self.crawled) and not self.unknown


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Renewal(threading.Thread):
    """Renews a claim every third of its TTL until stopped."""

    def __init__(self, frontier: Frontier, source_id: str, worker: str, ttl: int):
        super().__init__(name=f"claim {source_id}", daemon=True)
        self.frontier, self.source_id, self.worker, self.ttl = frontier, source_id, worker, ttl
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            try:
                if not self.frontier.renew(self.source_id, self.worker, self.ttl):
                    logger.warning("lost the claim on %s: another worker may crawl it too",
                                   self.source_id)
                    return
            except Exception as exc:  # Redis away for a moment: try again at the next turn
                logger.warning("cannot renew the claim on %s: %s", self.source_id, exc)


@contextmanager
def _claim_kept(frontier: Frontier, source_id: str, worker: str, ttl: int) -> Iterator[None]:
    renewal = _Renewal(frontier, source_id, worker, ttl)
    renewal.start()
    try:
        yield
    finally:
        renewal.stopped.set()
        renewal.join()


OnCrawled = Callable[[str, int, CrawlReport], None]


def run_worker(config: Config, db_path: Path, redis_url: str, *,
               display: CrawlDisplay | None = None, on_crawled: OnCrawled | None = None,
               ttl: int = CLAIM_TTL) -> WorkerReport:
    """Take sources from the frontier and crawl each, until none is left to take.

    Workers share the database's run lock (RunLock shared): they run side by side, and no
    other run starts while one works. on_crawled hears each source's crawl as it ends.
    """
    frontier = open_frontier(redis_url)
    report = WorkerReport(worker_name())
    busy_ms = config.settings.database.busy_timeout_ms
    with RunLock(db_path, "crawl --worker", shared=True), Store(db_path, busy_ms) as store:
        store.runs.sync_sources(config.sources)
        while (source_id := _take(frontier, redis_url, report.worker, ttl)) is not None:
            try:
                config.source(source_id)
            except DealwatchError:
                logger.warning("the frontier holds source %s, which this worker's config does "
                               "not know: left to a worker that does", source_id)
                report.unknown.append(source_id)
                continue  # its claim expires; a worker with that source in its config takes it
            with _claim_kept(frontier, source_id, report.worker, ttl):
                run_id, crawled = _crawl_one(config, db_path, store, source_id,
                                             SharedUrlsAt(redis_url, _night(frontier, redis_url)),
                                             display)
            with _redis_trouble(redis_url):
                frontier.done(source_id, report.worker)
            report.crawled.append((source_id, run_id, crawled))
            if on_crawled is not None:
                on_crawled(source_id, run_id, crawled)
    return report


def _take(frontier: Frontier, redis_url: str, worker: str, ttl: int) -> str | None:
    with _redis_trouble(redis_url):
        return frontier.take(worker, ttl)


def _night(frontier: Frontier, redis_url: str) -> str:
    with _redis_trouble(redis_url):
        return frontier.night() or tonight()


def _crawl_one(config: Config, db_path: Path, store: Store, source_id: str,
               shared: SharedUrlsAt, display: CrawlDisplay | None) -> tuple[int, CrawlReport]:
    """One source's recorded crawl, its article URLs taken in the night's shared set."""
    with run_row(store, "crawl", [source_id]) as record, (display or no_display)() as progress:
        crawled = run_crawl(config, db_path, [source_id], run_id=record.id, on_progress=progress,
                            shared_urls=shared)
        record.add_crawl(crawled)
    return record.id, crawled


__all__ = ["CLAIM_TTL", "FrontierError", "WorkerReport", "enqueue", "open_frontier",
           "run_worker"]
