"""Databases as an older dealwatch left them: the migrations up to a version, and no further."""

from __future__ import annotations

from pathlib import Path

from pipeline.storage import MIGRATIONS, Store


def migrate_until(store: Store, last: int) -> None:
    """Apply the migrations 1 to `last` (each committed with its row in schema_migrations, as
    Database.migrate does) to a store opened with migrate=False."""
    store.db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for version, name, step in MIGRATIONS:
        if version > last:
            break
        with store.db.atomic():
            step(store.db)
            store.db.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')",
                             [version, name])
    assert store.schema_version() == last


def old_database(db_path: Path, last: int) -> Store:
    """A store over a new database at schema `last`, not migrated further (close it, or use it
    in a with block)."""
    store = Store(db_path, migrate=False)
    migrate_until(store, last)
    return store
