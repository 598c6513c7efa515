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

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from pipeline.storage.database import (
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
from pipeline.storage.servers import ServerError, connect_postgres, postgres_problem, redact

logger = logging.getLogger(__name__)

# The version the baseline schema stands for, and the steps after it (version: SQL).
BASELINE_VERSION = 15
POSTGRES_STEPS: dict[int, str] = {}

# Advisory lock keys (one 64-bit key space per database): "dw" in the high bytes, then the lock.
WRITER_LOCK = 0x6477_0001
MIGRATE_LOCK = 0x6477_0002

_PLACEHOLDER = re.compile(r"\?")


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
        try:
            self.conn = connect_postgres(url, autocommit=True, application_name=_application_name())
        except ServerError as exc:
            raise StoreError(str(exc)) from None
        try:
            self.conn.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")
        except psycopg.Error as exc:
            self.conn.close()
            raise StoreError(postgres_problem(url, exc)) from None
        self._savepoints = 0
        if migrate:
            self.migrate()

    def close(self) -> None:
        self.conn.close()

    @property
    def closed(self) -> bool:
        return self.conn.closed

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
                raise StoreBusy(busy_message(exc)) from exc
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
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

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
        self.conn.execute("BEGIN")
        try:
            if not concurrent:
                try:
                    self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITER_LOCK])
                except psycopg.errors.LockNotAvailable as exc:
                    raise StoreBusy(f"{self.location}: {busy_message(exc)}") from None
            yield
        except BaseException:
            if self._in_transaction():
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
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
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
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


def _application_name() -> str:
    """How this connection shows in pg_stat_activity (and in a refusal naming a lock's holder)."""
    with contextlib.suppress(Exception):
        import sys
        command = " ".join(os.path.basename(a) for a in sys.argv[:2])
        return f"dealwatch {command} pid {os.getpid()}"[:63]
    return f"dealwatch pid {os.getpid()}"
