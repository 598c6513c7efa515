"""The nightly scheduler and the run lock: no overlaps, missed runs caught up, clean stops."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.config import ScheduleSettings
from pipeline.cli import main
from pipeline.jobs.schedule import JOB_ID, NightlyScheduler, missed_run, run_command, trigger_for
from pipeline.storage import Store
from pipeline.storage.lock import RunLock, RunLockedError

NIGHTLY = ScheduleSettings(cron="30 2 * * *", timezone="UTC", catch_up_grace_hours=6)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("last", "now", "expected"), [
    (None, "2026-05-05T03:00", "2026-05-05T02:30"),               # never ran: catch up
    ("2026-05-04T02:30", "2026-05-05T03:00", "2026-05-05T02:30"),  # yesterday's only
    ("2026-05-05T02:31", "2026-05-05T03:00", None),               # ran (by hand or cron) after
    ("2026-05-04T02:30", "2026-05-05T09:00", None),               # missed more than 6 h ago
    ("2026-05-04T02:30", "2026-05-05T02:00", None),               # not due yet today
])
def test_missed_run_with_a_fake_clock(last, now, expected) -> None:
    got = missed_run(trigger_for(NIGHTLY), at(last) if last else None, at(now), timedelta(hours=6))
    assert got == (at(expected) if expected else None)


def test_catch_up_runs_once_at_start_up() -> None:
    ran: list[datetime] = []
    now = at("2026-05-05T04:00")
    history: list[datetime] = [at("2026-05-04T02:30")]

    def runner() -> int:
        ran.append(now)
        history.append(now)
        return 0

    scheduler = NightlyScheduler(NIGHTLY, ["true"], lambda: max(history), clock=lambda: now,
                                 runner=runner)
    assert scheduler.catch_up() is True
    assert scheduler.catch_up() is False  # the catch-up run counts: nothing is missed any more
    assert ran == [now]
    assert scheduler.next_run() == at("2026-05-06T02:30")


def test_job_never_overlaps_and_coalesces() -> None:
    scheduler = NightlyScheduler(NIGHTLY, ["true"], lambda: None)
    job = scheduler.scheduler.get_job(JOB_ID)
    assert job.max_instances == 1 and job.coalesce is True
    assert job.misfire_grace_time == 6 * 3600
    assert str(job.trigger.timezone) == "UTC"


def test_bad_schedule_settings_are_config_errors(make_config) -> None:
    from pipeline.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"settings\.toml: schedule\.cron: Value error, not a crontab"):
        load_config(make_config({"settings.toml": '[schedule]\ncron = "every night"\n'}))
    with pytest.raises(ConfigError, match=r"schedule\.timezone: Value error, unknown time zone"):
        load_config(make_config({"settings.toml": '[schedule]\ntimezone = "Mars/Olympus"\n'}))


def test_run_lock_refuses_a_second_run(db_path: Path) -> None:
    with RunLock(db_path, "run"), pytest.raises(RunLockedError, match=r"`dealwatch run` \(pid \d+"), \
            RunLock(db_path, "crawl"):
        pass
    with RunLock(db_path, "crawl"):  # released: free again
        pass


def test_a_second_run_exits_with_a_clear_message(db_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DEALWATCH_CONFIG", raising=False)
    with RunLock(db_path, "run"):
        for command in (["run"], ["crawl"], ["process"]):
            result = CliRunner().invoke(main, ["--db", str(db_path), *command])
            assert result.exit_code == 1
            assert "another dealwatch run is using" in result.output
            assert "Traceback" not in result.output


def test_lock_dies_with_its_process(db_path: Path) -> None:
    code = (f"from pipeline.storage.lock import RunLock; import time; l = RunLock({str(db_path)!r}, 'run');"
            " l.acquire(); print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError):
            RunLock(db_path, "run").acquire()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        with RunLock(db_path, "run"):
            pass
    finally:
        child.kill()


def test_killed_runs_are_marked_aborted(db_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DEALWATCH_CONFIG", raising=False)
    with Store(db_path) as store:
        stale = store.runs.start_run("run")  # a run whose process was killed
    CliRunner().invoke(main, ["--db", str(db_path), "process", "--model", "never"])
    with Store(db_path) as store:
        outcome = {r.id: r.outcome for r in store.runs.recent()}
    assert outcome[stale] == "aborted"


def _start_scheduler(db_path: Path, config_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "--db", str(db_path),
                             "--config", str(config_dir), "schedule"],
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)


def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not seen in: {''.join(lines)}")


def test_schedule_stops_cleanly_on_sigterm(db_path: Path, make_config) -> None:
    config_dir = make_config({"settings.toml": '[schedule]\ncron = "0 3 1 1 *"\n'})
    proc = _start_scheduler(db_path, config_dir)
    try:
        lines = _wait_for(proc, "next run at")
        assert "`0 3 1 1 *` (UTC)" in "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "dealwatch scheduler stopped" in proc.stderr.read()
    finally:
        proc.kill()


def test_schedule_catches_up_on_a_missed_run_at_start_up(db_path: Path, make_config) -> None:
    # every minute, a day of grace, no run in the database: one catch-up run at start-up
    config_dir = make_config({"settings.toml": '[schedule]\ncron = "* * * * *"\ncatch_up_grace_hours = 24\n'})
    proc = _start_scheduler(db_path, config_dir)
    try:
        lines = _wait_for(proc, "next run at")
        text = "".join(lines)
        assert "was missed; running it now" in text
        # the shipped sources are all disabled, so that run fails, visibly, and is recorded
        assert "no enabled sources" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    with Store(db_path) as store:
        assert [(r.kind, r.outcome) for r in store.runs.recent()] == [("run", "failed")]


def test_run_command_targets_this_database(tmp_path: Path) -> None:
    cmd = run_command(tmp_path / "x.db", tmp_path / "cfg")
    assert cmd[:3] == [sys.executable, "-m", "pipeline.jobs.nightly"]  # a fresh process each run
    assert str((tmp_path / "x.db").resolve()) in cmd and str((tmp_path / "cfg").resolve()) in cmd


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


# The nightly job as the scheduler starts it, and as a person or cron starts it.
NIGHTLY_COMMANDS = {
    "scheduler": ["-m", "pipeline.jobs.nightly"],
    "dealwatch run": ["-m", "pipeline.cli", "run", "--model", "never"],
}


@pytest.mark.parametrize("started_by", list(NIGHTLY_COMMANDS))
def test_sigterm_stops_a_run_and_its_crawl(tmp_path: Path, started_by: str) -> None:
    """What the scheduler sends on shutdown: the run is recorded as interrupted, its crawl
    subprocess ends with it, and the lock is free again."""
    from sitefixtures import article_html, rss_feed, serve_dir, source_toml, write_config_dir, write_site

    links = [f"{{{{base}}}}/a/{i}.html" for i in range(20)]
    site = write_site(tmp_path / "site", {"feed.xml": rss_feed(links),
                                          **{f"a/{i}.html": article_html(f"Story {i}") for i in range(20)}},
                      routes={f"/a/{i}.html": {"delay": 2, "file": f"a/{i}.html"} for i in range(20)})
    db = tmp_path / "run.db"
    with serve_dir(site) as server:
        config = write_config_dir(tmp_path / "config", [source_toml(
            "slow", "rss", [server.base_url + "/feed.xml"], allowed_domains=["127.0.0.1"])],
            concurrent_requests_per_domain=1)
        module, *rest = NIGHTLY_COMMANDS[started_by][1:]
        proc = subprocess.Popen([sys.executable, "-m", module, "--db", str(db), "--config",
                                 str(config), *rest],
                                stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
        try:
            deadline = time.monotonic() + 30
            while not any("/a/" in r for r in server.requests) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert any("/a/" in r for r in server.requests), "the crawl never started"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 143
            assert "stopped by SIGTERM" in proc.stderr.read()
        finally:
            proc.kill()
        assert _processes_mentioning(str(db)) == [], "the crawl subprocess outlived its run"
    with Store(db) as store:
        assert [(r.kind, r.outcome) for r in store.runs.recent()] == [("run", "interrupted")]
    with RunLock(db, "run"):
        pass


def _running(pid: int) -> bool:
    """True while process pid exists and is not a zombie (a zombie has closed its files)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_a_run_killed_with_sigkill_takes_its_crawl_along_and_no_run_overlaps_it(
        tmp_path: Path) -> None:
    """kill -9 of `dealwatch run`: its crawl subprocess ends too, no second run can start
    while any process of the first is there, and the next run fetches only what was not stored."""
    from sitefixtures import article_html, rss_feed, serve_dir, source_toml, write_config_dir, write_site

    count = 20
    links = [f"{{{{base}}}}/a/{i}.html" for i in range(count)]
    site = write_site(tmp_path / "site", {"feed.xml": rss_feed(links),
                                          **{f"a/{i}.html": article_html(f"Story {i}") for i in range(count)}},
                      routes={f"/a/{i}.html": {"delay": 1, "file": f"a/{i}.html"} for i in range(count)})
    db = tmp_path / "run.db"
    cwd = Path(__file__).parent.parent
    with serve_dir(site) as server:
        sources = [source_toml("slow", "rss", [server.base_url + "/feed.xml"],
                               allowed_domains=["127.0.0.1"])]
        config = write_config_dir(tmp_path / "config", sources, concurrent_requests_per_domain=1,
                                  download_delay=0.2)
        command = [sys.executable, "-m", "pipeline.cli", "--db", str(db), "--config", str(config),
                   "run", "--model", "never"]
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 cwd=cwd)
        try:
            deadline = time.monotonic() + 60
            while not _stored_articles(db) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _stored_articles(db), "the crawl never stored an article"
            crawl = [pid for pid in _processes_mentioning(str(db)) if pid != first.pid]
            assert len(crawl) == 1, "no crawl subprocess found"
            refused = CliRunner().invoke(main, command[3:])
            assert refused.exit_code == 1
            assert f"(pid {first.pid}, its crawl pid {crawl[0]}, since" in refused.output
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
        finally:
            first.kill()
        deadline = time.monotonic() + 30
        while True:
            try:
                with RunLock(db, "run"):
                    assert not _running(crawl[0]), "a run could start while the killed run's crawl ran"
                break
            except RunLockedError:
                assert time.monotonic() < deadline, "the crawl subprocess outlived its run"
                time.sleep(0.02)
        stored = _stored_articles(db)
        before = len(server.requests)
        # the rest at once: no delay, every article in parallel
        fast = write_config_dir(tmp_path / "fast", sources, concurrent_requests_per_domain=count)
        second = subprocess.run([*command[:6], str(fast), *command[7:]], capture_output=True,
                                text=True, timeout=120, cwd=cwd, check=False)
        fetched_again = {server.base_url + r for r in server.requests[before:] if "/a/" in r}
    assert second.returncode == 0, second.stderr
    assert 0 < len(stored) < count, "the run was not killed half way"
    assert len(_stored_articles(db)) == count  # every story stored, once (pages.url is unique)
    assert fetched_again == set(_stored_articles(db)) - set(stored)
    with Store(db) as store:
        outcomes = [(r.kind, r.outcome) for r in store.runs.recent()]
    assert outcomes == [("run", "ok"), ("run", "aborted")]


def _stored_articles(db: Path) -> list[str]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute(
            "SELECT url FROM pages WHERE role = 'article' AND error IS NULL")]
    except sqlite3.OperationalError:  # the crawler has not created the schema yet
        return []
    finally:
        conn.close()


def test_a_subprocess_handed_the_lock_holds_it_until_it_exits(db_path: Path) -> None:
    lock = RunLock(db_path, "run")
    lock.acquire()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, pass_fds=(lock.inheritable_fd(),))
    try:
        lock.add_subprocess("crawl", child.pid)
        lock.release()  # the launching process lets go (or is killed): the child still holds it
        with pytest.raises(RunLockedError, match=rf"its crawl pid {child.pid}, since"):
            RunLock(db_path, "run").acquire()
    finally:
        child.communicate(timeout=10)
    with RunLock(db_path, "run"):
        pass


def test_a_crawl_whose_parent_is_already_gone_ends_at_once() -> None:
    # The run was killed while its crawl subprocess was still starting up.
    code = "from scrapers.lifetime import die_with_parent; die_with_parent(1); print('crawling')"
    orphan = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).parent.parent, check=False)
    assert orphan.returncode == -signal.SIGKILL and orphan.stdout == ""
