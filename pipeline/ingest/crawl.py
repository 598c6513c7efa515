"""Launches a crawl in a subprocess (Scrapy's reactor cannot restart) and reads back its report.

The subprocess lives no longer than its run: it shares the run's lock (so no other run can
start while it writes) and ends when the process that launched it ends (`die_with_parent`).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from models.config import Source
from models.errors import DealwatchError
from pipeline.config import Config, ConfigError
from pipeline.jobs.lock import held_lock

logger = logging.getLogger(__name__)

# The folder holding the `scrapers` package: the crawler runs from there so that a `scrapers`
# folder in the caller's working directory cannot shadow ours (`python -m` puts the cwd first).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STDERR_TAIL_LINES = 20
# <linux/prctl.h>: deliver a signal to this process when the thread that forked it ends.
PR_SET_PDEATHSIG = 1


class CrawlError(DealwatchError):
    """A crawl could not be started or did not report; the message is one line."""


class UnknownSourceError(CrawlError):
    """A source id asked for is not in sources.toml."""


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


def select_sources(config: Config, source_ids: list[str] | None = None) -> list[Source]:
    """The sources a crawl covers: those named (enabled or not), else every enabled one."""
    if source_ids:
        try:
            return [config.source(source_id) for source_id in dict.fromkeys(source_ids)]
        except ConfigError as exc:
            raise UnknownSourceError(str(exc)) from None
    sources = config.enabled_sources()
    if not sources:
        raise CrawlError(f"no enabled sources in {config.files['sources.toml']}")
    return sources


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


def crawl_command(config: Config, db_path: Path, source_ids: list[str] | None = None,
                  run_id: int | None = None, parent_pid: int | None = None) -> list[str]:
    """The command line of the crawl subprocess (paths made absolute: it runs elsewhere)."""
    cmd = [sys.executable, "-m", "scrapers.run", "--db", str(Path(db_path).resolve()),
           "--config", str(Path(config.directory).resolve())]
    for source_id in dict.fromkeys(source_ids or []):
        cmd += ["--source", source_id]
    if run_id is not None:
        cmd += ["--run-id", str(run_id)]
    if parent_pid is not None:
        cmd += ["--parent-pid", str(parent_pid)]
    return cmd


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Have signum sent to this process when process parent_pid ends, however it ends.

    SIGKILL by default: Scrapy takes SIGTERM as a graceful stop, which downloads every request
    already queued in its downloader first, minutes on a slow site. A killed crawl loses only
    the pages under way (each page is stored in its own transaction).

    On Linux the kernel sends it (prctl PR_SET_PDEATHSIG, through ctypes: the standard library
    has no prctl, and this one call needs no package); elsewhere a thread watches for the
    parent to go. A parent that ended before this call (the subprocess was still starting) is
    caught by comparing parent ids.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid, signum),
                         name="dealwatch-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def _watch_parent(parent_pid: int, signum: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.kill(os.getpid(), signum)


def run_crawl(config: Config, db_path: Path, source_ids: list[str] | None = None,
              run_id: int | None = None, timeout: float | None = None) -> CrawlReport:
    """Crawl the enabled (or the named) sources into the database at db_path.

    Raises CrawlError when the crawl cannot start, times out or ends without its report; a
    crawl that ran but had failures returns a report with ok False.
    """
    select_sources(config, source_ids)  # fail fast, before a process starts
    cmd = crawl_command(config, db_path, source_ids, run_id, parent_pid=os.getpid())
    # The run's lock goes to the subprocess too: should this process be killed, the crawl
    # keeps the lock until it has ended (killed by the parent-death signal) and stopped writing.
    lock = held_lock(db_path)
    pass_fds = (lock.inheritable_fd(),) if lock is not None else ()
    logger.info("starting crawl: %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=PROJECT_ROOT, pass_fds=pass_fds)
    except OSError as exc:
        raise CrawlError(f"cannot start the crawler: {exc}") from None
    with proc:
        if lock is not None:
            lock.add_subprocess("crawl", proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise CrawlError(f"crawl timed out after {timeout:g} s") from None
        except BaseException:  # Ctrl-C: the crawl goes with the run
            proc.kill()
            raise
    tail = _tail(stderr)
    data = _last_json_line(stdout)
    if data is None:
        last = tail.splitlines()[-1] if tail else "no output"
        raise CrawlError(f"crawler exited with status {proc.returncode} without a report: {last}")
    return CrawlReport(sources=data["sources"], ok=proc.returncode == 0 and bool(data.get("ok")),
                       returncode=proc.returncode, stderr_tail=tail, run_id=data.get("run_id"),
                       attention=data.get("attention", {}),
                       budget_exhausted=data.get("budget_exhausted"))
