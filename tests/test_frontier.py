"""The shared crawl frontier on a real Redis: `dealwatch enqueue`, then several `dealwatch crawl
--worker` processes on one SQLite file, with no article fetched twice and no source crawled twice."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from servers import free_port, redis_server, redis_started_again
from sitefixtures import article_html, rss_feed, source_toml, write_config_dir, write_site
from workerfixtures import TIMEOUT, Stderr, dealwatch, finished, wait_for

from models.config import ScheduleSettings
from pipeline.demo.server import SiteServer, serve
from pipeline.jobs.schedule import NightlyScheduler, run_command, scheduled_job
from pipeline.storage.frontier import PREFIX, Frontier, SharedUrls
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


def test_a_worker_that_lost_its_claim_leaves_the_new_holders_source_alone(redis_url: str) -> None:
    """The slow worker whose claim lapsed finishes after another took the source over: its
    end must not unlist the source nor forget the new holder's run, or the source would be
    lost if the new holder died too."""
    client = redis.Redis.from_url(frontier_url(redis_url), decode_responses=True)
    frontier = Frontier(client)
    frontier.enqueue(["feed-a"], "2026-12-06")
    assert frontier.take("slow", ttl=60) == "feed-a"
    client.delete(PREFIX + "claim:feed-a")  # the slow worker's claim lapses
    assert frontier.take("new", ttl=60) == "feed-a"
    frontier.crawling("feed-a", 7)
    frontier.crawled("feed-a", "slow")
    frontier.done("feed-a", "slow")
    assert (frontier.taken(), frontier.holder("feed-a"), frontier.run_of("feed-a")) == (
        ["feed-a"], "new", 7)
    # a lapsed claim nobody took over: the worker that crawled the source lets it go
    client.delete(PREFIX + "claim:feed-a")
    frontier.crawled("feed-a", "new")
    frontier.done("feed-a", "new")
    assert (frontier.taken(), frontier.run_of("feed-a")) == ([], None)


def test_a_note_that_is_no_run_id_stops_no_worker(redis_url: str) -> None:
    client = redis.Redis.from_url(frontier_url(redis_url), decode_responses=True)
    client.hset(PREFIX + "runs", "feed-a", "not-a-run")
    assert Frontier(client).run_of("feed-a") is None


def test_a_run_that_ended_keeps_its_outcome_when_a_worker_takes_its_source_over(
        db_path: Path) -> None:
    from pipeline.storage import Store

    with Store(db_path) as store:
        failed, live = (store.runs.start_run("crawl", ["feed-a"]) for _ in range(2))
        store.runs.finish_run(failed, "failed", {}, "lost Redis at redis://127.0.0.1:1/0")
        assert not store.runs.abort_run(failed, "the crawl worker died mid-crawl")
        assert store.runs.abort_run(live, "the crawl worker died mid-crawl")
        outcomes = {r.id: (r.outcome, r.message) for r in store.runs.recent(10)}
    assert outcomes[failed] == ("failed", "lost Redis at redis://127.0.0.1:1/0")
    assert outcomes[live] == ("aborted", "the crawl worker died mid-crawl")


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


# --- a worker killed mid-crawl, and a worker that loses its Redis ----------------------------

SLOW = [f"s{i:02d}" for i in range(1, 9)]  # one source's articles, each answered after a delay


def slow_site() -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "robots.txt": "User-agent: *\nAllow: /\n",
        "slow.rss": rss_feed([f"{{{{base}}}}/news/{slug}.html" for slug in SLOW])}
    for slug in SLOW:
        files[f"news/{slug}.html"] = article_html(f"Slow story {slug}")
    return files


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[SiteServer]:
    """A site whose one feed lists 8 articles, each answered after 1 s: a crawl of it one request
    at a time is under way for a while."""
    routes = {f"/news/{slug}.html": {"delay": 1, "file": f"news/{slug}.html"} for slug in SLOW}
    with serve(write_site(tmp_path / "slow-site", slow_site(), routes)) as server:
        yield server


def slow_config(tmp_path: Path, site: SiteServer, **frontier: float) -> Path:
    """A config crawling the slow site one request at a time, with these [frontier] settings."""
    directory = write_config_dir(
        tmp_path / "slow-config",
        [source_toml("slow", "rss", [f"{site.base_url}/slow.rss"], enabled=True,
                     concurrent_requests_per_domain=1)],
        concurrent_requests_per_domain=1)
    with (directory / "settings.toml").open("a", encoding="utf-8") as settings:
        settings.write("[frontier]\n" + "".join(f"{k} = {v}\n" for k, v in frontier.items()))
    return directory


def articles_requested(site: SiteServer) -> int:
    return sum(path.startswith("/news/") for path in list(site.requests))


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def gone(pid: int) -> bool:
    """The process has ended (a zombie left for a parent that does not reap it counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def stored_articles(db_path: Path) -> Counter[str]:
    return Counter(canonical_url(p["url"])
                   for p in rows(db_path, "SELECT url FROM pages WHERE role = 'article'"))


def slow_articles(site: SiteServer) -> Counter[str]:
    return Counter({canonical_url(f"{site.base_url}/news/{slug}.html"): 1 for slug in SLOW})


def test_a_worker_killed_mid_crawl_loses_nothing(
        redis_url: str, slow: SiteServer, tmp_path: Path, db_path: Path,
        run_cli: Callable[..., Any]) -> None:
    url = frontier_url(redis_url)
    config_dir = slow_config(tmp_path, slow, claim_ttl_seconds=3)
    assert run_cli("--config", str(config_dir), "init").exit_code == 0
    assert run_cli("--config", str(config_dir), "enqueue", "--redis", url).exit_code == 0
    client = redis.Redis.from_url(url, decode_responses=True)

    first = dealwatch(db_path, config_dir, "crawl", "--worker", "--redis", url)
    wait_for(lambda: articles_requested(slow) >= 2, "the crawl is under way", first)
    crawlers = children(first.pid)
    assert crawlers, "the worker runs its crawl in a subprocess"
    first.kill()
    first.communicate(timeout=TIMEOUT)
    # The crawl subprocess dies with its worker: no orphan goes on crawling.
    wait_for(lambda: all(gone(pid) for pid in crawlers), "the killed worker's crawl has ended")
    assert len(stored_articles(db_path)) < len(SLOW), "the kill came mid-crawl"
    # The dead worker's claim expires (its TTL, 3 s here): the source is there to take again.
    assert client.lrange(PREFIX + "taken", 0, -1) == ["slow"]
    wait_for(lambda: client.get(PREFIX + "claim:slow") is None, "the dead worker's claim expired")

    code, err = finished(dealwatch(db_path, config_dir, "crawl", "--worker", "--redis", url))
    assert code == 0, err
    assert "the frontier is empty; crawled 1 source(s): slow" in err
    # Every article stored exactly once: those the dead worker stored were found stored, those
    # it had taken but not stored (under way when it was killed) were fetched again.
    assert stored_articles(db_path) == slow_articles(slow)
    runs = rows(db_path, "SELECT id, outcome, message FROM runs WHERE kind = 'crawl' ORDER BY id")
    assert [r["outcome"] for r in runs] == ["aborted", "ok"]
    assert "worker died mid-crawl" in runs[0]["message"]
    assert (client.lrange(PREFIX + "queue", 0, -1), client.lrange(PREFIX + "taken", 0, -1)) \
        == ([], [])


RETRY = re.compile(r"^INFO .*Redis at redis://127\.0\.0\.1:\d+/0 does not answer while [a-z ]+"
                   r"(?: on slow)? \(connection refused\); trying again in ([\d.]+) s$",
                   re.MULTILINE)


@pytest.mark.parametrize("comes_back", [False, True], ids=["stays-away", "comes-back"])
def test_a_worker_that_loses_redis_retries_then_gives_up_or_goes_on(
        comes_back: bool, redis_url: str, slow: SiteServer, tmp_path: Path, db_path: Path,
        run_cli: Callable[..., Any]) -> None:
    # redis_url (the session's server, unused) marks the test `servers`: skipped, or failed in
    # CI, when redis-server is missing. The test stops (and starts) a server of its own.
    config_dir = slow_config(tmp_path, slow, claim_ttl_seconds=3,
                             redis_retry_seconds=60 if comes_back else 4)
    assert run_cli("--config", str(config_dir), "init").exit_code == 0
    with redis_server() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert run_cli("--config", str(config_dir), "enqueue", "--redis", url).exit_code == 0
        client = redis.Redis.from_url(url, decode_responses=True)
        worker = dealwatch(db_path, config_dir, "-v", "crawl", "--worker", "--redis", url)
        stderr = Stderr(worker)
        # Mid-crawl: the source claimed, its articles taken in the night's set, one fetched.
        wait_for(lambda: articles_requested(slow) >= 1, "the crawl is under way", worker)
        assert client.get(PREFIX + "claim:slow") is not None
        assert len(SharedUrls(client, client.get(PREFIX + "night") or "")) == len(SLOW)
    # The server has stopped.
    if comes_back:
        wait_for(lambda: RETRY.search(stderr.text()) is not None, "the worker retries", worker)
        with redis_started_again(port, tmp_path):
            code, err = stderr.ended()
    else:
        code, err = stderr.ended()
    waits = [float(w) for w in RETRY.findall(err)]
    assert waits, err
    assert waits == [min(0.5 * 2 ** n, 8.0) for n in range(len(waits))]  # 0.5 s, doubling
    if comes_back:
        assert code == 0, err
        assert "the frontier is empty; crawled 1 source(s): slow" in err
        assert stored_articles(db_path) == slow_articles(slow)
        assert "gave up" not in err
    else:
        assert code == 1, err
        gave_up = (f"lost Redis at redis://127.0.0.1:{port}/0: connection refused; gave up after "
                   f"{len(waits) + 1} tries over ")
        last = err.strip().splitlines()[-1]
        assert re.fullmatch(re.escape("error: " + gave_up) + r"\d+\.\d s", last), err
        run = rows(db_path, "SELECT outcome, message FROM runs WHERE kind = 'crawl'")
        assert [r["outcome"] for r in run] == ["failed"]
        assert run[0]["message"].startswith(gave_up)


def test_a_url_taken_for_a_source_is_that_sources_again_and_no_other(redis_url: str) -> None:
    client = redis.Redis.from_url(frontier_url(redis_url), decode_responses=True)
    dead = SharedUrls(client, "2026-12-06", owner="feed-a")
    assert dead.take("https://example.org/a")
    again, other = (SharedUrls(client, "2026-12-06", owner=o) for o in ("feed-a", "feed-b"))
    # The dead worker's source, crawled again, gets the URL (the pages table says if it is
    # stored); another source skips it.
    assert "https://example.org/a" not in again and again.take("https://example.org/a")
    assert "https://example.org/a" in other and not other.take("https://example.org/a")
    assert other.take("https://example.org/b") and not again.take("https://example.org/b")
    assert len(other) == 2


@pytest.mark.parametrize(("line", "said"), [
    ("claim_ttl_seconds = 1", "frontier.claim_ttl_seconds: Input should be greater than or "
                              "equal to 3"),
    ('redis_retry_seconds = "soon"', "frontier.redis_retry_seconds: Input should be a valid "
                                     "number")])
def test_a_bad_frontier_setting_names_the_file_and_field(
        line: str, said: str, make_config: Callable[..., Path],
        run_cli: Callable[..., Any]) -> None:
    config_dir = make_config({"settings.toml": f"[frontier]\n{line}\n"})
    result = run_cli("--config", str(config_dir), "crawl", "--worker", "--redis",
                     f"redis://127.0.0.1:{free_port()}/0")
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {config_dir / 'settings.toml'}: {said}"


def test_the_scheduled_job_with_a_frontier_queues_the_sources_and_crawls_nothing(
        redis_url: str, site: SiteServer, tmp_path: Path, db_path: Path,
        run_cli: Callable[..., Any]) -> None:
    url = frontier_url(redis_url)
    sources = [source_toml(sid, "rss", [f"{site.base_url}/{sid}.rss"], enabled=sid != "feed-b")
               for sid in FEEDS]
    config_dir = write_config_dir(tmp_path / "config", sources)
    assert run_cli("--config", str(config_dir), "init").exit_code == 0
    command, env = scheduled_job(db_path, config_dir, url)
    # What `dealwatch schedule --redis URL` starts at each scheduled time (its clock aside).
    scheduler = NightlyScheduler(ScheduleSettings(), command, lambda: None, env=env)
    assert url not in command  # the password would show in `ps`
    assert scheduler.run_job() == 0
    frontier = Frontier(redis.Redis.from_url(url, decode_responses=True))
    assert frontier.waiting() == ["feed-a", "feed-c"]  # the enabled sources
    assert frontier.last_enqueued() is not None  # the catch-up after a restart goes by it
    assert site.requests == []  # nothing crawled: the workers do that
    assert rows(db_path, "SELECT id FROM runs") == []
    assert rows(db_path, "SELECT url FROM pages") == []
    # Without a Redis URL the job is the nightly run, as before.
    assert scheduled_job(db_path, config_dir, None) == (run_command(db_path, config_dir), None)
