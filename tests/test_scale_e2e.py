"""Issue 13's end-to-end target on real servers: three crawl workers (`dealwatch enqueue` and
`crawl --worker`, Redis frontier) and two processing workers (`process --worker`) on one
PostgreSQL database, over a local site of 600 articles in three sources: every article fetched
once, processed once, every story one candidate; and the same with a processing worker SIGKILLed
mid-batch."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from scalefixtures import story_html
from servers import database_url
from sitefixtures import rss_feed, source_toml, write_config_dir, write_site
from workerfixtures import dealwatch, finished, kill_once_claiming, rows, worker

from pipeline.demo.server import SiteServer, serve
from pipeline.storage import Store
from pipeline.storage.queue import QueueQuery

SOURCES = ("wire-a", "wire-b", "wire-c")
ARTICLES = 600
COPY_EVERY = 10  # every tenth article is an edited copy of the story before it, in another feed


def article_paths() -> dict[str, list[tuple[str, int, str]]]:
    """Each source's articles: (path, story number, "" or "edited"), 200 a source."""
    feeds: dict[str, list[tuple[str, int, str]]] = {sid: [] for sid in SOURCES}
    story = 0
    for n in range(ARTICLES):
        source = SOURCES[n % len(SOURCES)]
        if n % COPY_EVERY == COPY_EVERY - 1:
            feeds[source].append((f"/{source}/copy-{story - 1}.html", story - 1, "edited"))
        else:
            feeds[source].append((f"/{source}/story-{story}.html", story, ""))
            story += 1
    return feeds


STORIES = ARTICLES - ARTICLES // COPY_EVERY


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    files: dict[str, str | bytes] = {"robots.txt": "User-agent: *\nAllow: /\n"}
    for source, articles in article_paths().items():
        files[f"{source}.rss"] = rss_feed([f"{{{{base}}}}{path}" for path, _, _ in articles])
        for path, story, copy in articles:
            files[path] = story_html(story, copy)
    with serve(write_site(tmp_path_factory.mktemp("site"), files)) as server:
        yield server


@pytest.fixture(scope="module")
def crawled(site: SiteServer, redis_url: str, postgres_databases: Any,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A database that three crawl workers filled from the site (checked: every article
    fetched once), and the config dir; a template for each test's own copy."""
    config_dir = write_config_dir(
        tmp_path_factory.mktemp("config"),
        [source_toml(sid, "rss", [f"{site.base_url}/{sid}.rss"], enabled=True) for sid in SOURCES],
        concurrent_requests=16)
    url = postgres_databases.new()
    frontier = redis_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(frontier).flushdb()
    code, err = finished(dealwatch(url, config_dir, "enqueue", "--redis", frontier))  # type: ignore[arg-type]
    assert code == 0, err
    crawlers = [dealwatch(url, config_dir, "crawl", "--worker", "--redis", frontier)  # type: ignore[arg-type]
                for _ in range(3)]
    for code, err in map(finished, crawlers):
        assert code == 0, err
    requested = Counter(path for path in site.requests if not path.startswith("/robots"))
    assert requested == Counter({path: 1 for articles in article_paths().values()
                                 for path, _, _ in articles} | {f"/{s}.rss": 1 for s in SOURCES})
    yield url, config_dir
    postgres_databases.drop(url)


@pytest.fixture
def database(crawled: tuple[str, Path], postgres_databases: Any) -> Iterator[str]:
    """A copy of the crawled database, its pages waiting to be processed."""
    template = crawled[0].rsplit("/", 1)[1]
    name = f"{template}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url(crawled[0], "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    url = database_url(crawled[0], name)
    yield url
    postgres_databases.drop(url)


def assert_every_story_once(url: str) -> None:
    """Every article page processed once, into an article; every story one cluster, one
    candidate per article and one entry in the review queue."""
    pages = rows(url, "SELECT url, process_status FROM pages WHERE role = 'article'")
    assert len(pages) == ARTICLES
    assert Counter(p["process_status"] for p in pages) == Counter({"article": ARTICLES})
    articles = rows(url, "SELECT id, cluster_id FROM articles")
    assert len(articles) == ARTICLES
    assert len({a["cluster_id"] for a in articles}) == STORIES
    candidates = rows(url, "SELECT article_id, COUNT(*) AS n FROM candidates GROUP BY article_id")
    assert {c["article_id"]: c["n"] for c in candidates} == {a["id"]: 1 for a in articles}
    with Store(url) as store:
        queue = store.candidates.queue(QueueQuery(hidden=True))
    assert len(queue) == STORIES
    assert sum(len(entry.copies) for entry in queue) == ARTICLES


def test_three_crawl_and_two_processing_workers_take_every_article_once(
        crawled: tuple[str, Path], database: str) -> None:
    config_dir = crawled[1]
    ended = [finished(w) for w in [worker(database, config_dir) for _ in range(2)]]
    for code, err in ended:
        assert code == 0, err
    assert_every_story_once(database)


def test_a_processing_worker_killed_mid_batch_loses_nothing(
        crawled: tuple[str, Path], database: str) -> None:
    config_dir = crawled[1]
    doomed, survivor = worker(database, config_dir, "--batch", "16"), \
        worker(database, config_dir, "--batch", "16")
    kill_once_claiming(database, doomed)
    code, err = finished(survivor)
    assert code == 0, err
    assert_every_story_once(database)
