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
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from types import TracebackType

from models.errors import DealwatchError
from pipeline.storage.database import utcnow

logger = logging.getLogger(__name__)


class RunLockedError(DealwatchError):
    """Another dealwatch run holds the lock of this database."""


def lock_path(db_path: Path) -> Path:
    return Path(f"{db_path}.lock")


# The locks this process holds, by lock file: a subprocess launched for the run finds its lock.
_HELD: dict[Path, RunLock] = {}


def held_lock(db_path: Path) -> RunLock | None:
    """The run lock this process holds on the database at db_path, if it holds one."""
    return _HELD.get(lock_path(Path(db_path)).resolve())


class RunLock:
    """`with RunLock(db_path, "run"):` — raises RunLockedError when another run holds it."""

    def __init__(self, db_path: Path, what: str, shared: bool = False):
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
            held = self.holder()
            subprocesses = held.get("subprocesses")
            helpers = "".join(f", its {what} pid {pid}" for what, pid in
                              (subprocesses.items() if isinstance(subprocesses, dict) else ()))
            who = (f"`dealwatch {held.get('command', '?')}` (pid {held.get('pid', '?')}"
                   f"{helpers}, since {held.get('since', '?')})") if held else "another process"
            raise RunLockedError(
                f"another dealwatch run is using {self.path.name[:-5]}: {who}; "
                f"not starting `dealwatch {self.what}`") from None
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
