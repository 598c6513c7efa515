"""Crawl workers over the shared crawl frontier on Redis (pipeline.storage.frontier).

`dealwatch enqueue` queues the night's sources; each `dealwatch crawl --worker` takes one source
at a time, crawls it as `dealwatch crawl --source ID` would (a recorded run, Scrapy in a
subprocess), its article URLs taken in the night's shared set so that no article is fetched by
two workers, and takes the next until the queue is empty.

Politeness holds because a source is crawled by one worker at a time: the worker's Scrapy keeps
the source's own delay and concurrency, exactly as a crawl on one machine does (there too each
source has its own crawler and download slots). The claim on a source lasts [frontier]
claim_ttl_seconds and is renewed while the crawl runs; a worker that dies loses it (its crawl
subprocess dies with it: scrapers.lifetime), and the next worker to find the queue empty records
the dead worker's run as aborted and crawls the source again.

A worker that finds Redis unreachable (between sources, or renewing its claim) tries again after
0.5 s, then 1, 2, 4 … (at most 8 s apart: jobs.retry) for [frontier] redis_retry_seconds in all,
and then gives up in one line (`lost Redis at …; gave up after N tries over S s`). One that
finds the database gone reconnects the same way for [database] reconnect_seconds (run_worker).
"""

from __future__ import annotations

import _thread
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from models.errors import DealwatchError
from pipeline.config import Config
from pipeline.ingest.crawl import CrawlReport, SharedUrlsAt, run_crawl
from pipeline.jobs.retry import Reconnection, Retried, with_backoff
from pipeline.jobs.runs import CrawlDisplay, check_source_ids, no_display, run_row
from pipeline.storage import Store
from pipeline.storage.database import DatabaseLocation
from pipeline.storage.frontier import Frontier, connect
from pipeline.storage.lock import run_lock
from pipeline.storage.servers import ServerError, check_redis, redact
from scrapers.sources import select_sources

logger = logging.getLogger(__name__)

T = TypeVar("T")

class FrontierError(DealwatchError):
    """The crawl frontier's Redis went away while a worker used it."""


def open_frontier(redis_url: str) -> Frontier:
    """The frontier on the Redis at redis_url; ServerError in one line when it does not answer."""
    check_redis(redis_url)
    return Frontier(connect(redis_url))


def _lost(redis_url: str, exc: BaseException) -> str:
    """Why Redis did not answer, in a few words, without the password (check_redis's words
    when it still does not answer; the error's own first line when it does)."""
    shown = redact(redis_url)
    try:
        check_redis(redis_url, timeout=2)
    except ServerError as err:
        return str(err).partition(f"{shown}: ")[2] or str(err)
    lines = str(exc).replace(redis_url, shown).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def with_retries(redis_url: str, patience: float, what: str, call: Callable[[], T],
                 sleep: Callable[[float], object] = time.sleep) -> T:
    """call(), tried again while Redis does not answer (jobs.retry.with_backoff), for `patience`
    seconds; then a FrontierError in one line. Other Redis errors are one line at once."""
    import redis  # loaded by connect() already

    def attempt() -> T:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except redis.RedisError as exc:
            raise FrontierError(f"lost Redis at {redact(redis_url)}: "
                                f"{str(exc).replace(redis_url, redact(redis_url))}") from None

    return with_backoff(attempt, patience=patience,
                        lost=lambda exc: isinstance(exc, redis.ConnectionError | redis.TimeoutError),
                        reason=partial(_lost, redis_url), server=f"Redis at {redact(redis_url)}",
                        what=what, gave_up=FrontierError, sleep=sleep)


def tonight() -> str:
    return datetime.now(UTC).date().isoformat()


def enqueue(config: Config, redis_url: str, source_ids: list[str] | None = None,
            ) -> tuple[list[str], list[str], str]:
    """Queue the enabled (or the named) sources on the frontier: (the sources queued, those
    waiting or being crawled already, the night)."""
    check_source_ids(config, source_ids)
    wanted = [s.id for s in select_sources(config, source_ids or None)]
    frontier = open_frontier(redis_url)
    patience = config.settings.frontier.redis_retry_seconds
    added, night = with_retries(redis_url, patience, "queueing the sources",
                                lambda: frontier.enqueue(wanted, tonight()))
    return added, [sid for sid in wanted if sid not in added], night


def describe_enqueued(added: list[str], already: list[str], night: str) -> str:
    return (f"queued {len(added)} source(s) for the night of {night}"
            + (f": {', '.join(added)}" if added else "")
            + (f"; {len(already)} queued or being crawled already: {', '.join(already)}"
               if already else ""))


def last_enqueued(redis_url: str) -> datetime | None:
    """When sources were last queued on the frontier (ServerError when Redis does not answer)."""
    return open_frontier(redis_url).last_enqueued()


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
    """Renews a claim every third of its TTL until stopped. When Redis stays away longer than
    the worker's patience, it keeps the error and interrupts the main thread, which stops the
    crawl (no crawl goes on without its claim) and raises the error."""

    def __init__(self, frontier: Frontier, redis_url: str, source_id: str, worker: str,
                 ttl: int, patience: float):
        super().__init__(name=f"claim {source_id}", daemon=True)
        self.frontier, self.redis_url, self.source_id = frontier, redis_url, source_id
        self.worker, self.ttl, self.patience = worker, ttl, patience
        self.stopped = threading.Event()
        self.error: FrontierError | None = None
        self._lock = threading.Lock()  # no interruption once stopped

    @contextmanager
    def kept(self) -> Iterator[None]:
        """The claim renewed for the block."""
        self.start()
        try:
            yield
        finally:
            with self._lock:
                self.stopped.set()
            self.join()

    def run(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            try:
                held = with_retries(self.redis_url, self.patience,
                                    f"renewing the claim on {self.source_id}",
                                    self._renew, sleep=self.stopped.wait)
            except FrontierError as exc:
                with self._lock:
                    if not self.stopped.is_set():
                        self.error = exc
                        _thread.interrupt_main()
                return
            if not held:
                logger.warning("lost the claim on %s: another worker may crawl it too",
                               self.source_id)
                return

    @contextmanager
    def gave_up_raised(self) -> Iterator[None]:
        """The interruption of a renewal that gave up on Redis is raised as its error."""
        try:
            yield
        except KeyboardInterrupt:
            if self.error is not None:
                raise self.error from None
            raise

    def _renew(self) -> bool:
        # stopped while waiting to retry: the crawl is over, nothing to renew
        return self.stopped.is_set() or self.frontier.renew(self.source_id, self.worker, self.ttl)


OnCrawled = Callable[[str, int, CrawlReport], None]


def run_worker(config: Config, db_path: DatabaseLocation, redis_url: str, *,
               display: CrawlDisplay | None = None, on_crawled: OnCrawled | None = None
               ) -> WorkerReport:
    """Take sources from the frontier and crawl each, until none is left to take.

    Workers share the database's run lock (RunLock shared): they run side by side, and no
    other run starts while one works. So a worker never marks every unfinished run aborted, as
    a run holding the lock alone does (`abort_stale_runs`: another worker's live run is
    unfinished too); it marks the one run whose worker died: the run noted on the frontier for
    a source whose claim expired. on_crawled hears each source's crawl as it ends.
    """
    frontier = open_frontier(redis_url)
    report = WorkerReport(worker_name())
    settings = config.settings.frontier
    ttl, patience = settings.claim_ttl_seconds, settings.redis_retry_seconds

    def retried(what: str, call: Callable[[], T]) -> T:
        return with_retries(redis_url, patience, what, call)

    database = config.settings.database
    with run_lock(db_path, "crawl --worker", shared=True) as lock, \
            Store(db_path, database.busy_timeout_ms) as store:
        # A database server that went away is reconnected to between sources (the crawl's own
        # subprocess writes through a connection of its own: see _crawl_one).
        db = Reconnection(db_path, lock, store, database.reconnect_seconds).retried
        store.runs.sync_sources(config.sources)
        while (source_id := retried("taking a source",
                                    lambda: frontier.take(report.worker, ttl))) is not None:
            try:
                config.source(source_id)
            except DealwatchError:
                logger.warning("the frontier holds source %s, which this worker's config does "
                               "not know: left to a worker that does", source_id)
                report.unknown.append(source_id)
                continue  # its claim expires; a worker with that source in its config takes it
            dead_run = retried("reading the source's run", partial(frontier.run_of, source_id))
            if dead_run is not None:
                db("marking a dead worker's run aborted", partial(
                    store.runs.abort_run, dead_run,
                    f"the crawl worker died mid-crawl: its claim on {source_id} expired, and worker "
                    f"{report.worker} crawled the source again"))
                logger.warning("run %d's worker died crawling %s: crawling it again", dead_run,
                               source_id)
            night = retried("reading the night", lambda: frontier.night() or tonight())
            renewal = _Renewal(frontier, redis_url, source_id, report.worker, ttl, patience)
            with renewal.gave_up_raised(), renewal.kept():  # raised here when _crawl_one had ended
                run_id, crawled = _crawl_one(config, db_path, store, frontier, source_id,
                                             SharedUrlsAt(redis_url, night), display, retried,
                                             renewal, db)
            retried("letting go of the source", partial(frontier.done, source_id, report.worker))
            report.crawled.append((source_id, run_id, crawled))
            if on_crawled is not None:
                on_crawled(source_id, run_id, crawled)
    return report


def _crawl_one(config: Config, db_path: DatabaseLocation, store: Store, frontier: Frontier, source_id: str,
               shared: SharedUrlsAt, display: CrawlDisplay | None, retried: Retried,
               renewal: _Renewal, db: Retried) -> tuple[int, CrawlReport]:
    """One source's recorded crawl, its article URLs taken in the night's shared set; the run
    noted on the frontier while it is unfinished. A renewal that gave up on Redis interrupts
    the crawl (run_crawl kills it), and its error fails the run.

    The run's row is started and finished through `db`, reconnecting to a database server that
    went away. The crawl subprocess has a connection of its own, not reconnected: a page it
    cannot store while the server is away is dropped and counted (scrapers.pipelines), the run
    ends with errors ("N page(s) could not be stored"), as any crawl that failed to store
    pages, and the source is let go; its dropped pages, never stored, are fetched next night."""
    with run_row(store, "crawl", [source_id], db) as record, \
            (display or no_display)() as progress:
        retried("noting the source's run", lambda: frontier.crawling(source_id, record.id))
        with renewal.gave_up_raised():
            try:
                crawled = run_crawl(config, db_path, [source_id], run_id=record.id,
                                    on_progress=progress, shared_urls=shared)
            finally:  # before the row is finished: a run noted on the frontier is unfinished
                if renewal.error is None:
                    retried("ending the source's run",
                            lambda: frontier.crawled(source_id, renewal.worker))
        record.add_crawl(crawled)
    return record.id, crawled


__all__ = ["FrontierError", "WorkerReport", "describe_enqueued", "enqueue", "last_enqueued",
           "open_frontier", "run_worker", "with_retries"]
