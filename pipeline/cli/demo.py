"""The demo: serve the bundled news site, run the nightly job on it, print the review queue."""

from __future__ import annotations

import time

import click

from pipeline.cli.common import (
    State,
    echo_err,
    fail,
    model_option,
    pass_state,
    processing_display,
    prog,
)
from pipeline.cli.review import render_queue
from pipeline.config import load_config
from pipeline.jobs.nightly import run_nightly
from pipeline.jobs.runs import describe_crawl, describe_process
from pipeline.review.views import review_ui_hint
from pipeline.storage import QueueQuery


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port for the demo site on 127.0.0.1 (default 8711, or a free one).")
@click.option("--limit", type=click.IntRange(min=0), default=15, show_default=True,
              help="How many queue entries to print (0 for all).")
@click.option("--serve", "keep_serving", is_flag=True,
              help="Keep serving the demo site after the run (Ctrl-C to stop).")
@model_option()
@pass_state
def demo(state: State, port: int | None, limit: int, keep_serving: bool,
         use_model: str | None) -> None:
    """Serve the bundled demo news site, crawl it, process it, print the review queue.

    Everything goes into the database (default data/dealwatch.db); running it again adds
    nothing that is already there.

    \b
    Example:
        dealwatch demo
        dealwatch --db /tmp/demo.db demo --limit 0
    """
    # the demo site's server (http.server) is loaded only for the demo
    from pipeline.demo import DEMO_PORT, demo_config_dir, serve_demo_site

    started = time.monotonic()
    db = state.db_path
    with serve_demo_site(DEMO_PORT if port is None else port) as site:
        click.echo(f"demo site: {site.base_url}/ (fictional stories written for dealwatch)",
                   err=True)
        # The demo's sources, with the rules and watchlist of --config, into the same database.
        with demo_config_dir(site.base_url, state.config.directory) as demo_config:
            report = run_nightly(load_config(demo_config), db, kind="demo", use_model=use_model,
                                 process_display=processing_display,
                                 on_crawl=lambda crawled: echo_err(describe_crawl(crawled)))
        echo_err(describe_process(report.process))
        with state.store() as store:
            everything = store.candidates.queue(QueueQuery(status="pending", limit=None))
            has_reviewers = bool(store.accounts.users())
        rows, total = everything[:limit] if limit else everything, len(everything)
        click.echo(f"done in {time.monotonic() - started:.1f}s\n", err=True)
        click.echo(f"Review queue ({len(rows)} of {total} pending, best first; a syndicated "
                   "story is one entry):\n")
        render_queue(rows, click.echo)
        name, shown = prog(), state.db_shown
        click.echo(f"\nNext: `{name} --db {shown} queue --limit 0` lists every pending "
                   f"candidate; `{name} --db {shown} queue --json` gives them to scripts.")
        click.echo(review_ui_hint(shown, has_reviewers, name))
        if keep_serving:
            click.echo(f"serving {site.base_url}/ until Ctrl-C", err=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    if not report.crawl.ok:
        fail("the demo crawl finished with errors (see above)")


COMMANDS = (demo,)
