"""The built-in scheduler: the nightly job, each run in a fresh process, never two at a time.

With a crawl frontier (`dealwatch schedule --redis URL`), the job at each scheduled time is
`dealwatch enqueue` instead: it fills the frontier, and crawl workers do the crawling.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from models.config import ScheduleSettings
from models.errors import DealwatchError
from pipeline.storage.database import DatabaseLocation
from pipeline.urls import is_database_url

logger = logging.getLogger(__name__)

JOB_ID = "dealwatch-nightly-run"

Clock = Callable[[], datetime]
Runner = Callable[[], int]


def trigger_for(settings: ScheduleSettings) -> CronTrigger:
    return CronTrigger.from_crontab(settings.cron, timezone=ZoneInfo(settings.timezone))


def missed_run(trigger: CronTrigger, last_started: datetime | None, now: datetime,
               grace: timedelta) -> datetime | None:
    """The latest scheduled time in (now - grace, now] at which no run started, if any.

    A run that started at or after that time (by hand, by cron or by the scheduler) means
    nothing was missed.
    """
    fire = trigger.get_next_fire_time(None, now - grace)
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    if latest is None or (last_started is not None and last_started >= latest):
        return None
    return latest


class ScheduleError(DealwatchError):
    """The scheduled job cannot be started as asked."""


def run_command(db_path: DatabaseLocation, config_dir: Path | None) -> list[str]:
    """The nightly job (pipeline.jobs.nightly) for this database and config, in a fresh Python
    process, as the scheduler starts it."""
    return [sys.executable, "-m", "pipeline.jobs.nightly", *_targets(db_path, config_dir)]


def _targets(db_path: DatabaseLocation, config_dir: Path | None) -> list[str]:
    return ["--db", _database_argument(db_path)] + (
        [] if config_dir is None else ["--config", str(Path(config_dir).resolve())])


def _database_argument(db_path: DatabaseLocation) -> str:
    """The database as the scheduled job's command line names it: a file by its absolute path,
    a PostgreSQL URL as it is, which must then carry no password (`ps` shows a command line to
    every user of the machine): libpq reads it from ~/.pgpass instead."""
    if not is_database_url(str(db_path)):
        return str(Path(db_path).resolve())
    from pipeline.storage.servers import redact  # loads the drivers: only for a URL

    url = str(db_path)
    if redact(url) != url:
        raise ScheduleError(
            f"{redact(url)}: the scheduled job's command line would carry the database "
            "password, which `ps` shows to every user; put it in ~/.pgpass (libpq's password "
            "file: host:port:database:user:password, mode 600) and give the URL without it")
    return url


def scheduled_job(db_path: DatabaseLocation, config_dir: Path | None, redis_url: str | None = None,
                  ) -> tuple[list[str], dict[str, str] | None]:
    """The command the scheduler starts at each scheduled time, and its environment (None: the
    scheduler's own): the nightly job; with a crawl frontier's Redis, `dealwatch enqueue`, in a
    fresh process too (it reads the config anew, as the nightly job does), the URL in its
    environment, never on its command line, where `ps` would show a password."""
    if redis_url is None:
        return run_command(db_path, config_dir), None
    return ([sys.executable, "-m", "pipeline.cli", *_targets(db_path, config_dir), "enqueue"],
            {**os.environ, "DEALWATCH_REDIS": redis_url})


class NightlyScheduler:
    """Runs the nightly job on the configured cron schedule, in the foreground.

    Each run is the nightly job in a subprocess (Scrapy's reactor cannot restart in one
    process), which takes the database's run lock: a run started by hand or by cron at the same
    time makes the later one exit with a clear message. Jobs coalesce and never overlap.
    """

    def __init__(self, settings: ScheduleSettings, command: list[str],
                 last_run_started: Callable[[], datetime | None],
                 clock: Clock | None = None, runner: Runner | None = None,
                 env: dict[str, str] | None = None):
        self.settings = settings
        self.command = command
        self.env = env
        self.last_run_started = last_run_started
        self.tz = ZoneInfo(settings.timezone)
        self.clock = clock or (lambda: datetime.now(self.tz))
        self.runner = runner or self._run_subprocess
        self.trigger = trigger_for(settings)
        self.scheduler = BackgroundScheduler(timezone=self.tz)
        self.scheduler.add_job(self.run_job, self.trigger, id=JOB_ID, name="dealwatch nightly run",
                               replace_existing=True, coalesce=True, max_instances=1,
                               misfire_grace_time=max(int(settings.catch_up_grace_hours * 3600), 1))
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.stopping = False

    # -- jobs --

    def run_job(self) -> int:
        if self.stopping:
            return 0
        logger.warning("starting the nightly run: %s", " ".join(self.command))
        code = self.runner()
        if code == 0:
            logger.warning("the nightly run finished")
        else:
            logger.error("the nightly run exited with status %d (see its output above)", code)
        return code

    def _run_subprocess(self) -> int:
        with self._lock:
            self._child = subprocess.Popen(self.command, env=self.env)
        try:
            return self._child.wait()
        finally:
            with self._lock:
                self._child = None

    def catch_up(self) -> bool:
        """Run once now when a scheduled run was missed within the grace period."""
        now = self.clock()
        grace = timedelta(hours=self.settings.catch_up_grace_hours)
        missed = missed_run(self.trigger, self.last_run_started(), now, grace)
        if missed is None:
            return False
        logger.warning("the run due at %s was missed; running it now", missed.isoformat())
        self.run_job()
        return True

    def next_run(self) -> datetime | None:
        now = self.clock()
        return self.trigger.get_next_fire_time(None, now)

    # -- foreground service --

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Stop cleanly: let a running job finish (up to stop_timeout_seconds), then exit."""
        if self.stopping:
            return
        self.stopping = True
        logger.warning("stopping (signal %s)", signum)
        threading.Thread(target=self._shutdown, name="dealwatch-stop", daemon=True).start()

    def _shutdown(self) -> None:
        with self._lock:
            child = self._child
        if child is not None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=self.settings.stop_timeout_seconds)
            except subprocess.TimeoutExpired:
                logger.error("the running job did not stop in %ss; killing it",
                             self.settings.stop_timeout_seconds)
                child.kill()
        self._stopped.set()

    def serve(self, on_ready: Callable[[datetime | None], None] | None = None) -> None:
        """Block until SIGTERM or SIGINT: catch up on a missed run, then follow the schedule."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            self.catch_up()
            if not self.stopping:
                # Jobs run in the scheduler's thread; this one only waits to be told to stop.
                self.scheduler.start()
                if on_ready:
                    on_ready(self.next_run())
            while not self._stopped.wait(1.0):
                pass
        finally:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
