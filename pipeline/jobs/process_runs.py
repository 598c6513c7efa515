"""The recorded processing runs: `process` (new pages, or every article again) and `rescore`.

`dealwatch process` calls process_job and rescore_job; the nightly job (pipeline.jobs.nightly)
runs process_new inside its own recorded run. The stage itself is pipeline.jobs.process.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass

from models.errors import DealwatchError
from models.records import OnProcessProgress
from pipeline.analysis.rank import SHIPPED, RankerError, choose_ranker, load
from pipeline.config import Config
from pipeline.jobs.analyzer import build_analyzer, default_ranker, ranker_choices
from pipeline.jobs.process import (
    ProcessReport,
    Progress,
    process_pages,
    reanalyse_articles,
    rescore_candidates,
)
from pipeline.jobs.runs import ProcessDisplay, recorded_run
from pipeline.storage import Store
from pipeline.storage.database import DatabaseLocation

# A progress display for `total` items under a label; it yields what to call with each step
# (None: show nothing). The CLI passes a bar on a terminal; cron and the scheduler pass none.
ProgressBar = Callable[[int, str], AbstractContextManager[Progress | None]]


class RescoreError(DealwatchError):
    """The ranker to rescore with cannot be read; nothing was rescored."""


@dataclass
class Rescored:
    report: ProcessReport
    ranker: str  # which model scored: a path, the shipped ranker or the rule score


def no_bar(total: int, label: str) -> AbstractContextManager[Progress | None]:
    return nullcontext(None)


def process_new(config: Config, store: Store, use_model: str | None = None,
                reanalyse: bool = False, bar: ProgressBar | None = None,
                display: ProcessDisplay | None = None) -> ProcessReport:
    """Process the pages fetched since the last run, then drop the raw HTML past retention; or,
    with reanalyse, tag and detect again on every stored article. The caller records the run.

    display shows each source's progress through the processing; without one, bar shows the
    pages done of all (and re-analysis, which goes by article, not by source, always shows on
    bar)."""
    settings = config.settings.process
    bar = bar or no_bar
    analyzer = build_analyzer(config, use_model, ranker=default_ranker(config, store))
    if reanalyse:
        with bar(store.count("articles"), "re-analysing") as progress:
            return reanalyse_articles(store, analyzer, batch_size=settings.batch_size,
                                      progress=progress)
    pages_done: Progress | None = None
    on_progress: OnProcessProgress | None = None
    with ExitStack() as shown:
        if display:
            on_progress = shown.enter_context(display())
        else:
            pages_done = shown.enter_context(bar(store.pages.count_pages_to_process(),
                                                 "processing"))
        report = process_pages(store, analyzer, batch_size=settings.batch_size,
                               min_text_chars=settings.min_text_chars,
                               max_text_chars=settings.max_text_chars,
                               dedup=config.settings.dedup, progress=pages_done,
                               on_progress=on_progress)
    store.pages.prune_html(config.settings.retention.html_days)
    return report


def process_job(config: Config, db_path: DatabaseLocation, *, use_model: str | None = None,
                reanalyse: bool = False, progress: ProgressBar | None = None,
                display: ProcessDisplay | None = None) -> ProcessReport:
    """A recorded processing run: the pages fetched since the last one (then retention), or with
    reanalyse every stored article again; display shows each source's progress, progress the
    re-analysis (process_new)."""
    with recorded_run(db_path, "process",
                      busy_timeout_ms=config.settings.database.busy_timeout_ms) as (store, record):
        report = process_new(config, store, use_model, reanalyse, progress, display)
        record.add_process(report)
    return report


def rescore_job(config: Config, db_path: DatabaseLocation, ranker_path: str | None = None,
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
        with (progress or no_bar)(store.count("candidates"), "rescoring") as tick:
            report = rescore_candidates(store, ranker, config.rules.scoring.threshold,
                                        progress=tick)
        record.counters["rescore"] = report.as_dict()
    return Rescored(report, name)
