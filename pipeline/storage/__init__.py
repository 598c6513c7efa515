"""Storage: one database, its migrations, and a repository per concern.

The database is a SQLite file (sqlite-utils), the default, or a PostgreSQL server
(`postgresql://…`, storage.postgres) for several machines at once; the repositories are the same
over both. On SQLite, reviewers' credentials (users, sessions, failed logins) live in a second
file beside it, `<database>.accounts`, attached to every connection, so that nothing pointed at
the main file (Datasette, a copy sent to a colleague) can read them; on PostgreSQL they live in
the schema `accounts`, which a reader's role is not granted.

`Store(location)` opens the database and holds one repository for each concern, all over the
same `Database` (connection, migrations, transactions):

    store.pages       fetched pages and what waits to be processed   (storage/pages.py)
    store.articles    extracted articles, clusters, entities, analyses (storage/articles.py)
    store.candidates  the review queue, candidates, scores, rankers   (storage/candidates.py)
    store.reviews     the append-only audit of decisions              (storage/reviews.py)
    store.registry    deals, their sources and stages, exports, pushes (storage/registry.py)
    store.reports     aggregate claims, filed apart from deals         (storage/reports.py)
    store.accounts    reviewers, sessions, failed logins              (storage/accounts.py)
    store.runs        runs and the configured sources                 (storage/runs.py)

Only this package writes SQL. Everything above it goes through these repositories.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from models.registry import DEAL_FIELDS
from pipeline.storage.accounts import Accounts
from pipeline.storage.articles import Articles
from pipeline.storage.backends import open_database
from pipeline.storage.candidates import Candidates
from pipeline.storage.database import (
    CANDIDATE_STATUSES,
    Database,
    StoreBusy,
    StoreError,
    is_busy,
    sha256_hex,
    unsupported_reason,
    utcnow,
)
from pipeline.storage.pages import Pages
from pipeline.storage.queue import QueueQuery
from pipeline.storage.registry import Registry
from pipeline.storage.reports import Reports
from pipeline.storage.reviews import Reviews
from pipeline.storage.runs import Runs
from pipeline.storage.schema import MIGRATIONS

__all__ = ["CANDIDATE_STATUSES", "DEAL_FIELDS", "MIGRATIONS", "Database", "QueueQuery", "Store",
           "StoreBusy", "StoreError", "is_busy", "open_database", "sha256_hex", "unsupported_reason",
           "utcnow"]


class Store:
    """A dealwatch database and its repositories. Opening it applies pending migrations."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000, migrate: bool = True):
        self._opened = (path, busy_timeout_ms)
        self._attach(open_database(path, busy_timeout_ms=busy_timeout_ms, migrate=migrate))

    def _attach(self, database: Database) -> None:
        self.database = database
        self.pages = Pages(self.database)
        self.articles = Articles(self.database)
        self.candidates = Candidates(self.database)
        self.reviews = Reviews(self.database)
        self.registry = Registry(self.database)
        self.reports = Reports(self.database)
        self.accounts = Accounts(self.database)
        self.runs = Runs(self.database)

    @property
    def path(self) -> Path | None:
        """The SQLite file; None on a server."""
        return self.database.path

    @property
    def location(self) -> str:
        return self.database.location

    @property
    def db(self) -> Any:
        """For the tests and tools that read tables: sqlite-utils on SQLite, else the database's
        own execute/query."""
        return getattr(self.database, "db", self.database)

    def close(self) -> None:
        self.database.close()

    def reopen(self) -> None:
        """Connect again, to a server that went away (a worker's Reconnection, jobs.retry): the
        same Store, its repositories over a new connection (migrated: it may be a new server).
        Raises as opening does, and then the closed connection stays."""
        path, busy_timeout_ms = self._opened
        database = open_database(path, busy_timeout_ms=busy_timeout_ms)
        self.database.close()
        self._attach(database)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        return self.database.schema_version()

    def migrate(self) -> list[tuple[int, str]]:
        return self.database.migrate()

    @contextmanager
    def transaction(self, concurrent: bool = False) -> Iterator[None]:
        """All of it is written, or none of it (see Database.transaction; `concurrent`: a
        processing or crawl write that PostgreSQL's row locks keep apart from the others)."""
        with self.database.transaction(concurrent=concurrent):
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A consistent read of several queries (see Database.snapshot)."""
        with self.database.snapshot():
            yield

    def count(self, table: str) -> int:
        return self.database.count(table)

    def counts(self) -> dict[str, int]:
        return self.database.counts()
