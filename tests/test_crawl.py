"""End-to-end crawls: run_crawl launches scrapers.run against a local fixture site and a temp store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sitefixtures import serve_site, source_toml, write_config_dir

from pipeline.config import Config, load_config
from pipeline.demo.server import SiteServer
from pipeline.ingest.crawl import PROJECT_ROOT, CrawlError, CrawlReport, crawl_command, run_crawl

ARTICLE_PATHS_OK = {
    "news-rss": {"/articles/rss-cloud.html", "/articles/rss-fibre.html", "/articles/old-address.html"},
    "news-atom": {"/articles/atom-safe-city.html", "/articles/atom-datacentre.html"},
    "news-news": {"/articles/news-fiveg.html", "/articles/news-egov.html"},
    "news-listing": {"/articles/list-smart.html", "/articles/list-cable.html"},
    "broken-rss": {"/articles/second-feed.html"},
}


@dataclass
class Crawled:
    server: SiteServer
    config: Config
    db_path: Path
    report: CrawlReport
    requests: list[str]  # paths the server saw during this crawl

    def pages(self, where: str = "1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f"SELECT * FROM pages WHERE {where} ORDER BY url",
                                                 params)]
        finally:
            conn.close()

    def page(self, path: str) -> dict[str, Any]:
        rows = self.pages("url = ?", (self.server.base_url + path,))
        assert rows, f"no page stored for {path}"
        return rows[0]


def news_sources(base: str) -> list[str]:
    local = ["127.0.0.1"]
    return [
        source_toml("news-rss", "rss", [f"{base}/feed.rss"], allowed_domains=local, deny=["/tag/"]),
        source_toml("news-atom", "atom", [f"{base}/feed.atom"], allowed_domains=local),
        source_toml("news-sitemap", "sitemap", [f"{base}/sitemap_index.xml"],
                    allowed_domains=local, max_items=3),
        # The fixture's stories are dated June 2025: no age window here (test_incremental has one).
        source_toml("news-news", "news_sitemap", [f"{base}/news-sitemap.xml"], allowed_domains=local,
                    max_age_days=0),
        # No allowed_domains: a listing stays on its own host anyway.
        source_toml("news-listing", "listing", [f"{base}/"], allow=["/articles/"],
                    deny=["/articles/tag-"]),
        source_toml("broken-rss", "rss", [f"{base}/malformed.xml", f"{base}/feed2.rss"]),
        source_toml("switched-off", "rss", [f"{base}/feed.rss"], enabled=False),
    ]


@pytest.fixture(scope="module")
def news_server() -> Iterator[SiteServer]:
    with serve_site("news") as server:
        yield server


@pytest.fixture(scope="module")
def first_crawl(news_server: SiteServer, tmp_path_factory: pytest.TempPathFactory) -> Crawled:
    tmp = tmp_path_factory.mktemp("news")
    config = load_config(write_config_dir(tmp / "config", news_sources(news_server.base_url),
                                          download_maxsize=5000, download_warnsize=4500))
    db_path = tmp / "dealwatch.db"
    before = len(news_server.requests)
    report = run_crawl(config, db_path, timeout=60)
    return Crawled(news_server, config, db_path, report, news_server.requests[before:])


@pytest.fixture(scope="module")
def second_crawl(first_crawl: Crawled) -> Crawled:
    server = first_crawl.server
    before = len(server.requests)
    report = run_crawl(first_crawl.config, first_crawl.db_path, timeout=60)
    return Crawled(server, first_crawl.config, first_crawl.db_path, report, server.requests[before:])


def test_every_source_kind_stores_its_entry_pages_and_articles(first_crawl: Crawled) -> None:
    roles: dict[str, dict[str, int]] = {}
    for row in first_crawl.pages("error IS NULL"):
        by_role = roles.setdefault(row["source_id"], {})
        by_role[row["role"]] = by_role.get(row["role"], 0) + 1
    assert roles == {
        "news-rss": {"feed": 1, "article": 3},
        "news-atom": {"feed": 1, "article": 2},
        "news-sitemap": {"sitemap": 3, "article": 3},
        "news-news": {"sitemap": 1, "article": 2},
        "news-listing": {"listing": 1, "article": 2},
        "broken-rss": {"feed": 1, "article": 1},
    }
    assert "switched-off" not in first_crawl.report.sources
    for source_id, paths in ARTICLE_PATHS_OK.items():
        for path in paths:
            page = first_crawl.page(path)
            assert (page["source_id"], page["role"], page["status"]) == (source_id, "article", 200)
            assert page["html"] and page["content_type"].startswith("text/html")


def test_feed_and_sitemap_entries_give_listed_title_date_and_referrer(first_crawl: Crawled) -> None:
    base = first_crawl.server.base_url
    rss = first_crawl.page("/articles/rss-cloud.html")
    assert rss["listed_title"] == "Ministry signs cloud agreement"
    assert rss["listed_date"] == "2025-06-10T06:30:00Z"  # RFC 822 with +0200, made UTC
    assert rss["referrer"] == f"{base}/feed.rss"
    atom = first_crawl.page("/articles/atom-datacentre.html")
    assert atom["listed_title"] == "Data centre opens in the capital"  # type="html" unescaped
    news = first_crawl.page("/articles/news-fiveg.html")
    assert (news["listed_title"], news["listed_date"]) == ("Operator launches 5G network",
                                                          "2025-06-10T04:00:00Z")
    listed = first_crawl.page("/articles/list-smart.html")
    assert listed["listed_title"] == "Smart city pilot announced"
    assert listed["referrer"] == f"{base}/"


def test_redirected_article_keeps_requested_and_final_url(first_crawl: Crawled) -> None:
    page = first_crawl.page("/articles/old-address.html")  # the feed's link, #fragment dropped
    assert page["final_url"] == first_crawl.server.base_url + "/articles/moved.html"
    assert page["status"] == 200 and page["error"] is None


def test_failed_and_skipped_articles_are_recorded_with_their_reason(first_crawl: Crawled) -> None:
    reasons = {path: first_crawl.page(path)["error"].split(":")[0] for path in (
        "/articles/missing.html", "/articles/broken.html", "/files/report.pdf",
        "/private/secret.html", "/articles/huge.html")}
    assert reasons == {"/articles/missing.html": "http_404", "/articles/broken.html": "http_500",
                       "/files/report.pdf": "not_html", "/private/secret.html": "robots",
                       "/articles/huge.html": "too_large"}
    assert first_crawl.page("/articles/missing.html")["status"] == 404
    assert first_crawl.page("/articles/broken.html")["status"] == 500
    assert first_crawl.page("/files/report.pdf")["html"] is None  # the skipped body is not kept
    assert first_crawl.report.sources["news-rss"]["errors"] == {
        "http_404": 1, "http_500": 1, "not_html": 1, "robots": 1, "too_large": 1}


def test_robots_txt_disallow_is_obeyed(first_crawl: Crawled) -> None:
    assert "/robots.txt" in first_crawl.requests
    assert not [p for p in first_crawl.requests if p.startswith("/private/")]


def test_links_outside_the_source_rules_are_not_fetched(first_crawl: Crawled) -> None:
    fetched = set(first_crawl.requests)
    # deny=/tag/ (rss), deny=/articles/tag- and allow=/articles/ (listing); other hosts never
    assert not {"/tag/cloud.html", "/articles/tag-cloud.html", "/about.html"} & fetched
    assert not first_crawl.pages("url LIKE '%elsewhere.invalid%'")
    listing_pages = {r["url"] for r in first_crawl.pages("source_id = 'news-listing'")}
    assert len(listing_pages) == 3  # the listing and two articles; #comments is no new link


def test_sitemap_index_is_followed_newest_first_up_to_max_items(first_crawl: Crawled) -> None:
    articles = {r["url"].rsplit("/", 1)[1]
                for r in first_crawl.pages("source_id = 'news-sitemap' AND role = 'article'")}
    # June's sitemap (newer lastmod) first, then the newest of May, then max_items = 3 stops it.
    assert articles == {"map-two.html", "map-one.html", "map-four.html"}
    counters = first_crawl.report.sources["news-sitemap"]
    assert counters["over_limit"] == 1
    assert counters["pages"] == {"sitemap": 3, "article": 3}


def test_malformed_feed_is_recorded_and_the_rest_goes_on(first_crawl: Crawled) -> None:
    broken = first_crawl.page("/malformed.xml")
    assert broken["role"] == "feed" and broken["source_id"] == "broken-rss"
    assert broken["error"].startswith("malformed_feed: not well-formed XML")
    assert broken["html"] is not None  # what the site served is kept for whoever looks into it
    assert first_crawl.page("/articles/second-feed.html")["error"] is None
    report = first_crawl.report
    assert report.returncode == 1 and report.ok is False
    assert list(report.attention) == ["broken-rss"]
    assert "malformed_feed" in report.attention["broken-rss"]
    assert "broken-rss" in report.stderr_tail


def test_report_counts_requests_pages_and_new_articles(first_crawl: Crawled) -> None:
    rss = first_crawl.report.sources["news-rss"]
    # robots.txt, the feed, 8 article links (the denied tag page and the other host are not asked)
    assert rss["requests"] == 10
    assert rss["pages"] == {"feed": 1, "article": 8}
    assert (rss["articles_new"], rss["articles_ok"], rss["known_skipped"]) == (3, 3, 0)
    assert rss["entry_errors"] == 0 and rss["article_failures"] == 3  # 404, 500, too large


def test_crawl_run_is_recorded_with_its_counters(first_crawl: Crawled) -> None:
    conn = sqlite3.connect(first_crawl.db_path)
    try:
        kind, outcome, counters, message = conn.execute(
            "SELECT kind, outcome, counters, message FROM runs WHERE id = ?",
            (first_crawl.report.run_id,)).fetchone()
        run_ids = {r[0] for r in conn.execute("SELECT DISTINCT run_id FROM pages")}
    finally:
        conn.close()
    assert (kind, outcome) == ("crawl", "failed")
    assert '"news-atom"' in counters and "broken-rss" in message
    assert first_crawl.report.run_id in run_ids


def test_known_articles_are_not_fetched_again(first_crawl: Crawled, second_crawl: Crawled) -> None:
    refetched = set(second_crawl.requests) & set().union(*ARTICLE_PATHS_OK.values())
    assert refetched == set()
    assert "/articles/moved.html" not in second_crawl.requests  # known by its final URL too
    for source_id, paths in ARTICLE_PATHS_OK.items():
        assert second_crawl.report.sources[source_id]["known_skipped"] == len(paths)
        assert second_crawl.report.sources[source_id]["articles_new"] == 0
    # Failed fetches are not "known": they are tried again.
    assert "/articles/missing.html" in second_crawl.requests
    # The sitemap's cap now admits the article the first crawl left out.
    assert "/articles/map-three.html" in second_crawl.requests
    assert second_crawl.report.run_id != first_crawl.report.run_id


def test_private_networks_are_refused_unless_allowed(tmp_path: Path) -> None:
    with serve_site("news") as server:
        port = server.server_address[1]
        sources = [source_toml("local-feed", "rss", [f"http://localhost:{port}/feed.rss"]),
                   source_toml("other", "rss", [f"{server.base_url}/feed.atom"])]
        config = load_config(write_config_dir(tmp_path / "config", sources,
                                              allow_private_networks=False))
        report = run_crawl(config, tmp_path / "dealwatch.db", source_ids=["local-feed"], timeout=60)
        requests = list(server.requests)
    assert requests == []  # not even robots.txt
    assert list(report.sources) == ["local-feed"]
    assert report.sources["local-feed"]["errors"] == {"private_network": 1}
    assert report.ok is False and report.returncode == 1
    conn = sqlite3.connect(tmp_path / "dealwatch.db")
    try:
        role, status, error = conn.execute("SELECT role, status, error FROM pages").fetchone()
    finally:
        conn.close()
    assert (role, status) == ("feed", 0)
    assert error.startswith("private_network: localhost resolves to non-public address")


def test_unknown_source_id_is_a_crawl_error(first_crawl: Crawled) -> None:
    with pytest.raises(CrawlError, match="no source with id 'nope'"):
        run_crawl(first_crawl.config, first_crawl.db_path, source_ids=["nope"])


def test_no_enabled_sources_is_a_crawl_error(tmp_path: Path) -> None:
    sources = [source_toml("off", "rss", ["http://127.0.0.1:9/feed.xml"], enabled=False)]
    config = load_config(write_config_dir(tmp_path / "config", sources))
    with pytest.raises(CrawlError, match=r"^no enabled sources in .*sources\.toml$"):
        run_crawl(config, tmp_path / "dealwatch.db")


def test_crawler_usage_error_exits_2_without_a_report(first_crawl: Crawled, tmp_path: Path) -> None:
    cmd = crawl_command(first_crawl.config, tmp_path / "x.db", ["nope"])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60,
                          check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "no source with id 'nope'" in proc.stderr
    missing_db = subprocess.run([sys.executable, "-m", "scrapers.run"], capture_output=True,
                                text=True, cwd=PROJECT_ROOT, timeout=60, check=False)
    assert missing_db.returncode == 2 and "--db" in missing_db.stderr


def test_download_timeout_is_recorded_and_a_hung_crawl_is_stopped(news_server: SiteServer,
                                                                  tmp_path: Path) -> None:
    sources = [source_toml("slow", "rss", [f"{news_server.base_url}/slow-feed.rss"])]
    config = load_config(write_config_dir(tmp_path / "config", sources, download_timeout=1))
    report = run_crawl(config, tmp_path / "dealwatch.db", timeout=60)
    assert report.sources["slow"]["errors"] == {"timeout": 1}
    assert "timeout" in report.attention["slow"]
    with pytest.raises(CrawlError, match=r"^crawl timed out after 0.5 s$"):
        run_crawl(config, tmp_path / "dealwatch.db", timeout=0.5)
