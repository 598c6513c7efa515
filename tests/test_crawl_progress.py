"""Long work is not silent: each source's crawl progress, live on a terminal (a real pty), a plain
line per source in cron; the crawl subprocess reports it as JSON lines on stdout."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sitefixtures import article_html, rss_feed, serve_dir, source_toml, write_config_dir, write_site

from pipeline.config import load_config
from pipeline.demo.server import SiteServer
from pipeline.ingest.crawl import PROJECT_ROOT, run_crawl
from pipeline.jobs.runs import ProgressLines
from scrapers.progress import SourceProgress

DEALWATCH = Path(sys.executable).with_name("dealwatch")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ARTICLES = 4


@dataclass
class Site:
    server: SiteServer
    config: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Two sources: one whose articles take a while each, one whose feed is gone."""
    root = write_site(tmp_path_factory.mktemp("site"), {
        "robots.txt": "User-agent: *\nAllow: /\n",
        "feed.rss": rss_feed([f"{{{{base}}}}/news/{i}.html" for i in range(ARTICLES)]),
        **{f"news/{i}.html": article_html(f"Story number {i} of a slow site", 4 + i)
           for i in range(ARTICLES)},
    }, routes={f"/news/{i}.html": {"delay": 0.6, "file": f"news/{i}.html"}
               for i in range(ARTICLES)})
    with serve_dir(root) as server:
        config = write_config_dir(tmp_path_factory.mktemp("config"), [
            source_toml("slow", "rss", [f"{server.base_url}/feed.rss"]),
            source_toml("gone", "rss", [f"{server.base_url}/no-such-feed.rss"]),
        ], concurrent_requests_per_domain=1, max_requests_per_run=500)
        yield Site(server, config)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DEALWATCH_DB", "DEALWATCH_CONFIG", "NO_COLOR", "FORCE_COLOR",
                        "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")}
    return {**env, "TERM": "xterm-256color"}


def on_a_terminal(*args: str, timeout: float = 240) -> tuple[int, str]:
    """Run dealwatch with stdout and stderr on a pseudo-terminal, as a person at a terminal
    would: (exit status, everything the terminal was sent)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([str(DEALWATCH), *args], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, env={**_environment(), "COLUMNS": "160"})
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the other end closed: the process has ended
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        returncode = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return returncode, b"".join(chunks).decode("utf-8", "replace")


def in_cron(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DEALWATCH), *args], capture_output=True, text=True, timeout=240,
                          env=_environment(), stdin=subprocess.DEVNULL)


def test_crawl_on_a_terminal_shows_each_source_live(tmp_path: Path, site: Site) -> None:
    code, screen = on_a_terminal("--db", str(tmp_path / "db.sqlite"), "--config",
                                 str(site.config), "crawl")
    assert code == 1  # the gone feed needs attention
    frames = [ANSI.sub("", frame) for frame in re.split(r"\r\n?|\n", screen)]
    # the live display, redrawn as the crawl goes: the rows of both sources with their counts
    assert "\x1b[2K" in screen and "\x1b[?25l" in screen  # lines rewritten, cursor hidden
    slow = [f for f in frames if "crawl slow " in f and "requests" in f]
    assert any(f"{ARTICLES} articles ({ARTICLES} new), 0 errors" in f for f in slow)
    assert any(re.search(r"\b[0-3] articles? \(", f) for f in slow)  # seen while it went on
    assert all("budget left: " in f for f in slow)
    assert any(re.search(r"crawl gone +2 requests, 0 articles \(0 new\), 1 error", f)
               for f in frames)
    assert any(re.search(r"budget left: 49\d requests, [12]h[05]\dm", f) for f in slow)
    # gone when the crawl ends (transient): what stays is the report, as in a log
    text = ANSI.sub("", screen)
    assert f"crawl slow: articles_new={ARTICLES} articles_ok={ARTICLES}" in text
    assert "needs attention: gone: 1 feed/sitemap/listing fetch(es) failed: http_404 x1" in text
    assert "finished after" not in text  # the plain lines are for logs


def test_crawl_in_cron_prints_a_plain_line_per_source(tmp_path: Path, site: Site) -> None:
    result = in_cron("--db", str(tmp_path / "db.sqlite"), "--config", str(site.config), "crawl")
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    slow = [line for line in lines if line.startswith("crawl slow finished after ")]
    gone = [line for line in lines if line.startswith("crawl gone finished after ")]
    assert len(slow) == 1 and len(gone) == 1, result.stderr
    assert re.fullmatch(rf"crawl slow finished after \d+s: {ARTICLES + 2} requests, {ARTICLES} "
                        rf"articles \({ARTICLES} new\), 0 errors; budget left: 49\d requests, "
                        r"[12]h[05]\dm", slow[0])
    assert ": 2 requests, 0 articles (0 new), 1 error; budget left: " in gone[0]
    # then the report, as before
    assert lines.index(slow[0]) < lines.index(f"crawl slow: articles_new={ARTICLES} "
                                              f"articles_ok={ARTICLES} requests={ARTICLES + 2}")


def test_run_on_a_terminal_shows_the_crawl_then_the_processing(tmp_path: Path, site: Site) -> None:
    code, screen = on_a_terminal("--db", str(tmp_path / "db.sqlite"), "--config",
                                 str(site.config), "run", "--model", "never")
    assert code == 1
    text = ANSI.sub("", screen)
    assert re.search(rf"crawl slow +{ARTICLES + 2} requests, {ARTICLES} articles", text)
    assert re.search(r"processing .*\d+/\d+", text)  # the processing bar
    assert text.index("crawl slow ") < text.index("processing") < text.index(
        f"processed {ARTICLES} pages")


def test_run_in_cron_prints_plain_lines(tmp_path: Path, site: Site) -> None:
    result = in_cron("--db", str(tmp_path / "db.sqlite"), "--config", str(site.config), "run",
                     "--model", "never")
    assert result.returncode == 1
    assert "\x1b" not in result.stderr
    finished = [line for line in result.stderr.splitlines() if " finished after " in line]
    assert [line.split()[1] for line in finished] == ["gone", "slow"]
    assert f"processed {ARTICLES} pages" in result.stderr


def test_the_crawler_reports_progress_only_when_asked(tmp_path: Path, site: Site) -> None:
    config = load_config(site.config)
    heard: list[SourceProgress] = []
    report = run_crawl(config, tmp_path / "db.sqlite", ["slow"], timeout=120,
                       on_progress=heard.append, progress_every=0.2)
    assert {p.source for p in heard} == {"slow"}
    assert heard[0] == SourceProgress("slow", requests_left=500, seconds_left=7200.0)
    assert len(heard) >= 3  # opened, while it went (articles take 0.6 s each), closed
    last = heard[-1]
    assert (last.finished, last.finish_reason) == (True, "finished")
    counters = report.sources["slow"]
    assert (last.requests, last.articles, last.articles_new, last.errors) == (
        counters["requests"], counters["articles_ok"], counters["articles_new"], 0)
    assert last.requests_left == 500 - counters["requests"]
    # without --progress-every, stdout is the report alone, in one line
    plain = subprocess.run([sys.executable, "-m", "scrapers.run", "--db", str(tmp_path / "b.db"),
                            "--config", str(site.config), "--source", "gone"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=120)
    assert len(plain.stdout.splitlines()) == 1 and "sources" in json.loads(plain.stdout)


def test_a_progress_line_reads_back_and_other_lines_do_not() -> None:
    progress = SourceProgress("a", requests=3, articles=1, articles_new=1, errors=1,
                              requests_left=7, seconds_left=12.0, finished=True,
                              finish_reason="budget_exhausted")
    assert SourceProgress.from_line(progress.to_line() + "\n") == progress
    assert SourceProgress.from_line('{"progress": {"source": "a", "later": 1}}') == \
        SourceProgress("a")  # a field added later is left out
    for other in ('{"run_id": 1, "sources": {}}', '{"progress": 3}', '{"progress": {}}',
                  '{"progress": {"source": "a", "requests": []', "crawl stopped early"):
        assert SourceProgress.from_line(other) is None


def test_plain_lines_say_when_a_source_finishes_and_every_so_often_before() -> None:
    now = [0.0]
    said: list[str] = []
    lines = ProgressLines(said.append, every=60, clock=lambda: now[0])
    for t, requests in [(0, 0), (30, 10), (61, 20), (90, 30), (125, 40)]:
        now[0] = t
        lines(SourceProgress("a", requests=requests, requests_left=100 - requests))
    now[0] = 130
    lines(SourceProgress("b", requests=2, errors=1, finished=True))
    now[0] = 150
    lines(SourceProgress("a", requests=45, articles=1, articles_new=1, requests_left=55,
                         seconds_left=3000.0, finished=True, finish_reason="budget_exhausted"))
    assert said == [
        "crawl a going on after 1m01s: 20 requests, 0 articles (0 new), 0 errors; "
        "budget left: 80 requests",
        "crawl a going on after 2m05s: 40 requests, 0 articles (0 new), 0 errors; "
        "budget left: 60 requests",
        "crawl b finished after 2m10s: 2 requests, 0 articles (0 new), 1 error",
        "crawl a finished after 2m30s (budget_exhausted): 45 requests, 1 article (1 new), "
        "0 errors; budget left: 55 requests, 50m00s",
    ]
