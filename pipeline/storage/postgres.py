"""The PostgreSQL store: the same repositories over a server, through psycopg 3.

`PostgresDatabase` gives the repositories what `SqliteDatabase` gives them (storage.database):
statements with `?` parameters (rewritten to psycopg's `%s` once per text, and cached),
transactions with savepoints when nested, a snapshot, migrations, and the dialect's fragments.
Why and how it differs from SQLite is written down in docs/scaling.md ("PostgreSQL backend").

- Schema: `schema_postgres.sql`, the whole schema as of migration 15, recorded as versions 1-15,
  so both backends report one version number; later migrations give a step for each backend.
- Writers: SQLite has one writer at a time, and the review and registry transactions rely on it
  (two confirmations of one deal must not each find no deal and file two). Here a transaction
  takes a transaction-scoped advisory lock for the same rule, unless it says it is `concurrent`
  (processing and crawl writes, which row locks and unique keys keep apart), so that two
  processing workers do not run one after the other.
- Reviewers' accounts live in the schema `accounts`, which the statements already name.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from pipeline.storage.database import (
    MIGRATE_LOCK,
    WRITER_LOCK,
    Database,
    StoreBusy,
    StoreConflict,
    StoreError,
    busy_message,
    is_busy,
    utcnow,
)
from pipeline.storage.dialect import POSTGRESQL
from pipeline.storage.schema import MIGRATIONS
from pipeline.storage.servers import (
    ServerError,
    check_postgres,
    connect_postgres,
    postgres_problem,
    redact,
)

logger = logging.getLogger(__name__)

# The version the baseline schema stands for, and the steps after it (version: SQL).
BASELINE_VERSION = 15
POSTGRES_STEPS: dict[int, str] = {}

_PLACEHOLDER = re.compile(r"\?")
# A word of a command line that may name the connection (`serve`, `process`, `review`).
_COMMAND_WORD = re.compile(r"[a-z][a-z0-9-]{0,30}")


@lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """`?` parameters as psycopg's `%s`, and a literal `%` as `%%` (repository SQL keeps both out
    of its string literals: tests/test_sql_portable.py)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


def _param(value: Any) -> Any:
    # Flags are integers in both schemas: a Python bool would be sent as a PostgreSQL boolean.
    return int(value) if isinstance(value, bool) else value


def baseline_sql() -> str:
    return resources.files("pipeline.storage").joinpath("schema_postgres.sql").read_text("utf-8")


class PostgresDatabase(Database):
    """A dealwatch database on a PostgreSQL server. Opening it applies any pending migrations."""

    dialect = POSTGRESQL

    def __init__(self, url: str, busy_timeout_ms: int = 10_000, migrate: bool = True):
        self.url = url
        self.location = redact(url)
        self.path = None
        self.accounts_error = None
        self._closed = False
        # A pool this process keeps for the URL (the web app's): a connection borrowed for the
        # life of this object, given back by close(); else a connection of its own.
        self._pool = _POOLS.get((url, int(busy_timeout_ms)))
        if self._pool is not None:
            self.conn = _borrow(self._pool, url)
        else:
            try:
                self.conn = connect_postgres(url, autocommit=True,
                                             application_name=_application_name())
            except ServerError as exc:
                raise StoreError(str(exc)) from None
            try:
                _configure(self.conn, busy_timeout_ms)
            except psycopg.Error as exc:
                self.conn.close()
                raise StoreError(postgres_problem(url, exc)) from None
        self._savepoints = 0
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self._closed:
            return  # a connection given back twice would go to two borrowers
        self._closed = True
        if self._pool is not None:
            self._pool.putconn(self.conn)  # rolled back, or closed if broken, by the pool
        else:
            self.conn.close()

    @property
    def closed(self) -> bool:
        return self._closed or self.conn.closed

    # -- statements --

    @contextmanager
    def _driver_errors(self) -> Iterator[None]:
        """A unique key's refusal as StoreConflict, a lock waited out as StoreBusy (what the
        layers above catch, whichever the backend); the driver's error stays their cause."""
        try:
            yield
        except psycopg.errors.UniqueViolation as exc:
            raise StoreConflict(f"{self.location}: {exc}") from exc
        except psycopg.Error as exc:
            if is_busy(exc):
                raise StoreBusy(f"{self.location}: {busy_message(exc)}") from exc
            if self.conn.broken:  # the server went away (a restart): one line, not a traceback
                raise StoreError(postgres_problem(self.url, exc)) from exc
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        with self._driver_errors():
            if not params:
                return self.conn.execute(sql)
            return self.conn.execute(translate(sql), [_param(p) for p in params])

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        with self._driver_errors():
            cursor = self.conn.cursor(row_factory=dict_row)
            if params:
                cursor.execute(translate(sql), [_param(p) for p in params])
            else:
                cursor.execute(sql)
            return iter(cursor.fetchall())

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._driver_errors(), self.conn.cursor() as cursor:
            cursor.executemany(translate(sql), [[_param(p) for p in row] for row in rows])

    def table_names(self) -> list[str]:
        return [row[0] for row in self.conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name").fetchall()]

    # -- transactions --

    def _in_transaction(self) -> bool:
        # UNKNOWN: a connection lost, where no ROLLBACK can go.
        return self.conn.info.transaction_status not in (pq.TransactionStatus.IDLE,
                                                          pq.TransactionStatus.UNKNOWN)

    @contextmanager
    def transaction(self, immediate: bool = True, concurrent: bool = False) -> Iterator[None]:
        """A transaction (a savepoint when nested): all of it is written, or none of it.

        Unless `concurrent`, it first takes the writer lock, one such transaction at a time, as
        SQLite's BEGIN IMMEDIATE does; a writer that waits longer than the busy timeout fails
        with StoreBusy. `immediate` is SQLite's (a transaction on the accounts file alone).
        """
        if self._in_transaction():
            self._savepoints += 1
            name = f"sp{self._savepoints}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self.conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        self.execute("BEGIN")  # through _driver_errors, as COMMIT: a lost server is one line
        try:
            if not concurrent:  # waited out: StoreBusy, as any statement (_driver_errors)
                self.execute("SELECT pg_advisory_xact_lock(?)", [WRITER_LOCK])
            yield
        except BaseException:
            if self._in_transaction():
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.execute("COMMIT")
        except BaseException:
            if self._in_transaction():
                self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A consistent read of several queries, never blocking writers."""
        if self._in_transaction():
            yield
            return
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            yield
        finally:
            if self._in_transaction():
                self.conn.execute("COMMIT")

    # -- schema --

    def migrate(self) -> list[tuple[int, str]]:
        """Create the schema on an empty database, then apply newer steps, each in its own
        transaction, while holding the migration lock (several servers may start at once)."""
        applied: list[tuple[int, str]] = []
        names = {version: name for version, name, _step in MIGRATIONS}
        try:
            self.conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK])
            try:
                if self.schema_version() == 0:
                    with self.transaction(concurrent=True):
                        self.conn.execute(
                            "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY "
                            "KEY, name text NOT NULL, applied_at text NOT NULL)")
                        self.conn.execute(baseline_sql())
                        now = utcnow()
                        with self.conn.cursor() as cursor:
                            cursor.executemany(
                                "INSERT INTO schema_migrations (version, name, applied_at) "
                                "VALUES (%s, %s, %s)",
                                [(v, names[v], now) for v in range(1, BASELINE_VERSION + 1)])
                    applied += [(v, names[v]) for v in range(1, BASELINE_VERSION + 1)]
                for version, name, _step in MIGRATIONS:
                    if version <= self.schema_version():
                        continue
                    with self.transaction(concurrent=True):
                        self.conn.execute(POSTGRES_STEPS[version])
                        self.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                                     "VALUES (?, ?, ?)", [version, name, utcnow()])
                    logger.info("applied migration %d: %s", version, name)
                    applied.append((version, name))
            finally:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK])
        except psycopg.Error as exc:
            raise StoreError(postgres_problem(self.url, exc, doing="migrate")) from None
        latest = MIGRATIONS[-1][0]
        if self.schema_version() > latest:
            raise StoreError(
                f"{self.location}: database schema {self.schema_version()} is newer than this "
                f"dealwatch ({latest}); upgrade dealwatch")
        return applied


# The pools of this process, one per (URL, busy timeout): see pool_connections.
_POOLS: dict[tuple[str, int], ConnectionPool[psycopg.Connection[Any]]] = {}
_POOLS_LOCK = threading.Lock()


def pool_connections(url: str, size: int, busy_timeout_ms: int = 10_000) -> None:
    """From now on, every database this process opens at `url` with this busy timeout borrows a
    connection from one pool of at most `size` and gives it back when closed, instead of making
    a server connection of its own: for the web app, which opens a store per request.

    A connection is made and configured once (lock timeout, application name), and checked when
    borrowed: one the server dropped (a restart) is replaced, never handed out. A borrower waits
    at most the busy timeout for a free connection. Calling it again for the same pool does
    nothing."""
    key = (url, int(busy_timeout_ms))
    with _POOLS_LOCK:
        if key in _POOLS:
            return
        # The pool's own INFO lines come for every borrow: too many for `-v`.
        logging.getLogger("psycopg.pool").setLevel(logging.WARNING)

        def configure(conn: psycopg.Connection[Any]) -> None:
            _configure(conn, busy_timeout_ms)

        _POOLS[key] = ConnectionPool(
            url, min_size=1, max_size=size, open=True, name=f"dealwatch {redact(url)}",
            kwargs={"autocommit": True, "application_name": _application_name(),
                    "connect_timeout": 10},
            configure=configure, check=ConnectionPool.check_connection,
            timeout=busy_timeout_ms / 1000)


def close_pools() -> None:
    """Close this process's pools and their connections (a server shutting down, a test)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _borrow(pool: ConnectionPool[psycopg.Connection[Any]], url: str) -> psycopg.Connection[Any]:
    """A working connection from the pool; when none comes within its timeout, StoreError in one
    line: the server's refusal if it cannot be reached, else StoreBusy (every connection in use)."""
    try:
        return pool.getconn()
    except PoolTimeout:
        try:
            check_postgres(url, timeout=2)
        except ServerError as exc:
            raise StoreError(str(exc)) from None
        raise StoreBusy(f"{redact(url)}: all {pool.max_size} connections of this process stayed "
                        f"busy for {pool.timeout:g} s") from None


def _configure(conn: psycopg.Connection[Any], busy_timeout_ms: int) -> None:
    """Session settings every connection starts with: how long a statement waits for a lock."""
    conn.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")


def _application_name() -> str:
    """How this connection shows in pg_stat_activity (and in a refusal naming a lock's holder):
    `dealwatch serve pid 123`. Only the plain words of the command line: never an option or its
    value, which may be a URL with a password (`--db=postgresql://user:secret@…`)."""
    words = [arg for arg in sys.argv[1:] if _COMMAND_WORD.fullmatch(arg)]
    command = " ".join(["dealwatch", *words])[:50]  # with the pid, within PostgreSQL's 63 bytes
    return f"{command} pid {os.getpid()}"
