"""Runs: crawl, process, the nightly run, the scheduler, and the runs' status."""

from __future__ import annotations

import calendar
import sys
import time
from datetime import datetime

import click

from pipeline.cli.common import (
    State,
    crawl_display,
    echo_err,
    echo_json,
    fail,
    model_option,
    pass_state,
    processing_display,
    progress_bar,
)
from pipeline.cli.frontier import crawl_worker, redis_option
from pipeline.jobs.nightly import run_nightly
from pipeline.jobs.runs import (
    RECENT_RUNS,
    crawl_job,
    describe_crawl,
    describe_health,
    describe_process,
    describe_run,
    health,
    run_summary,
)
from pipeline.review.reports import refile_hint


@click.command()
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Crawl only this source (repeatable). Default: every enabled source.")
@click.option("--worker", is_flag=True,
              help="Be one of several crawl workers: take sources one at a time from the shared "
                   "crawl frontier (filled by `dealwatch enqueue`) until it is empty.")
@redis_option("With --worker: the crawl frontier's Redis, redis://[:password@]host:port/db "
              "(env DEALWATCH_REDIS).")
@pass_state
def crawl(state: State, sources: tuple[str, ...], worker: bool, redis_url: str | None) -> None:
    """Fetch new articles from the configured sources (Scrapy, in a subprocess).

    \b
    Example:
        dealwatch crawl --source techcabal
        dealwatch crawl --worker --redis redis://10.0.0.5:6379/0   # on each crawl machine
    """
    if worker:
        if sources:
            raise click.UsageError("a worker takes its sources from the frontier: queue them "
                                   "with `dealwatch enqueue --source ID`")
        crawl_worker(state, redis_url)
        return
    _, report = crawl_job(state.config, state.db_path, list(sources), display=crawl_display)
    echo_err(describe_crawl(report))
    if not report.ok:
        fail("the crawl finished with errors that need attention (see above)")


@click.command()
@click.option("--reanalyse", is_flag=True,
              help="Tag and detect again on every stored article (after a rules or watchlist "
                   "change); nothing is re-fetched.")
@click.option("--rescore", is_flag=True,
              help="Rank every stored candidate again from its stored fields (after training a "
                   "ranker); nothing is re-extracted or re-analysed.")
@click.option("--ranker", "ranker_path", default=None, metavar="PATH",
              help="With --rescore: this model (default: process.ranker, else the newest "
                   "trained for this database, else the shipped one).")
@click.option("--worker", is_flag=True,
              help="Be one of several processing workers on one PostgreSQL database: claim "
                   "batches of fetched pages that no other worker holds until none is left.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --worker: pages per batch, each one transaction (default: "
                   "process.batch_size).")
@model_option("Use the statistical spaCy model: auto (when installed), never, required.")
@pass_state
def process(state: State, reanalyse: bool, rescore: bool, ranker_path: str | None,
            worker: bool, batch_size: int | None, use_model: str | None) -> None:
    """Extract, tag and detect on the pages fetched since the last run.

    \b
    Example:
        dealwatch process
        dealwatch process --reanalyse     # after editing config/rules.toml
        dealwatch process --rescore       # after dealwatch train --from-reviews
        dealwatch --db postgresql://dealwatch@10.0.0.5/dealwatch process --worker
    """
    if ranker_path and not rescore:
        raise click.UsageError("--ranker goes with --rescore (set process.ranker for processing)")
    if rescore and reanalyse:
        raise click.UsageError("--rescore and --reanalyse: choose one (--reanalyse scores too)")
    if batch_size and not worker:
        raise click.UsageError("--batch goes with --worker (set process.batch_size for "
                               "`dealwatch process`)")
    if worker:
        if rescore or reanalyse:
            raise click.UsageError("a worker processes fetched pages: run --rescore or "
                                   "--reanalyse as `dealwatch process` alone")
        _process_worker(state, batch_size, use_model)
        return
    from pipeline.jobs.process_runs import process_job, rescore_job  # loads spaCy

    if rescore:
        rescored = rescore_job(state.config, state.db_path, ranker_path, progress=progress_bar)
        c, threshold = rescored.report.counters, state.config.rules.scoring.threshold
        click.echo(f"rescored {c['candidates']} candidates with {rescored.ranker}: "
                   f"{c['changed']} changed, {c['queued']} in the queue, {c['hidden']} below the "
                   f"threshold {threshold:.2f}", err=True)
        return
    report = process_job(state.config, state.db_path, use_model=use_model, reanalyse=reanalyse,
                         progress=progress_bar, display=processing_display)
    echo_err(describe_process(report))


def _process_worker(state: State, batch_size: int | None, use_model: str | None) -> None:
    """`dealwatch process --worker`: batches of pages until none is left to claim."""
    from pipeline.jobs.process_worker import process_worker_job  # loads spaCy

    done = process_worker_job(state.config, state.db_path, batch_size=batch_size,
                              use_model=use_model)
    if done.idle:
        click.echo(f"worker {done.worker}: no pages waiting to be processed; nothing to do",
                   err=True)
        return
    echo_err(describe_process(done.report))
    click.echo(f"worker {done.worker}: no pages left to process; processed {done.pages} "
               f"page(s) in {done.batches} batch(es)", err=True)


@click.command()
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Only this source (repeatable). Default: every enabled source.")
@model_option()
@pass_state
def run(state: State, sources: tuple[str, ...], use_model: str | None) -> None:
    """The nightly job: crawl, then process. Exit 1 when something needs a person's attention.

    \b
    Example (crontab):
        30 2 * * *  cd /srv/dealwatch && .venv/bin/dealwatch run >> data/run.log 2>&1
    """
    report = run_nightly(state.config, state.db_path, source_ids=list(sources),
                         use_model=use_model, crawl_display=crawl_display,
                         process_display=processing_display,
                         on_crawl=lambda crawled: echo_err(describe_crawl(crawled)))
    echo_err(describe_process(report.process) + describe_health(report.health))
    if not report.ok:
        fail(f"run {report.run_id} finished with errors that need attention (see above; "
             "`dealwatch status` lists the sources)")


@click.command()
@redis_option("Fill this crawl frontier at each scheduled time (`dealwatch enqueue`) instead of "
              "running the nightly job: `dealwatch crawl --worker` processes do the crawling. "
              "redis://[:password@]host:port/db (env DEALWATCH_REDIS).")
@pass_state
def schedule(state: State, redis_url: str | None) -> None:
    """Run the nightly job on the schedule in settings.toml, in the foreground.

    For systemd or supervisor: each run is the nightly job in a fresh process; runs never
    overlap (also not with a run started by hand or by cron); a run missed while the scheduler
    was down runs once at start-up when it was due within [schedule] catch_up_grace_hours.
    SIGTERM or Ctrl-C stops it cleanly. With --redis, each run is `dealwatch enqueue` instead
    (missed when no sources were queued since the time it was due).

    \b
    Example:
        dealwatch --db /srv/dealwatch/data/dealwatch.db schedule
        dealwatch schedule --redis redis://10.0.0.5:6379/0   # crawl workers do the crawling
    """
    # APScheduler only here: no other command needs it
    from pipeline.jobs.schedule import NightlyScheduler, scheduled_job

    settings = state.config.settings.schedule
    # first: a URL with a password is refused before anything is opened
    command, env = scheduled_job(state.db_path, state.config.directory, redis_url)
    with state.store():
        pass  # a database we cannot open fails now, not at 02:30

    def last_run_started() -> datetime | None:
        with state.store() as store:
            return store.runs.last_run_started()

    def last_enqueued() -> datetime | None:
        from pipeline.jobs.frontier import last_enqueued  # loads redis

        return last_enqueued(redis_url) if redis_url else None

    if redis_url:
        last_enqueued()  # a Redis we cannot reach fails now, not at 02:30
    scheduler = NightlyScheduler(settings, command,
                                 last_enqueued if redis_url else last_run_started, env=env)

    def ready(next_run: datetime | None) -> None:
        what = f"database {state.db_shown}"
        if redis_url:
            from pipeline.storage.servers import redact  # loads the drivers: only with --redis

            what = f"frontier {redact(redis_url)}"
        click.echo(f"dealwatch scheduler: `{settings.cron}` ({settings.timezone}); next "
                   f"{'enqueue' if redis_url else 'run'} at "
                   f"{next_run.isoformat() if next_run else 'never'}; {what}", err=True)

    scheduler.serve(on_ready=ready)
    click.echo("dealwatch scheduler stopped", err=True)


@click.command()
@click.option("--runs", "limit", type=click.IntRange(min=1), default=RECENT_RUNS, show_default=True,
              help="How many recent runs to show and judge.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts and monitoring.")
@click.option("--check", is_flag=True, help="Exit 1 when a source needs attention (monitoring).")
@pass_state
def status(state: State, limit: int, as_json: bool, check: bool) -> None:
    """The last runs, and the sources that need attention: errors, no new articles for several
    runs, falling extraction yield, bot or consent walls.

    \b
    Example:
        dealwatch status
        dealwatch status --check || mail -s "dealwatch needs a look" ops@example.org
    """
    with state.store() as store:
        runs = store.runs.recent(limit)
        # reports: those filed; a withdrawn one keeps its row but is no report now
        counts = {**store.counts(), "reports": store.reports.count()}
        unsupported = store.articles.unsupported_languages()
        refile = refile_hint(store)
    found = health(runs, state.config.settings.status)
    rows = [run_summary(r) for r in runs]
    if as_json:
        echo_json({"runs": rows, "attention": [f.as_dict() for f in found], "counts": counts,
                   "unsupported_languages": unsupported, "hints": [refile] if refile else []})
    else:
        if not rows:
            click.echo("no runs yet: `dealwatch run` (or `dealwatch demo`) starts one")
        for r in rows:
            took = ""
            if r["finished_at"]:
                started = time.strptime(r["started_at"], "%Y-%m-%dT%H:%M:%SZ")
                finished = time.strptime(r["finished_at"], "%Y-%m-%dT%H:%M:%SZ")
                # the times are UTC: timegm, not mktime (local time, an hour off across DST)
                took = f" {calendar.timegm(finished) - calendar.timegm(started):.0f}s"
            click.echo(f"run {r['id']:>4} {r['kind']:<7} {r['started_at']}{took} "
                       f"{r['outcome']:<8} {describe_run(r)}"
                       + (f" — {r['message']}" if r["message"] else ""))
        click.echo(f"\npending candidates: {counts['candidates_pending']}; articles: "
                   f"{counts['articles']}; pages: {counts['pages']}")
        if unsupported:
            click.echo(f"articles not analysed, in a language dealwatch does not read: "
                       f"{sum(unsupported.values())} ("
                       + ", ".join(f"{code} {n}" for code, n in unsupported.items()) + ")")
        if refile:
            click.echo(refile)
        if found:
            click.echo("\nneeds attention:")
            for f in found:
                click.echo(f"  {f.source}: {f.problem.replace('_', ' ')}: {f.detail}")
        else:
            click.echo("no source needs attention")
    if check and found:
        sys.exit(1)


COMMANDS = (crawl, process, run, schedule, status)
