"""One writing run at a time per database: an advisory file lock beside the database file.

The kernel drops the lock when its process ends, however it ends (SIGKILL included), so a
crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from types import TracebackType

from models.errors import DealwatchError
from pipeline.store_registry import utcnow

logger = logging.getLogger(__name__)


class RunLockedError(DealwatchError):
    """Another dealwatch run holds the lock of this database."""


def lock_path(db_path: Path) -> Path:
    return Path(f"{db_path}.lock")


class RunLock:
    """`with RunLock(db_path, "run"):` — raises RunLockedError when another run holds it."""

    def __init__(self, db_path: Path, what: str):
        self.path = lock_path(Path(db_path))
        self.what = what
        self._fd: int | None = None

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
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            held = self.holder()
            who = (f"`dealwatch {held.get('command', '?')}` (pid {held.get('pid', '?')}, "
                   f"since {held.get('since', '?')})") if held else "another process"
            raise RunLockedError(
                f"another dealwatch run is using {self.path.name[:-5]}: {who}; "
                f"not starting `dealwatch {self.what}`") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "command": self.what,
            "since": utcnow(),
        }).encode())
        self._fd = fd
        logger.debug("took %s", self.path)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
