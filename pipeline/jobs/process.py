"""The processing stage: stored pages → articles → entities → candidates, in batches."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from models.config import DedupSettings, ProcessSettings
from models.records import (
    Article,
    Candidate,
    FetchedPage,
    OnProcessProgress,
    Passage,
    ProcessProgress,
    StoredArticle,
)
from pipeline.analysis.rank import Ranker, score_candidate
from pipeline.dates import iso_day
from pipeline.ingest.dedup import NearDuplicateIndex, Signature, signature
from pipeline.ingest.extract import ExtractionError, extract_article
from pipeline.language import identify
from pipeline.storage import Store, unsupported_reason

if TYPE_CHECKING:  # the analyser needs spaCy; processing code only calls it
    from pipeline.analysis.results import Analysis, AnalyzerLike

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of items just finished
MAX_TEXT_CHARS = ProcessSettings().max_text_chars  # the shipped process.max_text_chars


K = TypeVar("K")


def _copied(counts: dict[K, Counter[str]]) -> dict[K, Counter[str]]:
    return {k: Counter(v) for k, v in counts.items()}


class ReportCheckpoint(NamedTuple):
    """A ProcessReport as it was (ProcessReport.checkpoint): the failures up to this many."""

    counters: Counter[str]
    by_source: dict[str, Counter[str]]
    failures: int
    failure_kinds: dict[str | None, Counter[str]]


@dataclass
class ProcessReport:
    counters: Counter[str] = field(default_factory=Counter)
    by_source: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)
    # per source (None: pages without one), how often each kind of failure happened
    failure_kinds: dict[str | None, Counter[str]] = field(default_factory=dict)

    def count(self, name: str, source_id: str | None = None, n: int = 1) -> None:
        self.counters[name] += n
        if source_id:
            self.by_source.setdefault(source_id, Counter())[name] += n

    def fail(self, what: str, reason: str, source_id: str | None) -> None:
        """A page (what: its URL) or an article that failed, with the reason recorded on it."""
        self.count("failed", source_id)
        self.failures.append((what, reason))
        self.failure_kinds.setdefault(source_id, Counter())[failure_kind(reason)] += 1

    def of_source(self, source_id: str | None) -> Counter[str]:
        """A source's counts; for None, those of the pages stored without a source (what the
        whole run counted and no source did: right for the counts every page's source gets)."""
        if source_id:
            return self.by_source.get(source_id, Counter())
        unsourced = Counter(self.counters)
        for counts in self.by_source.values():
            unsourced.subtract(counts)
        return +unsourced

    def checkpoint(self) -> ReportCheckpoint:
        """The report as it is (counts, failures and their kinds), to go back to when the work
        it counts is rolled back."""
        return ReportCheckpoint(Counter(self.counters), _copied(self.by_source),
                                len(self.failures), _copied(self.failure_kinds))

    def rollback(self, checkpoint: ReportCheckpoint) -> None:
        self.counters, self.by_source = Counter(checkpoint.counters), _copied(checkpoint.by_source)
        del self.failures[checkpoint.failures:]
        self.failure_kinds = _copied(checkpoint.failure_kinds)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(sorted(self.counters.items()))
        if self.by_source:
            out["sources"] = {sid: dict(sorted(c.items())) for sid, c in sorted(self.by_source.items())}
        return out


def failure_kind(reason: str) -> str:
    """A failure's reason without its details: "cannot parse HTML: ValueError" of
    "cannot parse HTML: ValueError: Document is empty"."""
    return ": ".join(reason.split(": ")[:2])


def _source_order(source: str | None) -> tuple[bool, str]:
    return source is None, source or ""


class SourceProgressTally:
    """Each source's progress through a processing run, told to on_progress as ProcessProgress
    records: every source with pages to process when the run starts, a source again after each
    batch that held its pages, and finished once its pages counted at the start are done (or at
    the end of the run)."""

    def __init__(self, to_process: dict[str | None, int], report: ProcessReport,
                 on_progress: OnProcessProgress):
        self.to_process = to_process
        self.report = report
        self.on_progress: OnProcessProgress | None = on_progress
        self.done: Counter[str | None] = Counter()
        self.finished: set[str | None] = set()
        for source in sorted(to_process, key=_source_order):
            self._tell(source)

    def batch_done(self, batch: list[FetchedPage]) -> None:
        self.done.update(page.source_id for page in batch)
        for source in dict.fromkeys(page.source_id for page in batch):
            self._tell(source, self.done[source] >= self.to_process.get(source, 0))

    def run_done(self) -> None:
        for source in sorted((set(self.to_process) | set(self.done)) - self.finished,
                             key=_source_order):
            self._tell(source, finished=True)

    def _tell(self, source: str | None, finished: bool = False) -> None:
        counts = self.report.of_source(source)
        failures = self.report.failure_kinds.get(source)
        if finished:
            self.finished.add(source)
        if self.on_progress is None:
            return
        progress = ProcessProgress(
            source=source, pages=max(self.to_process.get(source, 0), self.done[source]),
            done=self.done[source], articles=counts["articles"],
            candidates=counts["candidates"], candidates_new=counts["candidates_new"],
            not_article=counts["not_article"], blocked=counts["blocked"],
            duplicates=counts["duplicates"], failed=counts["failed"],
            failure_reason=failures.most_common(1)[0][0] if failures else None,
            finished=finished)
        try:
            self.on_progress(progress)
        except Exception:  # showing progress must not stop processing (as for the crawl)
            logger.exception("cannot show the processing's progress; it goes on without")
            self.on_progress = None


T = TypeVar("T")


def _batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _analyse_and_save(store: Store, analyzer: AnalyzerLike, articles: list[tuple[int, Passage, str | None]],
                      batch_size: int, report: ProcessReport) -> None:
    """Tag and detect on (article_id, passage, source_id) and store the results (caller's
    transaction); a passage is the article's text with its headline (read as context).

    A text the analyser chokes on must not cost the batch: then each is analysed on its own, and
    the one that fails is recorded as failed with its reason, so that no later run tries it
    again. Nothing raises for one bad text, even one alone in its batch.
    """
    if len(articles) > 1:
        counted = report.checkpoint()
        try:
            with store.transaction():
                _analyse_batch(store, analyzer, articles, batch_size, report)
            return
        except Exception:
            report.rollback(counted)  # what the rolled-back attempt counted did not happen
            logger.warning("analysing a batch of %d failed; analysing one by one", len(articles))
    for item in articles:
        counted = report.checkpoint()
        try:
            with store.transaction():
                _analyse_batch(store, analyzer, [item], batch_size, report)
        except Exception as exc:
            report.rollback(counted)
            reason = f"analysis failed: {type(exc).__name__}: {exc}"
            logger.exception("article %d: %s", item[0], reason)
            store.pages.mark_article_pages(item[0], "failed", reason)
            report.fail(f"article {item[0]}", reason, item[2])


def _analyse_batch(store: Store, analyzer: AnalyzerLike, articles: list[tuple[int, Passage, str | None]],
                   batch_size: int, report: ProcessReport) -> None:
    passages = (passage for _, passage, _ in articles)
    for item, analysis in zip(articles, analyzer.analyze_many(passages, batch_size), strict=True):
        _save_analysis(store, analyzer, item, analysis, report)


def _save_analysis(store: Store, analyzer: AnalyzerLike, item: tuple[int, Passage, str | None],
                   analysis: Analysis, report: ProcessReport) -> None:
    """Store what the analysis found; an article in a language the analyser does not read is
    recorded so ("unsupported language: zh"), with nothing found in it: never read as English.
    Saving its empty analysis takes back what an earlier analysis found in it while pending."""
    article_id, passage, source_id = item
    supported = analysis.supported
    language = analysis.language or passage.language
    if not supported:
        analysis.entities, analysis.candidates = [], []
    outcome = store.articles.save_analysis(article_id, analysis.entities, analysis.candidates,
                                  analyzer.version)
    store.articles.set_language_verdict(article_id, language, supported)
    if not supported:
        logger.info("article %d: %s: not analysed", article_id, unsupported_reason(language))
        report.count("unsupported_language", source_id)
    report.count("entities", None, len(analysis.entities))
    report.count("candidates", source_id, len(analysis.candidates))
    report.count("candidates_new", source_id, outcome["candidates_new"])
    report.count("candidates_removed", None, outcome["candidates_removed"])


class PageProcessor:
    """Extracts stored pages into articles, clusters near-duplicates, then tags and detects."""

    def __init__(self, store: Store, analyzer: AnalyzerLike, *, batch_size: int = 64,
                 min_text_chars: int = 300, max_text_chars: int = MAX_TEXT_CHARS,
                 dedup: DedupSettings | None = None):
        self.store = store
        self.analyzer = analyzer
        self.batch_size = batch_size
        self.min_text_chars = min_text_chars
        self.max_text_chars = max_text_chars
        self.dedup = dedup if dedup is not None else DedupSettings()
        self.report = ProcessReport()
        self._index: NearDuplicateIndex | None = None
        # (article id, text, source) extracted and not clustered yet: processing workers cluster
        # a batch's articles at its end (jobs.process_worker); one process clusters at once.
        self.deferred: list[tuple[int, str, str | None]] = []

    def run(self, progress: Progress | None = None,
            on_progress: OnProcessProgress | None = None) -> ProcessReport:
        """Every stored article page not processed yet; progress hears how many pages each batch
        did, on_progress how far each source has got.

        Each batch is one transaction: a crash loses at most the batch in hand, which the next
        run does again. A page that cannot be extracted is recorded with its reason; the rest go
        on.
        """
        tally = (SourceProgressTally(self.store.pages.count_pages_to_process_by_source(),
                                     self.report, on_progress) if on_progress else None)
        for batch in _batched(self.store.pages.pages_to_process(), self.batch_size):
            with self.store.transaction():
                self.process_batch(batch)
            if progress:
                progress(len(batch))
            if tally:
                tally.batch_done(batch)
        if tally:
            tally.run_done()
        return self.report

    def process_batch(self, batch: list[FetchedPage]) -> None:
        """Extract, cluster, tag and detect these pages, in the caller's transaction."""
        to_analyse: list[tuple[int, Passage, str | None]] = []
        seen_hashes: dict[str, int] = {}
        for page in batch:
            self._extract_page_safely(page, seen_hashes, to_analyse)
        _analyse_and_save(self.store, self.analyzer, to_analyse, self.batch_size, self.report)

    @property
    def index(self) -> NearDuplicateIndex:
        """Signatures of recent articles, loaded from the store the first time it is needed."""
        if self._index is None:
            d = self.dedup
            self._index = NearDuplicateIndex(d.num_perm, d.jaccard, d.containment)
            for article_id, cluster_id, blob, shingles in self.store.articles.recent_signatures(
                    d.window_days, d.num_perm):
                self._index.add(article_id, Signature.from_bytes(blob, shingles), cluster_id)
        return self._index

    def _cluster(self, article_id: int, text: str, source_id: str | None) -> None:
        d = self.dedup
        # the part that is analysed: a near-duplicate of it is a copy of the same story
        sig = signature(text[:self.max_text_chars], d.num_perm, d.shingle_words)
        self._check_clusters(article_id, sig)
        cluster_id, merged = self.index.assign(article_id, sig)
        self.store.articles.save_signature(article_id, sig.to_bytes(), sig.shingles, d.num_perm)
        self.store.articles.set_cluster(article_id, cluster_id, merged)
        if cluster_id != article_id:
            self.report.count("near_duplicates", source_id)

    def _check_clusters(self, article_id: int, sig: Signature) -> None:
        """Before assigning: make sure the index knows the clusters the article's copies are in
        now (one process: its own index is the truth; processing workers read the store)."""

    def _to_cluster(self, article_id: int, text: str, source_id: str | None) -> None:
        """An article extracted anew: cluster it now (processing workers cluster a batch's
        articles together at its end)."""
        self._cluster(article_id, text, source_id)

    def _extract_page_safely(self, page: FetchedPage, seen_hashes: dict[str, int],
                             to_analyse: list[tuple[int, Passage, str | None]],
                             again: bool = True) -> None:
        """One page in its own savepoint: a page that breaks something unexpected is recorded
        as failed with the reason, and the batch goes on."""
        counted, hashes, queued = self.report.checkpoint(), dict(seen_hashes), len(to_analyse)
        deferred = len(self.deferred)
        try:
            with self.store.transaction():
                self._extract_page(page, seen_hashes, to_analyse)
        except Exception as exc:
            # nothing of this page was written: forget what its attempt counted and noted
            self.report.rollback(counted)
            seen_hashes.clear()
            seen_hashes.update(hashes)
            del to_analyse[queued:]
            del self.deferred[deferred:]
            url = page.final_url or page.url
            if again and same_text_stored(exc):
                # Another processing worker stored this text from another URL while this one
                # read it: read the page again, and it is that article's duplicate.
                logger.info("%s: its text was stored meanwhile by another worker", url)
                self._extract_page_safely(page, seen_hashes, to_analyse, again=False)
                return
            reason = f"processing failed: {type(exc).__name__}: {exc}"
            logger.exception("%s: %s", url, reason)
            if self._index is not None:
                self._index = None  # it may hold this page's article: reload from the store
            self.store.pages.mark_page(page.id, "failed", reason)
            self.report.count("pages", page.source_id)  # it was processed: into a failure
            self.report.fail(url, reason, page.source_id)

    def _extract_page(self, page: FetchedPage, seen_hashes: dict[str, int],
                      to_analyse: list[tuple[int, Passage, str | None]]) -> None:
        store, source_id = self.store, page.source_id
        self.report.count("pages", source_id)
        url = page.final_url or page.url
        try:
            result = extract_article(page.body, url, page.headers, self.min_text_chars)
        except ExtractionError as exc:
            store.pages.mark_page(page.id, "failed", str(exc))
            self.report.fail(url, str(exc), source_id)
            return
        if result.article is None:
            store.pages.mark_page(page.id, result.status, result.reason)
            self.report.count(result.status, source_id)
            return
        article: Article = result.article
        if not article.title and page.listed_title:
            article.title = page.listed_title
        if not article.published:
            # the feed's date, as the day the page itself would have given
            article.published = iso_day(page.listed_date)
        existing = store.articles.article_by_hash(article.text_hash)
        duplicate_of = seen_hashes.get(article.text_hash) or (
            existing.id if existing and existing.canonical_url != article.canonical_url
            else None)
        if duplicate_of:
            store.pages.mark_page(page.id, "duplicate", f"same text as article {duplicate_of}",
                            duplicate_of)
            self.report.count("duplicates", source_id)
            return
        article_id = store.articles.save_article(page.id, source_id, article)
        # The whole text is stored; the analyser reads its first max_text_chars characters,
        # so that one page costs bounded time and memory whatever it holds.
        too_long = (too_long_reason(len(article.text), self.max_text_chars)
                    if len(article.text) > self.max_text_chars else None)
        store.pages.mark_page(page.id, "article", too_long, article_id)
        if too_long:
            logger.warning("%s: %s", url, too_long)
            self.report.count("too_long", source_id)
        seen_hashes[article.text_hash] = article_id
        self.report.count("articles", source_id)
        if existing and existing.id == article_id:
            if existing.analyser == self.analyzer.version:
                # Same article, same text, analysed by this very analyser: nothing would change.
                self.report.count("unchanged", source_id)
                return
        elif self.dedup.near_duplicates:
            self._to_cluster(article_id, article.text, source_id)
        to_analyse.append((article_id, Passage(article.text[:self.max_text_chars], article.title,
                                               article.language), source_id))


def same_text_stored(exc: BaseException) -> bool:
    """The article's text is stored already under another URL: the unique text_hash refused it
    (on PostgreSQL, another worker committed it after this one looked)."""
    cause: BaseException | None = exc
    while cause is not None:  # the driver's unique_violation, or the store's error it caused
        if getattr(cause, "sqlstate", None) == "23505" and "text_hash" in str(cause):
            return True
        cause = cause.__cause__
    return False


def too_long_reason(chars: int, limit: int) -> str:
    """The verdict recorded on the page of an article longer than the analyser reads."""
    return f"too long: {chars:,} characters, the first {limit:,} analysed (process.max_text_chars)"


def process_pages(store: Store, analyzer: AnalyzerLike, *, batch_size: int = 64,
                  min_text_chars: int = 300, max_text_chars: int = MAX_TEXT_CHARS,
                  dedup: DedupSettings | None = None, progress: Progress | None = None,
                  on_progress: OnProcessProgress | None = None) -> ProcessReport:
    """Extract, cluster, tag and detect every stored article page not processed yet;
    on_progress hears how far each source has got (SourceProgressTally)."""
    processor = PageProcessor(store, analyzer, batch_size=batch_size,
                              min_text_chars=min_text_chars, max_text_chars=max_text_chars,
                              dedup=dedup)
    return processor.run(progress=progress, on_progress=on_progress)


def reanalyse_articles(store: Store, analyzer: AnalyzerLike, *, batch_size: int = 64,
                       progress: Progress | None = None) -> ProcessReport:
    """Tag and detect again on stored text (after a rules or watchlist change); no re-fetching."""
    report = ProcessReport()
    rows = store.articles.articles_for_reanalysis()
    for batch in _batched(rows, batch_size):
        with store.transaction():
            _analyse_and_save(store, analyzer,
                              [(r.id, Passage(r.text, r.title, _stored_language(store, r)), r.source_id)
                               for r in batch], batch_size,
                              report)
        report.counters["articles"] += len(batch)
        if progress:
            progress(len(batch))
    return report


def _stored_language(store: Store, row: StoredArticle) -> str | None:
    """A stored article's language; one stored before languages were identified (its
    language is only what its page declared) is identified now, and recorded."""
    if row.language_source:
        return row.language
    guess = identify(row.text, row.language_declared or row.language)
    store.articles.set_article_language(row.id, guess.code, guess.declared, guess.source,
                               guess.confidence)
    return guess.code


def rescore_candidates(store: Store, ranker: Ranker | None, threshold: float, *,
                       batch_size: int = 500, progress: Progress | None = None) -> ProcessReport:
    """Rank every stored candidate again from its stored fields and signals (no re-extraction,
    no re-analysis): score, reasons and queued. Running it twice changes nothing the second time.
    """
    report = ProcessReport()
    pending: list[tuple[int, Candidate]] = []

    def flush() -> None:
        with store.transaction():
            report.count("changed", None, store.candidates.set_scores(pending))
        if progress:
            progress(len(pending))
        pending.clear()

    for candidate_id, cand in store.candidates.stored_candidates(batch_size):
        score_candidate(cand, ranker, threshold)
        report.count("candidates")
        report.count("queued" if cand.queued else "hidden")
        pending.append((candidate_id, cand))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return report
