"""Which backend a database location names: a `postgresql://` URL is a PostgreSQL server
(storage.postgres, psycopg loaded only then), anything else a SQLite file (storage.database)."""

from __future__ import annotations

from pathlib import Path

from pipeline.storage.database import Database, SqliteDatabase
from pipeline.urls import is_database_url


def open_database(location: str | Path, busy_timeout_ms: int = 10_000,
                  migrate: bool = True) -> Database:
    """The database at this location, opened (and migrated unless `migrate=False`)."""
    if is_database_url(str(location)):
        from pipeline.storage.postgres import PostgresDatabase  # psycopg only when needed

        return PostgresDatabase(str(location), busy_timeout_ms=busy_timeout_ms, migrate=migrate)
    return SqliteDatabase(location, busy_timeout_ms=busy_timeout_ms, migrate=migrate)
