"""One writing run at a time per database: an advisory file lock beside the database file.

The kernel drops the lock when its process ends, however it ends (SIGKILL included), so a
crashed run never leaves a stale lock behind. A flock belongs to the open file, not to the
process: a subprocess handed the lock's descriptor (`inheritable_fd`, for `pass_fds`) holds the
lock with its run, so a run killed before its crawl subprocess ends stays locked until that
subprocess has ended too.

Crawl workers (`dealwatch crawl --worker`, docs/scaling.md) take the lock shared: any number of
them write at once (SQLite's WAL and busy timeout order their writes; the crawl frontier keeps
them off each other's sources and articles). Every other run takes it exclusive: it is refused
while a worker is at work, and a worker is refused while it runs.

On PostgreSQL the lock is a session advisory lock (`pg_try_advisory_lock`, `…_shared` for
workers) on a connection of its own, held for the run; the server drops it when that connection
closes, however the process ends. The holder names itself in its connection's application_name
("dealwatch run pid 123 since 2026-…"), which a refused run reads from pg_locks and
pg_stat_activity. A crawl subprocess cannot inherit a session; it dies with its parent
(scrapers/lifetime.py), so the parent's lock covers it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
from pathlib import Path
from types import TracebackType
from typing import Any

from models.errors import DealwatchError
from pipeline.storage.database import (
    RUN_LOCK,
    DatabaseLocation,
    StoreError,
    shown_location,
    utcnow,
)
from pipeline.urls import is_database_url

logger = logging.getLogger(__name__)


class RunLockedError(DealwatchError):
    """Another dealwatch run holds the lock of this database."""


def lock_path(db_path: Path) -> Path:
    return Path(f"{db_path}.lock")


# The locks this process holds, by lock file: a subprocess launched for the run finds its lock.
_HELD: dict[Path, RunLock] = {}


def held_lock(db_path: DatabaseLocation) -> RunLock | None:
    """The run lock this process holds on the database at db_path, if it holds one (a file
    lock: a server's lock is a session, which no subprocess can share)."""
    if is_database_url(str(db_path)):
        return None
    return _HELD.get(lock_path(Path(db_path)).resolve())


def refusal(database: str, holder: dict[str, Any], what: str) -> RunLockedError:
    """`another dealwatch run is using DATABASE: `dealwatch run` (pid 123, since …); not
    starting `dealwatch WHAT``, from what the holder said of itself."""
    subprocesses = holder.get("subprocesses")
    helpers = "".join(f", its {name} pid {pid}" for name, pid in
                      (subprocesses.items() if isinstance(subprocesses, dict) else ()))
    who = (f"`dealwatch {holder.get('command', '?')}` (pid {holder.get('pid', '?')}"
           f"{helpers}, since {holder.get('since', '?')})") if holder else "another process"
    return RunLockedError(f"another dealwatch run is using {database}: {who}; "
                          f"not starting `dealwatch {what}`")


def run_lock(location: DatabaseLocation, what: str, shared: bool = False) -> RunLock:
    """The run lock of the database at this location: a file lock beside a SQLite file, an
    advisory lock on a PostgreSQL server."""
    if is_database_url(str(location)):
        return ServerRunLock(location, what, shared)
    return RunLock(location, what, shared)


class RunLock:
    """`with RunLock(db_path, "run"):` — raises RunLockedError when another run holds it."""

    def __init__(self, db_path: DatabaseLocation, what: str, shared: bool = False):
        self.path = lock_path(Path(db_path))
        self.what = what
        self.shared = shared
        self._fd: int | None = None
        self._holder: dict[str, object] = {}
        self._subprocesses: dict[str, int] = {}

    def holder(self) -> dict[str, object]:
        """What the holder wrote into the lock file (pid, command, since), if readable."""
        try:
            return dict(json.loads(self.path.read_text(encoding="utf-8") or "{}"))
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise refusal(self.path.name[:-5], self.holder(), self.what) from None
        self._fd = fd
        self._holder = {"pid": os.getpid(), "command": self.what, "since": utcnow()}
        self._write_holder()
        _HELD[self.path.resolve()] = self
        logger.debug("took %s", self.path)

    def _write_holder(self) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        holder = {**self._holder, "subprocesses": self._subprocesses} if self._subprocesses \
            else self._holder
        os.pwrite(self._fd, json.dumps(holder).encode(), 0)

    def inheritable_fd(self) -> int:
        """The locked descriptor, for `subprocess.Popen(pass_fds=...)`: the subprocess then
        holds the lock until it exits, whatever becomes of this process."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not held")
        return self._fd

    def add_subprocess(self, what: str, pid: int) -> None:
        """Name a subprocess that shares the lock, for the message a refused run prints."""
        if self._fd is not None:
            self._subprocesses[what] = pid
            self._write_holder()

    def release(self) -> None:
        """Close the descriptor. No LOCK_UN: that would unlock a subprocess's copy as well;
        the lock is free once every process holding the descriptor has closed it."""
        if self._fd is not None:
            _HELD.pop(self.path.resolve(), None)
            os.close(self._fd)
            self._fd = None
            self._subprocesses = {}

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


# How a holder names itself in application_name (at most 63 bytes: PostgreSQL cuts the rest).
_HOLDER = re.compile(r"^dealwatch (?P<command>.+) pid (?P<pid>\d+) since (?P<since>\S+)$")


class ServerRunLock(RunLock):
    """The run lock of a PostgreSQL database: a session advisory lock on a connection of its
    own, exclusive, or shared for crawl workers."""

    def __init__(self, db_path: DatabaseLocation, what: str, shared: bool = False):
        self.url = str(db_path)
        self.what = what
        self.shared = shared
        self._conn: Any = None

    def holder(self) -> dict[str, object]:
        """Another holder of the lock (a shared one: this process holds it too), if any."""
        return self._holder_of(self._conn) if self._conn is not None else {}

    def _holder_of(self, conn: Any) -> dict[str, object]:
        """Who holds the lock, as its connection's application_name says (pid, command, since)."""
        rows = conn.execute(
            "SELECT a.application_name, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = %s AND l.objid = %s AND l.pid <> pg_backend_pid() "
            "ORDER BY a.backend_start",
            [RUN_LOCK >> 32, RUN_LOCK & 0xFFFF_FFFF]).fetchall()
        for name, _backend in rows:
            found = _HOLDER.match(name or "")
            if found:
                return {"pid": int(found["pid"]), "command": found["command"],
                        "since": found["since"]}
        return {}

    def acquire(self) -> None:
        import psycopg  # only for a server

        from pipeline.storage.servers import ServerError, connect_postgres, postgres_problem

        name = f"dealwatch {self.what} pid {os.getpid()} since {utcnow()}"
        try:
            conn = connect_postgres(self.url, autocommit=True, application_name=name)
        except ServerError as exc:
            raise StoreError(str(exc)) from None
        try:
            take = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
            taken = conn.execute(f"SELECT {take}(%s)", [RUN_LOCK]).fetchone()
            held = None if taken and taken[0] else self._holder_of(conn)
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(postgres_problem(self.url, exc)) from None
        if held is not None:
            conn.close()
            raise refusal(shown_location(self.url), held, self.what)
        self._conn = conn
        logger.debug("took the run lock of %s", shown_location(self.url))

    def inheritable_fd(self) -> int:
        raise RuntimeError("a PostgreSQL run lock is a session: no subprocess can share it")

    def add_subprocess(self, what: str, pid: int) -> None:
        """Nothing to note: the subprocess dies with this process (scrapers/lifetime.py)."""

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # Unlocked before the connection closes: its backend ends after close() returns,
            # and a run started at once would find the lock still held until then.
            with contextlib.suppress(Exception):  # a lost connection has let go already
                conn.execute("SELECT pg_advisory_unlock_all()")
            conn.close()
