"""The processing stage: stored pages → articles → entities → candidates, in batches."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from models.records import Article
from pipeline.extract import ExtractionError, extract_article
from pipeline.store import Store

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of items just finished


class AnalyzerLike(Protocol):
    version: str

    def analyze_many(self, texts: Any, batch_size: int = ...) -> Iterator[Any]: ...


@dataclass
class ProcessReport:
    counters: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)

    def as_dict(self) -> dict[str, Any]:
        return dict(sorted(self.counters.items()))


def _batched(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _analyse_and_save(store: Store, analyzer: AnalyzerLike, articles: list[tuple[int, str]],
                      batch_size: int, report: ProcessReport) -> None:
    """Tag and detect on (article_id, text) pairs and store the results (caller's transaction)."""
    texts = (text for _, text in articles)
    for (article_id, _), analysis in zip(articles, analyzer.analyze_many(texts, batch_size),
                                         strict=True):
        outcome = store.save_analysis(article_id, analysis.entities, analysis.candidates,
                                      analyzer.version)
        report.counters["entities"] += len(analysis.entities)
        report.counters["candidates"] += len(analysis.candidates)
        report.counters["candidates_new"] += outcome["candidates_new"]
        report.counters["candidates_removed"] += outcome["candidates_removed"]


def process_pages(store: Store, analyzer: AnalyzerLike, *, batch_size: int = 64,
                  min_text_chars: int = 300, reprocess: bool = False,
                  progress: Progress | None = None) -> ProcessReport:
    """Extract, tag and detect every stored article page not processed yet.

    Each batch is one transaction: a crash loses at most the batch in hand, which the next run
    does again. A page that cannot be extracted is recorded with its reason; the rest go on.
    """
    report = ProcessReport()
    for batch in _batched(store.pages_to_process(reprocess=reprocess), batch_size):
        with store.transaction():
            to_analyse: list[tuple[int, str]] = []
            seen_hashes: dict[str, int] = {}
            for page in batch:
                _extract_page(store, page, min_text_chars, report, seen_hashes, to_analyse,
                              analyzer.version)
            _analyse_and_save(store, analyzer, to_analyse, batch_size, report)
        if progress:
            progress(len(batch))
    return report


def _extract_page(store: Store, page: dict[str, Any], min_text_chars: int, report: ProcessReport,
                  seen_hashes: dict[str, int], to_analyse: list[tuple[int, str]],
                  analyser_version: str) -> None:
    report.counters["pages"] += 1
    url = page["final_url"] or page["url"]
    try:
        result = extract_article(page["body"], url, page["headers"], min_text_chars)
    except ExtractionError as exc:
        store.mark_page(page["id"], "failed", str(exc))
        report.counters["failed"] += 1
        report.failures.append((url, str(exc)))
        return
    if result.article is None:
        store.mark_page(page["id"], "not_article", result.reason)
        report.counters["not_article"] += 1
        return
    article: Article = result.article
    if not article.title and page.get("listed_title"):
        article.title = page["listed_title"]
    if not article.published and page.get("listed_date"):
        article.published = page["listed_date"]
    existing = store.article_by_hash(article.text_hash)
    duplicate_of = seen_hashes.get(article.text_hash) or (
        existing["id"] if existing and existing["canonical_url"] != article.canonical_url else None)
    if duplicate_of:
        store.mark_page(page["id"], "duplicate", f"same text as article {duplicate_of}", duplicate_of)
        report.counters["duplicates"] += 1
        return
    article_id = store.save_article(page["id"], page["source_id"], article)
    store.mark_page(page["id"], "article", None, article_id)
    seen_hashes[article.text_hash] = article_id
    report.counters["articles"] += 1
    if existing and existing["id"] == article_id and existing["analyser"] == analyser_version:
        # Same article, same text, analysed by this very analyser: nothing would change.
        report.counters["unchanged"] += 1
        return
    to_analyse.append((article_id, article.text))


def reanalyse_articles(store: Store, analyzer: AnalyzerLike, *, batch_size: int = 64,
                       only_stale: bool = False, progress: Progress | None = None) -> ProcessReport:
    """Tag and detect again on stored text (after a rules or watchlist change); no re-fetching."""
    report = ProcessReport()
    rows = store.articles_for_reanalysis(
        exclude_analyser=analyzer.version if only_stale else None)
    for batch in _batched(rows, batch_size):
        with store.transaction():
            _analyse_and_save(store, analyzer, [(r["id"], r["text"]) for r in batch], batch_size,
                              report)
        report.counters["articles"] += len(batch)
        if progress:
            progress(len(batch))
    return report
