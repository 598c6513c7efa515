"""Safety and bad input in real crawls: SSRF refusal, size / redirect / type limits, malformed documents."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sitefixtures import article_html, rss_feed, source_toml, write_config_dir, write_site

from pipeline.config import load_config
from pipeline.demo.server import SiteServer, serve
from pipeline.ingest.crawl import PROJECT_ROOT, CrawlReport, run_crawl


@dataclass
class Crawled:
    server: SiteServer
    db_path: Path
    report: CrawlReport
    paths: list[str]

    def page(self, path: str) -> dict[str, Any]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            url = path if "://" in path else self.server.base_url + path
            row = conn.execute("SELECT * FROM pages WHERE url = ?", (url,)).fetchone()
        finally:
            conn.close()
        assert row is not None, f"no page stored for {path}"
        return dict(row)

    def reason(self, path: str) -> str:
        error = self.page(path)["error"]
        return error.split(":", 1)[0] if error else "ok"


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
                  + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
                  + ']><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url>'
                  "<loc>{{base}}/news/ok.html?&lol9;</loc></url></urlset>")


# The metadata address in IPv4-compatible, IPv4-translated and local-use NAT64 forms.
EMBEDDED_METADATA = ("http://[::169.254.169.254]/latest/", "http://[::ffff:0:a9fe:a9fe]/latest/",
                     "http://[64:ff9b:1::a9fe:a9fe]/latest/")


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawled]:
    tmp = tmp_path_factory.mktemp("unsafe")
    secret = tmp / "secret.txt"
    secret.write_text("TOP SECRET CREDENTIALS")
    xxe = ('<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://' + str(secret)
           + '">]><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
           'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
           "<loc>{{base}}/news/xxe.html</loc><news:news><news:title>Leak &xxe; here</news:title>"
           "</news:news></url></urlset>")
    root = write_site(tmp / "site", {
        "feed.rss": rss_feed([
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://[fd00:ec2::254]/latest/meta-data/", "http://100.100.100.200/latest/",
            *EMBEDDED_METADATA, "{{base}}/go/meta", "{{base}}/go/zero", "{{base}}/go/loop", "{{base}}/go/file",
            "{{base}}/news/huge.html", "{{base}}/files/report.pdf", "{{base}}/news/empty.html",
            "{{base}}/news/latin1.html", "{{base}}/news/ok.html"]),
        "news/huge.html": article_html("Huge", paragraphs=200),
        "news/ok.html": article_html("Fine"),
        "news/xxe.html": article_html("XXE"),
        # Declared UTF-8, written in Latin-1: stored as served; extraction decodes it later.
        "news/latin1.html": article_html("Caf\u00e9 S\u00e3o Tom\u00e9").encode("latin-1"),
        "broken-encoding.rss": rss_feed(["{{base}}/news/ok.html"]).replace(
            "<title>T</title>", "<title>Caf\u00e9</title>").encode("latin-1"),
        "xxe-sitemap.xml": xxe,
        "laughs-sitemap.xml": BILLION_LAUGHS,
        "html-sitemap.xml": "<html><body>Page not found</body></html>",
    }, routes={
        "/go/meta": {"status": 302, "location": "http://169.254.169.254/latest/meta-data/"},
        "/go/zero": {"status": 301, "location": "http://0.0.0.0:8080/admin"},
        "/go/loop": {"status": 302, "location": "/go/loop2"},
        "/go/loop2": {"status": 302, "location": "/go/loop3"},
        "/go/loop3": {"status": 302, "location": "/go/loop"},
        "/go/file": {"status": 302, "location": "file:///etc/passwd"},
        "/files/report.pdf": {"content_type": "application/pdf", "body": "%PDF-1.7 " + "x" * 200_000},
        "/news/empty.html": {"body": ""},
        "/empty.rss": {"content_type": "application/rss+xml", "body": ""},
    })
    with serve(root) as server:
        base = server.base_url
        sources = [
            source_toml("unsafe", "rss", [f"{base}/feed.rss"]),
            source_toml("bad-feeds", "rss", [f"{base}/broken-encoding.rss", f"{base}/empty.rss"]),
            source_toml("bad-maps", "sitemap", [f"{base}/xxe-sitemap.xml", f"{base}/laughs-sitemap.xml",
                                                f"{base}/html-sitemap.xml"]),
        ]
        config = load_config(write_config_dir(tmp / "config", sources, download_maxsize=20_000,
                                              download_warnsize=10_000, max_redirects=2))
        db_path = tmp / "d.db"
        report = run_crawl(config, db_path, timeout=60)
        yield Crawled(server, db_path, report, list(server.requests))


def test_metadata_addresses_are_refused_even_when_private_networks_are_allowed(crawled: Crawled) -> None:
    for url in ("http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                "http://[fd00:ec2::254]/latest/meta-data/", "http://100.100.100.200/latest/",
                *EMBEDDED_METADATA):
        page = crawled.page(url)
        assert page["error"].startswith("private_network: ") and "metadata" in page["error"]
        assert page["status"] == 0 and page["html"] is None


def test_redirects_pass_through_the_same_check(crawled: Crawled) -> None:
    meta = crawled.page("/go/meta")
    assert meta["error"].startswith("private_network: 169.254.169.254 resolves to cloud metadata")
    assert crawled.reason("/go/zero") == "private_network"  # 0.0.0.0 reaches the host itself
    assert crawled.reason("/go/file") == "http_302"  # a file:// target is never opened
    assert crawled.page("/go/file")["html"] is None


def test_size_redirect_and_type_limits_are_recorded(crawled: Crawled) -> None:
    assert crawled.reason("/go/loop") == "too_many_redirects"
    assert crawled.paths.count("/go/loop") == 1  # max_redirects = 2: loop, loop2, loop3, stop
    assert crawled.reason("/news/huge.html") == "too_large"
    pdf = crawled.page("/files/report.pdf")
    assert pdf["error"] == "not_html: content type application/pdf" and pdf["html"] is None
    assert crawled.reason("/news/empty.html") == "empty"
    counters = crawled.report.sources["unsafe"]
    assert counters["errors"] == {"private_network": 8, "too_many_redirects": 1, "http_302": 1,
                                  "too_large": 1, "not_html": 1, "empty": 1}


def test_a_page_in_a_broken_encoding_is_stored_as_served(crawled: Crawled) -> None:
    page = crawled.page("/news/latin1.html")
    assert (page["status"], page["error"]) == (200, None)
    assert crawled.reason("/news/ok.html") == "ok"


def test_malformed_feeds_and_sitemaps_are_recorded_and_the_run_goes_on(crawled: Crawled) -> None:
    broken = crawled.page("/broken-encoding.rss")["error"]
    assert broken.startswith("malformed_feed: not well-formed XML") and "encoding" in broken
    assert crawled.page("/empty.rss")["error"] == "malformed_feed: empty document"
    assert crawled.page("/html-sitemap.xml")["error"].startswith(
        "malformed_sitemap: expected a sitemap <urlset> or <sitemapindex>, found <html>")
    laughs = crawled.page("/laughs-sitemap.xml")
    assert laughs["error"] is None or laughs["error"].startswith("malformed_sitemap")
    report = crawled.report
    assert set(report.attention) == {"bad-feeds", "bad-maps"}
    assert report.sources["unsafe"]["articles_ok"] == 2  # the good pages of the same run


# Redirect loops of every shape: path -> its chain back to itself (the last hop repeats one).
LOOPS: dict[str, list[str]] = {
    "/loop/self": ["/loop/self", "/loop/self"],  # 301 to itself, relative
    "/loop/abs": ["/loop/abs", "/loop/abs"],  # 302 to itself, absolute
    "/loop/a": ["/loop/a", "/loop/b", "/loop/a"],  # A -> B -> A
    "/loop/t307": ["/loop/t307", "/loop/t307b", "/loop/t307"],
    "/loop/t308": ["/loop/t308", "/loop/t308b", "/loop/t308"],  # relative without a slash
    "/loop/deep": ["/loop/deep", "/loop/deep2", "/loop/deep3", "/loop/deep2"],  # into the middle
    "/loop/frag": ["/loop/frag", "/loop/frag#top"],  # the same page, with a fragment
    "/loop/meta": ["/loop/meta", "/loop/meta2", "/loop/meta"],  # meta refresh
}


LOOP_REDIRECTS = [  # (path, status, Location)
    ("/loop/self", 301, "/loop/self"), ("/loop/abs", 302, "{{base}}/loop/abs"),
    ("/loop/a", 302, "/loop/b"), ("/loop/b", 301, "{{base}}/loop/a"),
    ("/loop/t307", 307, "/loop/t307b"), ("/loop/t307b", 307, "/loop/t307"),
    ("/loop/t308", 308, "t308b"), ("/loop/t308b", 308, "t308"),
    ("/loop/deep", 302, "/loop/deep2"), ("/loop/deep2", 302, "/loop/deep3"),
    ("/loop/deep3", 302, "/loop/deep2"), ("/loop/frag", 302, "/loop/frag#top"),
]


# Redirects to something that is no URL: path -> (route, the page's error).
NO_URL: dict[str, tuple[dict[str, Any], str]] = {
    "/nourl/bracket": ({"status": 302, "location": "http://[::1"},
                       "bad_url: redirected to http://[::1: Invalid IPv6 URL"),
    "/nourl/port": ({"status": 301, "location": "http://[::1]:99999/x"},
                    "bad_url: redirected to http://[::1]:99999/x: Port out of range 0-65535"),
    "/nourl/meta": ({"body": '<html><head><meta http-equiv="refresh" content="0; url=http://[::1">'
                             "</head><body>Moved.</body></html>"},
                    "bad_url: meta refresh: Invalid IPv6 URL"),
}


def _refresh(target: str) -> dict[str, str]:
    return {"body": f'<html><head><meta http-equiv="refresh" content="0; url={target}"></head>'
                    "<body>Moved.</body></html>"}


@pytest.fixture(scope="module")
def looped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawled]:
    tmp = tmp_path_factory.mktemp("loops")
    root = write_site(tmp / "site", {
        "feed.rss": rss_feed([*(f"{{{{base}}}}{path}" for path in [*LOOPS, *NO_URL]),
                              "{{base}}/chain/0"]),
    }, routes={
        **{path: route for path, (route, _) in NO_URL.items()},
        **{path: {"status": status, "location": to} for path, status, to in LOOP_REDIRECTS},
        "/loop/meta": _refresh("/loop/meta2"),
        "/loop/meta2": _refresh("{{base}}/loop/meta"),
        # no loop, just longer than max_redirects
        **{f"/chain/{i}": {"status": 302, "location": f"/chain/{i + 1}"} for i in range(10)},
        "/loop-feed.rss": {"status": 302, "location": "/loop-feed.rss"},
    })
    with serve(root) as server:
        base = server.base_url
        sources = [source_toml("loops", "rss", [f"{base}/feed.rss"]),
                   source_toml("loop-feed", "rss", [f"{base}/loop-feed.rss"])]
        config = load_config(write_config_dir(tmp / "config", sources, max_redirects=4))
        db_path = tmp / "d.db"
        report = run_crawl(config, db_path, timeout=60)
        yield Crawled(server, db_path, report, list(server.requests))


@pytest.mark.parametrize("path", list(LOOPS))
def test_every_redirect_loop_is_a_failed_page_naming_its_chain(looped: Crawled, path: str) -> None:
    page = looped.page(path)
    base = looped.server.base_url
    assert page["error"] == "redirect_loop: " + " -> ".join(base + hop for hop in LOOPS[path])
    assert page["status"] == 0 and page["html"] is None
    for hop in LOOPS[path][:-1]:  # each URL of the loop asked for once, never again
        assert looped.paths.count(hop.split("#")[0]) == 1, hop


@pytest.mark.parametrize("path", list(NO_URL))
def test_a_redirect_to_no_url_is_a_one_line_bad_url(looped: Crawled, path: str) -> None:
    assert looped.page(path)["error"] == NO_URL[path][1]
    assert "Traceback" not in looped.report.stderr_tail


def test_loops_and_long_chains_are_counted_and_an_entry_loop_needs_attention(looped: Crawled) -> None:
    assert looped.reason("/chain/0") == "too_many_redirects"
    assert "/chain/4" in looped.paths and "/chain/5" not in looped.paths  # max_redirects = 4
    counters = looped.report.sources["loops"]
    assert counters["errors"] == {"redirect_loop": len(LOOPS), "too_many_redirects": 1,
                                  "bad_url": len(NO_URL)}
    assert looped.reason("/loop-feed.rss") == "redirect_loop"
    assert "redirect_loop" in looped.report.attention["loop-feed"]


def test_external_entities_are_never_read(crawled: Crawled) -> None:
    page = crawled.page("/news/xxe.html")
    assert page["error"] is None
    assert "SECRET" not in (page["listed_title"] or "")


def test_refusal_at_connection_time_without_the_early_check(tmp_path: Path) -> None:
    """The resolver alone refuses: a name that resolves to loopback gets no connection, as a
    name re-bound to a private address after the early check would not."""
    root = write_site(tmp_path / "site", {"feed.rss": rss_feed([]), "robots.txt": ""})
    script = """
import json, sys
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from models.config import Source
from scrapers.spiders import spider_class
settings = Settings()
settings.setmodule("scrapers.settings", priority="project")
middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
middlewares["scrapers.middlewares.PrivateNetworkMiddleware"] = None  # no early check
settings.set("DOWNLOADER_MIDDLEWARES", middlewares)
settings.set("ROBOTSTXT_OBEY", False)
source = Source(id="s", kind="rss", urls=[sys.argv[1]])
process = CrawlerProcess(settings)
crawler = process.create_crawler(spider_class("rss"))
process.crawl(crawler, source=source)
process.start()
print(json.dumps({k: v for k, v in crawler.stats.get_stats().items()
                  if k.startswith(("dealwatch/", "retry/"))}))
"""
    with serve(root) as server:
        url = f"http://localhost:{server.server_address[1]}/feed.rss"
        proc = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                              cwd=PROJECT_ROOT, timeout=60, check=False)
        seen = list(server.requests)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {k: v for k, v in stats.items() if k.startswith("dealwatch/")} == {
        "dealwatch/errors/private_network": 1, "dealwatch/entry_errors": 1}
    assert seen == []
    assert "refused to connect: localhost resolves to non-public address" in proc.stderr
    assert stats.get("retry/count") is None  # a refusal is not retried like a DNS hiccup


# --- links and redirects: bad links, sitemap index chains, off-site redirects, proxies -----------

@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawled]:
    tmp = tmp_path_factory.mktemp("links")
    urlset = ('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
              "<url><loc>{{base}}/news/%s.html</loc></url></urlset>")
    root = write_site(tmp / "site", {
        "links.rss": rss_feed(["http://127.0.0.1:99999/news/x.html", "http://127.0.0.1:80a/news/y.html",
                               "http://[::1/news/z.html", "{{base}}/news/good-1.html",
                               "{{base}}/news/good-2.html"]),
        # No lastmod: the children are read in this order, one at a time.
        "index.xml": '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                     + "".join(f"<sitemap><loc>{{{{base}}}}/maps/{name}.xml</loc></sitemap>"
                               for name in ("latest", "s1", "s0")) + "</sitemapindex>",
        "maps/s1.xml": urlset % "s1", "maps/s0.xml": urlset % "s0",
        "front.html": '<html><body><a href="/go/away">Away</a> <a href="/go/here">Here</a></body></html>',
        **{f"news/{name}.html": article_html(name)
           for name in ("good-1", "good-2", "s1", "s0", "here", "away")},
    }, routes={"/maps/latest.xml": {"status": 301, "location": "{{base}}/maps/s1.xml"},
               "/go/here": {"status": 302, "location": "/news/here.html"}})
    with serve(root) as server:
        base = server.base_url
        # Another name for this very server: reachable (private networks are allowed here), but
        # not the listing's host.
        server.routes["/go/away"] = {
            "status": 302, "location": f"http://localhost:{server.server_address[1]}/news/away.html"}
        sources = [source_toml("links", "rss", [f"{base}/links.rss"]),
                   source_toml("index", "sitemap", [f"{base}/index.xml"]),
                   source_toml("front", "listing", [f"{base}/front.html"])]
        config = load_config(write_config_dir(tmp / "config", sources))
        db_path = tmp / "d.db"
        report = run_crawl(config, db_path, timeout=60)
        yield Crawled(server, db_path, report, list(server.requests))


def test_a_bad_link_loses_nothing_but_itself(linked: Crawled) -> None:
    assert linked.reason("/links.rss") == "ok"  # the feed is stored
    assert linked.reason("/news/good-1.html") == linked.reason("/news/good-2.html") == "ok"
    counters = linked.report.sources["links"]
    assert counters["articles_new"] == 2 and counters["errors"] == {}
    assert "links" not in linked.report.attention


def test_every_child_sitemap_is_read_though_two_lead_to_one(linked: Crawled) -> None:
    # latest.xml redirects to s1.xml, which the index lists as well: Scrapy's dupefilter would
    # drop one of the two, and with it the chain that leads on to s0.xml.
    assert "/maps/s0.xml" in linked.paths and "/news/s0.html" in linked.paths
    assert linked.reason("/news/s1.html") == linked.reason("/news/s0.html") == "ok"
    assert linked.paths.count("/news/s1.html") == 1


def test_a_listing_does_not_follow_a_redirect_off_its_site(linked: Crawled) -> None:
    away = linked.page("/go/away")
    assert away["error"].startswith("offsite: redirected to http://localhost:")
    assert away["html"] is None and "/news/away.html" not in linked.paths
    assert linked.page("/go/here")["final_url"] == linked.server.base_url + "/news/here.html"
    assert linked.reason("/go/here") == "ok"
    assert linked.report.sources["front"]["errors"] == {"offsite": 1}


def test_proxy_settings_in_the_environment_are_not_used(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a proxy the connection-time check would see only the proxy's address."""
    root = write_site(tmp_path / "site", {"feed.rss": rss_feed(["{{base}}/news/ok.html"]),
                                          "news/ok.html": article_html("Fine")})
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    with serve(root) as server:
        config = load_config(write_config_dir(tmp_path / "config", [
            source_toml("direct", "rss", [f"{server.base_url}/feed.rss"])]))
        report = run_crawl(config, tmp_path / "d.db", timeout=60)
        seen = list(server.requests)
    assert report.ok, report.attention
    assert "/news/ok.html" in seen
