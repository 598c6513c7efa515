"""The `dealwatch` command line: a thin layer over the jobs, the review layer and the store.

Each module holds a group of commands (setup, runs, review, deals, reports, analysis, serve,
demo); this one wires them under `main`, the entry point. Every module is imported for every
command, so what loads spaCy, trafilatura or Uvicorn is imported inside the commands that need it.
"""

from __future__ import annotations

import click

from pipeline.cli import analysis, db, deals, demo, frontier, reports, review, runs, serve, setup
from pipeline.cli.common import DealwatchGroup, State, configure_logging

__all__ = ["State", "main"]


@click.group(cls=DealwatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="DEALWATCH_DB", metavar="PATH|URL",
              help="SQLite file or postgresql:// URL (env DEALWATCH_DB; default "
                   "data/dealwatch.db).")
@click.option("--config", "config_dir", envvar="DEALWATCH_CONFIG", metavar="DIR",
              help="Config directory (env DEALWATCH_CONFIG; default: the shipped config/). "
                   "A file it lacks falls back to the shipped default.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="dealwatch")
@click.pass_context
def main(ctx: click.Context, db: str | None, config_dir: str | None, verbose: int) -> None:
    """dealwatch: watch the news for technology deals between watchlist vendors and foreign
    governments, and queue them for review.

    \b
    Example:
        dealwatch demo                 # crawl the bundled demo site and print the queue
        dealwatch run                  # the nightly job: crawl every enabled source, process
        dealwatch queue --limit 20     # what reviewers see first
    """
    configure_logging(verbose)
    ctx.obj = State(db, config_dir, verbose)


for _module in (setup, runs, frontier, review, deals, reports, analysis, serve, demo, db):
    for _command in _module.COMMANDS:
        main.add_command(_command)
