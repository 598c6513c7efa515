"""The database: its connection, migrations and transactions, on SQLite or on PostgreSQL.

Every repository (pages, articles, candidates, reviews, registry, accounts, runs) works over one
Database through `execute`, `query` and `executemany`, with `?` parameters, and the few fragments
that differ between the engines come from its `dialect`; the helpers here are how they all write
JSON columns, times and hashes. `open_database(location)` (storage.backends) picks the backend: a file path is
`SqliteDatabase` (sqlite-utils; reviewers' credentials in a second file beside it, attached to the
same connection, `accounts_path`), a `postgresql://` URL is `PostgresDatabase` (storage.postgres).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import sqlite3
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database as SqliteUtils

from models.errors import DealwatchError
from models.records import Candidate
from pipeline.storage.dialect import SQLITE, Dialect
from pipeline.storage.schema import ACCOUNTS, ACCOUNTS_MOVED, MIGRATIONS, PREPARE, ensure_accounts_schema
from pipeline.urls import is_database_url

logger = logging.getLogger(__name__)

CANDIDATE_STATUSES = ("pending", "confirmed", "rejected", "deferred")
JSON_COLUMNS = ("vendors", "deal_types", "signals", "headers", "counters", "edits", "sources",
                "urls", "previous", "reasons")
TABLES = ("sources", "runs", "pages", "articles", "entities", "candidates", "reviews", "deals",
          "exports")


class StoreError(DealwatchError):
    """The database cannot be opened, migrated or written."""


class StoreBusy(StoreError):
    """A statement waited out the busy (lock) timeout while another process was writing."""


class StoreConflict(StoreError):
    """A row that a unique key already holds (another process may have written it meanwhile)."""


# PostgreSQL advisory lock keys, every one dealwatch takes (one 64-bit key space per database,
# shared with whatever else uses the server: "dw" = 0x6477 marks them), so that no two collide.
WRITER_LOCK = 0x6477_0001  # one writing transaction at a time (storage.postgres)
MIGRATE_LOCK = 0x6477_0002  # one migration at a time (storage.postgres)
RUN_LOCK = 0x6477_0003  # the run lock (storage.lock)
CLUSTER_LOCK = 0x6477_0010  # one processing worker clusters at a time (storage.articles)
# A processing batch's floor (storage.articles): the low 40 bits hold an article id.
FLOOR_MASK = (1 << 40) - 1
FLOOR_LOCKS = 0x6477_11 << 40


# Where the data lives: a SQLite file's path, or a PostgreSQL server's URL (which a Path would
# mangle; shown only through `shown_location`, without its password).
DatabaseLocation = str | Path


def shown_location(location: DatabaseLocation) -> str:
    """The location as it may be shown: a URL without its password, a path as it is."""
    if is_database_url(str(location)):
        from pipeline.storage.servers import redact  # loads the drivers: only for a URL

        return redact(str(location))
    return str(location)


def is_busy(exc: BaseException) -> bool:
    """A statement that waited out the busy timeout while another process was writing."""
    if isinstance(exc, StoreBusy):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    # PostgreSQL: lock_not_available, serialization_failure, deadlock_detected
    return getattr(exc, "sqlstate", None) in ("55P03", "40001", "40P01")


def is_driver_error(exc: BaseException) -> bool:
    """An error of a database driver, sqlite3's or psycopg's (loaded only for a server: an
    error cannot be psycopg's when psycopg was never imported)."""
    if isinstance(exc, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def busy_message(exc: BaseException) -> str:
    """What to say when a statement waited out the busy timeout while another process wrote."""
    return (f"the database is busy ({exc}): another process has been writing for longer than "
            "the busy timeout; try again")


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(days: int) -> str:
    """The time `days` days before now, as utcnow writes times (to compare with stored ones)."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def compress(body: bytes) -> bytes:
    return zlib.compress(body, 6)


def decompress(blob: bytes | None) -> bytes:
    return zlib.decompress(blob) if blob else b""


def dump_json(value: Any) -> str:
    """A value as the text of a JSON column (stable key order, so equal values compare equal)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def dump_value(value: Any) -> Any:
    """A value as a column takes it: lists and dicts as JSON text, the rest as they are."""
    return dump_json(value) if isinstance(value, list | dict) else value


def marks(values: Sized) -> str:
    """`?, ?, …`: one SQL parameter per value, for `IN (…)` and `VALUES (…)`; `NULL` for none,
    so that `IN (NULL)` matches nothing on both engines (PostgreSQL refuses `IN ()`)."""
    return ", ".join("?" * len(values)) or "NULL"


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """Turn the JSON text columns of a row back into lists and dicts."""
    for name in JSON_COLUMNS:
        if isinstance(row.get(name), str):
            with contextlib.suppress(json.JSONDecodeError):
                row[name] = json.loads(row[name])
    if isinstance(row.get("queued"), int):
        row["queued"] = bool(row["queued"])
    return row


def accounts_path(path: str | Path) -> Path:
    """The file that holds reviewers' credentials, beside the database: `dealwatch.db` ->
    `dealwatch.db.accounts`. No .db ending, so `datasette data/` (which serves every *.db,
    *.sqlite and *.sqlite3 file of a folder) leaves it out too."""
    return Path(":memory:") if str(path) == ":memory:" else Path(f"{path}.accounts")


def _create_private(path: Path) -> None:
    """Make an empty file only its owner can read, so SQLite (and its -wal and -shm files,
    which take the database file's mode) keep the credentials private."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def unsupported_reason(language: str | None) -> str:
    """The verdict on the pages of an article in a language dealwatch has no patterns for."""
    return f"unsupported language: {language or 'unknown'}"


def candidate_key(article_id: int, cand: Candidate) -> str:
    """Identity of a candidate across re-processing: same article, kind, vendor and evidence."""
    basis = "\x1f".join([str(article_id), cand.kind, cand.vendor or "", " ".join(cand.sentence.split())])
    return sha256_hex(basis)[:32]


def candidate_from_row(row: dict[str, Any]) -> Candidate:
    """A stored candidate row (JSON columns decoded) as the record the stages take."""
    fields: dict[str, Any] = {name: row.get(name) for name in Candidate.__dataclass_fields__}
    for name in ("vendors", "deal_types", "reasons"):
        fields[name] = fields[name] if isinstance(fields[name], list) else []
    fields["signals"] = fields["signals"] if isinstance(fields["signals"], dict) else {}
    fields["stage"] = fields["stage"] or "unknown"
    fields["queued"] = bool(row.get("queued", 1))
    return Candidate(**fields)


class Database:
    """What every backend gives the repositories: statements with `?` parameters, transactions,
    a snapshot, the schema version, and the few helpers written once on top of them."""

    dialect: Dialect
    location: str  # the file's path, or the server's URL without its password
    path: Path | None = None  # the SQLite file
    accounts_error: str | None = None  # why reviewers' accounts cannot be reached, if so

    # -- statements (each backend) --

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; a DB-API cursor (`fetchone`, `fetchall`, `rowcount`, iteration)."""
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """The rows of a query as dicts of column name to value."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def transaction(self, immediate: bool = True, concurrent: bool = False,
                    ) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def table_names(self) -> list[str]:
        raise NotImplementedError

    def migrate(self) -> list[tuple[int, str]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    # -- written once --

    def schema_version(self) -> int:
        if "schema_migrations" not in self.table_names():
            return 0
        row = self.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def take_number(self, counter: str) -> int:
        """The next number of a numbering that never reuses one (`deal_numbers`,
        `report_numbers`: a one-row table of the last number given), taken."""
        return int(self.execute(
            f'UPDATE "{counter}" SET last = last + 1 RETURNING last').fetchall()[0][0])

    def insert_row(self, table: str, row: Mapping[str, Any], returning: str | None = "id") -> int:
        """Insert one row of these columns (values already in their stored form); its `id`
        (`returning=None` for a table without one)."""
        cols = list(row)
        sql = f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({marks(cols)})'
        if returning is None:
            self.execute(sql, [row[c] for c in cols])
            return 0
        return int(self.execute(f"{sql} RETURNING {returning}",
                                [row[c] for c in cols]).fetchone()[0])

    def count(self, table: str) -> int:
        return int(self.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Rows per main table, and candidates per review status."""
        out = {table: self.count(table) for table in TABLES}
        per_status = dict(self.execute(
            "SELECT status, COUNT(*) FROM candidates GROUP BY status").fetchall())
        for status in CANDIDATE_STATUSES:
            out[f"candidates_{status}"] = int(per_status.get(status, 0))
        return out


class SqliteDatabase(Database):
    """A dealwatch database file. Opening it applies any pending migrations."""

    dialect = SQLITE

    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000, migrate: bool = True):
        self.path = Path(path)
        self.location = str(path)
        self._closed = False
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: every statement outside `transaction()` is durable on its own, and
            # transactions are explicit (BEGIN … COMMIT), never opened behind our back.
            conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000,
                                   isolation_level=None)
            self.db = SqliteUtils(conn)
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self.db.execute("PRAGMA foreign_keys = ON")
            if str(path) != ":memory:":
                self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from None
        self.accounts_path = accounts_path(path)
        self.accounts_error: str | None = None  # why the accounts file could not be opened
        self._attach_accounts()
        self._savepoints = itertools.count(1)
        if migrate:
            try:
                self.migrate()
            except BaseException:  # a schema newer than this dealwatch, say: close, as on a server
                self.close()
                raise

    def _attach_accounts(self) -> None:
        """Attach the accounts file as `accounts` (made, private, on first use), with its tables.

        Its tables are reached as `accounts.users` and so on; a statement that names a table
        alone finds it there too, once migration 9 has moved it out of the main database.
        """
        path = self.accounts_path
        try:
            if str(path) != ":memory:":
                _create_private(path)
            self.db.execute(f"ATTACH DATABASE ? AS {ACCOUNTS}", [str(path)])
            if str(path) != ":memory:":
                self.db.execute(f"PRAGMA {ACCOUNTS}.journal_mode = WAL")
                self.db.execute(f"PRAGMA {ACCOUNTS}.synchronous = NORMAL")
            ensure_accounts_schema(self.db)
        except (sqlite3.Error, OSError) as exc:
            problem = f"{path}: cannot open the reviewer accounts database: {exc}"
            if self.schema_version() < ACCOUNTS_MOVED:  # its rows still have to move there
                self.db.close()
                raise StoreError(problem) from None
            # A broken accounts file must not stop the nightly run, the queue or an export,
            # which need no reviewer: only what reads accounts fails (Accounts raises it).
            with contextlib.suppress(sqlite3.Error):
                self.db.execute(f"DETACH DATABASE {ACCOUNTS}")
            logger.warning("%s; everything but reviewers' accounts works", problem)
            self.accounts_error = problem

    def close(self) -> None:
        self.db.close()
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    # -- statements --

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, list(params))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE constraint failed" in str(exc):
                raise StoreConflict(f"{self.location}: {exc}") from exc
            raise
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise StoreBusy(f"{self.location}: {busy_message(exc)}") from exc
            raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        return self.db.query(sql, list(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.conn.executemany(sql, rows)

    def table_names(self) -> list[str]:
        return self.db.table_names()

    # -- schema --

    def migrate(self) -> list[tuple[int, str]]:
        """Apply every migration newer than the database, each in its own transaction."""
        applied: list[tuple[int, str]] = []
        try:
            if "schema_migrations" not in self.db.table_names():
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
            for version, name, step in MIGRATIONS:
                if version <= self.schema_version():
                    continue
                if version in PREPARE:
                    with self.transaction():
                        PREPARE[version](self.db)
                with self.transaction():
                    # another process may have applied it while this one waited for the lock
                    if version <= self.schema_version():
                        continue
                    step(self.db)
                    self.db.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        [version, name, utcnow()],
                    )
                logger.info("applied migration %d: %s", version, name)
                applied.append((version, name))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot migrate database: {exc}") from None
        latest = MIGRATIONS[-1][0]
        if self.schema_version() > latest:
            raise StoreError(
                f"{self.path}: database schema {self.schema_version()} is newer than this "
                f"dealwatch ({latest}); upgrade dealwatch"
            )
        return applied

    # -- transactions --

    @contextmanager
    def transaction(self, immediate: bool = True, concurrent: bool = False) -> Iterator[None]:
        """A transaction (a savepoint when nested): all of it is written, or none of it.

        The outermost one begins IMMEDIATE: it takes the write lock up front, so two writers
        (two reviewers, or a reviewer and the nightly run) queue on the busy timeout instead of
        one failing half way with "database is locked" when it upgrades a read lock. That
        locks the accounts file too; `immediate=False` is for a transaction on the accounts
        file alone whose first statement writes: it locks only that file, so a change to an
        account does not wait for a long write to the main database. `concurrent` matters on
        PostgreSQL only (see PostgresDatabase.transaction): one SQLite file has one writer.
        """
        conn = self.db.conn
        if conn.in_transaction:
            name = f"sp{next(self._savepoints)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        try:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        except sqlite3.OperationalError as exc:
            raise StoreBusy(f"{self.location}: {busy_message(exc)}") from None
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # a failed statement may have ended it already
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # never leave it open: later calls would nest inside it
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A consistent read of several queries, without taking the write lock (WAL readers
        never wait for writers)."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")
