"""dealwatch in processes of its own, for the worker tests (test_frontier, test_process_workers,
test_worker_reconnect, test_scale_e2e): started, waited for, read as they run, and killed when a
test ends before they do (conftest's `_no_process_left`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest.crawl import PROJECT_ROOT
from pipeline.storage import Store

TIMEOUT = 300  # generous: a slow shared machine is never a failure
DEADLINE = 120  # seconds to wait for a state the test needs; never a measure of speed

_started: list[subprocess.Popen[str]] = []


def dealwatch(db_path: Path | str, config_dir: Path, *args: str,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m pipeline.cli --db DB --config DIR ARGS…` as a process of its own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEALWATCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--db", str(db_path), "--config", str(config_dir),
         *args], cwd=PROJECT_ROOT, env={**clean, **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, encoding="utf-8")
    _started.append(proc)
    return proc


def worker(url: str, config_dir: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m pipeline.cli --db URL --config DIR process --worker --model never ARGS…`."""
    return dealwatch(url, config_dir, "process", "--worker", "--model", "never", *args)


def finished(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """The process's exit code and stderr, once it has ended (killed when it has not within
    TIMEOUT)."""
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err


def end_leftovers() -> None:
    """Kill the processes started here that are still running (a test failed before they
    ended): none goes on using a test's server or database after it."""
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)


def wait_for(ready: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None = None
             ) -> None:
    """Poll until ready() (a generous deadline: a slow machine is never a failure)."""
    deadline = time.monotonic() + DEADLINE
    while not ready():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the worker ended before {what}: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        time.sleep(0.1)


class Stderr(threading.Thread):
    """A process's stderr, read as it comes (to wait for a line while the process runs)."""

    def __init__(self, proc: subprocess.Popen[str]):
        super().__init__(daemon=True)
        self.proc, self.lines = proc, list[str]()
        self.start()

    def run(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(list(self.lines))

    def ended(self) -> tuple[int, str]:
        self.proc.wait(timeout=TIMEOUT)
        self.join(timeout=TIMEOUT)
        return self.proc.returncode, self.text()


def rows(url: str, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """The rows of a query on a database, through a Store of its own."""
    with Store(url) as store:
        return list(store.database.query(sql, params or []))


def claim_visible(url: str, pid: int) -> bool:
    """The worker process `pid` holds a claim on pages: its connection (application_name
    "dealwatch … pid N") holds row locks on the pages table in an open transaction."""
    return bool(rows(
        url, "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
             "WHERE a.application_name LIKE ? AND l.relation = 'pages'::regclass "
             "AND l.mode = 'RowShareLock' AND l.granted", [f"% pid {pid}"]))


def kill_once_claiming(url: str, doomed: subprocess.Popen[str]) -> None:
    """SIGKILL the worker as soon as its claim on a batch shows in pg_locks (mid-batch)."""
    deadline = time.monotonic() + TIMEOUT
    while not claim_visible(url, doomed.pid):
        assert doomed.poll() is None, doomed.communicate()[1]
        assert time.monotonic() < deadline, "the worker never claimed a batch"
        time.sleep(0.02)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(TIMEOUT)
