"""Processing workers on PostgreSQL: `dealwatch process --worker` (docs/scaling.md).

Each worker claims a batch of fetched pages in the batch's transaction (`SELECT … FOR UPDATE
SKIP LOCKED`, storage.pages.claim_pages_to_process), processes it as `dealwatch process` does
(each page a savepoint), and commits; then it claims the next, until none is left. The row locks
are the claim: a worker killed mid-batch loses its connection, PostgreSQL rolls its transaction
back, and its pages are free for the others at once, with nothing half written. The analyser is
loaded once per worker.

Near-duplicates across workers: each worker keeps its own index of recent signatures, so a batch
clusters its articles at its end, alone (an advisory lock held until its commit), after reading
the signatures the other workers committed since its last batch and the clusters its articles'
copies are in now. Which signatures are new is told by article id: a batch in flight shows, as
a shared advisory lock, the largest article id it could see when it began (every article it adds
is numbered past it), so a worker reads again the ids above the lowest such floor until the
batches holding them have ended.

A server that goes away (a restart, a failover) takes the batch in flight with it, rolled back
whole; the worker takes the run lock again, reconnects and takes a batch again, trying after
0.5 s, 1, 2, 4 … (jobs.retry) for [database] reconnect_seconds, and then gives up in one line.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.config import DedupSettings
from models.errors import DealwatchError
from models.records import FetchedPage
from pipeline.config import Config
from pipeline.ingest.dedup import Signature
from pipeline.jobs.analyzer import build_analyzer, default_ranker
from pipeline.jobs.process import MAX_TEXT_CHARS, PageProcessor, ProcessReport
from pipeline.jobs.retry import Reconnection, Retried, once
from pipeline.jobs.runs import run_row
from pipeline.storage import Store
from pipeline.storage.database import DatabaseLocation, is_busy
from pipeline.storage.lock import run_lock
from pipeline.urls import is_database_url

if TYPE_CHECKING:
    from pipeline.analysis.results import AnalyzerLike

logger = logging.getLogger(__name__)

# How many times in a row a batch rolled back as busy is taken again before the worker stops.
BUSY_RETRIES = 5


class WorkerNeedsServer(DealwatchError):
    """`process --worker` on a SQLite file, which has one writer: plain `process` is the way."""


@dataclass
class WorkerReport:
    worker: str
    batches: int = 0
    report: ProcessReport = field(default_factory=ProcessReport)
    idle: bool = False  # no page was waiting: nothing loaded, no run recorded

    @property
    def pages(self) -> int:
        return int(self.report.counters["pages"])


def needs_server(location: object) -> str:
    return (f"process --worker needs a PostgreSQL database (--db postgresql://…): {location} is "
            "a SQLite file, which has one writer; run `dealwatch process` there")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerProcessor(PageProcessor):
    """A PageProcessor that claims its batches, and clusters each batch with the other workers'
    articles in view."""

    def __init__(self, store: Store, analyzer: AnalyzerLike, *, batch_size: int = 64,
                 min_text_chars: int = 300, max_text_chars: int = MAX_TEXT_CHARS,
                 dedup: DedupSettings | None = None):
        if store.database.dialect.name != "postgresql":
            raise WorkerNeedsServer(needs_server(store.database.location))
        super().__init__(store, analyzer, batch_size=batch_size, min_text_chars=min_text_chars,
                         max_text_chars=max_text_chars, dedup=dedup)
        self.read_up_to = 0  # every signature numbered up to here is in the index

    def run_batches(self, retried: Retried = once) -> int:
        """Claim and process batches until none is left; the number of batches.

        A batch that PostgreSQL rolls back as busy (a deadlock, or a lock waited out: two
        workers' batches writing the same stored articles, one of them clustering) is taken
        again, up to BUSY_RETRIES times in a row. One whose connection broke (the server went
        away: rolled back with it) is taken again through `retried`, which reconnects
        (jobs.retry.Reconnection). Either way what it had counted is taken back."""
        batches, busy = 0, 0
        while True:
            try:
                size = retried("processing a batch", self._one_batch)
            except Exception as exc:
                if not is_busy(exc) or busy >= BUSY_RETRIES:
                    raise
                busy += 1
                logger.warning("a batch was rolled back (%s); taking a batch again", exc)
                continue
            if size is None:
                return batches
            busy = 0
            batches += 1
            logger.info("processed a batch of %d pages", size)

    def _one_batch(self) -> int | None:
        """Claim a batch and process it in its transaction: its size, None when no page is left.
        When it fails, what it counted is taken back (nothing of it was committed)."""
        counted = self.report.checkpoint()
        try:
            with self.store.database.transaction(concurrent=True):
                self.store.articles.hold_batch_floor()
                batch = self.store.pages.claim_pages_to_process(self.batch_size)
                if not batch:
                    return None
                self.process_batch(batch)
        except BaseException:
            self.report.rollback(counted)
            self._index = None  # it may hold the rolled-back batch's articles
            raise
        return len(batch)

    def process_batch(self, batch: list[FetchedPage]) -> None:
        self.deferred.clear()
        super().process_batch(batch)
        if self.deferred:
            # Alone from here to the commit, with every other worker's committed clusters in
            # view: two copies of one story in two workers' batches end up in one cluster.
            self.store.articles.lock_clustering()
            self._read_new_signatures()
            for article_id, text, source_id in self.deferred:
                self._cluster(article_id, text, source_id)
            self.deferred.clear()

    def _to_cluster(self, article_id: int, text: str, source_id: str | None) -> None:
        self.deferred.append((article_id, text, source_id))

    def _read_new_signatures(self) -> None:
        """The signatures committed since the last batch (the whole window the first time)."""
        floor = self.store.articles.batch_floor()  # before reading: see batch_floor
        if self._index is None:
            index, after = self.index, 0  # loads the window
            newest = max(index.signatures, default=0)
        else:
            d, index, after, newest = self.dedup, self._index, self.read_up_to, self.read_up_to
            for article_id, cluster_id, blob, shingles in self.store.articles.recent_signatures(
                    d.window_days, d.num_perm, after=after):
                index.add(article_id, Signature.from_bytes(blob, shingles), cluster_id)
                newest = max(newest, article_id)
        self.read_up_to = newest if floor is None else min(newest, max(floor, after))

    def _check_clusters(self, article_id: int, sig: Signature) -> None:
        index = self.index
        ids = [other for other, _, _ in index.matches(sig, exclude=article_id)]
        if article_id in index.cluster_of:
            ids.append(article_id)
        index.cluster_of.update(self.store.articles.clusters_of(ids))


def process_as_worker(store: Store, analyzer: AnalyzerLike, *, batch_size: int = 64,
                      min_text_chars: int = 300, max_text_chars: int = MAX_TEXT_CHARS,
                      dedup: DedupSettings | None = None, retried: Retried = once) -> WorkerReport:
    """Claim and process batches of pages until none is left (see the module's docstring)."""
    processor = WorkerProcessor(store, analyzer, batch_size=batch_size,
                                min_text_chars=min_text_chars, max_text_chars=max_text_chars,
                                dedup=dedup)
    done = WorkerReport(worker_name(), report=processor.report)
    done.batches = processor.run_batches(retried)
    return done


def process_worker_job(config: Config, location: DatabaseLocation, *, batch_size: int | None = None,
                       use_model: str | None = None) -> WorkerReport:
    """`dealwatch process --worker`: one recorded processing run of this worker's batches (the
    analyser loaded once), until no page is left to claim. Refused on a SQLite file, before
    anything is opened or loaded. A server that goes away is reconnected to, with backoff, for
    [database] reconnect_seconds (jobs.retry.Reconnection); then DatabaseLost, in one line."""
    if not is_database_url(str(location)):
        raise WorkerNeedsServer(needs_server(location))
    settings, database = config.settings.process, config.settings.database
    # The run lock shared, as crawl workers take it: workers run side by side, while a run that
    # takes it alone (`dealwatch process`, `run`, …) is refused while any works, and they too.
    with run_lock(location, "process --worker", shared=True) as lock, \
            Store(location, database.busy_timeout_ms) as store:
        if not store.pages.count_pages_to_process():
            # Nothing to do: no analyser loaded, no run recorded, so that a worker started every
            # few minutes by a timer (docs/scaling.md, "Deployment") costs one query when idle.
            return WorkerReport(worker_name(), idle=True)
        retried = Reconnection(location, lock, store, database.reconnect_seconds).retried
        with run_row(store, "process", retried=retried) as record:
            analyzer = build_analyzer(config, use_model, ranker=default_ranker(config, store))
            done = process_as_worker(store, analyzer,
                                     batch_size=batch_size or settings.batch_size,
                                     min_text_chars=settings.min_text_chars,
                                     max_text_chars=settings.max_text_chars,
                                     dedup=config.settings.dedup, retried=retried)
            record.add_process(done.report)
    return done
