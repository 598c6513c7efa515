"""A worker's retries with backoff on a server that stopped answering: Redis or the database.

Crawl workers retry the frontier's Redis (jobs.frontier), and both kinds of worker reconnect to
a PostgreSQL database that went away (`Reconnection`): after RETRY_FIRST seconds, then twice as
long each time up to RETRY_CAP, each retry an info line, for the worker's patience in all
(`[frontier] redis_retry_seconds`, `[database] reconnect_seconds`), counted from the first
failure; then one line, `lost SERVER: REASON; gave up after N tries over S s`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from models.errors import DealwatchError
from pipeline.storage import Store, StoreError
from pipeline.storage.database import DatabaseLocation, shown_location
from pipeline.storage.lock import RunLock

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The first wait before trying an unanswering server again, and the longest (it doubles between).
RETRY_FIRST = 0.5
RETRY_CAP = 8.0

class Retried(Protocol):
    """What a worker calls its server through: retried("what it is doing", call)."""

    def __call__(self, what: str, call: Callable[[], T], /) -> T: ...


def once(what: str, call: Callable[[], T], /) -> T:
    """call(), not retried (a Retried for work that has nothing to reconnect)."""
    return call()


def with_backoff(call: Callable[[], T], *, patience: float, lost: Callable[[Exception], bool],
                 reason: Callable[[Exception], str], server: str, what: str,
                 gave_up: Callable[[str], DealwatchError],
                 sleep: Callable[[float], object] = time.sleep) -> T:
    """call(), tried again while it fails with an error that `lost` says is the server's
    absence: after RETRY_FIRST seconds, doubling up to RETRY_CAP, each retry logged ("SERVER
    does not answer while WHAT (REASON)"), for `patience` seconds from the first failure; then
    gave_up("lost SERVER: REASON; gave up after N tries over S s"), raised. Other errors are
    raised as they are."""
    started: float | None = None
    wait, tries = RETRY_FIRST, 0
    while True:
        tries += 1
        try:
            return call()
        except Exception as exc:
            if not lost(exc):
                raise
            now = time.monotonic()
            started = now if started is None else started
            spent, why = now - started, reason(exc)
            if spent + wait > patience:
                raise gave_up(f"lost {server}: {why}; gave up after {tries} "
                              f"{'try' if tries == 1 else 'tries'} over {spent:.1f} s") from None
            logger.info("%s does not answer while %s (%s); trying again in %g s", server, what,
                        why, wait)
            sleep(wait)
            wait = min(wait * 2, RETRY_CAP)


class DatabaseLost(StoreError):
    """A worker's database server stayed away longer than [database] reconnect_seconds."""


class Reconnection:
    """A worker's hold on its database, the run lock and the store, taken again when the
    PostgreSQL server went away (a restart, a failover): `retried(what, call)` reconnects and
    calls again, with backoff, while the server does not answer.

    The Store object is kept (Store.reopen), so whatever holds it (the run's row, the
    processor) goes on over the new connection. What was in flight when the connection broke
    was rolled back by the server; the caller does it again. On SQLite nothing goes away:
    `retried` calls once."""

    def __init__(self, location: DatabaseLocation, lock: RunLock, store: Store, patience: float):
        self.location, self.lock, self.store, self.patience = location, lock, store, patience
        self.shown = shown_location(location)

    def lost(self, exc: Exception) -> bool:
        """The error is the server's absence: the store's connection is gone, and the error is
        the store's "cannot reach the database at …" or the driver's (a connection closed)."""
        if not self.store.database.closed:
            return False
        if isinstance(exc, StoreError):
            return str(exc).startswith("cannot reach the database at ")
        psycopg = sys.modules.get("psycopg")  # loaded with the server's store
        return psycopg is not None and isinstance(exc, psycopg.OperationalError)

    def reason(self, exc: Exception) -> str:
        """Why, in a few words: what follows the URL in the store's line, or the driver's
        first line (which names no password: libpq's messages carry none)."""
        text = str(exc).strip()
        after = text.partition(f"{self.shown}: ")[2]
        return after or (text.splitlines()[0] if text else type(exc).__name__)

    def retried(self, what: str, call: Callable[[], T], /) -> T:
        def attempt() -> T:
            if self.store.database.closed:
                self.reconnect()
            return call()

        return with_backoff(attempt, patience=self.patience, lost=self.lost, reason=self.reason,
                            server=f"the database at {self.shown}", what=what,
                            gave_up=DatabaseLost)

    def reconnect(self) -> None:
        """The run lock taken again (the server let go of it with the connection; a run that
        took it alone meanwhile refuses this worker), then the store opened again."""
        self.lock.release()
        self.lock.acquire()
        self.store.reopen()
        logger.info("connected again to the database at %s", self.shown)


__all__ = ["RETRY_CAP", "RETRY_FIRST", "DatabaseLost", "Reconnection", "Retried", "once",
           "with_backoff"]
