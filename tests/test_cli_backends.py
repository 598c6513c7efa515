"""The command line on either store: `--db` a SQLite file or a postgresql:// URL (docs/scaling.md,
"Order of work" step 4). The night end to end (init, crawl of a local site, process, review,
export, status), and what a server adds: one line for a server that cannot be reached or whose
schema is newer, the run lock as an advisory lock, a crontab that never holds a password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from servers import free_port
from webfixtures import add_reviewers, logged_in, seed_review_queue

from pipeline.cli import main
from pipeline.demo import demo_config_dir, serve_demo_site
from pipeline.ingest.crawl import crawl_command, crawl_env
from pipeline.storage import MIGRATIONS, Store
from pipeline.storage.lock import RunLockedError, ServerRunLock, run_lock
from pipeline.storage.postgres import WRITER_LOCK

BACKENDS = ("sqlite", "postgresql")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_config() -> Iterator[Path]:
    """A config whose sources are the bundled demo site, served on 127.0.0.1."""
    with serve_demo_site(0) as site, demo_config_dir(site.base_url) as config:
        yield config


def with_password(url: str, password: str = "s3cret-pw") -> str:
    scheme, rest = url.split("://", 1)
    user, at, host = rest.partition("@")
    return f"{scheme}://{user}:{password}@{host}" if at else f"{scheme}://ann:{password}@{rest}"


def test_the_night_end_to_end(run_cli, demo_config: Path, store_location: str, backend: str
                              ) -> None:
    config = ["--config", str(demo_config)]
    made = run_cli(*config, "init")
    assert made.exit_code == 0, made.output
    assert made.output.startswith(f"database {store_location} ready (schema version ")

    crawled = run_cli(*config, "crawl")
    assert crawled.exit_code == 0, crawled.output
    with Store(store_location) as store:
        assert store.count("pages") > 0 and store.count("articles") == 0

    processed = run_cli(*config, "process", "--model", "never")
    assert processed.exit_code == 0, processed.output
    listed = run_cli(*config, "review", "list", "--json")
    assert listed.exit_code == 0, listed.output
    pending = json.loads(listed.output)
    deal = next(row for row in pending if row["kind"] == "deal")

    confirmed = run_cli(*config, "review", "--reviewer", "ann", "confirm", str(deal["id"]))
    assert confirmed.exit_code == 0, confirmed.output
    exported = run_cli(*config, "export", "--format", "json")
    assert exported.exit_code == 0, exported.output
    [filed] = json.loads(exported.stdout)
    assert filed["deal_id"] == "dw-000001" and deal["vendors"][0] in filed["vendors"]

    status = run_cli(*config, "status", "--json")
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert report["counts"]["deals"] == 1
    assert report["counts"]["candidates_confirmed"] >= 1
    assert [run["kind"] for run in report["runs"]][:2] == ["process", "crawl"]
    # a server's database leaves nothing beside it on disk
    if backend == "postgresql":
        assert not any(Path.cwd().glob("postgresql*"))


def test_a_database_url_reaches_the_crawler_in_its_environment_not_on_its_command_line(
        demo_config: Path) -> None:
    from pipeline.config import load_config

    config = load_config(demo_config)
    url = "postgresql://ann:s3cret-pw@db.internal:5432/dealwatch"
    command = crawl_command(config, url, run_id=3)
    assert "--db" not in command and not any("s3cret" in part for part in command)
    assert (crawl_env(url) or {})["DEALWATCH_DB"] == url
    # a file keeps its --db, made absolute: the crawler runs in the project's folder
    assert crawl_command(config, "data/x.db")[3:5] == ["--db", str(Path("data/x.db").resolve())]
    assert crawl_env("data/x.db") is None


# --- what a server adds ----------------------------------------------------------------------


@pytest.mark.backends("postgresql")
def test_a_schema_newer_than_this_dealwatch_is_refused_naming_both(run_cli, store_location: str
                                                                    ) -> None:
    latest = MIGRATIONS[-1][0]
    with psycopg.connect(store_location, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                     "VALUES (%s, 'from the future', '2099-01-01T00:00:00Z')", [latest + 5])
    for command in (("status",), ("review", "list"), ("process",)):
        result = run_cli(*command)
        assert result.exit_code == 1, command
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert (f"database schema {latest + 5} is newer than this dealwatch ({latest}); "
                "upgrade dealwatch") in lines[0]


@contextmanager
def writer_at_work(store_location: str) -> Iterator[None]:
    """Another process holding the one-writer lock of review and registry transactions (the
    nightly run confirming, another reviewer) for as long as the test runs."""
    with psycopg.connect(store_location, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [WRITER_LOCK])
        yield


@pytest.mark.backends("postgresql")
def test_a_busy_server_is_one_line_and_reading_goes_on(run_cli, store_location: str,
                                                       make_config) -> None:
    with Store(store_location) as store:
        ids = seed_review_queue(store)
    config = ["--config", str(make_config({"settings.toml": "[database]\nbusy_timeout_ms = 200\n"}))]
    with writer_at_work(store_location):
        result = run_cli(*config, "review", "--reviewer", "ana", "defer", str(ids["zte-ET"]))
        assert result.exit_code == 1
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {store_location}: the database is busy (")
        assert line.endswith("another process has been writing for longer than the busy "
                             "timeout; try again")
        listed = run_cli(*config, "review", "list", "--json")  # reading takes no write lock
        assert listed.exit_code == 0 and str(ids["zte-ET"]) in listed.output
    with Store(store_location) as store:
        assert store.candidates.candidate(ids["zte-ET"]).status == "pending"


@pytest.mark.backends("postgresql")
def test_a_busy_server_is_a_503_page_and_nothing_is_written(store_location: str, make_config
                                                            ) -> None:
    from pipeline.config import load_config
    from pipeline.review.web.app import create_app

    with Store(store_location) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice")
        version = store.candidates.candidate(ids["zte-ET"]).version
    config = load_config(make_config({"settings.toml": "[database]\nbusy_timeout_ms = 50\n"}))
    client = logged_in(create_app(config, store_location, secure_cookies=False), "alice")
    page = client.get(f"/candidate/{ids['zte-ET']}").text
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    with writer_at_work(store_location):
        busy = client.post(f"/candidate/{ids['zte-ET']}/decide",
                           data={"csrf_token": token, "version": version, "decision": "reject",
                                 "reason": "domestic"})
        assert busy.status_code == 503
        assert "The database is busy; try again" in busy.text and busy.headers["retry-after"]
        assert client.get("/queue").status_code == 200  # reading never waits
    with Store(store_location) as store:
        assert store.candidates.candidate(ids["zte-ET"]).status == "pending"


@pytest.mark.parametrize("command", [("status",), ("init",), ("process",), ("review", "list")])
def test_an_unreachable_server_is_one_line_without_its_password(
        command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://ann:s3cret-pw@127.0.0.1:{port}/dealwatch"
    monkeypatch.chdir(tmp_path)
    for name in ("DEALWATCH_DB", "DEALWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["--db", url, *command])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach the database at postgresql://ann@127.0.0.1:{port}/dealwatch: "
        "connection refused (from --db)"]
    assert "s3cret" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.backends("postgresql")
def test_the_run_lock_on_a_server_refuses_a_second_run_and_names_the_holder(
        store_location: str) -> None:
    with run_lock(store_location, "run") as held:
        assert isinstance(held, ServerRunLock)
        with pytest.raises(RunLockedError) as refused:
            run_lock(store_location, "crawl").acquire()
        message = str(refused.value)
        assert message.startswith(f"another dealwatch run is using {store_location}: "
                                  f"`dealwatch run` (pid {os.getpid()}, since 20")
        assert message.endswith("; not starting `dealwatch crawl`")
        with pytest.raises(RunLockedError, match=r"`dealwatch run`.*not starting `dealwatch "
                                                 r"crawl --worker`"):
            run_lock(store_location, "crawl --worker", shared=True).acquire()
    for _ in range(20):  # released: free again at once, run after run
        with run_lock(store_location, "crawl"):
            pass


@pytest.mark.backends("postgresql")
def test_crawl_workers_share_the_run_lock_on_a_server_and_keep_others_out(
        store_location: str) -> None:
    with (run_lock(store_location, "crawl --worker", shared=True),
          run_lock(store_location, "crawl --worker", shared=True),
          pytest.raises(RunLockedError, match=r"`dealwatch crawl --worker` \(pid \d+, since "
                                              r".*; not starting `dealwatch run`")):
        run_lock(store_location, "run").acquire()
    with run_lock(store_location, "run"):
        pass


@pytest.mark.backends("postgresql")
def test_a_run_holding_the_lock_in_another_process_keeps_the_cli_out(
        run_cli, store_location: str) -> None:
    """The lock is the server's: a process that dies frees it, one that lives keeps `process`
    out with the holder's line."""
    code = ("import sys, time; from pipeline.storage.lock import run_lock; "
            f"lock = run_lock({store_location!r}, 'run'); lock.acquire(); print('held', flush=True); "
            "time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, text=True,
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = run_cli("process")
        assert refused.exit_code == 1
        assert refused.stderr.strip().splitlines() == [
            f"error: another dealwatch run is using {store_location}: `dealwatch run` "
            f"(pid {holder.pid}, since {refused.stderr.split('since ')[1].split(')')[0]}); "
            "not starting `dealwatch process`"]
    finally:
        holder.kill()
        holder.wait()
    assert run_cli("process").exit_code == 0  # the server dropped the dead holder's lock


@pytest.mark.backends("postgresql")
def test_schedule_refuses_a_url_with_a_password(run_cli, store_location: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = with_password(store_location)
    result = CliRunner().invoke(main, ["--db", url, "schedule"])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {store_location}: the scheduled job's command line would "
                           "carry the database password")
    assert "~/.pgpass" in line and "s3cret" not in result.output


def test_the_scheduled_command_names_a_url_without_a_password_as_it_is(tmp_path: Path) -> None:
    from pipeline.jobs.schedule import run_command

    url = "postgresql://ann@db.internal:5432/dealwatch"
    assert run_command(url, None)[-2:] == ["--db", url]
    assert run_command(tmp_path / "x.db", None)[-2:] == ["--db", str(tmp_path / "x.db")]
