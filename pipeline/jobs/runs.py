"""Recorded runs (the run lock, a `runs` row, its outcome and counters), the crawl run, run health."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import FrameType
from typing import TYPE_CHECKING, Any

from models.config import StatusSettings
from models.records import OnProcessProgress, ProcessProgress
from models.registry import Run
from pipeline.config import Config
from pipeline.ingest.crawl import CrawlReport, OnProgress, run_crawl
from pipeline.ingest.health import Flag, crawl_counters, flags
from pipeline.jobs.retry import DatabaseLost, Retried, once
from pipeline.storage import Store
from pipeline.storage.database import DatabaseLocation
from pipeline.storage.lock import run_lock
from scrapers.progress import SourceProgress

if TYPE_CHECKING:
    from pipeline.jobs.process import ProcessReport  # it loads spaCy; records need only its type

# How many recent runs `dealwatch status` judges by default, and a finished run judges itself by.
RECENT_RUNS = 10

# A display of a crawl's progress, entered around the crawl: it yields what to call with each
# source's progress (None: show nothing). The CLI shows it live on a terminal, as lines in a log.
CrawlDisplay = Callable[[], AbstractContextManager[OnProgress | None]]
# The same for processing: what it yields hears how far each source's pages have got.
ProcessDisplay = Callable[[], AbstractContextManager[OnProcessProgress | None]]


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C, so runs are recorded and subprocesses end with us."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated("stopped by SIGTERM")


def stop_on_sigterm() -> None:
    """Make SIGTERM raise Terminated (signal handlers belong to the main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


class RunRecord:
    """What a run row will say: crawl and processing counters, and whether it went well."""

    def __init__(self, run_id: int):
        self.id = run_id
        self.counters: dict[str, Any] = {}
        self.outcome = "ok"

    def add_crawl(self, report: CrawlReport) -> None:
        self.counters["crawl"] = report.sources
        if report.attention:
            self.counters["attention"] = report.attention
        if report.budget_exhausted:
            self.counters["budget_exhausted"] = report.budget_exhausted
        if not report.ok:
            self.outcome = "errors"

    def add_process(self, report: ProcessReport) -> None:
        self.counters["process"] = report.as_dict()
        if report.failures:
            self.outcome = "errors"


@contextmanager
def recorded_run(db_path: DatabaseLocation, kind: str, sources: list[str] | None = None, *,
                 busy_timeout_ms: int) -> Iterator[tuple[Store, RunRecord]]:
    """A writing run: the database's run lock, a `runs` row, its outcome and counters.

    Runs that died without finishing their row are marked aborted first. An exception (Ctrl-C
    and SIGTERM included) finishes the row as failed or interrupted, with its message.
    """
    with run_lock(db_path, kind), Store(db_path, busy_timeout_ms) as store:
        store.runs.abort_stale_runs()
        with run_row(store, kind, sources) as record:
            yield store, record


@contextmanager
def run_row(store: Store, kind: str, sources: list[str] | None = None,
            retried: Retried = once) -> Iterator[RunRecord]:
    """A `runs` row for the block: finished with its outcome and counters, or as failed or
    interrupted, with the message, when the block raises (the caller holds the run lock).

    A worker's row is written through `retried` (jobs.retry.Reconnection): started and
    finished over a new connection when the server went away meanwhile. After a block that
    gave up on the server, the row is left running (the next run that takes the run lock alone
    marks it aborted)."""
    record = RunRecord(retried("recording the run", lambda: store.runs.start_run(kind, sources)))
    try:
        yield record
    except BaseException as exc:
        if not isinstance(exc, DatabaseLost):
            outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            message = str(exc) or type(exc).__name__
            retried("recording the run's end", lambda: store.runs.finish_run(
                record.id, outcome, record.counters, message))
        raise
    retried("recording the run's end",
            lambda: store.runs.finish_run(record.id, record.outcome, record.counters))


def check_source_ids(config: Config, source_ids: list[str] | None) -> None:
    """An unknown source id fails before a run is recorded (a typo is no failed run)."""
    for sid in source_ids or []:
        config.source(sid)


def crawl_sources(config: Config, db_path: DatabaseLocation, store: Store, source_ids: list[str] | None,
                  run_id: int, display: CrawlDisplay | None = None) -> CrawlReport:
    """Crawl the enabled (or the named) sources for the run run_id (Scrapy, in a subprocess),
    its progress shown on the display."""
    store.runs.sync_sources(config.sources)
    with (display or no_display)() as on_progress:
        return run_crawl(config, db_path, source_ids or None, run_id=run_id,
                         on_progress=on_progress)


def no_display() -> AbstractContextManager[OnProgress | None]:
    return nullcontext(None)


def crawl_job(config: Config, db_path: DatabaseLocation, source_ids: list[str] | None = None,
              display: CrawlDisplay | None = None) -> tuple[int, CrawlReport]:
    """A recorded crawl of the enabled (or the named) sources: its run id and report."""
    check_source_ids(config, source_ids)
    with recorded_run(db_path, "crawl", source_ids,
                      busy_timeout_ms=config.settings.database.busy_timeout_ms) as (store, record):
        report = crawl_sources(config, db_path, store, source_ids, record.id, display)
        record.add_crawl(report)
    return record.id, report


def health(runs: list[Run], settings: StatusSettings) -> list[Flag]:
    """The sources that need a person's attention, judged from these runs (newest first); a run
    still going is left out."""
    return flags([r for r in runs if r.outcome != "running"], settings.stale_after_runs,
                 settings.min_pages_for_yield)


def run_summary(run: Run) -> dict[str, Any]:
    """One run as `dealwatch status` reports it: its crawl and processing counters summed.

    The counters of a part the run did not do are None: a processing run sent no requests, it
    did not get "0 304s".
    """
    c = run.counters or {}
    crawl = crawl_counters(c)
    process = c.get("process")

    def crawled(key: str) -> int | None:
        return None if crawl is None else sum(int(v.get(key, 0)) for v in crawl.values())

    def processed(key: str) -> int | None:
        return None if process is None else int(process.get(key, 0))

    return {
        "id": run.id, "kind": run.kind, "started_at": run.started_at,
        "finished_at": run.finished_at, "outcome": run.outcome,
        "sources": sorted(crawl or {}) or run.sources or [],
        "requests": crawled("requests"),
        "not_modified": crawled("not_modified"),
        "unchanged": crawled("unchanged"),
        "articles_new": crawled("articles_new"),
        "articles": processed("articles"),
        "near_duplicates": processed("near_duplicates"),
        "blocked": processed("blocked"),
        "candidates_new": processed("candidates_new"),
        "rescored": (c.get("rescore") or {}).get("candidates"),
        "message": run.message,
    }


def describe_run(summary: dict[str, Any]) -> str:
    """What a run did, from its run_summary, for one line of `dealwatch status`: only the parts
    it did (a crawl, processing, rescoring)."""
    parts = []
    if summary["requests"] is not None:
        parts.append(f"requests {summary['requests']}, 304s {summary['not_modified']}, "
                     f"unchanged {summary['unchanged']}, new articles {summary['articles_new']}")
    if summary["articles"] is not None:
        parts.append(f"articles {summary['articles']} ({summary['near_duplicates']} copies), "
                     f"walls {summary['blocked']}, new candidates {summary['candidates_new']}")
    if summary["rescored"] is not None:
        parts.append(f"rescored {summary['rescored']} candidates")
    return "; ".join(parts) or "nothing done"


def describe_crawl(report: CrawlReport) -> list[str]:
    """What a crawl did, a line per source, then what needs attention (for stderr or a log)."""
    lines = []
    for sid, counters in sorted(report.sources.items()):
        parts = [f"{k}={v}" for k, v in sorted(counters.items()) if not isinstance(v, dict) and v]
        errors = counters.get("errors") or {}
        if isinstance(errors, dict) and errors:
            parts.append("errors: " + ", ".join(f"{k}={v}" for k, v in sorted(errors.items())))
        lines.append(f"crawl {sid}: " + (" ".join(parts) or "nothing fetched"))
    for sid, reason in sorted(report.attention.items()):
        lines.append(f"needs attention: {sid}: {reason}")
    if report.budget_exhausted:
        lines.append(f"the run's budget ran out ({report.budget_exhausted}); what was fetched is "
                     "stored and the next run goes on from there")
    return lines


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def describe_budget(progress: SourceProgress) -> str:
    """What is left of the run's budget ("9,988 requests, 1h59m"); empty without limits."""
    left = []
    if progress.requests_left is not None:
        left.append(f"{progress.requests_left:,} requests")
    if progress.seconds_left is not None:
        left.append(_duration(progress.seconds_left))
    return ", ".join(left)


def _counted(n: int, thing: str) -> str:
    return f"{n:,} {thing}" + ("" if n == 1 else "s")


def describe_progress(progress: SourceProgress) -> str:
    """A source's counts so far: "12 requests, 8 articles (6 new), 1 error"."""
    return (f"{_counted(progress.requests, 'request')}, {_counted(progress.articles, 'article')} "
            f"({progress.articles_new:,} new), {_counted(progress.errors, 'error')}")


class ProgressLines:
    """A crawl's progress for a log: a line per source when it finishes, and one every `every`
    seconds while a source goes on longer."""

    def __init__(self, say: Callable[[str], None], every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.say = say
        self.every = every
        self.clock = clock
        self.started = clock()
        self.said: dict[str, float] = {}  # source id -> when its last line was said

    def __call__(self, progress: SourceProgress) -> None:
        now = self.clock()
        took = _duration(now - self.started)
        budget = describe_budget(progress)
        budget = f"; budget left: {budget}" if budget else ""
        if progress.finished:
            how = ("" if progress.finish_reason in (None, "finished")
                   else f" ({progress.finish_reason})")
            self.say(f"crawl {progress.source} finished after {took}{how}: "
                     f"{describe_progress(progress)}{budget}")
        elif now - self.said.get(progress.source, self.started) >= self.every:
            self.said[progress.source] = now
            self.say(f"crawl {progress.source} going on after {took}: "
                     f"{describe_progress(progress)}{budget}")


def plain_display(say: Callable[[str], None], every: float = 60.0) -> CrawlDisplay:
    """The crawl display for a log: ProgressLines."""
    return lambda: nullcontext(ProgressLines(say, every))


def source_label(source: str | None) -> str:
    return source if source is not None else "(no source)"


def all_sources(progress: list[ProcessProgress]) -> ProcessProgress:
    """The whole run's progress, from each source's latest (no source, no failure reason)."""
    def total(name: str) -> int:
        return sum(getattr(p, name) for p in progress)

    return ProcessProgress(
        None, pages=total("pages"), done=total("done"), articles=total("articles"),
        candidates=total("candidates"), candidates_new=total("candidates_new"),
        not_article=total("not_article"), blocked=total("blocked"),
        duplicates=total("duplicates"), failed=total("failed"),
        finished=all(p.finished for p in progress))


def describe_processing(progress: ProcessProgress) -> str:
    """A source's processing counts so far: "96 articles, 7 candidates (4 new), 22 skipped (15
    not articles, 5 bot or consent walls, 2 exact duplicates), 1 failed (analysis failed:
    ValueError)"; the pages are for the caller to say."""
    p = progress
    skipped = [f"{p.not_article:,} not {'an article' if p.not_article == 1 else 'articles'}",
               _counted(p.blocked, "bot or consent wall"),
               _counted(p.duplicates, "exact duplicate")]
    kinds = [part for part, n in zip(skipped, (p.not_article, p.blocked, p.duplicates),
                                     strict=True) if n]
    why = ""
    if p.failure_reason:
        why = f" ({'commonest: ' if p.failed > 1 else ''}{p.failure_reason})"
    return (f"{_counted(p.articles, 'article')}, {_counted(p.candidates, 'candidate')} "
            f"({p.candidates_new:,} new), {p.skipped:,} skipped"
            + (f" ({', '.join(kinds)})" if kinds else "") + f", {p.failed:,} failed{why}")


def _pages_done(progress: ProcessProgress) -> str:
    if progress.done == progress.pages:
        return _counted(progress.pages, "page")
    return f"{progress.done:,} of {_counted(progress.pages, 'page')}"


class ProcessLines:
    """A processing run's progress for a log: a line per source when its pages are done, and one
    for the whole run every `every` seconds while it goes on."""

    def __init__(self, say: Callable[[str], None], every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.say = say
        self.every = every
        self.clock = clock
        self.started = self.said = clock()
        self.latest: dict[str | None, ProcessProgress] = {}

    def __call__(self, progress: ProcessProgress) -> None:
        now = self.clock()
        took = _duration(now - self.started)
        self.latest[progress.source] = progress
        if progress.finished:
            self.say(f"process {source_label(progress.source)} done after {took}: "
                     f"{_pages_done(progress)}, {describe_processing(progress)}")
        finished = sum(p.finished for p in self.latest.values())
        if now - self.said >= self.every and finished < len(self.latest):
            self.said = now
            whole = all_sources(list(self.latest.values()))
            self.say(f"processing going on after {took}: {whole.done:,} of "
                     f"{_counted(whole.pages, 'page')} ({finished} of "
                     f"{_counted(len(self.latest), 'source')} done), "
                     f"{describe_processing(whole)}")


def plain_process_display(say: Callable[[str], None], every: float = 60.0) -> ProcessDisplay:
    """The processing display for a log: ProcessLines."""
    return lambda: nullcontext(ProcessLines(say, every))


def describe_process(report: ProcessReport) -> list[str]:
    """What processing did, in a sentence, then what to know about it (for stderr or a log)."""
    c = report.counters
    lines = [
        f"processed {c['pages']} pages: {c['articles']} articles "
        f"({c['near_duplicates']} copies of stories already seen), {c['not_article']} not "
        f"articles, {c['blocked']} blocked by bot or consent walls, {c['duplicates']} exact "
        f"duplicates, {c['failed']} failed; {c['candidates_new']} new candidates"]
    if c["too_long"]:
        lines.append(f"  {c['too_long']} articles too long: their first process.max_text_chars "
                     "characters were analysed")
    if c["unsupported_language"]:
        lines.append(f"  {c['unsupported_language']} articles in a language dealwatch does not "
                     "read were not analysed (`dealwatch status` counts them by language)")
    lines += [f"  failed {url}: {reason}" for url, reason in report.failures[:10]]
    return lines


def describe_health(found: list[Flag]) -> list[str]:
    """The health flags a crawl's own lines do not already give (its errors and attention)."""
    return [f"needs attention: {f.source}: {f.problem.replace('_', ' ')}: {f.detail}"
            for f in found if f.problem != "errors"]
