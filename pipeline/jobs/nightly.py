"""The nightly job (crawl, process, retention, health) in one recorded run, and its own process.

`dealwatch run`, `dealwatch demo` and the scheduler all call `run_nightly()`. The scheduler runs
it in a fresh process each time, as `python -m pipeline.jobs.nightly --db PATH|URL --config DIR`
(Scrapy's reactor cannot be restarted in one process), with these exit codes: 0 the run went
well; 1 it finished with errors a person must look at, or could not run (bad config, locked or
busy database), with a one-line message on stderr; 2 a usage error; 130 Ctrl-C; 143 SIGTERM.

Nothing that loads spaCy or trafilatura is imported at the top: the fresh process reads its
arguments and takes over SIGTERM at once, and loads them only to process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.config import Config, db_location, load_config
from pipeline.ingest.crawl import CrawlReport
from pipeline.ingest.health import Flag
from pipeline.jobs.exits import exit_status
from pipeline.jobs.runs import (
    RECENT_RUNS,
    CrawlDisplay,
    ProcessDisplay,
    check_source_ids,
    crawl_sources,
    describe_crawl,
    describe_health,
    describe_process,
    health,
    plain_display,
    plain_process_display,
    recorded_run,
    stop_on_sigterm,
)
from pipeline.storage import Store, StoreError, is_busy
from pipeline.storage.database import DatabaseLocation

if TYPE_CHECKING:  # both load spaCy; the report and the signature need only their types
    from pipeline.jobs.process import ProcessReport
    from pipeline.jobs.process_runs import ProgressBar

logger = logging.getLogger(__name__)


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


def run_nightly(config: Config, db_path: DatabaseLocation, *, kind: str = "run",
                source_ids: list[str] | None = None, use_model: str | None = None,
                progress: ProgressBar | None = None,
                on_crawl: Callable[[CrawlReport], None] | None = None,
                crawl_display: CrawlDisplay | None = None,
                process_display: ProcessDisplay | None = None) -> NightlyReport:
    """The nightly job in one recorded run: crawl the enabled (or the named) sources, process
    what is new, drop raw HTML past retention, then judge the sources' health.

    crawl_display shows the crawl's progress, process_display the processing's per source (else
    progress, its pages done of all); on_crawl hears the crawl's report before processing
    starts. A run that finished with errors returns a report that is not ok; a run that cannot
    start or is stopped raises (and its row says so). The health is advice on a run already
    recorded: when the database is too busy to judge it, the report has no health flags and a
    warning is logged."""
    from pipeline.jobs.process_runs import process_new  # loads spaCy and trafilatura

    check_source_ids(config, source_ids)
    with recorded_run(db_path, kind, source_ids,
                      busy_timeout_ms=config.settings.database.busy_timeout_ms) as (store, record):
        crawled = crawl_sources(config, db_path, store, source_ids, record.id, crawl_display)
        record.add_crawl(crawled)
        if on_crawl:
            on_crawl(crawled)
        processed = process_new(config, store, use_model, bar=progress, display=process_display)
        record.add_process(processed)
    return NightlyReport(record.id, record.outcome, crawled, processed,
                         _advisory_health(config, db_path, record.id))


def _advisory_health(config: Config, db_path: DatabaseLocation, run_id: int) -> list[Flag]:
    """The sources that need attention, judged with the run just recorded; none when the
    database cannot be read now (the run's own outcome stands, `dealwatch status` judges later)."""
    try:
        with Store(db_path, config.settings.database.busy_timeout_ms) as store:
            return health(store.runs.recent(RECENT_RUNS), config.settings.status)
    except Exception as exc:
        if not isinstance(exc, StoreError) and not is_busy(exc):
            raise
        logger.warning("run %d is recorded, but the sources' health could not be judged (%s); "
                       "`dealwatch status` judges it later", run_id, exc)
        return []


# --- `python -m pipeline.jobs.nightly`: the scheduler's fresh process -------------------------


def _say(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def _say_crawl(report: CrawlReport) -> None:
    _say(*describe_crawl(report))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.jobs.nightly",
        description="Run the nightly job once (crawl, process, retention, health), as "
                    "`dealwatch schedule` starts it. Exit 0: ok; 1: errors a person must look "
                    "at, or the run could not start; 2: a usage error; 130: Ctrl-C; 143: SIGTERM.")
    parser.add_argument("--db", metavar="PATH", default=os.environ.get("DEALWATCH_DB"),
                        help="SQLite file or postgresql:// URL (env DEALWATCH_DB; default "
                             "data/dealwatch.db)")
    parser.add_argument("--config", metavar="DIR", default=os.environ.get("DEALWATCH_CONFIG"),
                        help="config directory (env DEALWATCH_CONFIG; default: the shipped one)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    stop_on_sigterm()  # first: a SIGTERM from here on ends the process with 143
    try:
        args = _parser().parse_args(argv)
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)
        config = load_config(args.config)
        report = run_nightly(config, db_location(args.db, config.settings),
                             on_crawl=_say_crawl, crawl_display=plain_display(_say),
                             process_display=plain_process_display(_say))
    except (KeyboardInterrupt, Exception) as exc:
        status = exit_status(exc)
        if status is None:
            raise
        _say(status.message)
        return status.code
    _say(*describe_process(report.process), *describe_health(report.health))
    if not report.ok:
        _say(f"error: run {report.run_id} finished with errors that need attention "
             "(`dealwatch status` lists the sources)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
