"""The shared crawl frontier on a real Redis: `dealwatch enqueue`, then several `dealwatch crawl
--worker` processes on one SQLite file, with no article fetched twice and no source crawled twice."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from servers import free_port
from sitefixtures import article_html, rss_feed, source_toml, write_config_dir, write_site

from pipeline.demo.server import SiteServer, serve
from pipeline.ingest.crawl import PROJECT_ROOT
from pipeline.storage.frontier import PREFIX, Frontier
from pipeline.storage.lock import RunLock, RunLockedError
from pipeline.urls import canonical_url

# Three feeds on one local site, sharing some stories: a shared duplicate filter is what keeps
# the workers from each fetching the stories their feeds have in common.
FEEDS = {
    "feed-a": ["a01", "a02", "a03", "a04", "a05", "a06"],
    "feed-b": ["a04", "a05", "a06", "a07", "a08", "a09"],
    "feed-c": ["a08", "a09", "a10", "a11", "a12", "a01"],
}
ARTICLES = sorted({slug for slugs in FEEDS.values() for slug in slugs})
WORKERS = 3
TIMEOUT = 300  # generous: a slow shared machine is never a failure


def frontier_url(redis_url: str) -> str:
    """A Redis database of its own (the server is shared by the session), emptied first."""
    url = redis_url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SiteServer]:
    files: dict[str, str | bytes] = {"robots.txt": "User-agent: *\nAllow: /\n"}
    for source_id, slugs in FEEDS.items():
        files[f"{source_id}.rss"] = rss_feed([f"{{{{base}}}}/news/{slug}.html" for slug in slugs])
    for slug in ARTICLES:
        files[f"news/{slug}.html"] = article_html(f"Story {slug}")
    with serve(write_site(tmp_path / "site", files)) as server:
        yield server


@pytest.fixture
def config_dir(tmp_path: Path, site: SiteServer) -> Path:
    sources = [source_toml(sid, "rss", [f"{site.base_url}/{sid}.rss"], enabled=True)
               for sid in FEEDS]
    return write_config_dir(tmp_path / "config", sources)


def dealwatch(db_path: Path, config_dir: Path, *args: str,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m pipeline.cli --db DB --config DIR ARGS…` as a process of its own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEALWATCH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--db", str(db_path), "--config", str(config_dir),
         *args], cwd=PROJECT_ROOT, env={**clean, **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, encoding="utf-8")


def finished(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, err


def rows(db_path: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_three_workers_fetch_every_article_once(
        redis_url: str, site: SiteServer, config_dir: Path, db_path: Path,
        run_cli: Callable[..., Any]) -> None:
    url = frontier_url(redis_url)
    assert run_cli("--config", str(config_dir), "init").exit_code == 0

    code, err = finished(dealwatch(db_path, config_dir, "enqueue", "--redis", url))
    assert code == 0, err
    assert "queued 3 source(s)" in err
    # The environment variable serves as well as the option.
    workers = [dealwatch(db_path, config_dir, "crawl", "--worker", env={"DEALWATCH_REDIS": url})
               for _ in range(WORKERS)]
    ended = [finished(w) for w in workers]
    for code, err in ended:
        assert code == 0, err
        assert "the frontier is empty" in err

    # Every article requested exactly once, across the three workers; every feed once too.
    requested = Counter(path for path in site.requests if not path.startswith("/robots"))
    assert requested == Counter({f"/news/{slug}.html": 1 for slug in ARTICLES}
                                | {f"/{sid}.rss": 1 for sid in FEEDS})

    # Every source crawled by exactly one worker, in a run of its own that went well.
    runs = rows(db_path, "SELECT kind, sources, outcome, counters FROM runs WHERE kind = 'crawl'")
    crawled = Counter(source for r in runs for source in json.loads(r["sources"]))
    assert crawled == Counter(dict.fromkeys(FEEDS, 1))
    assert {r["outcome"] for r in runs} == {"ok"}
    # The stories a feed shares with another were left to the worker that took them first (or,
    # for a worker that started after that crawl had ended, found stored), and the runs say so;
    # together the runs fetched each story once.
    counters = [json.loads(r["counters"])["crawl"] for r in runs]
    per_source = {sid: c for run in counters for sid, c in run.items()}
    assert sum(c["articles_new"] for c in per_source.values()) == len(ARTICLES)
    shared = sum(len(slugs) for slugs in FEEDS.values()) - len(ARTICLES)
    assert sum(c["taken_elsewhere"] + c["known_skipped"] for c in per_source.values()) == shared
    # The workers' own lines name what each crawled; together they name each source once.
    said = Counter(m.group(1) for _, err in ended
                   for m in re.finditer(r"^crawl (\S+): ", err, re.MULTILINE))
    assert said == Counter(dict.fromkeys(FEEDS, 1))

    # The pages table has each article once.
    pages = rows(db_path, "SELECT url FROM pages WHERE role = 'article'")
    assert Counter(canonical_url(p["url"]) for p in pages) == Counter(
        {canonical_url(f"{site.base_url}/news/{slug}.html"): 1 for slug in ARTICLES})

    # The frontier is empty: nothing waiting, nothing claimed.
    frontier = Frontier(redis.Redis.from_url(url, decode_responses=True))
    assert (frontier.waiting(), frontier.taken()) == ([], [])


def test_a_worker_finding_the_frontier_empty_exits_0(
        redis_url: str, config_dir: Path, db_path: Path, run_cli: Callable[..., Any]) -> None:
    url = frontier_url(redis_url)
    assert run_cli("--config", str(config_dir), "init").exit_code == 0
    code, err = finished(dealwatch(db_path, config_dir, "crawl", "--worker", "--redis", url))
    assert code == 0, err
    assert "the frontier is empty; crawled 0 source(s)" in err


def test_enqueue_does_not_queue_a_source_twice(redis_url: str, config_dir: Path,
                                               run_cli: Callable[..., Any]) -> None:
    url = frontier_url(redis_url)
    first = run_cli("--config", str(config_dir), "enqueue", "--redis", url, "--source", "feed-a")
    assert first.exit_code == 0, first.output
    again = run_cli("--config", str(config_dir), "enqueue", "--redis", url)
    assert again.exit_code == 0, again.output
    assert "queued 2 source(s)" in again.output and "feed-a" in again.output
    frontier = Frontier(redis.Redis.from_url(url, decode_responses=True))
    assert frontier.waiting() == ["feed-a", "feed-b", "feed-c"]


def test_a_dead_workers_source_goes_to_the_next_worker(redis_url: str) -> None:
    url = frontier_url(redis_url)
    client = redis.Redis.from_url(url, decode_responses=True)
    frontier = Frontier(client)
    frontier.enqueue(["feed-a"], "2026-12-06")
    assert frontier.take("dead", ttl=60) == "feed-a"
    # Held: nobody else gets it, however often they ask.
    assert frontier.take("other", ttl=60) is None
    assert not frontier.renew("feed-a", "other", ttl=60)
    client.delete(PREFIX + "claim:feed-a")  # the dead worker's claim expires
    assert frontier.take("other", ttl=60) == "feed-a"
    assert frontier.holder("feed-a") == "other"
    assert not frontier.renew("feed-a", "dead", ttl=60)
    frontier.done("feed-a", "other")
    assert (frontier.waiting(), frontier.taken(), frontier.take("third", ttl=60)) == ([], [], None)


@pytest.mark.parametrize("command", [["enqueue"], ["crawl", "--worker"]])
def test_an_unreachable_redis_is_one_line_without_the_password(
        command: list[str], config_dir: Path, db_path: Path, run_cli: Callable[..., Any]) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://ann:s3cret@127.0.0.1:{port}/0"
    result = run_cli("--config", str(config_dir), *command, "--redis", url)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: cannot reach Redis at redis://ann@127.0.0.1:{port}/0: "
        "connection refused"]
    assert "s3cret" not in result.output


def test_workers_share_the_run_lock_and_other_runs_wait_for_them(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with (RunLock(db_path, "crawl --worker", shared=True),
          RunLock(db_path, "crawl --worker", shared=True),
          pytest.raises(RunLockedError, match="not starting `dealwatch run`")):
        RunLock(db_path, "run").acquire()
    with (RunLock(db_path, "run"),
          pytest.raises(RunLockedError, match=r"`dealwatch run`.*not starting `dealwatch "
                                              r"crawl --worker`")):
        RunLock(db_path, "crawl --worker", shared=True).acquire()
