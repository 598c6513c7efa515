"""A processing worker whose PostgreSQL server goes away (`dealwatch process --worker`): it
reconnects with backoff and goes on when the server comes back, every page processed once, or
gives up in one line after [database] reconnect_seconds. The test stops and starts a server of
its own (tests/servers.py), never the session's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import servers
from scalefixtures import SOURCES, STORIES, assert_processed_once, store_pages, story_pages
from sitefixtures import write_config_dir
from workerfixtures import Stderr, dealwatch, finished, rows, wait_for, worker

from pipeline.storage import Store
from pipeline.storage.database import CLUSTER_LOCK

PASSWORD = "s3cret-Pw"  # trust authentication ignores it; it must never be shown
RETRY = re.compile(r"^INFO .*the database at postgresql://dealwatch@127\.0\.0\.1:\d+/dealwatch "
                   r"does not answer while processing a batch \(([^)]*)\); trying again in "
                   r"([\d.]+) s$", re.MULTILINE)


def with_password(url: str) -> str:
    return url.replace("postgresql://dealwatch@", f"postgresql://dealwatch:{PASSWORD}@", 1)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


class OwnServer:
    """The test's own PostgreSQL (servers.postgres_server), stopped and started again on its
    port and data directory."""

    def __init__(self, url: str):
        self.url, self.port = url, port_of(url)
        with psycopg.connect(servers.admin_url(self.port), autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        self.data = Path(row[0])
        self._again = ExitStack()

    def pid(self) -> int | None:
        """The postmaster's pid while it runs (its postmaster.pid file, removed at shutdown)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def stop(self) -> None:
        """Fast shutdown (every client's connection ends); back once it has shut down."""
        pid = self.pid()
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        wait_for(lambda: self.pid() is None, "the server has shut down")

    def start(self) -> None:
        """Started again on its port; back once it answers (stopped by end())."""
        self._again.enter_context(servers.postgres_started_again(self.data, self.port))

    def end(self) -> None:
        self._again.close()


@contextmanager
def own_server() -> Iterator[OwnServer]:
    with servers.postgres_server() as url:
        server = OwnServer(url)
        try:
            yield server
        finally:
            server.end()  # before postgres_server removes its data directory


@contextmanager
def clustering_held(url: str) -> Iterator[None]:
    """The clustering lock held by another session (until the server stops): a worker's first
    batch waits on it with its pages processed, its transaction open."""
    conn = psycopg.connect(url)
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [CLUSTER_LOCK])
        yield
    finally:
        conn.close()


def waiting_to_cluster(url: str, pid: int) -> bool:
    """The worker process `pid` waits on a lock in its batch (its connection's
    application_name ends "pid N")."""
    return bool(rows(url, "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE ? "
                          "AND wait_event_type = 'Lock'", [f"% pid {pid}"]))


def config(tmp_path: Path, reconnect_seconds: float) -> Path:
    directory = write_config_dir(tmp_path / "config", [])
    with (directory / "settings.toml").open("a", encoding="utf-8") as settings:
        # A lock waited out is no part of this test: the wait ends when the server stops.
        settings.write(f"[database]\nbusy_timeout_ms = 600000\n"
                       f"reconnect_seconds = {reconnect_seconds}\n")
    return directory


def stopped_mid_batch(server: OwnServer, url: str, config_dir: Path
                      ) -> tuple[subprocess.Popen[str], Stderr, list[Any]]:
    """A worker (-v) whose server stops while its first batch waits to cluster."""
    pages = story_pages(STORIES, SOURCES, edited_every=5, same_every=7)
    with Store(url) as store:
        store_pages(store, pages)
    with clustering_held(url):
        proc = dealwatch(url, config_dir, "-v", "process", "--worker", "--model", "never",
                         "--batch", "8")
        stderr = Stderr(proc)
        wait_for(lambda: waiting_to_cluster(url, proc.pid), "the worker is mid-batch", proc)
        server.stop()
    return proc, stderr, pages


def test_a_worker_whose_server_comes_back_goes_on_and_processes_every_page_once(
        postgres_url: str, tmp_path: Path) -> None:
    # postgres_url (the session's server, unused) marks the test `servers`.
    with own_server() as server:
        url = with_password(server.url)
        proc, stderr, pages = stopped_mid_batch(server, url, config(tmp_path, 300))
        # The server is down: the worker retries, and the server comes back on its port.
        wait_for(lambda: ("connection refused", "1") in RETRY.findall(stderr.text()),
                 "the worker finds the server down", proc)
        server.start()
        code, err = stderr.ended()
        assert code == 0, err
        assert PASSWORD not in err
        retries = RETRY.findall(err)
        waits = [float(wait) for _, wait in retries]
        assert waits == [min(0.5 * 2 ** n, 8.0) for n in range(len(waits))]  # 0.5 s, doubling
        # The batch's own error first (the server ended its connection), then the server's
        # absence, until it came back.
        assert retries[0][0] in ("terminating connection due to administrator command",
                                 "server closed the connection unexpectedly")
        assert retries[1][0] == "connection refused"
        assert "connected again to the database at" in err
        # The batch in flight was rolled back with the connection, and taken again: every page
        # processed once, and counted once.
        assert_processed_once(url, pages)
        runs = rows(url, "SELECT kind, outcome, counters FROM runs")
        assert [(r["kind"], r["outcome"]) for r in runs] == [("process", "ok")]
        assert f'"pages": {len(pages)}' in runs[0]["counters"]
        assert f"processed {len(pages)} page(s)" in err


def test_a_worker_whose_server_stays_away_gives_up_in_one_line(
        postgres_url: str, tmp_path: Path) -> None:
    with own_server() as server:
        url = with_password(server.url)
        _proc, stderr, _pages = stopped_mid_batch(server, url, config(tmp_path, 3))
        code, err = stderr.ended()
        assert code == 1, err
        assert PASSWORD not in err
        retries = RETRY.findall(err)
        last = err.strip().splitlines()[-1]
        gave_up = (f"error: lost the database at {server.url}: connection refused; gave up after "
                   f"{len(retries) + 1} tries over ")
        assert re.fullmatch(re.escape(gave_up) + r"\d+\.\d s", last), err
        waits = [float(wait) for _, wait in retries]
        assert waits and waits == [min(0.5 * 2 ** n, 8.0) for n in range(len(waits))]
        # Back up, the database shows nothing of the lost batch; the run, never finished, is
        # left running until a run that takes the lock alone marks it aborted.
        server.start()
        assert rows(url, "SELECT COUNT(*) AS n FROM pages WHERE process_status IS NOT NULL"
                    ) == [{"n": 0}]
        assert [r["outcome"] for r in rows(url, "SELECT outcome FROM runs")] == ["running"]


def test_a_worker_refuses_a_database_newer_than_itself(postgres_databases: Any,
                                                       tmp_path: Path) -> None:
    url = postgres_databases.new()
    try:
        with Store(url) as store:
            version = store.schema_version()
            store.database.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                                   "VALUES (?, 'from a newer dealwatch', '2030-01-01T00:00:00Z')",
                                   [version + 1])
        code, err = finished(worker(url, write_config_dir(tmp_path / "config", [])))
        assert code == 1
        assert err.strip().splitlines() == [
            f"error: {url}: database schema {version + 1} is newer than this dealwatch "
            f"({version}); upgrade dealwatch"]
    finally:
        postgres_databases.drop(url)
