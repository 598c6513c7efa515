"""Processing workers on a real PostgreSQL (`dealwatch process --worker`): claims with FOR UPDATE
SKIP LOCKED, near-duplicates clustered across workers, one text from two URLs, workers in
processes of their own and one killed mid-batch."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from scalefixtures import SOURCES, STORIES, assert_processed_once, store_pages, story_pages
from sitefixtures import write_config_dir
from workerfixtures import TIMEOUT, finished, kill_once_claiming, rows, worker

from pipeline.analysis.analyze import Analyzer
from pipeline.config import load_config
from pipeline.jobs.process_worker import WorkerProcessor
from pipeline.storage import Store
from pipeline.storage.database import StoreBusy
from pipeline.storage.lock import run_lock


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(), use_model="never")


@pytest.fixture
def database(postgres_databases: Any) -> Iterator[str]:
    url = postgres_databases.new()
    yield url
    postgres_databases.drop(url)


def paused_before_clustering(processor: WorkerProcessor) -> tuple[threading.Event, threading.Event]:
    """(reached, release): the processor's next batch stops before it clusters, after its pages
    are extracted and analysed, until release is set."""
    reached, release = threading.Event(), threading.Event()
    articles = processor.store.articles
    real = articles.lock_clustering

    def wait_then_lock() -> None:
        reached.set()
        assert release.wait(TIMEOUT)
        real()

    articles.lock_clustering = wait_then_lock  # type: ignore[method-assign]
    return reached, release


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # the test asserts on it
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@contextmanager
def worker_one_held(database: str, analyzer: Analyzer, pages: list[Any]
                    ) -> Iterator[tuple[WorkerProcessor, WorkerProcessor, Callable[[], None]]]:
    """Two workers, a batch a page; worker one takes `pages` (stored now) and stops before it
    clusters. The block gets both and `go_on`, which lets worker one cluster and commit, and
    waits until it has (called at the block's end if the block does not)."""
    with Store(database) as one_store, Store(database) as two_store:
        store_pages(one_store, pages)
        one = WorkerProcessor(one_store, analyzer, batch_size=1)
        two = WorkerProcessor(two_store, analyzer, batch_size=1)
        reached, release = paused_before_clustering(one)
        thread, errors = in_thread(one.run_batches)
        assert reached.wait(TIMEOUT)

        def go_on() -> None:
            release.set()
            thread.join(TIMEOUT)
            assert not errors

        try:
            yield one, two, go_on
        finally:
            go_on()


def cluster_of(url: str, page_url: str) -> int:
    return int(rows(url, "SELECT a.cluster_id FROM pages p JOIN articles a ON a.id = p.article_id "
                         "WHERE p.url = ?", [page_url])[0]["cluster_id"])


def test_a_copy_finds_its_story_committed_meanwhile_by_another_worker(database, analyzer) -> None:
    # Story 1's page goes to worker one, which stops before clustering; worker two meanwhile
    # processes two other stories (their ids above story 1's), and story 1 is committed only
    # then. A copy of story 1 that worker two takes afterwards must join story 1's cluster,
    # although story 1's id is below every id worker two had read.
    pages = story_pages(4, ("a", "b"), edited_every=4)
    original, other, another, copy = pages[0], pages[1], pages[2], pages[-1]
    with worker_one_held(database, analyzer, [original, other, another]) as (_one, two, go_on):
        assert two.run_batches() == 2  # the other two stories; story 1 is worker one's
        go_on()
        store_pages(two.store, [copy])
        assert two.run_batches() == 1
    assert "/partner/" in copy.url
    assert cluster_of(database, copy.url) == cluster_of(database, original.url)
    assert len({cluster_of(database, p.url) for p in (original, other, another)}) == 3


def test_a_story_and_its_copy_in_two_batches_in_flight_end_in_one_cluster(database, analyzer) -> None:
    # Worker one holds story 1 unclustered while worker two clusters and commits the copy:
    # when worker one clusters, it finds the copy and the two become one cluster.
    pages = story_pages(2, ("a", "b"), edited_every=2)
    original, copy = pages[0], pages[-1]
    with worker_one_held(database, analyzer, [original]) as (one, two, go_on):
        store_pages(two.store, [copy])
        assert two.run_batches() == 1
        go_on()
    assert cluster_of(database, copy.url) == cluster_of(database, original.url)
    assert one.report.counters["near_duplicates"] == 1


def test_one_text_from_two_urls_in_two_workers_is_a_duplicate_not_a_failure(
        database, analyzer) -> None:
    # Worker two reads the same text as worker one's article before worker one commits it: its
    # insert waits on the unique text hash, is refused when worker one commits, and the page is
    # read again as that article's duplicate.
    pages = story_pages(3, ("a", "b"), same_every=3)
    first, same = pages[1], pages[-1]
    assert same.body == first.body and same.url != first.url
    with worker_one_held(database, analyzer, [first]) as (_one, two, go_on):
        store_pages(two.store, [same])
        two_thread, two_errors = in_thread(two.run_batches)
        waiting_on_a_lock(database, two.store.database.conn.info.backend_pid)  # type: ignore[attr-defined]
        go_on()
        two_thread.join(TIMEOUT)
        assert not two_errors
    stored = {r["url"]: r for r in rows(
        database, "SELECT url, process_status, process_reason, article_id FROM pages")}
    article = stored[first.url]["article_id"]
    assert stored[first.url]["process_status"] == "article"
    assert stored[same.url]["process_status"] == "duplicate"
    assert stored[same.url]["process_reason"] == f"same text as article {article}"
    assert two.report.counters["duplicates"] == 1 and not two.report.failures


def test_a_batch_rolled_back_as_busy_is_taken_again_and_counted_once(database, analyzer) -> None:
    # A deadlock between two workers' batches rolls one back whole (here: its clustering lock,
    # the first time); the worker takes the batch again, and counts its pages once.
    pages = story_pages(6, ("a", "b"), edited_every=3)
    with Store(database) as store:
        store_pages(store, pages)
        processor = WorkerProcessor(store, analyzer, batch_size=4)
        real, calls = store.articles.lock_clustering, []

        def deadlocked_once() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise StoreBusy("deadlock detected")
            real()

        store.articles.lock_clustering = deadlocked_once  # type: ignore[method-assign]
        assert processor.run_batches() == 2
    assert len(calls) == 3
    assert processor.report.counters["pages"] == len(pages)
    assert processor.report.counters["articles"] == len(pages)
    assert processor.report.counters["near_duplicates"] == 2
    assert rows(database, "SELECT COUNT(*) AS n FROM candidates") == [{"n": len(pages)}]


def waiting_on_a_lock(url: str, pid: int) -> None:
    """Return once the backend `pid` waits on a lock (TIMEOUT at most)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = rows(url, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = ?", [pid])
        if found and found[0]["wait_event_type"] == "Lock":
            return
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited on a lock")


# -- workers in processes of their own --------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_config_dir(tmp_path / "config", [])


@pytest.fixture
def pending(database: str) -> list[Any]:
    """STORIES stories from three sources, an edited copy of every fifth from another source,
    and a word-for-word copy of every seventh under another URL, stored and waiting."""
    pages = story_pages(STORIES, SOURCES, edited_every=5, same_every=7)
    with Store(database) as store:
        store_pages(store, pages)
    return pages


def test_two_worker_processes_process_every_page_once(database, pending, config_dir) -> None:
    workers = [worker(database, config_dir, "--batch", "8") for _ in range(2)]
    ended = [finished(w) for w in workers]
    for code, err in ended:
        assert code == 0, err
        assert "no pages left to process" in err
    # Each page was processed by one worker: the workers' own counts add up to the pages.
    said = [int(re.search(r"processed (\d+) page\(s\)", err).group(1))  # type: ignore[union-attr]
            for _, err in ended]
    assert sum(said) == len(pending)
    assert all(n > 0 for n in said)  # both took part
    assert_processed_once(database, pending)
    runs = rows(database, "SELECT kind, outcome FROM runs")
    assert runs == [{"kind": "process", "outcome": "ok"}] * 2


def test_a_worker_with_no_page_waiting_loads_nothing_and_records_no_run(database, config_dir
                                                                      ) -> None:
    # A timer may start workers every few minutes (docs/scaling.md, "Deployment"): an idle one
    # must not fill the runs table or load spaCy.
    code, err = finished(worker(database, config_dir))
    assert code == 0, err
    assert err.strip().endswith("no pages waiting to be processed; nothing to do")
    assert rows(database, "SELECT kind FROM runs") == []


def test_a_worker_killed_mid_batch_loses_nothing(database, pending, config_dir) -> None:
    kill_once_claiming(database, worker(database, config_dir, "--batch", "8"))
    # Its batch was rolled back whole: what is stored is what whole batches committed.
    done = rows(database, "SELECT COUNT(*) AS n FROM pages WHERE process_status IS NOT NULL")
    assert done[0]["n"] % 8 == 0 and done[0]["n"] < len(pending)
    code, err = finished(worker(database, config_dir, "--batch", "8"))
    assert code == 0, err
    assert_processed_once(database, pending)
    outcomes = Counter(r["outcome"] for r in rows(database, "SELECT outcome FROM runs"))
    assert outcomes == Counter({"ok": 1, "running": 1})  # the killed worker's run never ended


def test_a_worker_on_a_sqlite_file_is_refused_in_one_line(run_cli, db_path) -> None:
    assert run_cli("init").exit_code == 0
    result = run_cli("process", "--worker", "--model", "never")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: process --worker needs a PostgreSQL database (--db postgresql://…): {db_path} "
        "is a SQLite file, which has one writer; run `dealwatch process` there"]
    with Store(db_path) as store:
        assert store.runs.recent() == []  # nothing was recorded
    assert run_cli("process", "--batch", "8").exit_code == 2  # --batch goes with --worker


def test_a_worker_is_refused_while_a_run_holds_the_lock_alone(database, pending, config_dir) -> None:
    # `dealwatch process` (or `run`) holds the run lock alone: a worker is refused in one line,
    # and processes nothing.
    with run_lock(database, "process"):
        code, err = finished(worker(database, config_dir))
    assert code == 1
    assert "another dealwatch run is using" in err and "`dealwatch process --worker`" in err
    assert len(err.strip().splitlines()) == 1
    assert rows(database, "SELECT COUNT(*) AS n FROM pages WHERE process_status IS NOT NULL"
                ) == [{"n": 0}]
