"""Crawl-and-store throughput on a generated local news site, against `scrapy bench` in the same run.

Usage: .venv/bin/python bench/crawl_bench.py [--articles N] [--skip-scrapy-bench] [--json]

1. Writes a site of N articles (default 2400; fictional wire copy from a template) into a temp
   directory: a sitemap index with monthly child sitemaps, an RSS feed of the latest stories and
   a section page, and serves it with pipeline.demo.server on 127.0.0.1.
2. Crawls it with the real path (pipeline.ingest.crawl.run_crawl -> `python -m scrapers.run`, every
   page stored in a temporary SQLite database), politeness off as for a local site.
3. Crawls it again unchanged: the server's request log must show no article request.
4. Runs `scrapy bench` (Scrapy's own local server and link-following spider, nothing stored)
   and compares pages per second.

Seconds are wall time of the crawl subprocess (interpreter start, config, database, report
included); "crawl seconds" are first to last request as the site server saw them, the figure
comparable to `scrapy bench`'s elapsed time.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pipeline.config import load_config
from pipeline.demo.server import SiteServer, running
from pipeline.ingest.crawl import run_crawl

VENDORS = ["Huawei", "ZTE", "Hikvision", "Dahua", "Inspur", "China Mobile International"]
COUNTRIES = ["Kenya", "Serbia", "Ecuador", "Pakistan", "Zambia", "Laos", "Fiji", "Bolivia",
             "Uzbekistan", "Ghana", "Malaysia", "Egypt", "Angola", "Tonga", "Mongolia"]
PROJECTS = ["national data centre", "safe city surveillance network", "e-government cloud",
            "4G rural coverage programme", "fibre backbone", "smart city command centre",
            "submarine cable landing station", "government private cloud"]
COUNTERPARTS = ["the Ministry of ICT", "the national police", "the state telecom operator",
                "the Ministry of Finance", "the capital's city council", "the national regulator"]
PARAGRAPH = ("{vendor} and {counterpart} of {country} signed an agreement on {date} for a {project}, "
             "according to officials who attended the ceremony in the capital. The deal, reported "
             "at {value} million dollars, covers equipment, installation and five years of "
             "maintenance, and is to be financed in part by a concessional loan. Opposition "
             "lawmakers asked for the contract to be published; the ministry said the terms "
             "would be released once the financing is approved by parliament.")


def story(i: int, rnd: random.Random, when: datetime) -> tuple[str, str, str]:
    """(path, title, html) of one generated article."""
    vendor, country = rnd.choice(VENDORS), rnd.choice(COUNTRIES)
    project, counterpart = rnd.choice(PROJECTS), rnd.choice(COUNTERPARTS)
    title = f"{country} signs {vendor} deal for {project}"
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    path = f"/{when:%Y/%m/%d}/{slug}-{i}.html"
    paragraphs = "".join(
        "<p>" + PARAGRAPH.format(vendor=vendor, counterpart=counterpart, country=country,
                                 project=project, date=f"{when:%d %B %Y}",
                                 value=rnd.randint(5, 900)) + "</p>"
        for _ in range(rnd.randint(4, 9)))
    html = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | '
            f'Bench Wire</title><link rel="canonical" href="{{{{base}}}}{path}"></head><body>'
            f'<nav><a href="/">Home</a> <a href="/section/world.html">World</a></nav><article>'
            f"<h1>{title}</h1><p class=\"byline\">By Bench Wire staff, {when:%d %B %Y}</p>"
            f"{paragraphs}</article><footer>Bench Wire, a generated site.</footer></body></html>")
    return path, title, html


def write_site(root: Path, articles: int, seed: int = 7) -> list[str]:
    """Write the site; returns the article paths."""
    rnd = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    stories = [story(i, rnd, now - timedelta(hours=3 * i)) for i in range(articles)]
    by_month: dict[str, list[tuple[str, datetime]]] = {}
    for i, (path, _title, html) in enumerate(stories):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        when = now - timedelta(hours=3 * i)
        by_month.setdefault(f"{when:%Y-%m}", []).append((path, when))
    (root / "sitemaps").mkdir()
    index = ['<?xml version="1.0" encoding="UTF-8"?>'
             '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    for month, entries in sorted(by_month.items(), reverse=True):
        urls = "".join(f"<url><loc>{{{{base}}}}{p}</loc><lastmod>{w:%Y-%m-%dT%H:%M:%SZ}</lastmod></url>"
                       for p, w in entries)
        (root / "sitemaps" / f"{month}.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?><urlset '
            f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>', encoding="utf-8")
        index.append(f"<sitemap><loc>{{{{base}}}}/sitemaps/{month}.xml</loc>"
                     f"<lastmod>{entries[0][1]:%Y-%m-%dT%H:%M:%SZ}</lastmod></sitemap>")
    (root / "sitemap.xml").write_text("".join(index) + "</sitemapindex>", encoding="utf-8")
    items = "".join(f"<item><title>{escape(t)}</title><link>{{{{base}}}}{p}</link></item>"
                    for p, t, _ in stories[:100])
    (root / "rss.xml").write_text('<?xml version="1.0" encoding="utf-8"?><rss version="2.0">'
                                  f"<channel><title>Bench Wire</title>{items}</channel></rss>",
                                  encoding="utf-8")
    links = "".join(f'<li><a href="{p}">{escape(t)}</a></li>' for p, t, _ in stories[:60])
    (root / "section").mkdir()
    (root / "section" / "world.html").write_text(
        f"<!DOCTYPE html><html><body><h1>World</h1><ul>{links}</ul></body></html>", encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n", encoding="utf-8")
    return [p for p, _, _ in stories]


def write_config(directory: Path, base: str, articles: int) -> Path:
    directory.mkdir(parents=True)
    limit = articles + 100
    (directory / "sources.toml").write_text(f"""
[[source]]
id = "bench-sitemap"
kind = "sitemap"
urls = ["{base}/sitemap.xml"]
allowed_domains = ["127.0.0.1"]
max_items = {limit}

[[source]]
id = "bench-rss"
kind = "rss"
urls = ["{base}/rss.xml"]
allowed_domains = ["127.0.0.1"]

[[source]]
id = "bench-section"
kind = "listing"
urls = ["{base}/section/world.html"]
allow = ["/20\\\\d\\\\d/"]
""", encoding="utf-8")
    # A local site: no politeness delay, as `scrapy bench` has none; Scrapy's default
    # concurrency (16 requests, 8 per site).
    (directory / "settings.toml").write_text("""
[crawl]
allow_private_networks = true
download_delay = 0
autothrottle = false
concurrent_requests = 16
concurrent_requests_per_domain = 8
retry_times = 0
max_requests_per_run = 0
max_run_seconds = 0
""", encoding="utf-8")
    return directory


def crawl_once(server: SiteServer, config_dir: Path, db_path: Path,
               article_paths: set[str]) -> dict[str, Any]:
    before = len(server.log)
    started = time.monotonic()
    report = run_crawl(load_config(config_dir), db_path, timeout=3600)
    seconds = time.monotonic() - started
    log = server.log[before:]
    conn = sqlite3.connect(db_path)
    try:
        stored = conn.execute("SELECT COUNT(*) FROM pages WHERE role = 'article' AND error IS NULL"
                              ).fetchone()[0]
    finally:
        conn.close()
    article_requests = sum(1 for entry in log if entry.path in article_paths)
    counters: list[dict[str, Any]] = list(report.sources.values())
    crawl_seconds = (log[-1].at - log[0].at) if len(log) > 1 else 0.0
    return {"ok": report.ok, "attention": report.attention, "requests": len(log),
            "article_requests": article_requests, "articles_stored": stored,
            "seconds": round(seconds, 2), "crawl_seconds": round(crawl_seconds, 2),
            "pages_per_second": round(len(log) / seconds, 1),
            "crawl_pages_per_second": round(len(log) / crawl_seconds, 1) if crawl_seconds else None,
            "not_modified": sum(int(c.get("not_modified", 0)) for c in counters),
            "unchanged": sum(int(c.get("unchanged", 0)) for c in counters),
            "known_skipped": sum(int(c.get("known_skipped", 0)) for c in counters)}


def scrapy_bench() -> dict[str, Any]:
    """Run `scrapy bench` (outside any project) and read its final stats."""
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([sys.executable, "-m", "scrapy", "bench"], capture_output=True,
                              text=True, cwd=cwd, timeout=300, check=False)
    text = proc.stderr + proc.stdout
    count = re.search(r"'response_received_count': (\d+)", text)
    elapsed = re.search(r"'elapsed_time_seconds': ([\d.]+)", text)
    if not (count and elapsed):
        raise SystemExit(f"could not read scrapy bench's stats:\n{text[-2000:]}")
    pages, seconds = int(count.group(1)), float(elapsed.group(1))
    per_minute = [int(m) for m in re.findall(r"\(at (\d+) pages/min\)", text)]
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_second": round(pages / seconds, 1),
            "logged_pages_per_minute_max": max(per_minute) if per_minute else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2400)
    parser.add_argument("--skip-scrapy-bench", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dealwatch-crawl-bench-") as tmp:
        root = Path(tmp) / "site"
        root.mkdir()
        paths = set(write_site(root, args.articles))
        db_path = Path(tmp) / "bench.db"
        with running(SiteServer(root)) as server:
            config_dir = write_config(Path(tmp) / "config", server.base_url, args.articles)
            first = crawl_once(server, config_dir, db_path, paths)
            second = crawl_once(server, config_dir, db_path, paths)
    result: dict[str, Any] = {"articles_on_site": args.articles, "first": first, "second": second}
    if not args.skip_scrapy_bench:
        result["scrapy_bench"] = scrapy_bench()
        ours = first["pages_per_second"]
        result["ratio"] = round(ours / result["scrapy_bench"]["pages_per_second"], 2)
        if first["crawl_pages_per_second"]:
            result["ratio_crawl_time"] = round(
                first["crawl_pages_per_second"] / result["scrapy_bench"]["pages_per_second"], 2)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"site: {args.articles} articles, served by pipeline.demo.server on 127.0.0.1")
        for name in ("first", "second"):
            run = result[name]
            print(f"{name} crawl: {run['requests']} requests ({run['article_requests']} for articles), "
                  f"{run['articles_stored']} articles stored, {run['seconds']} s wall "
                  f"({run['pages_per_second']} pages/s), {run['crawl_seconds']} s first to last "
                  f"request ({run['crawl_pages_per_second']} pages/s); not modified "
                  f"{run['not_modified']}, unchanged {run['unchanged']}, known skipped "
                  f"{run['known_skipped']}")
        if "scrapy_bench" in result:
            sb = result["scrapy_bench"]
            print(f"scrapy bench: {sb['pages']} pages in {sb['seconds']} s "
                  f"({sb['pages_per_second']} pages/s)")
            print(f"ratio (our wall-time pages/s / scrapy bench): {result['ratio']}"
                  + (f"; on crawl time: {result['ratio_crawl_time']}" if "ratio_crawl_time" in result
                     else ""))
    ok = second["article_requests"] == 0 and first["articles_stored"] >= args.articles
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
