"""The nightly job (crawl, process, retention, health) and the recorded runs of its parts.

`dealwatch run`, `dealwatch demo` and the scheduler all call `run_nightly()`. The scheduler runs
it in a fresh process each time, as `python -m pipeline.jobs.nightly --db PATH --config DIR`
(Scrapy's reactor cannot be restarted in one process), with these exit codes: 0 the run went
well; 1 it finished with errors a person must look at, or could not run (bad config, locked or
busy database), with a one-line message on stderr; 2 a usage error; 130 Ctrl-C; 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from models.errors import DealwatchError
from pipeline.analysis.rank import SHIPPED, RankerError, choose_ranker, load
from pipeline.config import Config, load_config, resolve_db_path
from pipeline.ingest.crawl import CrawlReport
from pipeline.ingest.health import Flag
from pipeline.jobs.analyzer import build_analyzer, default_ranker, ranker_choices
from pipeline.jobs.process import (
    ProcessReport,
    Progress,
    process_pages,
    reanalyse_articles,
    rescore_candidates,
)
from pipeline.jobs.runs import (
    RECENT_RUNS,
    Terminated,
    crawl_sources,
    describe_crawl,
    describe_health,
    describe_process,
    health,
    recorded_run,
    stop_on_sigterm,
)
from pipeline.storage import Store, is_busy

logger = logging.getLogger(__name__)

# A progress display for `total` items under a label; it yields what to call with each step
# (None: show nothing). The CLI passes a bar on a terminal; cron and the scheduler pass none.
ProgressBar = Callable[[int, str], AbstractContextManager[Progress | None]]


class RescoreError(DealwatchError):
    """The ranker to rescore with cannot be read; nothing was rescored."""


@dataclass
class NightlyReport:
    """What one nightly run did: its run row, the crawl, the processing, the sources' health."""

    run_id: int
    outcome: str  # ok | errors: as the run row says
    crawl: CrawlReport
    process: ProcessReport
    health: list[Flag]  # the sources that need attention, judged with this run

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class Rescored:
    report: ProcessReport
    ranker: str  # which model scored: a path, the shipped ranker or the rule score


def _no_bar(total: int, label: str) -> AbstractContextManager[Progress | None]:
    return nullcontext(None)


def _process(config: Config, store: Store, use_model: str | None, reanalyse: bool,
             bar: ProgressBar) -> ProcessReport:
    """Process the pages fetched since the last run, then drop the raw HTML past retention; or,
    with reanalyse, tag and detect again on every stored article."""
    settings = config.settings.process
    analyzer = build_analyzer(config, use_model, ranker=default_ranker(config, store))
    if reanalyse:
        with bar(store.count("articles"), "re-analysing") as progress:
            return reanalyse_articles(store, analyzer, batch_size=settings.batch_size,
                                      progress=progress)
    with bar(store.pages.count_pages_to_process(), "processing") as progress:
        report = process_pages(store, analyzer, batch_size=settings.batch_size,
                               min_text_chars=settings.min_text_chars,
                               max_text_chars=settings.max_text_chars,
                               dedup=config.settings.dedup, progress=progress)
    store.pages.prune_html(config.settings.retention.html_days)
    return report


def process_job(config: Config, db_path: Path, *, use_model: str | None = None,
                reanalyse: bool = False, progress: ProgressBar | None = None) -> ProcessReport:
    """A recorded processing run: the pages fetched since the last one (then retention), or with
    reanalyse every stored article again."""
    with recorded_run(db_path, "process",
                      busy_timeout_ms=config.settings.database.busy_timeout_ms) as (store, record):
        report = _process(config, store, use_model, reanalyse, progress or _no_bar)
        record.add_process(report)
    return report


def rescore_job(config: Config, db_path: Path, ranker_path: str | None = None,
                progress: ProgressBar | None = None) -> Rescored:
    """A recorded run that ranks every stored candidate again: with the model at ranker_path,
    else the first of this database's ranker choices. A model that fails to load changes
    nothing (RescoreError): the stored scores stay those of the ranker used before it."""
    with recorded_run(db_path, "rescore",
                      busy_timeout_ms=config.settings.database.busy_timeout_ms) as (store, record):
        choice = ranker_path or ranker_choices(config, store)[0]
        if choice == SHIPPED:  # no model of this database's: the shipped one, else the rule score
            ranker, name = choose_ranker([SHIPPED])
        else:
            try:
                ranker, name = load(choice), choice
            except RankerError as exc:
                raise RescoreError(f"{exc}; nothing was rescored (the previous ranker's scores "
                                   "stay)") from None
        with (progress or _no_bar)(store.count("candidates"), "rescoring") as tick:
            report = rescore_candidates(store, ranker, config.rules.scoring.threshold,
                                        progress=tick)
        record.counters["rescore"] = report.as_dict()
    return Rescored(report, name)


def run_nightly(config: Config, db_path: Path, *, kind: str = "run",
                source_ids: list[str] | None = None, use_model: str | None = None,
                progress: ProgressBar | None = None,
                on_crawl: Callable[[CrawlReport], None] | None = None) -> NightlyReport:
    """The nightly job in one recorded run: crawl the enabled (or the named) sources, process
    what is new, drop raw HTML past retention, then judge the sources' health.

    on_crawl hears the crawl's report before processing starts. A run that finished with
    errors returns a report that is not ok; a run that cannot start or is stopped raises (and
    its row says so)."""
    with recorded_run(db_path, kind, source_ids,
                      busy_timeout_ms=config.settings.database.busy_timeout_ms) as (store, record):
        crawled = crawl_sources(config, db_path, store, source_ids, record.id)
        record.add_crawl(crawled)
        if on_crawl:
            on_crawl(crawled)
        processed = _process(config, store, use_model, False, progress or _no_bar)
        record.add_process(processed)
    with Store(db_path, config.settings.database.busy_timeout_ms) as store:
        found = health(store.runs.recent(RECENT_RUNS), config.settings.status)
    return NightlyReport(record.id, record.outcome, crawled, processed, found)


# --- `python -m pipeline.jobs.nightly`: the scheduler's fresh process -------------------------


def _say(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def _say_crawl(report: CrawlReport) -> None:
    _say(*describe_crawl(report))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.jobs.nightly",
        description="Run the nightly job once (crawl, process, retention, health), as "
                    "`dealwatch schedule` starts it. Exit 0: ok; 1: errors a person must look "
                    "at, or the run could not start; 2: a usage error; 130: Ctrl-C; 143: SIGTERM.")
    parser.add_argument("--db", metavar="PATH", default=os.environ.get("DEALWATCH_DB"),
                        help="SQLite database file (env DEALWATCH_DB; default data/dealwatch.db)")
    parser.add_argument("--config", metavar="DIR", default=os.environ.get("DEALWATCH_CONFIG"),
                        help="config directory (env DEALWATCH_CONFIG; default: the shipped one)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    stop_on_sigterm()
    try:
        config = load_config(args.config)
        report = run_nightly(config, resolve_db_path(args.db, config.settings),
                             on_crawl=_say_crawl)
    except KeyboardInterrupt as exc:
        _say(str(exc) or "interrupted")
        return 143 if isinstance(exc, Terminated) else 130
    except DealwatchError as exc:
        _say(f"error: {exc}")
        return 1
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        _say(f"error: the database is busy ({exc}): another process has been writing for "
             "longer than the busy timeout; try again")
        return 1
    _say(*describe_process(report.process), *describe_health(report.health))
    if not report.ok:
        _say(f"error: run {report.run_id} finished with errors that need attention "
             "(`dealwatch status` lists the sources)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
