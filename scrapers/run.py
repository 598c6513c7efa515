"""Crawl subprocess entry point: one Scrapy crawler per source, pages stored, one JSON report line.

    python -m scrapers.run [--db PATH] --config DIR [--source ID ...] [--run-id N] [--parent-pid PID]
                           [--progress-every SECONDS] [--shared-urls NIGHT]

stdout carries one line, the report, last (with --progress-every, each source's progress lines
come before it: scrapers/progress.py):

    {"run_id": 7, "ok": true, "attention": {}, "budget_exhausted": null,
     "sources": {"example-rss": {"requests": 12, "pages": {"feed": 1, "article": 9},
                 "articles_new": 8, "articles_ok": 8, "known_skipped": 3, "over_limit": 0,
                 "too_old": 0, "not_modified": 0, "unchanged": 0, "retries": 1,
                 "budget_skipped": 0, "errors": {"http_404": 1}, "entry_errors": 0,
                 "article_failures": 1, "taken_elsewhere": 0}}}

- requests: HTTP requests sent (robots.txt and retries included); pages: pages stored, by
  role, failed ones included; articles_new / articles_ok: article pages fetched successfully
  that were not stored before / in all; known_skipped: article links not fetched because
  they are stored already (by canonical URL, also when an aggregator's redirect leads to
  one); over_limit: article links left out by max_items; too_old: links dated before the
  max_age_days window; not_modified: entry documents (feeds, sitemaps, listings) answered
  304 to a conditional GET; unchanged: entry documents served again with the stored body;
  retries: requests retried (429, 5xx, timeouts); budget_skipped: requests not sent because
  the run's budget was spent; errors: failed or skipped fetches by reason code (http_404,
  dns, timeout, connection, too_large, too_many_redirects, redirect_loop, bad_url, not_html, empty, robots,
  private_network, offsite, malformed_feed, malformed_sitemap, malformed_listing, store, ...);
  entry_errors: feed/sitemap/listing fetches that failed; article_failures: article fetches
  that failed for a reason other than a deliberate skip (robots, not_html);
  taken_elsewhere: article links left to another crawl worker that took them this night
  (with --shared-urls).
- attention: source id -> why it needs a human (an entry page failed, every article failed,
  pages could not be stored, the spider raised, the crawl did not finish).
- budget_exhausted: why the run's budget (crawl.max_requests_per_run, crawl.max_run_seconds)
  stopped the crawl early, or null. What was fetched is stored; the next run goes on from
  there. A crawl stopped by its budget is not a failure.

With --parent-pid (as `dealwatch crawl` and `run` start it) the crawl is killed when that process
ends, however it ends. Until then it holds the run's lock, inherited from its parent, so no other
run starts while it writes. Each page is stored in its own transaction: a kill loses only the
requests under way, which the next run fetches.

Exit status: 0 all went well, 1 a source needs attention (or config/database trouble, with a
one-line message on stderr), 2 usage error (bad arguments, unknown source id).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings
from scrapy.utils.reactor import install_reactor
from twisted.python.failure import Failure

from models.config import Source
from pipeline.config import Config, ConfigError, load_config
from pipeline.storage import Store, StoreError
from pipeline.storage.frontier import SharedUrls, connect
from scrapers.budget import BUDGET_EXHAUSTED, RunBudget
from scrapers.lifetime import die_with_parent
from scrapers.settings import crawl_settings
from scrapers.sources import CrawlError, UnknownSourceError, select_sources
from scrapers.spiders import spider_class
from scrapers.spiders.base import Claims

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scrapers.run",
        description="Crawl the enabled (or the named) sources and store their pages.")
    parser.add_argument("--db", default=None,
                        help="SQLite database file (default: $DEALWATCH_DB, where a "
                             "postgresql:// URL comes: never on the command line)")
    parser.add_argument("--config", type=Path, default=None,
                        help="config directory (default: $DEALWATCH_CONFIG or the shipped config/)")
    parser.add_argument("--source", action="append", default=[], metavar="ID",
                        help="crawl only this source (repeatable; disabled sources too)")
    parser.add_argument("--run-id", type=int, default=None, metavar="N",
                        help="store pages under this existing run (default: start a crawl run)")
    parser.add_argument("--parent-pid", type=int, default=None, metavar="PID",
                        help="stop when process PID (the launching dealwatch run) ends")
    parser.add_argument("--progress-every", type=float, default=0.0, metavar="SECONDS",
                        help="write each source's progress on stdout every SECONDS (default: "
                             "no progress lines, only the report)")
    parser.add_argument("--shared-urls", default=None, metavar="NIGHT",
                        help="take article URLs in the crawl frontier's set of this night, on "
                             "the Redis at $DEALWATCH_REDIS, shared by every crawl worker "
                             "(pipeline.storage.frontier)")
    return parser


def scrapy_settings(config: Config, run_id: int, progress_every: float = 0.0) -> Settings:
    """The Scrapy Settings of this crawl: scrapers.settings, then settings.toml's [crawl]."""
    settings = Settings()
    settings.setmodule("scrapers.settings", priority="project")
    settings.setdict(crawl_settings(config.settings.crawl), priority="project")
    settings.set("DEALWATCH_RUN_ID", run_id, priority="project")
    settings.set("DEALWATCH_PROGRESS_INTERVAL", progress_every, priority="project")
    return settings


def crawl(settings: Settings, sources: list[Source], store: Store, known_urls: Collection[str],
          budget: RunBudget | None = None, claimed: Claims | None = None,
          ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Run one crawler per source in one reactor; (stats per source id, start failures).

    The crawlers share the store (one connection: the conditional GET reads it, the item
    pipeline writes it, all from the reactor thread), the known article URLs (read, never
    changed), the set of article URLs claimed in this run (so two sources listing one story
    fetch it once; crawl workers share it through Redis) and the run's budget.
    """
    # Scrapy installs the reactor when the first crawler has built its spider; install it up
    # front so that a source whose spider cannot start does not stop the other sources.
    install_reactor(settings["TWISTED_REACTOR"], settings["ASYNCIO_EVENT_LOOP"])
    process = CrawlerProcess(settings)
    crawlers: dict[str, Crawler] = {}
    start_failures: dict[str, str] = {}
    claimed = set() if claimed is None else claimed
    for source in sources:
        crawler = process.create_crawler(spider_class(source.kind))
        crawlers[source.id] = crawler
        deferred = process.crawl(crawler, source=source, store=store, known_urls=known_urls,
                                 claimed=claimed, budget=budget)

        def _failed(failure: Failure, source_id: str = source.id) -> None:
            start_failures[source_id] = f"{type(failure.value).__name__}: {failure.value}"
            logger.error("source %s: crawl failed: %s", source_id, start_failures[source_id])

        deferred.addErrback(_failed)
    process.start()
    return {sid: _stats_of(c) for sid, c in crawlers.items()}, start_failures


def _stats_of(crawler: Crawler) -> dict[str, Any]:
    try:
        return dict(crawler.stats.get_stats())
    except RuntimeError:  # the crawler failed before it started: it has no stats
        return {}


def source_counters(stats: dict[str, Any]) -> dict[str, Any]:
    """The report's counters for one source, from its crawler's stats."""
    def prefixed(prefix: str) -> dict[str, int]:
        return {key[len(prefix):]: int(value) for key, value in sorted(stats.items())
                if key.startswith(prefix)}

    errors = prefixed("dealwatch/errors/")
    if stats.get("spider_exceptions/count"):
        errors["spider_exception"] = int(stats["spider_exceptions/count"])
    return {
        "requests": int(stats.get("downloader/request_count", 0)),
        "pages": prefixed("dealwatch/pages/"),
        "articles_new": int(stats.get("dealwatch/articles_new", 0)),
        "articles_ok": int(stats.get("dealwatch/articles_ok", 0)),
        "known_skipped": int(stats.get("dealwatch/links/known", 0)),
        "over_limit": int(stats.get("dealwatch/links/over_limit", 0)),
        "too_old": int(stats.get("dealwatch/links/too_old", 0)),
        "not_modified": int(stats.get("dealwatch/not_modified", 0)),
        "unchanged": int(stats.get("dealwatch/unchanged", 0)),
        "retries": int(stats.get("retry/count", 0)),
        "budget_skipped": int(stats.get("dealwatch/budget_skipped", 0)),
        "errors": errors,
        "entry_errors": int(stats.get("dealwatch/entry_errors", 0)),
        "article_failures": int(stats.get("dealwatch/article_failures", 0)),
        "taken_elsewhere": int(stats.get("dealwatch/links/taken", 0)),
    }


def attention_reason(counters: dict[str, Any], finish_reason: str | None,
                     settings_file: Path | None = None) -> str | None:
    """Why a source's crawl needs a human, or None when it went as a crawl should.

    When requests were refused as private_network, the reason says which setting allows them
    (crawl.allow_private_networks in settings_file): a local or intranet source fails this way.
    """
    reason = _attention(counters, finish_reason)
    if reason and counters["errors"].get("private_network"):
        where = f"in {settings_file}" if settings_file else "in settings.toml"
        reason += (f" (private_network: a host on a private or local network; to crawl it, set "
                   f"crawl.allow_private_networks = true {where})")
    return reason


def _attention(counters: dict[str, Any], finish_reason: str | None) -> str | None:
    errors = counters["errors"]
    if counters["entry_errors"]:
        return (f"{counters['entry_errors']} feed/sitemap/listing fetch(es) failed: "
                + ", ".join(f"{code} x{n}" for code, n in errors.items()))
    if errors.get("store"):
        return f"{errors['store']} page(s) could not be stored"
    if errors.get("spider_exception"):
        return f"the spider raised {errors['spider_exception']} exception(s); see the log"
    if counters["article_failures"] and not counters["articles_ok"]:
        return f"all {counters['article_failures']} article fetch(es) failed"
    if finish_reason not in (None, "finished", BUDGET_EXHAUSTED):
        return f"crawl ended early: {finish_reason}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    database = args.db or os.environ.get("DEALWATCH_DB")
    if not database:
        print("error: no database: --db PATH, or DEALWATCH_DB", file=sys.stderr)
        return EXIT_USAGE
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    try:
        config = load_config(args.config)
        sources = select_sources(config, args.source)
    except UnknownSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, CrawlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        store = Store(database, busy_timeout_ms=config.settings.database.busy_timeout_ms)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    source_ids = [s.id for s in sources]
    claimed: Claims | None = None
    if args.shared_urls:
        redis_url = os.environ.get("DEALWATCH_REDIS")
        if not redis_url:
            print("error: --shared-urls needs the Redis URL in DEALWATCH_REDIS", file=sys.stderr)
            return EXIT_USAGE
        claimed = SharedUrls(connect(redis_url), args.shared_urls, owner=",".join(source_ids))
    with store:
        # pages.source_id refers to sources.id, so every configured source gets its row first.
        store.runs.sync_sources(config.sources)
        own_run = args.run_id is None
        run_id = store.runs.start_run("crawl", source_ids, os.getpid()) if own_run else args.run_id
        # Read once: the link policy of every source checks against the same snapshot.
        known = store.pages.known_article_urls()
        limits = config.settings.crawl
        budget = RunBudget(limits.max_requests_per_run, limits.max_run_seconds)

        stats, start_failures = crawl(scrapy_settings(config, run_id, args.progress_every),
                                      sources, store, known, budget, claimed)

        report: dict[str, Any] = {"run_id": run_id, "ok": True, "attention": {},
                                  "budget_exhausted": budget.reason, "sources": {}}
        if budget.reason:
            print(f"crawl stopped early: {budget.reason}", file=sys.stderr)
        for source_id in source_ids:
            counters = source_counters(stats.get(source_id, {}))
            report["sources"][source_id] = counters
            reason = start_failures.get(source_id) or attention_reason(
                counters, stats.get(source_id, {}).get("finish_reason"),
                Path(config.directory) / "settings.toml")
            if reason:
                report["attention"][source_id] = reason
                print(f"source {source_id}: {reason}", file=sys.stderr)
        report["ok"] = not report["attention"]
        if own_run:
            # The counters as a run of `dealwatch crawl` keeps them, so that status and run
            # health read this run too.
            message = "; ".join(f"{k}: {v}" for k, v in report["attention"].items()) or None
            recorded: dict[str, Any] = {"crawl": report["sources"]}
            if report["attention"]:
                recorded["attention"] = report["attention"]
            if budget.reason:
                recorded["budget_exhausted"] = budget.reason
            store.runs.finish_run(run_id, "ok" if report["ok"] else "failed", recorded, message)
    print(json.dumps(report, sort_keys=True), flush=True)
    return EXIT_OK if report["ok"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
