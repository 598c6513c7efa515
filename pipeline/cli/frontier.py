"""The shared crawl frontier on Redis: `enqueue`, and what `crawl --worker` does (docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from pipeline.cli.common import State, crawl_display, echo_err, fail, pass_state

REDIS_HELP = ("The crawl frontier's Redis, redis://[:password@]host:port/db (env "
              "DEALWATCH_REDIS).")


def redis_option(help: str = REDIS_HELP) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--redis", "redis_url", envvar="DEALWATCH_REDIS", metavar="URL",
                        help=help)


def _required(redis_url: str | None, what: str) -> str:
    if not redis_url:
        raise click.UsageError(f"{what} needs the frontier's Redis: --redis URL or "
                               "DEALWATCH_REDIS")
    return redis_url


@click.command()
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Queue only this source (repeatable). Default: every enabled source.")
@redis_option()
@pass_state
def enqueue(state: State, sources: tuple[str, ...], redis_url: str | None) -> None:
    """Queue the night's sources on the shared crawl frontier, for `dealwatch crawl --worker`.

    A source waiting or being crawled already is not queued twice.

    \b
    Example:
        dealwatch enqueue --redis redis://127.0.0.1:6379/0
    """
    from pipeline.jobs.frontier import describe_enqueued
    from pipeline.jobs.frontier import enqueue as enqueue_sources  # loads redis

    url = _required(redis_url, "enqueue")
    click.echo(describe_enqueued(*enqueue_sources(state.config, url, list(sources))), err=True)


def crawl_worker(state: State, redis_url: str | None) -> None:
    """`dealwatch crawl --worker`: crawl sources from the frontier until it is empty."""
    from pipeline.jobs.frontier import run_worker  # loads redis
    from pipeline.jobs.runs import describe_crawl

    url = _required(redis_url, "crawl --worker")

    def crawled(source_id: str, run_id: int, report: Any) -> None:
        echo_err(describe_crawl(report))

    report = run_worker(state.config, state.db_path, url, display=crawl_display,
                        on_crawled=crawled)
    for source_id in report.unknown:
        click.echo(f"left {source_id} to another worker: it is not in this worker's config",
                   err=True)
    click.echo(f"worker {report.worker}: the frontier is empty; crawled "
               f"{len(report.crawled)} source(s)"
               + (f": {', '.join(sid for sid, _, _ in report.crawled)}" if report.crawled else ""),
               err=True)
    if not report.ok:
        fail("the worker's crawls finished with errors that need attention (see above)")


COMMANDS = (enqueue,)
