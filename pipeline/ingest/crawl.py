"""Launches a crawl in a subprocess (Scrapy's reactor cannot restart) and reads back its report.

The subprocess lives no longer than its run: it shares the run's lock (so no other run can
start while it writes) and ends when the process that launched it ends
(`scrapers.lifetime.die_with_parent`). Asked to, it reports each source's progress as it goes
(scrapers.progress), which is handed to a callback line by line.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pipeline.config import Config
from pipeline.storage.database import DatabaseLocation
from pipeline.storage.lock import held_lock
from pipeline.urls import is_database_url
from scrapers.progress import SourceProgress

# The crawler defines these (it runs without this module); callers may still name them here.
from scrapers.sources import CrawlError, select_sources

logger = logging.getLogger(__name__)

# What hears each source's progress while the crawl goes on.
OnProgress = Callable[[SourceProgress], None]
# Seconds between a source's progress lines, when someone listens.
PROGRESS_EVERY = 1.0

# The folder holding the `scrapers` package: the crawler runs from there so that a `scrapers`
# folder in the caller's working directory cannot shadow ours (`python -m` puts the cwd first).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STDERR_TAIL_LINES = 20
STDERR_KEPT = 10 * STDERR_TAIL_LINES  # lines of stderr held while a crawl runs


@dataclass
class CrawlReport:
    """What `python -m scrapers.run` reported: counters per source id (see scrapers/run.py)."""

    sources: dict[str, dict[str, int | dict]]
    ok: bool
    returncode: int
    stderr_tail: str
    run_id: int | None = None
    # source id -> why that source needs a human's attention (only sources that do)
    attention: dict[str, str] = field(default_factory=dict)
    # why the run's request/time budget stopped the crawl early (None: it did not)
    budget_exhausted: str | None = None


@dataclass(frozen=True)
class SharedUrlsAt:
    """Where a crawl worker's crawl finds the night's shared article URLs."""

    redis_url: str
    night: str


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _last_json_line(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and "sources" in data:
                return data
    return None


def crawl_command(config: Config, db_path: DatabaseLocation, source_ids: list[str] | None = None,
                  run_id: int | None = None, parent_pid: int | None = None,
                  progress_every: float | None = None, shared_urls: str | None = None,
                  ) -> list[str]:
    """The command line of the crawl subprocess (paths made absolute: it runs elsewhere). A
    database URL is not on it (`ps` would show its password): crawl_env passes it."""
    database = [] if is_database_url(str(db_path)) else ["--db", str(Path(db_path).resolve())]
    cmd = [sys.executable, "-m", "scrapers.run", *database,
           "--config", str(Path(config.directory).resolve())]
    for source_id in dict.fromkeys(source_ids or []):
        cmd += ["--source", source_id]
    if run_id is not None:
        cmd += ["--run-id", str(run_id)]
    if parent_pid is not None:
        cmd += ["--parent-pid", str(parent_pid)]
    if progress_every:
        cmd += ["--progress-every", f"{progress_every:g}"]
    if shared_urls:
        cmd += ["--shared-urls", shared_urls]
    return cmd


def _pump(stream: IO[str], into: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            into.put(line)
    finally:  # the reader hears the end however the stream ends, or the run would wait forever
        into.put(None)


def _keep_end(stream: IO[str], into: deque[str]) -> None:
    """Keep the end of stderr (what a failed crawl's message quotes), however long it runs."""
    into.extend(stream)


def _communicate(proc: subprocess.Popen[str], timeout: float | None,
                 on_progress: OnProgress | None) -> tuple[str, str]:
    """Popen.communicate that hands each progress line on stdout to on_progress as it comes
    (in this thread); stdout's other lines and stderr are returned.

    Raises TimeoutExpired after timeout seconds; then, and when interrupted (Ctrl-C, SIGTERM),
    the crawl is killed first."""
    assert proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    errors: deque[str] = deque(maxlen=STDERR_KEPT)
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True),
             threading.Thread(target=_keep_end, args=(proc.stderr, errors), daemon=True)]
    for pump in pumps:
        pump.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    out: list[str] = []
    try:
        while (line := _next_line(lines, deadline, proc, timeout)) is not None:
            progress = SourceProgress.from_line(line)
            if progress is None:
                out.append(line)
            elif on_progress is not None:
                try:
                    on_progress(progress)
                except Exception:  # showing progress must not stop the crawl
                    logger.exception("cannot show the crawl's progress; it goes on without")
                    on_progress = None
        proc.wait(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.1))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        for pump in pumps:  # at the end of their streams once the crawl has ended
            pump.join(timeout=10)
    return "".join(out), "".join(errors)


def _next_line(lines: queue.Queue[str | None], deadline: float | None,
               proc: subprocess.Popen[str], timeout: float | None) -> str | None:
    """The next line of stdout; None at its end."""
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0)
        try:  # short waits: Ctrl-C and SIGTERM are heard between them
            return lines.get(timeout=0.5 if left is None else min(left, 0.5))
        except queue.Empty:
            continue


def crawl_env(db_path: DatabaseLocation, shared_urls: SharedUrlsAt | None = None
              ) -> dict[str, str] | None:
    """The crawl subprocess's environment, when it needs more than this process's: a database
    URL (DEALWATCH_DB) and the frontier's Redis (DEALWATCH_REDIS), never on its command line."""
    extra = {"DEALWATCH_DB": str(db_path)} if is_database_url(str(db_path)) else {}
    if shared_urls:
        extra["DEALWATCH_REDIS"] = shared_urls.redis_url
    return {**os.environ, **extra} if extra else None


def run_crawl(config: Config, db_path: DatabaseLocation, source_ids: list[str] | None = None,
              run_id: int | None = None, timeout: float | None = None,
              on_progress: OnProgress | None = None,
              progress_every: float = PROGRESS_EVERY,
              shared_urls: SharedUrlsAt | None = None) -> CrawlReport:
    """Crawl the enabled (or the named) sources into the database at db_path.

    shared_urls: a crawl worker's, the Redis and night of the crawl frontier's article URLs, so
    that no article another worker took is fetched again (the URL goes to the crawler in its
    environment, never on its command line, where `ps` would show a password).

    on_progress hears each source's progress (when it starts, every progress_every seconds
    while it changes, when it finishes). Raises CrawlError when the crawl cannot start, times
    out or ends without its report; a crawl that ran but had failures returns a report with ok
    False.
    """
    select_sources(config, source_ids)  # fail fast, before a process starts
    cmd = crawl_command(config, db_path, source_ids, run_id, parent_pid=os.getpid(),
                        progress_every=progress_every if on_progress else None,
                        shared_urls=shared_urls.night if shared_urls else None)
    env = crawl_env(db_path, shared_urls)
    # The run's lock goes to the subprocess too: should this process be killed, the crawl
    # keeps the lock until it has ended (killed by the parent-death signal) and stopped writing.
    lock = held_lock(db_path)
    pass_fds = (lock.inheritable_fd(),) if lock is not None else ()
    logger.info("starting crawl: %s", " ".join(cmd))
    try:
        # errors="replace": one byte that is not UTF-8 (a library's stray print) must not kill
        # the thread reading the pipe
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                encoding="utf-8", errors="replace", cwd=PROJECT_ROOT,
                                pass_fds=pass_fds, env=env)
    except OSError as exc:
        raise CrawlError(f"cannot start the crawler: {exc}") from None
    with proc:
        if lock is not None:
            lock.add_subprocess("crawl", proc.pid)
        try:  # killed on a timeout, and on Ctrl-C: the crawl goes with the run
            stdout, stderr = _communicate(proc, timeout, on_progress)
        except subprocess.TimeoutExpired:
            raise CrawlError(f"crawl timed out after {timeout:g} s") from None
    tail = _tail(stderr)
    data = _last_json_line(stdout)
    if data is None:
        last = tail.splitlines()[-1] if tail else "no output"
        raise CrawlError(f"crawler exited with status {proc.returncode} without a report: {last}")
    return CrawlReport(sources=data["sources"], ok=proc.returncode == 0 and bool(data.get("ok")),
                       returncode=proc.returncode, stderr_tail=tail, run_id=data.get("run_id"),
                       attention=data.get("attention", {}),
                       budget_exhausted=data.get("budget_exhausted"))
