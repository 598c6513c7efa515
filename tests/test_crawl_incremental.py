"""Incremental, polite crawls against local sites: conditional GET, no re-fetch, windows, budget, resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sitefixtures import article_html, rss_feed, source_toml, write_config_dir, write_site

from pipeline.config import Config, load_config
from pipeline.demo.server import Logged, SiteServer, serve
from pipeline.ingest.crawl import PROJECT_ROOT, CrawlReport, crawl_command, run_crawl
from pipeline.urls import canonical_url

LOCAL = ["127.0.0.1"]


def rows(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def crawl(server: SiteServer, config: Config, db_path: Path) -> tuple[CrawlReport, list[Logged]]:
    before = len(server.log)
    report = run_crawl(config, db_path, timeout=60)
    return report, server.log[before:]


def article_requests(log: list[Logged]) -> list[str]:
    return [entry.path for entry in log if entry.path.startswith(("/news/", "/pub/"))]


def day(delta_days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=delta_days)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- conditional GET, canonical URLs, the date window -------------------------------------------

@dataclass
class Site:
    server: SiteServer
    root: Path
    config: Config
    db_path: Path
    runs: list[tuple[CrawlReport, list[Logged]]]


@pytest.fixture(scope="module")
def news_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    news_sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        f'<url><loc>{{{{base}}}}/news/five.html</loc><news:news><news:publication_date>{day(1)}'
        '</news:publication_date><news:title>Five</news:title></news:news></url>'
        f'<url><loc>{{{{base}}}}/news/old.html</loc><news:news><news:publication_date>{day(10)}'
        '</news:publication_date><news:title>Old</news:title></news:news></url></urlset>')
    write_site(root, {
        "robots.txt": "User-agent: *\nAllow: /\n",
        # One story under tracking, fragment, trailing-slash and AMP spellings, in two feeds.
        "feed.rss": rss_feed(["{{base}}/news/one.html?utm_source=rss&utm_medium=feed",
                              "{{base}}/news/two.html#top", "{{base}}/news/three/"]),
        "feed-b.rss": rss_feed(["{{base}}/news/one.html?fbclid=abc", "{{base}}/news/two.amp.html",
                                "{{base}}/news/three", "{{base}}/news/four.html"]),
        "news-sitemap.xml": news_sitemap,
        "index.html": '<html><body><a href="/news/six.html">Six</a> <a href="/news/one.html#c">'
                      "One</a></body></html>",
        **{f"news/{name}.html": article_html(name.title())
           for name in ("one", "two", "four", "five", "six", "seven", "old")},
        "news/three/index.html": article_html("Three"),
        "news/two.amp.html": article_html("Two (AMP)"),  # served, as AMP pages are
    })
    sources = [
        source_toml("feed-a", "rss", ["{base}/feed.rss"], allowed_domains=LOCAL),
        source_toml("feed-b", "rss", ["{base}/feed-b.rss"], allowed_domains=LOCAL),
        source_toml("news", "news_sitemap", ["{base}/news-sitemap.xml"], allowed_domains=LOCAL),
        source_toml("front", "listing", ["{base}/"], allow=["/news/"]),
    ]
    with serve(root) as server:
        text = [s.replace("{base}", server.base_url) for s in sources]
        config = load_config(write_config_dir(root.parent / f"{root.name}-config", text))
        site = Site(server, root, config, root.parent / f"{root.name}.db", [])
        for _ in range(3):
            site.runs.append(crawl(server, config, site.db_path))
        yield site


def test_first_crawl_fetches_each_story_once_whatever_its_spelling(news_site: Site) -> None:
    report, log = news_site.runs[0]
    # Whichever source lists a story first fetches it, under its spelling; no one else does.
    stories = Counter(canonical_url("http://x" + path).removeprefix("https://x")
                      for path in article_requests(log))
    assert stories == Counter({"/news/one.html": 1, "/news/two.html": 1, "/news/three": 1,
                               "/news/four.html": 1, "/news/five.html": 1, "/news/six.html": 1})
    assert report.ok, report.attention
    stored = rows(news_site.db_path, "SELECT canonical_url FROM pages WHERE role = 'article'")
    assert len(stored) == 6 and len({r["canonical_url"] for r in stored}) == 6


def test_news_sitemap_window_leaves_old_articles_alone(news_site: Site) -> None:
    report, log = news_site.runs[0]
    assert "/news/old.html" not in {e.path for e in log}
    assert report.sources["news"]["too_old"] == 1
    assert report.sources["news"]["articles_new"] == 1


def test_second_crawl_of_an_unchanged_site_fetches_no_article(news_site: Site) -> None:
    report, log = news_site.runs[1]
    assert article_requests(log) == []
    # Each entry comes back the same: in full (its links were pending in the first crawl) or
    # as a 304 (another source had taken every story it lists).
    assert {sid: c["unchanged"] + c["not_modified"] for sid, c in report.sources.items()} == {
        "feed-a": 1, "feed-b": 1, "news": 1, "front": 1}
    assert report.sources["news"]["unchanged"] == 1
    assert sum(c["known_skipped"] for c in report.sources.values()) >= 6
    assert all(c["articles_new"] == 0 for c in report.sources.values())


def test_third_crawl_gets_304s_and_stores_nothing_new(news_site: Site) -> None:
    report, log = news_site.runs[2]
    entries = [e for e in log if e.path != "/robots.txt"]
    assert sorted(e.path for e in entries) == ["/", "/feed-b.rss", "/feed.rss", "/news-sitemap.xml"]
    assert all(e.if_none_match and e.if_modified_since for e in entries)
    assert {sid: c["not_modified"] for sid, c in report.sources.items()} == {
        "feed-a": 1, "feed-b": 1, "news": 1, "front": 1}
    assert all(c["pages"] == {} for c in report.sources.values())  # nothing stored anew
    feed = rows(news_site.db_path, "SELECT * FROM pages WHERE url = ?",
                (news_site.server.base_url + "/feed.rss",))[0]
    assert (feed["status"], feed["check_status"], feed["error"]) == (200, 304, None)
    assert feed["checked_at"] >= feed["fetched_at"] and feed["run_id"] == report.run_id
    assert feed["html"] is not None and feed["etag"]  # the stored copy and its validators stay


def test_a_changed_feed_brings_only_its_new_story(news_site: Site) -> None:
    (news_site.root / "feed.rss").write_text(rss_feed([
        "{{base}}/news/seven.html", f"http://127.0.0.1:{news_site.server.server_address[1]}"
        "/news/one.html?utm_campaign=x#more", "{{base}}/news/two.html"]), encoding="utf-8")
    report, log = crawl(news_site.server, news_site.config, news_site.db_path)
    assert article_requests(log) == ["/news/seven.html"]
    assert report.sources["feed-a"]["articles_new"] == 1
    assert report.sources["feed-a"]["known_skipped"] == 2
    counts = rows(news_site.db_path, "SELECT url, COUNT(*) AS n FROM pages GROUP BY url HAVING n > 1")
    assert counts == []


# --- discovery feeds: click-through links and aggregator redirects ------------------------------

def test_discovery_links_are_resolved_to_the_publisher(tmp_path: Path) -> None:
    root = write_site(tmp_path / "site", {
        "search.rss": rss_feed([
            "{{base}}/news/apiclick.aspx?ref=FexRss&aid=&url={{base}}/pub/story.html&c=1",
            "{{base}}/agg/1", "{{base}}/agg/2"]),
        "pub/story.html": article_html("Story"), "pub/other.html": article_html("Other"),
    }, routes={"/agg/1": {"status": 302, "location": "{{base}}/pub/other.html"},
               "/agg/2": {"status": 302, "location": "{{base}}/pub/story.html?utm_source=agg"}})
    with serve(root) as server:
        config = load_config(write_config_dir(tmp_path / "config", [source_toml(
            "search", "rss", [f"{server.base_url}/search.rss"], unwrap_param="url")]))
        report, log = crawl(server, config, tmp_path / "d.db")
        second, second_log = crawl(server, config, tmp_path / "d.db")
    paths = [e.path for e in log]
    assert "/news/apiclick.aspx" not in " ".join(paths)  # unwrapped without a request
    assert paths.count("/pub/story.html") == 1 and "/pub/story.html?utm_source=agg" not in paths
    assert "/agg/1" in paths and "/pub/other.html" in paths
    counters = report.sources["search"]
    assert (counters["articles_new"], counters["known_skipped"]) == (2, 1)
    pages = {r["url"].replace(server.base_url, ""): r for r in rows(
        tmp_path / "d.db", "SELECT url, final_url, canonical_url, error FROM pages WHERE role = 'article'")}
    assert set(pages) == {"/pub/story.html", "/agg/1"}
    assert pages["/agg/1"]["final_url"] == f"{server.base_url}/pub/other.html"
    assert pages["/agg/1"]["canonical_url"] == f"https://127.0.0.1:{server.server_address[1]}/pub/other.html"
    # Next night: both stories are known; a redirect link costs its one hop at most.
    assert not {"/pub/story.html", "/pub/other.html", "/agg/1"} & {e.path for e in second_log}
    assert second.sources["search"]["articles_new"] == 0


# --- retries: 429 / 5xx / timeouts, backoff, Retry-After ------------------------------------------

def test_retries_back_off_and_honour_retry_after(tmp_path: Path) -> None:
    root = write_site(tmp_path / "site", {
        "feed.rss": rss_feed([f"{{{{base}}}}/news/{n}.html" for n in ("busy", "flaky", "throttled", "slow")]),
        **{f"news/{n}.html": article_html(n) for n in ("busy", "flaky", "throttled", "slow")},
    }, routes={
        "/news/busy.html": {"status": 503, "headers": {"Retry-After": "1"}, "fail_times": 1},
        "/news/flaky.html": {"status": 500, "fail_times": 2},
        "/news/throttled.html": {"status": 429, "headers": {"Retry-After": "3600"}},
        "/news/slow.html": {"delay": 2, "status": 200, "file": "news/slow.html", "fail_times": 1},
    })
    with serve(root) as server:
        config = load_config(write_config_dir(
            tmp_path / "config", [source_toml("r", "rss", [f"{server.base_url}/feed.rss"])],
            retry_times=2, retry_backoff_base=0.3, retry_after_max=5, download_timeout=1))
        report, log = crawl(server, config, tmp_path / "d.db")

    def times(path: str) -> list[float]:
        return [e.at for e in log if e.path == path]

    busy, flaky = times("/news/busy.html"), times("/news/flaky.html")
    assert len(busy) == 2 and busy[1] - busy[0] >= 0.95  # Retry-After: 1
    assert len(flaky) == 3 and flaky[1] - flaky[0] >= 0.28 and flaky[2] - flaky[1] >= 0.58
    assert len(times("/news/throttled.html")) == 1  # asked to wait an hour: not retried tonight
    assert len(times("/news/slow.html")) == 2  # timed out once, then served
    counters = report.sources["r"]
    assert counters["retries"] == 1 + 2 + 1
    assert counters["errors"] == {"http_429": 1}
    assert counters["articles_ok"] == 3


# --- the run's budget ----------------------------------------------------------------------------

def _many_articles(root: Path, count: int) -> Path:
    names = [f"story-{i:02d}" for i in range(count)]
    return write_site(root, {
        "feed.rss": rss_feed([f"{{{{base}}}}/news/{n}.html" for n in names[: count // 2]]),
        "feed2.rss": rss_feed([f"{{{{base}}}}/news/{n}.html" for n in names[count // 2:]]),
        **{f"news/{n}.html": article_html(n) for n in names},
    })


# Scrapy (2.19) sends a burst of queued requests to one site at once when download_delay is 0,
# whatever concurrent_requests_per_domain says; a delay spaces them out, one at a time.
SLOW = {"download_delay": 0.3}


def test_request_budget_stops_every_source_and_the_next_run_goes_on(tmp_path: Path) -> None:
    root = _many_articles(tmp_path / "site", 12)
    db_path = tmp_path / "d.db"
    with serve(root) as server:
        sources = [source_toml("a", "rss", [f"{server.base_url}/feed.rss"]),
                   source_toml("b", "rss", [f"{server.base_url}/feed2.rss"])]
        tight = load_config(write_config_dir(tmp_path / "tight", sources, max_requests_per_run=7,
                                             download_delay=0.05))
        report, log = crawl(server, tight, db_path)
        stored = {r["url"].replace(server.base_url, "") for r in rows(
            db_path, "SELECT url FROM pages WHERE role = 'article' AND error IS NULL")}
        roomy = load_config(write_config_dir(tmp_path / "roomy", sources))
        second, second_log = crawl(server, roomy, db_path)
    assert report.budget_exhausted == "max_requests_per_run (7) reached"
    assert report.ok and report.returncode == 0
    assert len(log) <= 7 and sum(c["requests"] for c in report.sources.values()) <= 7
    assert stored and stored == set(article_requests(log))  # what was fetched was stored
    assert second.budget_exhausted is None
    assert sorted(article_requests(second_log)) == sorted(
        f"/news/story-{i:02d}.html" for i in range(12) if f"/news/story-{i:02d}.html" not in stored)
    assert len(rows(db_path, "SELECT url FROM pages WHERE role = 'article' AND error IS NULL")) == 12


def test_time_budget_stops_a_slow_crawl(tmp_path: Path) -> None:
    """The budget counts from the first request, so a slow start (a busy machine) does not
    eat it; the site is slow on its side (each story 1 s, one at a time: 16 s for all)."""
    count, budget = 16, 3.0
    names = [f"story-{i:02d}" for i in range(count)]
    root = write_site(tmp_path / "site", {
        "feed.rss": rss_feed([f"{{{{base}}}}/news/{n}.html" for n in names]),
        **{f"news/{n}.html": article_html(n) for n in names},
    }, routes={f"/news/{n}.html": {"delay": 1, "file": f"news/{n}.html"} for n in names})
    with serve(root) as server:
        config = load_config(write_config_dir(
            tmp_path / "config", [source_toml("a", "rss", [f"{server.base_url}/feed.rss"])],
            max_run_seconds=budget, concurrent_requests_per_domain=1, **SLOW))
        report, log = crawl(server, config, tmp_path / "d.db")
    assert report.budget_exhausted == f"max_run_seconds ({budget:g}) reached"
    assert 0 < len(article_requests(log)) < count
    # nothing was sent once the budget was spent (a second of slack for the server's clock)
    assert log[-1].at - log[0].at < budget + 1


# --- killed half way ------------------------------------------------------------------------------

def test_a_killed_crawl_loses_nothing_and_the_next_run_resumes(tmp_path: Path) -> None:
    count = 16
    root = _many_articles(tmp_path / "site", count)
    # Slow on the site's side the first time (1 s a story, one at a time per source: 8 s for
    # all), so the kill lands half way however busy the machine; the next run is served fast.
    write_site(root, {}, routes={f"/news/story-{i:02d}.html": {
        "delay": 1, "file": f"news/story-{i:02d}.html", "fail_times": 1} for i in range(count)})
    db_path = tmp_path / "d.db"
    with serve(root) as server:
        config = load_config(write_config_dir(
            tmp_path / "config", [source_toml("a", "rss", [f"{server.base_url}/feed.rss"]),
                                  source_toml("b", "rss", [f"{server.base_url}/feed2.rss"])],
            download_delay=0.15, concurrent_requests_per_domain=1))
        proc = subprocess.Popen(crawl_command(config, db_path), cwd=PROJECT_ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if db_path.exists() and len(_stored(db_path)) >= 3:
                    break
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        before = {r["url"]: r for r in _stored(db_path)}
        assert 3 <= len(before) < count, "the crawl was not killed half way"
        first_requests = len(server.log)
        report, log = crawl(server, config, db_path)
    after = {r["url"]: r for r in _stored(db_path)}
    assert len(after) == count  # every story stored, none twice (pages.url is unique)
    for url, row in before.items():  # nothing stored before the kill was lost or fetched again
        assert after[url]["fetched_at"] == row["fetched_at"]
        assert after[url]["content_hash"] == row["content_hash"]
    fetched_again = {server.base_url + p for p in article_requests(log)}
    assert fetched_again == set(after) - set(before)
    assert first_requests > 0 and report.ok


def _stored(db_path: Path) -> list[dict[str, Any]]:
    try:
        return rows(db_path, "SELECT url, fetched_at, content_hash FROM pages "
                             "WHERE role = 'article' AND error IS NULL")
    except sqlite3.OperationalError:  # the crawler has not created the schema yet
        return []
